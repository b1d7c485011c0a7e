"""qfsel.explain_dataset and open_results on inputs a new user tries: other model dtypes,
devices, paths with ~, image folders with hidden files or a store inside, arguments of the
wrong kind, and a store read with wrong names. Each case failed (or silently did the wrong
thing) before its fix."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import qfsel
from qfsel.dataset import open_results
from qfsel.dataset.store import heatmap_chunk_files
from tests._tiny_models import GapNet

KW = dict(num_workers=0, progress=False)


@pytest.fixture(scope="module")
def x():
    return torch.rand(6, 3, 10, 10, generator=torch.Generator().manual_seed(5))


def _png_folder(root: Path, names, size=(10, 10)) -> None:
    rng = np.random.default_rng(1)
    for name in names:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)).save(p)


def test_meta_device_is_refused_and_leaves_the_model_alone(x, tmp_path):
    # was: the model moved to "meta" for good (its weights gone), then torch's
    # NotImplementedError "Cannot copy out of meta tensor" from deep inside the capture
    model = GapNet(k=6)
    before = copy.deepcopy(model.state_dict())
    for device in ("meta", torch.device("meta")):
        with pytest.raises(ValueError, match="device: expected a device that holds data"):
            qfsel.explain_dataset(model, x, ["act"], methods="gradcam", device=device, out=tmp_path / "s", **KW)
    after = model.state_dict()
    assert all(t.device.type == "cpu" and torch.equal(t, before[k]) for k, t in after.items())
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_a_model_in_another_float_dtype_gets_its_dtype(x, tmp_path, dtype):
    # was: images always went in as float32, so every image of a float64 (or half) model failed
    model = GapNet(k=6).to(dtype)
    s = qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "s", batch_size=4, sampler="exact", k=2,
                              dtype="float32", **KW)
    assert (s.explained, s.failed) == (6, 0)
    res = open_results(tmp_path / "s")
    want = qfsel.explain_all(model, x[:4].to(dtype), ["act"], methods=("gradcam",))["gradcam"].heatmaps
    np.testing.assert_allclose(res.heatmaps("gradcam")[:4], want, rtol=1e-6, atol=1e-6)


def test_batch_size_larger_than_the_dataset_allocates_for_the_dataset(x, tmp_path):
    # was: MemoryError allocating output buffers of batch_size rows for a 6-image dataset
    s = qfsel.explain_dataset(GapNet(k=6), x, ["act"], out=tmp_path / "s", batch_size=10**9, methods="gradcam",
                              **KW)
    assert (s.explained, s.batches) == (6, 1)
    assert open_results(tmp_path / "s").heatmaps("gradcam").shape == (6, 10, 10)


def test_methods_of_the_wrong_type(x, tmp_path):
    # was: TypeError "'NoneType' object is not iterable" from inside qfsel.cams
    for bad in (None, 3, {"gradcam": 1}):
        with pytest.raises(TypeError, match="methods: expected a method name or a sequence of them"):
            qfsel.explain_dataset(GapNet(k=6), x, ["act"], methods=bad, out=tmp_path / "s", **KW)


def test_tilde_paths_are_the_home_folder(x, tmp_path, monkeypatch):
    # was: a folder literally named "~" in the working directory for some files of the store,
    # pyarrow then looking in the home folder: FileNotFoundError after the job had run
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    _png_folder(tmp_path / "home" / "data", ["a.png", "b.png"])
    s = qfsel.explain_dataset(GapNet(k=6), "~/data", ["act"], out="~/store", methods="gradcam", **KW)
    assert s.explained == 2
    # the records' paths are absolute (valid when the store is read from another folder)
    assert open_results("~/store").records()["path"].tolist() == [str(tmp_path / "home" / "data" / n)
                                                                  for n in ("a.png", "b.png")]
    monkeypatch.chdir(tmp_path / "home")
    qfsel.explain_dataset(GapNet(k=6), "data", ["act"], out="relative", methods="gradcam", **KW)
    assert open_results("relative").records()["path"].tolist() == open_results("store").records()["path"].tolist()
    monkeypatch.chdir(tmp_path / "cwd")
    assert (tmp_path / "home" / "store" / "manifest.json").is_file()
    assert not any((tmp_path / "cwd").iterdir())
    assert open_results("~/store").complete


def test_hidden_files_and_a_store_inside_the_dataset_folder_are_not_images(tmp_path):
    # was: .ipynb_checkpoints/, .DS_Store-style "._x.png" files were images (and failures), and
    # a store written inside the dataset folder (its preview.png) became a class on the next run,
    # which changed the dataset and refused to resume
    data = tmp_path / "data"
    _png_folder(data, ["cat/a.png", "cat/b.png", "dog/c.png", "dog/sub/d.png"])
    _png_folder(data, ["cat/.ipynb_checkpoints/a-checkpoint.png", "dog/.hidden.png", ".cache/e.png"])
    (data / "dog" / "._c.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    out = data / "results"
    s = qfsel.explain_dataset(GapNet(k=6), data, ["act"], out=out, methods="gradcam", batch_size=3, **KW)
    assert (s.images, s.explained, s.failed) == (4, 4, 0)
    recs = open_results(out).records()
    assert [Path(p).relative_to(data).as_posix() for p in recs["path"]] == [
        "cat/a.png", "cat/b.png", "dog/c.png", "dog/sub/d.png"]
    assert recs["label"].tolist() == [0, 0, 1, 1]
    assert open_results(out).manifest["classes"] == ["cat", "dog"]  # (label i is classes[i])
    _png_folder(out, ["preview.png"])  # what the CLI's --preview writes
    again = qfsel.explain_dataset(GapNet(k=6), data, ["act"], out=out, methods="gradcam", batch_size=3, **KW)
    assert (again.batches_resumed, again.batches_run) == (2, 0)


def test_transform_or_resize_that_would_be_ignored_is_refused(x, tmp_path):
    # was: silently ignored (the images went in unresized / untransformed)
    with pytest.raises(ValueError, match="resize: only used for an image folder"):
        qfsel.explain_dataset(GapNet(k=6), x, ["act"], resize=5, out=tmp_path / "s", **KW)
    with pytest.raises(ValueError, match="transform: only used for an image folder"):
        qfsel.explain_dataset(GapNet(k=6), x, ["act"], transform=lambda im: im, out=tmp_path / "s", **KW)
    _png_folder(tmp_path / "data", ["a.png"])
    with pytest.raises(ValueError, match="resize: .*not both"):
        qfsel.explain_dataset(GapNet(k=6), tmp_path / "data", ["act"], resize=5, transform=lambda im: im,
                              out=tmp_path / "s", **KW)
    with pytest.raises(TypeError, match="transform: expected a callable"):
        qfsel.explain_dataset(GapNet(k=6), tmp_path / "data", ["act"], transform=3, out=tmp_path / "s", **KW)
    assert not (tmp_path / "s").exists()


def test_integral_float_labels_are_labels(tmp_path):
    # was: a label 1.0 (or a 0-d float array) was recorded as -1 (no label)
    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            img = torch.rand(3, 10, 10, generator=torch.Generator().manual_seed(i))
            return img, [float(i), np.float32(i), torch.tensor(float(i))][i]

    qfsel.explain_dataset(GapNet(k=6), Items(), ["act"], out=tmp_path / "s", methods="gradcam", **KW)
    assert open_results(tmp_path / "s").records()["label"].tolist() == [0, 1, 2]


def test_reading_a_store_with_wrong_names(x, tmp_path):
    out = tmp_path / "s"
    qfsel.explain_dataset(GapNet(k=6), x, ["act"], out=out, methods="gradcam", store_raw=True, batch_size=4, **KW)
    res = open_results(out)
    with pytest.raises(ValueError, match=r"method: expected one of the store's methods \['gradcam'\], got 'lime'"):
        res.heatmaps("lime")  # was "methods: expected names from ..."
    with pytest.raises(TypeError, match="method: expected a method name"):
        res.heatmaps(3)  # was TypeError "'int' object is not iterable"
    with pytest.raises(ValueError, match=r"layer: expected one of the store's target layers \['act'\], got 'conv'"):
        res.raw_maps("gradcam", "conv")  # was zarr's KeyError 'gradcam/conv'
    # was: batches="1" meant batch 1 (its characters), "10" batches 1 and 0; batches=1 a TypeError
    assert res.records(batches=1)["index"].tolist() == [4, 5]
    for bad in ("1", 1.0, [0, "1"], [True]):
        with pytest.raises(TypeError, match="batches: expected"):
            res.records(batches=bad)
    for bad in (None, 3):
        with pytest.raises(TypeError, match="path: expected a store folder path"):
            open_results(bad)  # was pathlib's TypeError


def test_a_corrupt_manifest_is_a_clear_error(x, tmp_path):
    out = tmp_path / "s"
    qfsel.explain_dataset(GapNet(k=6), x, ["act"], out=out, methods="gradcam", **KW)
    (out / "manifest.json").write_text('{"config": {"meth')
    with pytest.raises(ValueError, match="not a valid qfsel store manifest"):
        open_results(out)  # was json's JSONDecodeError
    with pytest.raises(ValueError, match="not a valid qfsel store manifest.*overwrite"):
        qfsel.explain_dataset(GapNet(k=6), x, ["act"], out=out, methods="gradcam", **KW)
    (out / "manifest.json").write_text("[]")
    with pytest.raises(ValueError, match="not a valid qfsel store manifest"):
        open_results(out)  # was TypeError "list indices must be integers"
    s = qfsel.explain_dataset(GapNet(k=6), x, ["act"], out=out, methods="gradcam", overwrite=True, **KW)
    assert s.explained == 6 and heatmap_chunk_files(out)


class _Items(torch.utils.data.Dataset):
    def __init__(self, make, n=3):
        self.make, self.n = make, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.make(i), i % 2


def test_pil_images_of_any_mode_and_16_bit_arrays_from_a_dataset(tmp_path):
    # was: a grey, palette, RGBA, 16-bit or 1-bit PIL image (or a uint16 / bool array) failed on
    # every image of a 3-channel model, while the same image as a file in a folder worked
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (3, 10, 10, 3), dtype=np.uint8)
    grey = rgb[..., 0]
    u16 = rng.integers(0, 65536, (3, 10, 10), dtype=np.uint16)
    kinds = {
        "L": (lambda i: Image.fromarray(grey[i]), torch.from_numpy(grey).float()[:, None].repeat(1, 3, 1, 1) / 255),
        "RGBA": (lambda i: Image.fromarray(np.dstack([rgb[i], grey[i]])), torch.from_numpy(rgb).permute(0, 3, 1, 2) / 255),
        "P": (lambda i: Image.fromarray(rgb[i]).convert("P"), None),
        "I;16": (lambda i: Image.fromarray(u16[i]), torch.from_numpy(u16.astype(np.float64) / 65535).float()[:, None]
                 .repeat(1, 3, 1, 1)),
        "1": (lambda i: Image.fromarray(grey[i]).convert("1"), None),
        "uint16 array": (lambda i: np.stack([u16[i]] * 3), torch.from_numpy(u16.astype(np.float32) / 65535)[:, None]
                         .repeat(1, 3, 1, 1)),
        "bool array": (lambda i: np.stack([grey[i] > 127] * 3), torch.from_numpy(grey > 127).float()[:, None]
                       .repeat(1, 3, 1, 1)),
    }
    model = GapNet(k=6)
    for name, (make, want) in kinds.items():
        out = tmp_path / name.replace(";", "").replace(" ", "-")
        s = qfsel.explain_dataset(model, _Items(make), ["act"], out=out, methods="gradcam", dtype="float32", **KW)
        assert (s.explained, s.failed) == (3, 0), name
        if want is not None:
            ref = qfsel.explain_all(model, want, ["act"], methods=("gradcam",))["gradcam"].heatmaps
            np.testing.assert_allclose(open_results(out).heatmaps("gradcam")[:], ref, rtol=1e-5, atol=1e-6,
                                       err_msg=name)


def test_grey_images_keep_their_values_for_a_one_channel_model(tmp_path):
    # was: grey pixels read as RGB and averaged back (a mean of three equal float32 values is
    # not always that value: 21 of the 256 grey levels changed in the last bit)
    class Grey(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
            self.act = torch.nn.ReLU()
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, t):
            return self.fc(self.act(self.conv(t)).mean((2, 3)))

    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    (tmp_path / "data").mkdir()
    Image.fromarray(levels).save(tmp_path / "data" / "grey.png")
    Image.fromarray(np.dstack([levels] * 3)).save(tmp_path / "data" / "rgb-but-grey.png")
    folder = qfsel.dataset.ImageFolder(tmp_path / "data", channels=1)
    want = torch.from_numpy(levels).float()[None] / 255.0
    for i in range(2):
        assert torch.equal(folder[i][0], want)
    from qfsel.dataset.sources import Loadable
    item = Loadable(_Items(lambda i: Image.fromarray(levels), n=1), None, channels=1)[0]
    assert torch.equal(item.image, want)
    s = qfsel.explain_dataset(Grey(), tmp_path / "data", ["act"], out=tmp_path / "s", methods="gradcam", **KW)
    assert (s.explained, s.failed) == (2, 0)


def test_images_that_are_no_images_are_failures_that_say_so(tmp_path):
    with pytest.raises(ValueError, match=r"expected an image: a tensor, a numpy array of numbers or a PIL image; "
                                         r"got str 'cat.png'"):
        qfsel.explain_dataset(GapNet(k=6), _Items(lambda i: "cat.png"), ["act"], out=tmp_path / "s", **KW)
    with pytest.raises(ValueError, match=r"expected a \(C, H, W\) or \(H, W\) image, floating, uint8, uint16 or "
                                         r"bool; got torch.int64"):
        qfsel.explain_dataset(GapNet(k=6), _Items(lambda i: np.zeros((3, 10, 10), np.int64)), ["act"],
                              out=tmp_path / "s", **KW)


def test_a_bad_scheduler_is_refused_before_the_store_is_written(x, tmp_path):
    pytest.importorskip("distributed")
    # was: distributed's ValueError "missing port number in address ..." (not naming scheduler),
    # and a store created for a job that could not start
    for bad in ("not an address", "tcp://host", "tcp://host:port", "foo://host:1"):
        with pytest.raises(ValueError, match=f"scheduler: expected an address like 'tcp://host:8786', got '{bad}'"):
            qfsel.explain_dataset(GapNet(k=6), x, ["act"], out=tmp_path / "s", backend="dask", scheduler=bad,
                                  timeout=1.0, **KW)
    with pytest.raises(TypeError, match="scheduler: expected an address"):
        qfsel.explain_dataset(GapNet(k=6), x, ["act"], out=tmp_path / "s", backend="dask", scheduler=8786, **KW)
    assert not (tmp_path / "s").exists()


def test_raw_maps_beyond_float16_range_are_kept(x, tmp_path):
    # was: with the default dtype="float16" (documented as the heatmaps' dtype) raw maps above
    # 65504 were stored as inf (numpy's overflow warning, an error under pytest)
    model = GapNet(k=6)
    with torch.no_grad():
        model.conv.weight.mul_(1e6)
        model.fc.weight.mul_(1e3)
    qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "s", store_raw=True, methods="gradcam", **KW)
    res = open_results(tmp_path / "s")
    raw = res.raw_maps("gradcam", "act")
    assert raw.dtype == np.float32 and res.heatmaps("gradcam").dtype == np.float16
    want = qfsel.explain_all(model, x, ["act"], methods=("gradcam",))["gradcam"].raw_maps[0]
    assert np.abs(want).max() > 1e5
    np.testing.assert_array_equal(raw[:], want)


def test_a_methods_change_is_named_first_in_the_mismatch(x, tmp_path):
    # was: "method_params: stored {...}, now {}; method_params.ablation_batch_size: ... and 6 more":
    # the QFS-CAM parameters that went with qfs hid the change the user made
    from qfsel.dataset import ConfigMismatchError

    kw = dict(out=tmp_path / "s", sampler="exact", k=2, **KW)
    qfsel.explain_dataset(GapNet(k=6), x, ["act"], **kw)
    kw.pop("sampler"), kw.pop("k")
    with pytest.raises(ConfigMismatchError, match=r"\(methods: stored \[\"qfs\", \"gradcam\", \"gradcam\+\+\"\], "
                                                  r"now \[\"gradcam\"\]; method_params: stored \{.*, now \{\}\)"):
        qfsel.explain_dataset(GapNet(k=6), x, ["act"], methods="gradcam", **kw)


def test_a_file_name_that_is_not_utf8(tmp_path):
    # was: UnicodeEncodeError "surrogates not allowed" from the folder's fingerprint: one such
    # file name stopped the whole job
    _png_folder(tmp_path / "data", ["a.png"])
    bad = os.fsencode(tmp_path / "data") + b"/b\xff c.png"
    with open(bad, "wb") as fh:
        fh.write((tmp_path / "data" / "a.png").read_bytes())
    (tmp_path / "data" / "broken.png").write_bytes(b"no png")
    with open(os.fsencode(tmp_path / "data") + b"/z\xfe.png", "wb") as fh:
        fh.write(b"no png either")
    s = qfsel.explain_dataset(GapNet(k=6), tmp_path / "data", ["act"], out=tmp_path / "s", methods="gradcam", **KW)
    assert (s.explained, s.failed) == (2, 2)
    res = open_results(tmp_path / "s")
    assert [Path(p).name for p in res.records()["path"]] == ["a.png", "b\\xff c.png"]
    assert [Path(p).name for p in res.failures()["path"]] == ["broken.png", "z\\xfe.png"]
    assert "z\\xfe.png" in res.failures()["reason"][1]


def test_a_datasets_own_path_method_of_any_kind(tmp_path):
    # a Path, a string with a lone surrogate, a raising method, a path attribute that is no method
    class WithPath(_Items):
        def __init__(self, path):
            super().__init__(lambda i: torch.rand(3, 10, 10, generator=torch.Generator().manual_seed(i)))
            self._path = path

        def path(self, i):
            return self._path(i)

    kinds = {"Path": (lambda i: Path("/d") / f"{i}.png", ["/d/0.png", "/d/1.png", "/d/2.png"]),
             "surrogate": (lambda i: "x\ud800", ["x\\ud800"] * 3),
             "raises": (lambda i: 1 / 0, [""] * 3)}
    for name, (path, want) in kinds.items():
        qfsel.explain_dataset(GapNet(k=6), WithPath(path), ["act"], out=tmp_path / name, methods="gradcam", **KW)
        assert open_results(tmp_path / name).records()["path"].tolist() == want, name
    attr = _Items(lambda i: torch.rand(3, 10, 10))
    attr.path = "/some/folder"
    qfsel.explain_dataset(GapNet(k=6), attr, ["act"], out=tmp_path / "attr", methods="gradcam", **KW)
    assert open_results(tmp_path / "attr").records()["path"].tolist() == [""] * 3


@pytest.mark.parametrize("num_workers", [0, 2])
def test_the_users_random_state_is_left_alone(x, tmp_path, num_workers):
    # was: the DataLoader drew its base seed from the global torch generator, so the user's next
    # random numbers depended on whether (and how often) a job ran
    torch.manual_seed(11)
    want = torch.rand(3)
    torch.manual_seed(11)
    qfsel.explain_dataset(GapNet(k=6), x, ["act"], out=tmp_path / "s", batch_size=2, sampler="exact", k=2,
                          num_workers=num_workers, progress=False)
    assert torch.equal(torch.rand(3), want)


def test_a_job_started_under_inference_mode(x, tmp_path):
    # (already fine before these fixes; the capture needs autograd: a regression guard)
    model = GapNet(k=6)
    with torch.inference_mode():
        s = qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "s", methods="gradcam", **KW)
    assert s.explained == 6
    want = qfsel.explain_all(GapNet(k=6), x, ["act"], methods=("gradcam",))["gradcam"].heatmaps
    np.testing.assert_allclose(open_results(tmp_path / "s").heatmaps("gradcam")[:], want, atol=1e-3)


def test_a_preview_of_another_dataset_is_refused(x, tmp_path):
    # was: the images of whatever dataset was passed drawn under the store's heatmaps
    out = tmp_path / "s"
    qfsel.explain_dataset(GapNet(k=6), x, ["act"], out=out, methods="gradcam", **KW)
    with pytest.raises(ValueError, match="dataset: not the dataset the job explained"):
        qfsel.dataset.save_preview(out, torch.rand(6, 3, 10, 10), n=2)
    with pytest.raises(ValueError, match="dataset: not the dataset the job explained"):
        qfsel.dataset.save_preview(out, x[:4], n=2)
    assert qfsel.dataset.save_preview(out, x, n=2).is_file()


def test_overwrite_removes_only_what_the_store_wrote(x, tmp_path):
    # was: every entry of the folder deleted, a dataset or notes the user kept there included
    out = tmp_path / "res"
    qfsel.explain_dataset(GapNet(k=6), x, ["act"], out=out, methods="gradcam", **KW)
    _png_folder(out / "imgs", ["0.png", "1.png", "2.png"])
    (out / "notes.txt").write_text("mine")
    _png_folder(out, ["preview.png"])
    s = qfsel.explain_dataset(GapNet(k=6), out / "imgs", ["act"], out=out, methods="gradcam", overwrite=True, **KW)
    assert (s.explained, s.failed) == (3, 0)
    assert (out / "notes.txt").read_text() == "mine" and len(list((out / "imgs").iterdir())) == 3
    assert not (out / "preview.png").exists()  # (the CLI's picture of the old results)
    assert open_results(out).num_images == 3


def test_a_sampler_object_does_not_prevent_resuming(x, tmp_path):
    # was: the configuration kept repr(sampler), "<... ExactSolver object at 0x7f...>", which
    # differs in every process: the same command was refused as "another configuration"; and
    # the job's seed was passed to a sampler that takes none (dimod's SamplerUnknownArgWarning)
    dimod = pytest.importorskip("dimod")
    kw = dict(out=tmp_path / "s", k=2, methods="qfs", batch_size=4, **KW)
    qfsel.explain_dataset(GapNet(k=6), x, ["act"], sampler=dimod.ExactSolver(), **kw)
    stored = open_results(tmp_path / "s").manifest["config"]["method_params"]["sampler"]
    assert stored == "dimod.reference.samplers.exact_solver.ExactSolver instance"
    s = qfsel.explain_dataset(GapNet(k=6), x, ["act"], sampler=dimod.ExactSolver(), **kw)
    assert (s.batches_resumed, s.batches_run) == (2, 0)


def test_cli_method_names_in_any_case_keep_the_qfs_options(tmp_path, capsys):
    # was: --method QFS ran QFS-CAM (names are case-insensitive) but without --k / --sampler /
    # --beta / --candidates, which the CLI passed only for a lower-case "qfs"
    from qfsel.cli import main

    _png_folder(tmp_path / "data", ["a.png", "b.png"], size=(28, 28))
    rc = main(["explain-dataset", str(tmp_path / "data"), "--out", str(tmp_path / "s"), "--method", "QFS, GradCAM",
               "--k", "2", "--sampler", "exact", "--beta", "0.5", "--num-workers", "0", "--no-progress",
               "--preview", "0", "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    config = open_results(tmp_path / "s").manifest["config"]
    assert config["methods"] == ["qfs", "gradcam"]
    assert (config["method_params"]["k"], config["method_params"]["sampler"], config["method_params"]["beta"]) == (
        2, "exact", 0.5)


def test_arrays_and_images_labels_pairs_are_datasets(x, tmp_path):
    # was: (images, labels) a dataset of two "images" (the whole tensors: every item failed); a
    # numpy array fingerprinted by its length only, so another array of the same length resumed
    # into the store (mixing two datasets' results); a uint16 tensor refused
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    kw = dict(methods="gradcam", batch_size=4, dtype="float32", **KW)
    qfsel.explain_dataset(GapNet(k=6), torch.utils.data.TensorDataset(x, y), ["act"], out=tmp_path / "ref", **kw)
    ref = open_results(tmp_path / "ref")
    for name, data in {"tensors": (x, y), "arrays": (x.numpy(), y.numpy()), "list": [x, y]}.items():
        qfsel.explain_dataset(GapNet(k=6), data, ["act"], out=tmp_path / name, **kw)
        res = open_results(tmp_path / name)
        assert res.records()["label"].tolist() == y.tolist(), name
        assert heatmap_chunk_files(tmp_path / name) == heatmap_chunk_files(tmp_path / "ref"), name
    ro = x.numpy().copy()
    ro.setflags(write=False)
    qfsel.explain_dataset(GapNet(k=6), ro, ["act"], out=tmp_path / "array", **kw)
    from qfsel.dataset import ConfigMismatchError
    with pytest.raises(ConfigMismatchError, match="dataset: stored"):
        qfsel.explain_dataset(GapNet(k=6), np.flip(ro, 0).copy(), ["act"], out=tmp_path / "array", **kw)
    with pytest.raises(ValueError, match="dataset: \\(images, labels\\) with 6 images but 5 labels"):
        qfsel.explain_dataset(GapNet(k=6), (x, y[:5]), ["act"], out=tmp_path / "bad", **kw)
    with pytest.raises(ValueError, match="needs integer labels, got torch.float32"):
        qfsel.explain_dataset(GapNet(k=6), (x, y.float()), ["act"], out=tmp_path / "bad", **kw)
    u16 = (x * 65535).round().to(torch.int32).numpy().astype(np.uint16)
    s = qfsel.explain_dataset(GapNet(k=6), torch.from_numpy(u16), ["act"], out=tmp_path / "u16", **kw)
    assert (s.explained, s.failed) == (6, 0)
    assert not (tmp_path / "bad").exists()


def test_a_dataloader_or_a_dict_is_refused_with_a_hint(x, tmp_path):
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=2)
    with pytest.raises(TypeError, match=r"got a DataLoader; pass its dataset \(loader.dataset\)"):
        qfsel.explain_dataset(GapNet(k=6), loader, ["act"], out=tmp_path / "s", **KW)
    with pytest.raises(TypeError, match=r"got a dict \(keys \['image', 'label'\]\)"):
        qfsel.explain_dataset(GapNet(k=6), {"image": x, "label": x}, ["act"], out=tmp_path / "s", **KW)
    assert not (tmp_path / "s").exists()


def test_more_workers_than_batches(x, tmp_path):
    # was: torch's UserWarning "This DataLoader will create 4 worker processes in total. Our
    # suggested max number of worker in current system is 2" (an error under pytest) for a
    # job with one batch: no more loader processes are started than there are batches
    s = qfsel.explain_dataset(GapNet(k=6), x[:1], ["act"], out=tmp_path / "s", methods="gradcam", num_workers=4,
                              batch_size=64, progress=False)
    assert (s.explained, s.batches) == (1, 1)


def test_a_model_with_uninitialized_lazy_layers(x, tmp_path):
    # was: torch's "Attempted to use an uninitialized parameter in <method 'requires_grad_' ...>"
    class Lazy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.LazyConv2d(6, 3, padding=1)
            self.act = torch.nn.ReLU()
            self.fc = torch.nn.Linear(6, 3)

        def forward(self, t):
            return self.fc(self.act(self.conv(t)).mean((2, 3)))

    model = Lazy()
    with pytest.raises(ValueError, match=r"model: its parameter conv.weight is not initialized \(a lazy layer\); "
                                         r"run the model once on a batch first"):
        qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "s", **KW)
    assert not (tmp_path / "s").exists()
    model(x[:1])
    assert qfsel.explain_dataset(model, x, ["act"], out=tmp_path / "s", methods="gradcam", **KW).explained == 6


def test_dtype_as_a_numpy_or_torch_dtype(x, tmp_path):
    # was: np.dtype("float16") passed the check (it equals "float16") and failed in json.dumps
    # ("Object of type Float16DType is not JSON serializable") with the store half created
    for i, dtype in enumerate([np.dtype("float16"), np.float32, torch.float16, "float32"]):
        out = tmp_path / f"s{i}"
        qfsel.explain_dataset(GapNet(k=6), x, ["act"], out=out, methods="gradcam", dtype=dtype, **KW)
        assert open_results(out).heatmaps("gradcam").dtype == np.dtype(dtype if i != 2 else "float16")
        assert open_results(out).manifest["config"]["dtype"] in ("float16", "float32")
    for bad in (np.float64, "f2", torch.bfloat16, 16):
        with pytest.raises(ValueError, match=r"dtype: expected one of \('float16', 'float32'\)"):
            qfsel.explain_dataset(GapNet(k=6), x, ["act"], out=tmp_path / "bad", dtype=bad, **KW)
    assert not (tmp_path / "bad").exists()


def test_a_target_class_the_model_does_not_have(x, tmp_path):
    # was: "target class 3 is out of range: ..." without naming the argument
    with pytest.raises(ValueError, match="targets: target class 3 is out of range: the model output has 3 classes"):
        qfsel.explain_dataset(GapNet(k=6, classes=3), x, ["act"], targets=3, out=tmp_path / "s", **KW)
    assert not (tmp_path / "s").exists()


def test_what_changes_results_without_changing_shapes_is_part_of_the_configuration(x, tmp_path):
    """Another transform, resize or reshape_transform, or other labels for the same images, is
    another configuration (resuming would mix two jobs' results); the defaults add no key."""
    from qfsel.dataset import ConfigMismatchError

    model = GapNet(k=6)
    labels = torch.arange(6) % 3
    qfsel.explain_dataset(model, (x, labels), ["act"], "gradcam", out=tmp_path / "t", **KW)
    config = open_results(tmp_path / "t").manifest["config"]
    assert not {"transform", "resize", "reshape_transform"} & set(config)
    with pytest.raises(ConfigMismatchError, match="dataset: stored"):
        qfsel.explain_dataset(model, (x, (labels + 1) % 3), ["act"], "gradcam", out=tmp_path / "t", **KW)

    _png_folder(tmp_path / "imgs", ["a.png", "b.png", "c.png"])

    def brighter(image):  # (H, W, 3) uint8 pixels
        return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1) * 0.5

    def darker(image):
        return brighter(image) * 0.5

    qfsel.explain_dataset(model, tmp_path / "imgs", ["act"], "gradcam", out=tmp_path / "f", transform=brighter, **KW)
    assert open_results(tmp_path / "f").manifest["config"]["transform"].endswith("brighter")
    with pytest.raises(ConfigMismatchError, match="transform: stored"):
        qfsel.explain_dataset(model, tmp_path / "imgs", ["act"], "gradcam", out=tmp_path / "f", transform=darker, **KW)
    qfsel.explain_dataset(model, tmp_path / "imgs", ["act"], "gradcam", out=tmp_path / "g", resize=10, **KW)
    with pytest.raises(ConfigMismatchError, match="resize: stored 10, now null"):  # (the same size: only the key)
        qfsel.explain_dataset(model, tmp_path / "imgs", ["act"], "gradcam", out=tmp_path / "g", **KW)
    qfsel.explain_dataset(model, x, ["act"], "gradcam", out=tmp_path / "r", **KW)
    with pytest.raises(ConfigMismatchError, match="reshape_transform: stored null, now \"callable"):
        qfsel.explain_dataset(model, x, ["act"], "gradcam", out=tmp_path / "r", reshape_transform=lambda t: t, **KW)


def test_cli_qfs_options_without_qfs_are_refused(tmp_path, capsys):
    """--k 2 with --method gradcam was silently ignored (the Python API raises for QFS-CAM
    parameters without qfs)."""
    from qfsel.cli import main

    _png_folder(tmp_path / "data", ["a.png"], size=(28, 28))
    rc = main(["explain-dataset", str(tmp_path / "data"), "--out", str(tmp_path / "s"), "--method", "gradcam",
               "--k", "2", "--sampler", "exact", "--num-workers", "0", "--no-progress", "--preview", "0",
               "--device", "cpu"])
    assert rc == 2
    assert "--k, --sampler: QFS-CAM options, but --method gradcam has no qfs" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_the_pass_layout_is_part_of_the_configuration_when_given(x, tmp_path):
    """channels_last=False gives other float rounding than the default channels-last CPU pass:
    another configuration; the default adds no key. The stored maps are the explainers'."""
    from qfsel.dataset import ConfigMismatchError

    model = GapNet(k=6)
    qfsel.explain_dataset(model, x, ["act"], "gradcam", out=tmp_path / "d", **KW)
    assert "channels_last" not in open_results(tmp_path / "d").manifest["config"]
    qfsel.explain_dataset(model, x, ["act"], "gradcam", out=tmp_path / "c", channels_last=False, **KW)
    res = open_results(tmp_path / "c")
    assert res.manifest["config"]["channels_last"] is False
    with pytest.raises(ConfigMismatchError, match="channels_last: stored false, now null"):
        qfsel.explain_dataset(model, x, ["act"], "gradcam", out=tmp_path / "c", **KW)
    with pytest.raises(TypeError, match="channels_last must be None"):
        qfsel.explain_dataset(model, x, ["act"], "gradcam", out=tmp_path / "e", channels_last="off", **KW)
    assert not (tmp_path / "e").exists()
    want = qfsel.GradCAM(model, ["act"], channels_last=False)(x)
    np.testing.assert_allclose(np.asarray(res.heatmaps("gradcam")[:], dtype=np.float32), want, rtol=0, atol=2e-3)


def test_chunk_writes_match_zarrs_own_and_a_kill_mid_write_leaves_nothing_behind(tmp_path, monkeypatch):
    """The store's own chunk writer against zarr's write path, store by store: the same chunk files
    with the same bytes, also for a batch whose images all failed (zarr writes no chunk that holds
    only the fill value) and for the raw maps of dotted layer names; temporary files a kill left
    inside the arrays (ours and zarr's) are removed when the job runs again, and not listed."""
    from qfsel.dataset import store as store_mod

    class Two(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Sequential(GapNet(k=4).conv, torch.nn.ReLU())
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, t):
            return self.fc(self.body(t).mean((2, 3)))

    model = Two()
    images = torch.rand(8, 3, 10, 10, generator=torch.Generator().manual_seed(3))
    images[3:6] = float("nan")  # batch 1: every image fails
    kw = dict(batch_size=3, store_raw=True, **KW)
    with monkeypatch.context() as m:
        m.setattr(store_mod._ChunkFiles, "for_array", classmethod(lambda cls, folder, arr: None))
        by_zarr = qfsel.explain_dataset(model, images, ["body.1"], ["gradcam", "gradcam++"], out=tmp_path / "z", **kw)
    ours = qfsel.explain_dataset(model, images, ["body.1"], ["gradcam", "gradcam++"], out=tmp_path / "q", **kw)
    assert (by_zarr.failed, ours.failed) == (3, 3)
    assert not (tmp_path / "q" / "heatmaps.zarr" / "gradcam" / "c" / "1").exists()  # as zarr: no chunk

    def chunks(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.is_file() and p.name != "zarr.json"}

    for part in ("heatmaps.zarr", "raw.zarr"):
        assert chunks(tmp_path / "z" / part) == chunks(tmp_path / "q" / part)
    # a kill in the middle of chunk writes: the temporary files are left, the last batch not done
    stale = [tmp_path / "q" / "heatmaps.zarr" / "gradcam" / "c" / "2" / "0" / ".0.k1ll3d.tmp",
             tmp_path / "q" / "raw.zarr" / "gradcam++" / "body.1" / "c" / "0" / "0" / "0.0123abcd.partial"]
    for p in stale:
        p.write_bytes(b"half a chunk")
    assert heatmap_chunk_files(tmp_path / "q") == heatmap_chunk_files(tmp_path / "z")
    (tmp_path / "q" / "records" / "part-000002.parquet").unlink()
    again = qfsel.explain_dataset(model, images, ["body.1"], ["gradcam", "gradcam++"], out=tmp_path / "q", **kw)
    assert again.batches_run == 1 and not any(p.exists() for p in stale)
    for part in ("heatmaps.zarr", "raw.zarr"):
        assert chunks(tmp_path / "z" / part) == chunks(tmp_path / "q" / part)
    np.testing.assert_array_equal(np.asarray(open_results(tmp_path / "q").heatmaps("gradcam")[:]),
                                  np.asarray(open_results(tmp_path / "z").heatmaps("gradcam")[:]))
