"""GradCAM, GradCAM++ and QFS-CAM against hand formulas (numpy) and brute force."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch

from tests._tiny_models import (
    DictOutputNet,
    GapNet,
    PaperNet,
    TokenNet,
    TupleOutputNet,
    TwoLayerNet,
    dead_map_gapnet,
    images,
    no_hooks_left,
    tokens_to_maps,
)
from qfsel.capture import capture
from qfsel.cams import QFSCAM, ExplanationResult, GradCAM, GradCAMPlusPlus, QFSelWarning
from qfsel import scoring
from qfsel.targets import ClassifierOutputSoftmaxTarget


# ---------------------------------------------------------------- hand formulas (numpy)
def minmax(m: np.ndarray) -> np.ndarray:
    lo = m.min(axis=(1, 2), keepdims=True)
    hi = m.max(axis=(1, 2), keepdims=True)
    return (m - lo) / (hi - lo)


def bilinear(m: np.ndarray, out: int) -> np.ndarray:
    """PyTorch's bilinear resize (align_corners=False) of (B, n, n) maps, by hand."""
    n = m.shape[1]

    def axis(o):
        src = np.maximum((np.arange(o) + 0.5) * n / o - 0.5, 0.0)
        i0 = np.floor(src).astype(int)
        i1 = np.minimum(i0 + 1, n - 1)
        return i0, i1, src - i0

    r0, r1, wr = axis(out)
    c0, c1, wc = axis(out)
    top = m[:, r0][:, :, c0] * (1 - wc) + m[:, r0][:, :, c1] * wc
    bot = m[:, r1][:, :, c0] * (1 - wc) + m[:, r1][:, :, c1] * wc
    return top * (1 - wr)[None, :, None] + bot * wr[None, :, None]


def paper_tensors(model: PaperNet, x: torch.Tensor, classes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Activations and gradients of PaperNet's "bn" layer, by hand (no hooks)."""
    model.eval()
    with torch.no_grad():
        a = model.features(x).double().numpy()
    w = model.fc.weight.detach().double().numpy().reshape(-1, model.k, model.size, model.size)
    g = np.stack([w[c] for c in classes])
    return a, g


def hand_gradcampp(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    s = a.sum(axis=(2, 3), keepdims=True)
    denom = 2 * g**2 + s * g**3
    alpha = np.where(denom != 0, g**2 / np.where(denom != 0, denom, 1), 0.0)
    return (alpha * np.maximum(g, 0)).sum(axis=(2, 3))


def energy(h, j, beta, x):
    return -beta * h @ x + (1 - beta) * x @ np.triu(j, 1) @ x


def brute_force(h, j, beta, k=None):
    d = len(h)
    best, arg = np.inf, None
    for bits in itertools.product([0, 1], repeat=d):
        x = np.array(bits, dtype=float)
        if k is not None and x.sum() != k:
            continue
        e = energy(h, j, beta, x)
        if e < best - 1e-12:
            best, arg = e, x
    return best, np.flatnonzero(arg)


# ---------------------------------------------------------------- GradCAM / GradCAM++
def test_gradcam_matches_hand_formula():
    model, x, classes = PaperNet(), images(4), [0, 1, 1, 2]
    a, g = paper_tensors(model, x, classes)
    alpha = g.mean(axis=(2, 3))
    raw = np.maximum(np.einsum("bk,bkhw->bhw", alpha, a), 0)
    res = GradCAM(model, ["bn"], upsample=False).explain(x, targets=classes)
    np.testing.assert_allclose(res.weights[0], alpha, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(res.raw_maps[0], raw, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(res.heatmaps, minmax(raw), atol=1e-5)
    assert res.heatmaps.dtype == np.float32 and res.selections is None and res.selected is None
    assert res.method == "gradcam" and res.layer_names == ["bn"]


def test_gradcampp_matches_hand_formula():
    model, x, classes = PaperNet(), images(4), [2, 0, 1, 2]
    a, g = paper_tensors(model, x, classes)
    w = hand_gradcampp(a, g)
    raw = np.maximum(np.einsum("bk,bkhw->bhw", w, a), 0)
    res = GradCAMPlusPlus(model, ["bn"], upsample=False).explain(x, targets=classes)
    np.testing.assert_allclose(res.weights[0], w, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(res.heatmaps, minmax(raw), atol=1e-5)
    # differs from GradCAM on this model (otherwise the test would not tell them apart)
    assert not np.allclose(GradCAM(model, ["bn"]).explain(x, targets=classes).heatmaps, res.heatmaps, atol=1e-3)


@pytest.mark.parametrize("scale", [1e3, 1e4])
def test_gradcampp_half_precision_with_large_gradients_matches_float32(scale):
    """G^3 overflowed float16: wrong weights (0.63 for 1.55) at 1e3, NaN heatmaps at 1e4."""
    x, classes = images(2), [0, 1]

    def target(c):
        return lambda out: out[c] * scale

    full = GradCAMPlusPlus(PaperNet(), ["bn"]).explain(x, targets=[target(c) for c in classes])
    half = GradCAMPlusPlus(PaperNet().half(), ["bn"]).explain(x.half(), targets=[target(c) for c in classes])
    assert np.isfinite(half.heatmaps).all()
    np.testing.assert_allclose(half.weights[0], full.weights[0], rtol=2e-2, atol=1e-2)
    np.testing.assert_allclose(half.heatmaps, full.heatmaps, atol=2e-2)


def test_non_finite_weights_are_refused_not_returned_as_nan():
    class NanWeights(GradCAM):
        def get_cam_weights(self, activations, gradients):
            w = super().get_cam_weights(activations, gradients).clone()
            w[1, 0] = float("nan")
            return w

    model = PaperNet()
    with pytest.raises(ValueError, match=r"'bn' is NaN or inf for sample index 1"):
        NanWeights(model, ["bn"]).explain(images(2))
    assert no_hooks_left(model)


def test_upsampling_is_bilinear_to_input_size():
    model, x = TwoLayerNet(), images(3, size=6)
    cam = GradCAM(model, ["act2"])
    low = GradCAM(model, ["act2"], upsample=False)(x, targets=0)
    high = cam(x, targets=0)
    assert low.shape == (3, 3, 3) and high.shape == (3, 6, 6)
    np.testing.assert_allclose(high, bilinear(low.astype(np.float64), 6), atol=1e-6)
    assert high.min() >= 0 and high.max() <= 1


def test_several_layers_average_normalised_maps():
    model, x = TwoLayerNet(), images(3)
    both = GradCAM(model, ["act1", "act2"]).explain(x, targets=0)
    one = GradCAM(model, ["act1"])(x, targets=0)
    two = GradCAM(model, ["act2"])(x, targets=0)
    np.testing.assert_allclose(both.heatmaps, (one + two) / 2, atol=1e-6)
    assert [r.shape for r in both.raw_maps] == [(3, 6, 6), (3, 3, 3)]
    assert GradCAM(model, ["act1", "act2"], upsample=False)(x).shape == (3, 6, 6)


# ---------------------------------------------------------------- relevance identities
def test_taylor_relevance_is_the_logit_contribution_for_gap_head():
    model, x = GapNet(), images(3)
    cap = capture(model, x, ["act"], targets=[0, 1, 2])
    layer = cap.layers[0]
    t = scoring.taylor_relevance(layer.activations, layer.gradients).double().numpy()
    w = model.fc.weight.detach().double().numpy()
    mean_a = layer.activations.double().mean(dim=(2, 3)).numpy()
    for i, c in enumerate([0, 1, 2]):
        np.testing.assert_allclose(t[i], w[c] * mean_a[i], rtol=1e-5, atol=1e-8)
        assert t[i].sum() + model.fc.bias[c].item() == pytest.approx(cap.scores[i].item(), rel=1e-5)


def test_ablation_relevance_is_the_exact_score_drop():
    model, x, classes = GapNet(), images(3) * 4, [2, 0, 1]
    targets = [ClassifierOutputSoftmaxTarget(c) for c in classes]  # a nonlinear score
    cap = capture(model, x, ["conv"], targets=targets)
    layer = cap.layers[0]
    drops = scoring.ablation_relevance(model, model.conv, x, cap.targets, cap.scores, 6, batch_size=5).numpy()
    with torch.no_grad():
        a = model.conv(x)
        for i, c in enumerate(classes):
            full = torch.softmax(model(x[i : i + 1]), dim=1)[0, c]
            for p in range(6):
                ab = a[i : i + 1].clone()
                ab[0, p] = 0
                s = torch.softmax(model.fc(torch.relu(ab).mean(dim=(2, 3))), dim=1)[0, c]
                assert drops[i, p] == pytest.approx((full - s).item(), abs=1e-6)
    taylor = scoring.taylor_relevance(layer.activations, layer.gradients).numpy()
    # the softmax makes them differ (they coincide for a logit target: see the Taylor test)
    assert np.abs(drops - taylor).max() > 5e-4  # far above float32 noise (~1e-7)
    assert no_hooks_left(model)


# ---------------------------------------------------------------- QFS-CAM
def test_all_selected_equals_gradcam_when_all_weights_positive():
    model, x = GapNet(), images(4)
    with torch.no_grad():
        model.fc.weight.abs_()  # every alpha_p = W_cp / HW > 0
    q = QFSCAM(model, ["act"], beta=1.0, sampler="exact").explain(x)
    g = GradCAM(model, ["act"]).explain(x)
    # every map that is not identically zero (three are dead for these images)
    alive = (model.act(model.conv(x)).flatten(2) != 0).any(dim=2)
    assert int((~alive).sum()) == 3
    assert all(s.tolist() == torch.nonzero(alive[i]).flatten().tolist() for i, s in enumerate(q.selected))
    np.testing.assert_array_equal(q.d, alive.sum(dim=1).numpy())
    np.testing.assert_array_equal(q.heatmaps, g.heatmaps)
    np.testing.assert_array_equal(q.raw_maps[0], g.raw_maps[0])


def test_all_selected_is_gradcam_over_positive_maps():
    model, x, classes = PaperNet(), images(3), [0, 1, 2]
    a, g = paper_tensors(model, x, classes)
    alpha = g.mean(axis=(2, 3))
    raw = np.maximum(np.einsum("bk,bkhw->bhw", np.where(alpha > 0, alpha, 0), a), 0)
    res = QFSCAM(model, ["bn"], beta=1.0, sampler="exact", upsample=False).explain(x, targets=classes)
    assert [s.tolist() for s in res.selected] == [np.flatnonzero(al > 0).tolist() for al in alpha]
    np.testing.assert_allclose(res.heatmaps, minmax(raw), atol=1e-5)


def hand_problem(a, g, redundancy):
    alpha = g.mean(axis=(1, 2))
    idx = np.flatnonzero(alpha > 0)
    h = alpha[idx] / alpha[idx].max()
    flat = a[idx].reshape(len(idx), -1)
    if redundancy == "cosine":
        unit = flat / np.linalg.norm(flat, axis=1, keepdims=True)
        j = np.abs(unit @ unit.T)
    else:
        c = flat * alpha[idx, None]
        gram = c @ c.T
        j = np.abs(gram) / np.diag(gram).max()
    np.fill_diagonal(j, 0)
    return idx, h, j


@pytest.mark.parametrize("redundancy", ["cosine", "contribution"])
@pytest.mark.parametrize(("beta", "k"), [(0.7, None), (0.4, None), (0.7, 3)])
def test_qfscam_selection_is_the_exact_optimum(redundancy, beta, k):
    model, x = PaperNet(k=8), torch.cat([images(2, seed=1), images(2, seed=2) * 2 - 0.5])
    res = QFSCAM(model, ["bn"], beta=beta, k=k, redundancy=redundancy, sampler="exact").explain(x)
    cap = capture(model, x, ["bn"])
    acts = cap.layers[0].activations.double().numpy()
    grads = cap.layers[0].gradients.double().numpy()
    for i in range(len(x)):
        idx, h, j = hand_problem(acts[i], grads[i], redundancy)
        best, sel = brute_force(h, j, beta, k)
        assert res.d[i] == len(idx)
        assert res.selected[i].tolist() == idx[sel].tolist()
        assert res.energies[i] == pytest.approx(best, abs=1e-6)
    assert res.feasible.all()
    if k is not None:
        assert (res.selections[0].num_selected == k).all()


def test_heatmap_is_gradcam_restricted_to_selected_maps():
    model, x, classes = PaperNet(), images(3), [1, 1, 0]
    a, g = paper_tensors(model, x, classes)
    alpha = g.mean(axis=(2, 3))
    res = QFSCAM(model, ["bn"], k=2, sampler="exact", upsample=False).explain(x, targets=classes)
    for i, sel in enumerate(res.selected):
        raw = np.maximum(np.einsum("k,khw->hw", alpha[i, sel], a[i, sel]), 0)
        np.testing.assert_allclose(res.raw_maps[0][i], raw, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(res.heatmaps[i], minmax(raw[None])[0], atol=1e-5)


def test_representative_selection_is_the_least_squares_optimum():
    model, x, k = PaperNet(k=8), torch.cat([images(2, seed=3), images(2, seed=4) * 3 - 1]), 3
    res = QFSCAM(model, ["bn"], objective="representative", k=k, sampler="exact").explain(x)
    cap = capture(model, x, ["bn"])
    acts = cap.layers[0].activations.double().numpy()
    alpha = cap.layers[0].gradients.double().mean(dim=(2, 3)).numpy()
    for i in range(len(x)):
        c = acts[i] * alpha[i][:, None, None]
        full = np.maximum(c.sum(axis=0), 0)
        idx = np.flatnonzero(alpha[i] > 0)
        errs = {s: np.sum((c[list(s)].sum(axis=0) - full) ** 2) for s in itertools.combinations(idx.tolist(), k)}
        best = min(errs, key=errs.get)
        assert res.selected[i].tolist() == list(best), (errs[tuple(res.selected[i].tolist())], errs[best])


def test_candidates_keep_the_most_relevant_maps():
    model, x = PaperNet(k=8), images(4)
    res = QFSCAM(model, ["bn"], candidates=3, beta=1.0, sampler="exact").explain(x)
    alpha = res.selections[0]
    cap = capture(model, x, ["bn"])
    weights = cap.layers[0].gradients.mean(dim=(2, 3)).numpy()
    assert (res.d == 3).all()
    for i in range(4):
        top = np.sort(np.argsort(-weights[i])[:3])
        assert alpha.candidates[i].tolist() == top.tolist() == res.selected[i].tolist()


def test_taylor_and_ablation_relevance_run_through_qfscam():
    model, x = GapNet(), images(3)
    t = QFSCAM(model, ["act"], relevance="taylor", sampler="exact").explain(x)
    a = QFSCAM(model, ["act"], relevance="ablation", sampler="exact").explain(x)
    # GAP + linear head is linear in A: ablation drop == Taylor term, so the selections agree.
    assert [s.tolist() for s in t.selected] == [s.tolist() for s in a.selected]
    assert no_hooks_left(model)


@pytest.mark.parametrize("relevance", ["taylor", "ablation"])
def test_other_relevances_candidates_and_optimum(relevance):
    model, x = PaperNet(k=8), torch.cat([images(2, seed=5), images(2, seed=6) * 2 - 0.5])
    res = QFSCAM(model, ["bn"], relevance=relevance, k=2, sampler="exact").explain(x)
    cap = capture(model, x, ["bn"])
    layer = cap.layers[0]
    acts = layer.activations.double().numpy()
    alpha = layer.gradients.double().mean(dim=(2, 3)).numpy()
    if relevance == "taylor":
        rel = scoring.taylor_relevance(layer.activations, layer.gradients).double().numpy()
    else:
        rel = scoring.ablation_relevance(model, model.bn, x, cap.targets, cap.scores, 8).double().numpy()
    for i in range(len(x)):
        idx = np.flatnonzero((alpha[i] > 0) & (rel[i] > 0))
        assert res.selections[0].candidates[i].tolist() == idx.tolist()
        flat = acts[i, idx].reshape(len(idx), -1)
        unit = flat / np.linalg.norm(flat, axis=1, keepdims=True)
        j = np.abs(unit @ unit.T)
        np.fill_diagonal(j, 0)
        _, sel = brute_force(rel[i, idx] / rel[i, idx].max(), j, 0.7, 2)
        assert res.selected[i].tolist() == idx[sel].tolist()
    assert not res.flat.any()


def test_batch_equals_one_by_one():
    model, x = PaperNet(), torch.cat([images(2, seed=5), images(2, seed=6) * 2 - 0.5])
    for cam in (GradCAM(model, ["bn"]), GradCAMPlusPlus(model, ["bn"]), QFSCAM(model, ["bn"], sampler="exact")):
        batch = cam.explain(x)
        for i in range(len(x)):
            one = cam.explain(x[i : i + 1])
            np.testing.assert_allclose(batch.heatmaps[i], one.heatmaps[0], atol=1e-6)
            assert batch.predicted[i] == one.predicted[0]
            if batch.selections is not None:
                assert batch.selected[i].tolist() == one.selected[0].tolist()
                assert batch.d[i] == one.d[0]


def test_several_layers_select_per_layer():
    model, x = TwoLayerNet(), images(2)
    res = QFSCAM(model, ["act1", "act2"], sampler="exact").explain(x, targets=0)
    assert [s.layer for s in res.selections] == ["act1", "act2"]
    assert all(sel.max() < 5 for sel in res.selections[0].selected)
    with pytest.raises(ValueError, match="selections\\[i\\]"):
        res.selected
    single = [QFSCAM(model, [n], sampler="exact")(x, targets=0) for n in ("act1", "act2")]
    np.testing.assert_allclose(res.heatmaps, (single[0] + single[1]) / 2, atol=1e-6)


def test_call_returns_float32_unit_maps_and_result_fields():
    model, x = PaperNet(), images(3)
    cam = QFSCAM(model, ["bn"], sampler="exact")
    maps = cam(x)
    assert maps.shape == (3, 6, 6) and maps.dtype == np.float32
    assert maps.min() >= 0 and maps.max() <= 1 and np.isfinite(maps).all()
    res = cam.explain(x)
    assert isinstance(res, ExplanationResult)
    assert res.scores.shape == (3,) and res.predicted.shape == (3,)
    assert set(res.timing) >= {"total_s", "solve_calls"} and res.selections[0].sampler == "exact"
    assert "QFSCAM(" in repr(cam)


# ---------------------------------------------------------------- bad input
def test_k_larger_than_d_lists_d():
    model, x = PaperNet(), images(2)
    with pytest.raises(ValueError, match=r"k=7 exceeds .* d=5 .*sample index 0.*d per sample: \[5, 5\]"):
        QFSCAM(model, ["bn"], k=7, sampler="exact")(x)
    assert no_hooks_left(model)


def test_no_positive_weight_names_the_sample():
    model = GapNet()
    with torch.no_grad():
        model.fc.weight[0] = -model.fc.weight[0].abs()
        model.fc.weight[1] = model.fc.weight[1].abs()
    with pytest.raises(ValueError, match="sample index 1"):
        QFSCAM(model, ["act"], sampler="exact")(images(2), targets=[1, 0])


@pytest.mark.parametrize("cls", [GradCAM, GradCAMPlusPlus])
def test_all_zero_gradients_give_flat_map_and_warning(cls):
    model = GapNet()
    with torch.no_grad():
        model.fc.weight[2] = 0.0
    with pytest.warns(QFSelWarning, match=r"flat.*\[0, 1\]"):
        res = cls(model, ["act"]).explain(images(2), targets=2)
    assert np.isfinite(res.heatmaps).all() and (res.heatmaps == 0).all() and res.flat.all()


@pytest.mark.parametrize("cls", [GradCAM, GradCAMPlusPlus])
def test_tiny_scores_are_not_flat(cls):
    """A map's scale must not decide flatness: scores of ~1e-32 (e.g. the softmax probability of an
    unlikely class) gave 'flat' all-zero heatmaps, while GradCAM is invariant to the target's scale."""
    model, x = PaperNet(), images(2)
    plain = cls(model, ["bn"]).explain(x, targets=lambda out: out[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", QFSelWarning)
        tiny = cls(model, ["bn"]).explain(x, targets=lambda out: out[0] * 1e-30)
    assert not tiny.flat.any()
    if cls is GradCAM:  # GradCAM++ is not scale-invariant
        np.testing.assert_allclose(tiny.heatmaps, plain.heatmaps, atol=1e-5)


def test_one_by_one_layer_is_named_as_the_cause_of_a_flat_map():
    """The warning blamed all-zero gradients for a layer whose maps are 1x1."""
    with pytest.warns(QFSelWarning, match="1x1: no spatial extent"):
        res = GradCAM(GapNet(), ["pool"]).explain(images(2))
    assert res.flat.all()


def test_empty_selection_is_named_as_the_cause_of_a_flat_map():
    """beta=0: the empty set is a minimiser; the warning blamed gradients or missing evidence."""
    with pytest.warns(QFSelWarning, match=r"selected no map for sample index\(es\) \[0, 1\]"):
        res = QFSCAM(PaperNet(), ["bn"], beta=0.0, sampler="exact").explain(images(2))
    assert [len(s) for s in res.selected] == [0, 0] and res.flat.all() and (res.heatmaps == 0).all()


def test_all_zero_gradients_qfscam_has_nothing_to_select():
    model = GapNet()
    with torch.no_grad():
        model.fc.weight[2] = 0.0
    with pytest.raises(ValueError, match="sample index 0.*all-zero gradients"):
        QFSCAM(model, ["act"], sampler="exact")(images(2), targets=2)


@pytest.mark.parametrize("make", [lambda m: GradCAM(m, ["bn"]), lambda m: QFSCAM(m, ["bn"], sampler="exact")])
def test_nan_activations_name_the_sample(make):
    model = PaperNet()
    x = images(3)
    x[1, 2, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN.*sample index 1"):
        make(model)(x)
    assert no_hooks_left(model)


@pytest.mark.parametrize("cls", [GradCAM, GradCAMPlusPlus, QFSCAM])
def test_bad_input_rank_and_channels(cls):
    model = PaperNet()
    cam = cls(model, ["bn"])
    with pytest.raises(ValueError, match="4-D"):
        cam(torch.rand(3, 6, 6))
    with pytest.raises(ValueError, match="in module .conv. .*3 channels, but got 1"):
        cam(torch.rand(2, 1, 6, 6))
    assert no_hooks_left(model)


def test_layer_errors():
    with pytest.raises(ValueError, match="'nope' is not a submodule.*'conv'"):
        GradCAM(PaperNet(), ["nope"])
    with pytest.raises(ValueError, match="reshape_transform"):
        GradCAM(TokenNet(), ["tokens"])(images(1))
    res = GradCAM(TokenNet(), ["tokens"], reshape_transform=tokens_to_maps(6))(images(2), targets=0)
    np.testing.assert_allclose(res, GradCAM(TokenNet(), ["act"])(images(2), targets=0), atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "err", "pattern"),
    [
        ({"objective": "representative"}, ValueError, "needs k"),
        ({"objective": "representative", "k": 2, "beta": 1.0}, ValueError, "0 < beta < 1"),
        ({"beta": 1.5}, ValueError, "beta"),
        ({"k": 0}, ValueError, "k"),
        ({"relevance": "shap"}, ValueError, "relevance must be one of"),
        ({"redundancy": "l2"}, ValueError, "redundancy must be one of"),
        ({"objective": "min"}, ValueError, "objective must be one of"),
        ({"candidates": 2, "k": 3}, ValueError, "candidates"),
        ({"sampler_params": [1]}, TypeError, "sampler_params"),
        ({"relevance": "ablation", "reshape_transform": lambda t: t}, ValueError, "reshape_transform"),
    ],
)
def test_bad_qfscam_arguments(kwargs, err, pattern):
    with pytest.raises(err, match=pattern):
        QFSCAM(PaperNet(), ["bn"], **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "err", "pattern"),
    [
        ({"sampler": "no-such-sampler"}, ValueError, "sampler: expected one of"),
        ({"sampler": object()}, TypeError, "sampler: expected one of"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 2**64}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"seed": "abc"}, TypeError, "seed"),
        ({"sampler_params": {"num_sweep": 10}}, TypeError, "num_sweep: not a parameter of sampler 'sa'"),
        ({"sampler": "exact", "sampler_params": {"num_reads": 3}}, TypeError, "num_reads: not a parameter"),
        ({"sampler_params": {"seed": -3}}, ValueError, "seed"),
        ({"sampler_params": {"num_sweeps": 10**12}}, ValueError, "num_sweeps"),  # was a 7 TiB allocation
    ],
)
def test_solver_arguments_are_refused_at_construction(kwargs, err, pattern, monkeypatch):
    import qfsel

    def no_solving(*args, **kw):  # construction must not solve anything
        raise AssertionError("solve called")

    monkeypatch.setattr(qfsel, "solve", no_solving)
    with pytest.raises(err, match=pattern):
        QFSCAM(PaperNet(), ["bn"], **kwargs)


def test_valid_solver_arguments_and_dimod_samplers_are_accepted():
    import dimod

    x = images(2)
    ref = QFSCAM(PaperNet(), ["bn"], sampler="exact").explain(x)
    res = QFSCAM(PaperNet(), ["bn"], sampler=dimod.ExactSolver()).explain(x)
    assert [s.tolist() for s in res.selected] == [s.tolist() for s in ref.selected]
    QFSCAM(PaperNet(), ["bn"], seed=2**64 - 1, sampler_params={"num_reads": 4, "num_sweeps": 50})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(
    "make",
    [
        lambda m: GradCAM(m, ["bn"]),
        lambda m: GradCAMPlusPlus(m, ["bn"]),
        lambda m: QFSCAM(m, ["bn"], sampler="exact"),
        lambda m: QFSCAM(m, ["bn"], sampler="exact", relevance="ablation", redundancy="contribution", k=2),
        lambda m: QFSCAM(m, ["bn"], sampler="exact", objective="representative", k=2, candidates=4),
    ],
)
def test_cuda_matches_cpu(make):
    model, x = PaperNet(), torch.cat([images(2, seed=5), images(2, seed=6) * 2 - 0.5])
    cpu = make(model).explain(x)
    gpu = make(model.cuda()).explain(x.cuda())
    np.testing.assert_allclose(gpu.heatmaps, cpu.heatmaps, atol=1e-4)
    assert gpu.predicted.tolist() == cpu.predicted.tolist()
    if cpu.selections is not None:
        assert [s.tolist() for s in gpu.selected] == [s.tolist() for s in cpu.selected]
    assert no_hooks_left(model)


def test_explain_all_equals_each_method_alone_with_one_capture(monkeypatch):
    import qfsel.cams as cams_mod
    from qfsel import explain_all

    model, x = PaperNet(), images(3, seed=2)
    calls = []
    real = cams_mod._capture
    monkeypatch.setattr(cams_mod, "_capture", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    res = explain_all(model, x, ["bn"], methods=("qfs", "gradcam", "gradcam++"), sampler="exact", k=2)
    assert len(calls) == 1 and list(res) == ["qfs", "gradcam", "gradcam++"]
    alone = {
        "qfs": QFSCAM(model, ["bn"], sampler="exact", k=2),
        "gradcam": GradCAM(model, ["bn"]),
        "gradcam++": GradCAMPlusPlus(model, ["bn"]),
    }
    for name, cam in alone.items():
        one = cam.explain(x)
        np.testing.assert_array_equal(res[name].heatmaps, one.heatmaps)
        np.testing.assert_array_equal(res[name].weights[0], one.weights[0])
    assert [s.tolist() for s in res["qfs"].selected] == [s.tolist() for s in alone["qfs"].explain(x).selected]


def test_explain_all_refuses_bad_methods_and_misplaced_parameters():
    from qfsel import explain_all

    model, x = PaperNet(), images(1)
    with pytest.raises(ValueError, match="methods: expected names from"):
        explain_all(model, x, ["bn"], methods=("gradcam", "bogus"))
    with pytest.raises(ValueError, match="given twice"):
        explain_all(model, x, ["bn"], methods=("gradcam", "GradCAM"))
    with pytest.raises(ValueError, match="at least one"):
        explain_all(model, x, ["bn"], methods=())
    with pytest.raises(TypeError, match="'qfs' is not among methods"):
        explain_all(model, x, ["bn"], methods=("gradcam",), beta=0.5)


# ---------------------------------------------------------------- dead maps
@pytest.mark.parametrize(
    "kwargs",
    [
        {"sampler": "exact"},
        {"sampler": "exact", "beta": 1.0},
        {"sampler": "exact", "k": 2},
        {"sampler": "exact", "objective": "representative", "k": 2},
        {"sampler": "exact", "relevance": "taylor", "redundancy": "contribution"},
    ],
)
def test_dead_maps_are_never_candidates(kwargs):
    # Maps 0 and 3 never fire, but the classifier weighs them most: before the fix every
    # relevance-redundancy solution selected them (top relevance, zero redundancy).
    model, x = dead_map_gapnet(dead=(0, 3)), images(4)
    acts = model.act(model.conv(x)).detach()
    assert (acts[:, [0, 3]] == 0).all()
    res = QFSCAM(model, ["act"], **kwargs).explain(x)
    alpha = scoring.gradcam_weights(capture(model, x, ["act"]).layers[0].gradients)
    assert (alpha[:, [0, 3]] > 0).all()  # positive weights: only their zero maps exclude them
    for i, (sel, cand) in enumerate(zip(res.selected, res.selections[0].candidates)):
        assert 0 not in cand and 3 not in cand
        assert set(sel.tolist()) <= set(cand.tolist())
        alive = (acts[i].flatten(1) != 0).any(dim=1) & (alpha[i] > 0)
        if kwargs.get("relevance") != "taylor":
            assert cand.tolist() == torch.nonzero(alive).flatten().tolist()
    np.testing.assert_array_equal(res.selections[0].num_selected, [len(s) for s in res.selected])
    # dropping maps that add nothing leaves the heatmap as it was: with beta=1 every live map
    # is selected and the raw map is ReLU(sum of all positive-weight maps), dead ones included
    if kwargs.get("beta") == 1.0:
        want = torch.relu(torch.einsum("bk,bkhw->bhw", alpha.clamp(min=0), acts)).numpy()
        np.testing.assert_allclose(res.raw_maps[0], want, rtol=1e-6, atol=1e-7)


def test_all_maps_dead_is_a_clear_error():
    model = dead_map_gapnet(dead=tuple(range(6)))
    with pytest.raises(ValueError, match=r"non-zero activations for sample index 0 \(6 of its 6 maps are all zero\)"):
        QFSCAM(model, ["act"], sampler="exact").explain(images(1))


# ---------------------------------------------------------------- pytorch-grad-cam parity
CAMS = [
    lambda m, **kw: GradCAM(m, ["bn"], **kw),
    lambda m, **kw: GradCAMPlusPlus(m, ["bn"], **kw),
    lambda m, **kw: QFSCAM(m, ["bn"], sampler="exact", **kw),
]


@pytest.mark.parametrize("make", CAMS)
def test_context_manager_releases_hooks_and_never_swallows(make):
    model, x = PaperNet(), images(2)
    with make(model) as cam:
        heat = cam(x)
        assert no_hooks_left(model)
    assert heat.shape == (2, 6, 6) and no_hooks_left(model)
    with pytest.raises(ZeroDivisionError):
        with make(model) as cam:
            cam(x)
            1 / 0
    with pytest.raises(ValueError, match="forward pass failed"):
        with make(model) as cam:
            cam(torch.rand(2, 3, 7, 7))  # fails inside the capture, hooks registered
    assert no_hooks_left(model)


@pytest.mark.parametrize("make", CAMS)
def test_as_tensor_keeps_results_on_the_model_device(make):
    model, x = PaperNet(), images(3)
    ref = make(model).explain(x)
    res = make(model).explain(x, as_tensor=True)
    assert isinstance(res.heatmaps, torch.Tensor) and res.heatmaps.device == x.device
    assert all(isinstance(t, torch.Tensor) for t in res.raw_maps + res.weights)
    np.testing.assert_array_equal(res.heatmaps.numpy(), ref.heatmaps)
    np.testing.assert_array_equal(res.numpy().weights[0], ref.weights[0])
    assert isinstance(make(model)(x, as_tensor=True), torch.Tensor)
    assert "torch on cpu" in repr(res)


def hand_eigen(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """ReLU of the first principal component of w_p A_p, sign agreeing with sum_p w_p A_p (numpy)."""
    out = []
    for ai, wi in zip(a, w):
        pts = (wi[:, None] * ai.reshape(len(wi), -1)).T.astype(np.float64)
        c = pts - pts.mean(axis=0)
        v = np.linalg.svd(c, full_matrices=False)[2][0]
        proj = c @ v
        plain = pts.sum(axis=1)
        if proj @ (plain - plain.mean()) < 0:
            proj = -proj
        out.append(np.maximum(proj, 0).reshape(ai.shape[1:]))
    return np.stack(out)


@pytest.mark.parametrize("make", CAMS)
def test_eigen_smooth_is_the_first_principal_component(make):
    model, x = PaperNet(), images(3, seed=4)
    res = make(model).explain(x, eigen_smooth=True)
    plain = make(model).explain(x)
    np.testing.assert_array_equal(res.weights[0], plain.weights[0])
    a = capture(model, x, ["bn"]).layers[0].activations.numpy()
    want = hand_eigen(a, res.weights[0])
    np.testing.assert_allclose(res.raw_maps[0], want, rtol=1e-4, atol=1e-5 * want.max())
    np.testing.assert_allclose(res.heatmaps, minmax(want), atol=1e-4)
    assert not np.allclose(res.heatmaps, plain.heatmaps, atol=1e-2)  # it does change the map


@pytest.mark.parametrize("make", CAMS)
def test_aug_smooth_is_the_mean_over_flips_and_scalings(make):
    from qfsel.cams import AUGMENTATIONS

    model, x = PaperNet(), images(2, seed=3)
    res = make(model).explain(x, aug_smooth=True)
    plain = make(model).explain(x)
    assert len(AUGMENTATIONS) == 6 and AUGMENTATIONS[0] == (False, 1.0)
    want = np.zeros_like(plain.heatmaps)
    for flip, factor in AUGMENTATIONS:
        xa = x * factor
        xa = torch.flip(xa, dims=(3,)) if flip else xa
        h = make(model).explain(xa, targets=plain.predicted.tolist()).heatmaps  # the unaugmented classes
        want += h[:, :, ::-1] if flip else h
    np.testing.assert_allclose(res.heatmaps, want / 6, atol=1e-6)
    np.testing.assert_array_equal(res.weights[0], plain.weights[0])  # other fields: unaugmented pass
    assert res.predicted.tolist() == plain.predicted.tolist()
    assert 0.0 <= res.heatmaps.min() and res.heatmaps.max() <= 1.0


def test_explain_all_with_smoothing_shares_each_augmented_capture(monkeypatch):
    import qfsel.cams as cams_mod
    from qfsel import explain_all

    model, x = PaperNet(), images(2, seed=7)
    calls = []
    real = cams_mod._capture
    monkeypatch.setattr(cams_mod, "_capture", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    res = explain_all(model, x, ["bn"], sampler="exact", aug_smooth=True, eigen_smooth=True, as_tensor=True)
    assert len(calls) == 6  # one capture per augmentation, shared by the three methods
    for name, cam in {"qfs": QFSCAM(model, ["bn"], sampler="exact"), "gradcam": GradCAM(model, ["bn"]),
                      "gradcam++": GradCAMPlusPlus(model, ["bn"])}.items():
        one = cam.explain(x, aug_smooth=True, eigen_smooth=True)
        assert isinstance(res[name].heatmaps, torch.Tensor)
        np.testing.assert_allclose(res[name].heatmaps.numpy(), one.heatmaps, atol=1e-6)


@pytest.mark.parametrize("flag", ["aug_smooth", "eigen_smooth", "as_tensor"])
def test_smoothing_flags_must_be_bools(flag):
    with pytest.raises(TypeError, match=f"{flag}: expected a bool"):
        GradCAM(PaperNet(), ["bn"]).explain(images(1), **{flag: 1})


@pytest.mark.parametrize(
    ("model", "selector"), [(DictOutputNet(), "logits"), (TupleOutputNet(), 0), (DictOutputNet(), lambda o: o["logits"])]
)
def test_output_selector_for_every_method(model, selector):
    x = images(3)
    for cls in (GradCAM, GradCAMPlusPlus):
        np.testing.assert_array_equal(
            cls(model, ["act"], output_selector=selector)(x), cls(GapNet(), ["act"])(x)
        )
    kw = {"sampler": "exact", "relevance": "ablation", "k": 2}  # ablation re-runs the model
    q = QFSCAM(model, ["act"], output_selector=selector, **kw).explain(x)
    ref = QFSCAM(GapNet(), ["act"], **kw).explain(x)
    assert [s.tolist() for s in q.selected] == [s.tolist() for s in ref.selected]
    with pytest.raises(TypeError, match="output_selector"):
        GradCAM(model, ["act"])(x)


def test_short_reprs():
    res = QFSCAM(PaperNet(), ["bn"], sampler="exact").explain(images(12))
    text = repr(res)
    assert len(text) < 300 and "\n" not in text and "array" not in text
    assert text.startswith("ExplanationResult(method='qfs-cam', images=12, heatmaps=(12, 6, 6) float32 numpy")
    assert "candidate maps (exact)" in text and ", ...]" in text
    sel = repr(res.selections[0])
    assert sel.startswith("LayerSelection(layer='bn', images=12") and len(sel) < 300
    assert str(res) == text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("make", CAMS)
def test_cuda_as_tensor_stays_on_the_gpu_and_smoothing_matches_cpu(make):
    model, x = PaperNet(), images(3, seed=8)
    cpu = make(model).explain(x, aug_smooth=True, eigen_smooth=True)
    gpu = make(model.cuda()).explain(x.cuda(), aug_smooth=True, eigen_smooth=True, as_tensor=True)
    assert gpu.heatmaps.device.type == "cuda" and all(t.device.type == "cuda" for t in gpu.raw_maps + gpu.weights)
    np.testing.assert_allclose(gpu.heatmaps.cpu().numpy(), cpu.heatmaps, atol=1e-4)
    assert no_hooks_left(model)


def test_qfs_cam_hands_its_problems_to_the_solvers_without_a_validation_pass(monkeypatch):
    """Issue 9: QFS-CAM's own (h, J) go to the solvers as ProblemBatch._trusted batches (no copy,
    no second pass over the data); they are what the validated constructor would accept and
    solve to the same states."""
    import qfsel
    import qfsel.qubo as qubo

    seen, validated = [], []
    real_solve, real_validate = qfsel.solve, qubo._validate
    monkeypatch.setattr(qfsel, "solve", lambda p, *a, **kw: seen.append((p, a, kw)) or real_solve(p, *a, **kw))
    monkeypatch.setattr(qubo, "_validate", lambda *a, **kw: validated.append(1) or real_validate(*a, **kw))
    model, x = GapNet(k=8), images(6)
    for cam in (QFSCAM(model, ["act"], sampler="exact", k=2), QFSCAM(model, ["act"], sampler="sa", seed=4),
                QFSCAM(model, ["act"], sampler="sa-penalty", k=2, seed=1),
                QFSCAM(model, ["act"], sampler="exact", k=2, objective="representative", beta=0.5)):
        seen.clear()
        res = cam.explain(x)
        assert not validated
        assert len(seen) == len(np.unique(res.d)) > 1  # one solve per d; samples of several sizes
        for batch, args, kwargs in seen:
            assert isinstance(batch, qubo._TrustedProblemBatch)
            j = batch.redundancy
            np.testing.assert_array_equal(j, j.transpose(0, 2, 1))
            assert np.all(j[:, range(j.shape[1]), range(j.shape[1])] == 0) and np.isfinite(j).all()
            checked = qfsel.ProblemBatch(batch.relevance, j, beta=batch.beta, k=batch.k)
            a, b = real_solve(batch, *args, **kwargs), real_solve(checked, *args, **kwargs)
            np.testing.assert_array_equal(a.states, b.states)
            np.testing.assert_array_equal(a.energies, b.energies)
        validated.clear()


def test_qfs_cam_refuses_non_finite_relevance_naming_the_sample():
    model, x = GapNet(k=8), images(3)
    cam = QFSCAM(model, ["act"], sampler="exact", relevance="taylor")
    cap = cam.capture(x)
    layer = cap.layers[0]
    alpha = scoring.gradcam_weights(layer.gradients)
    rel = scoring.taylor_relevance(layer.activations, layer.gradients).double().numpy()
    alive = layer.activations.flatten(2).any(dim=2).numpy()
    cands = cam._candidates("act", rel, alpha.double().numpy(), alive)
    rel[1, cands[1][0]] = np.inf  # e.g. a product G * A that overflowed float32
    with pytest.raises(ValueError, match=r"relevance h of target layer 'act' is NaN or inf for sample index 1"):
        cam._problems(layer, alpha, rel, cands)


def test_k_larger_than_d_summarises_a_large_batch():
    model, x = PaperNet(), images(40, seed=4)
    with pytest.raises(ValueError, match=r"k=7 exceeds .*; 40 of 40 samples have d < k \(first: \[0, 1, 2, 3, 4, 5, 6, 7\]\); d ranges over") as info:
        QFSCAM(model, ["bn"], k=7, sampler="exact")(x)
    assert len(str(info.value)) < 600


def test_a_sampler_object_without_a_seed_gets_none_and_one_warning():
    """dimod.ExactSolver takes no seed: QFS-CAM says so once, when it is built, instead of dimod
    warning SamplerUnknownArgWarning on every call; without a seed there is nothing to say."""
    import warnings

    import dimod

    from qfsel import QFSelWarning

    model, x = PaperNet(), images(2, seed=3)
    with pytest.warns(QFSelWarning, match="takes no seed"):
        cam = QFSCAM(model, ["bn"], sampler=dimod.ExactSolver(), seed=0, k=2)
    assert "seed" not in cam._solve_params()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = cam.explain(x)
        plain = QFSCAM(model, ["bn"], sampler=dimod.ExactSolver(), k=2).explain(x)
        exact = QFSCAM(model, ["bn"], sampler="exact", k=2).explain(x)
    assert [s.tolist() for s in got.selected] == [s.tolist() for s in plain.selected]
    np.testing.assert_allclose(got.energies, exact.energies, rtol=1e-9, atol=1e-9)
