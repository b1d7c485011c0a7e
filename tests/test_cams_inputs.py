"""The explanation API on inputs the other tests do not cover: what a user coming from
pytorch-grad-cam passes (tensor class labels, concurrent calls, GPU or autograd tensors to the
overlay), and the failures that must name their cause."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from torch import nn

from tests._tiny_models import GapNet, TokenNet, images, no_hooks_left, tokens_to_maps
from qfsel import GradCAM, QFSCAM, show_cam_on_image
from qfsel.capture import capture
from qfsel.targets import (
    BinaryClassifierOutputTarget,
    ClassifierOutputSoftmaxTarget,
    ClassifierOutputTarget,
    RegressionOutputTarget,
    normalize_targets,
)


# ---------------------------------------------------------------- reshape_transform failures
def test_a_failing_reshape_transform_is_named_not_blamed_on_the_input():
    model, x = TokenNet(), images(2)
    wrong = lambda t: t.reshape(t.shape[0], 5, 5, -1)  # noqa: E731  (36 tokens are not 5 x 5)
    with pytest.raises(ValueError, match=r"reshape_transform.*'tokens'.*\(2, 36, 4\)") as info:
        GradCAM(model, ["tokens"], reshape_transform=wrong)(x, 0)
    assert "channel count" not in str(info.value)  # not "check the input"
    assert no_hooks_left(model)
    # The same transform, right, works.
    assert GradCAM(model, ["tokens"], reshape_transform=tokens_to_maps(6))(x, 0).shape == (2, 6, 6)


# ---------------------------------------------------------------- targets as torch / numpy scalars
def test_zero_dim_integer_tensors_are_class_indices():
    model, x = GapNet(classes=4), images(3)
    labels = torch.tensor([0, 2, 3])
    cases = [
        (list(labels), [0, 2, 3]),
        ([ClassifierOutputTarget(t) for t in labels], [0, 2, 3]),
        (list(labels.numpy()), [0, 2, 3]),
        ([np.array(2), torch.tensor(1, dtype=torch.int32), 3], [2, 1, 3]),
    ]
    for targets, classes in cases:
        got = capture(model, x, ["act"], targets)
        want = capture(model, x, ["act"], classes)
        assert torch.equal(got.layers[0].gradients, want.layers[0].gradients)
        assert torch.equal(got.scores, want.scores)
    # One 0-d tensor is one class for every sample, like an int.
    assert torch.equal(capture(model, x, ["act"], torch.tensor(2)).scores, capture(model, x, ["act"], 2).scores)
    assert ClassifierOutputTarget(torch.tensor(3)).category == 3 and type(ClassifierOutputTarget(np.int8(3)).category) is int
    assert ClassifierOutputSoftmaxTarget(torch.tensor(1)).category == 1
    assert BinaryClassifierOutputTarget(torch.tensor(1)).category == 1
    assert RegressionOutputTarget(torch.tensor(1)).index == 1


@pytest.mark.parametrize(
    "category, err, pattern",
    [
        (torch.tensor(1.0), TypeError, "category must be a non-negative int.*float32"),
        (torch.tensor(True), TypeError, "category must be a non-negative int"),
        (torch.tensor([1]), TypeError, "category must be a non-negative int.*shape \\(1,\\)"),
        (torch.tensor(-1), ValueError, "got -1"),
        (np.array(1.5), TypeError, "category must be a non-negative int"),
    ],
)
def test_tensor_categories_that_are_not_one_class_index_are_refused(category, err, pattern):
    with pytest.raises(err, match=pattern):
        ClassifierOutputTarget(category)


def test_a_target_class_given_instead_of_an_instance_is_named():
    model, x = GapNet(), images(2)
    for targets in (ClassifierOutputTarget, [ClassifierOutputTarget, 1]):
        with pytest.raises(TypeError, match=r"ClassifierOutputTarget is a class.*ClassifierOutputTarget\(3\)"):
            capture(model, x, ["act"], targets)
    with pytest.raises(TypeError, match="targets as an array must be 1-D"):
        normalize_targets(torch.tensor([[1], [2]]), torch.zeros(2, 3))


# ---------------------------------------------------------------- concurrent calls
class _Gate(nn.Module):
    """Identity; the first call from the thread named "first" waits until another pass starts or a timeout."""

    def __init__(self) -> None:
        super().__init__()
        self.inside, self.other = threading.Event(), threading.Event()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if threading.current_thread().name == "first" and not self.inside.is_set():
            self.inside.set()
            self.other.wait(timeout=0.3)
        else:
            self.other.set()
        return x


def _gated_gapnet() -> tuple[nn.Module, _Gate]:
    net = GapNet(classes=4)
    gate = _Gate()
    model = nn.Sequential()
    model.add_module("conv", net.conv)
    model.add_module("act", net.act)
    model.add_module("gate", gate)
    model.add_module("pool", net.pool)
    model.add_module("flat", nn.Flatten())
    model.add_module("fc", net.fc)
    model.add_module("drop", nn.Dropout(0.5))
    return model, gate


def test_two_threads_explaining_one_model_get_correct_results_and_leave_it_in_train_mode():
    model, gate = _gated_gapnet()
    x = images(3)
    model.eval()
    want = GradCAM(model, ["act"])(x, 2)
    gate.inside.clear(), gate.other.clear()
    model.train()
    cam = GradCAM(model, ["act"])
    results: dict[str, object] = {}

    def run() -> None:
        try:
            results[threading.current_thread().name] = cam(x, 2)
        except Exception as err:  # reported by the asserts below
            results[threading.current_thread().name] = err

    first = threading.Thread(target=run, name="first")
    first.start()
    assert gate.inside.wait(timeout=5)
    second = threading.Thread(target=run, name="second")
    second.start()
    first.join(), second.join()
    for name in ("first", "second"):
        assert isinstance(results[name], np.ndarray), results[name]
        np.testing.assert_array_equal(results[name], want)
    assert all(m.training for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())
    assert no_hooks_left(model)


def test_a_plain_forward_in_another_thread_during_a_capture_is_not_hooked():
    model, gate = _gated_gapnet()
    model.eval()
    x = images(3)
    with torch.no_grad():
        plain = model(x)
    gate.inside.clear(), gate.other.clear()
    seen: dict[str, object] = {}

    def explain() -> None:
        try:
            seen["cam"] = GradCAM(model, ["act"])(x, 2)
        except Exception as err:
            seen["cam"] = err

    first = threading.Thread(target=explain, name="first")
    first.start()
    assert gate.inside.wait(timeout=5)
    with torch.no_grad():
        other = model(x)  # this thread: no qfsel hook may fire here (none raises, none records)
    first.join()
    assert torch.equal(other, plain)
    assert isinstance(seen["cam"], np.ndarray), seen["cam"]
    assert no_hooks_left(model)


# ---------------------------------------------------------------- the overlay takes tensors
def test_show_cam_on_image_takes_autograd_and_bfloat16_tensors():
    rng = np.random.default_rng(0)
    img = rng.random((8, 8, 3)).astype(np.float32)
    heat = rng.random((8, 8)).astype(np.float32)
    want = show_cam_on_image(img, heat)
    t = torch.from_numpy(heat)
    np.testing.assert_array_equal(show_cam_on_image(img, t.clone().requires_grad_(True)), want)
    np.testing.assert_array_equal(show_cam_on_image(torch.from_numpy(img).requires_grad_(True), heat), want)
    bf = show_cam_on_image(img, t.to(torch.bfloat16))
    assert bf.shape == (8, 8, 3) and bf.dtype == np.uint8


# ---------------------------------------------------------------- models built under inference_mode
def test_a_model_built_under_inference_mode_is_named_and_left_as_it_was():
    with torch.inference_mode():
        model = GapNet()
    flags = [p.requires_grad for p in model.parameters()]
    with pytest.raises(ValueError, match="inference_mode"):
        GradCAM(model, ["act"])(images(2), 0)
    assert [p.requires_grad for p in model.parameters()] == flags
    assert no_hooks_left(model)
    # The way out the message gives works.
    model.load_state_dict({k: v.clone() for k, v in model.state_dict().items()}, assign=True)
    assert GradCAM(model, ["act"])(images(2), 0).shape == (2, 6, 6)


# ---------------------------------------------------------------- class targets on (B, C, H, W) outputs
def _segmenter() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.Conv2d(5, 3, 1))  # 3 classes per pixel


def test_class_targets_on_a_segmentation_output_use_its_class_axis():
    model, x = _segmenter(), images(2, size=7)  # W = 7 > C = 3: the last axis is not the class axis
    with torch.no_grad():
        out = model(x)
    cap = capture(model, x, ["1"], 2)
    torch.testing.assert_close(cap.scores, out[:, 2].sum(dim=(1, 2)))
    soft = capture(model, x, ["1"], [ClassifierOutputSoftmaxTarget(1)] * 2)
    torch.testing.assert_close(soft.scores, torch.softmax(out, dim=1)[:, 1].sum(dim=(1, 2)))
    with pytest.raises(ValueError, match=r"target class 5 is out of range: the model output has 3 classes.*\(3, 7, 7\)"):
        capture(model, x, ["1"], 5)  # 5 < W: was taken as a column index


def test_a_class_target_on_one_value_per_sample_points_to_the_binary_target():
    model = nn.Sequential(GapNet(classes=1), nn.Flatten(0))  # (B,) logits
    with pytest.raises(TypeError, match=r"BinaryClassifierOutputTarget\(1\)"):
        capture(model, images(2), ["0.act"], 1)


# ---------------------------------------------------------------- explain_all's arguments
def test_explain_all_refuses_explainers_of_another_model_or_layers():
    from qfsel import explain_all
    from qfsel.cams import build_explainers

    model, other, x = GapNet(), GapNet(seed=3), images(2)
    made = build_explainers(model, ["act"], ["gradcam"])
    with pytest.raises(ValueError, match="explainers.*another model"):
        explain_all(other, x, ["act"], explainers=made)  # explained `model`, silently
    with pytest.raises(ValueError, match=r"explainers.*target layers \['act'\].*\['conv'\]"):
        explain_all(model, x, ["conv"], explainers=made)
    # The same model and layers, given as names or modules, are fine.
    for layers in (["act"], "act", model.act, [model.act]):
        assert explain_all(model, x, layers, targets=0, explainers=made)["gradcam"].heatmaps.shape == (2, 6, 6)
    assert explain_all(None, x, None, targets=0, explainers=made)["gradcam"].heatmaps.shape == (2, 6, 6)
    with pytest.raises(TypeError, match=r"QFS-CAM parameters \['beta'\] given with explainers"):
        explain_all(model, x, ["act"], explainers=made, beta=0.2)
    with pytest.raises(TypeError, match="explainers: expected a mapping"):
        explain_all(model, x, ["act"], explainers=[GradCAM(model, ["act"])])
    with pytest.raises(TypeError, match="methods: expected a method name or a sequence of them.*got NoneType"):
        explain_all(model, x, ["act"], methods=None)


def test_from_capture_refuses_a_capture_of_other_layers_or_another_model():
    from tests._tiny_models import TwoLayerNet

    model, x = TwoLayerNet(), images(2, size=9)
    cap = capture(model, x, ["act2"], 0)
    assert GradCAM(model, [model.act2]).from_capture(cap).heatmaps.shape == (2, 9, 9)
    for cam in (GradCAM(model, ["act1"]), GradCAM(model, ["act2", "act1"]), GradCAM(GapNet(), ["act"])):
        with pytest.raises(ValueError, match=r"cap: it holds target layers \['act2'\]"):
            cam.from_capture(cap)
    with pytest.raises(TypeError, match="cap: expected a qfsel.capture.Capture.*Tensor"):
        GradCAM(model, ["act2"]).from_capture(x)
    with pytest.raises(TypeError, match="reshape_transform must be callable"):
        capture(model, x, ["act2"], reshape_transform=3)


def test_show_cam_on_image_takes_pytorch_grad_cams_keywords():
    rng = np.random.default_rng(1)
    img = rng.random((6, 5, 3))
    heat = rng.random((6, 5))
    from matplotlib import colormaps

    colour = colormaps["jet"](heat)[:, :, :3]
    want = np.rint(np.clip(0.7 * img + 0.3 * colour, 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(show_cam_on_image(img, heat, use_rgb=True, image_weight=0.7), want)
    np.testing.assert_array_equal(show_cam_on_image(img, heat, alpha=0.3), want)
    # use_rgb=False: BGR colours over a BGR image, as cv2.applyColorMap gives them.
    bgr = np.rint(np.clip(0.7 * img[:, :, ::-1] + 0.3 * colour[:, :, ::-1], 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(show_cam_on_image(img[:, :, ::-1], heat, use_rgb=False, image_weight=0.7), bgr)
    with pytest.raises(ValueError, match="pass one"):
        show_cam_on_image(img, heat, alpha=0.3, image_weight=0.7)
    with pytest.raises(ValueError, match="image_weight: expected a real number in \\[0, 1\\]"):
        show_cam_on_image(img, heat, image_weight=1.5)
    with pytest.raises(TypeError, match="use_rgb: expected a bool"):
        show_cam_on_image(img, heat, use_rgb="yes")


def test_a_target_layer_that_never_runs_is_explained():
    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.attn = nn.MultiheadAttention(4, 2, batch_first=True)
            self.fc = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            t = self.conv(x).flatten(2).transpose(1, 2)
            return self.fc(self.attn(t, t, t, need_weights=False)[0].mean(dim=1))

    model = Attention()
    with pytest.raises(ValueError, match=r"\['attn.out_proj'\] did not run.*out_proj"):
        capture(model, images(2), ["attn.out_proj"], 0)
    assert no_hooks_left(model)


# ---------------------------------------------------------------- batch statistics in eval mode
class _BatchStatNet(nn.Module):
    """conv -> ReLU ("act") -> BatchNorm2d(track_running_stats=False): batch statistics even in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.bn = nn.BatchNorm2d(4, track_running_stats=False)
        self.fc = nn.Linear(4 * 36, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(self.act(self.conv(x))).flatten(1))


def test_gradients_are_per_sample_when_the_model_mixes_the_batch():
    model, x = _BatchStatNet().eval(), images(3)
    cap = capture(model, x, ["act"], [0, 1, 2])
    # Reference: d score_b / d A_b, the batch held fixed, one sample's score at a time.
    seen = {}

    def keep(module, inputs, output):
        seen["a"] = output
        return output.clone()

    handle = model.act.register_forward_hook(keep)
    out = model(x)
    handle.remove()
    want = torch.stack([torch.autograd.grad(out[b, b], seen["a"], retain_graph=True)[0][b] for b in range(3)])
    torch.testing.assert_close(cap.layers[0].gradients, want)
    torch.testing.assert_close(cap.scores, out.detach()[torch.arange(3), torch.arange(3)])
    with pytest.raises(ValueError, match="ablation relevance.*track_running_stats=False"):
        QFSCAM(model, ["act"], relevance="ablation", sampler="exact")(x, [0, 1, 2])
    # Batch size 1: one backward pass, as before.
    one = capture(model, x[:1], ["act"], [0])
    assert one.layers[0].gradients.shape == (1, 4, 6, 6)
