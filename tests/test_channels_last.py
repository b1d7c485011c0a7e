"""The channels-last layout of the capture pass (capture's ``channels_last``; CPU default)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from qfsel import GradCAM, GradCAMPlusPlus, QFSCAM, explain_all
from qfsel.capture import _NOT_CHANNELS_LAST, capture
from qfsel.cams import build_explainers

from ._tiny_models import PaperNet

CL = torch.channels_last


def _stack(cin: int, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(cin, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(8, 12, 3, padding=1), nn.ReLU(), nn.Conv2d(12, 6, 1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4),
    ).eval()


class ViewNet(nn.Module):
    """Flattens with ``.view``, which a channels-last tensor cannot do."""

    def __init__(self, cin: int = 3) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(cin, 5, 3, padding=1)
        self.act = nn.ReLU()
        self.fc = nn.Linear(5 * 6 * 6, 3)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        a = self.act(self.conv(x))
        return self.fc(a.view(a.shape[0], -1))


def _layouts_seen(model: nn.Module, module: nn.Module, x: torch.Tensor, **kw) -> list[str]:
    seen: list[str] = []

    def pre(m, inputs):
        t = inputs[0]
        seen.append("contiguous" if t.is_contiguous() else "channels_last" if t.is_contiguous(memory_format=CL) else "other")

    h = module.register_forward_pre_hook(pre)
    try:
        capture(model, x, ["6"], **kw)
    finally:
        h.remove()
    return seen


@pytest.mark.parametrize("cin", [3, 1], ids=["rgb-input", "one-channel-input"])
def test_the_cpu_pass_runs_channels_last_by_default_and_hands_back_contiguous_maps(cin):
    model = _stack(cin)
    x = torch.rand(4, cin, 12, 12, generator=torch.Generator().manual_seed(cin))
    # the model's first channels-last pass is checked against a forward pass in its own layout
    assert _layouts_seen(model, model[4], x) == ["channels_last", "contiguous"]
    assert _layouts_seen(model, model[4], x) == ["channels_last"]
    assert _layouts_seen(model, model[4], x, channels_last=True) == ["channels_last"]
    assert _layouts_seen(model, model[4], x, channels_last=False) == ["contiguous"]
    cap = capture(model, x, ["6"])
    ref = capture(model, x, ["6"], channels_last=False)
    for got, want in ((cap.layers[0].activations, ref.layers[0].activations),
                      (cap.layers[0].gradients, ref.layers[0].gradients)):
        assert got.is_contiguous() and got.abs().sum() > 0
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6 * float(want.abs().max()))
    torch.testing.assert_close(cap.output, ref.output, rtol=1e-5, atol=1e-6)
    assert torch.equal(cap.input, x) and cap.input.is_contiguous()
    # the user's model and input are as they were: parameters contiguous, no hooks left
    assert all(p.is_contiguous() for p in model.parameters()) and x.is_contiguous()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_a_target_conv_on_a_one_channel_input_sees_the_converted_output():
    model = _stack(1)
    x = torch.rand(3, 1, 10, 10, generator=torch.Generator().manual_seed(5))
    cap = capture(model, x, ["0"])  # the Conv2d the layout hook converts is the target layer
    ref = capture(model, x, ["0"], channels_last=False)
    torch.testing.assert_close(cap.layers[0].activations, ref.layers[0].activations, rtol=0, atol=1e-6)
    torch.testing.assert_close(cap.layers[0].gradients, ref.layers[0].gradients, rtol=0,
                               atol=1e-6 * float(ref.layers[0].gradients.abs().max()))


@pytest.mark.parametrize("cls", [GradCAM, GradCAMPlusPlus])
def test_heatmaps_agree_with_the_contiguous_pass(cls):
    model, x = PaperNet(), torch.rand(5, 3, 6, 6, generator=torch.Generator().manual_seed(2))
    got = cls(model, ["bn"])(x)
    want = cls(model, ["bn"], channels_last=False)(x)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_qfs_selections_agree_with_the_contiguous_pass():
    model, x = PaperNet(), torch.rand(6, 3, 6, 6, generator=torch.Generator().manual_seed(3))
    got = QFSCAM(model, ["bn"], k=2, sampler="exact").explain(x)
    want = QFSCAM(model, ["bn"], k=2, sampler="exact", channels_last=False).explain(x)
    assert [s.tolist() for s in got.selected] == [s.tolist() for s in want.selected]
    np.testing.assert_allclose(got.heatmaps, want.heatmaps, rtol=0, atol=1e-5)


def test_a_model_that_fails_channels_last_runs_in_its_own_layout_and_is_remembered():
    model, x = ViewNet(), torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(4))
    want = capture(model, x, ["act"], channels_last=False)
    assert model not in _NOT_CHANNELS_LAST
    model.calls = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default falls back silently
        got = capture(model, x, ["act"])
    assert model.calls == 2 and model in _NOT_CHANNELS_LAST  # the failed pass, then the one that worked
    assert "view" in _NOT_CHANNELS_LAST[model]
    assert torch.equal(got.layers[0].gradients, want.layers[0].gradients)
    model.calls = 0
    capture(model, x, ["act"])
    assert model.calls == 1  # remembered: no second try


def test_channels_last_true_warns_when_the_model_cannot_run_in_it():
    model, x = ViewNet(), torch.rand(2, 3, 6, 6)
    with pytest.warns(RuntimeWarning, match="channels_last=True.*own layout"):
        cap = capture(model, x, ["act"], channels_last=True)
    assert cap.layers[0].gradients.abs().sum() > 0


def test_a_model_that_fails_in_both_layouts_reports_its_error_and_is_not_remembered():
    model = _stack(3)
    with pytest.raises(ValueError, match="forward pass failed|channels|expected input"):
        capture(model, torch.rand(2, 5, 8, 8), ["6"])  # wrong channel count: fails either way
    assert model not in _NOT_CHANNELS_LAST
    x = torch.rand(2, 3, 8, 8)
    assert _layouts_seen(model, model[4], x) == ["channels_last", "contiguous"]


@pytest.mark.parametrize("bad", ["yes", 1, 0.0])
def test_bad_channels_last_is_refused_by_name(bad):
    model = _stack(3)
    with pytest.raises(TypeError, match="channels_last must be None.*True.*False"):
        capture(model, torch.rand(1, 3, 8, 8), ["6"], channels_last=bad)
    with pytest.raises(TypeError, match="channels_last"):
        GradCAM(model, ["6"], channels_last=bad)


def test_explain_all_refuses_explainers_of_different_layouts():
    model, x = _stack(3), torch.rand(2, 3, 8, 8)
    cams = build_explainers(model, ["6"], ("gradcam", "gradcam++"))
    cams["gradcam++"] = GradCAMPlusPlus(model, ["6"], channels_last=False)
    with pytest.raises(ValueError, match="channels_last"):
        explain_all(model, x, ["6"], explainers=cams)
    res = explain_all(model, x, ["6"], methods=("gradcam",), channels_last=False)
    np.testing.assert_array_equal(res["gradcam"].heatmaps, GradCAM(model, ["6"], channels_last=False)(x))


class _Guarded(nn.Module):
    """A model that refuses a non-contiguous input itself (an assert or a ValueError)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind, self.body = kind, _stack(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "assert":
            assert x.is_contiguous(), "expects a contiguous input"
        elif not x.is_contiguous():
            raise ValueError("expects a contiguous input")
        return self.body(x)


@pytest.mark.parametrize("kind", ["assert", "ValueError"])
def test_a_model_that_refuses_a_channels_last_input_runs_in_its_own_layout(kind):
    model, x = _Guarded(kind), torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    want = capture(model, x, ["body.6"], channels_last=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = capture(model, x, ["body.6"])  # it raised AssertionError / ValueError here
    assert "contiguous input" in _NOT_CHANNELS_LAST[model]
    assert torch.equal(got.layers[0].gradients, want.layers[0].gradients)


class _ViewGrad(torch.autograd.Function):
    """Doubles its input; its backward flattens the gradient with ``.view``."""

    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return g.view(g.shape[0], -1).view(g.shape) * 2


class _ViewGradNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(7)
        self.conv, self.act = nn.Conv2d(3, 6, 3, padding=1), nn.ReLU()
        self.conv2, self.fc = nn.Conv2d(6, 4, 3, padding=1), nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv2(_ViewGrad.apply(self.act(self.conv(x)))).mean((2, 3)))


def test_a_backward_pass_that_fails_channels_last_runs_in_its_own_layout():
    model, x = _ViewGradNet(), torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(7))
    want = capture(model, x, ["act"], channels_last=False)
    got = capture(model, x, ["act"])  # the backward's .view raised a bare RuntimeError here
    assert "view" in _NOT_CHANNELS_LAST[model]
    assert torch.equal(got.layers[0].gradients, want.layers[0].gradients)


class _StridedNet(nn.Module):
    """Reads its input's memory as if it were contiguous (``torch.as_strided`` with strides of its
    own): no error in channels-last, other numbers."""

    def __init__(self, cin: int = 3) -> None:
        super().__init__()
        self.body = _stack(cin, seed=8)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        b, c, h, w = x.shape
        return self.body(torch.as_strided(x, (b, c, h, w), (c * h * w, h * w, w, 1)))


def test_a_model_that_reads_its_input_as_contiguous_is_caught_by_the_first_pass_check():
    model, x = _StridedNet(), torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(8))
    want = capture(model, x, ["body.6"], channels_last=False)
    model.calls = 0
    got = capture(model, x, ["body.6"])  # the maps of a scrambled input before
    assert model.calls == 3  # channels-last, the check in the input's own layout, the pass again
    assert "differs" in _NOT_CHANNELS_LAST[model]
    for a, b in ((got.layers[0].activations, want.layers[0].activations),
                 (got.layers[0].gradients, want.layers[0].gradients), (got.output, want.output)):
        assert torch.equal(a, b)
    model.calls = 0
    capture(model, x, ["body.6"])
    assert model.calls == 1
    with pytest.warns(RuntimeWarning, match="channels_last=True.*differs.*own layout"):
        capture(_StridedNet(), x, ["body.6"], channels_last=True)


def test_the_first_pass_check_runs_once_per_model_and_passes_a_model_that_agrees():
    from qfsel.capture import _CHANNELS_LAST_OK

    model, x = _stack(3), torch.rand(2, 3, 8, 8)
    capture(model, x, ["6"])
    assert model in _CHANNELS_LAST_OK and model not in _NOT_CHANNELS_LAST


@pytest.mark.parametrize("cin", [3, 1], ids=["rgb-input", "one-channel-input"])
def test_ablation_relevance_re_runs_the_model_in_the_layout_of_the_capture(cin):
    """The drops are score(capture) - score(re-run): both in one layout, so that they are not
    shifted by the rounding difference of two layouts (and the re-runs are as fast)."""
    seen: list[str] = []

    def pre(m, inputs):
        t = inputs[0]
        seen.append("contiguous" if t.is_contiguous() else "channels_last" if t.is_contiguous(memory_format=CL) else "other")

    x = torch.rand(2, cin, 8, 8, generator=torch.Generator().manual_seed(9))
    sel = {}
    for layout in (None, False):
        model = _stack(cin, seed=9)
        handle = model[6].register_forward_pre_hook(pre)
        seen.clear()
        res = QFSCAM(model, ["5"], relevance="ablation", k=2, sampler="exact", ablation_batch_size=8,
                     channels_last=layout).explain(x)
        handle.remove()
        sel[layout] = [s.tolist() for s in res.selected]
        # the capture, 2 x 12 ablated rows in three re-runs (and, first, the layout check)
        want = ["channels_last", "contiguous"] + ["channels_last"] * 3 if layout is None else ["contiguous"] * 4
        assert seen == want
    assert sel[None] == sel[False]


def test_an_error_that_is_not_the_layouts_is_raised_as_it_is_and_not_remembered():
    model, x = _stack(3), torch.rand(2, 3, 8, 8)
    with pytest.raises(TypeError, match=r"targets\[0\] must map one sample's output to a scalar tensor"):
        capture(model, x, ["6"], targets=[lambda o: o, lambda o: o])  # tried in both layouts
    assert model not in _NOT_CHANNELS_LAST
    assert _layouts_seen(model, model[4], x) == ["channels_last", "contiguous"]
