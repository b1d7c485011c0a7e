"""Tabu search and greedy + descent against dwave-samplers' TabuSampler (same problems, same run).

Run with timing: ``./dev bench -k tabu`` (or ``python -m benches.tabu_report`` for the success /
TTS99 table). In the normal test run (``--benchmark-disable``) each case runs once as a test.
"""

from __future__ import annotations

import numpy as np
import pytest

import qfsel
from qfsel.samplers.greedy import greedy_descent
from qfsel.samplers.tabu import tabu_search

from .instances import explanation_like, hard

FAMILIES = {"explanation": explanation_like, "hard": hard}
CASES = [(64, 8, 4)]  # (K, k, B): modest, so the normal suite stays fast
READS = 4


@pytest.fixture(scope="module", params=[(f, c) for f in FAMILIES for c in CASES], ids=lambda p: f"{p[0]}-K{p[1][0]}")
def batch(request):
    family, (n, k, b) = request.param
    h, j = FAMILIES[family](np.random.default_rng(n), b, n)
    return qfsel.ProblemBatch(h, j, k=k)


@pytest.mark.benchmark(group="tabu-swap")
def test_qfsel_swap_tabu(benchmark, batch):
    q, off = batch.qubo(include_penalty=False)
    res = benchmark(tabu_search, q, off, batch.k, num_reads=READS, seed=1, num_threads=1, return_read_states=True)
    assert (res["read_states"].sum(axis=2) == batch.k).all()
    greedy, _, _ = greedy_descent(q, off, batch.k)
    assert (res["energies"] <= batch.energy(greedy) + 1e-12).all()


@pytest.mark.benchmark(group="tabu-swap")
def test_dwave_tabu_penalty_qubo(benchmark, batch):
    from dwave.samplers import TabuSampler

    bqms = batch.to_bqms()

    def run():
        return [TabuSampler().sample(bqm, num_reads=1, seed=1, timeout=5) for bqm in bqms]

    out = benchmark(run)
    assert len(out) == len(batch)


@pytest.mark.benchmark(group="greedy")
def test_qfsel_greedy(benchmark, batch):
    q, off = batch.qubo(include_penalty=False)
    states, energies, _ = benchmark(greedy_descent, q, off, batch.k, num_threads=1)
    assert (states.sum(axis=1) == batch.k).all()
    np.testing.assert_allclose(energies, batch.energy(states), atol=1e-12)


@pytest.mark.benchmark(group="ffi-overhead")
def test_ffi_overhead_one_move(benchmark):
    """The fixed cost of one call: a 4-variable problem, one move (kernel time ~0)."""
    q = np.triu(np.ones((1, 4, 4)))
    res = benchmark(tabu_search, q, np.zeros(1), None, num_reads=1, seed=0, num_iterations=1, num_restarts=0)
    assert res["num_iterations"] == 1
