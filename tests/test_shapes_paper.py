"""The shapes dataset and the paper-shaped EfficientNet-Lite0 model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qfsel.datasets import SHAPE_CLASSES, shapes


def test_shapes_is_deterministic_prefix_stable_and_masked():
    a = shapes(30, size=32, seed=3)
    b = shapes(12, size=32, seed=3)
    np.testing.assert_array_equal(a.images[:12], b.images)
    np.testing.assert_array_equal(a.masks[:12], b.masks)
    assert not np.array_equal(shapes(5, size=32, seed=4).images, a.images[:5])
    assert not np.array_equal(shapes(5, size=32, seed=3, split="test").images, a.images[:5])
    assert a.images.dtype == np.float32 and a.images.min() >= 0 and a.images.max() <= 1
    assert list(a.labels[:10]) == list(range(10)) and len(SHAPE_CLASSES) == 10
    area = a.masks.reshape(30, -1).mean(axis=1)
    assert np.all(area > 0.01) and np.all(area < 0.5)
    # the object pixels have the object's single colour
    for i in range(5):
        pix = a.images[i].transpose(1, 2, 0)[a.masks[i]]
        assert np.ptp(pix, axis=0).max() < 1e-6


@pytest.mark.parametrize(
    "kwargs, match",
    [({"n": 0}, "n"), ({"n": 2, "size": 8}, "size"), ({"n": 2, "split": "val"}, "split"),
     ({"n": 2, "clutter": 2.0}, "clutter"), ({"n": 2, "distractors": -1}, "distractors"), ({"n": 2, "seed": -1}, "seed")],
)
def test_shapes_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        shapes(**kwargs)


def test_paper_cnn_bundled_heads_classify_shapes():
    from qfsel.models import load_model, paper_cnn

    model = paper_cnn(16)
    assert model.feature_size == (7, 7) and model.head.bn.num_features == 16
    assert not any(p.requires_grad for p in model.backbone.parameters())
    data = shapes(40, seed=0, split="test")
    with torch.no_grad():
        acc = float((model(torch.from_numpy(data.images)).argmax(1).numpy() == data.labels).mean())
    assert acc >= 0.9
    bundle = load_model("shapes-paper-24")
    assert bundle.default_layer == "head.bn" and bundle.class_names[0] == "circle" and bundle.accuracy == 0.978
    with pytest.raises(ValueError, match="n_features"):
        paper_cnn(20)
    with pytest.raises(ValueError, match="unknown model"):
        load_model("shapes-paper-20")
