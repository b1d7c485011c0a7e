"""The Dask backend of :func:`qfsel.explain_dataset`: shards of batches on Dask workers.

* A worker plugin carries the model, the dataset and the method parameters; its ``setup``
  runs once per worker process and builds the explainers there, so a task only names the
  batches it explains (the model is loaded once per worker, not per task).
* Each task explains a shard (consecutive batches) and writes them straight into the store:
  every batch writes only its own Zarr chunks and its own records/failures parts, so workers
  never write the same file. The driver writes the manifest.
* A task skips the batches already complete in the store. When a worker dies, the scheduler
  runs its tasks again elsewhere; they redo at most the two batches the dead worker had in flight
  (one being written, one in its model pass).
* With ``tune_malloc`` (the default), each worker process keeps freed memory for reuse
  (:func:`qfsel.tune_malloc`), as the driver does for the local backend.
* Results equal the local backend's for the same seed: the batches, hence every forward pass
  and every QUBO, are the same.
"""

from __future__ import annotations

import os
import pickle
import uuid
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["QFSelWorkerPlugin", "run_dask"]


def _plugin_base() -> type:
    try:
        from distributed.diagnostics.plugin import WorkerPlugin
    except ImportError:  # the module stays importable without the dask extra; run_dask says what is missing
        return object
    return WorkerPlugin


class QFSelWorkerPlugin(_plugin_base()):  # type: ignore[misc]
    """Loads a job's model and dataset once per Dask worker (``distributed.WorkerPlugin``).

    Attributes set on the worker: ``worker.qfsel_jobs[key]`` (the job's state) and
    ``worker.qfsel_loads[key]`` (how often ``setup`` ran on this worker: 1).
    """

    idempotent = True

    def __init__(self, key: str, payload: bytes) -> None:
        self.key = key
        self.payload = payload
        self.name = f"qfsel-{key}"

    def setup(self, worker: Any) -> None:
        import torch

        from ..cams import build_explainers

        spec = pickle.loads(self.payload)
        if spec.get("tune_malloc", True):
            from .._malloc import _tune

            _tune(dask_worker=True)
        torch.set_num_threads(max(1, int(getattr(worker, "nthreads", 1) or 1)))
        model = spec["model"].to(spec["device"])
        cams = build_explainers(model, spec["layer_names"], spec["names"],
                                reshape_transform=spec["reshape_transform"], upsample=spec["upsample"],
                                output_selector=spec["output_selector"], channels_last=spec.get("channels_last"),
                                **spec["method_params"])
        spec["model"], spec["cams"] = model, cams
        if not hasattr(worker, "qfsel_jobs"):
            setattr(worker, "qfsel_jobs", {})
            setattr(worker, "qfsel_loads", {})
        jobs: dict[str, Any] = getattr(worker, "qfsel_jobs")
        loads: dict[str, int] = getattr(worker, "qfsel_loads")
        jobs[self.key] = spec
        loads[self.key] = loads.get(self.key, 0) + 1

    def teardown(self, worker: Any) -> None:
        getattr(worker, "qfsel_jobs", {}).pop(self.key, None)


def _run_shard(key: str, path: str, batches: Sequence[int]) -> tuple[int, int, int]:
    """Explains ``batches`` of job ``key`` on this worker; returns (images, failed, batches run)."""
    import torch
    from distributed import get_worker

    from .pipeline import BatchWorker
    from .store import StoreWriter, _done_batches

    worker = get_worker()
    spec = getattr(worker, "qfsel_jobs")[key]
    store = Path(path)
    import json

    manifest = json.loads((store / "manifest.json").read_text())
    todo = [b for b in batches if b not in _done_batches(store)]
    writer = StoreWriter(store, manifest)
    writer._open_arrays()
    import warnings

    from ..exceptions import QFSelWarning

    counts = {"images": 0, "failed": 0}

    def on_batch(images: int, failed: int) -> None:
        counts["images"] += images
        counts["failed"] += failed

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=QFSelWarning)
        BatchWorker(spec["model"], spec["loadable"], spec["cams"], manifest, torch.device(spec["device"]),
                    spec["targets"], writer).run(todo, 0, on_batch)
    skipped = sum(len(range(b * writer.manifest["config"]["batch_size"],
                            min(manifest["num_images"], (b + 1) * writer.manifest["config"]["batch_size"])))
                  for b in batches if b not in todo)
    return counts["images"] + skipped, counts["failed"], len(todo)


def _worker_malloc_env() -> dict[str, int]:
    """glibc's thresholds (bytes) in the workers of the LocalCluster qfsel starts: those of
    :func:`qfsel.tune_malloc`."""
    from .._malloc import MMAP_THRESHOLD, TRIM_THRESHOLD

    return {"MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD, "MALLOC_TRIM_THRESHOLD_": TRIM_THRESHOLD}


def local_cluster(n_workers: int) -> Any:
    """The ``LocalCluster`` qfsel starts: ``n_workers`` single-threaded worker processes on
    127.0.0.1, the scheduler's HTTP server on a free loopback port, and glibc's mmap and trim
    thresholds in the workers' environment as :func:`qfsel.tune_malloc` sets them."""
    import dask
    from distributed import LocalCluster

    # distributed starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also turns off glibc's
    # adaptive mmap threshold: every tensor above 128 KiB is then mmap'ed and page-faulted
    # afresh, and the model ran 2x slower in a worker than in this process (`benches/
    # dataset_report.py --only dask`: 1 worker 966 -> 2137 images/s with both at 64 MiB).
    # With dashboard_address=None distributed would still bind 8787 (and warn, or fail under
    # -W error, when another cluster holds it).
    # distributed's nanny also writes the workers' environment into this process's
    # (os.environ.update before each spawn): it is put back, so that the thresholds (and
    # distributed's OMP_NUM_THREADS=1 and the like) do not reach this process's later children.
    before = dict(os.environ)
    try:
        with dask.config.set({f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in _worker_malloc_env().items()}):
            return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                dashboard_address="127.0.0.1:0")
    finally:
        restore_environ(before)


def restore_environ(before: dict[str, str]) -> None:
    """Puts ``os.environ`` back as it was in ``before`` (keys added since are removed)."""
    for key in [k for k in os.environ if k not in before]:
        del os.environ[key]
    for key, value in before.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


def check_scheduler(scheduler: Any) -> None:
    """Raises for a ``scheduler`` that is not None, a ``distributed.Client`` or an address with a
    known scheme and a port (before anything is written: a job that cannot start leaves no store).

    Raises:
        ModuleNotFoundError: the dask extra is not installed.
        TypeError: another type.
        ValueError: a malformed address.
    """
    try:
        from distributed import Client
        from distributed.comm.addressing import get_address_host_port, parse_address
    except ImportError as exc:
        raise ModuleNotFoundError(
            'backend="dask" needs the dask extra: pip install "qfsel[dask]" (dask and distributed)'
        ) from exc
    if scheduler is None or isinstance(scheduler, Client):
        return
    if not isinstance(scheduler, str):
        raise TypeError(f"scheduler: expected an address like 'tcp://host:8786', a distributed.Client or None, "
                        f"got {type(scheduler).__name__}")
    if parse_address(scheduler)[0] == "inproc":  # (an in-process address has no port)
        return
    try:
        get_address_host_port(scheduler)
    except ValueError as exc:
        raise ValueError(f"scheduler: expected an address like 'tcp://host:8786', got {scheduler!r} ({exc})") from None


def connect(scheduler: Any, n_workers: int, timeout: float) -> tuple[Any, Any]:
    """``(client, cluster or None)``: the given Client, a connection to an address, or a new
    LocalCluster on 127.0.0.1 with ``n_workers`` single-threaded worker processes."""
    from distributed import Client

    from .._checks import check_positive_int, check_positive_real

    timeout = check_positive_real("timeout", timeout)
    if isinstance(scheduler, Client):
        return scheduler, None
    if scheduler is None:
        n_workers = check_positive_int("n_workers", n_workers)
        cluster = local_cluster(n_workers)
        try:
            return Client(cluster, timeout=timeout), cluster
        except BaseException:
            cluster.close()
            raise
    check_scheduler(scheduler)
    try:
        return Client(scheduler, timeout=timeout), None
    except (OSError, TimeoutError) as exc:
        raise ConnectionError(
            f"scheduler: no Dask scheduler answered at {scheduler!r} within {timeout:g} s ({exc}); "
            "start one with `dask scheduler` or check the address"
        ) from exc


def run_dask(
    *,
    model: Any,
    loadable: Any,
    names: list[str],
    layer_names: list[str],
    method_params: dict[str, Any],
    reshape_transform: Any,
    output_selector: Any,
    upsample: bool,
    targets: Any,
    device: str,
    path: Path,
    todo: list[int],
    scheduler: Any,
    n_workers: int,
    shard_batches: int | None,
    timeout: float,
    on_batch: Callable[[int, int], None],
    tune_malloc: bool = True,
    channels_last: bool | None = None,
) -> None:
    """Runs the batches ``todo`` as shards on Dask workers (see the module docstring)."""
    try:
        from distributed import as_completed
    except ImportError as exc:
        raise ModuleNotFoundError(
            'backend="dask" needs the dask extra: pip install "qfsel[dask]" (dask and distributed)'
        ) from exc

    client, cluster = connect(scheduler, n_workers, timeout)
    key = uuid.uuid4().hex[:12]
    try:
        if not todo:
            return
        import copy

        import cloudpickle

        payload = cloudpickle.dumps({
            "model": copy.deepcopy(model).cpu() if device != "cpu" else model, "loadable": loadable, "names": names,
            "layer_names": layer_names, "method_params": method_params, "reshape_transform": reshape_transform,
            "output_selector": output_selector, "upsample": upsample, "targets": targets, "device": device,
            "tune_malloc": tune_malloc, "channels_last": channels_last,
        })
        plugin = QFSelWorkerPlugin(key, payload)
        client.register_plugin(plugin, name=plugin.name)
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        size = shard_batches or max(1, len(todo) // (4 * workers))
        shards = [todo[i : i + size] for i in range(0, len(todo), size)]
        futures = [client.submit(_run_shard, key, str(path.resolve()), shard, pure=False,
                                 key=f"qfsel-shard-{key}-{i}") for i, shard in enumerate(shards)]
        try:
            for fut in as_completed(futures):
                images, failed, _ = fut.result()
                on_batch(images, failed)
        finally:
            for fut in futures:
                fut.cancel()
        try:
            client.unregister_worker_plugin(plugin.name)
        except Exception:  # noqa: BLE001  (workers that died meanwhile)
            pass
    finally:
        if cluster is not None:
            client.close()
            cluster.close()
