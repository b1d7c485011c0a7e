"""Sanity checks (Adebayo et al. 2018): cascading model-parameter randomisation, random logit.

Both take an ``explain_fn(model, images, targets) -> {method: (N, H, W) heatmaps}`` (or one
array), so all methods are explained from one capture per model state.

* **Cascading randomisation**: the parameters of the given layers are replaced, one layer at a
  time from the output down and cumulatively, by draws from a normal distribution with each
  tensor's own mean and standard deviation (seeded; a constant tensor, such as a fresh
  BatchNorm weight, gets standard deviation ``0.5 * max(|mean|, 1)``); after each layer the
  explanations are recomputed (for the classes explained on the trained model) and compared
  with the trained model's by the Spearman rank correlation per image. A method that explains
  the model must give correlations that fall as more of the model is randomised. A map that
  becomes flat counts as correlation 0.
* **Random logit**: the map for the explained class against the map for a random other class
  (seeded), by Spearman correlation per image: a class-sensitive method gives low values.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Sequence

import numpy as np

from ._checks import labels_array

__all__ = ["default_cascade", "model_randomisation", "random_logit", "spearman_rows"]


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of each pair of rows (flattened maps); 0 where either row is constant."""
    from scipy.stats import rankdata

    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    if a.shape != b.shape:
        raise ValueError(f"maps: shapes {a.shape} and {b.shape} differ")
    ra = rankdata(a, axis=1)
    rb = rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    den = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    return np.divide((ra * rb).sum(axis=1), den, out=np.zeros(len(a)), where=den > 0)


def default_cascade(model: Any, max_layers: int = 8) -> list[str]:
    """Names of the modules that own parameters, from the output down (at most ``max_layers``)."""
    names = [n for n, m in model.named_modules() if n and any(True for _ in m.parameters(recurse=False))]
    return names[::-1][:max_layers]


def _as_dict(maps: Any) -> dict[str, np.ndarray]:
    if isinstance(maps, dict):
        return {k: np.asarray(v) for k, v in maps.items()}
    return {"map": np.asarray(maps)}


def _randomise(module: Any, rng: np.random.Generator) -> None:
    import torch

    with torch.no_grad():
        for p in module.parameters(recurse=True):
            flat = p.detach().double().cpu().numpy().ravel()
            mean = float(flat.mean()) if flat.size else 0.0
            std = float(flat.std()) if flat.size > 1 else 0.0
            if std == 0.0:
                std = 0.5 * max(abs(mean), 1.0)
            p.copy_(torch.from_numpy(rng.normal(mean, std, tuple(p.shape))).to(p.dtype))


def model_randomisation(
    explain_fn: Callable[..., Any],
    model: Any,
    images: Any,
    targets: Any,
    *,
    layers: Sequence[str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Cascading model-parameter randomisation test.

    Args:
        explain_fn: ``(model, images, targets) -> {method: (N, H, W)}`` or an (N, H, W) array.
        model: the trained model (not modified: a deep copy is randomised).
        images: model inputs (a tensor or array the ``explain_fn`` accepts).
        targets: (N,) explained classes.
        layers: module names to randomise, top first (default :func:`default_cascade`).
        seed: randomisation seed.

    Returns:
        ``{"layers": [...], "spearman": {method: (L, N)}, "mean": {method: [L floats]}}``.
    """
    t = labels_array("targets", targets, len(images))
    names = list(default_cascade(model) if layers is None else layers)
    modules = dict(model.named_modules())
    unknown = [n for n in names if n not in modules]
    if unknown:
        raise ValueError(f"layers: unknown module names {unknown}")
    base = _as_dict(explain_fn(model, images, t))
    work = copy.deepcopy(model).eval()
    work_modules = dict(work.named_modules())
    rng = np.random.default_rng(seed)
    corr: dict[str, list[np.ndarray]] = {k: [] for k in base}
    for name in names:
        _randomise(work_modules[name], rng)
        maps = _as_dict(explain_fn(work, images, t))
        for k in base:
            corr[k].append(spearman_rows(base[k], maps[k]))
    spearman = {k: np.stack(v) if v else np.zeros((0, len(t))) for k, v in corr.items()}
    return {"layers": names, "spearman": spearman, "mean": {k: v.mean(axis=1).tolist() for k, v in spearman.items()}}


def random_logit(
    explain_fn: Callable[..., Any], model: Any, images: Any, targets: Any, n_classes: int, *, seed: int = 0
) -> dict[str, Any]:
    """Random-logit test: Spearman correlation of the maps for the explained and a random other class.

    Returns:
        ``{"other": (N,) classes drawn, "spearman": {method: (N,)}, "mean": {method: float}}``.
    """
    t = labels_array("targets", targets, len(images))
    if n_classes < 2:
        raise ValueError(f"n_classes: the random-logit test needs at least 2 classes, got {n_classes}")
    rng = np.random.default_rng(seed)
    other = (t + rng.integers(1, n_classes, len(t))) % n_classes
    a = _as_dict(explain_fn(model, images, t))
    b = _as_dict(explain_fn(model, images, other))
    s = {k: spearman_rows(a[k], b[k]) for k in a}
    return {"other": other, "spearman": s, "mean": {k: float(v.mean()) for k, v in s.items()}}
