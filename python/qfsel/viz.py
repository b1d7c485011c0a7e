"""Heatmap overlays and side-by-side comparison grids, saved as PNG.

Functions take numpy arrays, not explainer objects: images ``(H, W)`` or
``(H, W, 3)`` as floats in [0, 1] or uint8, heatmaps ``(H, W)`` in [0, 1].
Rendering uses matplotlib's object API with the Agg canvas (no pyplot state,
no window, no ``plt.show``).

Example:
    >>> import numpy as np, tempfile, os
    >>> from qfsel.viz import overlay, save_comparison_grid, show_cam_on_image
    >>> img = np.random.default_rng(0).random((16, 16, 3))
    >>> heat = np.linspace(0, 1, 256).reshape(16, 16)
    >>> overlay(img, heat).shape
    (16, 16, 3)
    >>> show_cam_on_image(img, heat).dtype   # pytorch-grad-cam style: uint8 RGB
    dtype('uint8')
    >>> path = os.path.join(tempfile.mkdtemp(), "grid.png")
    >>> _ = save_comparison_grid(path, img[None], {"GradCAM": heat[None]}, class_names=["cat"])
    >>> os.path.getsize(path) > 0
    True
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._checks import check_positive_real, check_unit_interval

__all__ = ["as_rgb", "comparison_grid", "overlay", "save_comparison_grid", "save_overlay", "show_cam_on_image"]


def _as_array(value: Any) -> np.ndarray:
    """``np.asarray(value)``; a torch tensor is detached and copied to the CPU first (a heatmap
    of ``explain(..., as_tensor=True)`` on the GPU, an image that requires grad), and one of a
    dtype numpy lacks (bfloat16) is read as float32. torch is not imported for numpy input."""
    if hasattr(value, "detach") and hasattr(value, "cpu") and type(value).__module__.startswith("torch"):
        value = value.detach().cpu()
        try:
            return value.numpy()
        except TypeError:  # bfloat16: no numpy dtype
            return value.float().numpy()
    return np.asarray(value)


def as_rgb(image: Any, name: str = "image") -> np.ndarray:
    """Converts an (H, W) or (H, W, 3) image (uint8, or float in [0, 1]) to float (H, W, 3) in [0, 1].

    A numpy array, or a torch tensor (on any device) in the same layout.
    """
    arr = _as_array(image)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name}: expected an array of uint8 or float values, got {type(image).__name__} of dtype {arr.dtype}"
        )
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[2] not in (1, 3):
        raise ValueError(
            f"{name}: expected (H, W) or (H, W, 3) channels-last, got shape {arr.shape} "
            f"(channels first? use image.{'permute' if arr is not image and hasattr(image, 'permute') else 'transpose'}(1, 2, 0))"
        )
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(f"{name}: expected (H, W) or (H, W, 3), got shape {arr.shape}")
    if arr.dtype == np.uint8:
        out = arr.astype(np.float64) / 255.0
    elif arr.dtype.kind in "fiu" and arr.dtype != np.bool_:
        out = arr.astype(np.float64)
        if not np.isfinite(out).all():
            raise ValueError(f"{name}: expected float values in [0, 1] (or a uint8 image), got NaN or inf")
        # a hair outside [0, 1] is rounding (e.g. an image un-normalised as x * std + mean): clipped,
        # with the heatmaps' tolerance
        if out.size and (out.min() < -1e-6 or out.max() > 1 + 1e-6):
            raise ValueError(
                f"{name}: expected float values in [0, 1] (or a uint8 image), got range "
                f"[{out.min():.3g}, {out.max():.3g}]"
            )
        out = np.clip(out, 0.0, 1.0)
    else:
        raise TypeError(f"{name}: expected uint8 or float values, got dtype {arr.dtype}")
    if out.ndim == 2:
        out = np.repeat(out[:, :, None], 3, axis=2)
    return out


def _check_heatmap(heatmap: Any, shape: tuple[int, int], name: str = "heatmap") -> np.ndarray:
    raw = _as_array(heatmap)
    if raw.dtype.kind not in "biuf":
        raise TypeError(
            f"{name}: expected an (H, W) array of numbers in [0, 1], got {type(heatmap).__name__} of dtype {raw.dtype}"
        )
    h = raw.astype(np.float64)
    if h.ndim != 2:
        raise ValueError(f"{name}: expected an (H, W) map, got shape {h.shape}")
    if h.shape != shape:
        raise ValueError(
            f"{name}: expected the image's size {shape}, got shape {h.shape} "
            "(explain with upsample=True to get input-size heatmaps)"
        )
    if not np.isfinite(h).all():
        raise ValueError(f"{name}: expected finite values in [0, 1], got NaN or inf")
    if h.size and (h.min() < -1e-6 or h.max() > 1 + 1e-6):
        raise ValueError(f"{name}: expected finite values in [0, 1], got range [{h.min():.3g}, {h.max():.3g}]")
    return np.clip(h, 0.0, 1.0)


def overlay(image: Any, heatmap: Any, *, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """Blends a colour-mapped heatmap over an image.

    Args:
        image: (H, W) or (H, W, 3), uint8 or float in [0, 1].
        heatmap: (H, W) in [0, 1].
        alpha: weight of the heatmap colour, in [0, 1].
        cmap: a matplotlib colormap name.

    Returns:
        (H, W, 3) float64 in [0, 1]: ``(1 - alpha) * image + alpha * cmap(heatmap)``.
    """
    from matplotlib import colormaps

    alpha = check_unit_interval("alpha", alpha)
    if cmap not in colormaps:
        raise ValueError(f"cmap: expected a matplotlib colormap name, got {cmap!r}")
    rgb = as_rgb(image)
    heat = _check_heatmap(heatmap, rgb.shape[:2])
    colour = colormaps[cmap](heat)[:, :, :3]
    return np.clip((1.0 - alpha) * rgb + alpha * colour, 0.0, 1.0)


def show_cam_on_image(
    image: Any,
    heatmap: Any,
    *,
    alpha: float | None = None,
    cmap: str = "jet",
    use_rgb: bool = True,
    image_weight: float | None = None,
) -> np.ndarray:
    """:func:`overlay` as an 8-bit RGB picture, like pytorch-grad-cam's ``show_cam_on_image``.

    pytorch-grad-cam's keywords work too: ``image_weight`` (the image's weight, ``1 - alpha``)
    and ``use_rgb`` (False: the heatmap colours in BGR order, for an image in OpenCV's BGR
    order; the result is then BGR as well).

    Args:
        image: (H, W) or (H, W, 3), uint8 or float in [0, 1] (RGB order).
        heatmap: (H, W) in [0, 1], e.g. ``cam(batch)[0]``; numpy arrays or torch tensors
            (on any device, e.g. from ``as_tensor=True``) for both.
        alpha: weight of the heatmap colour, in [0, 1]; default 0.5 (pytorch-grad-cam's
            ``image_weight`` is ``1 - alpha``).
        cmap: a matplotlib colormap name.
        use_rgb: True (default): RGB colours; False: BGR (see above).
        image_weight: the image's weight in [0, 1], instead of ``alpha``.

    Returns:
        (H, W, 3) uint8 RGB (BGR with ``use_rgb=False``), ready for ``PIL.Image.fromarray``.
    """
    if not isinstance(use_rgb, (bool, np.bool_)):
        raise TypeError(f"use_rgb: expected a bool, got {type(use_rgb).__name__} {use_rgb!r}")
    if image_weight is not None:
        if alpha is not None:
            raise ValueError(
                f"alpha={alpha!r} and image_weight={image_weight!r} given: pass one (alpha = 1 - image_weight)"
            )
        alpha = 1.0 - check_unit_interval("image_weight", image_weight)
    alpha = 0.5 if alpha is None else alpha
    if use_rgb:
        return np.rint(overlay(image, heatmap, alpha=alpha, cmap=cmap) * 255.0).astype(np.uint8)
    from matplotlib import colormaps

    alpha = check_unit_interval("alpha", alpha)
    if cmap not in colormaps:
        raise ValueError(f"cmap: expected a matplotlib colormap name, got {cmap!r}")
    rgb = as_rgb(image)
    colour = colormaps[cmap](_check_heatmap(heatmap, rgb.shape[:2]))[:, :, 2::-1]  # BGR
    return np.rint(np.clip((1.0 - alpha) * rgb + alpha * colour, 0.0, 1.0) * 255.0).astype(np.uint8)


def save_overlay(
    path: str | os.PathLike[str],
    image: Any,
    heatmap: Any,
    *,
    alpha: float = 0.5,
    cmap: str = "jet",
    title: str | None = None,
) -> Path:
    """Writes :func:`overlay` as a PNG; returns the path.

    Without ``title``, the PNG has the image's resolution, pixel for pixel. With a
    ``title`` (e.g. ``"7 - QFS-CAM, 3 maps"``) the overlay is drawn below that text
    line, and the title is also stored as the PNG's ``Title`` text chunk.
    """
    path = Path(path)
    pixels = overlay(image, heatmap, alpha=alpha, cmap=cmap)
    if title is None:
        from matplotlib.image import imsave

        imsave(path, pixels, format="png")
        return path
    if not isinstance(title, str):
        raise TypeError(f"title: expected a str or None, got {type(title).__name__}")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    height, width = pixels.shape[:2]
    dpi = 100
    band = 28  # pixels of title
    fig = Figure(figsize=(width / dpi, (height + band) / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, height / (height + band)))
    ax.imshow(pixels, interpolation="nearest")
    ax.set_axis_off()
    fig.text(0.5, 1.0 - 0.5 * band / (height + band), title, ha="center", va="center", fontsize=9)
    fig.savefig(path, format="png", dpi=dpi, metadata={"Title": title})
    return path


def comparison_grid(
    images: Sequence[Any] | np.ndarray,
    heatmaps: Mapping[str, Sequence[Any] | np.ndarray],
    *,
    class_names: Sequence[str] | None = None,
    scores: Mapping[str, Sequence[float] | np.ndarray] | None = None,
    num_selected: Mapping[str, Sequence[int] | np.ndarray] | None = None,
    alpha: float = 0.5,
    cmap: str = "jet",
    panel_size: float = 2.2,
) -> Any:
    """Builds a figure: one row per image, columns image | one overlay per method.

    Args:
        images: N images, each (H, W) or (H, W, 3).
        heatmaps: method name -> N heatmaps (H, W) in [0, 1], in column order
            (e.g. {"GradCAM": ..., "GradCAM++": ..., "QFS-CAM": ...}).
        class_names: N labels (the explained class) for the titles.
        scores: method name -> N target scores shown in that method's titles.
        num_selected: method name -> N counts of selected maps (QFS-CAM).
        alpha, cmap: overlay blending (see :func:`overlay`).
        panel_size: inches per panel.

    Returns:
        A ``matplotlib.figure.Figure`` attached to an Agg canvas.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(images)
    if n == 0:
        raise ValueError("images: expected at least one image, got none")
    if not isinstance(heatmaps, Mapping):
        raise TypeError(
            f"heatmaps: expected a mapping of method name -> N heatmaps (e.g. {{'GradCAM': maps}}), "
            f"got {type(heatmaps).__name__}"
        )
    check_positive_real("panel_size", panel_size, "a positive number of inches")
    if not heatmaps:
        raise ValueError("heatmaps: expected at least one method, got an empty mapping")
    for method, maps in heatmaps.items():
        if len(maps) != n:
            raise ValueError(f"heatmaps[{method!r}]: expected {n} maps (one per image), got {len(maps)}")
    for label, table in (("scores", scores), ("num_selected", num_selected)):
        for method, values in (table or {}).items():
            if method not in heatmaps:
                raise ValueError(f"{label}: key {method!r} is not a method of heatmaps {list(heatmaps)}")
            if len(values) != n:
                raise ValueError(f"{label}[{method!r}]: expected {n} values, got {len(values)}")
    if class_names is not None and len(class_names) != n:
        raise ValueError(f"class_names: expected {n} names, got {len(class_names)}")

    cols = 1 + len(heatmaps)
    fig = Figure(figsize=(panel_size * cols, panel_size * n + 0.3), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, cols, squeeze=False)
    for i in range(n):
        rgb = as_rgb(images[i], f"images[{i}]")
        name = None if class_names is None else str(class_names[i])
        ax = axes[i][0]
        ax.imshow(rgb, interpolation="nearest")
        ax.set_title("image" if name is None else name, fontsize=9)
        for j, (method, maps) in enumerate(heatmaps.items(), start=1):
            ax = axes[i][j]
            ax.imshow(overlay(rgb, maps[i], alpha=alpha, cmap=cmap), interpolation="bilinear")
            parts = [method]
            second = []
            if name is not None:
                second.append(name)
            if scores is not None and method in scores:
                second.append(f"{float(scores[method][i]):.2f}")
            if second:
                parts.append(" ".join(second))
            if num_selected is not None and method in num_selected:
                parts.append(f"{int(num_selected[method][i])} maps")
            ax.set_title("\n".join(parts), fontsize=9)
    for row in axes:
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return fig


def save_comparison_grid(
    path: str | os.PathLike[str],
    images: Sequence[Any] | np.ndarray,
    heatmaps: Mapping[str, Sequence[Any] | np.ndarray],
    *,
    dpi: int = 100,
    **kwargs: Any,
) -> Path:
    """Builds :func:`comparison_grid` and writes it as a PNG; returns the path."""
    check_positive_real("dpi", dpi)
    fig = comparison_grid(images, heatmaps, **kwargs)
    path = Path(path)
    fig.savefig(path, format="png", dpi=dpi)
    return path
