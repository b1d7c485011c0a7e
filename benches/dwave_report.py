"""The D-Wave routes on a full-size MOCK Advantage graph: capacity, embedding time, job count, estimated cost.

Usage: ``.venv/bin/python -m benches.dwave_report``.

Everything here is offline: ``MockDWaveSampler`` on a Pegasus P16 graph (the
Advantage topology, 5,640 qubits in the graph, all yielded here) with a
steepest-descent stand-in for the anneal. Its "QPU timing" is a fixed fake
record, so only the job counts, embedding times, client-side times and the
*estimated* QPU access times below are meaningful. The estimate uses
dwave-cloud-client's ``estimate_qpu_access_time`` with the Advantage_system4.1
``problem_timing_data`` that dwave-cloud-client ships in its test mocks.
"""

from __future__ import annotations

import time
import types

import numpy as np
from dwave.cloud.solver import StructuredSolver
from dwave.cloud.testing.mocks import qpu_problem_timing_data
from dwave.system.testing import MockDWaveSampler

import qfsel
from qfsel.samplers import dwave as qd


def batch(b: int, n: int, k: int, seed: int = 0) -> qfsel.ProblemBatch:
    rng = np.random.default_rng(seed)
    h = rng.uniform(0.1, 1.0, (b, n))
    j = np.abs(rng.normal(size=(b, n, n)))
    j = (j + j.transpose(0, 2, 1)) / 2
    j[:, range(n), range(n)] = 0
    return qfsel.ProblemBatch(h, j, beta=0.7, k=k)


def main() -> None:
    qpu = MockDWaveSampler(topology_type="pegasus", topology_shape=[16], exact_solver_cutoff=0,
                           substitute_kwargs={"seed": 0})
    holder = types.SimpleNamespace(properties={"problem_timing_data": qpu_problem_timing_data("advantage")})
    qpu.solver = types.SimpleNamespace(name="MOCK Advantage (P16)",
                                       estimate_qpu_access_time=types.MethodType(StructuredSolver.estimate_qpu_access_time, holder))
    print(f"MOCK QPU: Pegasus P16, {len(qpu.nodelist)} qubits, {len(qpu.edgelist)} couplers\n")
    print("| K | route | per-job capacity | first embedding search (s) | cached lookup (s) |")
    print("|---|---|---|---|---|")
    for n in (8, 16, 24):
        for route in ("dwave-clique", "dwave"):
            if route == "dwave" and n > 16:
                continue
            qd.default_cache.clear()
            t = time.perf_counter()
            cap = qd.capacity(n, qpu, route=route)
            first = time.perf_counter() - t
            t = time.perf_counter()
            qd.capacity(n, qpu, route=route)
            print(f"| {n} | {route} | {cap} | {first:.2f} | {time.perf_counter() - t:.4f} |")

    print("\n| B x K, k | route | pack | QPU jobs | est. QPU access per job (ms) | est. QPU access total (ms) "
          "| optimum found | embedding search (s) | client wall incl. mock anneal (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    b, n, k = 64, 16, 4
    problems = batch(b, n, k)
    qd.default_cache.clear()
    exact = qfsel.solve(problems, "exact")
    for pack in (True, False):
        t = time.perf_counter()
        sol = qfsel.solve(problems, "dwave-clique", qpu=qpu, num_reads=100, pack=pack)
        wall = time.perf_counter() - t
        est = [j.estimate_us for j in sol.info["jobs"]]
        found = int(np.isclose(sol.energies, exact.energies).sum())
        print(f"| {b} x {n}, k={k} | dwave-clique | {pack} | {sol.info['num_jobs']} | {np.mean(est) / 1e3:.1f} "
              f"| {sum(est) / 1e3:.1f} | {found}/{b} | {sol.timing['embedding_s']:.2f} | {wall:.2f} |")
    print(f"\nestimate source: {sol.info['jobs'][0].estimate_source}; num_reads=100, default annealing_time")


if __name__ == "__main__":
    main()
