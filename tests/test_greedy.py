"""Greedy construction + descent: exact where the answer is known, local minima otherwise."""

from __future__ import annotations

import itertools
import unittest

import dimod
import numpy as np
import pytest
from dimod.testing import load_sampler_bqm_tests
from dimod.testing.asserts import assert_sampler_api

import qfsel
from qfsel import FeatureSelectionProblem, ProblemBatch
from qfsel.samplers.greedy import GreedySampler, greedy_descent

from .conftest import explanation_like, hard


def test_zero_redundancy_picks_the_top_k_relevance_exactly():
    rng = np.random.default_rng(0)
    h = rng.permuted(np.tile(np.linspace(0.05, 1.0, 40), (6, 1)), axis=1)  # distinct values
    j = np.zeros((6, 40, 40))
    for k in (1, 5, 16):
        sol = qfsel.solve(ProblemBatch(h, j, k=k), sampler="greedy")
        want = np.zeros_like(sol.states)
        np.put_along_axis(want, np.argsort(-h, axis=1)[:, :k], 1, axis=1)
        np.testing.assert_array_equal(sol.states, want)
    # without k every positive-relevance map is worth adding
    sol = qfsel.solve(ProblemBatch(h, j), sampler="greedy")
    assert sol.states.all()


def test_equals_exact_on_easy_instances():
    # weak redundancy: greedy + descent reaches the optimum
    rng = np.random.default_rng(1)
    h, j = explanation_like(rng, 20, 14, redundancy_weight=0.05)
    for k in (None, 3, 6):
        batch = ProblemBatch(h, j, k=k)
        np.testing.assert_allclose(
            qfsel.solve(batch, sampler="greedy").energies, qfsel.solve(batch, sampler="exact").energies, atol=1e-12
        )


def _flip_deltas(q, x):
    w = np.triu(q, 1)
    w = w + w.T
    f = np.diag(q) + w @ x
    return np.where(x == 1, -f, f), f, w


@pytest.mark.parametrize("family", [explanation_like, hard])
def test_result_is_a_local_minimum(family):
    rng = np.random.default_rng(2)
    h, j = family(rng, 8, 30)
    for k in (None, 5):
        batch = ProblemBatch(h, j, k=k)
        q, off = batch.qubo(include_penalty=False)
        states, energies, _ = greedy_descent(q, off, k)
        np.testing.assert_allclose(energies, batch.energy(states), atol=1e-12)
        for b in range(len(batch)):
            x = states[b].astype(float)
            d, f, w = _flip_deltas(q[b], x)
            if k is None:
                assert d.min() >= -1e-12
            else:
                assert x.sum() == k
                ones, zeros = np.flatnonzero(x), np.flatnonzero(x == 0)
                swap = f[zeros][None, :] - f[ones][:, None] - w[np.ix_(ones, zeros)]
                assert swap.min() >= -1e-12
                # cross-check the swap formula on one pair by brute evaluation
                y = states[b].copy()
                y[ones[0]], y[zeros[0]] = 0, 1
                assert batch[b].energy(y) - energies[b] == pytest.approx(swap[0, 0], abs=1e-12)


def test_hard_family_is_where_greedy_falls_short():
    rng = np.random.default_rng(3)
    h, j = hard(rng, 12, 16)
    batch = ProblemBatch(h, j, k=5)
    g = qfsel.solve(batch, sampler="greedy").energies
    e = qfsel.solve(batch, sampler="exact").energies
    assert (g >= e - 1e-12).all()
    assert (g > e + 1e-9).any()


def test_deterministic_and_thread_independent():
    rng = np.random.default_rng(4)
    h, j = hard(rng, 9, 50)
    batch = ProblemBatch(h, j, k=7)
    a = qfsel.solve(batch, sampler="greedy", num_threads=1, seed=1)
    b = qfsel.solve(batch, sampler="greedy", num_threads=2, seed=2)
    np.testing.assert_array_equal(a.states, b.states)
    assert a.feasible.all() and (a.num_selected == 7).all()


def test_sampler_against_brute_force_small_and_vartypes():
    rng = np.random.default_rng(5)
    for vartype in (dimod.BINARY, dimod.SPIN):
        lin = {f"v{i}": -abs(rng.normal()) for i in range(6)}
        bqm = dimod.BinaryQuadraticModel(lin, {}, 0.5, vartype)
        ss = GreedySampler().sample(bqm)
        assert ss.vartype is vartype and set(ss.variables) == set(bqm.variables)
        assert ss.first.energy == pytest.approx(dimod.ExactSolver().sample(bqm).first.energy)
        np.testing.assert_allclose(ss.record.energy, bqm.energies(ss))
    # local-minimum property on a general BQM with cardinality (spins up)
    bqm = dimod.BinaryQuadraticModel({i: rng.normal() for i in range(7)},
                                     {(a, b): rng.normal() for a, b in itertools.combinations(range(7), 2)}, 0, "SPIN")
    ss = GreedySampler().sample(bqm, cardinality=3)
    s = ss.first.sample
    assert sum(v == 1 for v in s.values()) == 3
    for i, jj in itertools.product(range(7), range(7)):
        if s[i] == 1 and s[jj] == -1:
            t = dict(s)
            t[i], t[jj] = -1, 1
            assert bqm.energy(t) >= ss.first.energy - 1e-12


def test_dimod_api_composites_cqm_and_empty():
    assert_sampler_api(GreedySampler())
    assert len(GreedySampler().sample(dimod.BinaryQuadraticModel("BINARY"))) == 1
    bqm = dimod.BinaryQuadraticModel({"a": -1, "b": 1}, {("a", "b"): -0.5}, 0, "SPIN")
    tracked = dimod.TrackingComposite(GreedySampler())
    assert tracked.sample(bqm).first.energy == pytest.approx(dimod.ExactSolver().sample(bqm).first.energy)
    from dwave.preprocessing import SpinReversalTransformComposite

    srt = SpinReversalTransformComposite(GreedySampler())
    assert len(srt.sample(bqm, num_spin_reversal_transforms=2)) == 2
    rng = np.random.default_rng(6)
    h, j = explanation_like(rng, 1, 10)
    p = FeatureSelectionProblem(h[0], j[0], k=3)
    ss = GreedySampler().sample_cqm(p.to_cqm())
    assert all(ss.record.is_feasible)


def test_bad_input():
    bqm = dimod.BinaryQuadraticModel({"a": 1.0, "b": 1.0}, {}, 0, "BINARY")
    with pytest.raises(ValueError, match=r"cardinality: expected an integer in \[0, 2\], got 3"):
        GreedySampler().sample(bqm, cardinality=3)
    with pytest.raises(TypeError, match="cardinality: expected an integer"):
        GreedySampler().sample(bqm, cardinality=1.5)
    with pytest.raises(ValueError, match="bqm: expected finite biases"):
        GreedySampler().sample(dimod.BinaryQuadraticModel({"a": float("inf")}, {}, 0, "BINARY"))
    with pytest.raises(ValueError, match="q: expected finite biases"):
        greedy_descent(np.full((1, 2, 2), np.nan), np.zeros(1))
    with pytest.raises(ValueError, match=r"num_reads: expected an integer in \[1, 10000000\], got 0"):
        qfsel.solve(FeatureSelectionProblem([1.0], [[0.0]]), sampler="greedy", num_reads=0)


@load_sampler_bqm_tests(GreedySampler)
class TestGreedySamplerConformance(unittest.TestCase):
    pass


@pytest.mark.parametrize("big", [1e10, 1e12, 1e14])
def test_a_one_flip_improvement_beside_a_huge_coefficient_is_taken(big):
    # Issue 8: the descent's tolerance scaled with the largest coefficient (3 at 1e12) and
    # ignored the -1 of variable 2.
    bqm = dimod.BinaryQuadraticModel({0: big, 1: 0.0, 2: -1.0}, {(0, 1): -0.5}, 0, "BINARY")
    assert GreedySampler().sample(bqm).first.energy == -1.0
    bqm = dimod.BinaryQuadraticModel({0: -big, 1: 0.0, 2: -1.0, 3: 0.5}, {(0, 1): -0.5, (0, 3): 1.0}, 0, "BINARY")
    assert GreedySampler().sample(bqm).first.energy == -big - 1.5
    assert GreedySampler().sample(bqm, cardinality=3).first.energy == -big - 1.5
