"""Simulated quantum annealing: exact path-integral statistics (numpy), classical limit, feasibility,
reproducibility, dimod API, bad input."""

from __future__ import annotations

import itertools
import unittest

import dimod
import numpy as np
import pytest
from dimod.testing import load_sampler_bqm_tests
from dimod.testing.asserts import assert_sampler_api

import qfsel
from qfsel import ProblemBatch
from qfsel.samplers import SQASampler, SimulatedQuantumAnnealingSampler
from qfsel.samplers.sqa import simulated_quantum_annealing, sqa_schedule, time_coupling


def _energy(q: np.ndarray, x: np.ndarray) -> float:
    return float(np.diag(q) @ x + x @ np.triu(q, 1) @ x)


def _basis(n: int, k: int | None = None) -> np.ndarray:
    states = np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.uint8)
    return states if k is None else states[states.sum(axis=1) == k]


def _index(states: np.ndarray) -> np.ndarray:
    return states.astype(np.int64) @ (1 << np.arange(states.shape[1])[::-1])


def _transverse(n: int) -> np.ndarray:
    """sum_i X_i on n qubits in the basis of ``_basis(n)`` (qubit 0 the most significant bit)."""
    x = np.array([[0.0, 1.0], [1.0, 0.0]])
    total = np.zeros((2**n, 2**n))
    for i in range(n):
        total += np.kron(np.kron(np.eye(2**i), x), np.eye(2 ** (n - i - 1)))
    return total


def _expm_sym(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(m)
    return (v * np.exp(w)) @ v.T


def _trotter_diagonal(q, gamma, temperature, slices, k=None):
    """Exact marginal of one slice of the discrete path integral: diag((D T)^P) normalised,
    D = exp(-E / (P T)), T = exp(Gamma / (P T) sum X), restricted to weight k if given."""
    n = q.shape[0]
    states = _basis(n)
    e = np.array([_energy(q, x) for x in states])
    eps = 1.0 / (slices * temperature)
    tmat = _expm_sym(eps * gamma * _transverse(n))
    keep = np.ones(len(states), bool) if k is None else states.sum(axis=1) == k
    m = (np.exp(-eps * e)[:, None] * tmat)[np.ix_(keep, keep)]
    p = np.diag(np.linalg.matrix_power(m, slices))
    return states[keep], p / p.sum()


def _quantum_diagonal(q, gamma, temperature):
    """diag(exp(-H / T)) / Z of H = E(x) - Gamma sum X, exactly (numpy)."""
    n = q.shape[0]
    states = _basis(n)
    e = np.array([_energy(q, x) for x in states])
    h = np.diag(e) - gamma * _transverse(n)
    rho = _expm_sym(-(h - np.linalg.eigvalsh(h)[0] * np.eye(len(e))) / temperature)
    p = np.diag(rho)
    return states, p / p.sum()


def _empirical(states_out: np.ndarray, support: np.ndarray) -> np.ndarray:
    idx = _index(states_out.reshape(-1, states_out.shape[-1]))
    keys = _index(support)
    counts = np.array([(idx == kk).sum() for kk in keys], dtype=float)
    assert counts.sum() == len(idx), "a sample outside the support"
    return counts / counts.sum()


def _assert_close_distribution(p_hat, p, reads):
    # Every probability within 5 standard errors (multinomial), and the total variation small.
    se = np.sqrt(p * (1 - p) / reads)
    assert np.all(np.abs(p_hat - p) <= 5 * se + 1e-3), (p_hat, p)


_Q3 = np.triu(np.array([[0.3, -0.6, 0.4], [0.0, -0.2, 0.5], [0.0, 0.0, 0.1]]))


def _constant(gamma: float, sweeps: int) -> np.ndarray:
    return np.full(sweeps, gamma)


# -- exact statistics ------------------------------------------------------------------


@pytest.mark.parametrize("slices", [2, 4])
def test_slice_marginal_is_the_trotterized_thermal_state(slices):
    """Flip moves at fixed (Gamma, T): one slice's state follows diag((D T)^P) exactly."""
    gamma, temp, reads = 0.6, 0.5, 20000
    out = simulated_quantum_annealing(_Q3, 0.0, num_reads=reads, num_slices=slices, temperature=temp,
                                      schedule_type="custom", gamma_schedule=_constant(gamma, 40),
                                      readout="slice", seed=3)
    support, p = _trotter_diagonal(_Q3, gamma, temp, slices)
    _assert_close_distribution(_empirical(out["states"], support), p, reads)


def test_many_slices_approach_the_quantum_thermal_state():
    """With P = 16 the Trotterized diagonal is within 1e-3 of diag(exp(-H/T))/Z, and so are the samples."""
    q = np.triu(np.array([[0.2, -0.7], [0.0, 0.3]]))
    gamma, temp, reads, slices = 0.5, 0.4, 20000, 16
    support, p_quantum = _quantum_diagonal(q, gamma, temp)
    _, p_trotter = _trotter_diagonal(q, gamma, temp, slices)
    assert np.max(np.abs(p_trotter - p_quantum)) < 2e-3
    # ... and the classical Boltzmann distribution is clearly different (the test can fail).
    e = np.array([_energy(q, x) for x in support])
    p_classical = np.exp(-e / temp) / np.exp(-e / temp).sum()
    assert np.max(np.abs(p_classical - p_quantum)) > 0.03
    out = simulated_quantum_annealing(q, 0.0, num_reads=reads, num_slices=slices, temperature=temp,
                                      schedule_type="custom", gamma_schedule=_constant(gamma, 60),
                                      readout="slice", seed=5)
    _assert_close_distribution(_empirical(out["states"], support), p_quantum, reads)


def test_swap_moves_sample_the_projected_path_integral():
    """With k, every slice keeps k ones and one slice follows diag((D P_k T P_k)^P)."""
    q = np.triu(np.random.default_rng(1).uniform(-0.5, 0.5, size=(4, 4)))
    gamma, temp, slices, reads = 0.8, 0.5, 3, 20000
    out = simulated_quantum_annealing(q, 0.0, k=2, num_reads=reads, num_slices=slices, temperature=temp,
                                      schedule_type="custom", gamma_schedule=_constant(gamma, 40),
                                      readout="slice", seed=7)
    support, p = _trotter_diagonal(q, gamma, temp, slices, k=2)
    _assert_close_distribution(_empirical(out["states"], support), p, reads)


@pytest.mark.parametrize("k", [None, 1])
def test_classical_limit_is_boltzmann(k):
    """Small Gamma locks the slices; worldline moves then sample exp(-E/T) at a high T."""
    temp, reads = 0.8, 20000
    out = simulated_quantum_annealing(_Q3, 0.0, k=k, num_reads=reads, num_slices=4, temperature=temp,
                                      schedule_type="custom", gamma_schedule=_constant(1e-6, 30),
                                      readout="slice", seed=11)
    support = _basis(3, k)
    e = np.array([_energy(_Q3, x) for x in support])
    p = np.exp(-e / temp) / np.exp(-e / temp).sum()
    _assert_close_distribution(_empirical(out["states"], support), p, reads)
    # Slices locked: the best slice of each read is the same state as slice 0.
    best = simulated_quantum_annealing(_Q3, 0.0, k=k, num_reads=200, num_slices=4, temperature=temp,
                                       schedule_type="custom", gamma_schedule=_constant(1e-6, 30), seed=11)
    np.testing.assert_array_equal(best["states"], out["states"][:, :200])


def test_time_coupling_formula():
    for gamma, p, t in [(1.0, 4, 0.25), (0.1, 8, 0.05), (3.0, 16, 1.0)]:
        x = gamma / (p * t)
        assert time_coupling(gamma, p, t) == pytest.approx(-0.5 * np.log(np.tanh(x)), rel=1e-12)
    assert time_coupling(0.0, 4, 1.0) == qfsel._core.SQA_MAX_TIME_COUPLING


# -- annealing -------------------------------------------------------------------------


@pytest.mark.parametrize("k", [None, 3, 5])
@pytest.mark.parametrize("schedule_type", ["linear", "dwave"])
def test_reaches_exact_ground_energy_and_stays_feasible(k, schedule_type):
    rng = np.random.default_rng(4)
    h = rng.uniform(0.05, 1.0, size=(3, 12))
    j = np.abs(rng.normal(size=(3, 12, 12)))
    j = (j + j.transpose(0, 2, 1)) / 2
    j[:, range(12), range(12)] = 0
    batch = ProblemBatch(h, j, beta=0.7, k=k)
    sol = qfsel.solve(batch, "sqa", num_reads=8, seed=2, schedule_type=schedule_type)
    exact = qfsel.solve(batch, "exact")
    np.testing.assert_allclose(sol.energies, exact.energies, atol=1e-9)
    assert sol.feasible.all()
    if k is not None:
        assert np.all(sol.info["read_energies"] >= exact.energies[:, None] - 1e-9)
        q, off = batch.qubo(include_penalty=False)
        out = simulated_quantum_annealing(q, off, k=k, num_reads=6, num_sweeps=20, seed=1, schedule_type=schedule_type)
        assert np.all(out["states"].sum(axis=-1) == k)


def test_energies_are_exact_and_best_is_lowest():
    q = np.triu(np.random.default_rng(0).uniform(-1, 1, size=(9, 9)))
    out = simulated_quantum_annealing(q, 0.25, num_reads=10, num_sweeps=30, seed=3)
    for x, e in zip(out["states"][0], out["energies"][0]):
        assert e == pytest.approx(_energy(q, x) + 0.25, abs=1e-12)
    assert out["best_energies"][0] == out["energies"][0].min()


@pytest.mark.parametrize("k", [None, 4])
def test_thread_count_never_changes_a_result(k):
    q = np.triu(np.random.default_rng(2).uniform(-1, 1, size=(3, 20, 20)))
    runs = [simulated_quantum_annealing(q, None, k=k, num_reads=7, num_sweeps=3, seed=9, num_threads=t) for t in (1, 2, 3)]
    for r in runs[1:]:
        np.testing.assert_array_equal(r["states"], runs[0]["states"])
        np.testing.assert_array_equal(r["energies"], runs[0]["energies"])
    other = simulated_quantum_annealing(q, None, k=k, num_reads=7, num_sweeps=3, seed=10)
    assert not np.array_equal(other["states"], runs[0]["states"])


def test_initial_states_are_used():
    q = np.triu(np.random.default_rng(5).uniform(-1, 1, size=(6, 6)))
    init = np.zeros((1, 3, 6), np.uint8)
    init[0, :, :2] = 1
    # No time steps to speak of: a frozen anneal (Gamma 0, B 0) returns the start.
    out = simulated_quantum_annealing(q, 0.0, k=2, num_reads=3, temperature=1.0, schedule_type="custom",
                                      gamma_schedule=[0.0], scale_schedule=[0.0], initial_states=init, seed=1,
                                      global_moves=False)
    np.testing.assert_array_equal(out["states"], init)


def test_single_slice_is_classical_annealing():
    q = np.triu(np.random.default_rng(6).uniform(-1, 1, size=(10, 10)))
    out = simulated_quantum_annealing(q, 0.0, num_reads=8, num_slices=1, num_sweeps=200, seed=1)
    exact = qfsel.samplers.ExactSampler().sample(dimod.BQM.from_qubo({(i, j): q[i, j] for i in range(10) for j in range(i, 10)}))
    assert out["best_energies"][0] == pytest.approx(exact.first.energy, abs=1e-9)


def test_schedules():
    a, b = sqa_schedule(5, (2.0, 0.0), "dwave")
    assert a[0] == 2.0 and a[-1] == 0.0 and np.all(np.diff(a) <= 0)
    assert b[0] == pytest.approx(0.05) and b[-1] == 1.0 and np.all(np.diff(b) >= 0)
    a, b = sqa_schedule(1, (2.0, 0.5))
    assert a.tolist() == [0.5] and b.tolist() == [1.0]


# -- dimod interface ---------------------------------------------------------------------


@load_sampler_bqm_tests(SimulatedQuantumAnnealingSampler)
class TestDimodConformance(unittest.TestCase):
    pass


def test_sampler_api_info_and_cqm():
    sampler = SQASampler()
    assert_sampler_api(sampler)
    bqm = dimod.BinaryQuadraticModel({"a": 1.0, "b": -1.0, "c": 0.3}, {("a", "b"): 0.5, ("b", "c"): -0.7}, 1.0, "SPIN")
    ss = sampler.sample(bqm, num_reads=5, num_sweeps=20, seed=1)
    assert len(ss) == 5
    assert set(ss.info["timing"]) == {"preprocessing_ns", "sampling_ns", "postprocessing_ns"}
    assert ss.info["num_slices"] == 16 and ss.info["num_sweeps"] == 20 and ss.info["temperature"] > 0
    np.testing.assert_allclose(ss.record.energy, bqm.energies((ss.record.sample, ss.variables)))
    ss = sampler.sample(bqm, cardinality=2, num_reads=4, seed=1)
    assert all(sum(v == 1 for v in s.values()) == 2 for s in ss.samples())
    cqm = dimod.ConstrainedQuadraticModel.from_bqm(dimod.BinaryQuadraticModel({"a": -1, "b": -1, "c": -0.5}, {("a", "b"): 3}, 0, "BINARY"))
    cqm.add_constraint(dimod.quicksum(dimod.Binary(v) for v in "abc") == 2, label="k")
    ss = sampler.sample_cqm(cqm, num_reads=4, seed=2)
    assert ss.record.is_feasible.all()
    assert ss.first.energy == pytest.approx(-1.5)


def test_sampler_initial_states_and_seed():
    bqm = dimod.generators.gnp_random_bqm(8, 0.7, "SPIN", random_state=3)
    sampler = SQASampler()
    a = sampler.sample(bqm, num_reads=4, num_sweeps=10, seed=4)
    b = sampler.sample(bqm, num_reads=4, num_sweeps=10, seed=4)
    np.testing.assert_array_equal(a.record.sample, b.record.sample)
    init = [{v: 1 for v in bqm.variables}]
    ss = sampler.sample(bqm, initial_states=init, num_reads=3, num_sweeps=5, seed=1)
    assert len(ss) == 3


# -- bad input ---------------------------------------------------------------------------


_QB = np.triu(np.ones((4, 4)))


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"num_slices": 0}, ValueError, "num_slices"),
        ({"num_slices": 2.5}, TypeError, "num_slices"),
        ({"temperature": 0.0}, ValueError, "temperature"),
        ({"temperature": -1.0}, ValueError, "temperature"),
        ({"temperature": float("nan")}, ValueError, "temperature"),
        ({"temperature": "hot"}, TypeError, "temperature"),
        ({"gamma_range": (-1.0, 0.0)}, ValueError, "gamma_range"),
        ({"gamma_range": (0.1, 1.0)}, ValueError, "gamma_range"),
        ({"gamma_range": 3.0}, TypeError, "gamma_range"),
        ({"schedule_type": "cubic"}, ValueError, "schedule_type"),
        ({"schedule_type": "custom"}, ValueError, "gamma_schedule"),
        ({"schedule_type": "custom", "gamma_schedule": [1.0, -0.5]}, ValueError, "gamma_schedule"),
        ({"schedule_type": "custom", "gamma_schedule": [1.0, 0.5], "scale_schedule": [1.0]}, ValueError, "scale_schedule"),
        ({"schedule_type": "custom", "gamma_schedule": [1.0, 0.5], "scale_schedule": [1.0, -1.0]}, ValueError, "scale_schedule"),
        ({"gamma_schedule": [1.0]}, ValueError, "gamma_schedule"),
        ({"num_sweeps": 0}, ValueError, "num_sweeps"),
        ({"num_reads": 0}, ValueError, "num_reads"),
        ({"num_reads": 10**9}, ValueError, "num_reads"),  # was a hang (SA's limits apply)
        ({"num_sweeps": 10**12}, ValueError, "num_sweeps"),  # was a MemoryError from numpy
        ({"num_slices": 10**7}, ValueError, "num_slices"),  # was a hang / huge allocation
        ({"k": 5}, ValueError, "cardinality"),
        ({"seed": -1}, ValueError, "seed"),
        ({"readout": "all"}, ValueError, "readout"),
        ({"global_moves": "yes"}, TypeError, "global_moves"),
        ({"descent": 1}, TypeError, "descent"),
        ({"initial_states": np.full((1, 16, 4), 2)}, ValueError, "initial_states"),
        ({"k": 2, "initial_states": np.ones((1, 16, 4))}, ValueError, "initial_states"),
        ({"initial_states": np.ones((1, 3, 4))}, ValueError, "initial_states"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        simulated_quantum_annealing(_QB, 0.0, **kwargs)


def test_bad_problems_and_sampler_arguments():
    with pytest.raises(ValueError, match="q"):
        simulated_quantum_annealing(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="q"):
        simulated_quantum_annealing(np.ones((2, 3)))
    with pytest.raises(TypeError, match="q: expected an array"):  # was 'index: expected an integer ...'
        simulated_quantum_annealing(ProblemBatch(np.ones((3, 4)), np.zeros((3, 4, 4)), beta=0.7))
    with pytest.raises(ValueError, match="num_reads x number of problems"):
        simulated_quantum_annealing(np.zeros((64, 2, 2)), num_reads=2**23)
    with pytest.raises(ValueError, match="num_reads"):
        SQASampler().sample(dimod.BinaryQuadraticModel({"a": 1.0}, {}, 0, "BINARY"), num_reads=10**8)
    bqm = dimod.BinaryQuadraticModel({"a": 1.0}, {}, 0, "BINARY")
    with pytest.raises(ValueError, match="num_slices"):
        SQASampler().sample(bqm, num_slices=0)
    with pytest.raises(ValueError, match="cardinality"):
        SQASampler().sample(bqm, cardinality=2)
    with pytest.raises(TypeError, match="num_slices"):
        qfsel.solve(qfsel.FeatureSelectionProblem([1.0, 0.5], [[0, 0.1], [0.1, 0]], beta=0.5), "sqa", num_slices=None)
    with pytest.raises(TypeError, match="trotter"):
        qfsel.solve(qfsel.FeatureSelectionProblem([1.0, 0.5], [[0, 0.1], [0.1, 0]], beta=0.5), "sqa", trotter=4)


def test_ctrl_c_interrupts_promptly():
    import _thread
    import threading
    import time

    q = np.triu(np.random.default_rng(3).uniform(-1, 1, size=(64, 64)))
    timer = threading.Timer(0.3, _thread.interrupt_main)
    t0 = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        # ~1e9 spin-slice updates: many seconds of work
        simulated_quantum_annealing(q, 0.0, num_reads=500, num_sweeps=2000, num_slices=16, seed=1, num_threads=2)
    assert time.perf_counter() - t0 < 3.0
    timer.join()


@pytest.mark.parametrize("k", [None, 4])
def test_descent_ends_in_a_local_minimum(k):
    q = np.triu(np.random.default_rng(8).uniform(-1, 1, size=(14, 14)))
    out = simulated_quantum_annealing(q, 0.0, k=k, num_reads=6, num_sweeps=3, seed=2, descent=True)
    for x, e in zip(out["states"][0], out["energies"][0]):
        assert e == pytest.approx(_energy(q, x), abs=1e-12)
        if k is None:
            neighbours = [np.where(np.arange(14) == i, 1 - x, x) for i in range(14)]
        else:
            ones, zeros = np.flatnonzero(x), np.flatnonzero(x == 0)
            neighbours = []
            for i in ones:
                for j in zeros:
                    y = x.copy()
                    y[i], y[j] = 0, 1
                    neighbours.append(y)
        assert all(_energy(q, y) >= e - 1e-9 for y in neighbours)
    plain = simulated_quantum_annealing(q, 0.0, k=k, num_reads=6, num_sweeps=3, seed=2)
    assert np.all(out["energies"] <= plain["energies"] + 1e-12)
