"""``explain_dataset``: every requested method over a whole dataset, streamed into a store.

Per batch: images are loaded in DataLoader worker processes; the model runs one forward and
one backward pass (one :func:`~qfsel.capture.capture` for all methods); then, in a second
thread, every method's weights (QFS-CAM: scoring, the batched QUBO build and solve in Rust,
which releases the GIL) and heatmaps are computed and written to the store while the main
thread already runs the model on the next batch. At most two batches are in memory besides the
loader's prefetch, so memory is bounded by the batch size, not the dataset size. The capture of
the batch being finished is saved in the store until the batch is complete, so a kill redoes at
most one batch's worth of work (see :mod:`qfsel.dataset.store`).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .._checks import check_int, check_positive_int, check_positive_real, describe
from .._malloc import tune_malloc as _tune_malloc
from ..capture import (Capture, LayerCapture, capture, check_channels_last, check_output_selector,
                       resolve_target_layers)
from ..cams import QFSCAM, BaseCAM, build_explainers, method_names
from ..exceptions import QFSelWarning
from . import store as _store
from .sources import (BUNDLED, Item, Loadable, collate_items, dataset_fingerprint, first_shape, label_note,
                      resolve_dataset)

__all__ = ["DatasetSummary", "explain_dataset"]

DTYPES = ("float16", "float32")
BACKENDS = ("local", "dask")

# "for sample index 0 (all: [0])" in an error about a one-image batch
_SAMPLE_INDEX = re.compile(r" for sample index 0( \(all: \[0\]\))?")


def _where(readable: list[Item]) -> str:
    """" (sample index 0 = image 12 PATH, ...)": the dataset images behind a batch's sample indices."""
    where = ", ".join(f"{j} = image {it.index}{' ' + it.path if it.path else ''}" for j, it in enumerate(readable[:8]))
    return f" (sample index {where}{' ...' if len(readable) > 8 else ''})"


def _drop_failing(b: int, items: list[Item], exc: ValueError, attempt: Any, what: str, *, first: bool) -> list[int]:
    """After ``exc`` failed batch ``b``: tries each readable image alone (``attempt(j)``), marks
    those that raise a ValueError failed (reason ``what: message``) and returns the positions of
    the others among the readable images. Raises ``exc``, naming the batch's images, when no image
    fails alone (not an image's fault) or every one does in the run's ``first`` batch (taken for
    a fault of the model or the configuration)."""
    readable = [it for it in items if not it.reason]
    faults: dict[int, str] = {}
    for j in range(len(readable)):
        try:
            attempt(j)
        except ValueError as one:
            faults[j] = f"{what}: " + _SAMPLE_INDEX.sub(" for this image", str(one))
    if not faults or (len(faults) == len(readable) and first):
        raise ValueError(f"batch {b}: {exc}{_where(readable)}") from exc
    for j, reason in faults.items():
        readable[j].reason = reason
    return [j for j in range(len(readable)) if j not in faults]


def _sub_capture(cap: Capture, rows: list[int]) -> Capture:
    """The capture of some samples of a batch."""
    idx = torch.as_tensor(rows, dtype=torch.long, device=cap.output.device)

    def pick(t: torch.Tensor) -> torch.Tensor:
        return t.index_select(0, idx.to(t.device))

    layers = tuple(LayerCapture(lc.name, lc.module, pick(lc.activations), pick(lc.gradients)) for lc in cap.layers)
    return Capture(pick(cap.input), layers, pick(cap.output), pick(cap.scores), tuple(cap.targets[j] for j in rows),
                   pick(cap.predicted))


@dataclass
class DatasetSummary:
    """What an :func:`explain_dataset` run did.

    Attributes:
        path: the store folder.
        images: images in the dataset.
        explained: images explained successfully (all runs of the job together).
        failed: images recorded in the failures table.
        batches: batches in the dataset.
        batches_run: batches computed by this run.
        batches_resumed: batches found complete in the store and skipped.
        captures_reused: batches of this run finished from the capture an interrupted run saved
            (their model pass was not redone).
        seconds: wall time of this run (store opening to the last write).
        images_per_s: images of this run per second.
        methods: the methods computed.
        backend: "local" or "dask".
        rss_mb: (images done in this run, resident memory MiB) samples over the run (local backend).
    """

    path: str
    images: int
    explained: int
    failed: int
    batches: int
    batches_run: int
    batches_resumed: int
    captures_reused: int
    seconds: float
    images_per_s: float
    methods: list[str]
    backend: str
    rss_mb: list[tuple[int, float]] = field(default_factory=list)

    def __str__(self) -> str:
        rss = f", peak RSS {max(r for _, r in self.rss_mb):.0f} MiB" if self.rss_mb else ""
        reused = f", {self.captures_reused} from saved captures" if self.captures_reused else ""
        return (
            f"explained {self.explained} of {self.images} image(s) with {', '.join(self.methods)} "
            f"({self.failed} failed; {self.batches_run} batch(es) run{reused}, {self.batches_resumed} resumed) in "
            f"{self.seconds:.1f} s, {self.images_per_s:.1f} images/s ({self.backend}{rss}) -> {self.path}"
        )


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):  # not Linux
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def model_fingerprint(model: nn.Module) -> str:
    """sha256 (16 hex digits) of the model's class and state dict (names, dtypes, shapes, values)."""
    h = hashlib.sha256(f"{type(model).__module__}.{type(model).__qualname__}".encode())
    for name, t in model.state_dict().items():
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


_QFS_PARAMS = [p for p in inspect.signature(QFSCAM.__init__).parameters
               if p not in ("self", "model", "target_layers", "reshape_transform", "upsample", "output_selector",
                             "channels_last")]


def _check_method_params(names: list[str], params: dict[str, Any]) -> None:
    unknown = sorted(set(params) - set(_QFS_PARAMS))
    if unknown:
        raise TypeError(f"{unknown[0]}: not a parameter of explain_dataset or QFS-CAM; QFS-CAM takes {_QFS_PARAMS}")
    if params and "qfs" not in names:
        raise TypeError(f"QFS-CAM parameters {sorted(params)} given, but 'qfs' is not among methods {names}")


def _jsonable_param(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, dict):
        return {str(k): _jsonable_param(x) for k, x in sorted(v.items())}
    if isinstance(v, (list, tuple)):
        return [_jsonable_param(x) for x in v]
    text = repr(v)
    if " at 0x" in text:  # object.__repr__ names a memory address: the same object differs per process
        return f"{type(v).__module__}.{type(v).__qualname__} instance"
    return text


# --------------------------------------------------------------------------------------------
# the per-batch work (shared by the local and the Dask backend)
# --------------------------------------------------------------------------------------------


class BatchWorker:
    """Explains batches of one job and writes them to the store (one per process)."""

    def __init__(
        self,
        model: nn.Module,
        loadable: Loadable,
        cams: dict[str, BaseCAM],
        manifest: dict[str, Any],
        device: torch.device,
        targets: Any,
        writer: _store.StoreWriter,
    ) -> None:
        self.model, self.loadable, self.cams = model, loadable, cams
        self.manifest, self.device, self.targets, self.writer = manifest, device, targets, writer
        first = next(iter(cams.values()))
        self.modules = [m for _, m in first.target_layers]
        self.layer_names = [n for n, _ in first.target_layers]
        self.reshape = first.reshape_transform
        selector = getattr(first, "output_selector", None)  # (newer explainers: a model-output selector)
        self._capture_extra = {} if selector is None else {"output_selector": selector}
        layout = getattr(first, "channels_last", None)
        if layout is not None:
            self._capture_extra["channels_last"] = layout
        cfg = manifest["config"]
        self.bs = int(cfg["batch_size"])
        self.dtype = np.dtype(cfg["dtype"])
        self.store_raw = bool(cfg["store_raw"])
        h, w = manifest["heatmap_shape"]
        # Output buffers, reused by every batch (NaN rows: failed images); no batch is larger
        # than the dataset (batch_size may be).
        rows = min(self.bs, int(manifest["num_images"]))
        self._heat = {m: np.empty((rows, h, w), self.dtype) for m in cams}
        # Raw maps are not normalised: float32 whatever dtype is (float16 overflows at 65504).
        self._raw = {(m, layer): np.empty((rows, lh, lw), _store.RAW_DTYPE)
                     for m in cams for layer, (lh, lw) in zip(self.layer_names, manifest["raw_shapes"])} \
            if self.store_raw else {}
        # Ablation relevance runs the model again: it may not overlap with the next capture.
        qfs = cams.get("qfs")
        self.overlap = not (isinstance(qfs, QFSCAM) and qfs.relevance == "ablation")
        self.input_dtype = _input_dtype(model)
        self.explained_any = False  # whether this run has captured any image yet
        self.finished_any = False  # ... and explained any (in the finishing thread)

    def batch_indices(self, b: int) -> list[int]:
        n = int(self.manifest["num_images"])
        return list(range(b * self.bs, min(n, (b + 1) * self.bs)))

    def capture(self, x: torch.Tensor | None) -> Capture | None:
        if x is None:
            return None
        return capture(self.model, x.to(self.device, self.input_dtype, non_blocking=True), self.modules, self.targets,
                       self.reshape, **self._capture_extra)

    # -- the capture of a batch in flight, saved until the batch is complete ----------------
    # Format: an 8-byte little-endian header length, a JSON header (per tensor: name, dtype,
    # shape, byte offset), then the raw tensor bytes. No pickle, so reading a store runs no code.
    # The input is not saved: a restart loads the same images again (and the header keeps which
    # of them the model pass could not explain).
    def save_capture(self, b: int, cap: Capture, items: list[Item]) -> None:
        named = [("output", cap.output), ("scores", cap.scores), ("predicted", cap.predicted)]
        for i, layer in enumerate(cap.layers):
            named += [(f"act{i}", layer.activations), (f"grad{i}", layer.gradients)]
        if sum(t.element_size() * t.nelement() for _, t in named) > _store.MAX_SAVED_CAPTURE_MB * 2**20:
            return
        arrays, meta, offset = [], [], 0
        for name, t in named:
            try:
                a = np.ascontiguousarray(t.detach().cpu().numpy())
            except TypeError:  # a dtype numpy lacks (bfloat16): not saved, a kill then redoes it
                return
            meta.append({"name": name, "dtype": a.dtype.str, "shape": list(a.shape), "offset": offset})
            arrays.append(a)
            offset += a.nbytes
        header = json.dumps({"layers": self.layer_names, "tensors": meta,
                             "reasons": [it.reason for it in items]}).encode()
        data = b"".join([len(header).to_bytes(8, "little"), header] + [a.tobytes() for a in arrays])
        self.writer.save_capture(b, data)

    def load_capture(self, b: int, items: list[Item], x: torch.Tensor) -> Capture | None:
        """The saved capture of batch ``b`` (its readable images ``x``), or None when it cannot be
        read (it is then computed again). Marks the images the model pass had failed on."""
        from ..targets import normalize_targets

        try:
            data = self.writer.capture_path(b).read_bytes()
            n = int.from_bytes(data[:8], "little")
            header = json.loads(data[8 : 8 + n])
            reasons = header["reasons"]
            readable = [i for i, it in enumerate(items) if not it.reason]  # the rows of x
            if header["layers"] != self.layer_names or len(reasons) != len(items) or len(readable) != len(x):
                return None
            keep = [j for j, i in enumerate(readable) if not reasons[i]]
            body = memoryview(data)[8 + n :]
            t = {}
            for m in header["tensors"]:
                dt = np.dtype(m["dtype"])
                count = int(np.prod(m["shape"]))
                a = np.frombuffer(body, dt, count, m["offset"]).reshape(m["shape"])
                t[m["name"]] = torch.from_numpy(a.copy()).to(self.device)
            layers = tuple(LayerCapture(name, module, t[f"act{i}"], t[f"grad{i}"])
                           for i, (name, module) in enumerate(zip(self.layer_names, self.modules)))
            targets = tuple(normalize_targets(self.targets, t["output"]))
            cap = Capture(x[keep].to(self.device, self.input_dtype), layers, t["output"], t["scores"], targets, t["predicted"])
        except Exception:  # noqa: BLE001  (a capture that cannot be read is computed again)
            return None
        for it, reason in zip(items, reasons):
            it.reason = it.reason or reason
        return cap

    def capture_batch(self, b: int, items: list[Item], x: torch.Tensor | None, saved: set[int]) -> Capture | None:
        """The capture of batch ``b``: saved by an interrupted run, or computed (and saved).

        Images the model pass fails on (a non-finite score or map: a corrupt image) are marked
        failed and the batch is captured without them. When it fails on every image alone before
        this run explained any image, the fault is taken to be the model's or the configuration's
        and the error is raised.
        """
        if x is None:
            return None
        if b in saved:
            cap = self.load_capture(b, items, x)
            if cap is not None:
                return cap
        try:
            cap = self.capture(x)
        except ValueError as exc:
            keep = _drop_failing(b, items, exc, lambda j: self.capture(x[j : j + 1]),
                                 "the model pass failed on this image", first=not self.explained_any)
            cap = self.capture(x[keep]) if keep else None
        if self.overlap and cap is not None:
            self.save_capture(b, cap, items)
        self.explained_any = self.explained_any or cap is not None
        return cap

    def explain(self, b: int, items: list[Item], cap: Capture | None) -> dict[str, Any]:
        """Every method's result from ``cap``.

        An image a method cannot explain (QFS-CAM: no candidate map, or fewer than ``k``) is
        marked failed, with the reason, and the others are explained as a batch without it. When
        every image fails alone in the run's first batch, the fault is taken to be the
        configuration's (e.g. ``k`` above every image's candidates) and the error is raised.
        """
        if cap is None:
            return {}
        try:
            results = {m: cam.from_capture(cap) for m, cam in self.cams.items()}
        except ValueError as exc:
            def explain_one(j: int) -> None:
                one = _sub_capture(cap, [j])
                for cam in self.cams.values():
                    cam.from_capture(one)

            keep = _drop_failing(b, items, exc, explain_one, "explaining this image failed",
                                 first=not self.finished_any)
            results = ({m: cam.from_capture(_sub_capture(cap, keep)) for m, cam in self.cams.items()}
                       if keep else {})
        self.finished_any = self.finished_any or bool(results)
        return results

    def finish(self, b: int, items: list[Item], cap: Capture | None) -> tuple[int, int]:
        """Every method's heatmaps from ``cap``, and the batch written; returns (explained, failed)."""
        rows = len(items)
        results = self.explain(b, items, cap)
        good = [i for i, it in enumerate(items) if not it.reason]
        rec: dict[str, list[Any]] = {k: [] for k in _store._records_schema().names}
        for m in self.cams:
            buf = self._heat[m][:rows]
            buf.fill(np.nan)
            for key in [k for k in self._raw if k[0] == m]:
                self._raw[key][:rows].fill(np.nan)
            if m not in results:
                continue
            res = results[m]
            buf[good] = res.heatmaps
            if self.store_raw:
                for layer, raw in zip(self.layer_names, res.raw_maps):
                    self._raw[(m, layer)][:rows][good] = raw
            sel = res.selections[0] if res.selections else None
            per_image_s = (sel.timing["total_s"] / len(good)) if sel is not None else None
            for j, pos in enumerate(good):
                it = items[pos]
                rec["index"].append(it.index)
                rec["batch"].append(b)
                rec["path"].append(it.path)
                rec["label"].append(it.label)
                rec["method"].append(m)
                rec["predicted"].append(int(res.predicted[j]))
                rec["score"].append(float(res.scores[j]))
                rec["flat"].append(bool(res.flat[j]))
                if sel is None:
                    for k in ("selected", "num_selected", "candidates", "energy", "feasible", "solver", "solver_s"):
                        rec[k].append(None)
                else:
                    rec["selected"].append(sel.selected[j].astype(np.int32).tolist())
                    rec["num_selected"].append(int(len(sel.selected[j])))
                    rec["candidates"].append(int(sel.d[j]))
                    rec["energy"].append(float(sel.energies[j]))
                    rec["feasible"].append(bool(sel.feasible[j]))
                    rec["solver"].append(str(sel.sampler))
                    rec["solver_s"].append(per_image_s)
        fails: dict[str, list[Any]] = {"index": [], "batch": [], "path": [], "reason": []}
        for it in items:
            if it.reason:
                fails["index"].append(it.index)
                fails["batch"].append(b)
                fails["path"].append(it.path)
                fails["reason"].append(it.reason)
        self.writer.write_batch(
            b,
            {m: self._heat[m][:rows] for m in self.cams},
            {k: v[:rows] for k, v in self._raw.items()},
            rec,
            fails,
        )
        self.writer.drop_capture(b)
        return len(good), rows - len(good)

    def run(self, batches: Sequence[int], num_workers: int, on_batch: Any = None) -> tuple[int, int]:
        """Explains ``batches`` (loading in ``num_workers`` processes, 0: in this one); the model
        pass of batch i + 1 overlaps the QUBO work and writing of batch i."""
        if not batches:
            return 0, 0
        num_workers = min(num_workers, len(batches))  # (a process per batch at most: more would idle)
        loader = torch.utils.data.DataLoader(
            self.loadable,
            batch_sampler=[self.batch_indices(b) for b in batches],
            collate_fn=collate_items,
            num_workers=num_workers,
            prefetch_factor=2 if num_workers else None,
            pin_memory=self.device.type == "cuda",
            # its base seed from the job's seed, not from the user's global torch generator
            generator=torch.Generator().manual_seed(int(self.manifest["seed"])),
        )
        explained = failed = 0
        pending: Future[tuple[int, int]] | None = None
        saved = self.writer.saved_captures() if self.overlap else set()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="qfsel-finish") as pool:
            try:
                for b, (items, x) in zip(batches, loader):
                    cap = self.capture_batch(b, items, x, saved)
                    if pending is not None:
                        e, f = pending.result()
                        explained, failed = explained + e, failed + f
                        if on_batch is not None:
                            on_batch(e + f, f)
                    if self.overlap:
                        pending = pool.submit(self.finish, b, items, cap)
                    else:
                        done: Future[tuple[int, int]] = Future()
                        done.set_result(self.finish(b, items, cap))
                        pending = done
                    del cap, x
                if pending is not None:
                    e, f = pending.result()
                    explained, failed = explained + e, failed + f
                    if on_batch is not None:
                        on_batch(e + f, f)
                    pending = None
            finally:
                if pending is not None:
                    pending.cancel()
                    try:
                        pending.result()
                    except BaseException:  # noqa: BLE001  (the first error is the one raised)
                        pass
        return explained, failed


# --------------------------------------------------------------------------------------------
# the public entry point
# --------------------------------------------------------------------------------------------


def _check_device(device: Any) -> torch.device:
    """``device`` as a torch.device; an unknown name or CUDA without CUDA is a ValueError naming it."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:  # torch: "Expected one of cpu, cuda, ... device type ..."
        raise ValueError(f"device: expected a torch device such as 'cpu' or 'cuda:0', got {device!r} ({exc})") from None
    if dev.type == "meta":  # moving the model there would drop its weights for good
        raise ValueError(f"device: expected a device that holds data (such as 'cpu' or 'cuda:0'), got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: expected a device this torch can use, got {device!r} but torch.cuda.is_available() is False")
    return dev


def _resolve_model(model: Any, target_layers: Any) -> tuple[nn.Module, Any, Any, str]:
    """(module, target layers, default transform, model name) for a module or a bundled name."""
    if isinstance(model, (str, os.PathLike)):
        from ..models import load_model

        bundle = load_model(model)
        layers = bundle.default_layer if target_layers is None else target_layers
        pre = bundle.preprocess
        return bundle.model, layers, lambda image: pre(image)[0], bundle.name
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch nn.Module or a bundled model name, got {type(model).__name__}")
    if target_layers is None:
        raise TypeError("target_layers: expected a layer name, a module or a list of them, got None")
    return model, target_layers, None, type(model).__qualname__


def explain_dataset(
    model: nn.Module | str,
    dataset: Any,
    target_layers: Any = None,
    methods: str | Sequence[str] = ("qfs", "gradcam", "gradcam++"),
    *,
    out: str | os.PathLike[str],
    batch_size: int = 32,
    targets: int | None = None,
    seed: int = 0,
    dtype: str = "float16",
    store_raw: bool = False,
    upsample: bool = True,
    overwrite: bool = False,
    num_workers: int = 2,
    device: str | torch.device | None = None,
    transform: Any = None,
    resize: int | tuple[int, int] | None = None,
    reshape_transform: Any = None,
    output_selector: Any = None,
    channels_last: bool | None = None,
    backend: str = "local",
    scheduler: Any = None,
    n_workers: int = 2,
    shard_batches: int | None = None,
    timeout: float = 30.0,
    progress: bool = True,
    tune_malloc: bool = True,
    **method_params: Any,
) -> DatasetSummary:
    """Explains every image of a dataset with every requested method, streamed into a store.

    One capture (forward + backward pass) per batch serves all methods. Results go to ``out``
    (see :mod:`qfsel.dataset.store`; read them with :func:`qfsel.open_results`). A job that was
    killed (even with kill -9) continues, when started again with the same arguments, from its
    last complete batch and ends with the same bytes as an uninterrupted run.

    Args:
        model: a torch model, or a bundled model name (``"narrow-mnist-16"``, ...) whose
            preprocessing then reads the image files.
        dataset: an image folder (class subfolders or flat), a bundled dataset
            (``"mnist5k-train"``, ``"mnist5k-test"``), a (N, C, H, W) tensor or numpy array
            (optionally as ``(images, labels)``), or a map-style torch Dataset whose items are
            images, (image, label) pairs or dicts (the image under "image" or "pixel_values",
            the label under "label" or "labels"); an image is a float (C, H, W) or (H, W)
            tensor or array, a uint8, uint16 or bool one (scaled to [0, 1]), or a PIL image of
            any mode (read as an image file is, brought to the model's channels). A label is a
            class index, a one-hot vector, or a class name of the Dataset's ``classes`` list;
            others are recorded as -1 (no label), with a warning.
        target_layers: layer name(s) or module(s); default for a bundled model: its layer.
        methods: names from :data:`qfsel.cams.METHODS`.
        out: the store folder (created).
        batch_size: images per forward/backward pass (also the store's chunk along images).
        targets: None (the predicted class) or one class index for all images.
        seed: the QUBO solver's seed (QFS-CAM), recorded in the manifest.
        dtype: heatmap dtype in the store, "float16" (default) or "float32".
        store_raw: also store each method's raw maps per target layer (layer resolution,
            float32: they are not normalised to [0, 1]).
        upsample: heatmaps at input size (default) or layer resolution.
        overwrite: replace a store written with another configuration (else refused).
        num_workers: DataLoader worker processes that load images (0: in the main process).
        device: where the model runs ("cpu", "cuda", ...); default: the model's device.
        transform, resize: for image folders (see :class:`qfsel.dataset.ImageFolder`).
        reshape_transform: as for :class:`qfsel.cams.BaseCAM`.
        output_selector: for a model that returns a dict, a tuple or an object: the key,
            attribute name or position of the logits, or a callable (as for
            :class:`qfsel.cams.BaseCAM`).
        channels_last: the memory layout of the model's pass (as for :class:`qfsel.cams.BaseCAM`):
            None (default) channels-last on the CPU, up to 1.55x faster there; True on every
            device; False the input's own layout. Part of the configuration when given (the
            maps differ in float rounding).
        backend: "local" (this process) or "dask" (shards of batches on Dask workers).
        scheduler: with backend="dask": a scheduler address ("tcp://host:port"), a
            ``distributed.Client``, or None for a LocalCluster on 127.0.0.1.
        n_workers: worker processes of that LocalCluster.
        shard_batches: batches per Dask task (default: about four tasks per worker).
        timeout: seconds to wait for the Dask scheduler to answer.
        progress: show a tqdm progress bar (images/s, ETA).
        tune_malloc: keep freed memory for reuse between batches (:func:`qfsel.tune_malloc`,
            in this process and in every Dask worker; 1.1-1.7x images/s on the CPU here). It
            changes glibc's malloc thresholds for the rest of the process; False leaves
            malloc alone. Not part of the configuration: results are the same either way.
        **method_params: QFS-CAM parameters (beta, k, sampler, candidates, ...).

    Returns:
        A :class:`DatasetSummary` (also stored in the manifest).

    Raises:
        FileNotFoundError: a dataset folder that does not exist.
        ValueError: an empty folder, mixed image sizes without ``resize``, unknown methods,
            bad arguments, or a non-empty ``out`` that is not a store.
        TypeError: unknown parameters.
        qfsel.dataset.ConfigMismatchError: ``out`` holds another configuration.
        qfsel.dataset.StoreWriteError: the store cannot be written (full or read-only disk).
        ConnectionError: the Dask scheduler does not answer within ``timeout``.
    """
    t_start = time.perf_counter()
    if not isinstance(methods, (str, list, tuple)):
        raise TypeError(f"methods: expected a method name or a sequence of them (str, list or tuple), got {describe(methods)}")
    names = method_names(methods)
    _check_method_params(names, method_params)
    batch_size = check_positive_int("batch_size", batch_size)
    num_workers = check_int("num_workers", num_workers, low=0)
    seed = check_int("seed", seed, low=0)
    dtype = _check_dtype(dtype)
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if backend == "local" and scheduler is not None:
        raise ValueError('scheduler: only meaningful with backend="dask"; got a scheduler and backend="local"')
    if backend == "dask":
        from .dask_backend import check_scheduler

        check_scheduler(scheduler)
    if targets is not None:
        targets = check_int("targets", targets, low=0)
    for flag, value in (("store_raw", store_raw), ("upsample", upsample), ("overwrite", overwrite),
                        ("progress", progress), ("tune_malloc", tune_malloc)):
        if not isinstance(value, bool):
            raise TypeError(f"{flag}: expected a bool, got {type(value).__name__}")
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out: expected a folder path (str or os.PathLike), got {describe(out)}")
    out = Path(out).expanduser()  # "~/store": the home folder (not a folder named "~")
    timeout = check_positive_real("timeout", timeout)
    n_workers = check_positive_int("n_workers", n_workers)
    if shard_batches is not None:
        shard_batches = check_positive_int("shard_batches", shard_batches)  # 0 quietly meant the default
    device = None if device is None else _check_device(device)
    module, target_layers, bundle_transform, model_name = _resolve_model(model, target_layers)
    for pname, t in list(module.named_parameters()) + list(module.named_buffers()):
        if nn.parameter.is_lazy(t):
            raise ValueError(f"model: its parameter {pname} is not initialized (a lazy layer); run the model once on "
                             "a batch first (model(x)), so that its shapes are known")
    if device is None:
        first_param = next(module.parameters(), None)
        device = first_param.device if first_param is not None else torch.device("cpu")
    module.to(device)
    resolved = resolve_target_layers(module, target_layers)
    layer_names = [n for n, _ in resolved]
    sampler = method_params.get("sampler")
    if "qfs" in names and (not hasattr(sampler, "sample") or "seed" in getattr(sampler, "parameters", ())):
        # (a dimod sampler object that takes no seed, e.g. dimod.ExactSolver, would warn per batch)
        method_params.setdefault("seed", seed)
    output_selector = check_output_selector(output_selector)
    check_channels_last(channels_last)
    cams = build_explainers(module, [m for _, m in resolved], names, reshape_transform=reshape_transform,
                            upsample=upsample, output_selector=output_selector, channels_last=channels_last,
                            **method_params)

    _check_transform(dataset, transform, resize, bundle_transform is not None)
    channels = _channels(module)
    ds, description = resolve_dataset(dataset, transform=transform or bundle_transform, resize=resize, channels=channels)
    n = len(ds)
    if n == 0:
        raise ValueError("dataset: expected at least one image, got an empty dataset")
    classes = _class_names(ds)
    loadable = Loadable(ds, None, channels, classes)
    note = label_note(ds, loadable.class_index)
    if note:
        warnings.warn(note, QFSelWarning, stacklevel=2)
    probe = first_shape(loadable)
    shape = tuple(probe.shape)
    loadable.shape = shape
    # Probe one image: checks the layers now (before anything is written) and gives the map sizes.
    layer_modules = [m for _, m in resolved]
    probe = probe.to(dtype=_input_dtype(module))
    try:
        cap = capture(module, probe[None].to(device), layer_modules, targets, reshape_transform,
                      output_selector=output_selector, channels_last=channels_last)
    except ValueError as exc:
        # the first image may be corrupt (NaN pixels: the job records it as failed); its shape is
        # what counts here, so probe once more with its non-finite values zeroed
        clean = torch.nan_to_num(probe, nan=0.0, posinf=0.0, neginf=0.0)
        try:
            cap = capture(module, clean[None].to(device), layer_modules, targets, reshape_transform,
                          output_selector=output_selector, channels_last=channels_last)
        except ValueError:
            if targets is not None and str(exc).startswith(f"target class {targets} is out of range"):
                raise ValueError(f"targets: {exc}") from None
            raise exc from None
    raw_shapes: list[list[int]] = [[int(v) for v in layer.activations.shape[2:]] for layer in cap.layers]
    heat_shape = list(shape[1:]) if upsample else max(raw_shapes, key=lambda s: int(s[0]) * int(s[1]))
    del cap

    from .. import __version__

    config = {
        "format": _store.FORMAT_VERSION,
        "model": model_name,
        "model_sha256": model_fingerprint(module),
        "target_layers": layer_names,
        "methods": names,
        "method_params": _qfs_config(cams.get("qfs")),
        "targets": targets,
        "output_selector": _selector_config(output_selector),
        "batch_size": batch_size,
        "dtype": dtype,
        "store_raw": store_raw,
        "upsample": upsample,
        "dataset": dataset_fingerprint(ds),
        "input_shape": list(shape),
        "qfsel_version": __version__,
    }
    # What changes the images or the maps without changing their shapes; recorded only when
    # given (a function by its name), so the stores of default jobs keep their configuration.
    given: tuple[tuple[str, Any], ...] = (("transform", transform), ("resize", resize),
                                          ("reshape_transform", reshape_transform),
                                          ("channels_last", channels_last))
    for key, setting in given:
        if setting is not None:
            config[key] = _selector_config(setting) if callable(setting) else _jsonable_param(setting)
    num_batches = (n + batch_size - 1) // batch_size
    manifest = {
        "config": config,
        "dataset_description": description,
        # the class names of the records' labels (an image folder's subfolders, a Dataset's .classes)
        "classes": classes,
        "num_images": n,
        "num_batches": num_batches,
        "heatmap_shape": heat_shape,
        "raw_shapes": raw_shapes,
        "seed": seed,
        "complete": False,
    }
    writer = _store.StoreWriter.open(out, manifest, overwrite=overwrite)
    writer.drop_stale_captures()
    writer.drop_stale_temporaries()  # (no worker is writing yet)
    done = writer.done_batches()
    todo = [b for b in range(num_batches) if b not in done]
    reusable = len(writer.saved_captures() & set(todo))
    done_images = sum(len(range(b * batch_size, min(n, (b + 1) * batch_size))) for b in done)

    from tqdm.auto import tqdm

    bar = tqdm(total=n, initial=done_images, unit="img", desc="explain-dataset", disable=not progress,
               dynamic_ncols=True, smoothing=0.1)
    rss: list[tuple[int, float]] = []
    state = {"images": 0, "failed": 0}

    def on_batch(images: int, failed: int) -> None:
        state["images"] += images
        state["failed"] += failed
        bar.update(images)
        if failed:
            bar.set_postfix(failed=state["failed"], refresh=False)
        if backend == "local":
            rss.append((state["images"], round(_rss_mb(), 1)))
            if len(rss) > 400:  # keep the samples' own memory bounded: every other one
                del rss[1:-1:2]

    if tune_malloc:
        _tune_malloc()
    t_run = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # Flat maps are recorded per image (column "flat"), not warned about per batch.
            warnings.filterwarnings("ignore", category=QFSelWarning)
            if backend == "local":
                BatchWorker(module, loadable, cams, writer.manifest, device, targets, writer).run(
                    todo, num_workers, on_batch)
            else:
                from .dask_backend import run_dask

                run_dask(
                    model=module, loadable=loadable, names=names, layer_names=layer_names, method_params=method_params,
                    reshape_transform=reshape_transform, output_selector=output_selector,
                    channels_last=channels_last, upsample=upsample,
                    targets=targets, device=str(device),
                    path=Path(out), todo=todo, scheduler=scheduler, n_workers=n_workers, shard_batches=shard_batches,
                    timeout=timeout, on_batch=on_batch, tune_malloc=tune_malloc,
                )
    finally:
        bar.close()
    seconds = time.perf_counter() - t_run
    writer.drop_stale_captures()
    results = _store.open_results(out)
    explained, failed = results.counts()
    summary = DatasetSummary(
        path=str(out),
        images=n,
        explained=explained,
        failed=failed,
        batches=num_batches,
        batches_run=len(todo),
        batches_resumed=len(done),
        captures_reused=reusable,
        seconds=time.perf_counter() - t_start,
        images_per_s=(state["images"] / seconds) if seconds > 0 else 0.0,
        methods=names,
        backend=backend,
        rss_mb=_thin(rss, 50),
    )
    writer.manifest["complete"] = results.complete
    # the per-batch parts (written by this process or by Dask workers), merged here
    writer.manifest["parts"] = {"records": f"{_store.RECORDS}/part-BBBBBB.parquet",
                                "failures": f"{_store.FAILURES}/part-BBBBBB.parquet",
                                "complete_batches": len(results.done_batches())}
    writer.manifest["summary"] = asdict(summary)
    try:
        writer.write_manifest()
    except OSError as exc:
        raise _store._write_error(Path(out), exc, num_batches - 1) from exc
    return summary


def _class_names(ds: Any) -> list[str] | None:
    """The dataset's class names (label i is ``classes[i]``), when it has them."""
    classes = getattr(ds, "classes", None)
    if isinstance(classes, (list, tuple)) and classes and all(isinstance(c, str) for c in classes):
        return list(classes)
    return None


def _check_dtype(dtype: Any) -> str:
    """``dtype`` ("float16", numpy's or torch's float16 / float32) as its name in :data:`DTYPES`."""
    name = None
    if isinstance(dtype, str):
        name = dtype
    elif isinstance(dtype, torch.dtype):
        name = str(dtype).removeprefix("torch.")
    elif not isinstance(dtype, (int, float)):
        try:
            name = np.dtype(dtype).name
        except TypeError:
            pass
    if name not in DTYPES:
        raise ValueError(f"dtype: expected one of {DTYPES} (or numpy's or torch's float16 / float32), got {dtype!r}")
    return name


def _check_transform(dataset: Any, transform: Any, resize: Any, bundled_model: bool) -> None:
    """Refuses a ``transform`` or ``resize`` that would be ignored: they act on the files of an
    image folder (``resize`` only through the default transform)."""
    folder = isinstance(dataset, (str, os.PathLike)) and not (isinstance(dataset, str) and dataset in BUNDLED)
    for name, value in (("transform", transform), ("resize", resize)):
        if value is not None and not folder:
            raise ValueError(f"{name}: only used for an image folder (it reads the files); the dataset is "
                             f"{dataset!r:.60} ({type(dataset).__name__}): give its images at the model's size")
    if resize is not None and transform is not None:
        raise ValueError("resize: used only by the default transform; pass resize or transform, not both "
                         "(resize in your transform)")
    if resize is not None and bundled_model:
        raise ValueError("resize: the bundled model's preprocessing sizes the images itself; pass resize or a "
                         "bundled model name, not both")


def _selector_config(selector: Any) -> Any:
    """``output_selector`` for the manifest: a key or position as is, a callable by name."""
    if selector is None or isinstance(selector, (str, int)):
        return selector
    return f"callable {getattr(selector, '__qualname__', type(selector).__qualname__)}"


def _qfs_config(cam: Any) -> dict[str, Any]:
    """QFS-CAM's effective parameters (defaults included), so equal settings compare equal."""
    if cam is None:
        return {}
    keys = ("beta", "k", "sampler", "relevance", "redundancy", "objective", "candidates", "seed",
            "sampler_params", "ablation_batch_size")
    return {k: _jsonable_param(getattr(cam, k)) for k in keys}


def _thin(samples: list[tuple[int, float]], keep: int) -> list[tuple[int, float]]:
    if len(samples) <= keep:
        return samples
    step = len(samples) / keep
    idx = sorted({int(i * step) for i in range(keep)} | {len(samples) - 1})
    return [samples[i] for i in idx]


def _input_dtype(model: nn.Module) -> torch.dtype:
    """The dtype the model's images go in as: that of its first floating parameter (a float64 or
    half-precision model), float32 for a model without one. (Images are loaded as float32.)"""
    for t in list(model.parameters()) + list(model.buffers()):
        if t.is_floating_point():
            return t.dtype
    return torch.float32


def _channels(model: nn.Module) -> int:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return 1 if m.in_channels == 1 else 3
    return 3
