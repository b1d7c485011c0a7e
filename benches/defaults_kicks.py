"""Exploration (issue 13): kick-and-repolish rounds after the exactly-k annealer's polish.

    .venv/bin/python benches/defaults_kicks.py [--out bench-out/defaults-kicks] [--only grouped-K512,uniform-K1280]

On the cells the shipped default misses or slows down (issue 13 validation seeds 500/501:
grouped K = 64/256/512, uniform K = 64/1280, explanation K = 256, redundant and few-dominant
K = 512; ground truth by ``with_ground_truth``, cached in ``--out``), 48 reads (seed 7, one
thread) of: the shipped default; the previous default stall ``max(50, 8k + K/4)``; and
iterated local search in Python on top of qfsel's kernel: a first polish with stall ``s0``, then
``rounds`` rounds that each move ``kicks`` random selected maps out (random unselected ones in)
of every read's best state and polish again (one sweep at beta = 1e9, then the tabu polish with
stall ``s1``), keeping each read's best. Prints success per read after each round and the wall
time per read (Python overhead included; the machine was shared). Not a default: see
docs/benchmarks.md section 9, "Tried after the validation".
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from qfsel.instances import generate, load_many, save_many, with_ground_truth  # noqa: E402
from qfsel.samplers.sa import simulated_annealing  # noqa: E402

SPEC = [("grouped", 512, 500), ("grouped", 512, 501), ("uniform", 1280, 500), ("grouped", 64, 500), ("grouped", 256, 500),
        ("grouped", 256, 501), ("uniform", 64, 500), ("explanation", 256, 500), ("explanation", 256, 501),
        ("redundant", 512, 500), ("few-dominant", 512, 500)]
READS = 48


def energies(states: np.ndarray, q: np.ndarray, off: float) -> np.ndarray:
    s = states.astype(float)
    return np.einsum("ri,ij,rj->r", s, q, s) + off


def run(q, off, k, stall0, stall1, kicks, rounds, target, tol):
    """Success per read after the first polish and after each kick round; seconds per read."""
    rng = np.random.default_rng(1)
    t = time.perf_counter()
    kw = {} if stall0 is None else {"tabu_stall": stall0}
    out = simulated_annealing(q[None], np.array([off]), k=k, num_reads=READS, seed=7, num_threads=1, return_states=True, **kw)
    best = out["states"][0].copy()
    be = energies(best, q, off)
    hist = [float(np.mean(be <= target + tol))]
    for r in range(rounds):
        init = best.copy()
        for row in init:
            on, offv = np.flatnonzero(row), np.flatnonzero(row == 0)
            row[rng.choice(on, kicks, replace=False)] = 0
            row[rng.choice(offv, kicks, replace=False)] = 1
        o = simulated_annealing(q[None], np.array([off]), k=k, num_reads=READS, seed=100 + r, num_threads=1, return_states=True,
                                tabu_stall=stall1, initial_states=init[None], beta_schedule_type="custom", beta_schedule=[1e9])
        st = o["states"][0]
        e = energies(st, q, off)
        better = e < be - tol
        best[better] = st[better]
        be = np.minimum(be, e)
        hist.append(float(np.mean(be <= target + tol)))
    return hist, (time.perf_counter() - t) / READS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench-out/defaults-kicks")
    ap.add_argument("--only", default="", help="comma-separated substrings of instance names")
    args = ap.parse_args()
    d = Path(args.out) / "instances-with-truth"
    if d.exists():
        insts = load_many(d)
    else:
        insts = with_ground_truth([generate(f, n, seed=s) for f, n, s in SPEC])
        save_many(insts, d)
    only = [s for s in args.only.split(",") if s]
    for inst in insts:
        if only and not any(s in inst.name for s in only):
            continue
        q, off = inst.problem().qubo(include_penalty=False)
        n, k = inst.num_variables, inst.k
        target = inst.ground_truth["energy"]
        tol = 1e-9 * max(1.0, abs(target))
        base, prev = max(100, 16 * k + n // 2), max(50, 8 * k + n // 4)
        variants = [("shipped default", None, None, 0, 0), ("previous default", prev, None, 0, 0),
                    ("ils", base, prev, 3, 6), ("ils", base, base, max(2, k // 4), 3), ("ils", prev, prev, max(2, k // 2), 6)]
        for label, s0, s1, kicks, rounds in variants:
            hist, dt = run(q, off, k, s0, s1, kicks, rounds, target, tol)
            rounds_txt = " / ".join(f"{h:.0%}" for h in hist)
            print(f"| {inst.name} | {label} | {s0 or 'default'} | {s1 or '-'} | {kicks} | {rounds} | {rounds_txt} | {dt * 1e3:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
