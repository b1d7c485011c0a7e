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
from PIL import Image

from qfsel.cli import main, random_explanation_batch
from qfsel.datasets import mnist5k


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
            with Image.open(png) as image:
                assert image.size == (224, 224) and image.mode == "RGB"

    with open(out / "selections.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * 3
    qfs_rows = [r for r in rows if r["method"] == "qfs"]
    assert [r["selected"] for r in qfs_rows] == [
        " ".join(map(str, rec["methods"]["qfs"]["selected"])) for rec in report["images"]
    ]


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


def test_demo_mnist_only(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--n", "4", "--no-photos", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out.resolve()) in printed and "test accuracy" in printed
    summary = json.loads((out / "summary.json").read_text())
    (section,) = summary["sections"]
    assert section["test_accuracy"] >= 0.97 and section["test_images"] == 1000
    assert section["images"] == ["label 0", "label 1", "label 2", "label 3"]
    assert set(section["methods"]) == {"qfs", "gradcam", "gradcam++"}
    assert len(section["methods"]["qfs"]["selected_per_image"]) == 4
    with Image.open(out / "mnist_grid.png") as grid:
        assert grid.size[0] > 200 and grid.size[1] > 200
    assert (out / "summary.txt").read_text().startswith("qfsel demo")


@pytest.mark.slow
def test_demo_with_photos(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--n", "2", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    photos = summary["sections"][1]
    assert photos["model"] == "efficientnet-lite0"
    assert photos["images"] == ["chelsea", "coffee", "astronaut", "rocket"]
    assert photos["predicted"][0] in {"Egyptian cat", "tabby", "tiger cat"}
    assert (out / "photos_grid.png").is_file()


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
