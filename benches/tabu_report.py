"""Success fraction and TTS99 of qfsel's tabu / greedy against dwave-samplers' TabuSampler.

A thin user of the benchmarking harness (``qfsel.benchmark``, see docs/benchmarks.md). Instances:
``explanation`` and ``redundant`` (10x redundancy weight) from ``qfsel.instances.generate``, exactly
``k`` maps. qfsel's tabu searches the swap neighbourhood of the objective (every state feasible);
dwave-samplers' TabuSampler gets the safe-penalty QUBO (its default 20 ms timeout per read).
Everything runs on one thread so times per read compare core for core. Ground truth, success and
TTS99 (with bootstrap CIs) are the harness's.

Usage: ``.venv/bin/python -m benches.tabu_report [--reads 10] [--quick] [--out DIR]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

from qfsel.bench import Budget, benchmark
from qfsel.instances import generate

FAMILIES = ("explanation", "redundant")
# (K, k, instances per family)
CASES = [(24, 6, 4), (64, 8, 3), (256, 16, 2), (512, 16, 2), (1280, 16, 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reads", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="skip K = 1280")
    ap.add_argument("--out", default="bench-out/tabu_report", help="harness run directory (resumable)")
    args = ap.parse_args()
    samplers = [("qfsel tabu (restarts=0)", "tabu", {"num_restarts": 0}), ("qfsel tabu (default)", "tabu"),
                ("qfsel greedy+descent", "greedy"), ("dwave-samplers TabuSampler (penalty)", "dwave-tabu")]
    print("| family | K (k) | instances | best known | solver | t/read (ms) | feasible | success p | TTS99 (ms) [95% CI] |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, k, b in CASES:
        if args.quick and n > 512:
            continue
        insts = [generate(f, n, k=k, seed=1000 + i) for f in FAMILIES for i in range(b)]
        res = benchmark(insts, samplers, Budget(num_reads=args.reads), seeds=1, out=Path(args.out) / f"K{n}-k{k}",
                        time_limit=600)
        per = res.per_instance()
        s = res.summary()
        for _, r in s.sort_values(["family", "sampler"]).iterrows():
            gt = ",".join(sorted(set(per[(per["family"] == r["family"]) & (per["K"] == n)]["gt_method"])))
            print(f"| {r['family']} | {n} ({k}) | {r['instances']} | {gt} | {r['sampler']} | {r['t_read_s'] * 1e3:.3f} | "
                  f"{r['feasible']:.0%} | {r['success']:.0%} | {r['tts99_s'] * 1e3:.2f} "
                  f"[{r['tts99_lo_s'] * 1e3:.2f}, {r['tts99_hi_s'] * 1e3:.2f}] |", flush=True)


if __name__ == "__main__":
    main()
