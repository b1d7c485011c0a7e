"""Annealing physics: exact statevector anneals, spectra, minimum gaps and success curves.

``H(s) = A(s) H_driver + B(s) H_problem`` with ``s = t / T``; the paper (arXiv 2604.25649)
uses ``A = 1 - s``, ``B = s``, ``H_driver = -(1/d) sum_i X_i`` and ``H_problem`` the diagonal
energy of its feature-selection QUBO. **Bit convention**: basis index ``x = sum_i x_i 2^i``
(qubit ``i`` is bit ``i``; see :mod:`qfsel.quantum._problems` for the Hamiltonian forms
``"text"``, ``"script4"``, ``"script8"``).

Kernels (Rust): second-order Strang splitting of the exponential midpoint rule (diagonal
phase, then a product of single-qubit X rotations) and its order-4 (Suzuki) and order-6
(Yoshida) symmetric compositions; the number of steps is error-controlled by step doubling
with a Richardson estimate (``method="adaptive"``, default) or fixed (``method="fixed"``,
``dt=0.01`` as the paper). The XY mixer runs in the ``C(d, k)`` weight-k subspace with an
order-4 commutator-free Magnus integrator and Krylov exponentials. Spectra by matrix-free
Lanczos. Nothing here imports torch.

Entry points: :func:`anneal`, :func:`anneal_batch`, :func:`spectrum`, :func:`spectrum_batch`,
:func:`min_gap`, :func:`min_gap_batch`, :func:`success_curve`, :func:`success_curve_batch`,
:func:`compare_encodings`, :class:`Schedule`; :func:`capture_problems` (problems of real
explanations from the bundled models with their datasets; loads torch on first use).
"""

from __future__ import annotations

from typing import Any

from ._problems import DEFAULT_MAX_QUBITS, energies, positive_subproblem
from .anneal import AnnealResult, BatchAnnealResult, SuccessCurve, anneal, anneal_batch, success_curve, success_curve_batch
from .compare import compare_encodings
from .schedules import Schedule, resolve_schedule
from .spectrum import GapResult, Spectrum, ground_count, min_gap, min_gap_batch, spectrum, spectrum_batch

_LAZY = {"capture_problems": "qfsel.quantum.capture", "CapturedProblems": "qfsel.quantum.capture"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'qfsel.quantum' has no attribute {name!r}")


__all__ = [
    "capture_problems",
    "CapturedProblems",
    "Schedule",
    "resolve_schedule",
    "anneal",
    "anneal_batch",
    "AnnealResult",
    "BatchAnnealResult",
    "success_curve",
    "success_curve_batch",
    "SuccessCurve",
    "spectrum",
    "spectrum_batch",
    "Spectrum",
    "min_gap",
    "min_gap_batch",
    "GapResult",
    "ground_count",
    "compare_encodings",
    "energies",
    "positive_subproblem",
    "DEFAULT_MAX_QUBITS",
]
