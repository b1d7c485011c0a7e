"""Markdown report: qfsel's simulated annealing vs dwave-samplers' on explanation-shaped instances.

    .venv/bin/python benches/sa_report.py [--quick] [--families explanation,hard,lognormal]

Per family and size ``K (k)`` (exactly-``k`` form, beta = 0.7), one thread per solver:

* **qfsel swap SA** (``qfsel.solve(..., "sa")`` kernel: swap moves, every read feasible) with its
  *default* parameters (schedule, sweeps, final tabu polish with ``default_tabu_stall(K, k)``);
* **qfsel flip SA** and **dwave-samplers SA** on the same safe-penalty QUBO (``batch.qubo()``), both
  with their default beta range and the same number of sweeps (``--flip-sweeps``, 100), so their
  ns/update compare directly (dwave-samplers gets one ``BinaryQuadraticModel`` per problem; building
  it is not timed).

Columns: ns/attempt (= time per read / (sweeps K), preprocessing and final descent included),
success p = fraction of reads that are feasible and reach the best known energy (within 1e-9
relative), feasible fraction, time per read, TTS99 = t_read log(0.01) / log(1 - p) (t_read when
p >= 0.99, inf when p = 0). Best known: exact (``exact_ground_states``) where C(K, k) <= 5e6, else
the best feasible energy over every read of this run plus a reference pass (qfsel tabu, 64 reads of
50 ms, and swap SA, 64 reads of 500 sweeps; not timed). Families: ``explanation`` and ``hard``
(``benches/instances.py``) and ``lognormal`` (lognormal relevance, sparse ReLU maps from 8 shared
patterns; ``benches/test_bench_sa.py``).

OpenBLAS is limited to one thread before numpy loads: its idle workers spin after each matrix
product and would steal a core from the 2-thread measurement.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benches.instances import explanation_like, hard, tts99  # noqa: E402
from benches.test_bench_sa import explanation_instances  # noqa: E402

from qfsel import ProblemBatch  # noqa: E402
from qfsel.samplers.exact import exact_ground_states  # noqa: E402
from qfsel.samplers.sa import DEFAULT_SWEEPS_SWAP, default_tabu_stall, simulated_annealing  # noqa: E402
from qfsel.samplers.tabu import tabu_search  # noqa: E402


def lognormal(rng: np.random.Generator, b: int, n: int):
    return explanation_instances(b, n, seed=int(rng.integers(1 << 31)))


FAMILIES = {"explanation": explanation_like, "hard": hard, "lognormal": lognormal}
# (K, k, B, swap SA reads, flip SA reads: the same for qfsel and dwave-samplers)
CASES = [(64, 4, 6, 64, 16), (64, 8, 6, 64, 16), (256, 16, 4, 64, 16), (512, 16, 3, 48, 8), (1280, 16, 2, 32, 4)]
EXACT_LIMIT = 5_000_000




def timed(fn, repeats: int = 1):
    best, out = math.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def run_case(gen, n: int, k: int, b: int, reads: int, d_reads: int, flip_sweeps: int):
    from dwave.samplers import SimulatedAnnealingSampler as DwaveSA

    h, j = gen(np.random.default_rng(2000 + n + k), b, n)
    batch = ProblemBatch(h, j, k=k)
    qo, oo = batch.qubo(include_penalty=False)
    qp, op = batch.qubo()
    res = {}
    # qfsel swap SA, defaults (the call qfsel.solve(batch, "sa") makes), one thread.
    sw, t_sw = timed(lambda: simulated_annealing(qo, oo, k=k, num_reads=reads, seed=1, num_threads=1), repeats=2)
    res["qfsel swap SA (default)"] = (sw["energies"], np.ones_like(sw["energies"], bool), t_sw / (b * reads), sw["num_sweeps"])
    # qfsel flip SA on the penalty QUBO.
    fl, t_fl = timed(lambda: simulated_annealing(qp, op, num_reads=d_reads, num_sweeps=flip_sweeps, seed=1, num_threads=1,
                                                 return_states=True), repeats=2)
    res["qfsel flip SA (penalty QUBO)"] = (batch.energy(fl["states"]), fl["states"].sum(-1) == k, t_fl / (b * d_reads), flip_sweeps)
    # dwave-samplers SA on the same penalty QUBOs (BQM built outside the timing).
    bqms = batch.to_bqms()
    d_e = np.empty((b, d_reads))
    d_f = np.empty((b, d_reads), bool)
    t_d = 0.0
    for i, bqm in enumerate(bqms):
        ss, dt = timed(lambda: DwaveSA().sample(bqm, num_reads=d_reads, num_sweeps=flip_sweeps, seed=1))
        t_d += dt
        x = np.array([[s[v] for v in range(n)] for s in ss.samples(sorted_by=None)], dtype=np.uint8)
        d_e[i] = batch[i].energy(x)
        d_f[i] = x.sum(1) == k
    res["dwave-samplers SA (penalty QUBO)"] = (d_e, d_f, t_d / (b * d_reads), flip_sweeps)
    if math.comb(n, k) <= EXACT_LIMIT:
        best = exact_ground_states(qo, oo, k)[0]
        source = "exact"
    else:
        tb = tabu_search(qo, oo, k, num_reads=64, timeout=50.0, seed=3)
        ref = simulated_annealing(qo, oo, k=k, num_reads=64, num_sweeps=500, seed=3)
        cands = [batch.energy(tb["states"]), ref["best_energies"]]
        cands += [np.where(f, e, np.inf).min(axis=1) for e, f, _, _ in res.values()]
        best = np.min(cands, axis=0)
        source = "best seen"
    rows = []
    for name, (e, feas, t_read, sweeps) in res.items():
        ok = feas & (e <= best[:, None] + 1e-9 * np.maximum(1.0, np.abs(best[:, None])))
        p = float(ok.mean())
        rows.append((name, t_read / (sweeps * n) * 1e9, p, float(feas.mean()), t_read, tts99(t_read, p), sweeps))
    return source, rows


def scaling(b: int, n: int, k: int, reads: int) -> tuple[float, float, float]:
    h, j = explanation_like(np.random.default_rng(99), b, n)
    q, off = ProblemBatch(h, j, k=k).qubo(include_penalty=False)
    ts = {}
    for th in (1, 2):
        _, ts[th] = timed(lambda: simulated_annealing(q, off, k=k, num_reads=reads, seed=1, num_threads=th), repeats=3)
    return ts[1], ts[2], ts[1] / ts[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="K <= 512, fewer reads, two families")
    ap.add_argument("--families", default=None, help="comma-separated subset of " + ",".join(FAMILIES))
    ap.add_argument("--flip-sweeps", type=int, default=100)
    args = ap.parse_args()
    fams = args.families.split(",") if args.families else (["explanation", "hard"] if args.quick else list(FAMILIES))
    cases = [c for c in CASES if not (args.quick and c[0] > 512)]
    t0 = time.perf_counter()
    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 cores); one thread per solver; swap SA default "
          f"= {DEFAULT_SWEEPS_SWAP} sweeps + tabu polish (stall max(50, 8k + K/4): "
          f"{default_tabu_stall(256, 16)} at K=256 k=16); flip SAs {args.flip_sweeps} sweeps\n")
    for fam in fams:
        print(f"### {fam}\n")
        print("| K (k) | B | best known | solver | sweeps | ns/attempt | success p | feasible | t/read (ms) | TTS99 (ms) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for n, k, b, reads, d_reads in cases:
            if args.quick:
                reads = max(16, reads // 2)
            source, rows = run_case(FAMILIES[fam], n, k, b, reads, d_reads, args.flip_sweeps)
            ns = {r[0]: r[1] for r in rows}
            for name, nsa, p, feas, t_read, tts, sweeps in rows:
                print(f"| {n} ({k}) | {b} | {source} | {name} | {sweeps} | {nsa:.1f} | {p:.0%} | {feas:.0%} | "
                      f"{t_read * 1e3:.3f} | {tts * 1e3:.3f} |", flush=True)
            ratio = ns["dwave-samplers SA (penalty QUBO)"] / ns["qfsel flip SA (penalty QUBO)"]
            print(f"| {n} ({k}) | | | ns/update dwave-samplers / qfsel flip | | **{ratio:.1f}x** | | | | |", flush=True)
        print()
    print("### 2 threads vs 1 (swap SA, defaults, explanation family)\n")
    print("| batch | 1 thread (ms) | 2 threads (ms) | speed-up |")
    print("|---|---|---|---|")
    for b, n, k, reads in [(16, 256, 16, 32), (64, 64, 8, 32), (4, 1280, 16, 32)]:
        t1, t2, s = scaling(b, n, k, reads)
        print(f"| {b} x K={n} (k={k}), {reads} reads | {t1 * 1e3:.1f} | {t2 * 1e3:.1f} | {s:.2f}x |", flush=True)
    print(f"\nreport time {time.perf_counter() - t0:.0f} s; load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
