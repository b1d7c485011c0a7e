"""scoring and heatmap helpers against numpy formulas."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from qfsel import scoring
from qfsel.heatmap import aggregate_layers, min_max_normalize, upsample, weighted_map


@pytest.fixture
def maps():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 5, 4, 4, generator=g, dtype=torch.float64)
    a[0, 2] = 0.0  # a zero map: cosine 0 with every map, no NaN
    w = torch.randn(3, 5, generator=g, dtype=torch.float64)
    return a, w


def test_cosine_redundancy(maps):
    a, _ = maps
    j = scoring.cosine_redundancy(a).numpy()
    for b in range(3):
        flat = a[b].reshape(5, -1).numpy()
        for p, q in itertools.product(range(5), repeat=2):
            n = np.linalg.norm(flat[p]) * np.linalg.norm(flat[q])
            want = 0.0 if p == q or n == 0 else abs(flat[p] @ flat[q]) / n
            assert j[b, p, q] == pytest.approx(want, abs=1e-12)
    assert np.isfinite(j).all()


def test_contribution_redundancy(maps):
    a, w = maps
    j = scoring.contribution_redundancy(a, w).numpy()
    for b in range(3):
        c = a[b].reshape(5, -1).numpy() * w[b].numpy()[:, None]
        gram = c @ c.T
        want = np.abs(gram) / np.diag(gram).max()
        np.fill_diagonal(want, 0)
        np.testing.assert_allclose(j[b], want, atol=1e-12)
        assert j[b].max() <= 1.0


def test_redundancy_dispatch(maps):
    a, w = maps
    assert (scoring.redundancy(None, a, w) == 0).all()
    with pytest.raises(ValueError, match="redundancy must be one of"):
        scoring.redundancy("l1", a, w)


def test_representative_terms_expand_the_least_squares_objective(maps):
    a, w = maps
    target = torch.relu(torch.randn(3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3)))
    g, p = scoring.representative_terms(a, w, target)
    for b in range(3):
        c = a[b].reshape(5, -1).numpy() * w[b].numpy()[:, None]
        cc = target[b].reshape(-1).numpy()
        for bits in itertools.product([0, 1], repeat=5):
            x = np.array(bits, dtype=float)
            ls = np.sum((x @ c - cc) ** 2)
            quad = cc @ cc - g[b].numpy() @ x + x @ np.triu(p[b].numpy(), 1) @ x
            assert quad == pytest.approx(ls, rel=1e-10, abs=1e-10)


def test_gradcampp_weights_no_nan_with_zero_gradients():
    a = torch.rand(2, 3, 4, 4)
    g = torch.zeros(2, 3, 4, 4)
    g[1, 0, 0, 0] = 0.5
    w = scoring.gradcampp_weights(a, g)
    assert torch.isfinite(w).all() and (w[0] == 0).all()
    s = a[1, 0].sum()
    assert w[1, 0].item() == pytest.approx((0.25 / (0.5 + s * 0.125) * 0.5).item(), rel=1e-5)


def test_heatmap_helpers():
    a = torch.tensor([[[[1.0, 0.0], [0.0, 2.0]], [[0.0, 3.0], [0.0, 0.0]]]])
    raw = weighted_map(a, torch.tensor([[1.0, -1.0]]))
    torch.testing.assert_close(raw, torch.tensor([[[1.0, 0.0], [0.0, 2.0]]]))
    norm, flat = min_max_normalize(torch.cat([raw, torch.zeros(1, 2, 2)]))
    torch.testing.assert_close(norm[0], torch.tensor([[0.5, 0.0], [0.0, 1.0]]))
    assert flat.tolist() == [False, True] and (norm[1] == 0).all()
    up = upsample(norm, (4, 4))
    assert up.shape == (2, 4, 4) and up.min() >= 0 and up.max() <= 1
    both = aggregate_layers([norm, up], (4, 4))
    torch.testing.assert_close(both, up)
    with pytest.raises(ValueError, match="weights must be"):
        weighted_map(a, torch.ones(1, 3))


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_min_max_normalize_is_the_hand_formula_bit_for_bit(dtype):
    """(raw - min) / (max - min) per sample, zeros for a flat map (all zero, constant, or a span
    below flat_tolerance(dtype) of its magnitude), then clamped: the fast path skips the masked fills
    only when no map is flat, and gives the same bits either way."""
    from qfsel.heatmap import _min_max_normalize, flat_tolerance

    g = torch.Generator().manual_seed(1)
    raw = torch.relu(torch.randn(6, 5, 7, generator=g, dtype=torch.float64)).to(dtype)
    raw[1] = 0.0
    raw[3] = 2.5
    for maps in (raw, raw[[0, 2, 4, 5]]):  # with flat maps, and with none
        lo = maps.flatten(1).amin(dim=1)[:, None, None]
        hi = maps.flatten(1).amax(dim=1)[:, None, None]
        span = hi - lo
        flat = (span <= flat_tolerance(dtype) * torch.maximum(lo.abs(), hi.abs())).reshape(-1)
        expect = ((maps - lo) / torch.where(span == 0, torch.ones_like(span), span)).clamp(0, 1)
        expect[flat] = 0
        norm, got_flat = min_max_normalize(maps)
        assert norm.dtype == dtype and torch.equal(norm, expect) and torch.equal(got_flat, flat)
    assert min_max_normalize(raw)[1].tolist() == [False, True, False, True, False, False]
    bad = raw.clone()
    bad[2, 0, 0], bad[4, 1, 3] = float("nan"), float("inf")
    assert _min_max_normalize(bad)[2].tolist() == [True, True, False, True, False, True]


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(64, 16, 7, 7), (3, 5, 1, 1), (2, 1280, 7, 7), (1, 3, 13, 17)])
def test_weighted_map_is_relu_of_the_einsum_bit_for_bit(dtype, shape):
    """ReLU(sum_p w_p A_p) from one batched product: the same bits as einsum's on the same
    activations, in at least float32, for contiguous and channels-last activations."""
    g = torch.Generator().manual_seed(sum(shape))
    a = torch.randn(*shape, generator=g).to(dtype)
    w = torch.randn(shape[:2], generator=g).to(dtype)
    up = torch.float32 if dtype == torch.float16 else dtype
    for acts in (a, a.contiguous(memory_format=torch.channels_last)):
        want = torch.relu(torch.einsum("bk,bkhw->bhw", w.to(up), acts.to(up)))
        got = weighted_map(acts, w)
        assert got.dtype == up and torch.equal(got, want)
    # every value the hand formula's, up to rounding
    hand = torch.relu((w.double()[:, :, None, None] * a.double()).sum(1))
    assert torch.allclose(weighted_map(a.double(), w.double()), hand, rtol=1e-12, atol=1e-12)


def test_min_max_normalize_of_non_negative_maps_needs_no_magnitude_of_the_minimum():
    """The CAM methods' fast path (maps >= 0, the ReLU'd sums): the same maps and flags."""
    from qfsel.heatmap import _min_max_normalize

    g = torch.Generator().manual_seed(5)
    raw = torch.relu(torch.randn(7, 6, 5, generator=g))
    raw[1] = 0.0
    raw[2] = 3.0
    raw[3, 0, 0] = float("nan")
    raw[4] = 1e-30 * raw[4]  # tiny but not flat: the tolerance is relative
    raw[5, 2, 2] = float("inf")
    fast, slow = _min_max_normalize(raw, nonnegative=True), _min_max_normalize(raw)
    for f, s in zip(fast, slow):
        assert torch.equal(f.isnan(), s.isnan()) and torch.equal(torch.nan_to_num(f), torch.nan_to_num(s))
    assert fast[1].tolist() == [False, True, True, False, False, True, False]  # inf <= inf * tol
    assert fast[2].tolist() == [True, True, True, False, True, False, True]


def test_the_flat_tolerance_is_the_rounding_of_the_dtype_and_the_number_of_maps():
    from qfsel.heatmap import FLAT_TOLERANCE, flat_tolerance

    eps32 = torch.finfo(torch.float32).eps
    assert flat_tolerance(torch.float32) == 8 * eps32
    assert flat_tolerance(torch.float32, 1280) == pytest.approx(8 * eps32 * 1280 ** 0.5)
    assert flat_tolerance(torch.float64, 1280) == FLAT_TOLERANCE  # float64 rounding is far below it
    assert flat_tolerance(torch.float16) == 8 * torch.finfo(torch.float16).eps
    # a float32 map constant up to a few ulps is flat; one with a 1e-4 relative span is not
    base = torch.full((2, 3, 3), 0.0016242135, dtype=torch.float32)
    base[0, 1, 1] = torch.nextafter(torch.nextafter(base[0, 1, 1], torch.tensor(1.0)), torch.tensor(1.0))
    base[1, 0, 0] *= 1 + 1e-4
    assert min_max_normalize(base, terms=16)[1].tolist() == [True, False]


def test_a_layer_with_constant_activations_gives_a_flat_map_in_any_layout():
    """Saturated activations (ReLU6 at its cap) make every map constant: the weighted sum is then
    constant up to rounding, which min-max normalisation must not draw as a heatmap (it did, as
    noise that differed between memory layouts)."""
    from qfsel import GradCAM

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 640, 1), torch.nn.ReLU6(), torch.nn.Conv2d(640, 640, 1),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(640, 4)).eval()
    with torch.no_grad():
        model[0].bias.fill_(100.0)  # every activation saturates at 6
    x = torch.rand(4, 3, 3, 3)
    from qfsel.exceptions import QFSelWarning

    for layout in (None, False):
        with pytest.warns(QFSelWarning, match="flat .* sample index\\(es\\) \\[0, 1, 2, 3\\]"):
            res = GradCAM(model, ["2"], channels_last=layout).explain(x)
        assert res.flat.all() and not res.heatmaps.any()


def test_the_flat_tolerance_never_flattens_a_map_with_visible_structure():
    """8 eps sqrt(K) grows past 1 for bfloat16 with K >= 256 (float8: K = 1): every non-negative map
    would be flat and returned as zeros. It is capped; ``terms`` is checked by name."""
    from qfsel.heatmap import MAX_FLAT_TOLERANCE, flat_tolerance

    ramp = torch.linspace(0, 1, 16).reshape(1, 4, 4)
    for dtype in (torch.bfloat16, torch.float16, torch.float32):
        for terms in (1, 512, 4096):
            assert flat_tolerance(dtype, terms) <= MAX_FLAT_TOLERANCE
            norm, flat = min_max_normalize(ramp.to(dtype), terms=terms)
            assert not flat.any() and float(norm.max()) == 1.0
    near = torch.full((1, 3, 3), 1.0, dtype=torch.bfloat16)
    near[0, 0, 0] = 1.0 - 2 ** -7  # one ulp below: constant up to rounding, still flat
    assert min_max_normalize(near, terms=512)[1].tolist() == [True]
    assert flat_tolerance(torch.float32, 1280) == pytest.approx(8 * torch.finfo(torch.float32).eps * 1280 ** 0.5)
    for bad, err in (("16", TypeError), (0, ValueError), (2.5, TypeError), (True, TypeError)):
        with pytest.raises(err, match="terms"):
            min_max_normalize(ramp, terms=bad)
    with pytest.raises(TypeError, match="dtype: expected a torch.dtype"):
        flat_tolerance(np.float32)
