"""``qfsel.evaluate``: explain a test split with every method and score it with :mod:`qfsel.metrics`.

One run explains the images (all methods from one capture per batch, :func:`qfsel.explain_all`),
computes the paper's disentanglement measure and its GradCAM/GradCAM++ counterparts, the
embedding separation scores with bootstrap CIs, localization (when masks exist), faithfulness
and sanity checks on subsets, and writes ``metrics.json``, ``metrics.csv``, PNG figures and a
self-contained ``report.html`` (figures embedded as data URIs; opens offline).
:func:`ablate` reruns QFS-CAM under other settings (k, beta, relevance, redundancy, objective,
solver) and scores each.

Only correctly classified images are explained by default, as in the paper.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from . import metrics as M
from .exceptions import QFSelWarning

__all__ = ["ABLATIONS", "EvalData", "Explained", "ablate", "evaluate", "explain_dataset", "load_eval_data"]

METHOD_LABELS = {"qfs": "QFS-CAM", "gradcam": "GradCAM", "gradcam++": "GradCAM++"}

ABLATIONS: dict[str, list[dict[str, Any]]] = {
    "k": [{"k": None}, {"k": 4}, {"k": 8}, {"k": 16}],
    "beta": [{"beta": 0.5}, {"beta": 0.7}, {"beta": 0.9}],
    "relevance": [{"relevance": "gradcam"}, {"relevance": "taylor"}, {"relevance": "ablation"}],
    "redundancy": [{"redundancy": "cosine"}, {"redundancy": "contribution"}, {"redundancy": None}],
    "objective": [{"objective": "relevance-redundancy", "k": 4}, {"objective": "representative", "k": 4}],
    "solver": [{"sampler": "exact"}, {"sampler": "sa"}, {"sampler": "tabu"}, {"sampler": "greedy"}],
}
"""The ablation grid of :func:`ablate`: one list of QFS-CAM settings per studied parameter."""


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


@dataclass
class EvalData:
    """What :func:`evaluate` explains.

    Attributes:
        model: the network (eval mode); output (B, C).
        layer: name of the explained layer.
        images: (N, C, H, W) float32 model inputs.
        labels: (N,) classes (for photos without labels: the model's predictions).
        masks: (N, H, W) bool object masks, or None.
        class_names: names of the outputs.
        display: (N, H, W, 3) float images in [0, 1] for figures.
        name: a short description.
    """

    model: Any
    layer: str
    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None
    class_names: list[str]
    display: np.ndarray
    name: str = ""
    has_labels: bool = True


def load_eval_data(model: str, dataset: str, n: int | None = None, *, seed: int = 0) -> EvalData:
    """A bundled model and a dataset by name.

    Args:
        model: a name of :data:`qfsel.models.BUNDLED_MODELS` (``shapes-paper-16``, ...).
        dataset: ``"shapes"`` (test split of :func:`qfsel.datasets.shapes`, ``n`` images,
            ``seed``), ``"mnist"`` (:func:`qfsel.datasets.mnist5k` test split) or ``"photos"``
            (the scikit-image sample photos, labelled by the model's own prediction).
        n: number of images (default: 1000 shapes, the whole MNIST test split, 4 photos).
    """
    from .models import load_model

    if not isinstance(dataset, str) or dataset not in ("shapes", "mnist", "photos"):
        raise ValueError(f"dataset: expected 'shapes', 'mnist' or 'photos', got {dataset!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 2):
        raise ValueError(f"n: expected an integer >= 2 or None, got {n!r}")
    bundle = load_model(model)
    masks = None
    has_labels = True
    if dataset == "shapes":
        from .datasets import shapes

        data = shapes(1000 if n is None else n, seed=seed, split="test")
        images, labels, masks = data.images, data.labels, data.masks
        display = images.transpose(0, 2, 3, 1)
        if images.shape[1:] != (3, 64, 64):
            raise ValueError("dataset 'shapes' needs a shapes model (shapes-paper-N)")
    elif dataset == "mnist":
        from .datasets import mnist5k

        images, labels = mnist5k("test", as_tensor=False)
        if n is not None:
            images, labels = images[:n], labels[:n]
        display = np.repeat(images.transpose(0, 2, 3, 1), 3, axis=3)
    else:
        from .datasets import sample_photos

        photos = list(sample_photos().values())[: n or None]
        images = np.concatenate([bundle.preprocess(p).numpy() for p in photos])
        display = np.stack([bundle.display(p) for p in photos])
        with torch.no_grad():
            labels = bundle.model(torch.from_numpy(images)).argmax(1).numpy()
        has_labels = False
    probe = images[:1]
    with torch.no_grad():
        out = bundle.model(torch.from_numpy(np.ascontiguousarray(probe)))
    if out.dim() != 2:
        raise ValueError(f"model: expected an output of shape (B, C), got {tuple(out.shape)}")
    return EvalData(bundle.model, bundle.default_layer, np.ascontiguousarray(images, dtype=np.float32),
                    np.asarray(labels, dtype=np.int64), masks, list(bundle.class_names), display,
                    f"{model} on {dataset}", has_labels)


# --------------------------------------------------------------------------------------------
# explaining
# --------------------------------------------------------------------------------------------


@dataclass
class Explained:
    """Explanations of N images by several methods (arrays, as the metrics take them).

    Attributes:
        heatmaps: {method: (N, H, W)} in [0, 1] at input resolution.
        raw_maps: {method: (N, h, w)} at layer resolution, before normalisation.
        weights: {method: (N, K)} per-map weights.
        selected: QFS-CAM's selected map indices per image (or None without QFS-CAM).
        act_mean: (N, K) spatial mean of each explained map.
        flat: {method: (N,) bool}.
        d, energies: QFS-CAM's QUBO sizes and energies, or None.
        seconds: {method or "capture": wall seconds}.
    """

    heatmaps: dict[str, np.ndarray]
    raw_maps: dict[str, np.ndarray]
    weights: dict[str, np.ndarray]
    selected: list[np.ndarray] | None
    act_mean: np.ndarray
    flat: dict[str, np.ndarray]
    d: np.ndarray | None = None
    energies: np.ndarray | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def explain_dataset(
    model: Any,
    images: np.ndarray,
    targets: np.ndarray,
    layer: str,
    methods: Sequence[str] = ("qfs", "gradcam", "gradcam++"),
    *,
    batch_size: int = 64,
    progress: bool = True,
    desc: str = "explaining",
    **qfs_params: Any,
) -> Explained:
    """Explain ``images`` for ``targets`` with every method, one capture per batch."""
    from tqdm import tqdm

    from .cams import build_explainers, explain_all
    from .models import resolve_layer

    module = resolve_layer(model, layer)
    explainers = build_explainers(model, [layer], list(methods), **qfs_params)
    names = list(explainers)
    parts: dict[str, dict[str, list]] = {m: {"h": [], "r": [], "w": [], "f": []} for m in names}
    selected: list[np.ndarray] = []
    d: list[np.ndarray] = []
    energies: list[np.ndarray] = []
    means: list[np.ndarray] = []

    def hook(_m, _i, output):
        means.append(output.detach().float().mean(dim=(2, 3)).cpu().numpy())

    handle = module.register_forward_hook(hook)
    no_candidates = 0
    t0 = time.perf_counter()
    bar = tqdm(total=len(images), desc=desc, unit="img", disable=not progress, leave=False)
    try:
        for start in range(0, len(images), batch_size):
            xb = torch.from_numpy(images[start : start + batch_size])
            tb = [int(v) for v in targets[start : start + batch_size]]
            n_before = len(means)
            try:
                pieces = [_explain_batch(model, xb, layer, tb, explainers)]
                del means[n_before + 1 :]  # keep the capture's forward only
            except ValueError as exc:
                if "no feature map of target layer" not in str(exc):
                    raise
                # some image has no map with a positive weight (e.g. a randomised model): QFS-CAM
                # has nothing to select there; it gets an empty selection and a flat map
                del means[n_before:]
                pieces = []
                for i in range(len(tb)):
                    n_i = len(means)
                    pieces.append(_explain_batch(model, xb[i : i + 1], layer, tb[i : i + 1], explainers))
                    del means[n_i + 1 :]
                    no_candidates += int(pieces[-1].get("_empty", False))
            for res in pieces:
                for m in names:
                    r = res[m]
                    parts[m]["h"].append(r.heatmaps)
                    parts[m]["r"].append(r.raw_maps[0])
                    parts[m]["w"].append(r.weights[0])
                    parts[m]["f"].append(r.flat)
                    if r.selections is not None:
                        selected.extend(r.selections[0].selected)
                        d.append(r.selections[0].d)
                        energies.append(r.selections[0].energies)
            bar.update(len(tb))
            bar.set_postfix(img_s=f"{(start + len(tb)) / (time.perf_counter() - t0):.1f}")
    finally:
        handle.remove()
        bar.close()
    cat = {m: {k: np.concatenate(v) for k, v in p.items()} for m, p in parts.items()}
    return Explained(
        heatmaps={m: c["h"] for m, c in cat.items()},
        raw_maps={m: c["r"] for m, c in cat.items()},
        weights={m: c["w"] for m, c in cat.items()},
        selected=selected if "qfs" in names else None,
        act_mean=np.concatenate(means),
        flat={m: c["f"] for m, c in cat.items()},
        d=np.concatenate(d) if d else None,
        energies=np.concatenate(energies) if energies else None,
        seconds=time.perf_counter() - t0,
        extra={"no_candidates": no_candidates},
    )


def _explain_batch(model: Any, xb: torch.Tensor, layer: str, tb: list[int], explainers: dict[str, Any]) -> dict[str, Any]:
    """explain_all on one batch; for a single image whose QUBO has no candidate, QFS-CAM's
    result is an empty selection with a flat (zero) map and the other methods run as usual."""
    from .cams import ExplanationResult, LayerSelection, explain_all

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QFSelWarning)  # flat maps are counted, not warned
        try:
            return explain_all(model, xb, [layer], targets=tb, explainers=explainers)
        except ValueError as exc:
            if len(tb) != 1 or "no feature map of target layer" not in str(exc) or "qfs" not in explainers:
                raise
            others = {k: v for k, v in explainers.items() if k != "qfs"}
            if others:
                res: dict[str, Any] = dict(explain_all(model, xb, [layer], targets=tb, explainers=others))
                ref = next(iter(res.values()))
            else:
                ref = explain_all(model, xb, [layer], targets=tb, methods=("gradcam",))["gradcam"]
                res = {}
    empty = LayerSelection(layer, [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], np.zeros(1, np.int64),
                           np.zeros(1), np.ones(1, bool), {}, "none")
    qfs = ExplanationResult("qfs-cam", np.zeros_like(ref.heatmaps), [np.zeros_like(ref.raw_maps[0])],
                            [np.zeros_like(ref.weights[0])], ref.predicted, ref.scores, ref.layer_names,
                            np.ones(1, bool), [empty])
    out = {k: (qfs if k == "qfs" else res[k]) for k in explainers}
    out["_empty"] = True
    return out


def _explain_fn(layer: str, methods: Sequence[str], qfs_params: dict[str, Any], batch_size: int):
    def fn(model, images, targets):
        ex = explain_dataset(model, np.asarray(images), np.asarray(targets), layer, methods,
                             batch_size=batch_size, progress=False, **qfs_params)
        return ex.heatmaps

    return fn


# --------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------


def _ci_entry(value: float, lo: float = float("nan"), hi: float = float("nan")) -> dict[str, float]:
    return {"value": float(value), "lo": float(lo), "hi": float(hi)}


def _mean_ci(x: np.ndarray, n_boot: int, seed: int) -> dict[str, float]:
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return _ci_entry(float("nan"))
    rng = np.random.default_rng(seed)
    boots = [x[rng.integers(0, x.size, x.size)].mean() for _ in range(n_boot)]
    lo, hi = (np.percentile(boots, [2.5, 97.5]) if boots else (float("nan"), float("nan")))
    return _ci_entry(x.mean(), lo, hi)


def contributions(ex: Explained, method: str, counterpart: str) -> np.ndarray:
    """(N, K) per-image contributions to the class histograms for ``method`` and counterpart.

    QFS-CAM: ``"selected"`` (the paper's measure) or ``"proportional"`` (its weights);
    GradCAM/GradCAM++: ``"positive"``, ``"top-m"`` (m = QFS-CAM's count), ``"proportional"``.
    """
    k = ex.weights[method].shape[1]
    if method == "qfs":
        if counterpart == "selected":
            return M.selection_indicator(ex.selected or [], k)
        return M.selection_from_weights(ex.weights["qfs"], "proportional")
    m = None
    if counterpart == "top-m":
        if ex.selected is None:
            raise ValueError('counterpart "top-m" needs QFS-CAM among the methods (m is its count)')
        m = np.array([len(s) for s in ex.selected], dtype=np.int64)
    return M.selection_from_weights(ex.weights[method], counterpart, m)


def score_disentanglement(ex: Explained, labels: np.ndarray, n_classes: int, *, n_boot: int, seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for method in ex.weights:
        variants = ("selected", "proportional") if method == "qfs" else M.COUNTERPARTS
        for v in variants:
            if v == "top-m" and ex.selected is None:
                continue
            c = contributions(ex, method, v)
            try:
                out[f"{method}/{v}"] = M.disentanglement(c, labels, n_classes=n_classes, n_boot=n_boot, seed=seed)
            except ValueError as exc:
                out[f"{method}/{v}"] = {"error": str(exc)}
    return out


def score_embeddings(ex: Explained, labels: np.ndarray, *, n_boot: int, seed: int, folds: int = 5) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for method in ex.weights:
        embs = {
            "heatmap": M.heatmap_embedding(ex.raw_maps[method]),
            "contribution": M.contribution_embedding(ex.weights[method], ex.act_mean),
        }
        for name, e in embs.items():
            try:
                out[f"{method}/{name}"] = M.embedding_scores(e, labels, folds=folds, n_boot=n_boot, seed=seed)
            except ValueError as exc:
                out[f"{method}/{name}"] = {"error": str(exc)}
    return out


def _summary_row(rows: list[dict[str, Any]], group: str, metric: str, method: str, variant: str, entry: dict[str, float]):
    rows.append({"group": group, "metric": metric, "method": method, "variant": variant,
                 "value": entry["value"], "lo": entry.get("lo", float("nan")), "hi": entry.get("hi", float("nan"))})


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if np.isfinite(f) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


# --------------------------------------------------------------------------------------------
# the evaluation
# --------------------------------------------------------------------------------------------


class _BackboneReplay:
    """Remembers a frozen backbone's output per image during the prediction pass and replays it
    when the explaining pass feeds the same image again (identical bytes), so the backbone runs
    once per image instead of twice. Used only when the explained layer lies after
    ``model.backbone`` and the backbone is in eval mode (its output then depends on the image
    alone and needs no gradient: capture differentiates from the explained layer on)."""

    def __init__(self, model: Any, layer: str) -> None:
        bb = getattr(model, "backbone", None)
        self.active = (
            isinstance(bb, torch.nn.Module) and not bb.training
            and not (layer == "backbone" or layer.startswith("backbone."))
        )
        self.backbone: Any = bb
        self.store: dict[bytes, torch.Tensor] = {}
        self.recording = True

    @staticmethod
    def _key(x: torch.Tensor) -> bytes:
        import hashlib

        return hashlib.blake2b(x.detach().contiguous().numpy().tobytes(), digest_size=16).digest()

    def _forward(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        compute = type(self.backbone).forward
        if args or kwargs or not isinstance(x, torch.Tensor) or x.requires_grad or x.dim() < 1 or x.shape[0] == 0:
            return compute(self.backbone, x, *args, **kwargs)
        keys = [self._key(row) for row in x]
        if not self.recording:
            rows = [self.store.get(key) for key in keys]
            if all(r is not None for r in rows):
                return torch.stack(rows)  # type: ignore[arg-type]
        out = compute(self.backbone, x)
        if self.recording and isinstance(out, torch.Tensor) and out.shape[:1] == x.shape[:1]:
            for key, row in zip(keys, out.detach()):
                self.store[key] = row.clone()
        return out

    def __enter__(self) -> "_BackboneReplay":
        if self.active:
            self.backbone.forward = self._forward  # instance attribute: nn.Module.__call__ uses it
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.active and "forward" in vars(self.backbone):
            del self.backbone.forward
        self.store.clear()


def evaluate(
    model: str | Any = "shapes-paper-16",
    dataset: str | EvalData = "shapes",
    methods: Sequence[str] = ("gradcam", "gradcam++", "qfs"),
    out: str | Path | None = None,
    *,
    n: int | None = None,
    correct_only: bool = True,
    batch_size: int = 64,
    n_boot: int = 200,
    faithfulness_n: int = 200,
    steps: int = 16,
    sanity_n: int = 50,
    road: bool = True,
    tsne: bool = True,
    parts: Sequence[str] = ("disentanglement", "embeddings", "localization", "faithfulness", "sanity"),
    seed: int = 0,
    progress: bool = True,
    tune_malloc: bool = True,
    **qfs_params: Any,
) -> dict[str, Any]:
    """Explain a dataset with every method and compute every metric; optionally write a report.

    Args:
        model: a bundled model name (with ``dataset`` a name) or ignored when ``dataset`` is
            an :class:`EvalData`.
        dataset: ``"shapes"``, ``"mnist"``, ``"photos"`` or an :class:`EvalData`.
        methods: any of ``"gradcam"``, ``"gradcam++"``, ``"qfs"``.
        out: folder for metrics.json, metrics.csv, figures and report.html (None: nothing written).
        n: images to load (see :func:`load_eval_data`).
        correct_only: explain only correctly classified images (the paper's protocol).
        batch_size: images per capture.
        n_boot: bootstrap resamples for every CI.
        faithfulness_n: images (the first ones) for deletion/insertion, confidence change, ROAD.
        steps: deletion/insertion steps.
        sanity_n: images for the randomisation and random-logit tests (0: skip).
        road: compute ROAD (Quantus; skipped with a note when it is not installed).
        tsne: draw t-SNE scatters.
        parts: which metric groups to compute.
        seed: seed of QFS-CAM's sampler (unless given in ``qfs_params``), bootstraps, folds.
        progress: tqdm bars.
        tune_malloc: keep freed memory for reuse between batches (:func:`qfsel.tune_malloc`;
            it changes glibc's malloc thresholds for the rest of the process); False leaves
            malloc alone. The metrics are the same either way.
        **qfs_params: QFS-CAM settings (beta, k, sampler, relevance, ...).

    Returns:
        The metrics as a dict (also written to ``metrics.json``).
    """
    from ._malloc import tune_malloc as _tune_malloc
    from .cams import _check_flag, method_names

    if _check_flag("tune_malloc", tune_malloc):
        _tune_malloc()
    t_start = time.perf_counter()
    methods = method_names(methods)
    data = dataset if isinstance(dataset, EvalData) else load_eval_data(model, dataset, n, seed=seed)
    if "qfs" in methods:
        qfs_params.setdefault("seed", seed)
    known_parts = {"disentanglement", "embeddings", "localization", "faithfulness", "sanity"}
    bad = set(parts) - known_parts
    if bad:
        raise ValueError(f"parts: unknown {sorted(bad)}; expected some of {sorted(known_parts)}")
    replay = _BackboneReplay(data.model, data.layer)  # the backbone runs once per image
    with replay:
        with torch.no_grad():
            logits = torch.cat([data.model(torch.from_numpy(data.images[i : i + 256])) for i in range(0, len(data.images), 256)])
        replay.recording = False
        if logits.dim() != 2 or logits.shape[0] != len(data.images):
            raise ValueError(f"model: expected an output of shape (B, C) (class scores), got {tuple(logits.shape)}")
        labels_all = M._checks.labels_array("labels", data.labels, len(data.images))
        predicted = logits.argmax(1).numpy()
        n_classes = int(logits.shape[1])
        accuracy = float((predicted == data.labels).mean())
        keep = np.flatnonzero(predicted == data.labels) if correct_only else np.arange(len(data.labels))
        if keep.size < 2:
            raise ValueError(f"dataset: only {keep.size} correctly classified image(s); nothing to evaluate")
        images, labels = data.images[keep], data.labels[keep]
        masks = None if data.masks is None else data.masks[keep]
        ex = explain_dataset(data.model, images, labels, data.layer, methods, batch_size=batch_size,
                             progress=progress, **qfs_params)
    result: dict[str, Any] = {
        "setup": {
            "data": data.name, "layer": data.layer, "methods": methods, "n_images": int(len(data.labels)),
            "n_explained": int(keep.size), "accuracy": accuracy, "correct_only": correct_only,
            "n_maps": int(ex.weights[methods[0]].shape[1]), "qfs_params": {k: repr(v) for k, v in qfs_params.items()},
            "n_boot": n_boot, "seed": seed, "explain_seconds": ex.seconds,
            "images_per_second": keep.size / max(ex.seconds, 1e-9),
        },
        "flat_maps": {m: int(f.sum()) for m, f in ex.flat.items()},
        "qfs_no_candidates": ex.extra.get("no_candidates", 0),
    }
    if ex.selected is not None:
        counts = np.array([len(s) for s in ex.selected])
        result["qfs_selection"] = {"mean_selected": float(counts.mean()), "min_selected": int(counts.min()),
                                   "max_selected": int(counts.max()), "mean_d": float(ex.d.mean()) if ex.d is not None else None}
    rows: list[dict[str, Any]] = []
    figures: dict[str, bytes] = {}
    timing: dict[str, dict[str, float]] = {"explain": {"wall_s": ex.seconds}}
    clock = [time.perf_counter(), time.process_time()]

    def lap(name: str) -> None:
        now = [time.perf_counter(), time.process_time()]
        timing[name] = {"wall_s": now[0] - clock[0], "cpu_s": now[1] - clock[1]}
        clock[:] = now

    lap("explain")
    timing["explain"]["wall_s"] = ex.seconds
    multi_class = data.has_labels and np.unique(labels).size >= 2

    if "disentanglement" in parts and multi_class:
        dis = score_disentanglement(ex, labels, n_classes, n_boot=n_boot, seed=seed)
        result["disentanglement"] = dis
        for key, r in dis.items():
            if "error" not in r:
                method, variant = key.split("/")
                _summary_row(rows, "disentanglement", "mean_off_diagonal", method, variant,
                             _ci_entry(r["mean_off_diagonal"], *r["ci95"]))
                _summary_row(rows, "disentanglement", "zero_pairs", method, variant, _ci_entry(r["zero_pairs"]))
        figures["overlap_matrices"] = _fig_overlaps(dis, data.class_names)
        lap("disentanglement")
    if "embeddings" in parts and multi_class:
        folds = int(min(5, np.bincount(labels)[np.unique(labels)].min()))
        if folds >= 2:
            emb = score_embeddings(ex, labels, n_boot=n_boot, seed=seed, folds=folds)
            result["embeddings"] = emb
            for key, r in emb.items():
                if "error" not in r:
                    method, variant = key.split("/")
                    for metric, entry in r.items():
                        _summary_row(rows, "embeddings", metric, method, variant, entry)
            figures["embedding_cis"] = _fig_cis(emb)
            if tsne:
                figures["tsne"] = _fig_tsne(ex, labels, data.class_names, seed)
        lap("embeddings")
    if "localization" in parts and masks is not None:
        loc: dict[str, Any] = {}
        for method, h in ex.heatmaps.items():
            r = M.localization(h, masks)
            loc[method] = {k: _mean_ci(v.astype(float), n_boot, seed) for k, v in r.items() if k != "flat"}
            for metric, entry in loc[method].items():
                _summary_row(rows, "localization", metric, method, "", entry)
        try:
            q = {}
            sub = slice(0, min(200, len(labels)))
            for method, h in ex.heatmaps.items():
                mine = M.localization(h[sub], masks[sub])
                theirs = M.quantus_localization(data.model, images[sub], h[sub], masks[sub], labels[sub])
                idx = theirs["index"]
                q[method] = {k: float(np.max(np.abs(theirs[k] - mine[k][idx].astype(float)))) if idx.size else 0.0
                             for k in ("pointing_game", "relevance_mass", "relevance_rank")}
            loc["quantus_max_abs_difference"] = q
        except ModuleNotFoundError as exc:
            loc["quantus_max_abs_difference"] = str(exc)
        result["localization"] = loc
        lap("localization")
    if "faithfulness" in parts and faithfulness_n:
        sub = slice(0, min(faithfulness_n, len(labels)))
        faith: dict[str, Any] = {"n": int(len(labels[sub])), "steps": steps,
                                 "deletion_baseline": "zero (in model-input space)",
                                 "insertion_baseline": "Gaussian blur, sigma 5 px"}
        curves = {}
        for method, h in ex.heatmaps.items():
            di = M.deletion_insertion(data.model, images[sub], h[sub], labels[sub], steps=steps, seed=seed)
            cc = M.confidence_change(data.model, images[sub], h[sub], labels[sub])
            f: dict[str, Any] = {
                "deletion_auc": _mean_ci(di["deletion_auc"], n_boot, seed),
                "insertion_auc": _mean_ci(di["insertion_auc"], n_boot, seed),
                "average_drop": _mean_ci(100 * cc["drop"], n_boot, seed),
                "increase_in_confidence": _mean_ci(100 * cc["increased"].astype(float), n_boot, seed),
            }
            curves[method] = (di["deletion_curve"].mean(0), di["insertion_curve"].mean(0))
            if road:
                try:
                    r = M.road(data.model, images[sub], h[sub], labels[sub], seed=seed)
                    f["road_morf_accuracy"] = _mean_ci(r["correct"].mean(axis=1), n_boot, seed)
                    f["road_curve"] = {k: v for k, v in r.items() if k != "correct"}
                except ModuleNotFoundError as exc:
                    f["road_note"] = str(exc)
            faith[method] = f
            for metric, entry in f.items():
                if isinstance(entry, dict) and "value" in entry:
                    _summary_row(rows, "faithfulness", metric, method, "", entry)
        result["faithfulness"] = faith
        figures["deletion_insertion"] = _fig_curves(curves)
        lap("faithfulness")
    if "sanity" in parts and sanity_n:
        sub = slice(0, min(sanity_n, len(labels)))
        fn = _explain_fn(data.layer, methods, qfs_params, batch_size)
        cascade = _cascade_layers(data.model)
        mprt = M.model_randomisation(fn, data.model, images[sub], labels[sub], layers=cascade, seed=seed)
        rl = M.random_logit(fn, data.model, images[sub], labels[sub], n_classes, seed=seed)
        result["sanity"] = {"n": int(len(labels[sub])), "cascade_layers": mprt["layers"], "mprt_spearman": mprt["mean"],
                            "random_logit_spearman": {m: _mean_ci(v, n_boot, seed) for m, v in rl["spearman"].items()}}
        for method, entry in result["sanity"]["random_logit_spearman"].items():
            _summary_row(rows, "sanity", "random_logit_spearman", method, "", entry)
        for method, means in mprt["mean"].items():
            _summary_row(rows, "sanity", "mprt_spearman_last_layer", method, mprt["layers"][-1], _ci_entry(means[-1]))
        figures["mprt"] = _fig_mprt(mprt)
        lap("sanity")
    figures["examples"] = _fig_examples(data.display[keep], ex, masks, labels, data.class_names)
    lap("figures")
    result["timing"] = timing
    result["seconds"] = time.perf_counter() - t_start
    result["rows"] = rows
    if out is not None:
        write_report(result, figures, out)
    return result


def _cascade_layers(model: Any, max_layers: int = 6) -> list[str]:
    """Top-down modules to randomise: head and classifier first, then backbone blocks."""
    names = []
    for name, module in model.named_modules():
        if not name or not any(True for _ in module.parameters()):
            continue
        if name.count(".") == (1 if name.startswith(("head.", "backbone.")) else 0) or name.startswith("backbone.blocks.") and name.count(".") == 2:
            names.append(name)
    names = [n for n in names if n not in ("head", "backbone", "backbone.blocks")]
    return names[::-1][:max_layers] or M.default_cascade(model, max_layers)


# --------------------------------------------------------------------------------------------
# ablations
# --------------------------------------------------------------------------------------------


def ablate(
    model: str = "shapes-paper-16",
    dataset: str | EvalData = "shapes",
    studies: Sequence[str] = tuple(ABLATIONS),
    out: str | Path | None = None,
    *,
    n: int = 300,
    faithfulness_n: int = 100,
    steps: int = 8,
    n_boot: int = 100,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Rerun QFS-CAM under each setting of :data:`ABLATIONS` and score it.

    Per setting: the paper's mean off-diagonal overlap (selected maps) with CI, linear-probe
    and silhouette of the heatmap embedding, relevance mass (with masks), deletion/insertion
    AUC on the first ``faithfulness_n`` images, the mean number of selected maps and the mean
    QUBO energy. Settings that cannot run on some images (k > d: fewer positive maps than k)
    run on the images where they can, and say how many.
    """
    from .exceptions import QFSelError

    data = dataset if isinstance(dataset, EvalData) else load_eval_data(model, dataset, n, seed=seed)
    with torch.no_grad():
        pred = torch.cat([data.model(torch.from_numpy(data.images[i : i + 256])) for i in range(0, len(data.images), 256)]).argmax(1).numpy()
    keep = np.flatnonzero(pred == data.labels)
    images, labels = data.images[keep], data.labels[keep]
    masks = None if data.masks is None else data.masks[keep]
    n_classes = len(data.class_names)
    unknown = [s for s in studies if s not in ABLATIONS]
    if unknown:
        raise ValueError(f"studies: unknown {unknown}; expected some of {list(ABLATIONS)}")
    results: dict[str, list[dict[str, Any]]] = {}
    for study in studies:
        results[study] = []
        for setting in ABLATIONS[study]:
            params = {"seed": seed, **setting}
            t0 = time.perf_counter()
            entry: dict[str, Any] = {"setting": {k: repr(v) for k, v in setting.items()}}
            try:
                ok = np.arange(len(labels))
                try:
                    ex = explain_dataset(data.model, images, labels, data.layer, ["qfs"], progress=progress,
                                         desc=f"{study} {setting}", **params)
                except (QFSelError, ValueError):
                    # some images cannot take this setting (e.g. k > d): keep those that can
                    good = []
                    for i in range(len(labels)):
                        try:
                            explain_dataset(data.model, images[i : i + 1], labels[i : i + 1], data.layer, ["qfs"],
                                            progress=False, **params)
                            good.append(i)
                        except (QFSelError, ValueError):
                            pass
                    ok = np.asarray(good, dtype=np.int64)
                    if ok.size < 2 or np.unique(labels[ok]).size < 2:
                        raise ValueError(f"fewer than 2 images/classes can take this setting ({ok.size} images)")
                    ex = explain_dataset(data.model, images[ok], labels[ok], data.layer, ["qfs"], progress=progress,
                                         desc=f"{study} {setting}", **params)
                y = labels[ok]
                entry["n"] = int(ok.size)
                sel = M.selection_indicator(ex.selected or [], ex.weights["qfs"].shape[1])
                dis = M.disentanglement(sel, y, n_classes=n_classes, n_boot=n_boot, seed=seed)
                entry["mean_off_diagonal"] = _ci_entry(dis["mean_off_diagonal"], *dis["ci95"])
                entry["zero_pairs"] = dis["zero_pairs"]
                folds = int(min(5, np.bincount(y)[np.unique(y)].min()))
                if folds >= 2:
                    emb = M.embedding_scores(M.heatmap_embedding(ex.raw_maps["qfs"]), y, folds=folds, n_boot=n_boot, seed=seed)
                    entry["linear_probe"] = emb["linear_probe"]
                    entry["silhouette"] = emb["silhouette"]
                if masks is not None:
                    loc = M.localization(ex.heatmaps["qfs"], masks[ok])
                    entry["relevance_mass"] = _mean_ci(loc["relevance_mass"], n_boot, seed)
                sub = slice(0, min(faithfulness_n, ok.size))
                di = M.deletion_insertion(data.model, images[ok][sub], ex.heatmaps["qfs"][sub], y[sub], steps=steps, seed=seed)
                entry["deletion_auc"] = _mean_ci(di["deletion_auc"], n_boot, seed)
                entry["insertion_auc"] = _mean_ci(di["insertion_auc"], n_boot, seed)
                entry["mean_selected"] = float(sel.sum(axis=1).mean())
                entry["mean_energy"] = float(np.mean(ex.energies)) if ex.energies is not None else None
                entry["flat_maps"] = int(ex.flat["qfs"].sum())
            except (QFSelError, ValueError) as exc:
                entry["error"] = str(exc)
            entry["seconds"] = time.perf_counter() - t0
            results[study].append(entry)
    report = {"data": data.name, "n_explained": int(keep.size), "ablations": results}
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "ablations.json").write_text(json.dumps(_json_safe(report), indent=1))
        (folder / "ablations.md").write_text(ablation_table(report))
    return report


def ablation_table(report: dict[str, Any]) -> str:
    """The ablations as a Markdown table."""
    head = ("| study | setting | n | mean off-diag BC [95% CI] | zero pairs | linear probe | relevance mass | "
            "deletion AUC | insertion AUC | mean selected | mean energy |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []

    def f(e, key):
        v = e.get(key)
        if not isinstance(v, dict):
            return "-"
        lo, hi = v.get("lo"), v.get("hi")
        ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and np.isfinite(lo) else ""
        return f"{v['value']:.3f}{ci}"

    for study, entries in report["ablations"].items():
        for e in entries:
            setting = ", ".join(f"{k}={v}" for k, v in e["setting"].items())
            if "error" in e:
                lines.append(f"| {study} | {setting} | - | error: {e['error'][:80]} | | | | | | | |")
                continue
            energy = e.get("mean_energy")
            lines.append(
                f"| {study} | {setting} | {e['n']} | {f(e, 'mean_off_diagonal')} | {e['zero_pairs']} | {f(e, 'linear_probe')} | "
                f"{f(e, 'relevance_mass')} | {f(e, 'deletion_auc')} | {f(e, 'insertion_auc')} | {e['mean_selected']:.2f} | "
                f"{'-' if energy is None else f'{energy:.4f}'} |"
            )
    return head + "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# figures and report
# --------------------------------------------------------------------------------------------


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _fig_overlaps(dis: dict[str, Any], class_names: list[str]):
    plt = _plt()
    keys = [k for k in dis if "error" not in dis[k]]
    cols = min(4, len(keys))
    rows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.3 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        r = dis[key]
        im = ax.imshow(r["matrix"], vmin=0, vmax=1, cmap="viridis")
        method, variant = key.split("/")
        ax.set_title(f"{METHOD_LABELS.get(method, method)} ({variant})\nmean off-diag {r['mean_off_diagonal']:.3f}, "
                     f"{r['zero_pairs']}/{r['n_pairs']} at 0", fontsize=8)
        ax.set_xticks(range(len(class_names)))
        ax.set_yticks(range(len(class_names)))
        ax.set_xticklabels(class_names, rotation=90, fontsize=6)
        ax.set_yticklabels(class_names, fontsize=6)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.colorbar(im, ax=axes, shrink=0.6, label="Bhattacharyya coefficient")
    return _png(fig)


def _fig_cis(emb: dict[str, Any]):
    plt = _plt()
    metrics = ["silhouette", "davies_bouldin", "linear_probe", "knn", "between_within"]
    keys = [k for k in emb if "error" not in emb[k]]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.2))
    for ax, metric in zip(axes, metrics):
        vals = [emb[k][metric]["value"] for k in keys]
        lo = [emb[k][metric]["value"] - emb[k][metric]["lo"] for k in keys]
        hi = [emb[k][metric]["hi"] - emb[k][metric]["value"] for k in keys]
        err = np.clip(np.nan_to_num(np.array([lo, hi])), 0, None)  # a biased estimator can leave its CI
        ax.bar(range(len(keys)), vals, yerr=err, capsize=3,
               color=["C0" if k.startswith("qfs") else "C1" if k.startswith("gradcam++") else "C2" for k in keys])
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels([k.replace("gradcam", "GC").replace("qfs", "QFS") for k in keys], rotation=60, fontsize=7)
        ax.set_title(metric + (" (lower better)" if metric == "davies_bouldin" else ""), fontsize=9)
    fig.tight_layout()
    return _png(fig)


def _fig_tsne(ex: Explained, labels: np.ndarray, class_names: list[str], seed: int):
    plt = _plt()
    methods = list(ex.weights)
    fig, axes = plt.subplots(2, len(methods), figsize=(3.6 * len(methods), 7), squeeze=False)
    for j, method in enumerate(methods):
        for i, (name, emb) in enumerate((("heatmap", M.heatmap_embedding(ex.raw_maps[method])),
                                         ("contribution", M.contribution_embedding(ex.weights[method], ex.act_mean)))):
            ax = axes[i, j]
            try:
                xy = M.tsne(emb, seed=seed)
                sc = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=5, vmin=0, vmax=9)
            except ValueError:
                pass
            ax.set_title(f"{METHOD_LABELS.get(method, method)}: {name}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    handles = [plt.Line2D([], [], marker="o", ls="", color=plt.cm.tab10(c / 9), label=class_names[c]) for c in np.unique(labels)]
    fig.legend(handles=handles, loc="lower center", ncol=min(10, len(handles)), fontsize=7)
    return _png(fig)


def _fig_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]]):
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for method, (dele, ins) in curves.items():
        x = np.linspace(0, 1, len(dele))
        axes[0].plot(x, dele, label=METHOD_LABELS.get(method, method))
        axes[1].plot(x, ins, label=METHOD_LABELS.get(method, method))
    axes[0].set_title("deletion (lower is better)")
    axes[1].set_title("insertion (higher is better)")
    for ax in axes:
        ax.set_xlabel("fraction of pixels")
        ax.set_ylabel("mean class probability")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _fig_mprt(mprt: dict[str, Any]):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for method, means in mprt["mean"].items():
        ax.plot(range(1, len(means) + 1), means, marker="o", label=METHOD_LABELS.get(method, method))
    ax.set_xticks(range(1, len(mprt["layers"]) + 1))
    ax.set_xticklabels(mprt["layers"], rotation=45, fontsize=7, ha="right")
    ax.set_ylabel("Spearman vs trained model")
    ax.set_title("cascading randomisation (from the top)")
    ax.axhline(0, color="grey", lw=0.5)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _fig_examples(display: np.ndarray, ex: Explained, masks, labels, class_names, n: int = 6):
    plt = _plt()
    methods = list(ex.heatmaps)
    picks = []
    for c in np.unique(labels):
        picks.append(int(np.flatnonzero(labels == c)[0]))
        if len(picks) == n:
            break
    cols = 1 + (masks is not None) + len(methods)
    fig, axes = plt.subplots(len(picks), cols, figsize=(1.7 * cols, 1.7 * len(picks)), squeeze=False)
    for r, i in enumerate(picks):
        axes[r, 0].imshow(np.clip(display[i], 0, 1))
        axes[r, 0].set_ylabel(class_names[labels[i]], fontsize=8)
        c = 1
        if masks is not None:
            axes[r, 1].imshow(masks[i], cmap="gray")
            c = 2
        for j, method in enumerate(methods):
            axes[r, c + j].imshow(np.clip(display[i], 0, 1))
            axes[r, c + j].imshow(ex.heatmaps[method][i], cmap="jet", alpha=0.5, vmin=0, vmax=1)
            if method == "qfs" and ex.selected is not None:
                axes[r, c + j].set_xlabel(f"maps {list(map(int, ex.selected[i]))}", fontsize=6)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    titles = ["image"] + (["mask"] if masks is not None else []) + [METHOD_LABELS.get(m, m) for m in methods]
    for ax, t in zip(axes[0], titles):
        ax.set_title(t, fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _fmt(entry: dict[str, Any]) -> str:
    v, lo, hi = entry.get("value"), entry.get("lo"), entry.get("hi")
    if v is None or not np.isfinite(v):
        return "-"
    if lo is None or not np.isfinite(lo):
        return f"{v:.3f}"
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def write_report(result: dict[str, Any], figures: dict[str, bytes], out: str | Path) -> Path:
    """Write metrics.json, metrics.csv, the PNG figures and report.html into ``out``."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(_json_safe({k: v for k, v in result.items() if k != "rows"}), indent=1))
    with open(folder / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["group", "metric", "method", "variant", "value", "lo", "hi"])
        writer.writeheader()
        writer.writerows(result["rows"])
    for name, png in figures.items():
        (folder / f"{name}.png").write_bytes(png)
    setup = result["setup"]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>qfsel evaluation</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}"
        "th{background:#eee}td.l{text-align:left}img{max-width:100%}</style></head><body>",
        f"<h1>qfsel evaluation: {html.escape(setup['data'])}</h1>",
        f"<p>Explained layer <code>{html.escape(setup['layer'])}</code> ({setup['n_maps']} maps); "
        f"{setup['n_explained']} of {setup['n_images']} images explained (correct only: {setup['correct_only']}; "
        f"accuracy {setup['accuracy']:.3f}); methods {', '.join(setup['methods'])}; QFS-CAM settings "
        f"{html.escape(json.dumps(setup['qfs_params']))}; {setup['images_per_second']:.1f} images/s explained; "
        f"total {result['seconds']:.1f} s. 95% CIs from {setup['n_boot']} bootstrap resamples.</p>",
        f"<p>Flat (all-zero) maps: {html.escape(json.dumps(result['flat_maps']))}</p>",
    ]
    if "qfs_selection" in result:
        parts.append(f"<p>QFS-CAM selection: {html.escape(json.dumps(result['qfs_selection']))}</p>")
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in result["rows"]:
        groups.setdefault(row["group"], []).append(row)
    for group, rows in groups.items():
        parts.append(f"<h2>{html.escape(group)}</h2><table><tr><th>metric</th><th>method</th><th>variant</th>"
                     "<th>value [95% CI]</th></tr>")
        for row in rows:
            parts.append(f"<tr><td class='l'>{html.escape(row['metric'])}</td><td class='l'>"
                         f"{html.escape(METHOD_LABELS.get(row['method'], row['method']))}</td><td class='l'>"
                         f"{html.escape(str(row['variant']))}</td><td>{_fmt(row)}</td></tr>")
        parts.append("</table>")
    captions = {
        "overlap_matrices": "Class overlap matrices (Bhattacharyya coefficient of per-class histograms of maps)",
        "embedding_cis": "Embedding separation with 95% CIs",
        "tsne": "t-SNE of the embeddings, coloured by class",
        "deletion_insertion": "Mean deletion and insertion curves",
        "mprt": "Cascading model-parameter randomisation",
        "examples": "Examples",
    }
    for name, png in figures.items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(f"<h2>{html.escape(captions.get(name, name))}</h2><img alt='{name}' src='data:image/png;base64,{data}'>")
    parts.append("</body></html>")
    path = folder / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
