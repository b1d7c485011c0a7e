"""Labels of a dataset's items in a dataset job: class indices, class names, one-hot vectors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import qfsel
from qfsel.dataset import open_results
from qfsel.dataset.sources import _as_label
from qfsel.exceptions import QFSelWarning
from tests._tiny_models import GapNet

KW = dict(num_workers=0, progress=False)


class Items(torch.utils.data.Dataset):
    def __init__(self, labels, classes=None):
        self.labels = labels
        g = torch.Generator().manual_seed(0)
        self.images = torch.rand(len(labels), 3, 6, 6, generator=g)
        if classes is not None:
            self.classes = classes

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], self.labels[i]


def _labels(tmp_path, ds, name="s"):
    qfsel.explain_dataset(GapNet(k=6), ds, ["act"], "gradcam", out=tmp_path / name, **KW)
    rec = open_results(tmp_path / name).records("gradcam").sort_values("index")
    return rec["label"].tolist()


def test_class_names_as_labels_are_the_indices_of_the_dataset_classes(tmp_path):
    # was: every such label was recorded as -1, silently (a Hugging Face style dataset of names)
    ds = Items(["dog", "cat", "dog", "bird"], classes=["bird", "cat", "dog"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _labels(tmp_path, ds) == [2, 1, 2, 0]
    assert open_results(tmp_path / "s").manifest["classes"] == ["bird", "cat", "dog"]


def test_labels_that_cannot_be_kept_are_warned_about_once(tmp_path):
    with pytest.warns(QFSelWarning, match=r"label of item 0 \('dog', a str\).*recorded as -1.*`classes` list"):
        assert _labels(tmp_path, Items(["dog", "cat"])) == [-1, -1]
    multi = [torch.tensor([1.0, 1.0, 0.0]), torch.tensor([0.0, 1.0, 1.0])]
    with pytest.warns(QFSelWarning, match="is not a class index.*class indices"):
        assert _labels(tmp_path, Items(multi), "m") == [-1, -1]


def test_one_hot_and_numeric_labels_are_class_indices(tmp_path):
    onehot = [torch.tensor([0.0, 0.0, 1.0]), np.array([0, 1, 0]), [1, 0, 0], torch.tensor(2), np.int64(1), 2.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _labels(tmp_path, Items(onehot)) == [2, 1, 0, 2, 1, 2]
        assert _labels(tmp_path, Items([-1, None]), "n") == [-1, -1]  # no label: nothing to say


@pytest.mark.parametrize("label, want", [(3, 3), (True, 1), (2.5, -1), (float("nan"), -1), ("x", -1),
                                         (np.zeros(3), -1), (torch.zeros(2, 2), -1), (object(), -1), ([], -1)])
def test_as_label(label, want):
    assert _as_label(label) == want
    assert _as_label("x", {"x": 4}) == 4
