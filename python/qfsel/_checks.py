"""Shared validators: each names the argument, what was expected and what arrived.

Every public entry point converts user input through these, so the Rust core
only ever sees finite, contiguous arrays of the right dtype and shape.
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any, Sequence

import numpy as np

__all__ = [
    "as_array",
    "check_finite",
    "check_symmetric",
    "check_unit_interval",
    "check_positive_real",
    "check_int",
    "check_positive_int",
    "check_seed",
    "check_num_threads",
    "check_num_reads",
    "check_num_sweeps",
    "check_per_problem",
    "describe",
]


#: Largest array ``as_array`` converts (2**32 elements: 32 GiB of float64).
MAX_ARRAY_ELEMENTS = 2**32
#: Largest ``num_reads`` a solver accepts (each read returns an energy, and a state on request).
MAX_READS = 10**7
#: Largest ``num_sweeps`` of simulated annealing (the schedule holds one beta per sweep).
MAX_SWEEPS = 10**7
#: Largest number of per-read (or per-sweep) entries over a whole batch: 2**28 float64 = 2 GiB.
MAX_BATCH_ENTRIES = 2**28


def describe(value: Any) -> str:
    """A short description of ``value`` for error messages."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    if not isinstance(value, type) and hasattr(value, "shape") and hasattr(value, "dtype"):  # (a class,
        # e.g. np.float32, has them as descriptors)
        return f"{type(value).__name__} of shape {tuple(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def as_array(
    name: str,
    value: Any,
    *,
    dtype: Any = np.float64,
    ndim: int | Sequence[int] | None = None,
    shape: Sequence[int | None] | None = None,
) -> np.ndarray:
    """Convert ``value`` to a C-contiguous array of ``dtype`` and check its rank/shape.

    ``shape`` entries of ``None`` match any extent. Torch tensors are accepted
    (moved to the CPU and detached).
    """
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor without importing torch
        value = value.detach().cpu().numpy()
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name}: expected an array of numbers, got {describe(value)}")
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected an array of numbers, got {describe(value)}") from exc
    if raw.dtype == object or raw.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected an array of real numbers, got {describe(raw)}")
    if raw.size > MAX_ARRAY_ELEMENTS:  # e.g. a np.broadcast_to view: refuse before copying it
        raise ValueError(
            f"{name}: expected at most {MAX_ARRAY_ELEMENTS} elements (2**32), got shape {raw.shape} ({raw.size} elements)"
        )
    # asarray(order="C"), not ascontiguousarray: the latter turns a 0-d array into shape (1,).
    arr = np.asarray(raw, dtype=dtype, order="C")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise ValueError(f"{name}: expected a {want}-dimensional array, got shape {arr.shape}")
    if shape is not None:
        if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
            want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name}: expected shape {want}, got shape {arr.shape}")
    return arr


def check_finite(name: str, arr: np.ndarray) -> np.ndarray:
    """Raise ``ValueError`` naming the first non-finite entry of ``arr``."""
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        where = tuple(int(i) for i in bad)
        raise ValueError(f"{name}: expected finite values, got {arr[where]!r} at index {where}")
    return arr


def check_symmetric(name: str, arr: np.ndarray, *, zero_diagonal: bool = True, rtol: float = 1e-9) -> np.ndarray:
    """Check the last two axes of ``arr`` are square, symmetric and (optionally) zero on the diagonal."""
    if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2]:
        raise ValueError(f"{name}: expected square matrices (..., K, K), got shape {arr.shape}")
    scale = max(1.0, float(np.max(np.abs(arr)))) if arr.size else 1.0
    diff = np.abs(arr - np.swapaxes(arr, -1, -2))
    if arr.size and float(diff.max()) > rtol * scale:
        where = tuple(int(i) for i in np.unravel_index(int(diff.argmax()), diff.shape))
        raise ValueError(
            f"{name}: expected a symmetric matrix, got entry {where} = {arr[where]!r} "
            f"differing from its transpose by {float(diff.max()):.3g}"
        )
    if zero_diagonal and arr.size:
        diag = np.diagonal(arr, axis1=-2, axis2=-1)
        if np.any(diag != 0):
            where = tuple(int(i) for i in np.argwhere(diag != 0)[0])
            raise ValueError(f"{name}: expected a zero diagonal, got {diag[where]!r} at diagonal index {where}")
    return arr


def check_unit_interval(name: str, value: Any) -> float:
    """A real number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number in [0, 1], got {describe(value)}")
    v = float(value)
    if not (0.0 <= v <= 1.0):
        raise ValueError(f"{name}: expected a real number in [0, 1], got {value!r}")
    return v


def check_positive_real(name: str, value: Any, what: str = "a positive number") -> float:
    """A finite real number > 0 (anything else is a ValueError saying ``what`` was expected)."""
    v = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else math.nan
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name}: expected {what}, got {value!r}")
    return v


def check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """An integer (not a bool) within ``[low, high]``."""
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected an integer, got {describe(value)}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected an integer, got {describe(value)}") from None
    if (low is not None and v < low) or (high is not None and v > high):
        lo = "-inf" if low is None else str(low)
        hi = "inf" if high is None else str(high)
        raise ValueError(f"{name}: expected an integer in [{lo}, {hi}], got {v}")
    return v


def check_positive_int(name: str, value: Any) -> int:
    """An integer >= 1."""
    return check_int(name, value, low=1)


def check_seed(name: str, value: Any) -> int:
    """A seed: ``None`` draws one from the OS; otherwise an integer in [0, 2**64)."""
    if value is None:
        return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0])
    return check_int(name, value, low=0, high=2**64 - 1)


def check_num_reads(name: str, value: Any) -> int:
    """A number of reads: an integer in [1, MAX_READS]."""
    return check_int(name, value, low=1, high=MAX_READS)


def check_num_sweeps(name: str, value: Any) -> int:
    """A number of annealing sweeps: an integer in [1, MAX_SWEEPS]."""
    return check_int(name, value, low=1, high=MAX_SWEEPS)


def check_per_problem(name: str, value: int, num_problems: int) -> int:
    """``value`` entries per problem (reads, sweeps) times ``num_problems`` fits in MAX_BATCH_ENTRIES."""
    if value * num_problems > MAX_BATCH_ENTRIES:
        raise ValueError(
            f"{name}: expected {name} x number of problems <= 2**28 ({MAX_BATCH_ENTRIES}), "
            f"got {value} x {num_problems} = {value * num_problems}"
        )
    return value


def check_num_threads(name: str, value: Any) -> int:
    """``None`` or 0 means one thread per core; otherwise a positive integer."""
    if value is None:
        return 0
    return check_int(name, value, low=0, high=4096)
