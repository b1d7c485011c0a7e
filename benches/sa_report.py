"""Print a markdown table of qfsel SA vs dwave-samplers SA on explanation-shaped instances.

    .venv/bin/python benches/sa_report.py [--quick]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from test_bench_sa import explanation_instances, success_fraction, tts99  # noqa: E402

from qfsel import FeatureSelectionProblem, ProblemBatch, solve  # noqa: E402
from qfsel.samplers.sa import simulated_annealing  # noqa: E402


def run(sizes, b, reads, sweeps, hard=False):
    from dwave.samplers import SimulatedAnnealingSampler as DwaveSA

    rows = []
    for k_vars, k in sizes:
        h, j = explanation_instances(b, k_vars, seed=k_vars, hard=hard)
        batch = ProblemBatch(h, j, k=k)
        qo, oo = batch.qubo(include_penalty=False)
        qp, op = batch.qubo()
        t = time.perf_counter()
        sw = simulated_annealing(qo, oo, k=k, num_reads=reads, num_sweeps=sweeps, seed=1, num_threads=1)
        t_sw = time.perf_counter() - t
        t = time.perf_counter()
        fl = simulated_annealing(qp, op, num_reads=reads, num_sweeps=sweeps, seed=1, num_threads=1, return_states=True)
        t_fl = time.perf_counter() - t
        # dwave-samplers on the same penalty QUBOs, one thread, default schedule
        d_obj, d_feas, t_d = [], [], 0.0
        for i in range(b):
            bqm = batch[i].to_bqm()
            t = time.perf_counter()
            ss = DwaveSA().sample(bqm, num_reads=reads, num_sweeps=sweeps, seed=1)
            t_d += time.perf_counter() - t
            x = ss.record.sample[:, np.argsort(np.asarray(list(ss.variables)))].astype(np.uint8)
            d_obj.append(batch[i].energy(x))
            d_feas.append(x.sum(1) == k)
        d_obj, d_feas = np.array(d_obj), np.array(d_feas)
        fl_obj = batch.energy(fl["states"])
        fl_feas = fl["states"].sum(-1) == k
        best = np.minimum(sw["energies"].min(1), np.where(fl_feas, fl_obj, np.inf).min(1))
        best = np.minimum(best, np.where(d_feas, d_obj, np.inf).min(1))
        if k_vars <= 24:
            best = np.minimum(best, solve(batch, "exact").energies)
        def stats(e, feas, t_total):
            p = success_fraction(np.where(feas, e, np.inf), best).mean()
            t_read = t_total / (b * reads)
            return p, feas.mean(), t_read, tts99(t_read, p), t_total / (b * reads * sweeps * k_vars) * 1e9
        r_sw = stats(sw["energies"], np.ones_like(sw["energies"], bool), t_sw)
        r_fl = stats(fl_obj, fl_feas, t_fl)
        r_d = stats(d_obj, d_feas, t_d)
        rows.append((k_vars, k, r_sw, r_fl, r_d))
    return rows


def scaling(k_vars=256, k=16, b=8, reads=16, sweeps=100):
    h, j = explanation_instances(b, k_vars, seed=99)
    q, off = ProblemBatch(h, j, k=k).qubo(include_penalty=False)
    ts = {}
    for th in (1, 2):
        t = time.perf_counter()
        simulated_annealing(q, off, k=k, num_reads=reads, num_sweeps=sweeps, seed=1, num_threads=th)
        ts[th] = time.perf_counter() - t
    return ts[1] / ts[2]


def overhead():
    h, j = explanation_instances(1, 64, seed=3)
    p = FeatureSelectionProblem(h[0], j[0], k=8)
    for _ in range(20):
        solve(p, "sa", num_reads=1, num_sweeps=1, seed=1)
    n = 300
    t = time.perf_counter()
    for _ in range(n):
        solve(p, "sa", num_reads=1, num_sweeps=1, seed=1)
    t_solve = (time.perf_counter() - t) / n
    q, off = p.qubo(include_penalty=False)
    t = time.perf_counter()
    for _ in range(n):
        simulated_annealing(q, off, k=8, num_reads=1, num_sweeps=1, seed=1)
    return t_solve, (time.perf_counter() - t) / n


def main():
    quick = "--quick" in sys.argv
    sizes = [(64, 8), (256, 16), (512, 16)] + ([] if quick else [(1280, 16)])
    b, reads, sweeps = (3, 20, 100) if quick else (4, 32, 100)
    print(f"instances: B={b} per size, {reads} reads, {sweeps} sweeps, one thread each; best = lowest energy over all solvers and reads (exact where K <= 24)\n")
    for hard in (False, True):
        print(f"### {'hard (10x redundancy)' if hard else 'explanation-shaped'}\n")
        print("| K (k) | qfsel swap SA: ns/attempt, success, TTS99 | qfsel flip SA (penalty QUBO): ns/update, success, feasible | dwave-samplers SA (penalty QUBO): ns/update, success, feasible |")
        print("|---|---|---|---|")
        for k_vars, k, sw, fl, d in run(sizes if not hard else sizes[:3], b, reads, sweeps, hard):
            print(f"| {k_vars} ({k}) | {sw[4]:.1f} ns, {sw[0]:.0%}, {sw[3]*1e3:.2f} ms | {fl[4]:.1f} ns, {fl[0]:.0%}, {fl[1]:.0%} "
                  f"| {d[4]:.1f} ns, {d[0]:.0%}, {d[1]:.0%} |")
        print()
    print(f"2 threads vs 1 (swap SA, batch of 8 x K=256): {scaling():.2f}x")
    ts, tk = overhead()
    print(f"K=64 end to end, 1 read x 1 sweep: qfsel.solve {ts*1e6:.0f} us; simulated_annealing() {tk*1e6:.0f} us")


if __name__ == "__main__":
    main()
