"""The paper's class-disentanglement measure and its GradCAM/GradCAM++ counterparts.

arXiv 2604.25649: per class c, the normalised histogram ``p_c`` of the indices of the feature
maps QFS-CAM selected, over that class's images; between two classes the Bhattacharyya
coefficient ``BC(p, q) = sum_i sqrt(p_i q_i)`` (1: identical, 0: disjoint supports); the
class-by-class overlap matrix and its mean off-diagonal entry (lower = classes use more
distinct maps).

GradCAM and GradCAM++ select nothing; their counterparts (:func:`selection_from_weights`):

* ``"positive"``: every map with a positive weight is "selected" (the QUBO's candidate set);
* ``"top-m"``: the ``m`` maps of largest weight, ``m`` = the number QFS-CAM selected for the
  same image (the fair comparison: equal budget);
* ``"proportional"``: no selection; each image adds its positive weights, normalised to sum 1,
  to its class's histogram.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ._checks import float_array, labels_array, positive_int

__all__ = [
    "COUNTERPARTS",
    "bhattacharyya",
    "class_histograms",
    "disentanglement",
    "overlap_matrix",
    "selection_from_weights",
    "selection_indicator",
]

COUNTERPARTS = ("positive", "top-m", "proportional")


def bhattacharyya(p: Any, q: Any) -> float:
    """Bhattacharyya coefficient of two histograms (each normalised to sum 1 here).

    Example:
        >>> from qfsel.metrics import bhattacharyya
        >>> bhattacharyya([1, 1, 0], [1, 1, 0]), bhattacharyya([1, 0], [0, 1])
        (1.0, 0.0)
    """
    a = float_array("p", p, 1, nonneg=True)
    b = float_array("q", q, 1, nonneg=True)
    if a.shape != b.shape:
        raise ValueError(f"q: expected a histogram of length {a.shape[0]} like p, got {b.shape[0]}")
    if a.sum() == 0 or b.sum() == 0:
        raise ValueError("p, q: an all-zero histogram has no distribution")
    return float(np.sqrt((a / a.sum()) * (b / b.sum())).sum())


def selection_indicator(selected: Sequence[Any], n_maps: int) -> np.ndarray:
    """Per-image selected indices (a list of index arrays) -> (N, n_maps) 0/1 matrix."""
    n_maps = positive_int("n_maps", n_maps)
    out = np.zeros((len(selected), n_maps), dtype=np.float64)
    for i, idx in enumerate(selected):
        idx = np.asarray(idx, dtype=np.int64).ravel()
        if idx.size and (idx.min() < 0 or idx.max() >= n_maps):
            raise ValueError(f"selected[{i}]: map indices must lie in [0, {n_maps}), got {idx.tolist()}")
        out[i, idx] = 1.0
    return out


def selection_from_weights(weights: Any, mode: str, m: Any = None) -> np.ndarray:
    """The (N, K) per-image contribution matrix of a CAM without selection.

    Args:
        weights: (N, K) per-map weights (GradCAM alpha or GradCAM++ weights).
        mode: ``"positive"`` (1 where weight > 0), ``"top-m"`` (1 on the ``m[i]`` largest
            weights; ties broken by index), ``"proportional"`` (positive part / its sum).
        m: (N,) ints, required for ``"top-m"``.

    Returns:
        (N, K) non-negative float64; each row is one image's contribution to its class's histogram.
    """
    w = float_array("weights", weights, 2)
    if mode == "positive":
        return (w > 0).astype(np.float64)
    if mode == "top-m":
        if m is None:
            raise ValueError('m: mode "top-m" needs the per-image counts m (QFS-CAM\'s number of selected maps)')
        counts = np.asarray(m)
        if counts.shape != (w.shape[0],) or not np.issubdtype(counts.dtype, np.integer):
            raise ValueError(f"m: expected {w.shape[0]} integer counts, got shape {counts.shape}, dtype {counts.dtype}")
        if counts.size and (counts.min() < 0 or counts.max() > w.shape[1]):
            raise ValueError(f"m: counts must lie in [0, {w.shape[1]}], got [{counts.min()}, {counts.max()}]")
        order = np.argsort(-w, axis=1, kind="stable")
        out = np.zeros_like(w)
        for i, c in enumerate(counts):
            out[i, order[i, : int(c)]] = 1.0
        return out
    if mode == "proportional":
        pos = np.clip(w, 0.0, None)
        sums = pos.sum(axis=1, keepdims=True)
        return np.divide(pos, sums, out=np.zeros_like(pos), where=sums > 0)
    raise ValueError(f"mode: expected one of {COUNTERPARTS}, got {mode!r}")


def class_histograms(contributions: Any, labels: Any, n_classes: int | None = None) -> np.ndarray:
    """(C, K) per-class histograms (each row sums to 1; a class without any mass is all zero).

    Args:
        contributions: (N, K) non-negative per-image contributions (a 0/1 selection indicator
            for the paper's measure).
        labels: (N,) class of each image.
        n_classes: number of rows (default ``max(labels) + 1``).
    """
    c = float_array("contributions", contributions, 2, nonneg=True)
    y = labels_array("labels", labels, c.shape[0])
    n_classes = int(y.max()) + 1 if n_classes is None else positive_int("n_classes", n_classes)
    if y.size and y.max() >= n_classes:
        raise ValueError(f"labels: a label {int(y.max())} >= n_classes = {n_classes}")
    hist = np.zeros((n_classes, c.shape[1]))
    np.add.at(hist, y, c)
    sums = hist.sum(axis=1, keepdims=True)
    return np.divide(hist, sums, out=np.zeros_like(hist), where=sums > 0)


def overlap_matrix(histograms: Any) -> np.ndarray:
    """(C, C) Bhattacharyya coefficients between the rows of ``histograms`` (rows sum to 1)."""
    h = float_array("histograms", histograms, 2, nonneg=True)
    root = np.sqrt(h)
    return root @ root.T


def _off_diagonal(matrix: np.ndarray, present: np.ndarray) -> np.ndarray:
    idx = np.flatnonzero(present)
    sub = matrix[np.ix_(idx, idx)]
    iu = np.triu_indices(idx.size, 1)
    return sub[iu]


def disentanglement(
    contributions: Any,
    labels: Any,
    *,
    n_classes: int | None = None,
    n_boot: int = 200,
    seed: int = 0,
    zero_tol: float = 1e-9,
) -> dict[str, Any]:
    """The paper's overlap matrix and its summary, with a bootstrap 95% CI.

    Args:
        contributions: (N, K) per-image contributions (0/1 selections or proportional weights).
        labels: (N,) classes (at least two distinct).
        n_classes: matrix size (default ``max(labels) + 1``); absent classes are left out of the summary.
        n_boot: bootstrap resamples (images resampled within each class); 0 for none.
        seed: bootstrap seed.
        zero_tol: pairs with BC <= zero_tol count as "at zero".

    Returns:
        ``{"matrix": (C, C), "histograms": (C, K), "mean_off_diagonal": float,
        "ci95": (lo, hi), "zero_pairs": int, "n_pairs": int}``.

    Example:
        >>> import numpy as np
        >>> from qfsel.metrics import disentanglement
        >>> sel = np.array([[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 0]])
        >>> r = disentanglement(sel, [0, 0, 1, 1], n_boot=0)
        >>> r["mean_off_diagonal"], r["zero_pairs"], r["n_pairs"]
        (0.0, 1, 1)
    """
    c = float_array("contributions", contributions, 2, nonneg=True)
    y = labels_array("labels", labels, c.shape[0], min_classes=2)
    n_boot = positive_int("n_boot", n_boot, low=0)
    hist = class_histograms(c, y, n_classes)
    present = hist.sum(axis=1) > 0
    if present.sum() < 2:
        raise ValueError("contributions: fewer than two classes have any selected map; no overlap to measure")
    matrix = overlap_matrix(hist)
    off = _off_diagonal(matrix, present)
    rng = np.random.default_rng(seed)
    boots = []
    groups = [np.flatnonzero(y == k) for k in np.unique(y)]
    for _ in range(n_boot):
        idx = np.concatenate([g[rng.integers(0, g.size, g.size)] for g in groups])
        hb = class_histograms(c[idx], y[idx], hist.shape[0])
        pb = hb.sum(axis=1) > 0
        if pb.sum() >= 2:
            boots.append(float(_off_diagonal(overlap_matrix(hb), pb).mean()))
    ci = (float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))) if boots else (float("nan"),) * 2
    return {
        "matrix": matrix,
        "histograms": hist,
        "mean_off_diagonal": float(off.mean()),
        "ci95": ci,
        "zero_pairs": int((off <= zero_tol).sum()),
        "n_pairs": int(off.size),
    }
