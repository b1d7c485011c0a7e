"""Tests of qfsel.models: the narrow CNN, its bundled weights, EfficientNet-Lite0 and helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from qfsel import models
from qfsel.datasets import mnist5k, sample_photos
from qfsel.models import (
    EXPLAINED_LAYER,
    NarrowCNN,
    efficientnet_lite0,
    imagenet_classes,
    imagenet_preprocess,
    imagenet_resize,
    load_model,
    load_narrow_cnn,
    mnist_backbone,
    mnist_preprocess,
    narrow_cnn,
    resolve_layer,
)

WIDTHS = (16, 24, 32)


@pytest.fixture(scope="module")
def mnist_test():
    return mnist5k("test")


@pytest.mark.parametrize("n_features", [16, 24, 32, 5])
def test_narrow_cnn_shapes(n_features):
    model = narrow_cnn(n_features, pretrained=False)
    assert isinstance(model, NarrowCNN) and not model.training
    x = torch.rand(3, 1, 28, 28)
    assert model(x).shape == (3, 10)
    maps = model.head(model.backbone(x))
    assert maps.shape == (3, n_features, 14, 14)
    assert model.feature_size == (14, 14)
    assert model.explained_layer is model.head.bn
    assert dict(model.named_modules())[EXPLAINED_LAYER] is model.head.bn
    # flatten + one linear layer on all maps (no global pooling)
    assert model.classifier.in_features == n_features * 14 * 14
    # head: conv3x3 -> ReLU -> BatchNorm, in this order
    assert [type(m) for m in model.head] == [nn.Conv2d, nn.ReLU, nn.BatchNorm2d]
    assert model.head.conv.kernel_size == (3, 3)


def test_narrow_cnn_forward_equals_manual_composition():
    torch.manual_seed(0)
    model = narrow_cnn(8, pretrained=False)
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        f = model.backbone(x)
        z = model.head.bn(torch.relu(model.head.conv(f)))
        expected = z.flatten(1) @ model.classifier.weight.T + model.classifier.bias
        assert torch.allclose(model(x), expected, atol=1e-5)


def test_frozen_backbone_stays_in_eval_and_has_no_grad():
    model = narrow_cnn(16, pretrained=False)
    assert all(not p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    model.train()
    assert model.head.training and not model.backbone.training
    assert not any(m.training for m in model.backbone.modules())


def test_narrow_cnn_with_custom_backbone():
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU())
    model = narrow_cnn(4, backbone, num_classes=5, in_shape=(3, 32, 32))
    assert model.feature_size == (16, 16)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 5)
    with pytest.raises(ValueError, match="in_shape"):
        narrow_cnn(4, backbone)
    with pytest.raises(ValueError, match="bundled weights"):
        narrow_cnn(4, backbone, in_shape=(3, 32, 32), pretrained=True)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"n_features": 0}, ValueError),
        ({"n_features": 2.5}, TypeError),
        ({"num_classes": 0}, ValueError),
        ({"backbone": "resnet"}, ValueError),
        ({"backbone": 3}, TypeError),
        ({"n_features": 20, "pretrained": True}, ValueError),
        ({"pretrained": "yes please"}, FileNotFoundError),
    ],
)
def test_narrow_cnn_bad_arguments(kwargs, error):
    with pytest.raises(error):
        narrow_cnn(**kwargs)


@pytest.mark.parametrize("n_features", WIDTHS)
def test_bundled_weights_load_with_weights_only(n_features):
    path = models._bundled_weights_path(n_features)
    assert path.is_file()
    assert path.stat().st_size < 1_000_000
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert payload["format"] == "qfsel.narrow_cnn/1" and payload["n_features"] == n_features
    state = payload["state_dict"]
    assert state["head.conv.weight"].shape == (n_features, 64, 3, 3)
    assert all(v.dtype in (torch.float32, torch.int64) for v in state.values())
    assert payload["test_accuracy"] >= 0.97
    assert models.BUNDLED_ACCURACY[f"narrow-mnist-{n_features}"] == pytest.approx(payload["test_accuracy"])


@pytest.mark.parametrize("n_features", WIDTHS)
def test_bundled_model_accuracy_on_held_out_split(n_features, mnist_test):
    images, labels = mnist_test
    model = narrow_cnn(n_features)  # pretrained=None loads the bundled weights
    with torch.no_grad():
        predicted = model(images).argmax(1)
    accuracy = int((predicted == labels).sum()) / len(labels)
    assert len(labels) == 1000
    assert accuracy >= 0.97
    assert accuracy == pytest.approx(models.BUNDLED_ACCURACY[f"narrow-mnist-{n_features}"], abs=1e-9)


def test_load_narrow_cnn_plain_state_dict_and_metadata_file(tmp_path):
    model = narrow_cnn(24)
    plain = tmp_path / "plain.pt"
    torch.save(model.state_dict(), plain)
    loaded = load_narrow_cnn(plain)
    assert loaded.n_features == 24
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    again = narrow_cnn(24, pretrained=plain)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))


class _NotWeights:
    """An arbitrary object: weights_only loading must refuse to unpickle it."""

    def __init__(self) -> None:
        self.payload = "anything"


def test_checkpoint_with_arbitrary_objects_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": _NotWeights()}, path)
    with pytest.raises(ValueError, match=r"pickles Python objects \(.*_NotWeights\)") as info:
        load_narrow_cnn(path)
    _never_advises_unsafe_loading(info.value)
    other = tmp_path / "other.pt"
    torch.save({"foo": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="not a qfsel narrow-CNN checkpoint"):
        load_narrow_cnn(other)
    with pytest.raises(FileNotFoundError):
        load_narrow_cnn(tmp_path / "missing.pt")


def test_resolve_layer_lists_valid_names():
    model = narrow_cnn(16, pretrained=False)
    assert resolve_layer(model, "head.bn") is model.head.bn
    with pytest.raises(ValueError) as info:
        resolve_layer(model, "head.bnx")
    assert "head.bn" in str(info.value) and "backbone.conv1" in str(info.value)


def test_mnist_preprocess():
    digit = np.zeros((56, 56), dtype=np.uint8)
    digit[10:46, 24:32] = 255  # a light "1" on black
    x = mnist_preprocess(digit)
    assert x.shape == (1, 1, 28, 28) and x.dtype == torch.float32
    assert float(x[0, 0, 14, 14]) > 0.9 and float(x[0, 0, 0, 0]) == 0.0
    inverted = mnist_preprocess(255 - digit)  # dark digit on white -> inverted automatically
    assert torch.allclose(inverted, x, atol=1e-6)
    assert torch.allclose(mnist_preprocess(255 - digit, invert=False), 1 - x, atol=1e-6)


@pytest.mark.parametrize(
    ("image", "pattern"),
    [
        (np.full((28, 28), np.nan), "finite"),
        (np.full((28, 28), 1000, dtype=np.uint16), r"8-bit values in \[0, 255\].*\[1000, 1000\]"),
        (np.full((28, 28), -1, dtype=np.int64), r"8-bit values in \[0, 255\]"),
    ],
)
@pytest.mark.parametrize("preprocess", [mnist_preprocess, imagenet_preprocess])
def test_preprocess_refuses_pixels_it_would_misread(preprocess, image, pattern):
    """NaN pixels went through as NaN inputs; a 16-bit image was divided by 255 and clipped to white."""
    with pytest.raises(ValueError, match=pattern):
        preprocess(image)


def test_imagenet_preprocess_geometry_and_normalisation():
    image = np.zeros((100, 300, 3), dtype=np.uint8)
    image[:, :150] = 255  # left half white
    x = imagenet_preprocess(image)
    assert x.shape == (1, 3, 224, 224) and x.dtype == torch.float32
    # (255 - 127) / 128 and (0 - 127) / 128 on the 0-255 scale
    assert float(x[0, 0, 100, 5]) == pytest.approx(128 / 128, abs=0.01)
    assert float(x[0, 0, 100, 218]) == pytest.approx(-127 / 128, abs=0.01)
    rgb = imagenet_resize(image, center_crop=True)
    assert rgb.shape == (224, 224, 3)
    # the central crop of a 100x300 image keeps the middle: left third of the crop is white
    assert rgb[100, 5].min() > 0.99 and rgb[100, 218].max() < 0.01
    with pytest.raises(ValueError, match="image"):
        imagenet_preprocess(np.zeros((4, 4, 2)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        imagenet_preprocess(np.full((4, 4, 3), 2.0))


def test_imagenet_classes():
    names = imagenet_classes()
    assert len(names) == 1000
    assert names[285] == "Egyptian cat" and names[281] == "tabby" and names[0] == "tench"
    assert names[999] == "toilet tissue"


@pytest.fixture(scope="module")
def lite0():
    return efficientnet_lite0()


def test_efficientnet_lite0_labels_the_cat(lite0):
    photo = sample_photos(["chelsea"])["chelsea"]
    with torch.no_grad():
        probs = lite0(imagenet_preprocess(photo)).softmax(1)[0]
    top = int(probs.argmax())
    assert imagenet_classes()[top] == "Egyptian cat"
    assert float(probs[top]) > 0.5
    # the head activation is a separate module, and the explained maps are 1280 x 7 x 7
    seen = []
    handle = resolve_layer(lite0, models.EFFICIENTNET_LITE0_LAYER).register_forward_hook(
        lambda m, i, o: seen.append(o.shape)
    )
    try:
        with torch.no_grad():
            lite0(torch.zeros(1, 3, 224, 224))
    finally:
        handle.remove()
    assert seen == [torch.Size([1, 1280, 7, 7])]


def test_efficientnet_head_act_does_not_change_outputs(lite0):
    """Our subclass only gives the last ReLU6 its own module: outputs equal upstream's."""
    from efficientnet_lite_pytorch import EfficientNet

    upstream = EfficientNet.from_name("efficientnet-lite0")
    upstream.load_state_dict(lite0.state_dict())
    upstream.eval()
    x = torch.rand(2, 3, 224, 224) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(upstream(x), lite0(x), atol=1e-5)


def test_load_model_names():
    bundle = load_model("narrow-mnist-32")
    assert bundle.default_layer == "head.bn" and bundle.class_names[3] == "3"
    assert bundle.preprocess(np.zeros((28, 28), dtype=np.uint8)).shape == (1, 1, 28, 28)
    with pytest.raises(ValueError, match="narrow-mnist-16"):
        load_model("narrow-mnist-17")
    with pytest.raises(ValueError, match="efficientnet-lite0"):
        load_model("resnet18")


def test_training_is_deterministic_on_cpu():
    from qfsel.train import train_narrow_mnist

    quick = {"epochs": 1, "backbone_epochs": 1, "log": False, "train_limit": 256}
    threads = torch.get_num_threads()
    a, acc_a = train_narrow_mnist(4, seed=3, **quick)
    b, acc_b = train_narrow_mnist(4, seed=3, **quick)
    assert torch.get_num_threads() == threads  # global settings restored
    assert acc_a == acc_b
    for (name, ta), (_, tb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(ta, tb), name
    c, _ = train_narrow_mnist(4, seed=4, **quick)
    assert not torch.equal(a.head.conv.weight, c.head.conv.weight)


def _never_advises_unsafe_loading(error: BaseException) -> None:
    """Neither the message nor anything chained to it suggests weights_only=False."""
    seen = error
    while seen is not None:
        text = str(seen)
        assert "weights_only=False" not in text and "weights_only` set to `False" not in text, text
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"", "not a PyTorch weights file"),
        (bytes(range(256)) * 3, r"not a PyTorch weights file .*starts with bytes"),
        (b"PK\x03\x04" + b"\x00" * 40, "not a PyTorch weights file"),
    ],
)
def test_garbage_weights_files_get_a_clear_error(tmp_path, content, pattern):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    for load in (load_narrow_cnn, lambda p: narrow_cnn(16, pretrained=p), models.load_model):
        with pytest.raises(ValueError, match=pattern) as info:
            load(path)
        _never_advises_unsafe_loading(info.value)


def test_checkpoint_of_another_shape_is_a_value_error(tmp_path):
    path = tmp_path / "n24.pt"
    torch.save(narrow_cnn(24).state_dict(), path)
    with pytest.raises(ValueError, match="do not fit"):
        narrow_cnn(16, pretrained=path)


def test_input_notes_flag_conversions_far_from_the_training_images():
    rng = np.random.default_rng(0)
    assert models.mnist_input_notes(np.zeros((28, 28), np.uint8)) == []
    assert models.mnist_input_notes(np.zeros((100, 100, 3))) == []  # grey in RGB, 3.6-fold: close enough
    assert models.mnist_input_notes(rng.random((40, 40, 3))) == ["a colour image is turned grey"]
    assert models.mnist_input_notes(np.zeros((28, 56))) == ["its 2.0:1 aspect ratio is squashed to a square"]
    assert models.mnist_input_notes(np.zeros((6, 6))) == ["a 6x6 image is enlarged 5-fold to 28x28"]
    assert models.imagenet_input_notes(np.zeros((224, 300, 3))) == []
    assert models.imagenet_input_notes(np.zeros((100, 500))) == ["its 5.0:1 aspect ratio is squashed to a square"]
    bundle = models.load_model("narrow-mnist-16")
    assert bundle.conversion_warning(np.zeros((28, 28))) is None
    assert "far from what narrow-mnist-16 was trained on (28x28 grey MNIST digits)" in bundle.conversion_warning(
        rng.random((28, 28, 3))
    )
    assert bundle.default_candidates is None


def test_bundled_model_repr_is_short():
    text = repr(models.load_model("narrow-mnist-16"))
    assert text == (
        "BundledModel(name='narrow-mnist-16', model=NarrowCNN, default_layer='head.bn', classes=10, "
        "accuracy=0.986, default_candidates=None)"
    )


def test_backbone_that_cannot_take_in_shape_names_it():
    backbone = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    with pytest.raises(ValueError, match=r"probe input of shape \(1, 1, 8, 8\) built from in_shape=\(1, 8, 8\).*3 channels"):
        narrow_cnn(4, backbone, num_classes=2, in_shape=(1, 8, 8))
    assert narrow_cnn(4, backbone, num_classes=2, in_shape=(3, 8, 8)).feature_size == (8, 8)
