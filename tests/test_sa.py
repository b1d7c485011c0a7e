"""Simulated annealing: exact oracle, Boltzmann statistics, determinism, feasibility, dimod API, bad input."""

from __future__ import annotations

import itertools
import unittest

import dimod
import numpy as np
import pytest
from dimod.testing import load_sampler_bqm_tests
from dimod.testing.asserts import assert_sampler_api
from hypothesis import given, settings
from hypothesis import strategies as st

import qfsel
from qfsel import FeatureSelectionProblem, ProblemBatch
from qfsel.samplers.exact import ExactSampler
from qfsel.samplers.sa import SimulatedAnnealingSampler, simulated_annealing


def _problems(b: int, k_vars: int, seed: int, k: int | None = None) -> ProblemBatch:
    rng = np.random.default_rng(seed)
    h = rng.uniform(0.05, 1.0, size=(b, k_vars))
    j = np.abs(rng.normal(size=(b, k_vars, k_vars)))
    j = (j + j.transpose(0, 2, 1)) / 2
    j[:, range(k_vars), range(k_vars)] = 0
    return ProblemBatch(h, j, beta=0.7, k=k)


def _random_qubo(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.triu(rng.uniform(-1, 1, size=(n, n)))


# -- against the exact solver ---------------------------------------------------


@pytest.mark.parametrize("k", [None, 3, 6])
def test_batch_reaches_exact_ground_energy(k):
    batch = _problems(12, 14, seed=1, k=k)
    exact = qfsel.solve(batch, "exact")
    sa = qfsel.solve(batch, "sa", num_reads=16, num_sweeps=200, seed=5)
    np.testing.assert_allclose(sa.energies, exact.energies, atol=1e-9)
    assert sa.feasible.all()
    assert sa.info["read_energies"].shape == (12, 16)


def test_penalty_sa_is_feasible_and_never_below_the_ground_energy():
    # The penalty form is hard for single flips (every swap crosses a barrier of
    # about lambda, far above the objective's gaps; dwave-samplers fails alike),
    # so only feasibility, consistency and the swap kernel's advantage are asserted.
    batch = _problems(6, 12, seed=2, k=4)
    exact = qfsel.solve(batch, "exact")
    sol = qfsel.solve(batch, "sa-penalty", num_reads=32, num_sweeps=300, seed=3)
    assert sol.feasible.all()
    assert (sol.energies >= exact.energies - 1e-9).all()
    q, off = batch.qubo()
    reads = sol.info["read_energies"]
    np.testing.assert_allclose(sol.info["best_qubo_energies"], reads.min(axis=1))
    swap = qfsel.solve(batch, "sa", num_reads=32, num_sweeps=300, seed=3)
    assert (swap.energies <= sol.energies + 1e-9).all()


@pytest.mark.parametrize("seed", range(6))
def test_general_qubo_ground_energy(seed):
    q = _random_qubo(16, seed)
    ground = qfsel.samplers.exact.exact_ground_states(q[None], np.zeros(1))[0][0]
    out = simulated_annealing(q, num_reads=20, num_sweeps=300, seed=seed)
    assert out["best_energies"][0] == pytest.approx(ground, abs=1e-9)


def test_sampler_matches_exact_sampler_on_spin_bqms():
    for seed in range(4):
        bqm = dimod.generators.gnp_random_bqm(14, 0.6, "SPIN", random_state=seed)
        ground = ExactSampler().sample(bqm).first.energy
        ss = SimulatedAnnealingSampler().sample(bqm, num_reads=20, num_sweeps=300, seed=seed)
        assert ss.first.energy == pytest.approx(ground, abs=1e-9)
        assert ss.vartype is dimod.SPIN
        assert set(ss.variables) == set(bqm.variables)


# -- statistics: long chain at constant beta samples Boltzmann --------------------


def test_constant_beta_chain_is_boltzmann():
    q = np.array([[0.3, -0.8, 0.5], [0.0, -0.2, 0.6], [0.0, 0.0, 0.1]])
    beta = 1.5
    states = np.array(list(itertools.product([0, 1], repeat=3)), dtype=np.uint8)
    e = np.array([s @ np.triu(q, 1) @ s + np.diag(q) @ s for s in states.astype(float)])
    p = np.exp(-beta * (e - e.min()))
    p /= p.sum()
    reads = 4000
    out = simulated_annealing(q, num_reads=reads, beta_schedule_type="custom", beta_schedule=np.full(30, beta),
                              num_sweeps=None, seed=11, return_states=True)
    idx = out["states"][0] @ np.array([4, 2, 1])
    counts = np.bincount(idx, minlength=8)
    # states ordered as itertools.product: index = 4 x0 + 2 x1 + x2
    tv = 0.5 * np.abs(counts / reads - p).sum()
    assert tv < 0.04, (counts / reads, p)
    chi2 = float((((counts - reads * p) ** 2) / (reads * p)).sum())
    assert chi2 < 30.0  # 7 dof: p ~ 1e-4


def test_constant_beta_swap_chain_is_boltzmann_over_k_subsets():
    # Swap moves at a constant beta sample exp(-beta E) restricted to the C(5, 2) = 10 states with two ones.
    q = np.triu(np.random.default_rng(3).uniform(-1, 1, size=(5, 5)))
    beta = 1.2
    states = np.array([s for s in itertools.product([0, 1], repeat=5) if sum(s) == 2], dtype=np.uint8)
    e = np.array([s @ np.triu(q, 1) @ s + np.diag(q) @ s for s in states.astype(float)])
    p = np.exp(-beta * (e - e.min()))
    p /= p.sum()
    reads = 4000
    out = simulated_annealing(q, k=2, num_reads=reads, beta_schedule_type="custom", beta_schedule=np.full(20, beta),
                              seed=4, greedy_descent=False, return_states=True)
    codes = out["states"][0] @ (1 << np.arange(5)[::-1])
    want = states @ (1 << np.arange(5)[::-1])
    counts = np.array([(codes == c).sum() for c in want])
    assert counts.sum() == reads
    tv = 0.5 * np.abs(counts / reads - p).sum()
    assert tv < 0.04, (counts / reads, p)
    chi2 = float((((counts - reads * p) ** 2) / (reads * p)).sum())
    assert chi2 < 33.0  # 9 dof: p ~ 1e-4


# -- defaults of the swap kernel -----------------------------------------------------


def _swap_local_minimum(q: np.ndarray, x: np.ndarray) -> bool:
    e0 = float(x @ np.triu(q, 1) @ x + np.diag(q) @ x)
    for i in np.flatnonzero(x):
        for j in np.flatnonzero(x == 0):
            y = x.astype(float).copy()
            y[i], y[j] = 0, 1
            if float(y @ np.triu(q, 1) @ y + np.diag(q) @ y) < e0 - 1e-9:
                return False
    return True


def test_swap_defaults_short_schedule_and_final_descent():
    from qfsel.samplers.sa import DEFAULT_SWEEPS_FLIP, DEFAULT_SWEEPS_SWAP

    batch = _problems(2, 30, seed=8, k=5)
    q, off = batch.qubo(include_penalty=False)
    out = simulated_annealing(q, off, k=5, num_reads=6, seed=2, return_states=True)
    assert out["num_sweeps"] == DEFAULT_SWEEPS_SWAP
    for p in range(2):
        for x in out["states"][p]:
            assert x.sum() == 5 and _swap_local_minimum(q[p], x)
    flip = simulated_annealing(q, off, num_reads=2, seed=2)
    assert flip["num_sweeps"] == DEFAULT_SWEEPS_FLIP
    # Without the descent, one sweep from random states leaves improving swaps somewhere.
    raw = simulated_annealing(q, off, k=5, num_reads=6, num_sweeps=1, beta_range=(1e-3, 1e-3), seed=2,
                              greedy_descent=False, return_states=True)
    assert not all(_swap_local_minimum(q[p], x) for p in range(2) for x in raw["states"][p])


def test_tabu_polish_default_and_never_worse_than_plain_descent():
    from qfsel.samplers.sa import coupling_contrast, default_tabu_stall

    # Explanation-shaped (correlated |cos| redundancy, 10x weight): plain descent often stops short.
    # (With core::tabu's tenures, 3 / 1 at k = 6, the polish cycled on problem 2 in 86% of reads.)
    rng = np.random.default_rng(5)
    n, k = 40, 6
    maps = 0.6 * rng.normal(size=(3, 1, 49)) + rng.normal(size=(3, n, 49))
    maps /= np.linalg.norm(maps, axis=2, keepdims=True)
    j = 10 * np.abs(maps @ maps.transpose(0, 2, 1))
    j[:, range(n), range(n)] = 0
    batch = ProblemBatch(rng.uniform(0.05, 1.0, size=(3, n)), j, beta=0.7, k=k)
    q, off = batch.qubo(include_penalty=False)
    exact = qfsel.solve(batch, "exact").energies
    assert default_tabu_stall(n, k) == max(100, 16 * k + n // 2) == 116
    assert default_tabu_stall(512, 16) == 512 and default_tabu_stall(20, 2) == 100
    # the contrast factor clip(c / 4, 1, 2): 1 up to c = 4, then linear, capped at 2x
    assert default_tabu_stall(n, k, 2.0) == 116 and default_tabu_stall(n, k, 6.0) == 174
    assert default_tabu_stall(n, k, 50.0) == default_tabu_stall(n, k, float("inf")) == 232
    assert float(coupling_contrast(q).max()) > 1.0
    stall = default_tabu_stall(n, k)  # the default polish has no contrast factor (issue 13, kicks instead)
    pol = simulated_annealing(q, off, k=k, num_reads=32, seed=3, return_states=True)
    plain = simulated_annealing(q, off, k=k, num_reads=32, seed=3, tabu_stall=0, return_states=True)
    assert pol["tabu_stall"] == stall and plain["tabu_stall"] == 0
    # The anneal draws the same random numbers before the polish: read by read, the polish
    # starts from the state the plain descent starts from and keeps the best it sees.
    assert np.all(pol["energies"] <= plain["energies"] + 1e-9)
    assert np.all(pol["states"].sum(-1) == k)
    for p in range(3):
        for x in pol["states"][p]:
            assert _swap_local_minimum(q[p], x)
    hit = lambda out: np.mean(np.abs(out["energies"] - exact[:, None]) <= 1e-9)  # noqa: E731
    assert hit(pol) >= 0.9 and hit(pol) > hit(plain)
    # Without greedy_descent (or without k) there is no polish.
    assert simulated_annealing(q, off, k=k, num_reads=2, seed=3, greedy_descent=False)["tabu_stall"] == 0
    assert simulated_annealing(q, off, num_reads=2, num_sweeps=5, seed=3)["tabu_stall"] == 0


def test_default_swap_beta_range_follows_the_documented_rule():
    # Numpy reimplementation: lowest-diagonal start, steepest 1-swap descent, then
    # beta_hot = ln 8 / (10% quantile of nonzero |delta|), beta_cold = ln 100 / min |delta| (floored).
    from qfsel.samplers.sa import default_beta_range

    q = np.triu(np.random.default_rng(11).uniform(-1, 1, size=(12, 12)))
    k = 4
    w = np.triu(q, 1) + np.triu(q, 1).T
    d = np.diag(q)
    x = np.zeros(12)
    x[np.argsort(d, kind="stable")[:k]] = 1

    def deltas(x):
        f = w @ x
        sel, uns = np.flatnonzero(x), np.flatnonzero(x == 0)
        return np.array([[(d[j] + f[j]) - (d[i] + f[i]) - w[i, j] for j in uns] for i in sel]), sel, uns

    while True:
        dl, sel, uns = deltas(x)
        a, b = np.unravel_index(np.argmin(dl), dl.shape)
        if dl[a, b] >= -1e-12:
            break
        x[sel[a]], x[uns[b]] = 0, 1
    nz = np.abs(dl[dl != 0])
    q10 = np.sort(nz)[int(nz.size * 0.1)]
    lo = max(nz.min(), 1e-3 * nz.max())
    got = default_beta_range(q, k=k)[0]
    np.testing.assert_allclose(got, [np.log(8) / q10, max(np.log(100) / lo, np.log(8) / q10)], rtol=1e-9)


def test_single_precision_rule_ignores_a_few_tiny_couplings():
    from qfsel.samplers.sa import _single_precision

    rng = np.random.default_rng(0)
    q = np.triu(rng.uniform(0.1, 1.0, size=(40, 40)))
    q[0, 1:4] = 1e-9  # a few nearly orthogonal maps
    assert _single_precision(q)
    wide = np.triu(10.0 ** rng.uniform(-6, 0, size=(40, 40)))  # the bulk spans 6 decades
    assert not _single_precision(wide)


# -- determinism ------------------------------------------------------------------


@pytest.mark.parametrize("k", [None, 4])
def test_identical_results_whatever_the_thread_count(k):
    batch = _problems(5, 20, seed=4, k=k)
    q, off = batch.qubo(include_penalty=False)
    a = simulated_annealing(q, off, k=k, num_reads=9, num_sweeps=50, seed=123, num_threads=1, return_states=True)
    b = simulated_annealing(q, off, k=k, num_reads=9, num_sweeps=50, seed=123, num_threads=2, return_states=True)
    np.testing.assert_array_equal(a["states"], b["states"])
    np.testing.assert_array_equal(a["energies"], b["energies"])
    # The seed matters (seen before the final descent / tabu polish, which on problems this small
    # lead every read to the same ground state).
    raw = dict(q=q, offsets=off, k=k, num_reads=9, num_sweeps=50, greedy_descent=False, return_states=True)
    a = simulated_annealing(seed=123, num_threads=1, **raw)
    b = simulated_annealing(seed=123, num_threads=2, **raw)
    c = simulated_annealing(seed=124, num_threads=2, **raw)
    np.testing.assert_array_equal(a["states"], b["states"])
    assert not np.array_equal(a["states"], c["states"])


@pytest.mark.parametrize("n", [7, 64, 150])
def test_flip_read_is_the_same_in_the_lane_kernel_and_alone(n):
    # 16 reads of a dense single-precision problem run 8 at a time in SIMD lanes (n <= 192, where
    # the CPU has AVX2); 13 reads run as 8 in lanes and 5 one by one; a single read always runs
    # alone. Every read must be bit for bit the same whichever kernel ran it.
    batch = _problems(2, n, seed=11, k=max(1, n // 8))
    q, off = batch.qubo()  # penalty QUBO: many accepted and rejected moves
    raw = dict(q=q, offsets=off, num_sweeps=60, seed=5, greedy_descent=False, return_states=True, num_threads=1)
    lanes = simulated_annealing(num_reads=16, **raw)
    mixed = simulated_annealing(num_reads=13, **raw)
    np.testing.assert_array_equal(lanes["states"][:, :13], mixed["states"])
    np.testing.assert_array_equal(lanes["energies"][:, :13], mixed["energies"])
    alone = simulated_annealing(num_reads=1, **raw)
    np.testing.assert_array_equal(lanes["states"][:, :1], alone["states"])
    # The same with given initial states (16 reads in lanes, 5 one by one).
    init = np.random.default_rng(n).integers(0, 2, size=(2, 16, n), dtype=np.uint8)
    a = simulated_annealing(num_reads=16, initial_states=init, **raw)
    b = simulated_annealing(num_reads=5, initial_states=init[:, :5], **raw)
    np.testing.assert_array_equal(a["states"][:, :5], b["states"])
    # Reads differ from each other (the lanes do not share a generator).
    assert len({lanes["states"][0, r].tobytes() for r in range(16)}) > (8 if n >= 64 else 1)


def test_read_of_a_problem_does_not_depend_on_batch_size():
    batch = _problems(4, 18, seed=5)
    q, off = batch.qubo()
    full = simulated_annealing(q, off, num_reads=6, num_sweeps=40, seed=9, return_states=True)
    first = simulated_annealing(q[:1], off[:1], num_reads=3, num_sweeps=40, seed=9, return_states=True)
    np.testing.assert_array_equal(full["states"][0, :3], first["states"][0])


# -- feasibility of the swap kernel ----------------------------------------------


@pytest.mark.parametrize("k", [0, 1, 7, 19, 20])
def test_every_swap_sample_has_k_ones(k):
    batch = _problems(3, 20, seed=6)
    q, off = batch.qubo()
    out = simulated_annealing(q, off, k=k, num_reads=10, num_sweeps=30, seed=1, return_states=True, greedy_descent=True)
    assert (out["states"].sum(axis=-1) == k).all()
    energies = batch.energy(out["states"])
    np.testing.assert_allclose(out["energies"], energies, atol=1e-9)


def test_cardinality_sampler_and_cqm():
    p = FeatureSelectionProblem(*(lambda b: (b.relevance[0], b.redundancy[0]))(_problems(1, 12, seed=7)), k=5)
    ss = SimulatedAnnealingSampler().sample_cqm(p.to_cqm(), num_reads=8, num_sweeps=200, seed=2)
    assert all(sum(s.values()) == 5 for s in ss.samples())
    exact = qfsel.solve(p, "exact")
    assert ss.first.energy == pytest.approx(exact.energies[0], abs=1e-9)


def test_greedy_descent_ends_in_local_minima():
    q = _random_qubo(25, 3)
    out = simulated_annealing(q, num_reads=6, num_sweeps=2, seed=1, greedy_descent=True, return_states=True)
    for x, e in zip(out["states"][0], out["energies"][0]):
        for i in range(25):
            y = x.copy()
            y[i] ^= 1
            ey = float(y @ np.triu(q, 1) @ y + np.diag(q) @ y)
            assert ey >= e - 1e-9


# -- dimod interface -------------------------------------------------------------


@load_sampler_bqm_tests(SimulatedAnnealingSampler)
class TestDimodConformance(unittest.TestCase):
    pass


def test_sampler_api_and_info():
    sampler = SimulatedAnnealingSampler()
    assert_sampler_api(sampler)
    bqm = dimod.BinaryQuadraticModel({"a": 1.0, "b": -1.0}, {("a", "b"): 0.5}, 1.0, "SPIN")
    ss = sampler.sample(bqm, num_reads=7, num_sweeps=20, seed=1)
    assert len(ss) == 7
    assert set(ss.info["timing"]) == {"preprocessing_ns", "sampling_ns", "postprocessing_ns"}
    b0, b1 = ss.info["beta_range"]
    assert 0 < b0 <= b1
    np.testing.assert_allclose(ss.record.energy, bqm.energies((ss.record.sample, ss.variables)))


def test_inside_composites():
    bqm = dimod.generators.gnp_random_bqm(10, 0.7, "BINARY", random_state=2)
    ground = ExactSampler().sample(bqm).first.energy
    tracked = dimod.TrackingComposite(SimulatedAnnealingSampler())
    ss = tracked.sample(bqm, num_reads=10, num_sweeps=100, seed=1)
    assert tracked.input["num_reads"] == 10
    assert ss.first.energy == pytest.approx(ground)
    from dwave.preprocessing import SpinReversalTransformComposite

    srt = SpinReversalTransformComposite(SimulatedAnnealingSampler())
    ss = srt.sample(bqm, num_reads=10, num_sweeps=100, seed=1)
    assert ss.first.energy == pytest.approx(ground)


def test_empty_bqm_and_labels():
    ss = SimulatedAnnealingSampler().sample(dimod.BinaryQuadraticModel("BINARY"), num_reads=3)
    assert len(ss) == 3 and len(ss.variables) == 0
    bqm = dimod.BinaryQuadraticModel({"x": -1, ("t", 2): 1}, {("x", ("t", 2)): -2}, 0, "BINARY")
    ss = SimulatedAnnealingSampler().sample(bqm, num_reads=3, seed=1)
    assert set(ss.variables) == {"x", ("t", 2)}
    assert ss.first.energy == -2


def test_initial_states_are_used_with_zero_temperature():
    bqm = dimod.BinaryQuadraticModel({0: 1.0, 1: 1.0}, {(0, 1): -3.0}, 0, "BINARY")
    init = [{0: 1, 1: 1}, {1: 1, 0: 1}]
    ss = SimulatedAnnealingSampler().sample(bqm, initial_states=init, beta_schedule_type="custom",
                                            beta_schedule=[1e6], seed=1)
    assert len(ss) == 2
    assert all(s == {0: 1, 1: 1} for s in ss.samples())


def test_sparse_path_energies_match_dimod():
    bqm = dimod.generators.gnp_random_bqm(400, 0.01, "SPIN", random_state=4)
    ss = SimulatedAnnealingSampler().sample(bqm, num_reads=3, num_sweeps=50, seed=1)
    np.testing.assert_allclose(ss.record.energy, bqm.energies((ss.record.sample, ss.variables)))
    ss2 = SimulatedAnnealingSampler().sample(bqm, num_reads=3, num_sweeps=50, seed=1, num_threads=1)
    np.testing.assert_array_equal(ss.record.sample, ss2.record.sample)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 9),
    seed=st.integers(0, 2**32 - 1),
    vartype=st.sampled_from(["SPIN", "BINARY"]),
    card=st.booleans(),
)
def test_property_reported_energies_equal_dimods(n, seed, vartype, card):
    rng = np.random.default_rng(seed)
    lin = {i: float(rng.normal()) for i in range(n)}
    quad = {(i, j): float(rng.normal()) for i in range(n) for j in range(i + 1, n) if rng.random() < 0.6}
    bqm = dimod.BinaryQuadraticModel(lin, quad, float(rng.normal()), vartype)
    k = int(rng.integers(0, n + 1)) if card else None
    ss = SimulatedAnnealingSampler().sample(bqm, num_reads=4, num_sweeps=10, seed=seed % 1000, cardinality=k)
    np.testing.assert_allclose(ss.record.energy, bqm.energies((ss.record.sample, ss.variables)), atol=1e-9)
    if k is not None:
        ups = (ss.record.sample > 0).sum(axis=1)
        assert (ups == k).all()


# -- bad input --------------------------------------------------------------------


BQM = dimod.BinaryQuadraticModel({0: 1.0, 1: -1.0}, {(0, 1): 0.5}, 0.0, "BINARY")


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        ({"num_reads": 0}, ValueError, "num_reads"),
        ({"num_reads": 1.5}, TypeError, "num_reads"),
        ({"num_sweeps": 0}, ValueError, "num_sweeps"),
        ({"beta_range": (2.0, 1.0)}, ValueError, "beta_range"),
        ({"beta_range": (0.0, 1.0)}, ValueError, "beta_range"),
        ({"beta_range": (1.0,)}, TypeError, "beta_range"),
        ({"beta_schedule_type": "cubic"}, ValueError, "beta_schedule_type"),
        ({"beta_schedule_type": "custom"}, ValueError, "beta_schedule"),
        ({"beta_schedule_type": "custom", "beta_schedule": [1.0, -1.0]}, ValueError, "beta_schedule"),
        ({"cardinality": 3}, ValueError, "cardinality"),
        ({"cardinality": -1}, ValueError, "cardinality"),
        ({"initial_states": [[0, 2]]}, ValueError, "initial_states"),
        ({"initial_states": [[0, 1, 1]]}, ValueError, "initial_states"),
        ({"initial_states": [[-1, 1]]}, ValueError, "initial_states"),
        ({"seed": -1}, ValueError, "seed"),
        ({"num_threads": -2}, ValueError, "num_threads"),
        ({"tabu_stall": -1}, ValueError, "tabu_stall"),
        ({"tabu_stall": 1.5}, TypeError, "tabu_stall"),
    ],
)
def test_bad_input_names_the_argument(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        SimulatedAnnealingSampler().sample(BQM, **kwargs)


def test_non_finite_biases_and_wrong_initial_shape():
    with pytest.raises(ValueError, match="bqm|q"):
        SimulatedAnnealingSampler().sample(dimod.BinaryQuadraticModel({0: np.nan}, {}, 0, "BINARY"))
    with pytest.raises(ValueError, match="q"):
        simulated_annealing(np.array([[np.inf]]))
    with pytest.raises(ValueError, match="initial_states"):
        simulated_annealing(np.zeros((1, 3, 3)), num_reads=2, initial_states=np.zeros((1, 3, 3)))
    with pytest.raises(ValueError, match="initial_states"):
        simulated_annealing(np.zeros((1, 3, 3)), k=1, num_reads=1, initial_states=np.zeros((1, 1, 3)))


def test_unknown_kwargs_warn_like_dimod():
    with pytest.warns(dimod.exceptions.SamplerUnknownArgWarning):
        SimulatedAnnealingSampler().sample(BQM, num_reads=1, not_a_parameter=3)


def test_precision_is_chosen_per_problem_so_batches_do_not_change_results():
    # Problem A is f32-friendly, problem B spans six decades (f64): A must anneal
    # identically alone and next to B.
    from qfsel import _core
    from qfsel.samplers.sa import simulated_annealing

    rng = np.random.default_rng(11)
    qa = np.triu(rng.uniform(-1.0, 1.0, size=(24, 24)))
    qb = np.triu(10.0 ** rng.uniform(-6, 0, size=(24, 24)))
    assert _core.sa_single_precision(np.stack([qa, qb]), 1) == [True, False]
    for k in (None, 5):
        alone = simulated_annealing(qa[None], k=k, num_reads=6, seed=3, return_states=True)
        mixed = simulated_annealing(np.stack([qa, qb]), k=k, num_reads=6, seed=3, return_states=True)
        np.testing.assert_array_equal(alone["states"][0], mixed["states"][0])
        np.testing.assert_array_equal(alone["energies"][0], mixed["energies"][0])


@pytest.mark.parametrize("scale", [1e39, 1e300, 1e-40, 1e-300])
@pytest.mark.parametrize("cardinality", [None, 4])
def test_huge_and_tiny_biases_reach_the_same_ground_state(scale, cardinality):
    # Regression: |Q| ~ 1e39 overflowed the f32 fields (wrong states; "j is unselected" panic with
    # cardinality); |Q| ~ 1e-300 flushed to zero. Energies scale linearly, so the argmin is unchanged.
    import dimod

    from qfsel.samplers import ExactSampler, SimulatedAnnealingSampler

    rng = np.random.default_rng(0)
    n = 12
    q = np.triu(rng.normal(size=(n, n)))
    unit = dimod.BQM.from_qubo({(i, j): q[i, j] for i in range(n) for j in range(i, n)})
    big = dimod.BQM.from_qubo({(i, j): q[i, j] * scale for i in range(n) for j in range(i, n)})
    ref = ExactSampler().sample(unit, cardinality=cardinality).first.energy
    ss = SimulatedAnnealingSampler().sample(big, num_reads=8, seed=0, cardinality=cardinality)
    assert ss.first.energy / scale == pytest.approx(ref, rel=1e-9)


def test_sparse_path_with_huge_biases():
    import dimod

    from qfsel.samplers import SimulatedAnnealingSampler

    rng = np.random.default_rng(1)
    n = 400  # ring: sparse path; its ground state by dynamic programming is not needed, compare scales
    lin = {i: rng.normal() for i in range(n)}
    quad = {(i, (i + 1) % n): rng.normal() for i in range(n)}
    unit = dimod.BQM(lin, quad, 0, "SPIN")
    big = dimod.BQM({i: v * 1e300 for i, v in lin.items()}, {e: v * 1e300 for e, v in quad.items()}, 0, "SPIN")
    a = SimulatedAnnealingSampler().sample(unit, num_reads=2, seed=3)
    b = SimulatedAnnealingSampler().sample(big, num_reads=2, seed=3)
    assert b.first.energy / 1e300 == pytest.approx(a.first.energy, rel=1e-9)
    assert b.info["beta_range"][0] == pytest.approx(a.info["beta_range"][0] / 1e300, rel=1e-6)


def test_bare_initial_states_follow_the_bqm_order_and_bad_values_are_named():
    # Regression: a bare array over string labels was refused as a "shape" problem, hiding the real fault.
    import dimod

    from qfsel.samplers import SimulatedAnnealingSampler

    bqm = dimod.BQM({"a": -1.0, "b": 1.0}, {("a", "b"): 1.0}, 0, "BINARY")
    ss = SimulatedAnnealingSampler().sample(bqm, initial_states=[[1, 0]], num_sweeps=1, beta_range=(1e6, 1e6), seed=0)
    assert ss.first.sample == {"a": 1, "b": 0}
    with pytest.raises(ValueError, match=r"initial_states: expected values in \(0, 1\).*2\)?$"):
        SimulatedAnnealingSampler().sample(bqm, initial_states=[[2, 0]])
    with pytest.raises(ValueError, match=r"initial_states: expected states over the BQM's 2 variables \['a', 'b'\]"):
        SimulatedAnnealingSampler().sample(bqm, initial_states=[{"a": 0, "c": 1}])


def test_coupling_contrast_matches_a_direct_computation():
    from qfsel.samplers.sa import coupling_contrast

    rng = np.random.default_rng(8)
    for n in (5, 16, 40):
        j = rng.uniform(0.05, 1.0, size=(n, n))
        j = np.triu(j, 1)
        full = j + j.T
        rows = np.unique(np.linspace(0, n - 1, min(16, n)).astype(int))
        r = full[rows]
        r[np.arange(rows.size), rows] = 0
        want = np.median(r.max(axis=1)) / np.median(r)
        q = j + np.diag(rng.uniform(-1, 0, n))  # the diagonal (relevance) is not a coupling
        assert coupling_contrast(q[None])[0] == pytest.approx(want)
    # groups of near-duplicates stand out; no couplings at all: 1; mostly zero: median of the nonzero
    j = np.full((6, 6), 0.1)
    j[0, 1] = j[2, 3] = j[4, 5] = 0.8
    assert coupling_contrast(np.triu(j, 1))[0] == pytest.approx(8.0)
    assert coupling_contrast(np.diag([-1.0, -2.0, -3.0])[None])[0] == 1.0
    sparse = np.zeros((8, 8))
    sparse[0, 1], sparse[2, 3], sparse[4, 5], sparse[6, 7] = 1.0, 1.0, 2.0, 2.0
    assert coupling_contrast(sparse[None])[0] == pytest.approx(1.0)  # each map's one coupling is its strongest


# -- issue 13: kick-and-repolish rounds after the default polish ---------------


def _hard_qubo(n: int = 48, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = np.triu(rng.normal(size=(n, n)), 1) + np.diag(rng.normal(size=n))
    return q[None]


def test_kick_rounds_only_lower_reads_and_reach_more_optima() -> None:
    q = _hard_qubo()
    kw = dict(k=8, num_reads=24, seed=11, num_threads=1, tabu_stall=1)
    plain = simulated_annealing(q, **kw, kick_rounds=0)
    kicked = simulated_annealing(q, **kw, kick_rounds=8)
    # Same first pass (same seed and stall); the kicks only ever replace a read by a lower one.
    assert np.all(kicked["energies"] <= plain["energies"] + 1e-12)
    assert kicked["energies"].sum() < plain["energies"].sum() - 1e-9
    best = kicked["best_energies"][0]
    assert best <= plain["best_energies"][0] + 1e-12
    assert np.mean(np.abs(kicked["energies"][0] - best) < 1e-9) > np.mean(np.abs(plain["energies"][0] - best) < 1e-9)
    # best_states agrees with best_energies and keeps exactly k ones.
    s = kicked["best_states"][0].astype(float)
    assert s.sum() == 8 and abs(s @ q[0] @ s - best) < 1e-9


def test_kick_rounds_reproducible_and_thread_independent() -> None:
    q = np.concatenate([_hard_qubo(seed=1), _hard_qubo(seed=2)])
    a = simulated_annealing(q, k=6, num_reads=16, seed=3, num_threads=1, return_states=True)
    b = simulated_annealing(q, k=6, num_reads=16, seed=3, num_threads=2, return_states=True)
    for key in ("energies", "states", "best_states", "best_energies"):
        assert np.array_equal(a[key], b[key])
    assert np.all(a["states"].sum(axis=-1) == 6)


@pytest.mark.parametrize("bad", [-1, 1.5, "3"])
def test_kick_rounds_rejects_bad_values(bad: object) -> None:
    with pytest.raises((ValueError, TypeError), match="kick_rounds"):
        simulated_annealing(_hard_qubo(), k=4, num_reads=4, seed=0, kick_rounds=bad)
