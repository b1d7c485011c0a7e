"""Batched QUBO construction against building dimod BQMs one by one (same arrays, same run).

Run with timing: ``./dev bench -k qubo`` (or ``python -m benches.qubo_report`` for the ratio table).
In the normal test run (``--benchmark-disable``) each case runs once as a correctness test.
"""

from __future__ import annotations

import dimod
import numpy as np
import pytest

import qfsel

from .instances import explanation_like

CASES = [(64, 1000), (512, 64)]
BETA, K_SEL = 0.7, 8


def dimod_one_by_one(h: np.ndarray, j: np.ndarray, lam: np.ndarray) -> list:
    """What an Ocean user writes: per problem, the penalty QUBO's vectors with numpy, then a BQM."""
    b, n = h.shape
    rows, cols = np.triu_indices(n, 1)
    out = []
    for i in range(b):
        linear = -BETA * h[i] + lam[i] * (1 - 2 * K_SEL)
        quad = (1 - BETA) * j[i][rows, cols] + 2 * lam[i]
        out.append(dimod.BinaryQuadraticModel.from_numpy_vectors(linear, (rows, cols, quad), lam[i] * K_SEL**2, "BINARY"))
    return out


def qfsel_batch(h: np.ndarray, j: np.ndarray, copy: bool = False):
    batch = qfsel.ProblemBatch(h, j, beta=BETA, k=K_SEL, copy=copy)
    return batch, batch.qubo()


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"K{c[0]}-B{c[1]}")
def arrays(request):
    k, b = request.param
    return explanation_like(np.random.default_rng(k), b, k)


@pytest.mark.benchmark(group="qubo-build")
def test_qfsel_batch_construction(benchmark, arrays):
    h, j = arrays
    batch, (q, off) = benchmark(qfsel_batch, h, j)
    # Same model as dimod's: spot-check two problems' energies on random states.
    rng = np.random.default_rng(0)
    bqms = dimod_one_by_one(h[:2], j[:2], batch.penalty[:2])
    x = rng.integers(0, 2, size=(5, h.shape[1])).astype(np.uint8)
    for i in range(2):
        ours = batch[i].energy(x, include_penalty=True)
        np.testing.assert_allclose(ours, bqms[i].energies((x, range(h.shape[1]))), rtol=1e-9, atol=1e-9)


@pytest.mark.benchmark(group="qubo-build")
def test_qfsel_batch_validation_only(benchmark, arrays):
    h, j = arrays
    batch = benchmark(qfsel.ProblemBatch, h, j, BETA, K_SEL, None, copy=False)
    assert batch.penalty.shape == (h.shape[0],)


@pytest.mark.benchmark(group="qubo-build")
def test_dimod_one_by_one(benchmark, arrays):
    h, j = arrays
    lam = qfsel.ProblemBatch(h, j, beta=BETA, k=K_SEL).penalty
    bqms = benchmark(dimod_one_by_one, h, j, lam)
    assert len(bqms) == h.shape[0]
