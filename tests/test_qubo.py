"""FeatureSelectionProblem / ProblemBatch: formulas by hand, dimod agreement, validation."""

from __future__ import annotations

import itertools

import dimod
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import qfsel
from qfsel import FeatureSelectionProblem, ProblemBatch

from .conftest import explanation_like


def hand_energy(h, j, beta, x):
    x = np.asarray(x, dtype=float)
    return -beta * h @ x + (1 - beta) * sum(j[a, b] * x[a] * x[b] for a in range(len(h)) for b in range(a + 1, len(h)))


def all_states(n):
    return np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.uint8)


@st.composite
def problems(draw, max_k=7, with_k=None):
    n = draw(st.integers(1, max_k))
    h = draw(hnp.arrays(np.float64, n, elements=st.floats(-2, 2, allow_nan=False, width=32)))
    upper = draw(hnp.arrays(np.float64, (n, n), elements=st.floats(-2, 2, allow_nan=False, width=32)))
    j = np.triu(upper, 1)
    j = j + j.T
    beta = draw(st.floats(0, 1))
    if with_k is None:
        k = draw(st.one_of(st.none(), st.integers(1, n)))
    else:
        k = draw(st.integers(1, n)) if with_k else None
    return FeatureSelectionProblem(h, j, beta=beta, k=k)


def test_energy_by_hand():
    h = np.array([1.0, 0.5, 0.25])
    j = np.array([[0, 0.4, 0.2], [0.4, 0, 0.6], [0.2, 0.6, 0]])
    p = FeatureSelectionProblem(h, j, beta=0.7)
    for x in all_states(3):
        assert p.energy(x) == pytest.approx(hand_energy(h, j, 0.7, x), abs=1e-12)
    # (1,1,1): -0.7 * 1.75 + 0.3 * 1.2
    assert p.energy([1, 1, 1]) == pytest.approx(-1.225 + 0.36)


def test_qubo_convention_by_hand():
    h = np.array([1.0, 0.5])
    j = np.array([[0, 0.4], [0.4, 0]])
    q, off = FeatureSelectionProblem(h, j, beta=0.5, k=1, penalty=2.0).qubo()
    # diag: -beta h + lambda (1 - 2k); pair: (1-beta) J + 2 lambda; offset lambda k^2
    np.testing.assert_allclose(q, [[-0.5 - 2.0, 0.2 + 4.0], [0.0, -0.25 - 2.0]])
    assert off == 2.0


@given(problems())
def test_energies_equal_dimod(p):
    states = all_states(p.num_variables)
    bqm = p.to_bqm()
    ours = p.energy(states, include_penalty=p.k is not None)
    np.testing.assert_allclose(ours, bqm.energies((states, list(range(p.num_variables)))), atol=1e-9)
    # objective energies equal the CQM objective
    cqm = p.to_cqm()
    np.testing.assert_allclose(p.energy(states), cqm.objective.energies((states, list(range(p.num_variables)))), atol=1e-9)


@given(problems())
def test_ising_form_equals_qubo(p):
    h, j, off = p.to_ising()
    states = all_states(p.num_variables)
    spins = 2.0 * states - 1.0
    ising = spins @ h + np.einsum("mi,ij,mj->m", spins, j, spins) + off
    np.testing.assert_allclose(ising, p.energy(states, include_penalty=p.k is not None), atol=1e-9)
    assert np.all(np.tril(j) == 0)


@given(problems(with_k=True))
def test_automatic_penalty_makes_every_minimiser_feasible(p):
    states = all_states(p.num_variables)
    e = p.energy(states, include_penalty=True)
    best = e.min()
    minimisers = states[e <= best + 1e-9 * max(1.0, abs(best))]
    assert np.all(minimisers.sum(axis=1) == p.k)
    # ... and those are exactly the constrained optimum
    feasible = states.sum(axis=1) == p.k
    assert best == pytest.approx(p.energy(states[feasible]).min(), abs=1e-9)


def test_automatic_penalty_is_not_needlessly_large():
    rng = np.random.default_rng(0)
    h, j = explanation_like(rng, 1, 40)
    p = FeatureSelectionProblem(h[0], j[0], k=5)
    bound = max(0.7 * h[0].max(), (-0.7 * h[0] + 0.3 * j[0].sum(axis=1)).max())
    assert bound < p.penalty <= bound * (1 + 1e-5) + 1e-5


@given(st.integers(1, 5), st.integers(1, 6), st.booleans(), st.integers(0, 2**32 - 1))
def test_batch_equals_problems(b, n, with_k, seed):
    rng = np.random.default_rng(seed)
    h, j = explanation_like(rng, b, n)
    k = min(2, n) if with_k else None
    batch = ProblemBatch(h, j, beta=0.6, k=k)
    q, off = batch.qubo()
    states = rng.integers(0, 2, size=(b, 3, n)).astype(np.uint8)
    e = batch.energy(states, include_penalty=True)
    for i in range(b):
        p = FeatureSelectionProblem(h[i], j[i], beta=0.6, k=k)
        qi, oi = p.qubo()
        np.testing.assert_array_equal(q[i], qi)
        assert off[i] == oi
        np.testing.assert_allclose(e[i], p.energy(states[i], include_penalty=True))
        assert batch[i].penalty == p.penalty
    assert len(ProblemBatch.from_problems([batch[i] for i in range(b)])) == b


def test_is_feasible_and_cqm_constraint():
    p = FeatureSelectionProblem([1.0, 1.0, 1.0], np.zeros((3, 3)), k=2)
    assert p.is_feasible([1, 1, 0]) and not p.is_feasible([1, 1, 1])
    np.testing.assert_array_equal(p.is_feasible(all_states(3)), all_states(3).sum(1) == 2)
    cqm = p.to_cqm()
    assert cqm.check_feasible({0: 1, 1: 1, 2: 0}) and not cqm.check_feasible({0: 1, 1: 0, 2: 0})
    assert FeatureSelectionProblem([1.0], [[0.0]]).is_feasible([0])


def test_bisect_beta_reaches_k():
    rng = np.random.default_rng(3)
    h, j = explanation_like(rng, 1, 10)
    p = FeatureSelectionProblem(h[0], j[0])
    for k in (2, 4):
        beta, x = qfsel.bisect_beta(p, k)
        assert x.sum() == k
        assert 0 < beta < 1
        sol = qfsel.solve(FeatureSelectionProblem(h[0], j[0], beta=beta), sampler="exact")
        assert sol.num_selected[0] == k


def test_bisect_beta_bad_arguments_are_named():
    """A non-problem was an AttributeError; a wrong-sized solve_fn result was accepted silently."""
    p = FeatureSelectionProblem([1.0, 0.9, 0.4], [[0, 0.9, 0.1], [0.9, 0, 0.2], [0.1, 0.2, 0]])
    with pytest.raises(TypeError, match="problem: expected a FeatureSelectionProblem, got list"):
        qfsel.bisect_beta([1.0, 0.9], 1)
    with pytest.raises(TypeError, match="solve_fn: expected a callable"):
        qfsel.bisect_beta(p, 1, solve_fn=3)
    with pytest.raises(ValueError, match=r"solve_fn's result: expected shape \(3\)"):
        qfsel.bisect_beta(p, 2, solve_fn=lambda q: np.array([1, 1]))
    with pytest.raises(ValueError, match="0s and 1s"):
        qfsel.bisect_beta(p, 2, solve_fn=lambda q: np.array([1, 2, 0]))
    with pytest.raises(TypeError, match="solve_fn's result"):
        qfsel.bisect_beta(p, 2, solve_fn=lambda q: None)
    with pytest.raises(ValueError, match=r"k: expected an integer in \[1, 3\]"):
        qfsel.bisect_beta(p, 4)
    with pytest.raises(qfsel.InfeasibleError, match="exactly 2"):  # J = 0: all or nothing
        qfsel.bisect_beta(FeatureSelectionProblem([1.0, 1.0, 1.0], np.zeros((3, 3))), 2)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "h, j, kwargs, exc, words",
    [
        ([1.0, np.nan], np.zeros((2, 2)), {}, ValueError, "relevance: expected finite"),
        ([1.0, 2.0], [[0, np.inf], [np.inf, 0]], {}, ValueError, "redundancy: expected finite"),
        ([1.0, 2.0], np.zeros((2, 3)), {}, ValueError, "redundancy: expected a square"),
        ([1.0, 2.0], np.zeros((3, 3)), {}, ValueError, "redundancy: expected shape (2, 2)"),
        ([1.0, 2.0], [[0, 1], [2, 0]], {}, ValueError, "redundancy: expected a symmetric"),
        ([1.0, 2.0], [[1, 0], [0, 0]], {}, ValueError, "zero diagonal"),
        ([[1.0, 2.0]], np.zeros((2, 2)), {}, ValueError, "relevance: expected a 1-dimensional"),
        (["a", "b"], np.zeros((2, 2)), {}, TypeError, "relevance: expected an array of real numbers"),
        ([1.0, 2.0], np.zeros((2, 2)), {"beta": 1.5}, ValueError, "beta: expected a real number in [0, 1]"),
        ([1.0, 2.0], np.zeros((2, 2)), {"beta": "0.7"}, TypeError, "beta"),
        ([1.0, 2.0], np.zeros((2, 2)), {"k": 0}, ValueError, "k: expected an integer with 1 <= k <= K = 2"),
        ([1.0, 2.0], np.zeros((2, 2)), {"k": 3}, ValueError, "k: expected"),
        ([1.0, 2.0], np.zeros((2, 2)), {"k": 1.5}, TypeError, "k: expected an integer"),
        ([1.0, 2.0], np.zeros((2, 2)), {"k": 1, "penalty": -1.0}, ValueError, "penalty: expected non-negative"),
        ([1.0, 2.0], np.zeros((2, 2)), {"penalty": 1.0}, ValueError, "penalty: only meaningful together with k"),
    ],
)
def test_bad_input_names_the_argument(h, j, kwargs, exc, words):
    with pytest.raises(exc, match=None) as info:
        FeatureSelectionProblem(h, j, **kwargs)
    assert words in str(info.value)


def test_bad_states():
    p = FeatureSelectionProblem([1.0, 2.0], np.zeros((2, 2)))
    with pytest.raises(ValueError, match="x: expected binary values 0/1, got 2"):
        p.energy([0, 2])
    with pytest.raises(ValueError, match=r"x: expected shape"):
        p.energy([0, 1, 1])
    batch = ProblemBatch(np.ones((2, 2)), np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=r"states: expected shape \(2, \[M,\] 2\)"):
        batch.energy(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"redundancy: expected shape \(2, 2, 2\)"):
        ProblemBatch(np.ones((2, 2)), np.zeros((3, 2, 2)))
    with pytest.raises(IndexError, match="index"):
        batch[5]


def test_penalty_overflow_is_reported_not_propagated():
    big = np.full(5, 1e308)
    j = np.full((5, 5), 1e308)
    np.fill_diagonal(j, 0)
    with pytest.raises(ValueError, match="automatic cardinality penalty of problem 0 overflows float64"):
        FeatureSelectionProblem(big, j, k=2)
    # without k there is no penalty and the (finite) problem is accepted
    assert FeatureSelectionProblem(big, j).num_variables == 5


def test_solve_refuses_unknown_parameters_listing_the_accepted_ones():
    p = FeatureSelectionProblem([1.0, 2.0], np.zeros((2, 2)))
    for name in qfsel.available_solvers():
        with pytest.raises(TypeError, match=rf"foo: not a parameter of sampler '{name}'; it takes \[.*'num_threads'"):
            qfsel.solve(p, name, foo=1)


def test_batch_accepts_a_scalar_penalty_for_every_problem():
    # Regression: as_array turned a 0-d penalty into shape (1,), so a number was refused for B > 1.
    rng = np.random.default_rng(0)
    h = rng.random((3, 5))
    j = rng.random((3, 5, 5))
    j = (j + j.transpose(0, 2, 1)) / 2
    j[:, np.arange(5), np.arange(5)] = 0
    batch = ProblemBatch(h, j, k=2, penalty=0.25)
    np.testing.assert_array_equal(batch.penalty, [0.25, 0.25, 0.25])
    with pytest.raises(ValueError, match="penalty: expected non-negative"):
        ProblemBatch(h, j, k=2, penalty=-1.0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ProblemBatch(np.broadcast_to(np.zeros(1), (2**40, 1)), np.broadcast_to(np.zeros((1, 1)), (2**40, 1, 1))),
        lambda: FeatureSelectionProblem(np.zeros(2**20), np.broadcast_to(np.zeros((1, 1)), (2**20, 2**20))),
        lambda: ProblemBatch(np.zeros((2**16, 2**12)), np.broadcast_to(np.zeros((1, 1)), (2**16, 2**12, 2**12))),
    ],
)
def test_huge_broadcast_views_are_refused_before_any_copy(make):
    # Regression: these tried to allocate 8 TiB (MemoryError) instead of a ValueError naming the argument.
    with pytest.raises(ValueError, match=r"(relevance|redundancy): expected at most 4294967296 elements"):
        make()


def test_batch_iterates_and_refuses_out_of_range_indices_with_index_error():
    h = np.arange(1.0, 25.0).reshape(3, 8)
    batch = ProblemBatch(h, np.zeros((3, 8, 8)), beta=0.7)
    problems = list(batch)  # iteration stops at the first IndexError
    assert len(problems) == 3
    np.testing.assert_array_equal(problems[2].relevance, batch[-1].relevance)
    with pytest.raises(IndexError, match=r"index: expected an integer in \[-3, 2\], got 3"):
        batch[3]
    with pytest.raises(TypeError, match="index: expected an integer"):
        batch[1.5]


# ---------------------------------------------------------------- the default copy (issue 9)
@pytest.mark.parametrize("b, n", [(3, 5), (40, 64), (4, 130)])  # small (one thread) and parallel passes
def test_default_batch_copy_is_independent_of_the_callers_arrays(b, n):
    h, j = explanation_like(np.random.default_rng(n), b, n)
    h0, j0 = h.copy(), j.copy()
    batch = ProblemBatch(h, j, beta=0.7, k=2)
    assert not np.shares_memory(batch.relevance, h) and not np.shares_memory(batch.redundancy, j)
    np.testing.assert_array_equal(batch.relevance, h0)
    np.testing.assert_array_equal(batch.redundancy, j0)
    q0, off0 = batch.qubo()
    h[:] = 99.0
    j[:] = -7.0  # the caller reuses its buffers: the batch must not see it
    np.testing.assert_array_equal(batch.relevance, h0)
    np.testing.assert_array_equal(batch.redundancy, j0)
    q1, off1 = batch.qubo()
    np.testing.assert_array_equal(q1, q0)
    np.testing.assert_array_equal(off1, off0)
    # copy=False is documented to use float64 C-contiguous input in place
    shared = ProblemBatch(h0, j0, beta=0.7, k=2, copy=False)
    assert np.shares_memory(shared.redundancy, j0)
    # inputs that need a conversion (float32, non-contiguous) are copied with the right values
    conv = ProblemBatch(h0.astype(np.float32), np.asfortranarray(j0.astype(np.float32)), beta=0.7)
    np.testing.assert_array_equal(conv.redundancy, j0.astype(np.float32).astype(np.float64))
    assert conv.redundancy.flags.c_contiguous and conv.redundancy.dtype == np.float64


def _refused(make, **kwargs):
    with pytest.raises(ValueError) as info:
        make(**kwargs)
    return str(info.value)


@pytest.mark.parametrize("b, n", [(3, 5), (40, 64)])
@pytest.mark.parametrize(
    "fault, words",
    [
        ("h_nan", "relevance: expected finite values, got nan at index (2, 3)"),
        ("j_inf", "redundancy: expected finite values, got inf at index (2, 1, 3)"),
        ("asym", "redundancy: expected a symmetric matrix, got 0.25 at (2, 1, 3) but 0.5 at its transpose"),
        ("diag", "redundancy: expected a zero diagonal, got 1.5 at index (2, 3, 3)"),
    ],
)
def test_every_refused_input_is_refused_with_the_same_message_with_or_without_copy(b, n, fault, words):
    h, j = explanation_like(np.random.default_rng(1), b, n)
    j[2, 1, 3], j[2, 3, 1] = 0.25, 0.5 if fault == "asym" else 0.25
    if fault == "h_nan":
        h[2, 3] = np.nan
    elif fault == "j_inf":
        j[2, 1, 3] = np.inf
    elif fault == "diag":
        j[2, 3, 3] = 1.5
    h_before, j_before = h.copy(), j.copy()
    for kwargs in ({}, {"k": 2}, {"k": 2, "penalty": 1.0}):
        messages = {
            _refused(lambda **kw: ProblemBatch(h, j, **kw), **kwargs),
            _refused(lambda **kw: ProblemBatch(h, j, copy=False, **kw), **kwargs),
        }
        assert messages == {words}, (kwargs, messages)
    # the same problem alone reports the same fault without the batch index
    single = _refused(lambda: FeatureSelectionProblem(h[2], j[2], beta=0.7))
    assert single == words.replace("(2, 3)", "(3,)").replace("(2, ", "(")
    # the caller's arrays are left as they were: the refusal wrote nothing into them
    np.testing.assert_array_equal(h, h_before)
    np.testing.assert_array_equal(j, j_before)
