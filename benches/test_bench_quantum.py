"""qfsel.quantum benchmarks (timing off in the normal suite; ``./dev bench`` turns it on).

The large side-by-side comparison (QuTiP, the paper's expm_multiply method, scipy eigsh,
thread scaling) is ``benches/quantum_report.py``; these are its small, fast cases.
"""

from __future__ import annotations

import numpy as np
import pytest

import qfsel.quantum as qq
from qfsel.cli.solve_demo import random_explanation_batch


@pytest.fixture(scope="module")
def problem10():
    return random_explanation_batch(1, 10, 3)[0]


def test_bench_anneal_d10(benchmark, problem10):
    ref = qq.anneal(problem10, 50.0, integrator="yoshida6", tol=1e-7, shots=0)
    res = benchmark(lambda: qq.anneal(problem10, 50.0, shots=0))
    assert 1 - abs(np.vdot(ref.state, res.state)) ** 2 < 1e-6


def test_bench_spectrum_d10(benchmark, problem10):
    sp = benchmark(lambda: qq.spectrum(problem10, s_points=21, levels=2))
    assert sp.converged and np.all(np.diff(sp.energies, axis=1) >= -1e-12)


def test_bench_batch_d8(benchmark):
    probs = [random_explanation_batch(1, 8, s)[0] for s in range(20)]
    res = benchmark(lambda: qq.anneal_batch(probs, [10.0, 50.0], seed=0))
    assert res.success.shape == (20, 2) and np.all((res.success >= 0) & (res.success <= 1 + 1e-12))
