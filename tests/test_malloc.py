"""qfsel.tune_malloc: glibc keeps freed memory for reuse, so a loop that allocates and frees
the same large blocks stops page-faulting; the environment's malloc settings are respected;
the long jobs call it (or not) as told."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import qfsel
from qfsel import _malloc

glibc = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")

# Six 8 MiB blocks allocated, written and freed 12 times, as a forward pass does with its
# activations: with glibc's defaults the freed 48 MiB at the top of the heap exceed the trim
# threshold (twice the largest block freed so far) and go back to the kernel every round.
_LOOP = r"""
import ctypes, json, resource, sys
sys.path.insert(0, {src!r})
import qfsel
tuned = qfsel.tune_malloc() if {tune} else None
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
faults = []
for r in range(12):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    blocks = [libc.malloc(8 << 20) for _ in range(6)]
    for b in blocks:
        libc.memset(b, 1, 8 << 20)
    for b in blocks:
        libc.free(b)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({{"tuned": tuned, "faults": faults}}))
"""


def _loop(tune: bool, env: dict[str, str] | None = None) -> dict:
    src = os.path.dirname(os.path.dirname(qfsel.__file__))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", _LOOP.format(src=src, tune=tune)], capture_output=True, text=True,
                         check=True, env={**clean, **(env or {})})
    return json.loads(out.stdout.strip().splitlines()[-1])


@glibc
def test_tuned_malloc_reuses_freed_blocks_instead_of_faulting_them_in_again():
    plain, tuned = _loop(False), _loop(True)
    assert tuned["tuned"] is True
    # every round after the first: 48 MiB faulted in afresh by default (12,288 pages of 4 KiB;
    # 24 where the kernel gives the heap huge pages)
    assert min(plain["faults"][2:]) >= 20, plain
    # tuned: the blocks stay in the heap (a stray fault at most, e.g. for Python's own objects)
    assert 20 * sum(tuned["faults"][2:]) < sum(plain["faults"][2:]), (plain, tuned)


@glibc
@pytest.mark.parametrize("env", [{"MALLOC_TRIM_THRESHOLD_": "1000000"}, {"MALLOC_MMAP_THRESHOLD_": "65536"},
                                 {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1000000"}])
def test_the_environment_s_malloc_settings_are_left_alone(env):
    res = _loop(True, env)
    assert res["tuned"] is False


def test_skip_reasons(monkeypatch):
    env: dict[str, str] = {"PATH": "/usr/bin"}
    monkeypatch.setattr(_malloc, "_initial_environ", lambda: dict(env))
    if sys.platform.startswith("linux"):
        assert _malloc._skip_reason() is None
    env["LD_PRELOAD"] = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
    assert "preloaded" in _malloc._skip_reason()
    del env["LD_PRELOAD"]
    # a Dask nanny's own trim setting is overridden in a worker, a user's is not
    env["MALLOC_TRIM_THRESHOLD_"] = _malloc.DISTRIBUTED_TRIM_DEFAULT
    assert "environment" in _malloc._skip_reason()
    assert _malloc._skip_reason(dask_worker=True) is None or not sys.platform.startswith("linux")
    env["MALLOC_TRIM_THRESHOLD_"] = "1000000"
    assert "environment" in _malloc._skip_reason(dask_worker=True)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert "not Linux" in _malloc._skip_reason()


_AFTER_START = r"""
import os, sys
sys.path.insert(0, {src!r})
os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
os.environ.update({set_now!r})
import qfsel
print(qfsel.tune_malloc())
"""


@glibc
@pytest.mark.parametrize("at_start, set_now, tuned", [
    ({}, {"MALLOC_TRIM_THRESHOLD_": "65536"}, "True"),  # set after start: glibc never read it
    ({"MALLOC_TRIM_THRESHOLD_": "1000000"}, {}, "False"),  # read at start, even if removed since
])
def test_what_counts_is_the_environment_the_process_started_with(at_start, set_now, tuned):
    """glibc reads MALLOC_* once, when the process starts; os.environ may change later
    (distributed's nanny writes its workers' settings into the process that starts them)."""
    src = os.path.dirname(os.path.dirname(qfsel.__file__))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", _AFTER_START.format(src=src, set_now=set_now)], capture_output=True,
                         text=True, check=True, env={**clean, **at_start})
    assert out.stdout.strip().splitlines()[-1] == tuned


def test_tune_malloc_runs_once_and_remembers(monkeypatch):
    calls = []
    monkeypatch.setattr(_malloc, "_done", None)
    monkeypatch.setattr(_malloc, "_skip_reason", lambda dask_worker=False: None)
    monkeypatch.setattr(_malloc, "_apply", lambda: calls.append(1) or True)
    assert qfsel.tune_malloc() is True and qfsel.tune_malloc() is True
    assert calls == [1]


def test_the_long_jobs_tune_malloc_only_when_asked(monkeypatch, tmp_path):
    import torch

    from qfsel.dataset import pipeline
    from tests._tiny_models import GapNet

    calls = []
    monkeypatch.setattr(pipeline, "_tune_malloc", lambda: calls.append(1) or True)
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    kw = dict(methods="gradcam", batch_size=2, num_workers=0, progress=False)
    model = GapNet(k=4, classes=3)
    a = qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "a", tune_malloc=False, **kw)
    assert calls == []
    b = qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "b", **kw)
    assert calls == [1]
    assert (a.explained, b.explained) == (4, 4)
    # not part of the configuration: the same store is resumed with either setting
    again = qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "a", tune_malloc=True, **kw)
    assert (again.batches_run, again.batches_resumed) == (0, 2)
    with pytest.raises(TypeError, match="tune_malloc: expected a bool"):
        qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "c", tune_malloc="yes", **kw)
    with pytest.raises(TypeError, match="tune_malloc: expected a bool"):
        qfsel.evaluate(tune_malloc=1)


@glibc
def test_a_dask_worker_with_distributed_s_own_trim_setting_is_tuned(tmp_path):
    """distributed starts its workers with MALLOC_TRIM_THRESHOLD_=65536 (every tensor above
    128 KiB then mapped afresh); the job's worker plugin overrides that one setting."""
    distributed = pytest.importorskip("distributed")
    import torch

    from qfsel.dataset.dask_backend import restore_environ
    from tests._tiny_models import GapNet

    before = dict(os.environ)
    for key in [k for k in os.environ if k.startswith("MALLOC_")]:  # (a respawned worker of another
        del os.environ[key]                                            # test's cluster may have left some)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster, distributed.Client(cluster) as client:
        before = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
        assert list(before.values()) == [_malloc.DISTRIBUTED_TRIM_DEFAULT]
        x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        s = qfsel.explain_dataset(GapNet(k=4, classes=3), x, ["act"], "gradcam", out=tmp_path / "s", batch_size=2,
                                  backend="dask", scheduler=client, progress=False)
        assert s.explained == 4
        tuned = client.run(lambda: __import__("qfsel")._malloc._done)
        assert list(tuned.values()) == [True]
    restore_environ(before)


def test_qfsel_s_local_cluster_leaves_this_process_s_environment_as_it_was():
    """distributed's nanny writes its workers' environment (MALLOC_*, OMP_NUM_THREADS=1, ...)
    into the process that starts them; qfsel's LocalCluster puts it back."""
    pytest.importorskip("distributed")
    from qfsel.dataset.dask_backend import local_cluster

    before = dict(os.environ)
    cluster = local_cluster(1)
    try:
        assert dict(os.environ) == before
    finally:
        cluster.close()
