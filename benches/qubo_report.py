"""Print the batched-QUBO-construction ratios (qfsel vs dimod one by one) as a markdown table.

Usage: ``.venv/bin/python -m benches.qubo_report [--repeat 7]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import qfsel

from .instances import explanation_like
from .test_bench_qubo import BETA, CASES, K_SEL, dimod_one_by_one, qfsel_batch


def best_of(fn, repeat):
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    print("| K | B | dimod one by one (ms) | qfsel ProblemBatch, copy=False (ms) | + dense Q (ms) | copy=True + dense Q (ms) | ratio: batch | ratio: batch + dense Q | ratio: copy + dense Q |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k, b in CASES:
        h, j = explanation_like(np.random.default_rng(k), b, k)
        lam = qfsel.ProblemBatch(h, j, beta=BETA, k=K_SEL).penalty
        t_dimod = best_of(lambda: dimod_one_by_one(h, j, lam), max(2, args.repeat // 3))
        t_val = best_of(lambda: qfsel.ProblemBatch(h, j, BETA, K_SEL, copy=False), args.repeat)
        t_full = best_of(lambda: qfsel_batch(h, j), args.repeat)
        t_copy = best_of(lambda: qfsel_batch(h, j, copy=True), args.repeat)
        print(
            f"| {k} | {b} | {t_dimod * 1e3:.1f} | {t_val * 1e3:.2f} | {t_full * 1e3:.2f} | {t_copy * 1e3:.2f} | "
            f"{t_dimod / t_val:.0f}x | {t_dimod / t_full:.0f}x | {t_dimod / t_copy:.0f}x |"
        )


if __name__ == "__main__":
    main()
