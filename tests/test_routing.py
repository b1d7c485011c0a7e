"""qfsel.solve's routing: validate_solver raises what solve raises, seeds checked alike everywhere."""

from __future__ import annotations

import dimod
import numpy as np
import pytest

import qfsel
from qfsel import FeatureSelectionProblem, ProblemBatch, solve, validate_solver
from qfsel.samplers import ExactSampler, GreedySampler, SimulatedAnnealingSampler, TabuSampler

NAMED = ["sa", "sa-penalty", "tabu", "greedy", "exact"]
BAD_SEEDS = [-1, 2**64, 1.5, "abc", True, np.float64(3.0)]


def _problem() -> FeatureSelectionProblem:
    return FeatureSelectionProblem([1.0, 0.5, 0.3], np.zeros((3, 3)), beta=0.5)


def _error(fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the test compares whatever arrives
        return type(exc), str(exc)
    return None


BAD_PARAMS = [
    (name, params)
    for name in NAMED
    for params in ({"seed": s} for s in BAD_SEEDS)
] + [
    ("sa", {"num_reads": 0}),
    ("sa", {"num_reads": 10**12}),
    ("sa", {"num_sweeps": 10**12}),
    ("sa", {"num_sweeps": 0}),
    ("sa", {"beta_range": (2.0, 1.0)}),
    ("sa", {"beta_schedule_type": "cosine"}),
    ("sa", {"beta_schedule_type": "custom"}),
    ("sa", {"beta_schedule": [1.0, 2.0]}),
    ("sa", {"greedy_descent": "yes"}),
    ("sa", {"tabu_stall": -1}),
    ("sa", {"num_threads": -2}),
    ("sa", {"bogus": 1}),
    ("sa-penalty", {"num_sweeps": 1.5}),
    ("tabu", {"num_reads": 10**12}),
    ("tabu", {"timeout": -1}),
    ("tabu", {"timeout": float("nan")}),
    ("tabu", {"tenure": -1}),
    ("tabu", {"num_restarts": -1}),
    ("tabu", {"elite_size": 0}),
    ("tabu", {"num_iterations": 0}),
    ("tabu", {"beta_range": (1, 2)}),
    ("greedy", {"num_reads": 0}),
    ("greedy", {"num_threads": "all"}),
    ("exact", {"max_ground_states": 0}),
    ("exact", {"max_subsets": -5}),
    ("exact", {"num_reads": 3}),
    ("bogus", {}),
    (3, {}),
]


@pytest.mark.parametrize("sampler,params", BAD_PARAMS, ids=[f"{s}-{sorted(p)}-{i}" for i, (s, p) in enumerate(BAD_PARAMS)])
def test_validate_solver_raises_exactly_what_solve_raises(sampler, params):
    want = _error(lambda: solve(_problem(), sampler, **params))
    assert want is not None, "solve accepted it: not a bad parameter"
    assert _error(lambda: validate_solver(sampler, params)) == want


@pytest.mark.parametrize(
    "sampler,params",
    [
        ("sa", {}),
        ("sa", {"num_reads": 4, "seed": 2**64 - 1, "num_sweeps": 50, "beta_range": (0.1, 3.0)}),
        ("sa", {"beta_schedule_type": "custom", "beta_schedule": [0.1, 1.0, 2.0]}),
        ("sa-penalty", {"seed": np.uint64(7), "greedy_descent": True}),
        ("tabu", {"seed": 0, "timeout": 5.0, "tenure": 1, "num_restarts": 0}),
        ("greedy", {"seed": 1, "num_reads": 3}),
        ("exact", {"seed": 1, "max_ground_states": 2}),
        (ExactSampler(), {"max_ground_states": 2}),  # a dimod sampler's parameters are its own business
    ],
)
def test_validate_solver_accepts_what_solve_accepts_without_solving(sampler, params, monkeypatch):
    solve(_problem(), sampler, **params)
    from qfsel import routing

    calls = []
    for name in list(routing._SOLVERS):
        monkeypatch.setitem(routing._SOLVERS, name, lambda *a, **k: calls.append(a))
    assert validate_solver(sampler, params) is None
    assert validate_solver(sampler) is None
    assert calls == []


def test_validate_solver_refuses_a_non_mapping():
    with pytest.raises(TypeError, match="params: expected a mapping"):
        validate_solver("sa", [("seed", 1)])  # type: ignore[arg-type]


def test_validate_solver_is_public():
    assert "validate_solver" in qfsel.__all__
    assert qfsel.validate_solver is qfsel.routing.validate_solver


@pytest.mark.parametrize("seed", BAD_SEEDS)
def test_every_solver_and_sampler_checks_seeds_alike(seed):
    bqm = dimod.BinaryQuadraticModel({0: 1.0, 1: -1.0}, {(0, 1): 0.5}, 0.0, "BINARY")
    errors = {name: _error(lambda: solve(_problem(), name, seed=seed)) for name in NAMED}
    for cls in (SimulatedAnnealingSampler, TabuSampler, GreedySampler):
        errors[cls.__name__] = _error(lambda: cls().sample(bqm, seed=seed))
    assert len(set(errors.values())) == 1, errors
    exc, msg = next(iter(errors.values()))
    assert msg.startswith("seed: expected an integer")


def _flip_deltas(q: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every single flip's energy change of ``x`` on upper-triangular ``q`` and its rounding scale."""
    w = np.triu(q, 1) + np.triu(q, 1).T
    f = np.diag(q) + w @ x
    scale = np.abs(np.diag(q)) + np.abs(w).sum(axis=1)
    return np.where(x == 1, -f, f), scale


def _swap_deltas(q: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = np.triu(q, 1) + np.triu(q, 1).T
    f = np.diag(q) + w @ x
    scale = np.abs(np.diag(q)) + np.abs(w).sum(axis=1)
    sel, uns = np.flatnonzero(x == 1), np.flatnonzero(x == 0)
    d = f[uns][None, :] - f[sel][:, None] - w[np.ix_(sel, uns)]
    return d, scale[sel][:, None] + scale[uns][None, :]


@pytest.mark.parametrize("big", [1.0, 1e4, 1e9, 1e12])
@pytest.mark.parametrize("k", [None, 3])
@pytest.mark.parametrize("sampler", ["sa", "tabu", "greedy"])
def test_every_solution_is_a_local_minimum_whatever_the_scale(sampler, k, big):
    # One huge relevance beside ordinary ones (issue 8: greedy missed a one-flip improvement at 1e12).
    rng = np.random.default_rng(int(np.log10(big)) + 7 * (k or 0))
    h = rng.uniform(0.05, 1.0, (6, 10))
    h[:, 0] = big
    j = rng.uniform(0.0, 1.0, (6, 10, 10))
    j = (j + j.transpose(0, 2, 1)) / 2
    j[:, range(10), range(10)] = 0
    batch = ProblemBatch(h, j, beta=0.3, k=k)
    sol = solve(batch, sampler, seed=3)
    q, _ = batch.qubo(include_penalty=False)
    for b in range(batch.num_problems):
        d, scale = (_flip_deltas if k is None else _swap_deltas)(q[b], sol.states[b].astype(float))
        assert np.all(d >= -1e-12 * scale), (b, d.min())


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_sa_at_beta_zero_reaches_the_optimum_at_any_scale(scale):
    # Issue 8: at beta = 0 every flip from all zeros is free; the default beta range fell back to a
    # fixed (0.1, 1), too hot for couplings ~1e-3, and reads ended above a local minimum.
    rng = np.random.default_rng(0)
    h = rng.random((40, 24))
    j = rng.random((40, 24, 24))
    j = (j + j.transpose(0, 2, 1)) / 2
    j[:, range(24), range(24)] = 0
    batch = ProblemBatch(h * scale, j * scale, beta=0.0)
    # E = sum_{i<j} J_ij x_i x_j >= 0 with J > 0: the optimum is 0 (nothing, or one map, selected).
    for greedy in (True, False):
        sol = solve(batch, "sa", seed=1, greedy_descent=greedy)
        assert np.all(sol.energies == 0.0) and np.all(sol.num_selected <= 1), sol.energies.max()


@pytest.mark.parametrize("vartype", ["BINARY", "SPIN"])
def test_an_empty_bqm_has_one_state_in_every_sampler(vartype):
    # Issue 8: SA gave one sample, tabu, exact and greedy none (.first raised). The empty BQM has
    # exactly one state, the empty assignment, of energy = offset; samplers with reads return one
    # per read, as dimod's reference SimulatedAnnealingSampler and RandomSampler do.
    empty = dimod.BinaryQuadraticModel({}, {}, 1.5, vartype)
    for sampler in (SimulatedAnnealingSampler(), TabuSampler(), GreedySampler(), ExactSampler()):
        ss = sampler.sample(empty)
        assert len(ss) == 1 and ss.first.energy == 1.5 and ss.first.sample == {}, type(sampler).__name__
        assert ss.vartype is empty.vartype
    for sampler in (SimulatedAnnealingSampler(), TabuSampler()):
        assert len(sampler.sample(empty, num_reads=3)) == 3
    assert len(dimod.RandomSampler().sample(empty, num_reads=3)) == 3
    for sampler in (GreedySampler(), ExactSampler()):
        assert len(sampler.sample(empty, cardinality=0)) == 1


def test_solution_repr_is_one_short_line_without_arrays():
    rng = np.random.default_rng(0)
    h = rng.random((500, 64))
    j = rng.random((500, 64, 64))
    j = (j + j.transpose(0, 2, 1)) / 2
    j[:, range(64), range(64)] = 0
    batch = ProblemBatch(h, j, k=5)
    sol = solve(batch, "greedy")
    text = repr(sol)
    assert text == str(sol) and "\n" not in text and len(text) < 160 and "array" not in text
    e = sol.energies
    assert text.startswith("Solution(sampler='greedy', problems=500, K=64, ")
    assert f"energy={e.min():.6g}..{e.max():.6g}" in text and "num_selected=5" in text
    # Infeasible states are counted; one problem shows its selection.
    states = sol.states.copy()
    states[:7] = 0
    bad = qfsel.Solution.from_states(batch, states, "mine", {"total_s": 0.5})
    assert repr(bad) == f"Solution(sampler='mine', problems=500, K=64, energy={bad.energies.min():.6g}..{bad.energies.max():.6g}, num_selected=0..5, feasible=493/500, total_s=0.5)"
    one = solve(FeatureSelectionProblem([1.0, 0.9, 0.2], np.zeros((3, 3)), beta=0.5), "exact")
    assert repr(one).startswith("Solution(sampler='exact', problems=1, K=3, energy=-1.05, selected=[0, 1, 2], total_s=")
