"""Running a model on numpy batches for the metrics (checks its output is (B, C))."""

from __future__ import annotations

from typing import Any

import numpy as np


def check_model(model: Any, sample: np.ndarray) -> int:
    """Run ``model`` on one sample; return the number of classes. Errors name ``model``."""
    import torch

    if not callable(model):
        raise TypeError(f"model: expected a callable torch module, got {type(model).__name__}")
    with torch.no_grad():
        out = model(torch.as_tensor(sample[:1], dtype=torch.float32))
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 1:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"model: expected an output of shape (B, C) (class scores), got {shape} for B = 1")
    return int(out.shape[1])


def probabilities(model: Any, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Softmax of ``model`` on ``images`` (N, ...), in batches, as float64 (N, C)."""
    import torch

    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            logits = model(torch.as_tensor(images[start : start + batch_size], dtype=torch.float32))
            out.append(torch.softmax(logits.double(), dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


def images_array(name: str, images: Any) -> np.ndarray:
    arr = np.asarray(images.detach().cpu().numpy() if hasattr(images, "detach") else images)
    if arr.ndim != 4:
        raise ValueError(f"{name}: expected (N, C, H, W) model inputs, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite float inputs, got dtype {arr.dtype} (or NaN/inf)")
    return arr.astype(np.float32, copy=False)
