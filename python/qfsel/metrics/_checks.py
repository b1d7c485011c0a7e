"""Argument checks shared by the metrics: clear errors naming the argument."""

from __future__ import annotations

from typing import Any

import numpy as np


def labels_array(name: str, labels: Any, n: int | None = None, *, min_classes: int = 1) -> np.ndarray:
    """1-D int64 labels (length ``n`` when given, at least ``min_classes`` distinct values)."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of class labels, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name}: expected integer class labels, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} labels (one per sample), got {arr.shape[0]}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name}: labels must be non-negative class indices, got {int(arr.min())}")
    distinct = np.unique(arr).size
    if distinct < min_classes:
        raise ValueError(f"{name}: expected at least {min_classes} distinct classes, got {distinct}")
    return arr


def float_array(name: str, value: Any, ndim: int | tuple[int, ...], *, nonneg: bool = False) -> np.ndarray:
    """A finite float64 array with ``ndim`` dimensions."""
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in dims:
        raise ValueError(f"{name}: expected {' or '.join(map(str, dims))} dimensions, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    if nonneg and arr.size and arr.min() < 0:
        raise ValueError(f"{name}: expected non-negative values, got minimum {arr.min():.3g}")
    return arr


def heatmaps_array(name: str, heatmaps: Any, n: int | None = None, shape: tuple[int, int] | None = None) -> np.ndarray:
    """(N, H, W) finite float64 heatmaps (a (N, 1, H, W) array is squeezed)."""
    arr = np.asarray(heatmaps)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    arr = float_array(name, arr, 3)
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} heatmaps (one per sample), got {arr.shape[0]}")
    if shape is not None and tuple(arr.shape[1:]) != tuple(shape):
        raise ValueError(f"{name}: heatmaps of shape {tuple(arr.shape[1:])} do not match the images' {tuple(shape)}")
    return arr


def positive_int(name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    return int(value)
