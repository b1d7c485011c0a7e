"""Heatmaps from per-map weights: weighted sum, ReLU, min-max normalisation, upsampling.

Shared by every CAM method so that baselines and QFS-CAM are compared on equal
terms: a method only supplies the per-map weights ``w`` (B, K).

``raw = ReLU(sum_p w_p A_p)`` (or, with ``eigen_smooth``, ReLU of the first principal
component of the weighted maps ``w_p A_p``, see :func:`eigen_map`); ``normalised = (raw - min) / (max - min)`` per
sample (a flat map becomes all zeros and is reported); then a bilinear resize
(``align_corners=False``), which keeps values in [0, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from qfsel._checks import check_positive_int, describe

__all__ = ["aggregate_layers", "cam_map", "eigen_map", "flat_tolerance", "min_max_normalize", "upsample",
           "weighted_map"]

#: Maps whose (max - min) is at or below this times their largest magnitude are treated as
#: flat. Relative, so that a map's scale does not matter (the gradients of a softmax
#: probability of 1e-14 give raw maps of about 1e-15 that are not flat).
FLAT_TOLERANCE = 1e-12


#: The largest relative span :func:`flat_tolerance` gives: a map whose span is more than this
#: part of its magnitude has structure whatever its dtype (bfloat16 with 512 maps would otherwise
#: give 1.4: every non-negative map flat, its heatmap all zeros).
MAX_FLAT_TOLERANCE = 1.0 / 16


def flat_tolerance(dtype: torch.dtype, terms: int = 1) -> float:
    """The relative span at or below which a map of ``dtype``, a sum of ``terms`` weighted maps,
    is flat: ``max(FLAT_TOLERANCE, 8 eps sqrt(terms))``, at most :data:`MAX_FLAT_TOLERANCE`. A
    smaller span is the rounding of the sum (and of the network before it), not structure: a layer
    whose activations are constant (a saturated ReLU6, a constant input) gives such a map, and
    normalising it to [0, 1] would draw rounding noise as a heatmap. float32, 16 maps: 3.8e-6;
    1280 maps: 3.4e-5; float64: 1e-12.

    Raises:
        TypeError: ``dtype`` is not a torch.dtype.
        TypeError, ValueError: ``terms`` is not an integer >= 1.
    """
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype: expected a torch.dtype (e.g. torch.float32), got {describe(dtype)}")
    terms = check_positive_int("terms", terms)
    eps = torch.finfo(dtype).eps if dtype.is_floating_point else 0.0
    return min(MAX_FLAT_TOLERANCE, max(FLAT_TOLERANCE, 8.0 * eps * math.sqrt(terms)))


def weighted_map(activations: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``ReLU(sum_p w_p A_p)``: (B, K, H, W), (B, K) -> (B, H, W).

    Computed in the activations' dtype, but at least float32: a sum over K maps
    of a half-precision model would overflow or lose its small terms.
    """
    if activations.ndim != 4 or weights.shape != activations.shape[:2]:
        raise ValueError(
            f"weights must be (B, K) matching activations (B, K, H, W) = {tuple(activations.shape)}; "
            f"got {tuple(weights.shape)}"
        )
    dtype = torch.promote_types(activations.dtype, torch.float32)
    b, k, h, w = activations.shape
    # One batched product (B, 1, K) x (B, K, HW): what einsum("bk,bkhw->bhw") computes, to the
    # bit, without its dispatch (12 against 26 us a call at (64, 16, 7, 7)).
    cam = torch.bmm(weights.to(dtype)[:, None, :], activations.to(dtype).reshape(b, k, h * w)).reshape(b, h, w)
    return cam.relu_()


def eigen_map(activations: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``ReLU`` of the first principal component of the weighted maps: (B, K, H, W), (B, K) -> (B, H, W).

    Per sample, the H*W pixels are points in R^K with coordinates ``w_p A_p[pixel]``; they
    are centred (mean over pixels) and projected on their first principal direction
    (the top right singular vector). The direction's sign is chosen so that the
    projection correlates positively with the plain weighted sum ``sum_p w_p A_p`` (the
    map it smooths), and positive on a tie; maps with no variance give zeros.
    Computed on the activations' device, in at least float32.

    Example:
        >>> import torch
        >>> from qfsel.heatmap import eigen_map
        >>> a = torch.zeros(1, 2, 2, 2); a[0, 0, 0, 0] = 1.0; a[0, 1, 0, 0] = 1.0
        >>> eigen_map(a, torch.ones(1, 2))[0]
        tensor([[1.0607, 0.0000],
                [0.0000, 0.0000]])
    """
    if activations.ndim != 4 or weights.shape != activations.shape[:2]:
        raise ValueError(
            f"weights must be (B, K) matching activations (B, K, H, W) = {tuple(activations.shape)}; "
            f"got {tuple(weights.shape)}"
        )
    dtype = torch.promote_types(activations.dtype, torch.float32)
    b, _, h, w = activations.shape
    points = (weights.to(dtype)[:, :, None, None] * activations.to(dtype)).flatten(2).transpose(1, 2)  # (B, HW, K)
    centred = points - points.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    projection = (centred @ vh[:, 0, :, None]).squeeze(-1)  # (B, HW)
    plain = points.sum(dim=2)
    agree = ((projection * (plain - plain.mean(dim=1, keepdim=True))).sum(dim=1) >= 0).to(dtype)
    projection = projection * (2.0 * agree - 1.0)[:, None]
    return torch.relu(projection).reshape(b, h, w)


def cam_map(activations: torch.Tensor, weights: torch.Tensor, eigen_smooth: bool = False) -> torch.Tensor:
    """:func:`weighted_map`, or :func:`eigen_map` with ``eigen_smooth=True``."""
    return eigen_map(activations, weights) if eigen_smooth else weighted_map(activations, weights)


def min_max_normalize(maps: torch.Tensor, terms: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample min-max normalisation of (B, H, W) maps.

    Args:
        maps: (B, H, W).
        terms: how many weighted maps each map sums (K), for the rounding tolerance.

    Returns:
        ``(normalised, flat)``: the maps in [0, 1] and a (B,) bool tensor marking
        flat maps (max - min <= ``flat_tolerance(maps.dtype, terms)`` * max(|min|, |max|),
        e.g. all zeros, or constant up to rounding), which are returned as zeros.
    """
    out, flat, _ = _min_max_normalize(maps, terms=terms)
    return out, flat


def _min_max_normalize(
    maps: torch.Tensor, nonnegative: bool = False, terms: int = 1
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`min_max_normalize` plus a (B,) bool tensor: True where the sample's map is finite.

    A map holding a NaN or an inf has a non-finite ``max - min`` (NaN propagates through
    min and max; an inf makes the span inf or NaN), and a finite span bounds every value:
    one check on B numbers instead of a pass over the maps. ``nonnegative``: the caller
    guarantees ``maps >= 0`` where not NaN (a ReLU'd map), so that max(|min|, |max|) is the max.
    """
    view = maps.flatten(1)
    lo, hi = view.amin(dim=1), view.amax(dim=1)  # (torch.aminmax is several times slower on CPU)
    span = hi - lo
    # max(|lo|, |hi|) is max(hi, -lo), as lo <= hi (NaN propagates either way); for the
    # non-negative maps of every CAM method (ReLU'd) it is hi. Fewer distinct ops matter: right
    # after a model pass each kind of op costs 15-40 us the first time (evicted code), 2-5 us after.
    mag = hi if nonnegative else torch.maximum(hi, lo.neg())
    flat = span <= mag * flat_tolerance(maps.dtype, terms)
    any_flat = bool(flat.any())  # usually none: the masked fills are skipped
    out = maps.sub(lo[:, None, None]).div_((span.masked_fill(flat, 1.0) if any_flat else span)[:, None, None])
    if any_flat:
        out.masked_fill_(flat[:, None, None], 0.0)
    return out.clamp_(0.0, 1.0), flat, torch.isfinite(span)


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (B, H, W) maps to ``size`` = (H_out, W_out)."""
    if tuple(maps.shape[1:]) == tuple(size):
        return maps
    out = F.interpolate(maps.unsqueeze(1).float(), size=tuple(size), mode="bilinear", align_corners=False)
    return out.squeeze(1).to(maps.dtype).clamp_(0.0, 1.0)


def aggregate_layers(maps: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
    """Mean of per-layer normalised maps after resizing each to ``size``."""
    if len(maps) == 1:  # the mean of one map is the map: no stacked copy
        return upsample(maps[0], size)
    return torch.stack([upsample(m, size) for m in maps]).mean(dim=0)
