"""SA benchmarks vs dwave-samplers on explanation-shaped instances (timing off in the normal suite).

Instances: relevance lognormal, normalised to max 1 (in (0, 1]); redundancy =
|cos| of sparse ReLU maps drawn from 8 shared latent patterns (correlated
maps), beta = 0.7, exactly-k form; "hard": redundancy weighted 10x.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from qfsel import ProblemBatch
from qfsel.samplers.sa import simulated_annealing


def explanation_instances(b: int, k_vars: int, seed: int, hard: bool = False, maps: int = 196, latent: int = 8):
    rng = np.random.default_rng(seed)
    h = rng.lognormal(0.0, 1.0, size=(b, k_vars))
    h /= h.max(axis=1, keepdims=True)
    a = rng.normal(size=(b, k_vars, latent))
    z = rng.normal(size=(b, latent, maps))
    m = np.maximum(a @ z + rng.normal(size=(b, k_vars, maps)) - 1.0, 0.0)
    m /= np.linalg.norm(m, axis=2, keepdims=True) + 1e-12
    j = np.abs(m @ m.transpose(0, 2, 1))
    j[:, range(k_vars), range(k_vars)] = 0
    if hard:
        j *= 10.0
    return h, j


def success_fraction(read_energies: np.ndarray, best: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    return (np.abs(read_energies - best[:, None]) <= tol * np.maximum(1.0, np.abs(best[:, None]))).mean(axis=1)


def tts99(t_read: float, p: float) -> float:
    if p >= 1.0:
        return t_read
    if p <= 0.0:
        return float("inf")
    return t_read * np.log(0.01) / np.log(1.0 - p)


@pytest.mark.parametrize("k_vars,k", [(64, 8), (256, 16)])
def test_bench_swap_sa(benchmark, k_vars, k):
    h, j = explanation_instances(4, k_vars, seed=1)
    q, off = ProblemBatch(h, j, k=k).qubo(include_penalty=False)
    out = benchmark(lambda: simulated_annealing(q, off, k=k, num_reads=8, num_sweeps=50, seed=1, num_threads=1))
    assert out["energies"].shape == (4, 8)


@pytest.mark.parametrize("k_vars,k", [(64, 8), (256, 16), (512, 16)])
def test_bench_swap_sa_defaults(benchmark, k_vars, k):
    # The default schedule (10 sweeps + final tabu polish), as qfsel.solve(batch, "sa") runs it.
    from benches.instances import explanation_like

    h, j = explanation_like(np.random.default_rng(k_vars), 4, k_vars)
    q, off = ProblemBatch(h, j, k=k).qubo(include_penalty=False)
    out = benchmark(lambda: simulated_annealing(q, off, k=k, num_reads=16, seed=1, num_threads=1, return_states=True))
    assert (out["states"].sum(-1) == k).all()


@pytest.mark.parametrize("k_vars", [64, 256])
def test_bench_flip_sa_vs_dwave(benchmark, k_vars):
    from dwave.samplers import SimulatedAnnealingSampler as DwaveSA

    h, j = explanation_instances(1, k_vars, seed=2)
    batch = ProblemBatch(h, j, k=8)
    q, off = batch.qubo()
    bqm = batch[0].to_bqm()
    t = time.perf_counter()
    DwaveSA().sample(bqm, num_reads=2, num_sweeps=20, seed=1)
    t_dwave = time.perf_counter() - t
    out = benchmark(lambda: simulated_annealing(q, off, num_reads=2, num_sweeps=20, seed=1, num_threads=1))
    assert np.isfinite(out["best_energies"]).all() and t_dwave > 0


def test_bench_overhead_k64(benchmark):
    from qfsel import FeatureSelectionProblem, solve

    h, j = explanation_instances(1, 64, seed=3)
    p = FeatureSelectionProblem(h[0], j[0], k=8)
    sol = benchmark(lambda: solve(p, "sa", num_reads=1, num_sweeps=1, seed=1))
    assert sol.feasible.all()
