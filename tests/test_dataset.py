"""qfsel.explain_dataset and its store: equal to explain_all, resumable after kill -9, failures,
configuration checks, full/read-only disks, bounded memory, bad input, the CLI."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import qfsel
from qfsel.cams import explain_all
from qfsel.dataset import ConfigMismatchError, StoreWriteError, open_results
from qfsel.dataset import store as store_mod
from qfsel.dataset.store import TIMING_COLUMNS, heatmap_chunk_files
from tests import _dataset_job
from tests._tiny_models import GapNet

ROOT = Path(__file__).resolve().parents[1]


def _records(path):
    return open_results(path).records().drop(columns=list(TIMING_COLUMNS))


def _same_store(a, b) -> None:
    ha, hb = heatmap_chunk_files(a), heatmap_chunk_files(b)
    assert sorted(ha) == sorted(hb)
    assert all(ha[k] == hb[k] for k in ha), "heatmap chunks differ"
    ra, rb = _records(a), _records(b)
    assert ra.equals(rb)


@pytest.fixture(scope="module")
def tiny():
    model = GapNet(k=8, classes=3)
    x = torch.rand(22, 3, 10, 10, generator=torch.Generator().manual_seed(3))
    return model, x


def test_store_equals_explain_all_per_batch(tiny, tmp_path):
    model, x = tiny
    out = tmp_path / "s"
    summary = qfsel.explain_dataset(model, x, ["act"], out=out, batch_size=8, dtype="float32", num_workers=0,
                                    progress=False, sampler="exact", k=3)
    assert (summary.images, summary.explained, summary.failed, summary.batches) == (22, 22, 0, 3)
    res = open_results(out)
    assert res.complete and res.methods == ["qfs", "gradcam", "gradcam++"]
    assert res.manifest["config"]["method_params"]["k"] == 3 and res.manifest["seed"] == 0
    for start in range(0, 22, 8):
        want = explain_all(model, x[start : start + 8], ["act"], sampler="exact", k=3, seed=0)
        for m, r in want.items():
            np.testing.assert_array_equal(res.heatmaps(m)[start : start + 8], r.heatmaps)
            recs = res.records(m)
            rows = recs[(recs["index"] >= start) & (recs["index"] < start + 8)]
            assert rows["predicted"].tolist() == r.predicted.tolist()
            np.testing.assert_allclose(rows["score"].to_numpy(), r.scores)
            if m == "qfs":
                assert [list(s) for s in rows["selected"]] == [s.tolist() for s in r.selected]
                np.testing.assert_allclose(rows["energy"].to_numpy(), r.energies)
                assert rows["feasible"].all() and (rows["num_selected"] == 3).all()
                assert set(rows["solver"]) == {"exact"}
            else:
                assert rows["selected"].isna().all()
    # float16 store: the same maps rounded
    out16 = tmp_path / "s16"
    qfsel.explain_dataset(model, x, ["act"], out=out16, batch_size=8, num_workers=0, progress=False,
                          sampler="exact", k=3)
    h16 = open_results(out16).heatmaps("qfs")
    assert h16.dtype == np.float16
    np.testing.assert_array_equal(h16[:], res.heatmaps("qfs")[:].astype(np.float16))
    # iter_batches feeds metrics one batch at a time
    got = list(res.iter_batches("gradcam"))
    assert [len(i) for i, _ in got] == [8, 8, 6]
    np.testing.assert_array_equal(np.concatenate([h for _, h in got]), res.heatmaps("gradcam")[:])


def test_worker_processes_and_resume_give_the_same_bytes(tiny, tmp_path):
    model, x = tiny
    kw = dict(batch_size=4, progress=False, sampler="sa", seed=5)
    qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "a", num_workers=0, **kw)
    qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "b", num_workers=2, **kw)
    _same_store(tmp_path / "a", tmp_path / "b")
    # delete two batches' records (as a kill would leave them): only those are redone
    for b in (1, 4):
        (tmp_path / "b" / "records" / f"part-{b:06d}.parquet").unlink()
    s = qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "b", num_workers=0, **kw)
    assert (s.batches_run, s.batches_resumed) == (2, 4)
    _same_store(tmp_path / "a", tmp_path / "b")


class _CountingGapNet(GapNet):
    """GapNet that counts its forward passes."""

    forwards = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        type(self).forwards += 1
        return super().forward(x)


def _crash_while_finishing(monkeypatch, batch: int, job) -> None:
    """Runs ``job`` with the finishing thread crashing on ``batch`` (after its capture was saved)."""
    from qfsel.dataset.pipeline import BatchWorker

    finish = BatchWorker.finish

    def crashing(self, b, items, cap):
        if b == batch:
            raise RuntimeError(f"simulated crash in batch {b}")
        return finish(self, b, items, cap)

    monkeypatch.setattr(BatchWorker, "finish", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        job()
    monkeypatch.setattr(BatchWorker, "finish", finish)


def test_a_crash_while_finishing_redoes_no_model_pass(tiny, tmp_path, monkeypatch):
    """Batch 3 crashes in the finishing thread while the model already ran on batch 4: both
    captures were saved, so the restart finishes them without the model (at most one batch of
    work lost, not two)."""
    _, x = tiny
    model = _CountingGapNet(k=8, classes=3)
    kw = dict(batch_size=4, progress=False, num_workers=0, sampler="sa", seed=5)
    qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "ref", **kw)
    _crash_while_finishing(monkeypatch, 3, lambda: qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "s", **kw))
    w = store_mod.StoreWriter(tmp_path / "s", {})
    assert w.done_batches() == {0, 1, 2} and w.saved_captures() == {3, 4}
    _CountingGapNet.forwards = 0
    s = qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "s", **kw)
    # one probe pass (shapes) and batch 5 only: batches 3 and 4 come from their saved captures
    assert (s.batches_run, s.batches_resumed, s.captures_reused) == (3, 3, 2)
    assert _CountingGapNet.forwards == 2
    assert w.saved_captures() == set() and not (tmp_path / "s" / store_mod.INFLIGHT).exists()
    _same_store(tmp_path / "ref", tmp_path / "s")


def test_an_unreadable_saved_capture_is_recomputed(tiny, tmp_path):
    model, x = tiny
    kw = dict(batch_size=8, progress=False, num_workers=0, sampler="exact", k=3)
    qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "ref", **kw)
    qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "s", **kw)
    (tmp_path / "s" / "records" / "part-000001.parquet").unlink()
    w = store_mod.StoreWriter(tmp_path / "s", {})
    w.save_capture(1, b"not a capture")
    w.save_capture(2, b"stale: batch 2 is complete")
    s = qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "s", **kw)
    assert s.batches_run == 1 and s.captures_reused == 1  # offered, unreadable, so computed again
    assert w.saved_captures() == set()
    _same_store(tmp_path / "ref", tmp_path / "s")


def test_an_image_the_model_cannot_explain_is_a_failure_and_the_job_goes_on(tiny, tmp_path, monkeypatch):
    """NaN pixels (image 0: also the shape probe) or inf (image 9) make the score non-finite:
    those images go to the failures table, the rest of their batches is explained, and a restart
    from a saved capture keeps the same failures."""
    model, x = tiny
    x = x.clone()
    x[0, 1, 2, 3] = float("nan")
    x[9] = float("inf")
    kw = dict(batch_size=4, progress=False, num_workers=0, sampler="exact", k=3)
    s = qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "ref", **kw)
    assert (s.explained, s.failed) == (20, 2)
    res = open_results(tmp_path / "ref")
    fails = res.failures()
    assert fails["index"].tolist() == [0, 9]
    assert all(r.startswith("the model pass failed on this image: the target score is NaN or inf") for r in fails["reason"])
    assert "sample index" not in fails["reason"][0]
    assert sorted(set(res.records()["index"])) == [i for i in range(22) if i not in (0, 9)]
    assert np.isnan(res.heatmaps("qfs")[9]).all() and not np.isnan(res.heatmaps("qfs")[8]).any()
    # the other images of those batches are explained as a batch without the failed one
    want = explain_all(model, x[[8, 10, 11]], ["act"], sampler="exact", k=3)
    np.testing.assert_allclose(res.heatmaps("gradcam")[[8, 10, 11]], want["gradcam"].heatmaps, rtol=1e-3, atol=1e-4)
    # a crash while finishing batch 2 (the one with image 9) after its capture was saved
    _crash_while_finishing(monkeypatch, 2, lambda: qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "s", **kw))
    s = qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "s", **kw)
    assert s.captures_reused >= 1 and (s.explained, s.failed) == (20, 2)
    _same_store(tmp_path / "ref", tmp_path / "s")
    assert open_results(tmp_path / "s").failures().equals(fails)


def test_a_model_that_fails_on_every_image_of_the_first_batch_stops_the_job(tiny, tmp_path):
    model, x = tiny
    bad = torch.full_like(x, float("nan"))
    with pytest.raises(ValueError, match=r"the target score is NaN or inf"):
        qfsel.explain_dataset(model, bad, ["act"], out=tmp_path / "s", batch_size=4, progress=False, num_workers=0)
    x2 = x.clone()
    x2[:4] = float("nan")  # the first batch (the probe zeroes NaN): the batch's error, naming its images
    with pytest.raises(ValueError, match=r"batch 0: the target score is NaN or inf .*sample index 0 = image 0"):
        qfsel.explain_dataset(model, x2, ["act"], out=tmp_path / "t", batch_size=4, progress=False, num_workers=0)
    x3 = x.clone()
    x3[4:8] = float("nan")  # a whole corrupt batch after images were explained: failures, the job goes on
    s = qfsel.explain_dataset(model, x3, ["act"], out=tmp_path / "u", batch_size=4, progress=False, num_workers=0)
    assert (s.explained, s.failed) == (18, 4)
    assert open_results(tmp_path / "u").failures()["index"].tolist() == [4, 5, 6, 7]


def _two_class_net() -> GapNet:
    """GapNet whose class 1 has only negative weights: an image predicted as class 1 (a dark one)
    has no map with a positive GradCAM weight, so QFS-CAM has nothing to select for it."""
    model = GapNet(k=4, classes=2)
    with torch.no_grad():
        model.fc.weight[0] = model.fc.weight[0].abs() + 0.1
        model.fc.weight[1] = -model.fc.weight[1].abs() - 0.1
        model.fc.bias[:] = torch.tensor([0.0, 0.13])
    return model


def test_an_image_qfs_cam_cannot_explain_is_a_failure_and_the_job_goes_on(tmp_path):
    model = _two_class_net()
    x = torch.rand(12, 3, 10, 10, generator=torch.Generator().manual_seed(1)) + 0.5
    x[[5, 10]] *= 0.0  # dark: predicted class 1
    assert model(x).argmax(1).tolist() == [0] * 5 + [1] + [0] * 4 + [1, 0]
    kw = dict(batch_size=4, progress=False, num_workers=0, sampler="exact", k=2)
    s = qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "s", **kw)
    assert (s.explained, s.failed) == (10, 2)
    res = open_results(tmp_path / "s")
    fails = res.failures()
    assert fails["index"].tolist() == [5, 10]
    assert fails["reason"][0].startswith("explaining this image failed: QFS-CAM: no feature map")
    assert "for this image" in fails["reason"][0] and "sample index" not in fails["reason"][0]
    # the others are what explain_all gives them
    want = explain_all(model, x[[4, 6, 7]], ["act"], sampler="exact", k=2)
    recs = res.records("qfs").set_index("index")
    assert [list(recs.loc[i, "selected"]) for i in (4, 6, 7)] == [sel.tolist() for sel in want["qfs"].selected]
    np.testing.assert_allclose(res.heatmaps("gradcam")[[4, 6, 7]], want["gradcam"].heatmaps, rtol=1e-3, atol=1e-4)
    # every image of the first batch failing is taken for a bad configuration: k above every d
    with pytest.raises(ValueError, match=r"batch 0: k=5 exceeds the number of candidate maps d=4"):
        qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "t", **dict(kw, k=5))


def test_output_selector_for_a_model_that_returns_a_dict(tiny, tmp_path):
    from tests._tiny_models import DictOutputNet

    _, x = tiny
    kw = dict(batch_size=8, progress=False, num_workers=0, sampler="exact", k=3)
    with pytest.raises(TypeError, match="pass output_selector='logits'"):
        qfsel.explain_dataset(DictOutputNet(k=8, classes=3), x, ["act"], out=tmp_path / "bad", **kw)
    qfsel.explain_dataset(DictOutputNet(k=8, classes=3), x, ["act"], out=tmp_path / "d", output_selector="logits", **kw)
    qfsel.explain_dataset(GapNet(k=8, classes=3), x, ["act"], out=tmp_path / "t", **kw)
    _same_store(tmp_path / "t", tmp_path / "d")
    assert open_results(tmp_path / "d").manifest["config"]["output_selector"] == "logits"
    with pytest.raises(TypeError, match="output_selector: expected"):
        qfsel.explain_dataset(GapNet(k=8, classes=3), x, ["act"], out=tmp_path / "e", output_selector=1.5, **kw)


def test_dataset_items_as_dicts_pil_images_uint8_and_read_only_arrays(tmp_path):
    model = GapNet(k=6, classes=3)
    g = torch.Generator().manual_seed(4)
    u8 = torch.randint(0, 256, (6, 10, 10, 3), dtype=torch.uint8, generator=g)
    ref = u8.permute(0, 3, 1, 2).float() / 255.0

    class Items(torch.utils.data.Dataset):
        def __init__(self, make):
            self.make = make

        def __len__(self):
            return 6

        def __getitem__(self, i):
            return self.make(i)

    def ro(i):
        a = ref[i].numpy().copy()
        a.setflags(write=False)
        return a, i % 3

    kinds = {
        "dict": lambda i: {"pixel_values": ref[i], "labels": torch.tensor(i % 3)},
        "pil": lambda i: (Image.fromarray(u8[i].numpy()), i % 3),
        "uint8": lambda i: (u8[i].permute(2, 0, 1), i % 3),
        "read-only array": ro,
    }
    kw = dict(batch_size=4, progress=False, num_workers=0, sampler="exact", k=2)
    qfsel.explain_dataset(model, torch.utils.data.TensorDataset(ref, torch.arange(6) % 3), ["act"],
                          out=tmp_path / "ref", **kw)
    for name, make in kinds.items():
        s = qfsel.explain_dataset(model, Items(make), ["act"], out=tmp_path / name.replace(" ", "-"), **kw)
        assert (s.explained, s.failed) == (6, 0), name
        _same_store(tmp_path / "ref", tmp_path / name.replace(" ", "-"))
    qfsel.explain_dataset(model, u8.permute(0, 3, 1, 2).contiguous(), ["act"], out=tmp_path / "u8", **kw)
    ra, rb = _records(tmp_path / "ref"), _records(tmp_path / "u8")
    assert heatmap_chunk_files(tmp_path / "ref") == heatmap_chunk_files(tmp_path / "u8")
    assert ra.drop(columns="label").equals(rb.drop(columns="label"))  # (a bare tensor has no labels)
    with pytest.raises(ValueError, match=r"dict item needs its image under one of the keys \['image', 'pixel_values'"):
        qfsel.explain_dataset(model, Items(lambda i: {"features": ref[i]}), ["act"], out=tmp_path / "nokey", **kw)


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume(tmp_path, monkeypatch):
    ref = tmp_path / "ref"
    _dataset_job.run(str(ref), model=_dataset_job.SlowGapNet(k=10, classes=3))
    out = tmp_path / "killed"
    rnd = random.Random()
    nb = -(-_dataset_job.NUM_IMAGES // _dataset_job.BATCH)
    cmd = [sys.executable, str(ROOT / "tests" / "_dataset_job.py"), str(out)]
    forwards = tmp_path / "forwards.txt"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "python"), os.environ.get("PYTHONPATH", "")]),
               QFSEL_TEST_FORWARDS=str(forwards))
    kills = 0
    for attempt in range(3):
        workers = ["1"] if attempt == 0 else ["0"]  # the first run loads images in a worker process
        proc = subprocess.Popen(cmd + workers, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        before = len(store_mod._done_batches(out))
        target = rnd.randint(before + 1, max(before + 1, nb - 3))
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if len(store_mod._done_batches(out)) >= target:
                time.sleep(rnd.uniform(0.0, 0.05))  # anywhere inside a batch
                break
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=60)
        if (out / "manifest.json").exists():
            res = open_results(out)  # readable after every kill
            recs = res.records()
            assert not recs.duplicated(["index", "method"]).any()
            assert set(recs["batch"]) == set(res.done_batches())
    assert kills >= 2
    # the same job once more (in this process: the subprocess start-up is the slow part)
    before = len(store_mod._done_batches(out))
    monkeypatch.setenv("QFSEL_TEST_FORWARDS", str(forwards))
    summary = _dataset_job.run(str(out), model=_dataset_job.SlowGapNet(k=10, classes=3))
    # model passes over batches (the shape probe has one image): each kill cost at most one
    batch_passes = sum(1 for line in forwards.read_text().split() if int(line) > 1)
    assert nb <= batch_passes <= nb + kills
    assert (summary.batches_resumed, summary.batches_run) == (before, nb - before)
    assert open_results(out).complete
    _same_store(ref, out)


def test_config_mismatch_is_refused_unless_overwrite(tiny, tmp_path):
    model, x = tiny
    kw = dict(batch_size=8, num_workers=0, progress=False)
    qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "s", sampler="exact", **kw)
    with pytest.raises(ConfigMismatchError, match=r"method_params\.beta: stored 0\.7, now 0\.5.*overwrite=True"):
        qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "s", sampler="exact", beta=0.5, **kw)
    with pytest.raises(ConfigMismatchError, match="batch_size"):
        qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "s", sampler="exact", batch_size=4,
                              num_workers=0, progress=False)
    other = GapNet(k=8, classes=3, seed=1)
    with pytest.raises(ConfigMismatchError, match="model_sha256"):
        qfsel.explain_dataset(other, x, ["act"], out=tmp_path / "s", sampler="exact", **kw)
    s = qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "s", sampler="exact", beta=0.5, overwrite=True, **kw)
    assert s.batches_run == 3
    assert open_results(tmp_path / "s").manifest["config"]["method_params"]["beta"] == 0.5
    # a job that failed before its first batch (k > d) leaves nothing to keep: the corrected job is not refused
    with pytest.raises(ValueError, match="exceeds the number of candidate maps"):
        qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "k", sampler="exact", k=9, **kw)
    s = qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "k", sampler="exact", k=2, **kw)
    assert s.batches_run == 3 and open_results(tmp_path / "k").manifest["config"]["method_params"]["k"] == 2
    # a folder with other files is never taken over
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(ValueError, match="not a qfsel results store"):
        qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "mine", overwrite=True, **kw)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def _png_folder(root: Path, n: int, size=(10, 10), classes=("cat", "dog")) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        d = root / classes[i % len(classes)]
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"img{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def test_folder_with_corrupt_images_records_failures(tiny, tmp_path):
    model, _ = tiny
    _png_folder(tmp_path / "data", 9)
    (tmp_path / "data" / "cat" / "zz-broken.png").write_bytes(b"not a png at all")
    (tmp_path / "data" / "dog" / "truncated.png").write_bytes(
        (tmp_path / "data" / "dog" / "img001.png").read_bytes()[:60])
    s = qfsel.explain_dataset(model, tmp_path / "data", ["act"], out=tmp_path / "s", batch_size=4, num_workers=2,
                              progress=False, methods=("gradcam", "qfs"), sampler="exact")
    assert (s.images, s.explained, s.failed) == (11, 9, 2)
    res = open_results(tmp_path / "s")
    fails = res.failures()
    assert sorted(Path(p).name for p in fails["path"]) == ["truncated.png", "zz-broken.png"]
    assert all("cannot read image" in r for r in fails["reason"])
    recs = res.records("gradcam")
    assert sorted(set(recs["label"])) == [0, 1] and len(recs) == 9
    heat = res.heatmaps("gradcam")[:]
    bad = fails["index"].to_numpy()
    assert np.isnan(heat[bad]).all() and not np.isnan(np.delete(heat, bad, axis=0)).any()


def test_bad_input(tiny, tmp_path):
    model, x = tiny
    kw = dict(out=tmp_path / "s", num_workers=0, progress=False)
    with pytest.raises(FileNotFoundError, match="dataset: no such folder"):
        qfsel.explain_dataset(model, tmp_path / "missing", ["act"], **kw)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match="holds no image files"):
        qfsel.explain_dataset(model, tmp_path / "empty", ["act"], **kw)
    _png_folder(tmp_path / "mixed", 2)
    _png_folder(tmp_path / "mixed", 1, size=(12, 9), classes=("zebra",))
    with pytest.raises(ValueError, match=r"different sizes.*10x10.*12x9.*resize"):
        qfsel.explain_dataset(model, tmp_path / "mixed", ["act"], **kw)
    s = qfsel.explain_dataset(model, tmp_path / "mixed", ["act"], resize=(8, 8), methods="gradcam", **kw)
    assert s.explained == 3 and open_results(tmp_path / "s").heatmaps("gradcam").shape == (3, 8, 8)
    kw["out"] = tmp_path / "t"
    with pytest.raises(ValueError, match="methods: expected names from"):
        qfsel.explain_dataset(model, x, ["act"], methods=("gradcam", "lime"), **kw)
    with pytest.raises(TypeError, match="betta: not a parameter"):
        qfsel.explain_dataset(model, x, ["act"], betta=0.5, **kw)
    with pytest.raises(TypeError, match="'qfs' is not among methods"):
        qfsel.explain_dataset(model, x, ["act"], methods="gradcam", beta=0.5, **kw)
    with pytest.raises(ValueError, match="batch_size"):
        qfsel.explain_dataset(model, x, ["act"], batch_size=0, **kw)
    with pytest.raises(ValueError, match="backend: expected one of"):
        qfsel.explain_dataset(model, x, ["act"], backend="spark", **kw)
    with pytest.raises(ValueError, match="unknown bundled dataset"):
        qfsel.explain_dataset(model, "mnist-60k", ["act"], **kw)
    with pytest.raises(TypeError, match="dataset: expected"):
        qfsel.explain_dataset(model, 42, ["act"], **kw)
    with pytest.raises(ValueError, match="unknown layer|layer"):
        qfsel.explain_dataset(model, x, ["nope"], **kw)
    with pytest.raises(ValueError, match="device: expected a torch device"):  # was torch's RuntimeError
        qfsel.explain_dataset(model, x, ["act"], device="tpu", **kw)
    if not torch.cuda.is_available():  # was torch's AssertionError "Torch not compiled with CUDA"
        with pytest.raises(ValueError, match=r"device: .*cuda.is_available\(\) is False"):
            qfsel.explain_dataset(model, x, ["act"], device="cuda", **kw)
    with pytest.raises(ValueError, match="shard_batches"):  # 0 quietly meant the default
        qfsel.explain_dataset(model, x, ["act"], backend="dask", shard_batches=0, **kw)
    with pytest.raises(ValueError, match="timeout"):
        qfsel.explain_dataset(model, x, ["act"], timeout=float("nan"), **kw)
    with pytest.raises(TypeError, match="out: expected a folder path"):
        qfsel.explain_dataset(model, x, ["act"], **{**kw, "out": 5})
    assert not (tmp_path / "t").exists()  # nothing written for a refused job
    with pytest.raises(FileNotFoundError, match="no qfsel results store"):
        open_results(tmp_path / "missing")


def test_full_or_read_only_disk(tiny, tmp_path, monkeypatch):
    model, x = tiny
    kw = dict(batch_size=4, num_workers=0, progress=False, sampler="exact")
    real = store_mod._atomic_write_bytes
    calls = {"n": 0}

    def full_after(limit, code):
        def write(target, data):
            if "records" in str(target):
                calls["n"] += 1
                if calls["n"] > limit:
                    raise OSError(code, os.strerror(code), str(target))
            return real(target, data)
        return write

    monkeypatch.setattr(store_mod, "_atomic_write_bytes", full_after(2, errno.ENOSPC))
    with pytest.raises(StoreWriteError, match=r"the disk is full.*up to batch 1.*run the same job again") as info:
        qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "s", **kw)
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
    res = open_results(tmp_path / "s")
    assert res.done_batches() == [0, 1] and sorted(set(res.records()["index"])) == list(range(8))
    assert not np.isnan(res.heatmaps("qfs")[:8]).any()
    monkeypatch.setattr(store_mod, "_atomic_write_bytes", real)
    s = qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "s", **kw)
    assert (s.batches_resumed, s.batches_run) == (2, 4)
    qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "ref", **kw)
    _same_store(tmp_path / "ref", tmp_path / "s")

    # a read-only file system from the start: a clear error, nothing half-made claimed as a store
    def read_only(target, data):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(target))

    monkeypatch.setattr(store_mod, "_atomic_write_bytes", read_only)
    with pytest.raises(StoreWriteError, match="read-only.*no batch is complete yet"):
        qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "ro", **kw)
    # a store path below a file (a real OSError from the file system)
    monkeypatch.setattr(store_mod, "_atomic_write_bytes", real)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StoreWriteError, match="cannot write the results store"):
        qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "afile" / "s", **kw)


def test_qubo_work_overlaps_the_next_model_pass(tmp_path):
    """The model pass and the QUBO solver each record when they run (and sleep 0.1 s, a stand-in
    for real work): batch i's solve runs while batch i + 1's forward pass does."""
    import dimod

    forward: list[tuple[float, float]] = []
    solving: list[tuple[float, float]] = []

    class SlowModel(GapNet):
        def forward(self, x):
            t = time.perf_counter()
            time.sleep(0.1)
            out = super().forward(x)
            forward.append((t, time.perf_counter()))
            return out

    class SlowSolver(dimod.Sampler):
        properties: dict = {}
        parameters: dict = {}

        def sample(self, bqm, **kw):
            t = time.perf_counter()
            time.sleep(0.05)  # two problems per batch
            out = dimod.ExactSolver().sample(bqm)
            solving.append((t, time.perf_counter()))
            return out

    model = SlowModel(k=4, classes=2)
    x = torch.rand(10, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    qfsel.explain_dataset(model, x, ["act"], methods="qfs", out=tmp_path / "s", batch_size=2, num_workers=0,
                          progress=False, sampler=SlowSolver())
    # the probe pass, its channels-last check (one forward pass in the input's own layout), 5 batches
    assert len(forward) == 1 + 1 + 5 and len(solving) == 10
    overlapping = sum(1 for s0, s1 in solving if any(f0 < s1 and s0 < f1 for f0, f1 in forward))
    assert overlapping >= 4, (forward, solving)  # batches 0-3 solve during the next batch's forward


def test_memory_is_bounded_by_the_batch(tmp_path):
    class Synthetic(torch.utils.data.Dataset):
        def __len__(self):
            return 4000

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            return torch.rand(3, 8, 8, generator=g), i % 3

    model = GapNet(k=6, classes=3)
    s = qfsel.explain_dataset(model, Synthetic(), ["act"], methods=("gradcam", "qfs"), out=tmp_path / "s",
                              batch_size=100, num_workers=0, progress=False, sampler="greedy")
    assert s.explained == 4000
    rss = [r for _, r in s.rss_mb]
    early, late = rss[len(rss) // 4], max(rss[len(rss) // 4 :])
    assert late - early < 25, s.rss_mb  # 4000 x 2 x 64 float16 maps alone would be ~1 MB; records ~MBs


def test_progress_bar_and_summary(tiny, tmp_path, capsys):
    model, x = tiny
    from qfsel.cli import main

    rc = main(["explain-dataset", "mnist5k-test", "--out", str(tmp_path / "s"), "--batch-size", "250",
               "--num-workers", "0", "--sampler", "greedy", "--device", "cpu"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "img/s" in err and "1000/1000" in err
    assert "explained 1000 of 1000 image(s) with qfs, gradcam, gradcam++" in out
    res = open_results(tmp_path / "s")
    assert res.manifest["summary"]["explained"] == 1000
    labels = res.records("qfs")["label"].to_numpy()
    acc = (res.records("qfs")["predicted"].to_numpy() == labels).mean()
    assert acc > 0.9  # the bundled model on its held-out split
    # the preview: 6 images spread over the dataset, one row each, image + 3 methods
    assert "preview.png (6 explained images" in out
    with Image.open(tmp_path / "s" / "preview.png") as png:
        w, h = png.size
    assert 1.3 < h / w < 1.8  # six rows of four panels
    rc = main(["explain-dataset", "mnist5k-test", "--out", str(tmp_path / "s"), "--batch-size", "250",
               "--num-workers", "0", "--sampler", "greedy", "--beta", "0.6", "--no-progress", "--device", "cpu"])
    assert rc == 2 and "another configuration" in capsys.readouterr().err
    rc = main(["explain-dataset", str(tmp_path / "nowhere"), "--out", str(tmp_path / "t")])
    assert rc == 2 and "no such folder" in capsys.readouterr().err
    rc = main(["explain-dataset", "mnist5k-test", "--out", str(tmp_path / "t"), "--method", "gradcam,foo"])
    assert rc == 2 and "methods: expected names" in capsys.readouterr().err
    rc = main(["explain-dataset", "mnist5k-test", "--out", str(tmp_path / "t"), "--preview", "-1"])
    assert rc == 2 and "--preview: expected a number of images >= 0, got -1" in capsys.readouterr().err


def test_save_preview(tiny, tmp_path):
    from qfsel.dataset import save_preview

    model, x = tiny
    qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "s", batch_size=8, progress=False, num_workers=0,
                          sampler="exact", k=3, upsample=False)  # layer-resolution maps: upsampled to draw
    png = save_preview(tmp_path / "s", x, tmp_path / "p.png", n=3)
    with Image.open(png) as im:
        w, h = im.size
    assert png == tmp_path / "p.png" and 0.6 < h / w < 0.95  # three rows of four panels
    assert save_preview(tmp_path / "s", x, n=50) == tmp_path / "s" / "preview.png"  # all 22, default place
    with pytest.raises(ValueError, match="n: expected an integer in"):
        save_preview(tmp_path / "s", x, n=0)


def test_trusted_problem_batch_equals_the_validated_one():
    from benches.instances import explanation_like

    h, j = explanation_like(np.random.default_rng(4), 30, 12)
    checked = qfsel.ProblemBatch(h, j, beta=0.6, k=4)
    trusted = qfsel.ProblemBatch._trusted(h, j, 0.6, 4)
    assert isinstance(trusted, qfsel.ProblemBatch) and trusted.relevance is h  # no copy
    assert trusted._penalty_ready is False  # no pass over the data until a penalty is asked for
    for name in ("sa", "tabu", "exact"):
        a, b = qfsel.solve(checked, name, seed=3), qfsel.solve(trusted, name, seed=3)
        np.testing.assert_array_equal(a.states, b.states)
        np.testing.assert_array_equal(a.energies, b.energies)
    assert trusted._penalty_ready is False  # the swap-move and exact solvers never needed it
    np.testing.assert_array_equal(trusted.penalty, checked.penalty)
    for qa, qb in zip(checked.qubo(), trusted.qubo()):
        np.testing.assert_array_equal(qa, qb)
    np.testing.assert_array_equal(qfsel.solve(checked, "sa-penalty", seed=1).states,
                                  qfsel.solve(trusted, "sa-penalty", seed=1).states)
    free = qfsel.ProblemBatch._trusted(h, j, 0.6)
    assert free.penalty is None and free.k is None
    with pytest.raises(ValueError, match="C-contiguous float64"):
        qfsel.ProblemBatch._trusted(h.astype(np.float32), j, 0.6)
    with pytest.raises(ValueError, match="C-contiguous float64"):
        qfsel.ProblemBatch._trusted(h, j[:, :, :5], 0.6)


def test_arrays_for_metrics(tiny, tmp_path):
    model, x = tiny
    qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "s", batch_size=8, dtype="float32", num_workers=0,
                          progress=False, sampler="exact", k=2)
    res = open_results(tmp_path / "s")
    a = res.arrays("qfs")
    assert a["index"].tolist() == list(range(22))
    np.testing.assert_array_equal(a["heatmaps"], res.heatmaps("qfs")[:])
    want = explain_all(model, x[8:16], ["act"], "qfs", sampler="exact", k=2, seed=0)["qfs"]
    assert [s.tolist() for s in a["selected"][8:16]] == [s.tolist() for s in want.selected]
    assert (a["labels"] == -1).all() and a["predicted"].dtype == np.int64
    assert res.arrays("gradcam")["selected"] is None
    # some batches only: the same rows as the whole table's
    part = res.records("qfs", batches=[1, 2, 7])
    whole = res.records("qfs")
    assert part["index"].tolist() == list(range(8, 22))
    assert part.equals(whole[whole["batch"].isin([1, 2])].reset_index(drop=True))
    with pytest.raises(ValueError, match=r"method: expected one of the store's methods \['qfs', 'gradcam', 'gradcam\+\+'\], got 'lime'"):
        res.heatmaps("lime")
    qfsel.explain_dataset(model, x, ["act"], "gradcam", out=tmp_path / "g", batch_size=8, num_workers=0,
                          progress=False)
    with pytest.raises(ValueError, match=r"method: expected one of the store's methods \['gradcam'\]"):
        open_results(tmp_path / "g").arrays("qfs")


def test_a_model_error_names_the_dataset_images(tmp_path):
    model = GapNet(k=4, classes=2)
    x = torch.rand(6, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    x[:3, 0, 0, 0] = float("nan")  # every image of the first batch: taken for a model fault
    with pytest.raises(ValueError, match=r"batch 0: .*NaN.*\(sample index 0 = image 0, 1 = image 1, 2 = image 2\)"):
        qfsel.explain_dataset(model, x, ["act"], "gradcam", out=tmp_path / "s", batch_size=3, num_workers=0,
                              progress=False)
    assert open_results(tmp_path / "s").done_batches() == []
    x[:3] = x[3:]
    x[4, 0, 0, 0] = float("nan")  # one image of the second batch: a failure, the job goes on
    s = qfsel.explain_dataset(model, x, ["act"], "gradcam", out=tmp_path / "s", batch_size=3, num_workers=0,
                              progress=False)
    assert (s.explained, s.failed) == (5, 1)


def test_chunk_files_are_the_bytes_zarr_writes(tmp_path):
    """The store writes a batch's chunk itself (zarr's write path costs ~2.8 ms a chunk): the same
    file, the same bytes as zarr's, the short last chunk padded with the fill value as zarr pads it;
    codecs it does not know are left to zarr."""
    import os

    import zarr
    from zarr.codecs import BloscCodec

    from qfsel.dataset.store import _ChunkFiles, _write_rows

    rng = np.random.default_rng(0)
    for dtype, compressors in (("float16", "auto"), ("float32", "auto"), ("float32", None)):
        by_zarr = zarr.open_group(str(tmp_path / f"z-{dtype}-{compressors}"), mode="w")
        by_us = zarr.open_group(str(tmp_path / f"q-{dtype}-{compressors}"), mode="w")
        kw = dict(shape=(10, 3, 5), chunks=(4, 3, 5), dtype=dtype, fill_value=np.nan, compressors=compressors)
        za, qa = by_zarr.create_array("m", **kw), by_us.create_array("m", **kw)
        files = _ChunkFiles.for_array(tmp_path / f"q-{dtype}-{compressors}" / "m", qa)
        assert files is not None
        for start in (0, 4, 8):  # the last chunk holds 2 rows
            rows = rng.standard_normal((min(4, 10 - start), 3, 5)).astype(dtype)
            rows[0, 0, 0] = np.nan
            za[start : start + rows.shape[0]] = rows
            assert files.write(start, rows)
        for key in ("c/0/0/0", "c/1/0/0", "c/2/0/0"):
            assert (tmp_path / f"q-{dtype}-{compressors}" / "m" / key).read_bytes() == \
                (tmp_path / f"z-{dtype}-{compressors}" / "m" / key).read_bytes()
        np.testing.assert_array_equal(zarr.open_array(str(tmp_path / f"q-{dtype}-{compressors}" / "m"))[:], za[:])
        assert not [f for f in os.listdir(tmp_path / f"q-{dtype}-{compressors}" / "m" / "c" / "0" / "0")
                    if f.endswith(".tmp")]
        assert not files.write(2, rows[:2])  # not a whole chunk: refused (the caller lets zarr write it)
    other = zarr.open_group(str(tmp_path / "blosc"), mode="w").create_array(
        "m", shape=(4, 2), chunks=(2, 2), dtype="float32", fill_value=np.nan, compressors=[BloscCodec()])
    assert _ChunkFiles.for_array(tmp_path / "blosc" / "m", other) is None
    _write_rows(other, None, 2, np.ones((2, 2), np.float32))
    np.testing.assert_array_equal(other[2:], np.ones((2, 2)))
