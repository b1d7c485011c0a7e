"""qfsel.evaluate end to end on a small subset; the report is self-contained HTML."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from torch import nn

from qfsel.datasets import shapes
from qfsel.evaluation import EvalData, ablation_table, evaluate


class _Resources(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in ("img", "meta", "br", "hr", "link"):
            self.open.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "poster") and value is not None:
                self.refs.append((tag, name, value))

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()


def _tiny_data(n=40):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, stride=2), nn.ReLU(),
        nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8 * 16 * 16, 10),
    ).eval()
    data = shapes(n, size=32, seed=2, split="test")
    disp = data.images.transpose(0, 2, 3, 1)
    return EvalData(model, "4", data.images, data.labels, data.masks, list(data.class_names), disp, "tiny on shapes")


def test_report_end_to_end_on_a_small_subset(tmp_path):
    res = evaluate(dataset=_tiny_data(), out=tmp_path, correct_only=False, n_boot=10, faithfulness_n=10, steps=4,
                   sanity_n=6, road=False, tsne=True, progress=False, sampler="exact")
    assert res["setup"]["n_explained"] == 40 and res["setup"]["n_maps"] == 8
    for name in ("metrics.json", "metrics.csv", "report.html", "overlap_matrices.png", "tsne.png",
                 "deletion_insertion.png", "mprt.png", "examples.png", "embedding_cis.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    dis = metrics["disentanglement"]
    assert set(dis) == {"qfs/selected", "qfs/proportional", "gradcam/positive", "gradcam/top-m", "gradcam/proportional",
                        "gradcam++/positive", "gradcam++/top-m", "gradcam++/proportional"}
    for r in dis.values():
        m = np.array(r["matrix"])
        assert m.shape == (10, 10) and np.all(m <= 1 + 1e-9) and np.all(m >= 0)
        lo, hi = r["ci95"]
        assert lo <= hi
    # top-m uses QFS-CAM's counts: the GradCAM top-m histogram mass per image equals QFS-CAM's
    assert metrics["localization"]["qfs"]["relevance_mass"]["value"] >= 0
    assert len(metrics["sanity"]["mprt_spearman"]["qfs"]) == len(metrics["sanity"]["cascade_layers"]) > 0
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0] == "group,metric,method,variant,value,lo,hi" and len(rows) > 40
    page = (tmp_path / "report.html").read_text()
    parser = _Resources()
    parser.feed(page)
    parser.close()
    assert parser.tags.count("img") == 6 and "table" in parser.tags and not parser.open
    assert parser.refs and all(v.startswith("data:image/png;base64,") for _, _, v in parser.refs), parser.refs
    assert "url(" not in page and "<script" not in page and "<link" not in page


def test_evaluate_bad_input(tmp_path):
    data = _tiny_data(20)
    with pytest.raises(ValueError, match="methods"):
        evaluate(dataset=data, methods=("gradcam", "lime"), progress=False)
    with pytest.raises(ValueError, match="parts"):
        evaluate(dataset=data, parts=("speed",), correct_only=False, progress=False)
    with pytest.raises(ValueError, match="dataset"):
        evaluate("narrow-mnist-16", "cifar", progress=False)
    bad = EvalData(nn.Sequential(nn.Conv2d(3, 2, 3)), "0", data.images, data.labels, None, ["a"], data.display)
    with pytest.raises(ValueError, match=r"model: expected an output of shape \(B, C\)"):
        evaluate(dataset=bad, progress=False)


def test_ablation_table_formats_errors_and_values():
    report = {"ablations": {"k": [
        {"setting": {"k": "None"}, "n": 10, "mean_off_diagonal": {"value": 0.1, "lo": 0.05, "hi": 0.2}, "zero_pairs": 3,
         "mean_selected": 2.5, "mean_energy": -0.5},
        {"setting": {"k": "16"}, "error": "k > d"}]}}
    table = ablation_table(report)
    assert "| k | k=None | 10 | 0.100 [0.050, 0.200] | 3 |" in table and "error: k > d" in table


def test_cli_evaluate(tmp_path, capsys):
    from qfsel.cli import main

    assert main(["evaluate", "--methods", "gradcam,bogus", "--out", str(tmp_path)]) == 2
    assert "methods" in capsys.readouterr().err
    code = main(["evaluate", "--model", "shapes-paper-16", "--n", "20", "--out", str(tmp_path), "--parts",
                 "disentanglement,localization", "--faithfulness-n", "0", "--sanity-n", "0", "--no-tsne",
                 "--n-boot", "10", "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "mean_off_diagonal" in out and (tmp_path / "report.html").is_file()


def test_explain_dataset_gives_qfs_a_flat_map_where_no_map_has_positive_weight():
    from qfsel.evaluation import explain_dataset

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 2)).eval()
    with torch.no_grad():
        model[3].weight[0] = -model[3].weight[0].abs()  # class 0: every map lowers the score
        model[3].weight[1] = model[3].weight[1].abs()
    x = np.random.default_rng(0).random((4, 3, 8, 8)).astype(np.float32)
    ex = explain_dataset(model, x, np.array([0, 1, 0, 1]), "1", ("qfs", "gradcam"), progress=False, sampler="exact")
    assert ex.extra["no_candidates"] == 2
    assert [len(s) for s in ex.selected][::2] == [0, 0] and all(len(s) > 0 for s in ex.selected[1::2])
    assert ex.flat["qfs"].tolist() == [True, False, True, False]
    assert np.all(ex.heatmaps["qfs"][0] == 0) and ex.act_mean.shape == (4, 4)


class _Backboned(nn.Module):
    """backbone -> head.bn -> classifier, like the bundled models; counts backbone calls."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, stride=2), nn.ReLU()).eval()
        self.head = nn.Sequential(nn.Conv2d(8, 6, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(6))
        self.classifier = nn.Linear(6 * 16 * 16, 10)
        self.calls = 0
        self.backbone[0].register_forward_pre_hook(lambda *_: setattr(self, "calls", self.calls + 1))

    def forward(self, x):
        return self.classifier(torch.flatten(self.head(self.backbone(x)), 1))


def test_backbone_replay_runs_a_frozen_backbone_once_and_changes_nothing():
    from qfsel.evaluation import explain_dataset

    data = shapes(24, size=32, seed=4, split="test")
    model = _Backboned().eval()
    plain = explain_dataset(model, data.images, data.labels, "head.2", ["gradcam", "qfs"], batch_size=8,
                            progress=False, sampler="exact")
    d = EvalData(model, "head.2", data.images, data.labels, data.masks, list(data.class_names),
                 data.images.transpose(0, 2, 3, 1), "backboned")
    model.calls = 0
    res = evaluate(dataset=d, correct_only=False, n_boot=0, parts=["disentanglement"], tsne=False,
                   progress=False, methods=["gradcam", "qfs"], sampler="exact")
    assert model.calls == 1  # the prediction pass (one batch of 24); the capture batches replay it
    assert "forward" not in vars(model.backbone)  # restored
    again = explain_dataset(model, data.images, data.labels, "head.2", ["gradcam", "qfs"], batch_size=8,
                            progress=False, sampler="exact")
    np.testing.assert_array_equal(again.heatmaps["qfs"], plain.heatmaps["qfs"])
    assert res["qfs_selection"]["mean_selected"] == pytest.approx(np.mean([len(s) for s in plain.selected]))
