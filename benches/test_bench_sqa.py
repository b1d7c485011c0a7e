"""Simulated quantum annealing against OpenJij's SQASampler and dwave-samplers' PathIntegralAnnealingSampler.

Run with timing: ``./dev bench -k sqa`` (or ``python -m benches.sqa_report`` for the CPU-time table and
the success rates). In the normal test run (``--benchmark-disable``) each case runs once as a test;
the OpenJij cases skip when ``openjij`` (the ``bench`` extra) is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest

import qfsel
from qfsel.samplers.sqa import simulated_quantum_annealing

from .instances import explanation_like

SLICES, SWEEPS, READS, N = 16, 50, 4, 64


@pytest.fixture(scope="module")
def batch():
    h, j = explanation_like(np.random.default_rng(N), 1, N)
    return qfsel.ProblemBatch(h, j, k=8)


@pytest.mark.benchmark(group="sqa-flip")
def test_qfsel_sqa_flip(benchmark, batch):
    q, off = batch.qubo()
    out = benchmark(simulated_quantum_annealing, q, off, None, num_reads=READS, num_sweeps=SWEEPS, num_slices=SLICES,
                    temperature=0.2, gamma_range=(1.0, 1e-3), seed=1, num_threads=1)
    assert out["states"].shape == (1, READS, N)


@pytest.mark.benchmark(group="sqa-flip")
def test_openjij_sqa(benchmark, batch):
    oj = pytest.importorskip("openjij")
    bqm = batch.to_bqms()[0]
    ss = benchmark(oj.SQASampler().sample, bqm, num_sweeps=SWEEPS, trotter=SLICES, num_reads=READS, seed=1, beta=5.0, gamma=1.0)
    assert len(ss) == READS


@pytest.mark.benchmark(group="sqa-flip")
def test_dwave_path_integral(benchmark, batch):
    from dwave.samplers import PathIntegralAnnealingSampler

    bqm = batch.to_bqms()[0]
    s = np.linspace(0, 1, SWEEPS)
    ss = benchmark(PathIntegralAnnealingSampler().sample, bqm, num_reads=READS, seed=1, beta_schedule_type="custom",
                   Hp_field=np.full(SWEEPS, 5.0), Hd_field=5.0 * (1 - s) + 5e-3 * s)
    assert len(ss) == READS


@pytest.mark.benchmark(group="sqa-swap")
def test_qfsel_sqa_swap_is_feasible_and_good(benchmark, batch):
    q, off = batch.qubo(include_penalty=False)
    out = benchmark(simulated_quantum_annealing, q, off, 8, num_reads=READS, num_sweeps=SWEEPS, seed=1, num_threads=1)
    assert (out["states"].sum(axis=-1) == 8).all()
    best = qfsel.solve(batch, "tabu", seed=1).energies[0]
    assert out["best_energies"][0] <= best + 1e-9
