"""Markdown report: qfsel's simulated annealing vs dwave-samplers' on explanation-shaped instances.

A thin user of the benchmarking harness (``qfsel.benchmark``, see docs/benchmarks.md):

    .venv/bin/python benches/sa_report.py [--quick] [--families explanation,redundant,lognormal] [--out DIR]

Per family and size ``K (k)`` (``qfsel.instances.generate``, exactly-``k`` form, beta = 0.7), one
thread per solver, the same reads for every sampler:

* **qfsel swap SA** (``"sa"``: the kernel ``qfsel.solve(..., "sa")`` uses, with its *default*
  schedule, sweeps and final tabu polish);
* **qfsel flip SA** (``"sa-penalty"``) and **dwave-samplers SA** (``"dwave-sa"``) on the same
  safe-penalty QUBO with the same number of sweeps (``--flip-sweeps``, 100), so their time per read
  compares directly (dwave-samplers gets one ``BinaryQuadraticModel`` per problem; building it is
  not timed).

Ground truth, success, TTS99 and their bootstrap CIs are the harness's (``qfsel.bench.metrics``):
exact where ``C(K, k) <= 2e6``, else best known over long qfsel runs and every read of the run.
The run directory (default ``bench-out/sa_report``) keeps raw reads, so a second call resumes.
The ``2 threads vs 1`` table at the end measures qfsel's thread scaling (not a harness figure).

OpenBLAS is limited to one thread before numpy loads: its idle workers spin after each matrix
product and would steal a core from the 2-thread measurement.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from qfsel import ProblemBatch  # noqa: E402
from qfsel.bench import Budget, benchmark  # noqa: E402
from qfsel.instances import generate  # noqa: E402
from qfsel.samplers.sa import simulated_annealing  # noqa: E402

# (K, k, instances per family, reads per cell)
CASES = [(64, 4, 3, 32), (64, 8, 3, 32), (256, 16, 2, 32), (512, 16, 2, 24), (1280, 16, 1, 16)]


def scaling(b: int, n: int, k: int, reads: int) -> tuple[float, float, float]:
    insts = [generate("explanation", n, k=k, seed=99 + i) for i in range(b)]
    q, off = ProblemBatch(np.stack([i.relevance for i in insts]), np.stack([i.redundancy for i in insts]), k=k).qubo(
        include_penalty=False)
    ts = {}
    for th in (1, 2):
        best = np.inf
        for _ in range(3):
            t = time.perf_counter()
            simulated_annealing(q, off, k=k, num_reads=reads, seed=1, num_threads=th)
            best = min(best, time.perf_counter() - t)
        ts[th] = best
    return ts[1], ts[2], ts[1] / ts[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="K <= 512, two families")
    ap.add_argument("--families", default=None, help="comma-separated subset of explanation,redundant,lognormal")
    ap.add_argument("--flip-sweeps", type=int, default=100)
    ap.add_argument("--out", default="bench-out/sa_report", help="harness run directory (resumable)")
    args = ap.parse_args()
    fams = args.families.split(",") if args.families else (["explanation", "redundant"] if args.quick else
                                                           ["explanation", "redundant", "lognormal"])
    cases = [c for c in CASES if not (args.quick and c[0] > 512)]
    t0 = time.perf_counter()
    print(f"load average at start: {os.getloadavg()[0]:.2f}; one thread per solver; flip SAs {args.flip_sweeps} sweeps\n")
    samplers = [("qfsel swap SA (default)", "sa"),
                ("qfsel flip SA (penalty QUBO)", "sa-penalty", {"num_sweeps": args.flip_sweeps}),
                ("dwave-samplers SA (penalty QUBO)", "dwave-sa", {"num_sweeps": args.flip_sweeps})]
    for n, k, b, reads in cases:
        insts = [generate(f, n, k=k, seed=2000 + i) for f in fams for i in range(b)]
        res = benchmark(insts, samplers, Budget(num_reads=reads), seeds=1, out=Path(args.out) / f"K{n}-k{k}", time_limit=600)
        s = res.summary()
        print(f"### K = {n} (k = {k})\n")
        print("| family | solver | success p | feasible | t/read (ms) | TTS99 (ms) [95% CI] |")
        print("|---|---|---|---|---|---|")
        for _, r in s.sort_values(["family", "sampler"]).iterrows():
            print(f"| {r['family']} | {r['sampler']} | {r['success']:.0%} | {r['feasible']:.0%} | {r['t_read_s'] * 1e3:.3f} | "
                  f"{r['tts99_s'] * 1e3:.3f} [{r['tts99_lo_s'] * 1e3:.3f}, {r['tts99_hi_s'] * 1e3:.3f}] |")
        t = s.groupby("sampler")["t_read_s"].median()
        print(f"\nns/update: dwave-samplers / qfsel flip = **{t['dwave-samplers SA (penalty QUBO)'] / t['qfsel flip SA (penalty QUBO)']:.1f}x**"
              f" (same sweeps, same QUBO)\n", flush=True)
    print("### 2 threads vs 1 (swap SA, defaults, explanation family)\n")
    print("| batch | 1 thread (ms) | 2 threads (ms) | speed-up |")
    print("|---|---|---|---|")
    for b, n, k, reads in [(16, 256, 16, 32), (64, 64, 8, 32), (4, 1280, 16, 32)]:
        t1, t2, sp = scaling(b, n, k, reads)
        print(f"| {b} x K={n} (k={k}), {reads} reads | {t1 * 1e3:.1f} | {t2 * 1e3:.1f} | {sp:.2f}x |", flush=True)
    print(f"\nreport time {time.perf_counter() - t0:.0f} s; load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
