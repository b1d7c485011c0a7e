"""The Dask backend of explain_dataset on a LocalCluster with 2 worker processes: the same store
as the local backend, the model loaded once per worker, a killed worker's shards redone."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest
import torch

import qfsel
from qfsel.dataset import open_results
from qfsel.dataset import store as store_mod
from tests import _dataset_job
from tests.test_dataset import _same_store

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    from qfsel._malloc import MMAP_THRESHOLD, TRIM_THRESHOLD
    from qfsel.dataset.dask_backend import local_cluster

    cluster = local_cluster(2)  # the cluster explain_dataset itself starts
    c = distributed.Client(cluster)
    # glibc's thresholds reach the workers (the model ran 2x slower without)
    env = c.run(lambda: {k: __import__("os").environ.get(k) for k in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")})
    assert all(v == {"MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD),
                     "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)} for v in env.values()), env
    yield c
    c.close()
    cluster.close()


def _kw():
    return dict(batch_size=_dataset_job.BATCH, progress=False, sampler="sa", k=3, seed=11)


def test_dask_equals_local_and_loads_the_model_once_per_worker(client, tmp_path):
    from tests._tiny_models import GapNet

    model = GapNet(k=10, classes=3)
    x = _dataset_job.images()
    qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "local", num_workers=0, **_kw())
    s = qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "dask", backend="dask", scheduler=client,
                              shard_batches=2, **_kw())
    assert (s.backend, s.explained, s.batches_run) == ("dask", 60, 15)
    _same_store(tmp_path / "local", tmp_path / "dask")
    loads = client.run(lambda dask_worker: sorted(getattr(dask_worker, "qfsel_loads", {}).values()))
    assert sorted(loads.values()) == [[1], [1]]  # 8 shards, one model load per worker
    assert open_results(tmp_path / "dask").manifest["summary"]["backend"] == "dask"


@pytest.mark.slow
def test_killed_worker_shards_are_redone(client, tmp_path):
    model = _dataset_job.SlowGapNet(k=10, classes=3)
    x = _dataset_job.images()
    qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "local", num_workers=0, **_kw())
    out = tmp_path / "dask"
    errors: list[BaseException] = []

    def job():
        try:
            qfsel.explain_dataset(model, x, ["act"], out=out, backend="dask", scheduler=client, shard_batches=3,
                                  **_kw())
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    pids = client.run(os.getpid)
    t = threading.Thread(target=job)
    t.start()
    deadline = time.monotonic() + 60
    while len(store_mod._done_batches(out)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    done_at_kill = len(store_mod._done_batches(out))
    os.kill(next(iter(pids.values())), signal.SIGKILL)
    t.join(timeout=120)
    assert not t.is_alive() and not errors, errors
    assert done_at_kill < 15
    res = open_results(out)
    assert res.complete
    _same_store(tmp_path / "local", out)


def test_unreachable_scheduler_fails_within_the_timeout(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from tests._tiny_models import GapNet

    t0 = time.monotonic()
    with pytest.raises(ConnectionError, match=rf"no Dask scheduler answered at 'tcp://127.0.0.1:{port}' within 1 s"):
        qfsel.explain_dataset(GapNet(), torch.rand(4, 3, 6, 6), ["act"], out=tmp_path / "s", backend="dask",
                              scheduler=f"tcp://127.0.0.1:{port}", timeout=1.0, progress=False)
    assert time.monotonic() - t0 < 15
    from qfsel.cli import main

    rc = main(["explain-dataset", "mnist5k-test", "--out", str(tmp_path / "c"), "--backend", "dask",
               "--scheduler", f"tcp://127.0.0.1:{port}", "--timeout", "1", "--no-progress", "--device", "cpu"])
    assert rc == 2
    with pytest.raises(TypeError, match="scheduler: expected an address"):
        qfsel.explain_dataset(GapNet(), torch.rand(4, 3, 6, 6), ["act"], out=tmp_path / "t", backend="dask",
                              scheduler=8786, progress=False)
    with pytest.raises(ValueError, match='scheduler: only meaningful with backend="dask"'):
        qfsel.explain_dataset(GapNet(), torch.rand(4, 3, 6, 6), ["act"], out=tmp_path / "u",
                              scheduler="tcp://127.0.0.1:1", progress=False)
