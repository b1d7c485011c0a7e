"""Simulated quantum annealing: qfsel against OpenJij's SQASampler and dwave-samplers'
PathIntegralAnnealingSampler, side by side in one run, everything on one thread.

1. Speed at equal Trotter slices P and sweeps S on the same penalty QUBO (flip moves for all):
   ns per spin-slice update = kernel time / (reads * S * P * n). qfsel and OpenJij are discrete-time
   path integrals with P slices. dwave-samplers' sampler is a continuous-time path integral (no
   slices: each sweep updates each spin's whole worldline), so for it the table gives ns per
   spin-sweep, and beside it qfsel's ns per spin-sweep (= P spin-slice updates). All times are CPU
   time of this process (``time.process_time``; every solver runs on this thread), so other jobs on
   a shared machine do not inflate them, and per sweep as ``(t(S) - t(S/10)) / (0.9 S)``, so fixed
   set-up costs count for no one.
2. Success on exactly-k instances shaped like explanations (``benches/instances.py``): qfsel with
   swap moves on the objective (every read feasible), the anchors on the safe-penalty BQM
   (``ProblemBatch.to_bqms()``), equal P and S. Success = the read is feasible and at the best
   energy any solver found in this run (qfsel's tabu search included), TTS99 from the CPU time per
   read (set-up included).

Usage: ``python -m benches.sqa_report [--quick]`` (needs ``openjij``: the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import qfsel
from qfsel.samplers.sqa import simulated_quantum_annealing
from qfsel.samplers.tabu import tabu_search

from .instances import explanation_like, hard, tts99

FAMILIES = {"explanation": explanation_like, "hard": hard}
BETA, GAMMA0 = 5.0, 1.0


def _binary(ss, n):
    """A dimod sample set's samples as 0/1 in variable order 0..n-1."""
    order = [list(ss.variables).index(v) for v in range(n)]
    x = np.asarray(ss.record.sample)[:, order]
    return (x > 0).astype(np.uint8), np.repeat(np.arange(len(x)), ss.record.num_occurrences)


def _cpu(f):
    """CPU seconds of this process spent in ``f()`` (all solvers run on this thread), and its value."""
    t = time.process_time()
    v = f()
    return time.process_time() - t, v


def run_qfsel(q, off, k, reads, sweeps, slices, global_moves=True, **kw):
    def go():
        return simulated_quantum_annealing(q, off, k, num_reads=reads, num_sweeps=sweeps, num_slices=slices, seed=1,
                                           num_threads=1, global_moves=global_moves, **kw)["states"]
    t, x = _cpu(go)
    return x, t


def run_openjij(bqm, n, reads, sweeps, slices, beta=None, gamma=None):
    import openjij as oj

    kw = {} if beta is None else {"beta": beta, "gamma": gamma}
    t, ss = _cpu(lambda: oj.SQASampler().sample(bqm, num_sweeps=sweeps, trotter=slices, num_reads=reads, seed=1, **kw))
    x, rows = _binary(ss, n)
    return x[rows], t


def run_dwave(bqm, n, reads, sweeps, beta, gamma0):
    from dwave.samplers import PathIntegralAnnealingSampler

    s = np.linspace(0, 1, sweeps)
    t, ss = _cpu(lambda: PathIntegralAnnealingSampler().sample(
        bqm, num_reads=reads, seed=1, beta_schedule_type="custom",
        Hp_field=np.full(sweeps, beta), Hd_field=beta * gamma0 * (1 - s) + 1e-3 * beta * gamma0 * s,
    ))
    x, rows = _binary(ss, n)
    return x[rows], t


def _per_sweep(run, sweeps, repeats=3):
    """CPU seconds per sweep of ``run(num_sweeps)``: best of ``repeats`` of (t(S) - t(S / 10)) / (0.9 S),
    which leaves out each solver's fixed set-up cost (model conversion, allocation, Python)."""
    lo = max(1, sweeps // 10)
    best = np.inf
    for _ in range(repeats):
        best = min(best, (run(sweeps) - run(lo)) / (sweeps - lo))
    return best


def speed(cases, reads, sweeps, slices):
    print(f"\n## 1. Speed, equal P = {slices} slices and S = {sweeps} sweeps, one thread, flip moves on the penalty QUBO")
    print("CPU time per sweep (set-up excluded), best of 3.\n")
    print("| K | qfsel ns/spin-slice (global moves off / on) | OpenJij ns/spin-slice | ratio | "
          "qfsel ns/spin-sweep | dwave-samplers ns/spin-sweep | ratio |")
    print("|---|---|---|---|---|---|---|")
    for n in cases:
        h, j = explanation_like(np.random.default_rng(n), 1, n)
        batch = qfsel.ProblemBatch(h, j, k=max(2, n // 8))
        q, off = batch.qubo()
        bqm = batch.to_bqms()[0]
        # The same physics for all three: T = 1 / beta with beta = 5 (OpenJij's default), Gamma 1 -> 0.
        same = {"temperature": 1 / BETA, "gamma_range": (GAMMA0, 1e-3 * GAMMA0)}
        r_a = max(1, reads // 4)
        t_off = _per_sweep(lambda s: run_qfsel(q, off, None, reads, s, slices, global_moves=False, **same)[1], sweeps)
        t_on = _per_sweep(lambda s: run_qfsel(q, off, None, reads, s, slices, global_moves=True, **same)[1], sweeps)
        t_oj = _per_sweep(lambda s: run_openjij(bqm, n, r_a, s, slices, beta=BETA, gamma=GAMMA0)[1], sweeps)
        t_dw = _per_sweep(lambda s: run_dwave(bqm, n, r_a, s, beta=BETA, gamma0=GAMMA0)[1], sweeps, repeats=1)
        u = slices * n
        ns_off, ns_on = t_off / (reads * u) * 1e9, t_on / (reads * u) * 1e9
        ns_oj = t_oj / (r_a * u) * 1e9
        sw_q = t_off / (reads * n) * 1e9
        sw_dw = t_dw / (r_a * n) * 1e9
        print(f"| {n} | {ns_off:.1f} / {ns_on:.1f} | {ns_oj:.0f} | {ns_oj / ns_off:.0f}x | {sw_q:.0f} | {sw_dw:.0f} | {sw_dw / sw_q:.0f}x |")


def success(cases, reads, sweeps, slices, families):
    print(f"\n## 2. Success on exactly-k instances, P = {slices}, S = {sweeps}, one thread, {reads} reads per problem")
    print("| family | K | k | solver | success | feasible | CPU ms/read | TTS99 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for fam in families:
        for n, k, b in cases:
            h, j = FAMILIES[fam](np.random.default_rng(1000 + n), b, n)
            batch = qfsel.ProblemBatch(h, j, k=k)
            q, off = batch.qubo(include_penalty=False)
            qp, offp = batch.qubo()
            bqms = batch.to_bqms()
            results = {}
            x, t = run_qfsel(q, off, k, reads, sweeps, slices)
            results["qfsel sqa (swap)"] = (x, t)
            x, t = run_qfsel(q, off, k, reads, sweeps, slices, descent=True)
            results["qfsel sqa (swap) + descent"] = (x, t)
            x, t = run_qfsel(qp, offp, None, reads, sweeps, slices)
            results["qfsel sqa (flip, penalty)"] = (x, t)
            # The anchors get qfsel's instance-derived T and Gamma_0 for the penalty QUBO (same physics)
            # and, separately, their own defaults (OpenJij: beta 5, gamma 1); both rows are shown.
            phys = simulated_quantum_annealing(qp, offp, None, num_reads=1, num_sweeps=1, seed=1)
            temps, g0s = phys["temperature"], phys["gamma_range"][:, 0]
            for label, params in (("same T, Gamma", [(1 / temps[i], g0s[i]) for i in range(b)]),
                                  ("own defaults", [(BETA, GAMMA0)] * b)):
                xs, t_tot = [], 0.0
                for bqm, (beta, g0) in zip(bqms, params):
                    x, t = run_openjij(bqm, n, reads, sweeps, slices, beta=beta, gamma=g0)
                    xs.append(x)
                    t_tot += t
                results[f"OpenJij SQASampler ({label})"] = (np.stack(xs), t_tot)
                xs, t_tot = [], 0.0
                for bqm, (beta, g0) in zip(bqms, params):
                    x, t = run_dwave(bqm, n, reads, sweeps, beta=beta, gamma0=g0)
                    xs.append(x)
                    t_tot += t
                results[f"dwave-samplers PathIntegral ({label})"] = (np.stack(xs), t_tot)
            tabu = tabu_search(q, off, k, num_reads=8, seed=1, num_threads=1)
            best = tabu["energies"].copy()
            for x, _ in results.values():
                e = np.where(batch.is_feasible(x), batch.energy(x), np.inf)
                best = np.minimum(best, e.min(axis=1))
            for name, (x, t) in results.items():
                feas = batch.is_feasible(x)
                ok = feas & (batch.energy(x) <= best[:, None] + 1e-9)
                p = float(ok.mean())
                t_read = t / (b * reads)
                print(f"| {fam} | {n} | {k} | {name} | {p:.2f} | {feas.mean():.2f} | {t_read * 1e3:.2f} | {tts99(t_read, p) * 1e3:.1f} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small cases only")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.quick:
        speed([64], reads=8, sweeps=50, slices=16)
        success([(32, 6, 2)], reads=8, sweeps=50, slices=16, families=["explanation"])
    else:
        speed([64, 256], reads=16, sweeps=500, slices=16)
        success([(64, 8, 3), (256, 16, 2)], reads=16, sweeps=100, slices=16, families=["explanation", "hard"])
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
