"""qfsel.solve's routing: validate_solver raises what solve raises, seeds checked alike everywhere."""

from __future__ import annotations

import dimod
import numpy as np
import pytest

import qfsel
from qfsel import FeatureSelectionProblem, solve, validate_solver
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
