"""Annealing problems captured from real explanations (needs torch; imported lazily).

:func:`capture_problems` runs QFS-CAM (through :func:`qfsel.explain_all`) on correctly
classified test images of a bundled model (narrow MNIST CNNs on MNIST, the paper-shaped
``shapes-paper-N`` on the shapes data, efficientnet-lite0 on the sample photos) and keeps each image's
feature-selection problem: the paper's qubits are the ``d`` maps with a positive GradCAM
weight, ``h = alpha / max alpha``, ``J = |cos|`` of the maps, ``beta = 0.7``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._checks import check_int
from ..qubo import FeatureSelectionProblem

__all__ = ["CapturedProblems", "capture_problems", "default_dataset"]


@dataclass
class CapturedProblems:
    """Problems of ``len(problems)`` images: their test-set indices, labels and sizes ``d``."""

    model: str
    problems: list[FeatureSelectionProblem]
    indices: np.ndarray
    labels: np.ndarray
    d: np.ndarray
    dataset: str = "mnist"


DATASETS = ("mnist", "shapes", "photos")


def default_dataset(model: str) -> str:
    """The dataset a bundled model was trained for: ``"shapes"`` for ``shapes-paper-N``,
    ``"photos"`` for ``efficientnet-lite0``, ``"mnist"`` otherwise (narrow MNIST CNNs and
    ``.pt`` checkpoints of ``python -m qfsel.train``)."""
    if isinstance(model, str) and model.startswith("shapes-paper-"):
        return "shapes"
    if model == "efficientnet-lite0":
        return "photos"
    return "mnist"


def _balanced(ok: np.ndarray, labels: np.ndarray, n_images: int, has_labels: bool) -> np.ndarray:
    """Indices of ``n_images`` correctly classified images, the same number per class (the
    first ones in dataset order; the remainder from the first classes), or the first images
    when the data has no labels."""
    if not has_labels:
        return np.arange(min(n_images, labels.size))
    classes = np.unique(labels)
    per, extra = divmod(n_images, classes.size)
    return np.sort(np.concatenate([np.flatnonzero(ok & (labels == c))[: per + (i < extra)] for i, c in enumerate(classes)]))


def capture_problems(
    model: str = "narrow-mnist-16",
    n_images: int = 200,
    *,
    dataset: str | None = None,
    beta: float = 0.7,
    k: int | None = None,
    candidates: int | None = None,
    pool: int | None = None,
    seed: int = 0,
    batch_size: int = 100,
) -> CapturedProblems:
    """Feature-selection problems of ``n_images`` correctly classified test images under a
    bundled model, as the paper chose them: the same number from each class
    (``n_images / classes``, the first ones in test-set order; the remainder from the first
    classes).

    Args:
        model: a name of :data:`qfsel.models.BUNDLED_MODELS` (``"narrow-mnist-16"``,
            ``"shapes-paper-24"``, ...) or a narrow-CNN ``.pt`` checkpoint.
        n_images: how many correctly classified images.
        dataset: ``"mnist"`` (:func:`qfsel.datasets.mnist5k` ``("test")``), ``"shapes"``
            (the test split of :func:`qfsel.datasets.shapes`, ``pool`` images, ``seed``) or
            ``"photos"`` (the sample photos, labelled by the model's own prediction); default
            :func:`default_dataset` of the model.
        beta: the problems' trade-off (the paper: 0.7).
        k: exactly-k problems (``None``: the paper's unconstrained form); images with fewer
            than ``k`` candidate maps are skipped.
        candidates: keep only this many most relevant maps (default the model's
            ``default_candidates``: all positive maps, 64 for efficientnet-lite0).
        pool: images loaded before choosing (default the whole MNIST test split, 1000
            shapes images, all photos).
        seed: the shapes test split's seed.
        batch_size: images per capture.

    Example:
        >>> from qfsel.quantum.capture import capture_problems
        >>> cap = capture_problems("shapes-paper-16", 4, pool=40)
        >>> len(cap.problems), cap.dataset, bool((cap.d >= 1).all())
        (4, 'shapes', True)
    """
    import torch

    from .. import cams
    from ..evaluation import load_eval_data
    from ..models import EFFICIENTNET_LITE0_CANDIDATES

    if not isinstance(model, str) or not model:
        raise ValueError(f"model: expected a bundled model name or a .pt path, got {model!r}")
    dataset = default_dataset(model) if dataset is None else dataset
    if dataset not in DATASETS:
        raise ValueError(f"dataset: expected one of {', '.join(DATASETS)}, got {dataset!r}")
    n_images = check_int("n_images", n_images, low=1, high=1000)
    batch_size = check_int("batch_size", batch_size, low=1)
    if candidates is not None:
        candidates = check_int("candidates", candidates, low=1)
    if pool is not None:
        pool = check_int("pool", pool, low=2)
    data = load_eval_data(model, dataset, pool, seed=seed)
    net = data.model.eval()
    images = torch.from_numpy(data.images)
    captured: list[tuple[np.ndarray, np.ndarray]] = []

    class _Capturing(cams.QFSCAM):
        """QFS-CAM that also records the problems it solves (the hook is ``_solve``)."""

        def _solve(self, name: str, h_all: np.ndarray, j_all: np.ndarray, beta_: float, cands: list) -> Any:
            captured.extend((h.copy(), j.copy()) for h, j in self.unpadded_problems(h_all, j_all, cands))
            return super()._solve(name, h_all, j_all, beta_, cands)

    cands = (EFFICIENTNET_LITE0_CANDIDATES if model == "efficientnet-lite0" else None) if candidates is None else candidates
    cam = _Capturing(net, [data.layer], beta=beta, sampler="exact", candidates=cands)
    problems: list[FeatureSelectionProblem] = []
    idx: list[int] = []
    labs: list[int] = []
    with torch.no_grad():
        pred_all = torch.cat([net(images[lo : lo + batch_size]) for lo in range(0, len(images), batch_size)]).argmax(1).numpy()
    lab = data.labels
    correct = _balanced(pred_all == lab, lab, n_images, data.has_labels)
    for lo in range(0, len(correct), batch_size):
        if len(problems) >= n_images:
            break
        chosen = correct[lo : lo + batch_size]
        captured.clear()
        cams.explain_all(net, images[chosen], [data.layer], methods=("qfs",), explainers={"qfs": cam}, targets=None)
        for j, (h, J) in zip(chosen, captured):
            if len(problems) >= n_images:
                break
            if k is not None and h.size < k:
                continue
            problems.append(FeatureSelectionProblem(h, J, beta, k))
            idx.append(int(j))
            labs.append(int(lab[j]))
    return CapturedProblems(model, problems, np.array(idx, dtype=np.int64), np.array(labs, dtype=np.int64),
                            np.array([p.num_variables for p in problems], dtype=np.int64), dataset)
