"""Faithfulness: deletion/insertion AUC (RISE), average drop/increase in confidence, ROAD.

All functions take the model, the model inputs ``images`` (N, C, H, W) exactly as the model
consumes them, heatmaps (N, H, W) and the explained class of each image.

* **Deletion / insertion** (Petsiuk et al., RISE, 2018): pixels are ranked by heatmap value
  (ties broken at random with ``seed``: CAMs are 0 on large areas) and, in ``steps`` equal
  chunks, deleted (replaced by the deletion baseline; default 0 in the model's input space,
  i.e. black for [0, 1] images) or inserted into the insertion baseline (default: the image
  blurred with a Gaussian of sigma 5 px, as in RISE's code). The curve is the softmax
  probability of the explained class; AUC = trapezoid area over the fraction [0, 1].
  Deletion: lower is better; insertion: higher is better.
* **Average drop / increase in confidence** (Chattopadhyay et al., GradCAM++, 2018): the
  explanation image is ``baseline + H * (x - baseline)`` (``x * H`` for the 0 baseline);
  drop = ``mean(max(0, Y - O) / Y)`` (in %, lower better), increase = share of images with
  ``O > Y`` (in %, higher better), ``Y``/``O`` the class probability on the image/explanation.
* **ROAD** (Rong et al., 2022): accuracy after removing the top p% pixels (MoRF) with
  Quantus' noisy linear imputation; lower is better.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ._checks import heatmaps_array, labels_array, positive_int
from ._model import check_model, images_array, probabilities

__all__ = ["confidence_change", "deletion_insertion", "gaussian_blur", "road"]


def gaussian_blur(images: np.ndarray, sigma: float = 5.0) -> np.ndarray:
    """Blur each channel of (N, C, H, W) images with a Gaussian (reflect border)."""
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(images, sigma=(0, 0, sigma, sigma), mode="reflect").astype(images.dtype)


def _baseline(kind: Any, images: np.ndarray) -> np.ndarray:
    if isinstance(kind, (int, float)) and not isinstance(kind, bool):
        return np.full_like(images, float(kind))
    if kind == "zero":
        return np.zeros_like(images)
    if kind == "mean":
        return np.broadcast_to(images.mean(axis=(2, 3), keepdims=True), images.shape).copy()
    if kind == "blur":
        return gaussian_blur(images)
    raise ValueError(f"baseline: expected 'zero', 'mean', 'blur' or a number, got {kind!r}")


def _common(model, images, heatmaps, targets):
    x = images_array("images", images)
    h = heatmaps_array("heatmaps", heatmaps, x.shape[0], tuple(x.shape[2:]))
    n_classes = check_model(model, x)
    t = labels_array("targets", targets, x.shape[0])
    if t.size and t.max() >= n_classes:
        raise ValueError(f"targets: class {int(t.max())} is out of range for a model with {n_classes} outputs")
    return x, h, t


def deletion_insertion(
    model: Any,
    images: Any,
    heatmaps: Any,
    targets: Any,
    *,
    steps: int = 16,
    deletion_baseline: Any = "zero",
    insertion_baseline: Any = "blur",
    batch_size: int = 128,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Deletion and insertion curves and AUCs (RISE protocol).

    Returns:
        ``{"deletion_auc": (N,), "insertion_auc": (N,), "deletion_curve": (N, steps+1),
        "insertion_curve": (N, steps+1)}``.
    """
    x, h, t = _common(model, images, heatmaps, targets)
    steps = positive_int("steps", steps)
    n, c, height, width = x.shape
    pixels = height * width
    rng = np.random.default_rng(seed)
    tie = rng.random((n, pixels))
    order = np.lexsort((tie, -h.reshape(n, pixels)), axis=-1)  # by value desc, random ties
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(pixels)[None, :].repeat(n, 0), axis=1)
    del_base = _baseline(deletion_baseline, x)
    ins_base = _baseline(insertion_baseline, x)
    counts = np.round(np.linspace(0, pixels, steps + 1)).astype(int)
    curves = {"deletion": np.zeros((n, steps + 1)), "insertion": np.zeros((n, steps + 1))}
    for s, count in enumerate(counts):
        top = (rank < count).reshape(n, 1, height, width)
        deleted = np.where(top, del_base, x)
        inserted = np.where(top, x, ins_base)
        p_del = probabilities(model, deleted, batch_size)
        p_ins = probabilities(model, inserted, batch_size)
        curves["deletion"][:, s] = p_del[np.arange(n), t]
        curves["insertion"][:, s] = p_ins[np.arange(n), t]
    frac = counts / pixels
    return {
        "deletion_auc": np.trapezoid(curves["deletion"], frac, axis=1),
        "insertion_auc": np.trapezoid(curves["insertion"], frac, axis=1),
        "deletion_curve": curves["deletion"],
        "insertion_curve": curves["insertion"],
    }


def confidence_change(
    model: Any, images: Any, heatmaps: Any, targets: Any, *, baseline: Any = "zero", batch_size: int = 128
) -> dict[str, Any]:
    """Average drop and increase in confidence (GradCAM++ paper), in percent.

    Heatmaps must lie in [0, 1].

    Returns:
        ``{"average_drop": float, "increase": float, "drop": (N,), "increased": (N,) bool}``.
    """
    x, h, t = _common(model, images, heatmaps, targets)
    if h.size and (h.min() < 0 or h.max() > 1):
        raise ValueError(f"heatmaps: expected values in [0, 1], got [{h.min():.3g}, {h.max():.3g}]")
    base = _baseline(baseline, x)
    explanation = (base + h[:, None].astype(np.float32) * (x - base)).astype(np.float32)
    y = probabilities(model, x, batch_size)[np.arange(len(t)), t]
    o = probabilities(model, explanation, batch_size)[np.arange(len(t)), t]
    drop = np.maximum(0.0, y - o) / np.maximum(y, 1e-12)
    return {
        "average_drop": float(100 * drop.mean()),
        "increase": float(100 * (o > y).mean()),
        "drop": drop,
        "increased": o > y,
    }


def road(
    model: Any,
    images: Any,
    heatmaps: Any,
    targets: Any,
    *,
    percentages: Sequence[float] = (10, 30, 50, 70, 90),
    noise: float = 0.01,
    seed: int = 0,
    batch_size: int = 128,
) -> dict[str, Any]:
    """ROAD, MoRF order: accuracy after replacing the top p% pixels by noisy linear imputation.

    The imputation is Quantus 0.6's ``noisy_linear_imputation`` (each removed pixel becomes
    the mean of its 8 neighbours, solved as one sparse linear system, plus Gaussian noise of
    std ``noise``), applied to all channels of a pixel. The loop around it is written here
    because Quantus 0.6's ``ROAD`` metric ranks the attribution broadcast to all ``C x H x W``
    input values but indexes a one-channel mask with those ranks: on RGB inputs it raises
    ``IndexError`` (index >= H*W), and on a one-channel heatmap repeated over channels it
    would remove only ``p / C`` % of the pixels. Ties (CAMs are 0 over large areas) are
    broken at random (seeded). Lower accuracy = more faithful.

    Returns:
        ``{"percentages": [...], "accuracy": [...], "mean_accuracy": float, "correct": (N, P) bool}``.
    """
    x, h, t = _common(model, images, heatmaps, targets)
    from ._quantus import quantus

    impute = quantus().functions.perturb_func.noisy_linear_imputation
    pct = [float(p) for p in percentages]
    if not pct or min(pct) <= 0 or max(pct) >= 100:
        raise ValueError(f"percentages: expected values in (0, 100), got {list(percentages)}")
    n, _, height, width = x.shape
    pixels = height * width
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random((n, pixels)), -h.reshape(n, pixels)), axis=-1)
    np_state = np.random.get_state()
    np.random.seed(seed)  # Quantus' imputation noise draws from numpy's global generator
    correct = np.zeros((n, len(pct)), dtype=bool)
    try:
        for j, p in enumerate(pct):
            k = int(pixels * p / 100)
            perturbed = np.stack([impute(arr=x[i], indices=order[i, :k], noise=noise) for i in range(n)]).astype(np.float32)
            correct[:, j] = probabilities(model, perturbed, batch_size).argmax(1) == t
    finally:
        np.random.set_state(np_state)
    acc = correct.mean(axis=0)
    return {"percentages": pct, "accuracy": acc.tolist(), "mean_accuracy": float(acc.mean()), "correct": correct}
