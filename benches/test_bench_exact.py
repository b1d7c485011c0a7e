"""Exhaustive search: qfsel's Rust walk against dimod.ExactSolver on the same BQM (same run).

``./dev bench -k exact``; in the normal suite each case runs once and checks the energies agree.
"""

from __future__ import annotations

import dimod
import numpy as np
import pytest

import qfsel
from qfsel.samplers import ExactSampler

from .instances import explanation_like


@pytest.fixture(scope="module", params=[12, 18], ids=lambda k: f"K{k}")
def problem(request):
    h, j = explanation_like(np.random.default_rng(request.param), 1, request.param)
    return qfsel.FeatureSelectionProblem(h[0], j[0])


@pytest.mark.benchmark(group="exact")
def test_qfsel_exact_sampler(benchmark, problem):
    bqm = problem.to_bqm()
    ss = benchmark(ExactSampler().sample, bqm)
    assert ss.first.energy == pytest.approx(qfsel.solve(problem, sampler="exact").energies[0])


@pytest.mark.benchmark(group="exact")
def test_dimod_exact_solver(benchmark, problem):
    bqm = problem.to_bqm()
    ss = benchmark.pedantic(dimod.ExactSolver().sample, (bqm,), rounds=2, iterations=1)
    assert ss.first.energy == pytest.approx(ExactSampler().sample(bqm).first.energy)
