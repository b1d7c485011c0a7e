"""Tune and validate the exactly-k annealer's default polish with the benchmarking harness.

    .venv/bin/python benches/defaults_report.py --step tune     [--out bench-out/defaults-tune]
    .venv/bin/python benches/defaults_report.py --step heldout  [--out bench-out/defaults-heldout]
    .venv/bin/python benches/defaults_report.py --step validate [--out bench-out/defaults-validate]
    .venv/bin/python benches/defaults_report.py --step kicks    [--out bench-out/defaults-kicks-validate]

``tune``: the tuning families (``qfsel.instances.TUNING``: explanation, lognormal, redundant) at
K = 64/256/512 (3 instances each, seeds 100-102) with stall variants ``max(50 m, 8 m k + a K)``
and 10 or 30 sweeps. ``heldout``: the held-out families (``HELD_OUT``) at K = 64/256/512 (seeds
200-201) and every family at K = 1280 (seed 300), previous default (m = 1, a = 1/4) against m = 2,
a = 1/2. ``validate``: every family, fresh seeds (500-501; K = 1280: 500), the previous default
against the shipped one (``qfsel.solve(..., "sa")``'s default, here the harness entry ``"sa"``).
32 reads x 2 seeds per instance, one thread; results (resumable) and ``summary.md`` in ``--out``;
the side-by-side table is printed. ``kicks``: every family on fresh seeds (700-701; K = 1280:
700), the previous default and the contrast polish (the default before the kick rounds) against
the default with kick rounds (``"sa"``). See docs/benchmarks.md section 9.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from qfsel.bench import Budget, Entry, RunOutput, benchmark  # noqa: E402
from qfsel.instances import FAMILIES, HELD_OUT, TUNING, generate_suite, load_many, save_many, with_ground_truth  # noqa: E402
from qfsel.samplers.sa import coupling_contrast, default_tabu_stall, simulated_annealing  # noqa: E402


def stall_entry(label: str, sweeps: int, m: float, a: float) -> Entry:
    def run(inst, reads, _sweeps, seed):
        q, off = inst.problem().qubo(include_penalty=False)
        n, k = inst.num_variables, inst.k
        stall = max(int(50 * m), int(m * 8 * k + a * n))
        out = simulated_annealing(q[None], np.array([off]), k=k, num_reads=reads, num_sweeps=sweeps, seed=seed,
                                  num_threads=1, tabu_stall=stall, return_states=True)
        return RunOutput(out["states"][0])

    return Entry(label, run, "qfsel", description=f"swap SA, {sweeps} sweeps, stall max({50 * m:g}, {8 * m:g}k + {a:g}K)")


def contrast_entry(label: str) -> Entry:
    """The default before kick rounds: stall ``default_tabu_stall(n, k, contrast)``, no kicks."""
    def run(inst, reads, _sweeps, seed):
        q, off = inst.problem().qubo(include_penalty=False)
        stall = default_tabu_stall(inst.num_variables, inst.k, float(coupling_contrast(q[None]).max()))
        out = simulated_annealing(q[None], np.array([off]), k=inst.k, num_reads=reads, seed=seed, num_threads=1,
                                  tabu_stall=stall, return_states=True)
        return RunOutput(out["states"][0])

    return Entry(label, run, "qfsel", description="swap SA, 10 sweeps, stall max(100, 16k + K/2) x clip(contrast/4, 1, 2)")


def kicks_entry(label: str, m: float, a: float) -> Entry:
    """Stall ``max(50 m, 8 m k + a K)``, then the default kick rounds."""
    def run(inst, reads, _sweeps, seed):
        q, off = inst.problem().qubo(include_penalty=False)
        n, k = inst.num_variables, inst.k
        stall = max(int(50 * m), int(m * 8 * k + a * n))
        out = simulated_annealing(q[None], np.array([off]), k=k, num_reads=reads, seed=seed, num_threads=1,
                                  tabu_stall=stall, kick_rounds=8, return_states=True)
        return RunOutput(out["states"][0])

    return Entry(label, run, "qfsel", description=f"swap SA, 10 sweeps, stall max({50 * m:g}, {8 * m:g}k + {a:g}K), 8 kick rounds")


def instances(out: Path, make) -> list:
    d = out / "instances-with-truth"
    if d.exists():
        return load_many(d)
    insts = with_ground_truth(make())
    save_many(insts, d)
    return insts


def side_by_side(summary, a: str, b: str) -> None:
    print(f"| family | K (k) | inst. | {a}: success (min) | {b}: success (min) | {a}: TTS99 ms | {b}: TTS99 ms | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for (fam, n), g in summary.groupby(["family", "K"]):
        g = g.set_index("sampler")
        if a in g.index and b in g.index:
            ra, rb = g.loc[a], g.loc[b]
            print(f"| {fam} | {n} ({ra['k']}) | {ra['instances']} | {ra['success']:.0%} ({ra['min_success']:.0%}) | "
                  f"{rb['success']:.0%} ({rb['min_success']:.0%}) | {ra['tts99_s'] * 1e3:.2f} | {rb['tts99_s'] * 1e3:.2f} | "
                  f"{rb['tts99_s'] / ra['tts99_s']:.2f}x |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--step", choices=("tune", "heldout", "validate", "kicks"), required=True)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    out = Path(args.out or f"bench-out/defaults-{args.step}")
    previous = stall_entry("previous default", 10, 1, 0.25)
    if args.step == "tune":
        insts = instances(out, lambda: generate_suite(TUNING, [64, 256, 512], seeds=range(100, 103)))
        entries = [stall_entry(f"sw{s}-m{m:g}-a{a:g}", s, m, a) for s, m, a in
                   [(10, 1, 0.25), (10, 2, 0.5), (10, 4, 1), (30, 1, 0.25), (30, 2, 0.5)]]
        a, b = entries[0].label, entries[1].label
    elif args.step == "heldout":
        insts = instances(out, lambda: generate_suite(HELD_OUT, [64, 256, 512], seeds=[200, 201])
                          + generate_suite(HELD_OUT + TUNING, [1280], seeds=[300]))
        entries = [previous, stall_entry("m2", 10, 2, 0.5)]
        a, b = "previous default", "m2"
    elif args.step == "kicks":
        insts = instances(out, lambda: generate_suite(list(FAMILIES), [64, 256, 512], seeds=[700, 701])
                          + generate_suite(list(FAMILIES), [1280], seeds=[700]))
        entries = [previous, contrast_entry("contrast polish"), ("kicks default", "sa"), kicks_entry("m1 + kicks", 1, 0.25)]
        res = benchmark(insts, entries, Budget(num_reads=32), seeds=2, out=out / "run", time_limit=600)
        side_by_side(res.summary(), "previous default", "kicks default")
        side_by_side(res.summary(), "contrast polish", "kicks default")
        side_by_side(res.summary(), "previous default", "m1 + kicks")
        return
    else:
        insts = instances(out, lambda: generate_suite(list(FAMILIES), [64, 256, 512], seeds=[500, 501])
                          + generate_suite(list(FAMILIES), [1280], seeds=[500]))
        entries = [previous, ("new default", "sa")]
        a, b = "previous default", "new default"
    res = benchmark(insts, entries, Budget(num_reads=32), seeds=2, out=out / "run", time_limit=600)
    side_by_side(res.summary(), a, b)


if __name__ == "__main__":
    main()
