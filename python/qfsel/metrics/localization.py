"""Localization against ground-truth masks: pointing game, relevance mass/rank, IoU.

Plain implementations (heatmaps (N, H, W) non-negative, masks (N, H, W) bool):

* pointing game (Zhang et al. 2018): is the heatmap's maximum inside the mask (optionally
  dilated by ``tolerance`` pixels)? When several pixels share the maximum (upsampled CAMs
  have plateaus), a hit is any of them inside the mask, as in Quantus 0.6.
* relevance mass accuracy (Arras et al. 2022): share of the heatmap's total inside the mask.
* relevance rank accuracy: share of the ``|mask|`` highest pixels that lie inside the mask
  (ties at the cut taken in row-major order; Quantus' unstable sort may take others, so the
  two differ by up to a few tied pixels' share).
* IoU: of the mask and the heatmap thresholded at ``threshold * max``.

A flat (all-zero) heatmap scores 0 on every measure and is counted in ``n_flat`` (Quantus
would abort on it). :func:`quantus_localization` computes the first three with Quantus for the
cross-check (flat maps left out).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import heatmaps_array

__all__ = ["localization", "quantus_localization"]


def _masks(masks: Any, shape: tuple[int, ...]) -> np.ndarray:
    m = np.asarray(masks)
    if m.ndim == 4 and m.shape[1] == 1:
        m = m[:, 0]
    if m.shape != shape:
        raise ValueError(f"masks: expected shape {shape} like the heatmaps, got {m.shape}")
    if m.dtype != bool:
        if not np.isin(m, (0, 1)).all():
            raise ValueError("masks: expected boolean (or 0/1) masks")
        m = m.astype(bool)
    if not m.reshape(m.shape[0], -1).any(axis=1).all():
        raise ValueError("masks: every mask must contain at least one pixel")
    return m


def localization(heatmaps: Any, masks: Any, *, tolerance: int = 0, threshold: float = 0.5) -> dict[str, np.ndarray]:
    """Per-image localization scores.

    Returns:
        ``{"pointing_game": (N,) bool, "relevance_mass": (N,), "relevance_rank": (N,),
        "iou": (N,), "flat": (N,) bool}``.

    Example:
        >>> import numpy as np
        >>> from qfsel.metrics import localization
        >>> mask = np.zeros((1, 4, 4), bool); mask[0, 1:3, 1:3] = True
        >>> r = localization(mask.astype(float), mask)
        >>> bool(r["pointing_game"][0]), float(r["relevance_mass"][0]), float(r["iou"][0])
        (True, 1.0, 1.0)
    """
    h = heatmaps_array("heatmaps", heatmaps)
    if h.size and h.min() < 0:
        raise ValueError(f"heatmaps: expected non-negative heatmaps, got minimum {h.min():.3g}")
    m = _masks(masks, h.shape)
    if not 0.0 < float(threshold) <= 1.0:
        raise ValueError(f"threshold: expected a number in (0, 1], got {threshold!r}")
    n = h.shape[0]
    flat_h = h.reshape(n, -1)
    flat_m = m.reshape(n, -1)
    peak = flat_h.max(axis=1)
    flat = peak <= 0
    if tolerance:
        from scipy.ndimage import binary_dilation

        struct = np.ones((1, 2 * tolerance + 1, 2 * tolerance + 1), bool)
        hit_mask = binary_dilation(m, structure=struct).reshape(n, -1)
    else:
        hit_mask = flat_m
    pointing = (hit_mask & (flat_h == peak[:, None])).any(axis=1) & ~flat  # any maximal pixel, as Quantus
    total = flat_h.sum(axis=1)
    mass = np.divide((flat_h * flat_m).sum(axis=1), total, out=np.zeros(n), where=total > 0)
    size = flat_m.sum(axis=1)
    order = np.argsort(-flat_h, axis=1, kind="stable")
    rank = np.array([flat_m[i, order[i, : size[i]]].mean() for i in range(n)])
    rank[flat] = 0.0
    binary = flat_h >= threshold * peak[:, None]
    binary[flat] = False
    inter = (binary & flat_m).sum(axis=1)
    union = (binary | flat_m).sum(axis=1)
    iou = inter / union
    return {"pointing_game": pointing, "relevance_mass": mass, "relevance_rank": rank, "iou": iou, "flat": flat}


def quantus_localization(model: Any, images: Any, heatmaps: Any, masks: Any, targets: Any) -> dict[str, np.ndarray]:
    """Pointing game, relevance mass and rank accuracy computed by Quantus 0.6 (non-flat maps only).

    Returns:
        ``{"index": (M,) the images scored, "pointing_game", "relevance_mass", "relevance_rank"}``.
    """
    from ._quantus import quantus

    q = quantus()
    h = heatmaps_array("heatmaps", heatmaps)
    m = _masks(masks, h.shape)
    x = np.asarray(images, dtype=np.float32)
    y = np.asarray(targets)
    keep = np.flatnonzero(h.reshape(h.shape[0], -1).max(axis=1) > 0)
    a = h[keep][:, None].astype(np.float32)
    s = m[keep][:, None]
    kwargs = dict(model=model, x_batch=x[keep], y_batch=y[keep], a_batch=a, s_batch=s, device="cpu")
    out = {"index": keep}
    for key, cls in (("pointing_game", q.PointingGame), ("relevance_mass", q.RelevanceMassAccuracy),
                     ("relevance_rank", q.RelevanceRankAccuracy)):
        out[key] = np.asarray(cls(disable_warnings=True, display_progressbar=False)(**kwargs), dtype=np.float64)
    return out
