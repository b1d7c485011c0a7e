"""Shared dimod glue for qfsel's samplers: BQM <-> dense QUBO, cardinality, SampleSets."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._checks import check_int

__all__ = ["DenseQubo", "bqm_to_dense", "cardinality_from_cqm", "check_cardinality", "make_sampleset"]


class DenseQubo:
    """A BQM as a dense binary upper-triangular ``Q``, its offset and variable order."""

    __slots__ = ("q", "offset", "labels", "vartype")

    def __init__(self, q: np.ndarray, offset: float, labels: list, vartype: Any):
        self.q, self.offset, self.labels, self.vartype = q, offset, labels, vartype

    @property
    def num_variables(self) -> int:
        return len(self.labels)

    def to_vartype(self, states: np.ndarray) -> np.ndarray:
        """Binary 0/1 states in the BQM's own vartype (spins as -1/+1)."""
        import dimod

        if self.vartype is dimod.SPIN:
            return 2 * states.astype(np.int8) - 1
        return states.astype(np.int8)


def bqm_to_dense(bqm: Any) -> DenseQubo:
    """The BQM in binary form as a dense upper-triangular matrix (labels in ``bqm.variables`` order)."""
    import dimod

    if not isinstance(bqm, dimod.BinaryQuadraticModel):
        raise TypeError(f"bqm: expected a dimod.BinaryQuadraticModel, got {type(bqm).__name__}")
    labels = list(bqm.variables)
    binary = bqm if bqm.vartype is dimod.BINARY else bqm.change_vartype(dimod.BINARY, inplace=False)
    n = len(labels)
    vectors = binary.to_numpy_vectors(variable_order=labels)
    ldata, (irow, icol, qdata), offset = vectors[0], vectors[1], vectors[2]
    q = np.zeros((n, n))
    q[np.arange(n), np.arange(n)] = ldata
    lo, hi = np.minimum(irow, icol), np.maximum(irow, icol)
    np.add.at(q, (lo, hi), qdata)
    if not np.all(np.isfinite(q)) or not np.isfinite(offset):
        raise ValueError("bqm: expected finite biases, got a NaN or infinite bias")
    return DenseQubo(np.ascontiguousarray(q), float(offset), labels, bqm.vartype)


def check_cardinality(cardinality: Any, num_variables: int) -> int | None:
    """``None`` or an integer in [0, n]: the number of ones (binary) or of +1 spins."""
    if cardinality is None:
        return None
    return check_int("cardinality", cardinality, low=0, high=num_variables)


def cardinality_from_cqm(cqm: Any) -> tuple[Any, int | None]:
    """Objective BQM and ``k`` of a CQM whose only constraint is ``sum of all binaries == k``.

    Raises ``ValueError`` for any other CQM, saying what is supported.
    """
    import dimod

    if not isinstance(cqm, dimod.ConstrainedQuadraticModel):
        raise TypeError(f"cqm: expected a dimod.ConstrainedQuadraticModel, got {type(cqm).__name__}")
    for v in cqm.variables:
        if cqm.vartype(v) is not dimod.BINARY:
            raise ValueError(f"cqm: expected binary variables only, got variable {v!r} of type {cqm.vartype(v).name}")
    objective = dimod.BinaryQuadraticModel(cqm.objective.linear, cqm.objective.quadratic, cqm.objective.offset, dimod.BINARY)
    for v in cqm.variables:
        if v not in objective.variables:
            objective.add_variable(v)
    if len(cqm.constraints) == 0:
        return objective, None
    expected = "exactly one constraint 'sum of all binary variables == k'"
    if len(cqm.constraints) != 1:
        raise ValueError(f"cqm: expected {expected}, got {len(cqm.constraints)} constraints")
    (label, comp), = cqm.constraints.items()
    lhs = comp.lhs
    ok = (
        comp.sense is dimod.sym.Sense.Eq
        and len(lhs.quadratic) == 0
        and set(lhs.linear.keys()) == set(cqm.variables)
        and all(float(c) == float(next(iter(lhs.linear.values()))) for c in lhs.linear.values())
    )
    if not ok:
        raise ValueError(f"cqm: expected {expected}, got constraint {label!r}: {comp}")
    coef = float(next(iter(lhs.linear.values())))
    k_float = (float(comp.rhs) - float(lhs.offset)) / coef
    if abs(k_float - round(k_float)) > 1e-9:
        raise ValueError(f"cqm: constraint {label!r} asks for a non-integer count {k_float}")
    return objective, int(round(k_float))


def make_sampleset(bqm: Any, dense: DenseQubo, states: np.ndarray, info: dict, num_occurrences: np.ndarray | None = None):
    """A ``dimod.SampleSet`` of binary ``states`` (``(m, n)`` 0/1) in the BQM's vartype and labels."""
    import dimod

    samples = dense.to_vartype(states)
    ss = dimod.SampleSet.from_samples_bqm((samples, dense.labels), bqm, info=info, num_occurrences=num_occurrences)
    return ss
