"""Capture: activations and gradients by hand, one backward per batch, hooks always removed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tests._tiny_models import (
    DictOutputNet,
    GapNet,
    GreyToRGBNet,
    HeadFirstNet,
    PaperNet,
    TokenNet,
    TupleOutputNet,
    images,
    no_hooks_left,
    tokens_to_maps,
)
from qfsel.capture import capture, eval_mode, resolve_target_layers, select_output
from qfsel.targets import ClassifierOutputSoftmaxTarget, ClassifierOutputTarget, normalize_targets


def test_activations_and_gradients_match_hand_formula_gap_head():
    model = GapNet()
    x = images(3)
    cap = capture(model, x, ["act"], targets=[0, 2, 1])
    with torch.no_grad():
        a = model.act(model.conv(x))
    layer = cap.layers[0]
    np.testing.assert_allclose(layer.activations.numpy(), a.numpy(), rtol=0, atol=1e-6)
    w = model.fc.weight.detach().numpy()
    hw = a.shape[2] * a.shape[3]
    for i, c in enumerate([0, 2, 1]):
        expected = np.broadcast_to((w[c] / hw)[:, None, None], a.shape[1:])
        np.testing.assert_allclose(layer.gradients[i].numpy(), expected, rtol=1e-6, atol=1e-8)
    logits = model(x).detach().numpy()
    np.testing.assert_allclose(cap.scores.numpy(), logits[[0, 1, 2], [0, 2, 1]], rtol=1e-6)


def test_inplace_relu_after_target_layer_does_not_corrupt_capture():
    model = GapNet(inplace=True)
    x = images(2)
    cap = capture(model, x, ["conv"], targets=1)
    with torch.no_grad():
        pre = model.conv(x)
    layer = cap.layers[0]
    # Activations are the conv output (negatives included), not the in-place ReLU'd tensor.
    assert (layer.activations < 0).any()
    np.testing.assert_allclose(layer.activations.numpy(), pre.numpy(), atol=1e-6)
    w = model.fc.weight.detach().numpy()[1]
    hw = pre.shape[2] * pre.shape[3]
    expected = (w / hw)[None, :, None, None] * (pre.numpy() > 0)
    np.testing.assert_allclose(layer.gradients.numpy(), expected, rtol=1e-6, atol=1e-8)


def test_batch_capture_equals_one_by_one():
    model = PaperNet()
    x = images(4)
    cap = capture(model, x, ["bn"])
    for i in range(4):
        one = capture(model, x[i : i + 1], ["bn"])
        np.testing.assert_allclose(cap.layers[0].gradients[i].numpy(), one.layers[0].gradients[0].numpy(), atol=1e-6)
        np.testing.assert_allclose(cap.layers[0].activations[i].numpy(), one.layers[0].activations[0].numpy(), atol=1e-6)
        assert cap.predicted[i] == one.predicted[0]


def test_targets_none_explains_predicted_class_and_grads_untouched():
    model = PaperNet()
    x = images(4)
    cap = capture(model, x, ["bn"])
    logits = model.eval()(x).detach()
    assert cap.predicted.tolist() == logits.argmax(1).tolist()
    np.testing.assert_allclose(cap.scores.numpy(), logits.max(1).values.numpy(), rtol=1e-6)
    assert all(p.grad is None for p in model.parameters())


def test_softmax_target_score_and_gradient():
    model = PaperNet()
    x = images(2)
    cap = capture(model, x, ["bn"], targets=[ClassifierOutputSoftmaxTarget(2)] * 2)
    model.eval()
    feats = model.features(x).detach().requires_grad_(True)
    probs = torch.softmax(model.fc(model.flat(feats)), dim=1)[:, 2]
    probs.sum().backward()
    np.testing.assert_allclose(cap.scores.numpy(), probs.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(cap.layers[0].gradients.numpy(), feats.grad.numpy(), rtol=1e-5, atol=1e-8)


def test_training_flags_restored_per_submodule_and_bn_stats_untouched():
    model = PaperNet()
    model.train()
    model.conv.eval()  # a mixed state must come back as it was
    before = model.bn.running_mean.clone()
    capture(model, images(3), ["bn"])
    assert model.training and model.bn.training and not model.conv.training
    torch.testing.assert_close(model.bn.running_mean, before)


def test_hooks_removed_after_exception_in_target():
    model = PaperNet()

    def broken(_out):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        capture(model, images(2), ["bn", "conv"], targets=broken)
    assert no_hooks_left(model)
    model.train()
    with pytest.raises(ValueError):
        capture(model, images(2), ["bn"], targets=[0])  # wrong length
    assert no_hooks_left(model) and model.training


def test_hooks_removed_after_error_inside_forward():
    model = TokenNet()
    with pytest.raises(ValueError, match="reshape_transform"):
        capture(model, images(2), ["tokens"])
    assert no_hooks_left(model)


def test_non_4d_layer_points_to_reshape_transform_and_transform_works():
    model = TokenNet()
    x = images(2)
    with pytest.raises(ValueError, match=r"'tokens'.*\(2, 36, 4\).*reshape_transform"):
        capture(model, x, ["tokens"])
    cap = capture(model, x, ["tokens"], reshape_transform=tokens_to_maps(6))
    ref = capture(model, x, ["act"])  # tokens are a reshaped view of act
    np.testing.assert_allclose(cap.layers[0].activations.numpy(), ref.layers[0].activations.numpy(), atol=1e-6)
    np.testing.assert_allclose(cap.layers[0].gradients.numpy(), ref.layers[0].gradients.numpy(), atol=1e-7)


def test_unknown_layer_name_lists_valid_names():
    model = PaperNet()
    with pytest.raises(ValueError, match=r"'layer4' is not a submodule.*'conv'.*'bn'.*named modules in total"):
        capture(model, images(1), ["layer4"])
    with pytest.raises(ValueError, match="not part of the model"):
        resolve_target_layers(model, [nn.Conv2d(3, 3, 1)])
    with pytest.raises(TypeError, match=r"target_layers\[0\]"):
        resolve_target_layers(model, [3])
    with pytest.raises(ValueError, match="non-empty"):
        resolve_target_layers(model, [])
    assert resolve_target_layers(model, model.bn) == [("bn", model.bn)]


@pytest.mark.parametrize(
    ("x", "err", "pattern"),
    [
        (torch.rand(3, 6, 6), ValueError, r"4-D.*\(3, 6, 6\).*unsqueeze"),
        (torch.rand(2, 1, 6, 6), ValueError, r"in module 'conv' \(Conv2d: 3, 8.*given .*\(2, 1, 6, 6\).*3 channels, but got 1"),
        (torch.zeros(2, 3, 6, 6, dtype=torch.long), TypeError, "floating"),
        (np.zeros((2, 3, 6, 6)), TypeError, "torch.Tensor"),
        (torch.rand(2, 3, 7, 7), ValueError, "forward pass failed"),  # flatten head expects 6x6
    ],
)
def test_bad_inputs(x, err, pattern):
    model = PaperNet()
    with pytest.raises(err, match=pattern):
        capture(model, x, ["bn"])
    assert no_hooks_left(model)


def test_nan_activations_name_the_sample():
    model = PaperNet()
    x = images(3)
    x[2, 0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="sample index 2"):
        capture(model, x, ["bn"])
    assert no_hooks_left(model)


def test_shared_module_called_twice_is_refused():
    relu = nn.ReLU()
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), relu, nn.Conv2d(4, 4, 1), relu, nn.Flatten(), nn.Linear(144, 2))
    with pytest.raises(ValueError, match="more than once"):
        capture(model, images(1), ["1"])
    assert no_hooks_left(model)


def test_target_must_return_scalar():
    model = PaperNet()
    with pytest.raises(TypeError, match=r"targets\[0\].*scalar"):
        capture(model, images(1), ["bn"], targets=lambda out: out)


@pytest.mark.parametrize(
    "target",
    [
        lambda out: out[0].detach(),  # detached
        lambda out: torch.tensor(1.0),  # a new tensor
        lambda out: out.argmax(),  # an integer score
    ],
)
def test_target_without_gradient_is_named(target):
    """Was a bare StopIteration from deep inside capture."""
    model = PaperNet()
    with pytest.raises(ValueError, match=r"targets\[0\].*not differentiable"):
        capture(model, images(2), ["bn"], targets=target)
    assert no_hooks_left(model)


def test_model_forward_under_no_grad_is_reported():
    """Was silently all-zero gradients (flat maps)."""

    class NoGrad(PaperNet):
        def forward(self, x):
            with torch.no_grad():
                return super().forward(x)

    with pytest.raises(ValueError, match="not differentiable.*no_grad"):
        capture(NoGrad(), images(2), ["bn"])


def test_non_finite_target_score_names_the_sample():
    """A NaN logit was explained silently (gradients stayed finite)."""
    model = PaperNet()
    with pytest.raises(ValueError, match=r"NaN or inf for sample index 1 \(all: \[1\]\)"):
        capture(model, images(2), ["bn"], targets=[0, lambda out: out[0] + float("nan")])
    assert no_hooks_left(model)


def test_capture_inside_no_grad_and_inference_mode_equals_plain():
    """Under torch.inference_mode() the gradients were silently zero (flat maps), and an
    inference tensor as input raised torch's 'Setting requires_grad=True on inference tensor'."""
    model, x = PaperNet(), images(2)
    plain = capture(model, x, ["bn"]).layers[0].gradients
    with torch.no_grad():
        no_grad = capture(model, x, ["bn"]).layers[0].gradients
    with torch.inference_mode():
        inside = capture(model, x, ["bn"]).layers[0].gradients
        x_inf = x.clone()
    made_inside = capture(model, x_inf, ["bn"]).layers[0].gradients
    assert plain.abs().sum() > 0
    for g in (no_grad, inside, made_inside):
        torch.testing.assert_close(g, plain)


def test_reshape_transform_that_mixes_the_batch_is_refused():
    """Two images came back as one heatmap, silently."""
    model = TokenNet()
    pattern = r"'tokens' gives feature maps of shape \(1, 4, 6, 12\) for a batch of 2.*reshape"
    with pytest.raises(ValueError, match=pattern):
        capture(model, images(2), ["tokens"], targets=0,
                reshape_transform=lambda t: t.transpose(1, 2).reshape(1, t.shape[2], 6, -1))
    assert no_hooks_left(model)


def test_forward_failure_names_dtypes_and_devices():
    pattern = r"forward pass failed.*torch.float32 on cpu; the model's parameters: torch.float64"
    with pytest.raises(ValueError, match=pattern):
        capture(PaperNet().double(), images(2), ["bn"])


def test_layer_given_twice_is_named():
    """Was reported as 'called more than once in one forward pass (a shared module)'."""
    model = PaperNet()
    with pytest.raises(ValueError, match=r"target_layers\[1\] \('bn'\) repeats target_layers\[0\]"):
        capture(model, images(1), ["bn", model.bn])
    assert no_hooks_left(model)


def test_eval_mode_restores_on_error():
    model = PaperNet().train()
    with pytest.raises(KeyError):
        with eval_mode(model):
            assert not model.training
            raise KeyError("x")
    assert model.training


def test_normalize_targets_forms():
    out = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 1.0]])
    assert normalize_targets(None, out) == [ClassifierOutputTarget(1), ClassifierOutputTarget(0)]
    assert normalize_targets(2, out) == [ClassifierOutputTarget(2)] * 2
    assert normalize_targets(np.array([0, 1]), out) == [ClassifierOutputTarget(0), ClassifierOutputTarget(1)]
    assert normalize_targets(torch.tensor([2, 2]), out) == [ClassifierOutputTarget(2)] * 2
    fn = ClassifierOutputSoftmaxTarget(0)
    assert normalize_targets(fn, out) == [fn, fn]
    assert normalize_targets([1, fn], out) == [ClassifierOutputTarget(1), fn]
    with pytest.raises(ValueError, match="one entry per sample"):
        normalize_targets([1], out)
    with pytest.raises(TypeError, match=r"targets\[1\]"):
        normalize_targets([1, "a"], out)
    with pytest.raises(ValueError, match="out of range"):
        ClassifierOutputTarget(5)(out[0])
    with pytest.raises(ValueError, match="non-negative"):
        ClassifierOutputTarget(-1)
    with pytest.raises(ValueError, match=r"\(B, C\)"):
        normalize_targets(None, torch.zeros(2, 3, 4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_capture_on_cuda_matches_cpu():
    model = PaperNet()
    x = images(3)
    cpu = capture(model, x, ["bn"])
    gpu = capture(model.cuda(), x.cuda(), ["bn"])
    assert gpu.layers[0].gradients.is_cuda
    np.testing.assert_allclose(gpu.layers[0].gradients.cpu().numpy(), cpu.layers[0].gradients.numpy(), atol=1e-5)


def test_model_defining_head_before_stem_is_explained():
    # The first *registered* Conv2d takes 8 channels, the first one to run takes 3.
    model = HeadFirstNet()
    x = images(2, 6)
    cap = capture(model, x, ["act"])
    assert tuple(cap.layers[0].activations.shape) == (2, 4, 6, 6)
    torch.testing.assert_close(cap.output, model(x).detach())


def test_model_repeating_a_grey_channel_is_explained():
    model = GreyToRGBNet()
    grey = images(2, 6)[:, :1]
    cap = capture(model, grey, ["act"])
    ref = capture(GapNet(), grey.expand(-1, 3, -1, -1).contiguous(), ["act"])
    torch.testing.assert_close(cap.layers[0].gradients, ref.layers[0].gradients)
    torch.testing.assert_close(cap.scores, ref.scores)


def test_forward_failure_names_the_innermost_module_and_leaves_no_hooks():
    model = HeadFirstNet()
    with pytest.raises(ValueError, match=r"in module 'stem' \(Conv2d: 3, 8.*given a torch.float32 tensor of shape \(2, 1, 6, 6\)"):
        capture(model, torch.rand(2, 1, 6, 6), ["act"])
    assert no_hooks_left(model)
    assert model.training  # flags restored after the locating re-run too


@pytest.mark.parametrize(
    ("model", "selector"),
    [
        (DictOutputNet(), "logits"),
        (DictOutputNet(), lambda out: out["logits"]),
        (DictOutputNet(), 1),  # position among the dict's values
        (TupleOutputNet(), 0),
        (TupleOutputNet(), -2),
    ],
)
def test_output_selector_equals_the_plain_tensor_model(model, selector):
    x = images(3, 6)
    cap = capture(model, x, ["act"], output_selector=selector)
    ref = capture(GapNet(), x, ["act"])
    torch.testing.assert_close(cap.output, ref.output)
    torch.testing.assert_close(cap.layers[0].gradients, ref.layers[0].gradients)
    assert cap.predicted.tolist() == ref.predicted.tolist()


def test_attribute_selector_like_hugging_face_outputs():
    class Out:  # an object with a .logits attribute, as transformers' ModelOutput
        def __init__(self, logits):
            self.logits = logits

    logits = torch.zeros(2, 3)
    assert select_output(Out(logits), "logits") is logits


@pytest.mark.parametrize(
    ("model", "selector", "err", "pattern"),
    [
        (DictOutputNet(), None, TypeError, r"dict with keys \['features', 'logits'\].*output_selector='logits'"),
        (TupleOutputNet(), None, TypeError, r"tuple of 2 items.*output_selector=0"),
        (DictOutputNet(), "scores", ValueError, r"output_selector='scores'.*keys \['features', 'logits'\]"),
        (TupleOutputNet(), 2, ValueError, "out of range"),
        (TupleOutputNet(), lambda out: out[0].tolist(), TypeError, "gave a list, not a tensor"),
        (GapNet(), 1.5, TypeError, "output_selector: expected None, a key"),
        (GapNet(), True, TypeError, "output_selector: expected None, a key"),
    ],
)
def test_bad_output_selector(model, selector, err, pattern):
    with pytest.raises(err, match=pattern):
        capture(model, images(2, 6), ["act"], output_selector=selector)
    assert no_hooks_left(model)


def test_pytorch_grad_cam_targets_importable_from_qfsel():
    import qfsel
    from qfsel import targets as t

    for name in ("ClassifierOutputTarget", "ClassifierOutputSoftmaxTarget", "BinaryClassifierOutputTarget",
                 "RegressionOutputTarget"):
        assert getattr(qfsel, name) is getattr(t, name) and name in qfsel.__all__


class OneLogitNet(nn.Module):
    """conv -> ReLU ("act") -> GAP -> Linear(K -> 1): a binary classifier or a regressor, (B, 1)."""

    def __init__(self):
        super().__init__()
        self.base = GapNet(k=4, classes=1)

    def forward(self, x):
        return self.base(x)


def test_binary_and_regression_targets_score_and_gradient():
    from qfsel.targets import BinaryClassifierOutputTarget, RegressionOutputTarget

    model, x = OneLogitNet(), images(3)
    logit = model(x)[:, 0].detach()
    w = model.base.fc.weight[0].detach()
    pos = capture(model, x, ["base.act"], targets=BinaryClassifierOutputTarget(1))
    neg = capture(model, x, ["base.act"], targets=BinaryClassifierOutputTarget(0))
    reg = capture(model, x, ["base.act"], targets=RegressionOutputTarget())
    torch.testing.assert_close(pos.scores, logit)
    torch.testing.assert_close(neg.scores, -logit)
    torch.testing.assert_close(reg.scores, logit)
    # d logit / dA_kij = w_k / (H W), the sign flipped for class 0
    g = w[None, :, None, None].expand(3, 4, 6, 6) / 36
    torch.testing.assert_close(pos.layers[0].gradients, g)
    torch.testing.assert_close(neg.layers[0].gradients, -g)
    three = GapNet(classes=3)
    out = three(x)
    cap = capture(three, x, ["act"], targets=RegressionOutputTarget(2))
    torch.testing.assert_close(cap.scores, out[:, 2].detach())


def test_binary_and_regression_targets_refuse_bad_use():
    from qfsel.targets import BinaryClassifierOutputTarget, RegressionOutputTarget

    with pytest.raises(ValueError, match="0 or 1"):
        BinaryClassifierOutputTarget(2)
    with pytest.raises(TypeError, match="category"):
        BinaryClassifierOutputTarget(1.0)
    with pytest.raises(ValueError, match=r"one logit per sample.*shape \(3,\).*ClassifierOutputTarget"):
        BinaryClassifierOutputTarget(1)(torch.zeros(3))
    with pytest.raises(ValueError, match="one value per sample"):
        RegressionOutputTarget()(torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"RegressionOutputTarget\(5\): out of range"):
        RegressionOutputTarget(5)(torch.zeros(3))
    with pytest.raises(TypeError, match="index"):
        RegressionOutputTarget("a")
    assert repr(RegressionOutputTarget()) == "RegressionOutputTarget()"
    assert repr(BinaryClassifierOutputTarget(0)) == "BinaryClassifierOutputTarget(0)"


def test_capture_reprs_are_short():
    cap = capture(PaperNet(), images(12), ["bn"])
    text = repr(cap)
    assert text.startswith("Capture(input=(12, 3, 6, 6) on cpu, layers=['bn'], output=(12, 3), predicted=[")
    assert text.endswith(", ...])") and "tensor" not in text
    assert repr(cap.layers[0]) == "LayerCapture(name='bn', module=BatchNorm2d, activations=(12, 8, 6, 6) float32 on cpu)"


# -- the graph starts at the target layers (issue 9: qfsel's GradCAM as fast as torchcam's) ------


class SkipNet(nn.Module):
    """stem -> "a" (ReLU) -> "b" (conv) -> a + b -> GAP -> Linear, and a side branch "side" from
    the stem: d score / d a flows directly and through "b"; "side" is parallel to both."""

    def __init__(self, seed: int = 3) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.a = nn.ReLU()
        self.b = nn.Conv2d(4, 4, 3, padding=1)
        self.side = nn.Conv2d(4, 4, 1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        a = self.a(s)
        h = a + self.b(a)
        return self.fc(torch.cat([h.mean(dim=(2, 3)), torch.tanh(self.side(s)).mean(dim=(2, 3))], dim=1))


def _reference_capture(model, x, names, transform=None):
    """The capture as it was before issue 9's speed-up: the input requires grad, the parameters
    keep their flags, so autograd records the whole network; one autograd.grad call."""
    mods = dict(model.named_modules())
    kept = {}

    def keep(name):
        def hook(module, inputs, output):
            kept[name] = output
            return output.clone()

        return hook

    handles = [mods[n].register_forward_hook(keep(n)) for n in names]
    try:
        with eval_mode(model):
            xg = x.detach().clone().requires_grad_(True)
            out = model(xg)
            score = torch.stack([out[i, int(c)] for i, c in enumerate(out.argmax(1))]).sum()
            grads = torch.autograd.grad(score, [kept[n] for n in names])
    finally:
        for h in handles:
            h.remove()
    t = transform or (lambda v: v)
    return [t(kept[n].detach()) for n in names], [t(g) for g in grads]


def _frozen(model, names=None):
    for n, p in model.named_parameters():
        if names is None or n.split(".")[0] in names:
            p.requires_grad_(False)
    return model


@pytest.mark.parametrize(
    "make, names, transform",
    [
        (PaperNet, ["bn"], None),
        (lambda: _frozen(PaperNet()), ["bn"], None),
        (lambda: _frozen(PaperNet(), {"conv"}), ["bn"], None),  # a frozen backbone, as NarrowCNN's
        (lambda: GapNet(inplace=True), ["conv"], None),
        (SkipNet, ["b", "a", "side"], None),
        (lambda: _frozen(SkipNet()), ["a", "b"], None),
        (TokenNet, ["tokens"], tokens_to_maps(6)),
    ],
    ids=["paper", "paper-frozen", "paper-frozen-backbone", "inplace-relu", "skip-3-layers", "skip-frozen",
         "tokens"],
)
@pytest.mark.parametrize("channels_last", [False, None], ids=["own-layout", "channels-last"])
def test_gradients_equal_the_whole_graph_capture(make, names, transform, channels_last):
    model, x = make(), images(5)
    flags = [p.requires_grad for p in model.parameters()]
    acts, grads = _reference_capture(model, x, names, transform)
    cap = capture(model, x, names, reshape_transform=transform, channels_last=channels_last)
    for layer, a, g in zip(cap.layers, acts, grads):
        assert g.abs().sum() > 0
        if channels_last is False:  # the same computation: the same bits
            torch.testing.assert_close(layer.activations, a, rtol=0, atol=0)
            torch.testing.assert_close(layer.gradients, g, rtol=1e-6, atol=1e-7)
        else:  # convolutions in another layout: the same values to float rounding
            torch.testing.assert_close(layer.activations, a, rtol=0, atol=1e-6 * float(a.abs().max()))
            torch.testing.assert_close(layer.gradients, g, rtol=0, atol=1e-6 * float(g.abs().max()))
    assert [p.requires_grad for p in model.parameters()] == flags  # restored
    assert all(p.grad is None for p in model.parameters())
    assert no_hooks_left(model)


def test_one_forward_one_backward_and_no_graph_before_the_first_target_layer(monkeypatch):
    model, x = SkipNet(), images(4)
    forwards, backwards, recorded = [], [], []
    model.register_forward_pre_hook(lambda m, i: forwards.append(1))
    model.stem.register_forward_hook(lambda m, i, o: recorded.append(o.requires_grad))
    real_grad, real_backward = torch.autograd.grad, torch.autograd.backward
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **kw: backwards.append(1) or real_grad(*a, **kw))
    monkeypatch.setattr(torch.autograd, "backward", lambda *a, **kw: backwards.append(1) or real_backward(*a, **kw))
    x.requires_grad_(False)
    capture(model, x, ["b", "a"])
    # the model's first channels-last pass is checked by one forward pass without gradients
    assert len(forwards) == 2 and len(backwards) == 1
    forwards.clear(), backwards.clear(), recorded.clear()
    cap = capture(model, x, ["b", "a"])
    assert len(forwards) == 1 and len(backwards) == 1
    assert recorded == [False]  # the stem runs before any target layer: nothing of it is recorded
    assert not x.requires_grad and x.grad is None
    assert all(p.requires_grad for p in model.parameters()) and all(p.grad is None for p in model.parameters())
    assert cap.layers[0].gradients.abs().sum() > 0


def test_identity_first_layer_and_an_error_leave_input_and_flags_alone():
    model = nn.Sequential(nn.Identity(), nn.Conv2d(3, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(72, 2))
    x = images(2)
    cap = capture(model, x, ["0"])  # its output is the input itself
    torch.testing.assert_close(cap.layers[0].activations, x, rtol=0, atol=0)
    assert not x.requires_grad and cap.layers[0].gradients.abs().sum() > 0

    def broken(_out):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        capture(model, x, ["2"], targets=broken)
    assert all(p.requires_grad for p in model.parameters()) and no_hooks_left(model)


def test_class_targets_in_one_gather_equal_callables():
    model, x = PaperNet(), images(6)
    classes = [0, 2, 1, 1, 0, 2]
    fast = capture(model, x, ["bn"], targets=classes)
    slow = capture(model, x, ["bn"], targets=[lambda o, c=c: o[c] for c in classes])
    torch.testing.assert_close(fast.scores, slow.scores, rtol=0, atol=0)
    torch.testing.assert_close(fast.layers[0].gradients, slow.layers[0].gradients, rtol=0, atol=0)
    with pytest.raises(ValueError, match="target class 7 is out of range"):
        capture(model, x, ["bn"], targets=[0, 0, 0, 0, 0, 7])


def test_targets_none_equals_the_predicted_classes_given_explicitly():
    """The targets=None fast path (one argmax for targets, scores and predicted) gives what
    the predicted classes passed as ints, and as callables, give."""
    model, x = PaperNet(), images(7)
    fast = capture(model, x, ["bn"])
    classes = fast.predicted.tolist()
    assert len(set(classes)) > 1
    for given in (classes, [ClassifierOutputTarget(c) for c in classes]):
        slow = capture(model, x, ["bn"], targets=given)
        assert torch.equal(fast.scores, slow.scores) and torch.equal(fast.predicted, slow.predicted)
        assert torch.equal(fast.layers[0].gradients, slow.layers[0].gradients)
        assert torch.equal(fast.layers[0].activations, slow.layers[0].activations)
    assert list(fast.targets) == [ClassifierOutputTarget(c) for c in classes]
    assert list(fast.targets) == normalize_targets(None, fast.output)
    assert all(type(t) is ClassifierOutputTarget and t.category == c for t, c in zip(fast.targets, classes))
