"""Problem Hamiltonians for the anneal: which QUBO becomes ``H_problem``.

``H_problem = diag(E(x))`` over the ``2^d`` basis states; **bit convention**: basis index
``x = sum_i x_i 2^i`` (variable / qubit ``i`` is bit ``i`` of the index, qubit 0 the least
significant), i.e. ``numpy.kron(op_{d-1}, ..., op_0)``. A state vector ``psi`` returned by
qfsel has ``psi[x]`` the amplitude of the selection ``x``.

Forms (``hamiltonian=``):

* ``"text"`` (default): the paper's formula
  ``E(x) = -beta sum h_i x_i + (1 - beta) sum_{i<j} J_ij x_i x_j``.
* ``"script4"``: what the authors' scripts simulate, whose ``pz`` operator is
  ``I - sigma_z = 2 n``: ``-2 beta sum h n + 4 (1 - beta) sum_{p<q} J n n``.
* ``"script8"``: the script behind the fidelity-vs-d figure, which sums both orders of each
  pair: ``-2 beta sum h n + 8 (1 - beta) sum_{p<q} J n n``.

With ``k`` (exactly ``k`` maps) and ``encoding="penalty"`` the form's penalty QUBO (safe
automatic ``lambda`` of :class:`qfsel.FeatureSelectionProblem`, computed for the scaled form)
is used with the transverse field; with ``encoding="xy"`` the objective alone, evolved in the
weight-``k`` subspace under the XY mixer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _core
from ..exceptions import ProblemTooLargeError
from ..qubo import FeatureSelectionProblem, ProblemBatch

FORMS = ("text", "script4", "script8")
ENCODINGS = ("penalty", "xy")
GRAPHS = ("complete", "ring")

#: Default largest number of qubits for the full ``2^d`` space (``2^24 x 40`` bytes = 640 MiB).
DEFAULT_MAX_QUBITS = 24
BYTES_PER_AMPLITUDE = int(_core.QA_BYTES_PER_AMPLITUDE)


@dataclass
class Prepared:
    """One problem as the kernels take it."""

    q: np.ndarray
    offset: float
    d: int
    k: int | None  # the XY subspace weight (None: full space)
    driver_scale: float


def _scaled(problem: FeatureSelectionProblem, form: str) -> FeatureSelectionProblem:
    if form == "text":
        return problem
    c = 4.0 if form == "script4" else 8.0
    return FeatureSelectionProblem(2.0 * problem.relevance, c * problem.redundancy, problem.beta, problem.k)


def check_form(hamiltonian: Any) -> str:
    if hamiltonian not in FORMS:
        raise ValueError(f"hamiltonian: expected one of {FORMS}, got {hamiltonian!r}")
    return str(hamiltonian)


def as_problems(problem: Any) -> list[FeatureSelectionProblem]:
    """A problem, a ProblemBatch or a list of problems as a list."""
    if isinstance(problem, FeatureSelectionProblem):
        return [problem]
    if isinstance(problem, ProblemBatch):
        return [problem[i] for i in range(problem.num_problems)]
    if isinstance(problem, (list, tuple)) and problem and all(isinstance(p, FeatureSelectionProblem) for p in problem):
        return list(problem)
    raise TypeError(
        f"problem: expected a FeatureSelectionProblem, a ProblemBatch or a non-empty list of problems, got {type(problem).__name__}"
    )


def check_size(d: int, max_qubits: int, k: int | None) -> None:
    if k is not None:
        return  # the XY subspace has its own limit, checked in Rust
    if d > max_qubits:
        gib = BYTES_PER_AMPLITUDE * 2.0**d / 2**30
        raise ProblemTooLargeError(
            f"problem: d = {d} qubits is too large for exact statevector simulation: the limit is max_qubits = "
            f"{max_qubits}, and d = {d} would need about {gib:.3g} GiB ({BYTES_PER_AMPLITUDE} bytes x 2^{d} basis states); "
            "raise max_qubits if the memory is there, or use simulated quantum annealing"
        )


def prepare(
    problem: FeatureSelectionProblem,
    hamiltonian: str = "text",
    encoding: str | None = None,
    driver_scale: float | None = None,
    max_qubits: int = DEFAULT_MAX_QUBITS,
) -> Prepared:
    """The QUBO, subspace and driver scale of one problem."""
    form = check_form(hamiltonian)
    d = problem.num_variables
    if encoding is None:
        encoding = "penalty"
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding: expected one of {ENCODINGS}, got {encoding!r}")
    if encoding == "xy" and problem.k is None:
        raise ValueError("encoding: 'xy' needs an exactly-k problem (k set), got k=None")
    if encoding == "xy" and not (1 <= problem.k < d):  # type: ignore[operator]
        raise ValueError(f"encoding: 'xy' needs 1 <= k <= d - 1 = {d - 1}, got k={problem.k}")
    scaled = _scaled(problem, form)
    xy = encoding == "xy"
    q, off = scaled.qubo(include_penalty=not xy and problem.k is not None)
    scale = 1.0 / d if driver_scale is None else float(driver_scale)
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"driver_scale: expected a finite number > 0, got {driver_scale!r}")
    check_size(d, max_qubits, problem.k if xy else None)
    return Prepared(np.ascontiguousarray(q), float(off), d, problem.k if xy else None, scale)


def positive_subproblem(problem: FeatureSelectionProblem) -> tuple[FeatureSelectionProblem, np.ndarray]:
    """The paper's qubits: only maps with relevance > 0 (GradCAM weight alpha > 0), relevance
    renormalised to a largest value of 1 as ``h = alpha / max alpha``. Returns the problem and
    the kept indices."""
    h = problem.relevance
    keep = np.flatnonzero(h > 0)
    if keep.size == 0:
        raise ValueError("problem: no map has positive relevance; the paper's qubit set would be empty")
    hk = h[keep] / h[keep].max()
    k = problem.k if problem.k is not None and problem.k <= keep.size else None
    return FeatureSelectionProblem(hk, problem.redundancy[np.ix_(keep, keep)], problem.beta, k), keep


def energies(problem: FeatureSelectionProblem, hamiltonian: str = "text", include_penalty: bool | None = None) -> np.ndarray:
    """``E(x)`` of all ``2^d`` basis states (bit convention above), computed in Rust."""
    scaled = _scaled(problem, check_form(hamiltonian))
    q, off = scaled.qubo(include_penalty=include_penalty)
    out = np.empty(2**problem.num_variables)
    _core.qa_energies(np.ascontiguousarray(q), float(off), 30, out)
    return out
