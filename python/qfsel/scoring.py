"""Per-map numbers, batched in torch: CAM weights, relevance (B, K), redundancy (B, K, K).

Everything here takes captured tensors (activations ``A`` and gradients ``G`` of
shape (B, K, H, W)) and returns tensors on the same device. Only these small
arrays travel to the CPU to build the QUBO.

Formulas (per sample, map p, position (i, j); N = H * W):

* GradCAM weight (Selvaraju et al. 2017, eq. 1):
  ``alpha_p = (1/N) sum_ij G_pij``.
* GradCAM++ weight (Chattopadhyay et al. 2018, closed form used by common
  implementations such as pytorch-grad-cam):
  ``a_pij = G_pij^2 / (2 G_pij^2 + (sum_ab A_pab) G_pij^3)`` (0 where the
  denominator is 0), ``w_p = sum_ij a_pij relu(G_pij)``.
* Taylor relevance: ``t_p = sum_ij G_pij A_pij`` -- the first-order change of
  the target score when map p is removed; exact for a global-average-pool +
  linear head, where it equals map p's contribution to the logit.
* Ablation relevance: ``s - s(A with map p zeroed)``, by re-running the model.
* Cosine redundancy (the paper's J): ``J_pq = |cos(vec A_p, vec A_q)|``, zero
  diagonal (a zero map has cosine 0 with every map).
* Contribution redundancy: with the contribution maps ``c_p = alpha_p A_p``,
  ``J_pq = |<c_p, c_q>| / max_r ||c_r||^2``, zero diagonal. ``<c_p, c_q>`` is
  the cross term of ``||sum_p c_p||^2``: two maps are redundant when both
  contribute strongly to the same pixels of the CAM; a weak map that overlaps a
  strong one is only weakly redundant (unlike plain cosine). Values in [0, 1]
  by Cauchy-Schwarz.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import torch
from torch import nn

from qfsel.capture import PASS_LOCK, _channels_last_layout, _mixes_batch, eval_mode
from qfsel.targets import Target

__all__ = [
    "ablation_relevance",
    "contribution_redundancy",
    "cosine_redundancy",
    "gradcam_weights",
    "gradcampp_weights",
    "redundancy",
    "representative_terms",
    "taylor_relevance",
]

REDUNDANCIES = ("cosine", "contribution", None)


def _check_maps(name: str, t: torch.Tensor) -> None:
    if not isinstance(t, torch.Tensor) or t.ndim != 4:
        raise ValueError(f"{name} must be a (B, K, H, W) tensor; got shape {tuple(getattr(t, 'shape', ()))}")


def gradcam_weights(gradients: torch.Tensor) -> torch.Tensor:
    """GradCAM channel weights ``alpha_p = mean_ij G_pij``; (B, K, H, W) -> (B, K)."""
    _check_maps("gradients", gradients)
    return gradients.mean(dim=(2, 3))


def gradcampp_weights(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """GradCAM++ channel weights (closed form); (B, K, H, W) x 2 -> (B, K).

    ``a_pij = G^2 / (2 G^2 + (sum_ab A_pab) G^3)`` (0 where that denominator is 0),
    ``w_p = sum_ij a_pij relu(G_pij)``.

    Computed in float64 (``G^3`` overflows half precision from ``|G| > 40`` and
    float32 from ``|G| > 7e12``); returned in the gradients' dtype, at least float32.
    """
    _check_maps("activations", activations)
    _check_maps("gradients", gradients)
    g = gradients.to(torch.float64)
    g2 = g.pow(2)
    g3 = g2 * g
    sum_a = activations.to(torch.float64).sum(dim=(2, 3), keepdim=True)
    denom = 2 * g2 + sum_a * g3
    nonzero = denom != 0
    alpha = torch.where(nonzero, g2 / torch.where(nonzero, denom, torch.ones_like(denom)), torch.zeros_like(denom))
    w = (alpha * torch.relu(g)).sum(dim=(2, 3))
    return w.to(torch.promote_types(gradients.dtype, torch.float32))


def taylor_relevance(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """First-order Taylor relevance ``t_p = sum_ij G_pij A_pij``; -> (B, K)."""
    _check_maps("activations", activations)
    _check_maps("gradients", gradients)
    return (gradients * activations).sum(dim=(2, 3))


def ablation_relevance(
    model: nn.Module,
    layer: nn.Module,
    input_tensor: torch.Tensor,
    targets: Sequence[Target],
    scores: torch.Tensor,
    num_maps: int,
    *,
    batch_size: int = 64,
    channels_last: bool = False,
) -> torch.Tensor:
    """Exact drop of each sample's target score when one map of ``layer`` is zeroed.

    Re-runs the model on rows (sample b, map p), ``batch_size`` rows per forward,
    with a forward hook on ``layer`` that zeroes channel p of row's output.

    Args:
        model: the network (run in eval mode, flags restored).
        layer: the target layer (its output must be (B, K, H, W) itself).
        input_tensor: (B, C, H, W).
        targets: B target callables.
        scores: (B,) target scores of the unablated model.
        num_maps: K.
        batch_size: rows per forward pass.
        channels_last: run the re-runs in the channels-last memory layout (the layout of the
            capture that gave ``scores``: a map whose zeroing changes nothing then drops the score
            by exactly 0, not by the rounding difference of two layouts; see :mod:`qfsel.capture`).

    Returns:
        (B, K) tensor ``scores[b] - score_b(map p zeroed)``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    if _mixes_batch(model.modules()):
        raise ValueError(
            "ablation relevance re-runs the model on batches of (sample, map) rows, but this model's "
            "samples interact (a BatchNorm without running statistics, track_running_stats=False, "
            "normalises with the batch's own even in eval mode), so the scores would depend on the rows "
            "batched together: use relevance='gradcam' or 'taylor'"
        )
    b = int(input_tensor.shape[0])
    rows_total = b * num_maps
    drops = torch.empty(rows_total, dtype=scores.dtype, device=scores.device)
    x_all = input_tensor.detach()
    thread = threading.get_ident()
    with PASS_LOCK:  # the re-runs hook the layer and put the model in eval mode (see PASS_LOCK)
        for start in range(0, rows_total, batch_size):
            rows = torch.arange(start, min(start + batch_size, rows_total), device=x_all.device)
            sample = rows // num_maps
            chan = rows % num_maps

            def zero_channel(module: nn.Module, inputs: object, output: torch.Tensor) -> torch.Tensor | None:
                if threading.get_ident() != thread:
                    return None  # another thread's forward pass of the model
                out = output.clone()
                out[torch.arange(out.shape[0], device=out.device), chan.to(out.device)] = 0
                return out

            handle = layer.register_forward_hook(zero_channel)
            try:
                with eval_mode(model), torch.no_grad(), \
                        _channels_last_layout(model.modules(), x_all[sample], channels_last) as x_rows:
                    out = model(x_rows)
            finally:
                handle.remove()
            s = torch.stack([targets[int(i)](out[j]).reshape(()) for j, i in enumerate(sample.tolist())])
            drops[start : start + len(rows)] = scores[sample.to(scores.device)] - s.to(scores.dtype)
    return drops.reshape(b, num_maps)


def _zero_diag(m: torch.Tensor) -> torch.Tensor:
    eye = torch.eye(m.shape[-1], dtype=torch.bool, device=m.device)
    return m.masked_fill(eye, 0.0)


def cosine_redundancy(activations: torch.Tensor) -> torch.Tensor:
    """``J_pq = |cos(vec A_p, vec A_q)|`` with zero diagonal; (B, K, H, W) -> (B, K, K) float64."""
    _check_maps("activations", activations)
    flat = activations.flatten(2).to(torch.float64)
    norm = flat.norm(dim=2, keepdim=True)
    unit = torch.where(norm > 0, flat / torch.where(norm > 0, norm, torch.ones_like(norm)), torch.zeros_like(flat))
    cos = torch.bmm(unit, unit.transpose(1, 2)).abs().clamp_(max=1.0)
    return _zero_diag(cos)


def contribution_redundancy(activations: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``J_pq = |<c_p, c_q>| / max_r ||c_r||^2`` with ``c_p = w_p A_p``; -> (B, K, K) float64."""
    _check_maps("activations", activations)
    c = activations.flatten(2).to(torch.float64) * weights.to(torch.float64).unsqueeze(-1)
    gram = torch.bmm(c, c.transpose(1, 2))
    scale = torch.diagonal(gram, dim1=1, dim2=2).amax(dim=1).reshape(-1, 1, 1)
    j = torch.where(scale > 0, gram.abs() / torch.where(scale > 0, scale, torch.ones_like(scale)), torch.zeros_like(gram))
    return _zero_diag(j)


def redundancy(kind: str | None, activations: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Dispatches ``kind`` in ("cosine", "contribution", None); -> (B, K, K) float64."""
    if kind == "cosine":
        return cosine_redundancy(activations)
    if kind == "contribution":
        return contribution_redundancy(activations, weights)
    if kind is None:
        b, k = activations.shape[:2]
        return torch.zeros(b, k, k, dtype=torch.float64, device=activations.device)
    raise ValueError(f"redundancy must be one of {REDUNDANCIES}; got {kind!r}")


def representative_terms(
    activations: torch.Tensor, weights: torch.Tensor, target_map: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear and pair terms of the least-squares reconstruction objective.

    With ``c_p = w_p A_p`` (flattened) and the target map ``C`` (B, H, W):

    ``||sum_p x_p c_p - C||^2 = ||C||^2 - sum_p g_p x_p + sum_{p<q} P_pq x_p x_q``

    (using ``x_p^2 = x_p``), where ``g_p = 2 <c_p, C> - ||c_p||^2`` and
    ``P_pq = 2 <c_p, c_q>``.

    Returns:
        ``(g, P)``: (B, K) and (B, K, K) float64, P symmetric with zero diagonal.
    """
    _check_maps("activations", activations)
    c = activations.flatten(2).to(torch.float64) * weights.to(torch.float64).unsqueeze(-1)
    target = target_map.flatten(1).to(torch.float64)
    gram = torch.bmm(c, c.transpose(1, 2))
    proj = torch.bmm(c, target.unsqueeze(-1)).squeeze(-1)
    g = 2 * proj - torch.diagonal(gram, dim1=1, dim2=2)
    return g, _zero_diag(2 * gram)
