"""A picture of a results store: the first explained images with every method's heatmap."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._checks import check_positive_int

__all__ = ["save_preview"]

_TITLES = {"qfs": "QFS-CAM", "gradcam": "GradCAM", "gradcam++": "GradCAM++"}


def _display(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) model input -> (H, W) or (H, W, 3) in [0, 1], min-max scaled (inputs are often
    normalised, so their range is not [0, 1])."""
    arr = image.detach().float().cpu().numpy()
    arr = arr[0] if arr.shape[0] == 1 else np.moveaxis(arr[:3], 0, -1)
    lo, hi = float(arr.min()), float(arr.max())
    return (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)


def save_preview(
    out: str | os.PathLike[str],
    dataset: Any,
    path: str | os.PathLike[str] | None = None,
    *,
    n: int = 6,
    model: Any = None,
    transform: Any = None,
    resize: Any = None,
) -> Path:
    """Writes a PNG of ``n`` explained images of the store ``out`` (spread evenly over the explained
    ones, the first and the last included): one row per image,
    the image (display-scaled) and each method's heatmap over it, titled with the predicted class
    (and QFS-CAM's number of maps).

    Args:
        out: the store folder written by :func:`qfsel.explain_dataset`.
        dataset: the dataset the job explained (the store keeps heatmaps, not images).
        path: the PNG to write (default: ``out/preview.png``).
        n: images shown (fewer when fewer are explained).
        model: the bundled model name or checkpoint path when the job was given one: its
            preprocessing reads the image files.
        transform, resize: as given to :func:`qfsel.explain_dataset` for an image folder.

    Returns:
        The path written.

    Raises:
        ValueError: the store has no explained image yet, or ``dataset`` is not the one it explained.
    """
    from ..viz import save_comparison_grid
    from .sources import Loadable, dataset_fingerprint, resolve_dataset
    from .store import open_results

    n = check_positive_int("n", n)
    res = open_results(out)
    # the explained images: those of the complete batches, less the failures (both small to read)
    explained = np.setdiff1d(res.done_indices(), res.failures()["index"].to_numpy())
    if explained.size == 0:
        raise ValueError(f"out: the store {out} has no explained image yet")
    # spread over the dataset (folders and bundled sets are often sorted by class)
    picks = np.unique(np.round(np.linspace(0, explained.size - 1, min(n, explained.size))).astype(int))
    indices = [int(explained[j]) for j in picks]
    # only the record parts of the batches shown are read
    bs = int(res.manifest["config"]["batch_size"])
    records = res.records(batches={i // bs for i in indices})
    if transform is None and isinstance(model, (str, os.PathLike)):
        from ..models import load_model

        pre = load_model(model).preprocess

        def transform(image: Any) -> torch.Tensor:
            return pre(image)[0]

    channels = int(res.manifest["config"]["input_shape"][0])
    ds, _ = resolve_dataset(dataset, transform=transform, resize=resize, channels=channels)
    stored = res.manifest["config"].get("dataset")
    if len(ds) != res.num_images or (stored is not None and dataset_fingerprint(ds) != stored):
        raise ValueError(f"dataset: not the dataset the job explained ({len(ds)} images, fingerprint "
                         f"{dataset_fingerprint(ds)}; the store: {res.num_images} images, fingerprint {stored})")
    items = Loadable(ds, None, channels)
    images = []
    for i in indices:
        item = items[i]
        if item.image is None:
            raise ValueError(f"dataset: image {i} cannot be loaded now ({item.reason}); pass the dataset the job explained")
        images.append(item.image)
    shape = tuple(images[0].shape[1:])
    heat: dict[str, np.ndarray] = {}
    count: dict[str, np.ndarray] = {}
    for m in res.methods:
        maps = torch.from_numpy(np.asarray(res.heatmaps(m).get_orthogonal_selection((indices,)), dtype=np.float32))
        if tuple(maps.shape[1:]) != shape:  # layer resolution: upsampled for the picture
            maps = torch.nn.functional.interpolate(maps[:, None], size=shape, mode="bilinear", align_corners=False)[:, 0]
        heat[_TITLES.get(m, m)] = np.clip(np.nan_to_num(maps.numpy()), 0.0, 1.0)
        if m == "qfs":
            rec = records[records["method"] == m].set_index("index")
            count[_TITLES[m]] = np.array([int(rec.loc[i, "num_selected"]) for i in indices])
    first = records.drop_duplicates("index").set_index("index")
    names = [f"#{i} class {int(first.loc[i, 'predicted'])}" for i in indices]
    target = Path(path) if path is not None else Path(out) / "preview.png"
    save_comparison_grid(target, [_display(im) for im in images], heat, class_names=names,
                         num_selected=count or None)
    return target
