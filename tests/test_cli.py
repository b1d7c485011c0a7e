"""End-to-end tests of the qfsel command line (in-process through qfsel.cli.main)."""

from __future__ import annotations

import csv
import itertools
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from qfsel import viz
from qfsel.cams import GradCAM, QFSCAM
from qfsel.cli import build_parser, main, random_explanation_batch
from qfsel.cli._common import _TITLE
from qfsel.datasets import mnist5k
from qfsel.models import load_model


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """Two MNIST test digits (a 3 and a 7) written as PNG files, plus a broken file."""
    folder = tmp_path_factory.mktemp("digits")
    images, labels = mnist5k("test")
    paths = []
    for digit in (3, 7):
        i = int(np.flatnonzero(labels.numpy() == digit)[0])
        path = folder / f"digit{digit}.png"
        Image.fromarray((images[i, 0].numpy() * 255).round().astype(np.uint8)).save(path)
        paths.append(path)
    broken = folder / "broken.png"
    broken.write_bytes(b"this is not a PNG")
    return folder, paths, broken


def test_explain_all_methods_writes_overlays_json_and_csv(digits, tmp_path, capsys):
    folder, paths, broken = digits
    out = tmp_path / "out"
    argv = ["explain"] + [str(p) for p in paths] + [str(broken), "--model", "narrow-mnist-16", "--method", "all",
                                      "--sampler", "exact", "--seed", "0", "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "skipping" in captured.err and "broken.png" in captured.err

    report = json.loads((out / "explanations.json").read_text())
    assert report["layer"] == "head.bn" and report["methods"] == ["qfs", "gradcam", "gradcam++"]
    assert [r["file"] for r in report["skipped"]] == [str(broken)]
    assert [r["predicted"] for r in report["images"]] == [3, 7]  # the bundled model gets both right
    for record in report["images"]:
        qfs = record["methods"]["qfs"]
        assert qfs["num_selected"] == len(qfs["selected"]) >= 1
        assert all(0 <= i < 16 for i in qfs["selected"]) and qfs["selected"] == sorted(qfs["selected"])
        assert 1 <= qfs["num_selected"] <= qfs["candidates"] <= 16
        assert qfs["feasible"] is True and qfs["energy"] < 0  # a good selection has negative energy
        for method in ("qfs", "gradcam", "gradcam++"):
            png = out / record["methods"][method]["png"]
            with Image.open(png) as image:  # 28x28 digits enlarged 8x below a title line, by qfsel.viz
                assert image.size == (224, 224 + 28) and image.mode in ("RGB", "RGBA")
                title = f"{record['class_name']} - {_TITLE[method]}"
                if method == "qfs":
                    title += f", {record['methods']['qfs']['num_selected']} maps"
                assert image.text["Title"] == title

    with open(out / "selections.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * 3
    qfs_rows = [r for r in rows if r["method"] == "qfs"]
    assert [r["selected"] for r in qfs_rows] == [
        " ".join(map(str, rec["methods"]["qfs"]["selected"])) for rec in report["images"]
    ]


def test_explain_overlays_are_qfsel_viz_overlays(digits, tmp_path, monkeypatch):
    """The PNG is viz.overlay of the display and the heatmap, both enlarged 8x (nearest)."""
    _, paths, _ = digits
    calls = []
    real = viz.save_overlay

    def spy(path, image, heatmap, **kwargs):
        calls.append((np.shape(image), np.shape(heatmap)))
        return real(path, image, heatmap, **kwargs)

    monkeypatch.setattr(viz, "save_overlay", spy)
    out = tmp_path / "out"
    assert main(["explain", str(paths[0]), "--method", "gradcam", "--device", "cpu", "--out", str(out)]) == 0
    assert calls == [((224, 224, 3), (224, 224))]
    report = json.loads((out / "explanations.json").read_text())
    assert report["device"] == "cpu" and report["candidates"] is None

    bundle = load_model("narrow-mnist-16")
    with Image.open(paths[0]) as image:
        pixels = np.asarray(image.convert("RGB"))
    heat = GradCAM(bundle.model, ["head.bn"])(bundle.preprocess(pixels))[0]
    big = lambda a: np.repeat(np.repeat(a, 8, axis=0), 8, axis=1)  # noqa: E731
    expected = viz.overlay(big(bundle.display(pixels)), big(heat))
    with Image.open(out / report["images"][0]["methods"]["gradcam"]["png"]) as image:
        assert image.text["Title"] == f"{report['images'][0]['class_name']} - GradCAM"
        written = np.asarray(image.convert("RGB")).astype(float)[28:] / 255  # below the title line
    assert written.shape == expected.shape == (224, 224, 3)
    assert np.abs(written - expected).max() <= 1.5 / 255


def test_explain_candidates_keeps_the_top_n(digits, tmp_path):
    _, paths, _ = digits
    reports = {}
    for cap in (None, 2):
        out = tmp_path / f"cap{cap}"
        extra = [] if cap is None else ["--candidates", str(cap)]
        argv = ["explain", *map(str, paths), "--method", "qfs", "--sampler", "exact", "--out", str(out), *extra]
        assert main(argv) == 0
        reports[cap] = json.loads((out / "explanations.json").read_text())
    assert reports[2]["candidates"] == 2
    bundle = load_model("narrow-mnist-16")
    pixels = []
    for path in paths:
        with Image.open(path) as image:
            pixels.append(np.asarray(image.convert("RGB")))
    batch = torch.cat([bundle.preprocess(p) for p in pixels])
    direct = QFSCAM(bundle.model, ["head.bn"], sampler="exact", seed=0, candidates=2).explain(batch)
    for i, (full, capped) in enumerate(zip(reports[None]["images"], reports[2]["images"])):
        full, capped = full["methods"]["qfs"], capped["methods"]["qfs"]
        assert full["candidates"] > 2  # so the cap really cuts
        assert capped["candidates"] == 2 and 1 <= capped["num_selected"] <= 2
        assert capped["selected"] == direct.selections[0].selected[i].tolist()


@pytest.mark.parametrize(
    "command, extra, message",
    [
        ("explain", ["--candidates", "0"], "--candidates: expected an integer >= 1, got 0"),
        ("demo", ["--candidates", "-2"], "--candidates: expected an integer >= 1, got -2"),
        ("explain", ["--candidates", "3", "--k", "4"], "--k: expected an integer <= --candidates (3), got 4"),
        ("explain", ["--candidates", "many"], "expected an integer or 'all', got 'many'"),
        ("demo", ["--device", "tpu"], "invalid choice"),
        # was checked only mid-run (QFS-CAM: seed ... (sample index 0 = ...)), after the replace notes
        ("explain", ["--seed", str(2**64)], "--seed: expected an integer in [0, 2**64 - 1], got 18446744073709551616"),
        ("demo", ["--seed", str(2**70)], "--seed: expected an integer in [0, 2**64 - 1]"),
    ],
)
def test_candidates_and_device_user_errors(digits, tmp_path, capsys, command, extra, message):
    _, paths, _ = digits
    images = [str(paths[0]), "--sampler", "exact"] if command == "explain" else ["--no-photos"]
    assert main([command, *images, "--out", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing is written before the arguments are checked


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("command", ["explain", "demo"])
def test_device_cuda_without_cuda_is_a_clear_error(digits, tmp_path, capsys, command):
    _, paths, _ = digits
    images = [str(paths[0])] if command == "explain" else ["--no-photos"]
    assert main([command, *images, "--device", "cuda", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "qfsel: error: --device: cuda was asked for" in err and "--device cpu" in err
    assert "Traceback" not in err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_explain_on_cuda_matches_cpu(digits, tmp_path):
    _, paths, _ = digits
    reports = []
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        argv = ["explain", *map(str, paths), "--sampler", "exact", "--device", device, "--out", str(out)]
        assert main(argv) == 0
        reports.append(json.loads((out / "explanations.json").read_text()))
    assert reports[1]["device"].startswith("cuda")
    for cpu, gpu in zip(reports[0]["images"], reports[1]["images"]):
        assert cpu["predicted"] == gpu["predicted"]
        assert cpu["methods"]["qfs"]["selected"] == gpu["methods"]["qfs"]["selected"]


def test_explain_is_reproducible_with_a_seed(digits, tmp_path):
    folder, paths, _ = digits
    results = []
    for run in range(2):
        out = tmp_path / f"run{run}"
        assert main(["explain", str(folder), "--method", "qfs", "--sampler", "exact", "--out", str(out)]) == 0
        results.append((out / "selections.csv").read_text())
    assert results[0] == results[1]


def test_explain_unknown_layer_lists_valid_names(digits, tmp_path, capsys):
    _, paths, _ = digits
    code = main(["explain", str(paths[0]), "--layer", "head.nope", "--sampler", "exact", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "head.nope" in err and "head.bn" in err and "backbone.conv3" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "resnet-50"], "unknown model"),
        (["--beta", "1.5"], "--beta"),
        (["--k", "0"], "--k"),
        (["--sampler", "quantum-magic"], "--sampler"),
        (["--model", "missing.pt"], "not found"),
    ],
)
def test_explain_user_errors_exit_2_without_traceback(digits, tmp_path, capsys, extra, message):
    _, paths, _ = digits
    code = main(["explain", str(paths[0]), "--out", str(tmp_path), "--sampler", "exact", *extra])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_explain_only_unreadable_files_is_an_error(digits, tmp_path, capsys):
    _, _, broken = digits
    assert main(["explain", str(broken), str(tmp_path / "nothing.png"), "--sampler", "exact", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no readable images" in err and "nothing.png" in err


@pytest.mark.parametrize("command", ["explain", "demo"])
def test_out_that_is_an_existing_file_is_a_clear_error_and_the_file_is_kept(digits, tmp_path, capsys, command):
    """Was a FileExistsError traceback."""
    _, paths, _ = digits
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    images = [str(paths[0]), "--sampler", "exact"] if command == "explain" else ["--no-photos", "--n", "1"]
    assert main([command, *images, "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert "--out: expected a folder" in err and "Traceback" not in err
    assert target.read_text() == "mine"
    assert main([command, *images, "--out", str(target / "sub")]) == 2  # under a file: cannot be created
    err = capsys.readouterr().err
    assert "--out: cannot create folder" in err and "Traceback" not in err


def test_explain_lists_the_files_it_replaces(digits, tmp_path, capsys):
    """Existing files were replaced silently."""
    _, paths, _ = digits
    out = tmp_path / "out"
    out.mkdir()
    (out / "digit3_gradcam.png").write_text("mine")
    (out / "keep.txt").write_text("mine")
    assert main(["explain", str(paths[0]), "--method", "gradcam", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "qfsel: note: replacing 1 existing file(s)" in err and "digit3_gradcam.png" in err
    assert (out / "keep.txt").read_text() == "mine"
    assert main(["explain", str(paths[0]), "--method", "gradcam", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "replacing 3 existing file(s)" in err and "explanations.json" in err and "selections.csv" in err


def test_explain_never_replaces_an_input_image(digits, tmp_path, capsys):
    """With --out the images' own folder, a second run overwrote the first run's PNGs, now inputs."""
    _, paths, _ = digits
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "digit3.png").write_bytes(paths[0].read_bytes())
    assert main(["explain", str(folder), "--method", "gradcam", "--out", str(folder)]) == 0
    first = (folder / "digit3_gradcam.png").read_bytes()
    assert main(["explain", str(folder), "--method", "gradcam", "--out", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "would replace the input image digit3_gradcam.png" in err and "Traceback" not in err
    assert (folder / "digit3_gradcam.png").read_bytes() == first


def test_explain_output_name_taken_by_a_folder_is_a_clear_error(digits, tmp_path, capsys):
    _, paths, _ = digits
    (tmp_path / "explanations.json").mkdir()
    assert main(["explain", str(paths[0]), "--method", "gradcam", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "explanations.json: a folder of that name exists" in err and "Traceback" not in err
    assert not (tmp_path / "digit3_gradcam.png").exists()  # checked before anything is written


def test_explain_empty_layer_name_is_an_error(digits, tmp_path, capsys):
    """--layer "" silently explained the default layer."""
    _, paths, _ = digits
    assert main(["explain", str(paths[0]), "--layer", "", "--out", str(tmp_path / "out")]) == 2
    assert "--layer: expected a layer name" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_solve_demo_and_explain_dataset_refuse_a_seed_beyond_64_bits(tmp_path, capsys):
    assert main(["solve-demo", "--batch", "2", "--k-maps", "4", "--seed", str(2**64)]) == 2
    assert main(["explain-dataset", "mnist5k-test", "--out", str(tmp_path / "s"), "--seed", str(2**64)]) == 2
    err = capsys.readouterr().err
    assert err.count("qfsel: error: --seed: expected an integer in [0, 2**64 - 1]") == 2 and "Traceback" not in err
    assert not (tmp_path / "s").exists()


def test_solve_demo_too_large_is_a_clear_error(capsys):
    """Was a numpy MemoryError traceback (74.5 GiB for --k-maps 100000)."""
    assert main(["solve-demo", "--batch", "1", "--k-maps", "100000", "--sampler", "sa"]) == 2
    err = capsys.readouterr().err
    assert "--batch x --k-maps^2: expected at most 67108864" in err and "Traceback" not in err


def test_explain_reads_16_bit_and_float_images_at_their_real_scale(tmp_path):
    """PIL's convert("RGB") clipped them: a float digit in [0, 1] became almost black (wrong class)."""
    images, labels = mnist5k("test")
    i = int(np.flatnonzero(labels.numpy() == 7)[0])
    digit = images[i, 0].numpy()
    Image.fromarray((digit * 255).round().astype(np.uint8)).save(tmp_path / "d8.png")
    Image.fromarray((digit * 65535).round().astype(np.uint16)).save(tmp_path / "d16.png")
    Image.fromarray(digit.astype(np.float32)).save(tmp_path / "dfloat.tif")
    Image.fromarray((digit * 2).astype(np.float32)).save(tmp_path / "dbad.tif")  # floats beyond [0, 1]
    out = tmp_path / "out"
    files = [str(tmp_path / n) for n in ("d8.png", "d16.png", "dfloat.tif", "dbad.tif")]
    assert main(["explain", *files, "--method", "gradcam", "--out", str(out)]) == 0
    report = json.loads((out / "explanations.json").read_text())
    assert [r["predicted"] for r in report["images"]] == [7, 7, 7]
    scores = [r["score"] for r in report["images"]]
    assert scores[1] == pytest.approx(scores[0], rel=1e-2) and scores[2] == pytest.approx(scores[0], rel=1e-2)
    assert [r["file"] for r in report["skipped"]] == [files[3]]
    assert "must lie in [0, 1]" in report["skipped"][0]["reason"]


def test_explain_output_names_are_unique(digits, tmp_path):
    """a/d.png, b/d.png and c/d-1.png all wrote d-1_gradcam.png: one overlay was lost."""
    _, paths, _ = digits
    files = []
    for folder, name in (("a", "d.png"), ("b", "d.png"), ("c", "d-1.png")):
        (tmp_path / folder).mkdir()
        files.append(tmp_path / folder / name)
        files[-1].write_bytes(paths[0].read_bytes())
    out = tmp_path / "out"
    assert main(["explain", *map(str, files), "--method", "gradcam", "--out", str(out)]) == 0
    report = json.loads((out / "explanations.json").read_text())
    pngs = [r["methods"]["gradcam"]["png"] for r in report["images"]]
    assert pngs == ["d_gradcam.png", "d-1_gradcam.png", "d-1-1_gradcam.png"]
    assert all((out / png).exists() for png in pngs)


def test_explain_errors_name_the_file_not_just_the_sample_index(digits, tmp_path, capsys):
    """'k=12 exceeds ... for sample index 0' did not say which file (index 0 of which batch)."""
    _, paths, _ = digits
    argv = ["explain", *map(str, paths), "--k", "12", "--sampler", "exact", "--batch-size", "1"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "k=12 exceeds the number of candidate maps" in err and "Traceback" not in err
    assert f"(sample index 0 = {paths[0]})" in err


def test_explain_skips_an_image_over_pils_pixel_limit(digits, tmp_path, capsys, monkeypatch):
    """PIL's DecompressionBombError (not an OSError) aborted the whole run with a traceback."""
    _, paths, _ = digits
    big = tmp_path / "big.png"
    Image.new("L", (64, 64)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64 x 64 > 2 x 1000: refused by PIL
    out = tmp_path / "out"
    assert main(["explain", str(big), str(paths[0]), "--method", "gradcam", "--out", str(out)]) == 0
    assert "skipping" in capsys.readouterr().err
    report = json.loads((out / "explanations.json").read_text())
    assert [r["file"] for r in report["skipped"]] == [str(big)] and len(report["images"]) == 1
    assert "decompression bomb" in report["skipped"][0]["reason"]


def test_demo_mnist_only(tmp_path, capsys, monkeypatch):
    grids = []
    real = viz.save_comparison_grid

    def spy(path, images, heatmaps, **kwargs):
        grids.append((len(images), list(heatmaps), kwargs["num_selected"]))
        return real(path, images, heatmaps, **kwargs)

    monkeypatch.setattr(viz, "save_comparison_grid", spy)
    out = tmp_path / "demo"
    assert main(["demo", "--n", "4", "--no-photos", "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out.resolve()) in printed and "test accuracy" in printed
    summary = json.loads((out / "summary.json").read_text())
    (section,) = summary["sections"]
    assert section["test_accuracy"] >= 0.97 and section["test_images"] == 1000
    assert section["images"] == ["label 0", "label 1", "label 2", "label 3"]
    assert set(section["methods"]) == {"qfs", "gradcam", "gradcam++"}
    counts = section["methods"]["qfs"]["selected_per_image"]
    assert len(counts) == 4 and "candidates_cap" not in section["methods"]["qfs"]
    assert summary["device"] == "cpu"
    assert grids == [(4, ["QFS-CAM", "GradCAM", "GradCAM++"], {"QFS-CAM": counts})]
    with Image.open(out / "mnist_grid.png") as grid:  # viz: 4 rows x (image + 3 methods), 2.2 in panels, 100 dpi
        assert grid.size == (880, 910)
    assert (out / "summary.txt").read_text().startswith("qfsel demo")


@pytest.mark.slow
def test_demo_with_photos(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--n", "2", "--candidates", "8", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["candidates"] == 8
    mnist, photos = summary["sections"]
    assert "candidates_cap" not in mnist["methods"]["qfs"]  # the 16-map MNIST model is not capped
    assert photos["model"] == "efficientnet-lite0"
    assert photos["images"] == ["chelsea", "coffee", "astronaut", "rocket"]
    assert photos["predicted"][0] in {"Egyptian cat", "tabby", "tiger cat"}
    qfs = photos["methods"]["qfs"]
    assert qfs["candidates_cap"] == 8 and qfs["candidates_per_image"] == [8, 8, 8, 8]
    assert all(1 <= n <= 8 for n in qfs["selected_per_image"])
    assert all(0 <= i < 1280 for sel in qfs["selected"] for i in sel)
    assert "(top 8 by relevance)" in printed
    with Image.open(out / "photos_grid.png") as grid:  # viz: 4 rows x (image + 3 methods)
        assert grid.size == (880, 910)


def test_demo_photos_default_to_64_candidates():
    args = build_parser().parse_args(["demo"])
    assert args.candidates == 64 and args.device == "auto"
    assert build_parser().parse_args(["explain", "x.png"]).candidates is None


def _brute_force_min(h, J, beta):
    best = np.inf
    for bits in itertools.product((0, 1), repeat=len(h)):
        x = np.array(bits, dtype=float)
        energy = -beta * h @ x + (1 - beta) * 0.5 * x @ J @ x
        best = min(best, energy)
    return best


def test_solve_demo_prints_optimal_energies(capsys):
    assert main(["solve-demo", "--batch", "3", "--k-maps", "8", "--seed", "5", "--sampler", "exact"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if re.match(r"^\s+\d+\s", line)]
    assert len(rows) == 3
    batch = random_explanation_batch(3, 8, 5)
    for i, row in enumerate(rows):
        fields = row.split()
        energy = float(fields[-3])
        problem = batch[i]
        expected = _brute_force_min(np.asarray(problem.relevance), np.asarray(problem.redundancy), 0.7)
        assert energy == pytest.approx(expected, abs=1e-4)
        assert fields[-2] == "True"


def test_random_explanation_batch_shape_and_ranges():
    batch = random_explanation_batch(4, 10, 0)
    h = np.asarray(batch.relevance)
    J = np.asarray(batch.redundancy)
    assert h.shape == (4, 10) and J.shape == (4, 10, 10)
    assert np.all(h > 0) and np.all(h <= 1) and np.allclose(h.max(axis=1), 1.0)
    assert np.all(J >= 0) and np.all(J <= 1) and np.allclose(J, J.transpose(0, 2, 1))
    assert np.all(np.diagonal(J, axis1=1, axis2=2) == 0)
    assert J[J > 0].mean() > 0.2  # correlated, unlike independent 49-dim vectors (~0.11)


def test_help_and_python_m(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ("explain", "demo", "solve-demo"):
        assert command in text
    result = subprocess.run([sys.executable, "-m", "qfsel", "explain", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--layer" in result.stdout and "head.bn" in result.stdout
    result = subprocess.run([sys.executable, "-m", "qfsel", "explain"], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert main(["explain", "x.png", "--beta", "high"]) == 2
    assert "invalid float value" in capsys.readouterr().err


def test_explain_warns_when_an_input_is_converted_far_from_the_training_images(digits, tmp_path, capsys):
    _, paths, _ = digits
    rng = np.random.default_rng(0)
    photo = tmp_path / "photo.png"  # a colour 320x200 picture, nothing like an MNIST digit
    Image.fromarray((rng.random((200, 320, 3)) * 255).astype(np.uint8)).save(photo)
    out = tmp_path / "out"
    assert main(["explain", str(paths[0]), str(photo), "--method", "gradcam", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if line.startswith("qfsel: warning:")]
    assert len(warned) == 1 and str(photo) in warned[0]
    assert "a colour image is turned grey" in warned[0] and "28x28 grey MNIST digits" in warned[0]
    assert "a 320x200 image is shrunk 7-fold to 28x28" in warned[0]
    assert "its 1.6:1 aspect ratio is squashed to a square" in warned[0]
    records = json.loads((out / "explanations.json").read_text())["images"]
    assert "warning" not in records[0] and "colour" in records[1]["warning"]


def test_explain_efficientnet_defaults_to_64_candidates_like_demo(tmp_path, capsys):
    from qfsel.datasets import sample_photos
    from qfsel.cli._common import _PHOTO_CANDIDATES
    from qfsel.models import EFFICIENTNET_LITE0_CANDIDATES

    assert _PHOTO_CANDIDATES == EFFICIENTNET_LITE0_CANDIDATES == 64
    path = tmp_path / "chelsea.png"
    Image.fromarray(sample_photos(["chelsea"])["chelsea"]).save(path)
    out = tmp_path / "out"
    argv = ["explain", str(path), "--model", "efficientnet-lite0", "--method", "qfs", "--out", str(out)]
    assert main(argv) == 0
    report = json.loads((out / "explanations.json").read_text())
    assert "warning:" not in capsys.readouterr().err  # a photo is what this model was trained on
    assert report["candidates"] == 64 and report["images"][0]["methods"]["qfs"]["candidates"] == 64
    assert build_parser().parse_args(["explain", "x.png", "--candidates", "all"]).candidates == "all"
    help_text = build_parser()._subparsers._group_actions[0].choices["explain"].format_help()
    assert "64 for efficientnet-lite0, as in demo" in " ".join(help_text.split())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not a checkpoint", r"not a PyTorch weights file \(torch.save writes a zip archive"),
        (b"PK\x03\x04broken zip", r"not a PyTorch weights file"),
        (None, r"pickles Python objects \(.*Payload\).*weights only"),
    ],
)
def test_explain_bad_model_file_never_advises_weights_only_false(digits, tmp_path, capsys, content, message):
    _, paths, _ = digits
    bad = tmp_path / "bad.pt"
    if content is None:
        torch.save({"state_dict": _Payload()}, bad)
    else:
        bad.write_bytes(content)
    assert main(["explain", str(paths[0]), "--model", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err
    assert "weights_only=False" not in err and "weights_only` set to `False" not in err


class _Payload:
    """Pickled into a checkpoint by the test above: an object, not a tensor."""


def _normalized(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("command", sorted(build_parser()._subparsers._group_actions[0].choices))
def test_readme_synopsis_matches_help(command):
    """The README's command-line synopsis is each command's --help usage, word for word."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"## Command line\n\n```text\n(.*?)```", readme, flags=re.S)
    assert block, "README.md should have a Command line section with a text block"
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    usage = _normalized(sub.format_usage()).removeprefix("usage: ")
    assert usage in _normalized(block.group(1)), f"README synopsis of {command!r} differs from --help: {usage}"


def test_explain_candidates_all_means_no_cap(digits, tmp_path):
    _, paths, _ = digits
    out = tmp_path / "out"
    assert main(["explain", str(paths[0]), "--method", "qfs", "--candidates", "all", "--sampler", "exact",
                 "--out", str(out)]) == 0
    report = json.loads((out / "explanations.json").read_text())
    assert report["candidates"] is None and report["images"][0]["methods"]["qfs"]["candidates"] > 2


def test_explain_tunes_malloc_unless_told_not_to(digits, tmp_path, monkeypatch):
    from qfsel import _malloc

    _, paths, _ = digits
    calls = []
    monkeypatch.setattr(_malloc, "tune_malloc", lambda: calls.append(1) or True)
    base = ["explain", str(paths[0]), "--method", "gradcam", "--device", "cpu", "--out", str(tmp_path / "o")]
    assert main(base) == 0 and calls == [1]
    assert main(base + ["--no-tune-malloc"]) == 0 and calls == [1]
