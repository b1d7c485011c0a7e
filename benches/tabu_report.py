"""Success fraction and TTS99 of qfsel's tabu / greedy against dwave-samplers' TabuSampler.

Instances: ``explanation_like`` and ``hard`` (10x redundancy weight), exactly ``k`` maps. qfsel's
tabu searches the swap neighbourhood of the objective (every state feasible); dwave-samplers'
TabuSampler gets the safe-penalty QUBO from ``ProblemBatch.qubo()`` (its default 20 ms timeout per
read). Everything runs on one thread so times per read compare core for core.

* best known energy: exact (``qfsel.solve(..., "exact")``) where ``C(K, k)`` is enumerable, else the
  best feasible objective over all solvers and reads of this run;
* success p: fraction of reads that are feasible and at the best known energy (within 1e-9);
* TTS99 = t_read * log(0.01) / log(1 - p) (t_read when p >= 0.99; inf when p = 0).

Usage: ``.venv/bin/python -m benches.tabu_report [--reads 10] [--quick]``
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

import qfsel
from qfsel.samplers.exact import exact_ground_states
from qfsel.samplers.greedy import greedy_descent
from qfsel.samplers.tabu import tabu_search

from .instances import explanation_like, hard, tts99

FAMILIES = {"explanation": explanation_like, "hard": hard}
# (K, k, B)
CASES = [(24, 6, 6), (64, 8, 4), (256, 16, 3), (512, 16, 2), (1280, 16, 2)]
EXACT_LIMIT = 5_000_000




def run_qfsel_tabu(batch, reads, **kw):
    q, off = batch.qubo(include_penalty=False)
    t = time.perf_counter()
    res = tabu_search(q, off, batch.k, num_reads=reads, seed=1, num_threads=1, return_read_states=True, **kw)
    dt = time.perf_counter() - t
    x = res["read_states"]
    return batch.energy(x), batch.is_feasible(x), dt / (len(batch) * reads)


def run_dwave_tabu(batch, reads):
    from dwave.samplers import TabuSampler

    n = batch.num_variables
    e = np.empty((len(batch), reads))
    feas = np.empty((len(batch), reads), bool)
    total = 0.0
    for i, bqm in enumerate(batch.to_bqms()):
        t = time.perf_counter()
        ss = TabuSampler().sample(bqm, num_reads=reads, seed=1 + i)
        total += time.perf_counter() - t
        x = np.zeros((reads, n), np.uint8)
        for r, s in enumerate(ss.samples(sorted_by=None)):
            x[r] = [s[v] for v in range(n)]
        e[i] = batch[i].energy(x)
        feas[i] = batch[i].is_feasible(x)
    return e, feas, total / (len(batch) * reads)


def run_greedy(batch):
    q, off = batch.qubo(include_penalty=False)
    t = time.perf_counter()
    states, _, _ = greedy_descent(q, off, batch.k, num_threads=1)
    dt = time.perf_counter() - t
    return batch.energy(states)[:, None], batch.is_feasible(states)[:, None], dt / len(batch)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reads", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="skip K = 1280")
    args = ap.parse_args()
    rows = []
    print("| family | K (k) | B | best known | solver | t/read (ms) | feasible | success p | TTS99 (ms) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for fam, gen in FAMILIES.items():
        for n, k, b in CASES:
            if args.quick and n > 512:
                continue
            h, j = gen(np.random.default_rng(1000 + n), b, n)
            batch = qfsel.ProblemBatch(h, j, k=k)
            results = {
                "qfsel tabu (restarts=0)": run_qfsel_tabu(batch, args.reads, num_restarts=0),
                "qfsel tabu (default)": run_qfsel_tabu(batch, args.reads),
                "qfsel greedy+descent": run_greedy(batch),
                "dwave-samplers TabuSampler (penalty)": run_dwave_tabu(batch, args.reads),
            }
            if math.comb(n, k) <= EXACT_LIMIT:
                q, off = batch.qubo(include_penalty=False)
                best, _, _, _ = exact_ground_states(q, off, k)
                source = "exact"
            else:
                best = np.min([np.where(f, e, np.inf).min(axis=1) for e, f, _ in results.values()], axis=0)
                source = "best seen"
            for name, (e, feas, t_read) in results.items():
                ok = feas & (e <= best[:, None] + 1e-9)
                p = float(ok.mean())
                rows.append((fam, n, k, name, t_read, p))
                print(
                    f"| {fam} | {n} ({k}) | {b} | {source} | {name} | {t_read * 1e3:.3f} | {feas.mean():.0%} | {p:.0%} | {tts99(t_read, p) * 1e3:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
