"""Capture benchmark instances from real QFS-CAM explanations (needs torch).

:func:`capture` runs :class:`qfsel.QFSCAM` on a batch and saves, for every image, the QUBO it built
(relevance, redundancy, beta, k) with the candidate maps and their GradCAM weights, so that the
explanation of any selection can be rebuilt (:meth:`Instance.heatmap`). :func:`capture_bundled`
does it on the bundled data: MNIST test digits for ``narrow-mnist-*`` and scikit-image's photos
for ``efficientnet-lite0``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .._checks import check_int
from ._format import Instance

__all__ = ["capture", "capture_bundled"]


def capture(model: Any, inputs: Any, layer: str, *, k: int | None, beta: float = 0.7, candidates: int | None = None,
            model_name: str = "model", image_names: Sequence[str] | None = None, labels: Sequence[Any] | None = None,
            sampler: Any = "greedy", name_prefix: str | None = None) -> list[Instance]:
    """One :class:`Instance` per input image, as QFS-CAM builds it on ``layer``.

    ``sampler`` only completes the explanation run (the instances do not depend on it).
    """
    from ..cams import QFSCAM

    records: list[dict[str, Any]] = []

    class _Recording(QFSCAM):
        def _problems(self, layer_cap, alpha, rel, cands):
            hs, js, b = super()._problems(layer_cap, alpha, rel, cands)
            acts = layer_cap.activations.detach().float().cpu().numpy()
            al = alpha.detach().double().cpu().numpy()
            for i, (c, (h, j)) in enumerate(zip(cands, self.unpadded_problems(hs, js, cands))):
                records.append({"h": h.copy(), "j": j.copy(), "beta": b, "cands": np.asarray(c), "maps": acts[i, c],
                                "alpha": al[i, c], "layer": layer_cap.name})
            return hs, js, b

    cam = _Recording(model, [layer], beta=beta, k=k, sampler=sampler, candidates=candidates, seed=0)
    result = cam.explain(inputs)
    prefix = name_prefix or model_name
    out = []
    for i, rec in enumerate(records):
        img = image_names[i] if image_names is not None else f"image{i}"
        prov = {"source": "captured", "model": model_name, "layer": rec["layer"], "image": img,
                "label": None if labels is None else str(labels[i]), "predicted": int(result.predicted[i]),
                "candidates_cap": candidates, "relevance": "gradcam", "redundancy": "cosine"}
        j = (rec["j"] + rec["j"].T) / 2
        np.fill_diagonal(j, 0.0)
        name = f"{prefix}-{img}-d{len(rec['h'])}-k{k}"
        out.append(Instance(name=name, relevance=rec["h"], redundancy=j, beta=rec["beta"], k=k, family="captured",
                            provenance=prov, maps=rec["maps"], alpha=rec["alpha"], candidates=rec["cands"]))
    return out


def capture_bundled(model_name: str, *, n: int = 8, k: int | None = 3, beta: float = 0.7,
                    candidates: int | None = None) -> list[Instance]:
    """Instances from a bundled model on bundled data.

    ``narrow-mnist-16/24/32``: the first ``n`` (at most 1000) MNIST test digits (``qfsel.datasets.mnist5k``), all
    positive maps as candidates. ``efficientnet-lite0``: scikit-image's four photos (``n`` ignored
    beyond 4), the ``candidates`` most relevant positive maps of its head (16..256).
    """
    import torch

    from ..datasets import mnist5k, sample_photos
    from ..models import load_model

    bundle = load_model(model_name)
    if model_name.startswith("narrow-mnist-"):
        x, y = mnist5k("test")
        n = check_int("n", n, low=1, high=len(y))  # x[:n] would quietly give fewer instances than asked for
        x, y = x[:n], y[:n]
        names = [f"mnist-test{i}" for i in range(len(y))]
        labels = [int(v) for v in y]
    else:
        photos = sample_photos()
        names = list(photos)[:n]
        x = torch.cat([bundle.preprocess(photos[p]) for p in names])
        labels = None
    prefix = model_name if candidates is None else f"{model_name}-c{candidates}"
    return capture(bundle.model, x, bundle.default_layer, k=k, beta=beta, candidates=candidates, model_name=model_name,
                   image_names=names, labels=labels, name_prefix=prefix)
