"""The exhaustive solvers against dimod.ExactSolver and brute force; limits; ExactSampler API."""

from __future__ import annotations

import itertools
import unittest
from fractions import Fraction

import dimod
import numpy as np
import pytest
from dimod.testing import load_sampler_bqm_tests
from hypothesis import given
from hypothesis import strategies as st

import qfsel
from qfsel import FeatureSelectionProblem, ProblemBatch, ProblemTooLargeError
from qfsel.samplers import ExactSampler

from .conftest import explanation_like
from .test_qubo import problems


def _exact_energy(q: np.ndarray, x) -> Fraction:
    """The real-number sum of the upper-triangle coefficients of state ``x`` (offset left out)."""
    ones = np.flatnonzero(x)
    return sum((Fraction(float(q[a, b])) for i, a in enumerate(ones) for b in ones[i:]), Fraction(0))


def _ground_set(ss: dimod.SampleSet, tol=1e-9):
    e0 = ss.first.energy
    return {tuple(int(s[v]) for v in sorted(ss.variables)) for s, e in ss.data(["sample", "energy"]) if e <= e0 + tol}


@given(problems())
def test_exact_solution_equals_dimod_exact_solver(p):
    sol = qfsel.solve(p, sampler="exact")
    states = np.array(list(itertools.product([0, 1], repeat=p.num_variables)), dtype=np.uint8)
    e = p.energy(states)
    if p.k is not None:
        e = np.where(states.sum(1) == p.k, e, np.inf)
    best = e.min()
    assert sol.energies[0] == pytest.approx(best, abs=1e-9)
    # Documented precision: the ground states are exactly the states of least exact energy.
    q, off = p.qubo(include_penalty=False)
    exact = [_exact_energy(q, s) if np.isfinite(v) else None for s, v in zip(states, e)]
    least = min(v for v in exact if v is not None)
    want = {tuple(s) for s, v in zip(states, exact) if v == least}
    got = {tuple(int(v) for v in s) for s in sol.info["ground_states"][0]}
    assert got == want
    assert sol.info["num_ground_states"][0] == len(got)
    assert sol.feasible[0]
    # and against dimod's ExactSolver on the BQM (penalty form when k is set)
    ref = dimod.ExactSolver().sample(p.to_bqm())
    assert p.energy(sol.states[0], include_penalty=p.k is not None) == pytest.approx(ref.first.energy, abs=1e-9)


def random_bqm(rng, n, vartype, labels=None):
    lin = {v: rng.normal() for v in (labels or range(n))}
    vs = list(lin)
    quad = {(vs[a], vs[b]): rng.integers(-2, 3) for a in range(n) for b in range(a + 1, n) if rng.random() < 0.7}
    return dimod.BinaryQuadraticModel(lin, quad, rng.normal(), vartype)


@pytest.mark.parametrize("vartype", [dimod.BINARY, dimod.SPIN])
@pytest.mark.parametrize("n", [1, 4, 9])
def test_sampler_ground_states_equal_exact_solver(vartype, n):
    rng = np.random.default_rng(n)
    for trial in range(5):
        bqm = random_bqm(rng, n, vartype, labels=[f"v{i}" for i in range(n)][::-1])
        ss = ExactSampler().sample(bqm)
        ref = dimod.ExactSolver().sample(bqm)
        assert ss.vartype is vartype
        assert set(ss.variables) == set(bqm.variables)
        assert ss.first.energy == pytest.approx(ref.first.energy)
        assert _ground_set(ss) == _ground_set(ref)
        assert ss.info["num_ground_states"] == len(_ground_set(ref))
        np.testing.assert_allclose(ss.record.energy, bqm.energies(ss))


@pytest.mark.parametrize("vartype", [dimod.BINARY, dimod.SPIN])
def test_sampler_cardinality(vartype):
    rng = np.random.default_rng(7)
    bqm = random_bqm(rng, 8, vartype)
    ss = ExactSampler().sample(bqm, cardinality=3)
    up = 1
    ref = dimod.ExactSolver().sample(bqm)
    feas = [(s, e) for s, e in ref.data(["sample", "energy"]) if sum(v == up for v in s.values()) == 3]
    best = min(e for _, e in feas)
    assert ss.first.energy == pytest.approx(best)
    for s in ss.samples():
        assert sum(v == up for v in s.values()) == 3


def test_sample_cqm_with_cardinality():
    rng = np.random.default_rng(1)
    h, j = explanation_like(rng, 1, 9)
    p = FeatureSelectionProblem(h[0], j[0], k=3)
    ss = ExactSampler().sample_cqm(p.to_cqm())
    assert all(ss.record.is_feasible)
    assert ss.first.energy == pytest.approx(qfsel.solve(p, sampler="exact").energies[0])
    bad = dimod.ConstrainedQuadraticModel()
    bad.add_variables("BINARY", ["a", "b"])
    bad.add_constraint_from_iterable([("a", 1.0)], "<=", rhs=1)
    with pytest.raises(ValueError, match="cqm: expected exactly one constraint"):
        ExactSampler().sample_cqm(bad)


def test_degenerate_ground_states_all_returned():
    # Zero relevance and redundancy: every state has energy 0 (2^6 ground states), k=3 gives C(6,3).
    p = FeatureSelectionProblem(np.zeros(6), np.zeros((6, 6)))
    sol = qfsel.solve(p, sampler="exact")
    assert sol.info["num_ground_states"][0] == 64 and len(sol.info["ground_states"][0]) == 64
    p3 = FeatureSelectionProblem(np.zeros(6), np.zeros((6, 6)), k=3)
    sol3 = qfsel.solve(p3, sampler="exact", max_ground_states=5)
    assert sol3.info["num_ground_states"][0] == 20 and len(sol3.info["ground_states"][0]) == 5


def test_batch_equals_one_by_one_and_threads_do_not_matter():
    rng = np.random.default_rng(5)
    h, j = explanation_like(rng, 12, 18)
    for k in (None, 4):
        batch = ProblemBatch(h, j, k=k)
        a = qfsel.solve(batch, sampler="exact", num_threads=1)
        b = qfsel.solve(batch, sampler="exact", num_threads=2)
        np.testing.assert_array_equal(a.states, b.states)
        for i in range(len(batch)):
            one = qfsel.solve(batch[i], sampler="exact")
            np.testing.assert_array_equal(one.states[0], a.states[i])
            assert one.energies[0] == a.energies[i]


def test_large_single_problem_uses_parallel_tasks():
    rng = np.random.default_rng(9)
    h, j = explanation_like(rng, 1, 22)
    p = FeatureSelectionProblem(h[0], j[0])
    sol = qfsel.solve(p, sampler="exact")
    assert sol.info["states_visited"][0] == 2**22
    # the optimum is a local minimum under every single flip
    x = sol.states[0].copy()
    for i in range(22):
        y = x.copy()
        y[i] ^= 1
        assert p.energy(y) >= sol.energies[0] - 1e-12


def test_too_large_is_refused_with_the_limit():
    h = np.ones(31)
    with pytest.raises(ProblemTooLargeError, match="at most n = 30"):
        qfsel.solve(FeatureSelectionProblem(h, np.zeros((31, 31))), sampler="exact")
    h = np.ones(300)
    with pytest.raises(ProblemTooLargeError, match=r"C\(300, 100\).*exceeds the limit of 2147483648"):
        qfsel.solve(FeatureSelectionProblem(h, np.zeros((300, 300)), k=100), sampler="exact")
    with pytest.raises(ValueError, match="limit of 10 subsets"):
        qfsel.solve(FeatureSelectionProblem(np.ones(6), np.zeros((6, 6)), k=3), sampler="exact", max_subsets=10)
    bqm = dimod.BinaryQuadraticModel({i: 1.0 for i in range(31)}, {}, 0, "BINARY")
    with pytest.raises(ProblemTooLargeError):
        ExactSampler().sample(bqm)


def test_sampler_bad_input():
    bqm = dimod.BinaryQuadraticModel({"a": 1.0, "b": 1.0}, {}, 0, "BINARY")
    with pytest.raises(ValueError, match=r"cardinality: expected an integer in \[0, 2\], got 3"):
        ExactSampler().sample(bqm, cardinality=3)
    with pytest.raises(TypeError, match="cardinality: expected an integer"):
        ExactSampler().sample(bqm, cardinality="2")
    nan = dimod.BinaryQuadraticModel({"a": float("nan")}, {}, 0, "BINARY")
    with pytest.raises(ValueError, match="bqm: expected finite biases"):
        ExactSampler().sample(nan)
    with pytest.raises(ValueError, match="sampler: expected one of"):
        qfsel.solve(FeatureSelectionProblem([1.0], [[0.0]]), sampler="nope")
    with pytest.raises(TypeError, match="problem: expected a FeatureSelectionProblem"):
        qfsel.solve(np.ones(3), sampler="exact")


def test_empty_bqm_and_composites():
    empty = dimod.BinaryQuadraticModel("SPIN")
    ss = ExactSampler().sample(empty)
    assert len(ss) == 1 and ss.vartype is dimod.SPIN and ss.info["num_ground_states"] == 1
    bqm = dimod.BinaryQuadraticModel({"a": -1, "b": 1}, {("a", "b"): -0.5}, 0, "SPIN")
    tracked = dimod.TrackingComposite(ExactSampler())
    ss = tracked.sample(bqm)
    assert ss.first.energy == pytest.approx(dimod.ExactSolver().sample(bqm).first.energy)
    from dwave.preprocessing import SpinReversalTransformComposite

    srt = SpinReversalTransformComposite(ExactSampler())
    assert srt.sample(bqm, num_spin_reversal_transforms=2).first.energy == pytest.approx(ss.first.energy)


def test_dimod_sampler_routed_through_solve():
    rng = np.random.default_rng(4)
    h, j = explanation_like(rng, 3, 7)
    batch = ProblemBatch(h, j, k=3)
    ours = qfsel.solve(batch, sampler="exact")
    theirs = qfsel.solve(batch, sampler=dimod.ExactSolver())
    np.testing.assert_allclose(theirs.energies, ours.energies)
    assert theirs.feasible.all()


# dimod's own conformance tests for samplers
@load_sampler_bqm_tests(ExactSampler)
class TestExactSamplerConformance(unittest.TestCase):
    pass


def test_ctrl_c_interrupts_a_long_exhaustive_search_promptly():
    import _thread
    import threading
    import time

    rng = np.random.default_rng(8)
    h, j = explanation_like(rng, 1, 30)  # 2^30 states: seconds of work
    p = FeatureSelectionProblem(h[0], j[0])
    timer = threading.Timer(0.3, _thread.interrupt_main)
    t0 = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        qfsel.solve(p, sampler="exact")
    assert time.perf_counter() - t0 < 2.0
    timer.join()
    # a batch of mid-sized problems is interruptible too
    h, j = explanation_like(rng, 64, 24)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    t0 = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        qfsel.solve(ProblemBatch(h, j), sampler="exact")
    assert time.perf_counter() - t0 < 2.0
    timer.join()


def test_tiny_scale_problem_keeps_its_true_ground_state():
    # Regression: an absolute tolerance (1e-13) made every state of a |Q| ~ 1e-40 problem a "ground state".
    import dimod

    from qfsel.samplers import ExactSampler

    rng = np.random.default_rng(0)
    n = 10
    q = np.triu(rng.normal(size=(n, n)))
    xs = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(float)
    brute = float(np.min(np.einsum("si,ij,sj->s", xs, q, xs)))
    bqm = dimod.BQM.from_qubo({(i, j): q[i, j] * 1e-40 for i in range(n) for j in range(i, n)})
    ss = ExactSampler().sample(bqm)
    assert ss.first.energy / 1e-40 == pytest.approx(brute, rel=1e-9)
    assert len(ss) == 1


def test_wide_spread_of_coefficients_is_solved_exactly():
    # Issue 8: a 1e10 relevance widened the ground-state tolerance to ~1.
    sol = qfsel.solve(FeatureSelectionProblem([1e10, 1.0, 0.5], np.zeros((3, 3))), "exact")
    assert sol.selected(0).tolist() == [0, 1, 2]
    assert sol.info["num_ground_states"][0] == 1
    sol = qfsel.solve(FeatureSelectionProblem([1e10, 1, 0.5, 0.3], np.zeros((4, 4)), k=3), "exact")
    assert sol.selected(0).tolist() == [0, 1, 2]
    ss = ExactSampler().sample(dimod.BQM({0: -1e10, 1: -1, 2: -0.5}, {}, 0, "BINARY"))
    assert len(ss) == 1 and ss.first.sample == {0: 1, 1: 1, 2: 1}


@pytest.mark.parametrize("spread", [1e3, 1e6, 1e9])
def test_ground_states_never_mix_energies_up_to_a_1e9_spread(spread):
    rng = np.random.default_rng(int(np.log10(spread)))
    for trial in range(6):
        n = 9
        # Coefficients near the top of the spread, and one free variable of size 1 below.
        top = np.log10(spread)
        h = 10 ** rng.uniform(top - 1, top, n) * rng.choice([-1, 1], n)
        j = np.triu(10 ** rng.uniform(top - 1, top, (n, n)) * rng.choice([-1, 1], (n, n)), 1)
        h[1] = h[0]  # two alike variables: a degenerate optimum is possible
        j[0, 2:] = j[1, 2:]
        h[-1], j[:, -1] = -1.0, 0.0  # a free variable of the smallest size: it belongs to every optimum
        bqm = dimod.BQM(dict(enumerate(h)), {(a, b): j[a, b] for a in range(n) for b in range(a + 1, n)}, 0.0, "BINARY")
        q = np.diag(h) + j
        states = np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.uint8)
        approx = np.einsum("si,ij,sj->s", states, q, states)
        near = states[approx <= approx.min() + 1e-9 * np.abs(q).sum()]  # exact sums only where it matters
        exact = [_exact_energy(q, s) for s in near]
        want = {tuple(s) for s, v in zip(near, exact) if v == min(exact)}
        ss = ExactSampler().sample(bqm)
        got = {tuple(int(r[v]) for v in range(n)) for r in ss.samples()}
        assert got == want, trial
        assert ss.info["num_ground_states"] == len(want)


def test_non_finite_coefficients_after_copy_false_are_a_clear_error():
    h = np.ones((2, 4))
    batch = ProblemBatch(h, np.zeros((2, 4, 4)), copy=False)
    h[1, 2] = np.nan  # changed after construction
    with pytest.raises(ValueError, match="expected finite coefficients"):
        qfsel.solve(batch, "exact")
