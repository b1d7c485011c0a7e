"""Tabu search against the exhaustive oracle; determinism, feasibility, dimod interface, bad input."""

from __future__ import annotations

import _thread
import itertools
import threading
import time
import unittest

import dimod
import numpy as np
import pytest
from dimod.testing import load_sampler_bqm_tests
from dimod.testing.asserts import assert_sampler_api
from hypothesis import given
from hypothesis import strategies as st

import qfsel
from qfsel import FeatureSelectionProblem, ProblemBatch
from qfsel.samplers.tabu import TabuSampler, tabu_search

from .conftest import explanation_like, hard


def random_bqm(rng, n, vartype, labels=None):
    lin = {v: rng.normal() for v in (labels or range(n))}
    vs = list(lin)
    quad = {(vs[a], vs[b]): rng.normal() for a in range(n) for b in range(a + 1, n) if rng.random() < 0.6}
    return dimod.BinaryQuadraticModel(lin, quad, rng.normal(), vartype)


def brute_best(bqm, k=None):
    ss = dimod.ExactSolver().sample(bqm)
    up = 1
    if k is None:
        return ss.first.energy
    return min(e for s, e in ss.data(["sample", "energy"]) if sum(v == up for v in s.values()) == k)


@pytest.mark.parametrize("family", [explanation_like, hard])
@pytest.mark.parametrize("k", [None, 4])
def test_best_of_few_reads_is_the_ground_energy(family, k):
    rng = np.random.default_rng(2024 if k is None else 7)
    h, j = family(rng, 24, 14)
    batch = ProblemBatch(h, j, k=k)
    exact = qfsel.solve(batch, sampler="exact")
    sol = qfsel.solve(batch, sampler="tabu", num_reads=3, seed=5)
    np.testing.assert_allclose(sol.energies, exact.energies, atol=1e-9)
    assert sol.feasible.all()
    assert sol.sampler == "tabu"
    assert sol.info["read_energies"].shape == (24, 3)
    assert set(sol.timing) >= {"total_s", "kernel_s"}


@pytest.mark.parametrize("vartype", [dimod.BINARY, dimod.SPIN])
def test_general_bqms_against_exact_solver(vartype):
    rng = np.random.default_rng(11)
    for trial in range(15):
        n = int(rng.integers(2, 12))
        bqm = random_bqm(rng, n, vartype, labels=[f"x{i}" for i in range(n)][::-1])
        ss = TabuSampler().sample(bqm, num_reads=4, seed=trial)
        assert ss.vartype is vartype and set(ss.variables) == set(bqm.variables)
        assert ss.first.energy == pytest.approx(brute_best(bqm), abs=1e-9)
        k = int(rng.integers(0, n + 1))
        ssk = TabuSampler().sample(bqm, num_reads=4, seed=trial, cardinality=k)
        assert ssk.first.energy == pytest.approx(brute_best(bqm, k), abs=1e-9)
        up = 1
        assert all(sum(v == up for v in s.values()) == k for s in ssk.samples())


def test_swap_samples_are_all_feasible_and_energies_exact():
    rng = np.random.default_rng(3)
    h, j = hard(rng, 3, 64)
    batch = ProblemBatch(h, j, k=8)
    q, off = batch.qubo(include_penalty=False)
    res = tabu_search(q, off, 8, num_reads=6, seed=1, num_iterations=300, return_read_states=True)
    assert (res["read_states"].sum(axis=2) == 8).all()
    np.testing.assert_allclose(res["read_energies"], batch.energy(res["read_states"]), rtol=0, atol=1e-10)
    np.testing.assert_allclose(res["energies"], res["read_energies"].min(axis=1))
    np.testing.assert_allclose(res["energies"], batch.energy(res["states"]), atol=1e-10)


def test_thread_count_and_chunking_do_not_change_results():
    rng = np.random.default_rng(8)
    h, j = hard(rng, 5, 48)
    for k in (None, 6):
        batch = ProblemBatch(h, j, k=k)
        q, off = batch.qubo(include_penalty=False)
        a = tabu_search(q, off, k, num_reads=4, seed=9, num_iterations=400, num_threads=1, return_read_states=True)
        b = tabu_search(q, off, k, num_reads=4, seed=9, num_iterations=400, num_threads=2, return_read_states=True)
        np.testing.assert_array_equal(a["read_states"], b["read_states"])
        np.testing.assert_array_equal(a["read_energies"], b["read_energies"])
        # problem b of a batch gets the same reads as when solved ... at index b (stream (seed, b, r))
        c = tabu_search(q[:2], off[:2], k, num_reads=4, seed=9, num_iterations=400, return_read_states=True)
        np.testing.assert_array_equal(a["read_states"][:2], c["read_states"])
        d = tabu_search(q, off, k, num_reads=4, seed=10, num_iterations=3, num_restarts=0, return_read_states=True)
        e = tabu_search(q, off, k, num_reads=4, seed=9, num_iterations=3, num_restarts=0, return_read_states=True)
        assert not np.array_equal(d["read_states"], e["read_states"])


def test_iteration_limit_timeout_and_threshold():
    rng = np.random.default_rng(1)
    h, j = hard(rng, 1, 200)
    q, off = ProblemBatch(h, j).qubo()
    res = tabu_search(q, off, None, num_reads=3, seed=0, num_iterations=57, num_restarts=10**9)
    assert res["num_iterations"] == 3 * 57
    t0 = time.perf_counter()
    res = tabu_search(q, off, None, num_reads=2, seed=0, timeout=40, num_restarts=10**12, num_threads=2)
    assert time.perf_counter() - t0 < 2.0
    assert res["num_restarts"] > 0
    # a threshold above any energy stops every read after its first improvement
    res = tabu_search(q, off, None, num_reads=2, seed=0, energy_threshold=1e9, num_restarts=10**9)
    assert res["num_restarts"] == 0


def test_ctrl_c_interrupts_promptly():
    rng = np.random.default_rng(2)
    h, j = hard(rng, 1, 300)
    q, off = ProblemBatch(h, j, k=10).qubo(include_penalty=False)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    t0 = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        tabu_search(q, off, 10, num_reads=4, seed=0, num_restarts=10**15)
    assert time.perf_counter() - t0 < 3.0
    timer.join()
    # The pool is free again: the next call runs normally.
    out = tabu_search(q, off, 10, num_reads=2, seed=0, num_restarts=0)
    assert np.all(out["states"].sum(axis=-1) == 10)


def test_initial_states_are_used():
    rng = np.random.default_rng(6)
    bqm = random_bqm(rng, 10, dimod.SPIN)
    init = rng.choice([-1, 1], size=(3, 10))
    ss = TabuSampler().sample(bqm, initial_states=(init, list(bqm.variables)), num_iterations=1, num_restarts=0, seed=3)
    assert len(ss) == 3
    # each read ends no higher than its start (it keeps its best state)
    start = np.sort(bqm.energies((init, list(bqm.variables))))
    assert (np.sort(ss.record.energy) <= start + 1e-12).all()
    # tile / none generators
    assert len(TabuSampler().sample(bqm, initial_states=(init, list(bqm.variables)), num_reads=7, initial_states_generator="tile", seed=1)) == 7
    with pytest.raises(ValueError, match="initial_states: expected at least num_reads = 5"):
        TabuSampler().sample(bqm, initial_states=(init, list(bqm.variables)), num_reads=5, initial_states_generator="none")
    # with a cardinality the start must have k spins up
    with pytest.raises(ValueError, match="initial_states: expected exactly cardinality = 2"):
        TabuSampler().sample(bqm, initial_states=(np.ones((1, 10)), list(bqm.variables)), cardinality=2)


def test_dimod_api_composites_and_empty():
    assert_sampler_api(TabuSampler())
    empty = dimod.BinaryQuadraticModel("SPIN")
    ss = TabuSampler().sample(empty)
    assert len(ss) == 1 and ss.vartype is dimod.SPIN and ss.first.energy == 0.0
    assert len(TabuSampler().sample(empty, num_reads=3)) == 3
    bqm = dimod.BinaryQuadraticModel({"a": -1, "b": 1, "c": 0.3}, {("a", "b"): -0.5, ("b", "c"): 1.5}, 0.2, "SPIN")
    ref = dimod.ExactSolver().sample(bqm).first.energy
    tracked = dimod.TrackingComposite(TabuSampler())
    ss = tracked.sample(bqm, num_reads=2, seed=4)
    assert ss.first.energy == pytest.approx(ref)
    assert tracked.input["num_reads"] == 2
    from dwave.preprocessing import SpinReversalTransformComposite

    srt = SpinReversalTransformComposite(TabuSampler())
    assert srt.sample(bqm, num_spin_reversal_transforms=2, seed=1).first.energy == pytest.approx(ref)
    ss = TabuSampler().sample_qubo({("a", "a"): -1.0, ("a", "b"): 2.0, ("b", "b"): -1.0}, num_reads=2)
    assert ss.first.energy == pytest.approx(-1.0) and ss.vartype is dimod.BINARY
    timing = ss.info["timing"]
    assert {"preprocessing_ns", "sampling_ns", "postprocessing_ns", "total_s"} <= set(timing)


def test_sample_cqm_with_cardinality():
    rng = np.random.default_rng(12)
    h, j = explanation_like(rng, 1, 12)
    p = FeatureSelectionProblem(h[0], j[0], k=4)
    ss = TabuSampler().sample_cqm(p.to_cqm(), num_reads=3, seed=2)
    assert all(ss.record.is_feasible)
    assert ss.first.energy == pytest.approx(qfsel.solve(p, sampler="exact").energies[0])


@given(
    n=st.integers(1, 9),
    seed=st.integers(0, 2**32 - 1),
    spin=st.booleans(),
    card=st.booleans(),
    iters=st.one_of(st.none(), st.integers(1, 20)),
)
def test_property_energies_equal_dimod_energies(n, seed, spin, card, iters):
    rng = np.random.default_rng(seed)
    bqm = random_bqm(rng, n, dimod.SPIN if spin else dimod.BINARY)
    k = int(rng.integers(0, n + 1)) if card else None
    ss = TabuSampler().sample(bqm, num_reads=3, seed=seed, num_iterations=iters, cardinality=k)
    np.testing.assert_allclose(ss.record.energy, bqm.energies(ss), rtol=0, atol=1e-9)
    if k is not None:
        up = 1
        assert all(sum(v == up for v in s.values()) == k for s in ss.samples())


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"num_reads": 0}, ValueError, r"num_reads: expected an integer in \[1, 10000000\], got 0"),
        ({"num_reads": 2.5}, TypeError, "num_reads: expected an integer"),
        ({"tenure": -1}, ValueError, r"tenure: expected an integer in \[0, 2\], got -1"),
        ({"tenure": 3}, ValueError, r"tenure: expected an integer in \[0, 2\], got 3"),
        ({"tenure": 1.0}, TypeError, "tenure: expected an integer"),
        ({"cardinality": 4}, ValueError, r"cardinality: expected an integer in \[0, 3\], got 4"),
        ({"timeout": 0}, ValueError, "timeout: expected None or a positive number of milliseconds, got 0"),
        ({"timeout": -5.0}, ValueError, "timeout: expected None or a positive number"),
        ({"timeout": "1"}, TypeError, "timeout: expected None or a positive number"),
        ({"num_iterations": 0}, ValueError, "num_iterations: expected an integer"),
        ({"seed": -1}, ValueError, "seed: expected an integer"),
        ({"initial_states_generator": "zeros"}, ValueError, "initial_states_generator: expected"),
        ({"initial_states": [[0, 1]]}, ValueError, "initial_states: expected states over the BQM's 3 variables"),
        ({"initial_states": [[0, 1, 2]]}, ValueError, r"initial_states: expected values in \(0, 1\)"),
        ({"energy_threshold": "low"}, TypeError, "energy_threshold: expected None or a real number"),
    ],
)
def test_bad_input(kwargs, exc, match):
    bqm = dimod.BinaryQuadraticModel({0: 1.0, 1: -1.0, 2: 0.5}, {(0, 1): 1.0}, 0, "BINARY")
    with pytest.raises(exc, match=match):
        TabuSampler().sample(bqm, **kwargs)


def test_bad_input_non_finite_and_spin_values():
    nan = dimod.BinaryQuadraticModel({"a": float("nan"), "b": 1.0}, {}, 0, "BINARY")
    with pytest.raises(ValueError, match="bqm: expected finite biases"):
        TabuSampler().sample(nan)
    spin = dimod.BinaryQuadraticModel({"a": 1.0, "b": 1.0}, {}, 0, "SPIN")
    with pytest.raises(ValueError, match=r"initial_states: expected values in \(-1, 1\)"):
        TabuSampler().sample(spin, initial_states=[[0, 1]])
    with pytest.raises(ValueError, match="q: expected finite biases"):
        tabu_search(np.full((1, 2, 2), np.inf), np.zeros(1))
    with pytest.raises(TypeError, match="bogus: not a parameter of sampler 'tabu'"):
        qfsel.solve(FeatureSelectionProblem([1.0, 0.5], [[0, 0.1], [0.1, 0]]), sampler="tabu", bogus=1)


def test_exhaustive_small_cardinalities_match_brute_force():
    # every k of a 7-variable explanation problem
    rng = np.random.default_rng(21)
    h, j = hard(rng, 1, 7)
    for k in range(1, 8):
        p = FeatureSelectionProblem(h[0], j[0], k=k)
        sol = qfsel.solve(p, sampler="tabu", num_reads=2, seed=k)
        best = min(p.energy(np.array(x)) for x in itertools.product([0, 1], repeat=7) if sum(x) == k)
        assert sol.energies[0] == pytest.approx(best, abs=1e-12)


@load_sampler_bqm_tests(TabuSampler)
class TestTabuSamplerConformance(unittest.TestCase):
    pass


@pytest.mark.parametrize("timeout", [1e-9, 5e-324, 1e300, 1.7e308])
def test_any_positive_finite_timeout_is_accepted(timeout):
    # Issue 8: 1e-9 ms rounded to a zero Duration and was refused as "got 0"; a timeout beyond
    # Duration's range panicked. Below a nanosecond: one nanosecond; beyond: no limit.
    p = FeatureSelectionProblem([1.0, 0.5, 0.3], np.zeros((3, 3)))
    sol = qfsel.solve(p, "tabu", timeout=timeout, seed=1)
    assert sol.energies[0] <= 0.0
