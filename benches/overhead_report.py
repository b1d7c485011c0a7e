"""Per-call cost from Python: one K=64 problem end to end, empty calls, and a batch of 1000.

Usage: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python -m benches.overhead_report``
(prints a markdown table; median of many calls, same process, same run as the anchor).
"""

from __future__ import annotations

import time

import dimod
import numpy as np
from dwave.samplers import SimulatedAnnealingSampler as DWaveSA

import qfsel
from qfsel.samplers import SimulatedAnnealingSampler

from .instances import explanation_like


def median_us(fn, calls: int = 300) -> float:
    fn()
    ts = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts) * 1e6)


def main() -> None:
    h, j = explanation_like(np.random.default_rng(0), 1000, 64)
    p = qfsel.FeatureSelectionProblem(h[0], j[0], k=8)
    bqm = p.to_bqm()
    empty = dimod.BinaryQuadraticModel("BINARY")
    rows = [
        ("qfsel.solve(p, 'sa', num_reads=1, seed=1): K=64, k=8, default schedule", lambda: qfsel.solve(p, "sa", num_reads=1, seed=1)),
        ("qfsel.solve(p, 'greedy'): K=64, k=8", lambda: qfsel.solve(p, "greedy")),
        ("qfsel.solve(p, 'tabu', num_reads=1, num_restarts=0, seed=1): K=64, k=8", lambda: qfsel.solve(p, "tabu", num_reads=1, num_restarts=0, seed=1)),
        ("FeatureSelectionProblem(h, J, k=8): K=64, validated", lambda: qfsel.FeatureSelectionProblem(h[0], j[0], k=8)),
        ("qfsel SimulatedAnnealingSampler().sample(empty BQM)", lambda: SimulatedAnnealingSampler().sample(empty)),
        ("dwave-samplers SimulatedAnnealingSampler().sample(empty BQM)", lambda: DWaveSA().sample(empty)),
        ("dwave-samplers SA, K=64 penalty BQM, num_reads=1, num_sweeps=10", lambda: DWaveSA().sample(bqm, num_reads=1, num_sweeps=10, seed=1)),
    ]
    print("| call | median (us) |")
    print("|---|---|")
    for name, fn in rows:
        print(f"| {name} | {median_us(fn):.0f} |")
    batch = qfsel.ProblemBatch(h, j, k=8)
    t = median_us(lambda: qfsel.solve(batch, "sa", num_reads=1, seed=1), calls=5)
    print(f"| qfsel.solve(batch of 1000 x K=64, 'sa', num_reads=1): one call, all threads | {t:.0f} ({t / 1000:.1f} per problem) |")


if __name__ == "__main__":
    main()
