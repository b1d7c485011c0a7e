"""Annealing problems captured from real explanations (needs torch; imported lazily).

:func:`capture_problems` runs QFS-CAM (through :func:`qfsel.explain_all`) on correctly
classified test images of a bundled MNIST narrow CNN and keeps each image's
feature-selection problem: the paper's qubits are the ``d`` maps with a positive GradCAM
weight, ``h = alpha / max alpha``, ``J = |cos|`` of the maps, ``beta = 0.7``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._checks import check_int
from ..qubo import FeatureSelectionProblem

__all__ = ["CapturedProblems", "capture_problems"]


@dataclass
class CapturedProblems:
    """Problems of ``len(problems)`` images: their test-set indices, labels and sizes ``d``."""

    model: str
    problems: list[FeatureSelectionProblem]
    indices: np.ndarray
    labels: np.ndarray
    d: np.ndarray


def capture_problems(model: str = "narrow-mnist-16", n_images: int = 200, *, beta: float = 0.7, k: int | None = None, batch_size: int = 100) -> CapturedProblems:
    """Feature-selection problems of ``n_images`` correctly classified images of
    :func:`qfsel.datasets.mnist5k` ``("test")`` under a bundled narrow MNIST model, as the
    paper chose them: the same number from each class (``n_images / 10``, the first ones in
    test-set order; the remainder from the first classes).

    Args:
        model: ``"narrow-mnist-16"``, ``"narrow-mnist-24"`` or ``"narrow-mnist-32"``.
        n_images: how many correctly classified images (in test-set order).
        beta: the problems' trade-off (the paper: 0.7).
        k: exactly-k problems (``None``: the paper's unconstrained form); images with fewer
            than ``k`` candidate maps are skipped.
        batch_size: images per capture.
    """
    import torch

    from .. import cams
    from ..datasets import mnist5k
    from ..models import load_model

    if not (isinstance(model, str) and model.startswith("narrow-mnist-")):
        raise ValueError(f"model: expected 'narrow-mnist-16', 'narrow-mnist-24' or 'narrow-mnist-32', got {model!r}")
    n_images = check_int("n_images", n_images, low=1, high=1000)
    batch_size = check_int("batch_size", batch_size, low=1)
    bundle = load_model(model)
    net = bundle.model.eval()
    images, labels = mnist5k("test")
    captured: list[tuple[np.ndarray, np.ndarray]] = []

    class _Capturing(cams.QFSCAM):
        """QFS-CAM that also records the problems it solves (the hook is ``_solve``)."""

        def _solve(self, name: str, h_all: np.ndarray, j_all: np.ndarray, beta_: float, cands: list) -> Any:
            captured.extend((h.copy(), j.copy()) for h, j in self.unpadded_problems(h_all, j_all, cands))
            return super()._solve(name, h_all, j_all, beta_, cands)

    cam = _Capturing(net, [bundle.default_layer], beta=beta, sampler="exact")
    problems: list[FeatureSelectionProblem] = []
    idx: list[int] = []
    labs: list[int] = []
    with torch.no_grad():
        pred_all = net(images).argmax(1).numpy()
    lab = labels.numpy()
    ok = pred_all == lab
    per, extra = divmod(n_images, 10)
    correct = np.sort(np.concatenate([np.flatnonzero(ok & (lab == c))[: per + (c < extra)] for c in range(10)]))
    for lo in range(0, len(correct), batch_size):
        if len(problems) >= n_images:
            break
        chosen = correct[lo : lo + batch_size]
        captured.clear()
        cams.explain_all(net, images[chosen], [bundle.default_layer], methods=("qfs",), explainers={"qfs": cam}, targets=None)
        for j, (h, J) in zip(chosen, captured):
            if len(problems) >= n_images:
                break
            if k is not None and h.size < k:
                continue
            problems.append(FeatureSelectionProblem(h, J, beta, k))
            idx.append(int(j))
            labs.append(int(labels[j]))
    return CapturedProblems(model, problems, np.array(idx), np.array(labs), np.array([p.num_variables for p in problems]))
