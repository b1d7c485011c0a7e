"""Problems captured from any bundled model (issue 12, paper-shaped models) and `qfsel gap`'s caps."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytest.importorskip("torch")

import qfsel.quantum as qq  # noqa: E402
from qfsel.cli import main  # noqa: E402
from qfsel.quantum.capture import capture_problems, default_dataset  # noqa: E402


def test_default_dataset_follows_the_model():
    assert default_dataset("shapes-paper-24") == "shapes"
    assert default_dataset("narrow-mnist-32") == "mnist"
    assert default_dataset("efficientnet-lite0") == "photos"


def test_shapes_capture_is_balanced_correct_and_matches_qfscam():
    import torch

    from qfsel.cams import QFSCAM
    from qfsel.evaluation import load_eval_data

    cap = capture_problems("shapes-paper-16", 10, pool=60)
    assert cap.dataset == "shapes" and len(cap.problems) == 10
    assert sorted(cap.labels.tolist()) == list(range(10))  # one per class
    data = load_eval_data("shapes-paper-16", "shapes", 60)
    x = torch.from_numpy(data.images[cap.indices])
    with torch.no_grad():
        pred = data.model(x).argmax(1).numpy()
    np.testing.assert_array_equal(pred, data.labels[cap.indices])  # correctly classified only
    assert (data.labels[cap.indices] == cap.labels).all()
    # the first chosen image's problem has the size QFS-CAM gives it
    cam = QFSCAM(data.model, [data.layer], sampler="exact")
    sel = cam.explain(x[:1]).selections[0]
    assert int(sel.d[0]) == cap.problems[0].num_variables == cap.d[0]
    assert np.max(cap.problems[0].relevance) == pytest.approx(1.0)  # h = alpha / max alpha


def test_capture_rejects_bad_dataset_and_pool():
    with pytest.raises(ValueError, match="dataset: expected one of mnist, shapes, photos"):
        capture_problems("shapes-paper-16", 2, dataset="cifar")
    with pytest.raises(ValueError, match="pool"):
        capture_problems("shapes-paper-16", 2, pool=1)


@pytest.mark.slow
def test_gap_cli_on_a_shapes_model_with_caps(tmp_path):
    out = tmp_path / "gap"
    argv = ["gap", "--model", "shapes-paper-16", "--images", "20", "--pool", "60", "--max-d", "6", "--T", "5",
            "--s-points", "11", "--problems-cap", "6:3", "--spectra-cap", "5:1", "--threads", "1", "--out", str(out)]
    assert main(argv) == 0
    with (out / "gap_table.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows and {r["dataset"] for r in rows} == {"shapes"}
    ds = [int(r["d"]) for r in rows]
    assert max(ds) <= 6 and ds.count(6) <= 3
    for d in set(ds):
        gaps = [float(r["delta_min"]) for r in rows if int(r["d"]) == d]
        n_gap = sum(np.isfinite(gaps))
        assert n_gap == (len(gaps) if d < 5 else 1)  # the spectra cap; anneals on all
        assert all(0 <= float(r["success_T5"]) <= 1 for r in rows if int(r["d"]) == d)
    # a row's gap and success equal the library's on the same captured problem
    cap = capture_problems("shapes-paper-16", 20, pool=60)
    first = rows[0]
    p = next(q for q, i in zip(cap.problems, cap.indices) if int(i) == int(first["image"]))
    assert float(first["delta_min"]) == pytest.approx(qq.min_gap(p, s_points=11).delta_min, rel=1e-9)
    assert float(first["success_T5"]) == pytest.approx(qq.anneal(p, 5).success, rel=1e-9)
    summary = json.loads((out / "gap_summary.json").read_text())
    assert {t["d"] for t in summary["timing_by_d"]} == set(ds)


def _gap_rows(tmp_path, name, extra):
    out = tmp_path / name
    argv = ["gap", "--model", "shapes-paper-16", "--images", "20", "--pool", "60", "--min-d", "5", "--max-d", "6", "--T", "1",
            "--spectra-cap", "2:0", "--threads", "1", "--out", str(out), *extra]
    assert main(argv) == 0
    with (out / "gap_table.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_gap_cli_problems_skip_and_cap_keep_a_window_of_each_d(tmp_path, capsys):
    full = _gap_rows(tmp_path, "full", [])
    part = _gap_rows(tmp_path, "part", ["--problems-skip", "6:1", "--problems-cap", "6:2"])
    by_d = lambda rows, d: [r["image"] for r in rows if int(r["d"]) == d]  # noqa: E731
    assert sorted({int(r["d"]) for r in full}) == [5, 6] and len(by_d(full, 6)) >= 3
    assert by_d(part, 6) == by_d(full, 6)[1:3]  # skip the first, then keep two
    assert by_d(part, 5) == by_d(full, 5)  # d < 6: untouched
    assert [r["success_T1"] for r in part if int(r["d"]) == 6] == [r["success_T1"] for r in full if int(r["d"]) == 6][1:3]
    # no spectra at all (--spectra-cap 2:0): the anneal table and every figure are still written
    assert all(r["delta_min"] == "nan" for r in full)
    assert (tmp_path / "full" / "spectrum_examples.png").stat().st_size > 0
    # skipping every problem of every d leaves nothing: a clear error, not an empty table
    assert main(["gap", "--model", "shapes-paper-16", "--images", "20", "--pool", "60", "--min-d", "5", "--max-d", "6",
                 "--problems-skip", "2:99", "--out", str(tmp_path / "none")]) == 2
    assert "--problems-skip" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--spectra-cap", "x"], "--spectra-cap: expected D:N"),
        (["--problems-skip", "5:-1"], "--problems-skip: expected D >= 1 and N >= 0"),
        (["--s-points-cap", "5:2"], "--s-points-cap: expected D >= 1 and N >= 3"),
        (["--encoding", "xy"], "--encoding xy: needs --k"),
        (["--min-d", "9", "--max-d", "8"], "--min-d"),
        (["--pool", "1"], "--pool"),
    ],
)
def test_gap_cli_rejects_bad_options(tmp_path, capsys, extra, message):
    assert main(["gap", "--model", "shapes-paper-16", *extra, "--out", str(tmp_path / "g")]) == 2
    assert message in capsys.readouterr().err
