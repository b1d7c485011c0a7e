"""CAM explainers: GradCAM, GradCAM++ and QFS-CAM on one shared base class.

Capture (hooks, one backward pass per batch), the weighted sum with ReLU,
min-max normalisation, bilinear upsampling and multi-layer averaging are shared
(:class:`BaseCAM`); a method supplies only its per-map weights, like
pytorch-grad-cam's ``get_cam_weights``. So the three methods are compared on
equal terms.

QFS-CAM (arXiv 2604.25649): keep the maps with a positive GradCAM weight (d of the
K maps), choose a subset x in {0,1}^d minimising

    E(x) = -beta * sum_p h_p x_p + (1 - beta) * sum_{p<q} J_pq x_p x_q

(h = relevance / max relevance, J = redundancy), solved as a QUBO by
``qfsel.solve``, and draw ``ReLU(sum_{p selected} alpha_p A_p)``: GradCAM
restricted to the selected channels.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from qfsel import scoring
from qfsel.capture import (
    Capture,
    LayerCapture,
    LayerSpec,
    OutputSelector,
    ReshapeTransform,
    _CHANNELS_LAST_OK,
    _capture,
    _wants_channels_last,
    check_channels_last,
    check_output_selector,
    check_reshape_transform,
    resolve_target_layers,
    select_output,
)
from qfsel.heatmap import _min_max_normalize, aggregate_layers, cam_map, weighted_map
from qfsel.targets import TargetsLike

from qfsel._checks import check_positive_int, check_unit_interval
from qfsel.exceptions import QFSelWarning

__all__ = [
    "AUGMENTATIONS",
    "BaseCAM",
    "ExplanationResult",
    "METHODS",
    "build_explainers",
    "explain_all",
    "method_names",
    "GradCAM",
    "GradCAMPlusPlus",
    "LayerSelection",
    "QFSCAM",
    "QFSelWarning",
]

RELEVANCES = ("gradcam", "taylor", "ablation")
OBJECTIVES = ("relevance-redundancy", "representative")


@dataclass(frozen=True)
class LayerSelection:
    """QFS-CAM's selection on one target layer.

    Attributes:
        layer: the layer's name.
        selected: per sample, the selected original channel indices (sorted, int64).
        candidates: per sample, the d candidate channel indices given to the QUBO.
        d: (B,) number of QUBO variables per sample.
        energies: (B,) energy of the returned state (the solver's E(x), no penalty).
        feasible: (B,) whether the state meets the cardinality constraint (True without k).
        timing: ``{"total_s": solver seconds summed over calls, "solve_calls": n, "wall_s": ...}``.
        sampler: the sampler's name.
    """

    layer: str
    selected: list[np.ndarray]
    candidates: list[np.ndarray]
    d: np.ndarray
    energies: np.ndarray
    feasible: np.ndarray
    timing: dict[str, float]
    sampler: str

    @property
    def num_selected(self) -> np.ndarray:
        """(B,) number of selected maps per sample."""
        return np.array([len(s) for s in self.selected], dtype=np.int64)

    def __repr__(self) -> str:
        counts = self.num_selected.tolist()
        shown = str(counts[:8])[:-1] + (", ...]" if len(counts) > 8 else "]")
        return (
            f"LayerSelection(layer={self.layer!r}, images={len(counts)}, num_selected={shown}, "
            f"d={str(self.d.tolist()[:8])[:-1] + (', ...]' if len(counts) > 8 else ']')}, "
            f"feasible={int(np.sum(self.feasible))}/{len(counts)}, sampler={self.sampler!r})"
        )


@dataclass(frozen=True)
class ExplanationResult:
    """Everything one ``explain`` call computed.

    Attributes:
        method: "gradcam", "gradcam++" or "qfs-cam".
        heatmaps: (B, H, W) float32 in [0, 1]; input size unless ``upsample=False``.
            A numpy array, or with ``as_tensor=True`` a torch tensor on the model's device.
        raw_maps: per target layer, (B, h, w) float32 ``ReLU(sum_p w_p A_p)``
            before normalisation, at layer resolution (numpy, or tensors with ``as_tensor``).
        weights: per target layer, (B, K) float32 per-map weights used (for
            QFS-CAM: alpha_p for selected maps, 0 elsewhere; numpy, or tensors with ``as_tensor``).
        predicted: (B,) int64 argmax of the model output (-1 if not (B, C)).
        scores: (B,) float64 target scores.
        layer_names: names of the target layers.
        flat: (B,) bool, samples whose map was flat on some layer (returned as 0).
        selections: QFS-CAM only: one :class:`LayerSelection` per target layer.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from qfsel.cams import GradCAM
        >>> _ = torch.manual_seed(0)
        >>> model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
        ...                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
        >>> res = GradCAM(model, ["1"]).explain(torch.rand(2, 3, 8, 8))
        >>> res.heatmaps.shape, res.predicted.shape
        ((2, 8, 8), (2,))
        >>> res
        ExplanationResult(method='gradcam', images=2, heatmaps=(2, 8, 8) float32 numpy, layers=['1'], predicted=[...], flat=0)
    """

    method: str
    heatmaps: Any
    raw_maps: list[Any]
    weights: list[Any]
    predicted: np.ndarray
    scores: np.ndarray
    layer_names: list[str]
    flat: np.ndarray
    selections: list[LayerSelection] | None = field(default=None)

    def numpy(self) -> ExplanationResult:
        """This result with heatmaps, raw maps and weights as numpy arrays (copied to the CPU)."""

        def arr(t: Any) -> np.ndarray:
            return t.detach().float().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, np.float32)

        return dataclasses.replace(
            self,
            heatmaps=arr(self.heatmaps),
            raw_maps=[arr(r) for r in self.raw_maps],
            weights=[arr(w) for w in self.weights],
        )

    def __repr__(self) -> str:
        heat = self.heatmaps
        kind = f"torch on {heat.device}" if isinstance(heat, torch.Tensor) else "numpy"
        dtype = str(heat.dtype).removeprefix("torch.")
        pred = self.predicted.tolist()
        shown = str(pred[:8])[:-1] + (", ...]" if len(pred) > 8 else "]")
        parts = [
            f"method={self.method!r}",
            f"images={len(pred)}",
            f"heatmaps={tuple(heat.shape)} {dtype} {kind}",
            f"layers={self.layer_names}",
            f"predicted={shown}",
            f"flat={int(np.sum(self.flat))}",
        ]
        if self.selections:
            counts = np.concatenate([s.num_selected for s in self.selections])
            d = np.concatenate([s.d for s in self.selections])
            parts.append(
                f"selected={int(counts.min())}-{int(counts.max())} of {int(d.min())}-{int(d.max())} candidate maps"
                f" ({self.selections[0].sampler})"
            )
        return f"ExplanationResult({', '.join(parts)})"

    def _single(self) -> LayerSelection | None:
        if self.selections is None:
            return None
        if len(self.selections) != 1:
            raise ValueError(
                f"this result has {len(self.selections)} target layers; use result.selections[i] for layer i"
            )
        return self.selections[0]

    @property
    def selected(self) -> list[np.ndarray] | None:
        """Selected channel indices per sample (single target layer; None for baselines)."""
        s = self._single()
        return None if s is None else s.selected

    @property
    def energies(self) -> np.ndarray | None:
        """(B,) QUBO energies (single target layer; None for baselines)."""
        s = self._single()
        return None if s is None else s.energies

    @property
    def feasible(self) -> np.ndarray | None:
        """(B,) feasibility (single target layer; None for baselines)."""
        s = self._single()
        return None if s is None else s.feasible

    @property
    def d(self) -> np.ndarray | None:
        """(B,) QUBO size per sample (single target layer; None for baselines)."""
        s = self._single()
        return None if s is None else s.d

    @property
    def timing(self) -> dict[str, float] | None:
        """Solver timing (single target layer; None for baselines)."""
        s = self._single()
        return None if s is None else s.timing


#: Test-time augmentations of ``aug_smooth``: (horizontal flip, intensity factor) pairs; the
#: first is the unaugmented pass, whose fields the result reports.
AUGMENTATIONS: tuple[tuple[bool, float], ...] = tuple(
    (flip, factor) for flip in (False, True) for factor in (1.0, 0.9, 1.1)
)


def _augment(x: torch.Tensor, flip: bool, factor: float) -> torch.Tensor:
    x = x * factor if factor != 1.0 else x
    return torch.flip(x, dims=(3,)) if flip else x


class BaseCAM:
    """Shared machinery: capture, weighted sum + ReLU, normalisation, upsampling.

    Subclasses implement :meth:`get_cam_weights` (or, when they need more than
    the captured tensors, :meth:`layer_weights`).

    A CAM object is also a context manager, as in pytorch-grad-cam
    (``with GradCAM(model, layers) as cam: ...``). qfsel registers its hooks only for
    the duration of each pass and removes them in ``finally`` (also when the pass
    fails), so none stay on the model between calls or after the ``with`` block;
    ``__exit__`` never swallows an exception.

    Args:
        model: a torch model returning (B, C) scores (or any (B, ...) output
            with explicit targets), or, with ``output_selector``, a dict, tuple or
            object holding them.
        target_layers: a layer name, a module, or a list of them. With several
            layers the per-layer normalised maps are averaged.
        reshape_transform: maps a layer output that is not (B, K, H, W) (e.g.
            transformer tokens) to (B, K, H, W).
        upsample: True (default) resizes heatmaps to the input's H x W; False
            keeps layer resolution (the largest one with several layers).
        output_selector: what to explain of a model that does not return a tensor:
            a key or attribute name (``"logits"`` for Hugging Face image classifiers,
            whose outputs are dict-like), a tuple position (``0``), or a callable
            mapping the output to a (B, ...) tensor. None (default): the output itself.
        channels_last: the memory layout of the model's pass (see :mod:`qfsel.capture`). None
            (default): channels-last on the CPU, where CNNs run up to 1.55x faster in it (the
            results agree to float rounding, about 1e-6 relative); True: on every device; False:
            the input's own layout.
    """

    method: ClassVar[str] = "base"

    def __init__(
        self,
        model: nn.Module,
        target_layers: LayerSpec | Sequence[LayerSpec],
        *,
        reshape_transform: ReshapeTransform | None = None,
        upsample: bool = True,
        output_selector: OutputSelector = None,
        channels_last: bool | None = None,
    ) -> None:
        self.model = model
        self.target_layers = resolve_target_layers(model, target_layers)
        self.reshape_transform = check_reshape_transform(reshape_transform)
        if not isinstance(upsample, bool):
            raise TypeError(f"upsample must be a bool; got {type(upsample).__name__}")
        self.upsample = upsample
        self.output_selector = check_output_selector(output_selector)
        self.channels_last = check_channels_last(channels_last)

    # -- context manager (pytorch-grad-cam's ``with GradCAM(...) as cam``) -------------------
    def __enter__(self) -> BaseCAM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        # Returns None: an exception raised in the with block propagates unchanged.

    def release(self) -> None:
        """Releases what this explainer holds on its model (called on ``with`` exit).

        Nothing, in fact: hooks live only inside each pass and are removed in
        ``finally``, even on error. Kept for pytorch-grad-cam parity; hooks that other
        code put on the model are not touched.
        """

    # -- weights -----------------------------------------------------------------------------
    def get_cam_weights(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        """Per-map weights (B, K) from activations and gradients (B, K, H, W)."""
        raise NotImplementedError

    def layer_weights(self, layer: LayerCapture, cap: Capture) -> tuple[torch.Tensor, LayerSelection | None]:
        """Per-map weights for one layer; default: :meth:`get_cam_weights`."""
        return self.get_cam_weights(layer.activations, layer.gradients), None

    # -- explaining ----------------------------------------------------------------------------
    def capture(self, input_tensor: torch.Tensor, targets: TargetsLike = None) -> Capture:
        """One forward/backward pass of this explainer's model and target layers (see :func:`~qfsel.capture.capture`)."""
        # The layers and the selector were resolved and checked when the explainer was built.
        return _capture(self.model, input_tensor, self.target_layers, targets, self.reshape_transform,
                        self.output_selector, self.channels_last)

    def explain(
        self,
        input_tensor: torch.Tensor,
        targets: TargetsLike = None,
        *,
        aug_smooth: bool = False,
        eigen_smooth: bool = False,
        as_tensor: bool = False,
    ) -> ExplanationResult:
        """Explains a batch.

        Args:
            input_tensor: (B, C, H, W) floating batch on the model's device.
            targets: None (predicted class), an int, a callable, or one int /
                callable per sample (see :mod:`qfsel.targets`), e.g.
                ``[ClassifierOutputTarget(3)]``.
            aug_smooth: test-time augmentation: the heatmaps are the mean over the
                passes of :data:`AUGMENTATIONS` (horizontal flip x input scaled by 1,
                0.9 and 1.1; flipped maps are flipped back), each explaining the
                targets of the unaugmented pass. Six passes instead of one; the other
                fields of the result describe the unaugmented pass.
            eigen_smooth: each layer's map is ReLU of the first principal component
                of the weighted maps ``w_p A_p`` instead of their sum
                (:func:`qfsel.heatmap.eigen_map`); ``raw_maps`` hold that map.
            as_tensor: return heatmaps, raw maps and weights as torch tensors on the
                model's device (no copy to the CPU) instead of numpy arrays (the small
                ``predicted``, ``scores`` and ``flat`` arrays stay numpy).

        Returns:
            An :class:`ExplanationResult`.

        Raises:
            ValueError: bad input, non-4-D layer output, NaN activations or a
                non-finite weighted map (naming the sample), and method-specific errors.
        """
        return _explain_with({self.method: self}, input_tensor, targets, aug_smooth, eigen_smooth, as_tensor)[
            self.method
        ]

    def from_capture(self, cap: Capture, *, eigen_smooth: bool = False, as_tensor: bool = False) -> ExplanationResult:
        """This method's explanation of an existing :class:`~qfsel.capture.Capture`.

        The capture must come from this explainer's model and target layers (as
        :func:`explain_all` makes it): several methods then share one forward/backward pass.
        ``eigen_smooth`` and ``as_tensor`` as for :meth:`explain`; ``aug_smooth`` needs
        passes of its own (one per augmentation): use :meth:`explain` or :func:`explain_all`.
        """
        _check_flag("eigen_smooth", eigen_smooth)
        _check_flag("as_tensor", as_tensor)
        if not isinstance(cap, Capture):
            raise TypeError(
                f"cap: expected a qfsel.capture.Capture (from explainer.capture(...)), got {type(cap).__name__}"
            )
        if [layer.module for layer in cap.layers] != [m for _, m in self.target_layers]:
            # Module identity (nn.Module compares by identity): a capture of other layers or of
            # another model would be explained as if it were this explainer's.
            raise ValueError(
                f"cap: it holds target layers {[layer.name for layer in cap.layers]} of another model or "
                f"explainer; this explainer's are {[n for n, _ in self.target_layers]} (use explainer.capture)"
            )
        result = self._from_capture(cap, eigen_smooth)
        return result if as_tensor else result.numpy()

    def _from_capture(self, cap: Capture, eigen_smooth: bool, warn: bool = True) -> ExplanationResult:
        input_tensor = cap.input
        norms, raws, weights, selections = [], [], [], []
        flat_any: torch.Tensor | None = None
        for layer in cap.layers:
            w, sel = self.layer_weights(layer, cap)
            raw = cam_map(layer.activations, w, eigen_smooth)
            # cam_map ends in a ReLU; a sum of K weighted maps: its rounding decides what is flat
            norm, flat, finite = _min_max_normalize(raw, nonnegative=True, terms=layer.activations.shape[1])
            if not bool(finite.all()):
                idx = torch.nonzero(~finite).flatten().tolist()
                raise ValueError(
                    f"{self.method}: the weighted map of target layer {layer.name!r} is NaN or inf for "
                    f"sample index {idx[0]} (all: {idx}); the per-map weights or their sum overflowed"
                )
            if warn and bool(flat.any()):
                idx = torch.nonzero(flat).flatten().tolist()
                cause = "e.g. all-zero gradients or no positive evidence"
                empty = [] if sel is None else [i for i in idx if len(sel.selected[i]) == 0]
                if raw.shape[1] * raw.shape[2] == 1:
                    cause = "its maps are 1x1: no spatial extent to explain; choose an earlier layer"
                elif empty:
                    cause = f"the QUBO solution selected no map for sample index(es) {empty}, e.g. with a small beta"
                warnings.warn(
                    QFSelWarning(
                        f"{self.method}: the map of target layer {layer.name!r} is flat ({cause}) "
                        f"for sample index(es) {idx}; returned as all zeros"
                    ),
                    stacklevel=4,
                )
            flat_any = flat if flat_any is None else flat_any | flat.to(flat_any.device)
            norms.append(norm)
            raws.append(raw.detach().float())
            weights.append(w.detach().float())
            if sel is not None:
                selections.append(sel)
        if self.upsample:
            size = (int(input_tensor.shape[2]), int(input_tensor.shape[3]))
        else:
            largest = max(norms, key=lambda n: int(n.shape[1]) * int(n.shape[2]))
            size = (int(largest.shape[1]), int(largest.shape[2]))
        heat = aggregate_layers(norms, size)
        return ExplanationResult(
            method=self.method,
            heatmaps=heat.detach().float(),
            raw_maps=raws,
            weights=weights,
            predicted=cap.predicted.cpu().numpy().astype(np.int64),
            scores=cap.scores.double().cpu().numpy(),
            layer_names=[layer.name for layer in cap.layers],
            flat=flat_any.cpu().numpy() if flat_any is not None else np.zeros(input_tensor.shape[0], bool),
            selections=selections or None,
        )

    def __call__(
        self,
        input_tensor: torch.Tensor,
        targets: TargetsLike = None,
        *,
        aug_smooth: bool = False,
        eigen_smooth: bool = False,
        as_tensor: bool = False,
    ) -> Any:
        """Heatmaps (B, H, W) float32 in [0, 1] (a numpy array, or a tensor with ``as_tensor``); see :meth:`explain`."""
        return self.explain(
            input_tensor, targets, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth, as_tensor=as_tensor
        ).heatmaps

    def __repr__(self) -> str:
        names = [n for n, _ in self.target_layers]
        return f"{type(self).__name__}(target_layers={names})"


def _check_flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__} {value!r}")
    return value


def _explain_with(
    cams: Mapping[str, BaseCAM],
    input_tensor: torch.Tensor,
    targets: TargetsLike,
    aug_smooth: bool,
    eigen_smooth: bool,
    as_tensor: bool,
) -> dict[str, ExplanationResult]:
    """Every explainer of ``cams`` (one model and target layers) from shared captures."""
    for name, value in (("aug_smooth", aug_smooth), ("eigen_smooth", eigen_smooth), ("as_tensor", as_tensor)):
        _check_flag(name, value)
    first = next(iter(cams.values()))
    cap = first.capture(input_tensor, targets)
    results = {name: cam._from_capture(cap, eigen_smooth) for name, cam in cams.items()}
    if aug_smooth:
        sums = {name: r.heatmaps.clone() for name, r in results.items()}
        for flip, factor in AUGMENTATIONS[1:]:
            # The unaugmented pass's targets (its predicted classes for targets=None).
            aug = first.capture(_augment(cap.input, flip, factor), list(cap.targets))
            for name, cam in cams.items():
                heat = cam._from_capture(aug, eigen_smooth, warn=False).heatmaps
                sums[name] += torch.flip(heat, dims=(2,)) if flip else heat
        results = {
            name: dataclasses.replace(r, heatmaps=sums[name] / len(AUGMENTATIONS)) for name, r in results.items()
        }
    return results if as_tensor else {name: r.numpy() for name, r in results.items()}


class GradCAM(BaseCAM):
    """GradCAM (Selvaraju et al. 2017).

    ``alpha_p = (1/N) sum_ij dS/dA_pij`` (eq. 1), ``L = ReLU(sum_p alpha_p A_p)``
    (eq. 2), min-max normalised and bilinearly upsampled.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from qfsel import GradCAM
        >>> _ = torch.manual_seed(0)
        >>> model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
        ...                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
        >>> GradCAM(model, target_layers=["1"])(torch.rand(2, 3, 8, 8)).shape
        (2, 8, 8)
    """

    method: ClassVar[str] = "gradcam"

    def get_cam_weights(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return scoring.gradcam_weights(gradients)


class GradCAMPlusPlus(BaseCAM):
    """GradCAM++ (Chattopadhyay et al. 2018), closed form as common implementations use.

    ``a_pij = g_pij^2 / (2 g_pij^2 + (sum_ab A_pab) g_pij^3)`` (0 where the
    denominator is 0), ``w_p = sum_ij a_pij ReLU(g_pij)``,
    ``L = ReLU(sum_p w_p A_p)``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from qfsel import GradCAMPlusPlus
        >>> _ = torch.manual_seed(0)
        >>> model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
        ...                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
        >>> GradCAMPlusPlus(model, ["1"])(torch.rand(1, 3, 8, 8)).shape
        (1, 8, 8)
    """

    method: ClassVar[str] = "gradcam++"

    def get_cam_weights(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return scoring.gradcampp_weights(activations, gradients)


def _d_summary(d: np.ndarray, k: int) -> str:
    """The candidate counts of a batch in a few words: all of them for a small batch, else a summary."""
    short = np.flatnonzero(d < k)
    if d.size <= 16:
        return f"d per sample: {d.tolist()}"
    return (
        f"{short.size} of {d.size} samples have d < k (first: {short[:8].tolist()}); "
        f"d ranges over [{int(d.min())}, {int(d.max())}]"
    )


class QFSCAM(BaseCAM):
    """QFS-CAM: GradCAM restricted to feature maps chosen by a QUBO (arXiv 2604.25649).

    Defaults reproduce the paper: GradCAM relevance ``h_p = alpha_p / max alpha``
    over the d maps with ``alpha_p > 0``, cosine redundancy ``J_pq = |cos(A_p, A_q)|``,
    ``beta = 0.7``, no cardinality constraint, heatmap ``ReLU(sum_{p in S} alpha_p A_p)``.

    Objectives:
        * ``"relevance-redundancy"``: ``E(x) = -beta sum h_p x_p + (1-beta) sum_{p<q} J_pq x_p x_q``.
        * ``"representative"`` (needs ``k``): choose k maps whose GradCAM-weighted
          sum best reconstructs the full GradCAM map C = ReLU(sum_all alpha_p A_p):
          ``min_x ||sum_p x_p c_p - C||^2``, ``c_p = alpha_p A_p``. Expanding
          (``x_p^2 = x_p``) gives ``||C||^2 - sum_p g_p x_p + sum_{p<q} P_pq x_p x_q``
          with ``g_p = 2<c_p, C> - ||c_p||^2`` and ``P_pq = 2<c_p, c_q>``. Under the
          exactly-k constraint, adding a constant to every g_p (or every P_pq) only
          shifts the objective by a constant, so g and P are shifted to be
          non-negative; then ``h = s g / beta`` and ``J = s P / (1 - beta)`` (one
          common s > 0 scaling the largest entry to 1) make the problem's energy
          ``E = s (LS(x) + const)``: the same minimisers, in the
          FeatureSelectionProblem form, for any 0 < beta < 1.

    Relevance ``"taylor"`` is ``sum_ij G_pij A_pij``; ``"ablation"`` the drop of
    the target score when map p is zeroed (one re-run of the model per
    (sample, map), batched). The candidates (the d QUBO variables) are always
    the maps with a positive GradCAM weight alpha_p *and* a positive relevance
    of the chosen kind, so that every selected map adds to the heatmap
    ``ReLU(sum_{p in S} alpha_p A_p)``; h is that relevance over its maximum.
    Maps whose activations are identically zero (dead channels, e.g. a ReLU that
    never fires) are never candidates, whatever their weight: they add nothing to
    the heatmap and are redundant with nothing, so the QUBO would always select
    them and inflate ``num_selected``. ``d`` counts the candidates after this.
    Redundancy ``"contribution"`` is ``|<alpha_p A_p, alpha_q A_q>| / max_r ||alpha_r A_r||^2``
    with r over the candidates (see :mod:`qfsel.scoring`).

    When every candidate map is selected (e.g. ``beta=1.0``), the heatmap is
    ``ReLU(sum_{alpha_p > 0} alpha_p A_p)``, which equals GradCAM's whenever no
    map has a negative GradCAM weight.

    Problems of the batch are grouped by d and each group is solved with one
    ``qfsel.solve(ProblemBatch(...))`` call.

    Args:
        model: the network.
        target_layers: layer name(s) or module(s); selection is per layer.
        beta: weight of relevance versus redundancy, in [0, 1]
            (``"representative"``: in (0, 1), without effect on the minimiser).
        k: select exactly k maps (None: as many as minimise E). Error if k > d.
        sampler: sampler name for ``qfsel.solve`` ("sa", "exact", "tabu", ...)
            or a dimod sampler.
        relevance: "gradcam", "taylor" or "ablation".
        redundancy: "cosine", "contribution" or None (J = 0).
        objective: "relevance-redundancy" or "representative".
        candidates: keep only the N most relevant positive maps before the QUBO.
        seed: passed to ``qfsel.solve``.
        sampler_params: extra keyword arguments for ``qfsel.solve``.
        reshape_transform, upsample, output_selector, channels_last: see :class:`BaseCAM`.
        ablation_batch_size: rows per forward pass for ``relevance="ablation"``.

    Raises:
        ValueError: bad arguments; an unknown sampler name, a bad seed (as ``qfsel.solve``
            would raise them, but here, before any image is explained).
        TypeError: a ``sampler_params`` key the sampler does not take, a sampler that is
            neither a name nor a dimod sampler.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from qfsel import QFSCAM
        >>> _ = torch.manual_seed(0)
        >>> model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(),
        ...                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2))
        >>> cam = QFSCAM(model, ["1"], sampler="exact")
        >>> res = cam.explain(torch.rand(2, 3, 8, 8))
        >>> res.heatmaps.shape, len(res.selected)
        ((2, 8, 8), 2)
    """

    method: ClassVar[str] = "qfs-cam"

    def __init__(
        self,
        model: nn.Module,
        target_layers: LayerSpec | Sequence[LayerSpec],
        beta: float = 0.7,
        k: int | None = None,
        sampler: Any = "sa",
        relevance: str = "gradcam",
        redundancy: str | None = "cosine",
        objective: str = "relevance-redundancy",
        candidates: int | None = None,
        seed: int | None = None,
        sampler_params: Mapping[str, Any] | None = None,
        *,
        reshape_transform: ReshapeTransform | None = None,
        upsample: bool = True,
        output_selector: OutputSelector = None,
        channels_last: bool | None = None,
        ablation_batch_size: int = 64,
    ) -> None:
        super().__init__(
            model, target_layers, reshape_transform=reshape_transform, upsample=upsample,
            output_selector=output_selector, channels_last=channels_last,
        )
        self.beta = check_unit_interval("beta", beta)
        self.k = None if k is None else check_positive_int("k", k)
        if relevance not in RELEVANCES:
            raise ValueError(f"relevance must be one of {RELEVANCES}; got {relevance!r}")
        self.relevance = relevance
        if redundancy not in scoring.REDUNDANCIES:
            raise ValueError(f"redundancy must be one of {scoring.REDUNDANCIES}; got {redundancy!r}")
        self.redundancy = redundancy
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}; got {objective!r}")
        self.objective = objective
        if objective == "representative":
            if self.k is None:
                raise ValueError('objective="representative" needs k (the number of maps to choose); got k=None')
            if not 0.0 < self.beta < 1.0:
                raise ValueError(f'objective="representative" needs 0 < beta < 1; got beta={beta!r}')
        self.candidates = None if candidates is None else check_positive_int("candidates", candidates)
        if self.candidates is not None and self.k is not None and self.candidates < self.k:
            raise ValueError(f"candidates: expected an integer >= k = {self.k}, got {self.candidates}")
        if relevance == "ablation" and reshape_transform is not None:
            raise ValueError('relevance="ablation" zeroes channels of the layer output itself; '
                             "it cannot be combined with reshape_transform")
        self.ablation_batch_size = check_positive_int("ablation_batch_size", ablation_batch_size)
        if sampler_params is not None and not isinstance(sampler_params, Mapping):
            raise TypeError(f"sampler_params must be a mapping or None; got {type(sampler_params).__name__}")
        self.sampler = sampler
        self.seed = seed
        self.sampler_params = dict(sampler_params or {})
        # Refused here, not at the first explain(): an unknown sampler, a bad seed or a
        # parameter the sampler does not take.
        _validate_solver(sampler, self._solve_params())
        if seed is not None and not _takes_seed(sampler):
            warnings.warn(
                QFSelWarning(
                    f"seed={seed!r}: the sampler {type(sampler).__name__} takes no seed (its parameters: "
                    f"{sorted(sampler.parameters)}), so it is not passed; its results are as reproducible "
                    "as the sampler makes them"
                ),
                stacklevel=2,
            )

    def _solve_params(self) -> dict[str, Any]:
        params = dict(self.sampler_params)
        if self.seed is not None and _takes_seed(self.sampler):
            params.setdefault("seed", self.seed)
        return params

    # -- scoring ---------------------------------------------------------------------------
    def _relevance(self, layer: LayerCapture, cap: Capture, alpha: torch.Tensor) -> torch.Tensor:
        if self.relevance == "gradcam":
            return alpha
        if self.relevance == "taylor":
            return scoring.taylor_relevance(layer.activations, layer.gradients)
        return scoring.ablation_relevance(
            self.model if self.output_selector is None else _SelectedOutput(self.model, self.output_selector),
            layer.module,
            cap.input,
            cap.targets,
            cap.scores,
            int(layer.activations.shape[1]),
            batch_size=self.ablation_batch_size,
            # in the capture's layout (a model checked in channels-last; see qfsel.capture)
            channels_last=_wants_channels_last(self.model, cap.input, self.channels_last)
            and self.model in _CHANNELS_LAST_OK,
        )

    def _candidates(self, name: str, rel: np.ndarray, alpha: np.ndarray, alive: np.ndarray) -> list[np.ndarray]:
        mask = (rel > 0) & (alpha > 0) & alive
        counts = mask.sum(axis=1)
        if (counts == 0).any():
            i = int(np.flatnonzero(counts == 0)[0])
            what = "GradCAM weight" if self.relevance == "gradcam" else f"GradCAM weight and {self.relevance} relevance"
            dead = int((~alive[i]).sum())
            raise ValueError(
                f"QFS-CAM: no feature map of target layer {name!r} has a positive {what} and non-zero "
                f"activations for sample index {i} ({dead} of its {alive.shape[1]} maps are all zero), so "
                "there is nothing to select (the target score may not depend on this layer, e.g. "
                "all-zero gradients)"
            )
        # Every sample's candidates from one nonzero() over the batch (row-major: in order).
        cols = np.nonzero(mask)[1].astype(np.int64)
        out = np.split(cols, np.cumsum(counts)[:-1])
        if self.candidates is not None:
            for row in np.flatnonzero(counts > self.candidates):
                cand = out[row]
                order = np.argsort(-rel[row][cand], kind="stable")[: self.candidates]
                out[row] = np.sort(cand[order])
        d = np.array([c.size for c in out])
        if self.k is not None and (d < self.k).any():
            i = int(np.flatnonzero(d < self.k)[0])
            raise ValueError(
                f"k={self.k} exceeds the number of candidate maps d={d[i]} (maps with positive weight and relevance "
                f"that are not all zero"
                f"{'' if self.candidates is None else f', at most candidates={self.candidates}'}) of target "
                f"layer {name!r} for sample index {i}; {_d_summary(d, self.k)}"
            )
        return out

    def _problems(
        self, layer: LayerCapture, alpha: torch.Tensor, rel: np.ndarray, cands: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Every sample's QUBO: ``(h, J, beta)`` with h (B, dmax) and J (B, dmax, dmax) float64,
        sample i's problem in ``h[i, :d_i]``, ``J[i, :d_i, :d_i]`` (zero-padded beyond).

        Made to be handed to the solvers without a validation pass
        (:meth:`~qfsel.qubo.ProblemBatch._trusted`): every J is exactly symmetric with a zero
        diagonal by construction, and h and J are checked finite here (one reduction each).
        """
        A = layer.activations
        b = A.shape[0]
        # Gather each sample's candidate maps, zero-padded to the largest d: the (B, d, d)
        # matrices are computed for the candidates only, never (B, K, K).
        sizes = np.array([c.size for c in cands])
        dmax = int(sizes.max())
        valid_np = np.arange(dmax)[None, :] < sizes[:, None]
        idx_np = np.zeros((b, dmax), dtype=np.int64)
        idx_np[valid_np] = np.concatenate(cands)  # row-major: sample i's candidates in row i
        idx = torch.from_numpy(idx_np).to(A.device)
        valid = torch.from_numpy(valid_np).to(A.device)
        rows = torch.arange(b, device=A.device)[:, None]
        a_c = A[rows, idx] * valid[:, :, None, None].to(A.dtype)
        alpha_c = alpha[rows, idx] * valid.to(alpha.dtype)
        if self.objective == "relevance-redundancy":
            red = _symmetric(scoring.redundancy(self.redundancy, a_c, alpha_c))
            _check_finite_problems(layer.name, "redundancy J", red.sum(dim=(1, 2)))
            j_all = np.ascontiguousarray(red.cpu().numpy(), dtype=np.float64)
            r = np.where(valid_np, np.take_along_axis(rel, idx_np, axis=1), 0.0).astype(np.float64, copy=False)
            # Candidates have a positive relevance, so each row's maximum is its own (> 0).
            with np.errstate(invalid="ignore"):  # an infinite relevance: NaN, refused just below
                h_all = r / r.max(axis=1, keepdims=True)
            _check_finite_problems(layer.name, "relevance h", h_all.sum(axis=1))
            return h_all, j_all, self.beta
        full = weighted_map(A, alpha)  # the full GradCAM map, over all K maps
        g_t, p_t = scoring.representative_terms(a_c, alpha_c, full)
        g_all, p_all = g_t.cpu().numpy(), _symmetric(p_t).cpu().numpy()
        h_all = np.zeros((b, dmax), dtype=np.float64)
        j_all = np.zeros((b, dmax, dmax), dtype=np.float64)
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite terms are refused below
            for i, c in enumerate(cands):
                self._representative_problem(i, c.size, g_all, p_all, h_all, j_all)
        _check_finite_problems(layer.name, "relevance h", h_all.sum(axis=1))
        _check_finite_problems(layer.name, "redundancy J", j_all.sum(axis=(1, 2)))
        return h_all, j_all, self.beta

    def _representative_problem(
        self, i: int, d: int, g_all: np.ndarray, p_all: np.ndarray, h_all: np.ndarray, j_all: np.ndarray
    ) -> None:
        """Sample i's representative objective in FeatureSelectionProblem form, into h_all, j_all."""
        g = g_all[i, :d].astype(np.float64)
        p = p_all[i, :d, :d].astype(np.float64)
        g = g - min(g.min(), 0.0)
        if d > 1:
            off = ~np.eye(d, dtype=bool)
            p[off] -= min(p[off].min(), 0.0)
        h = g / self.beta
        j = p / (1.0 - self.beta)
        top = max(h.max(), j.max() if d > 1 else 0.0)
        scale = 1.0 / top if top > 0 else 1.0
        h_all[i, :d] = h * scale
        j_all[i, :d, :d] = j * scale

    @staticmethod
    def unpadded_problems(
        h_all: np.ndarray, j_all: np.ndarray, cands: list[np.ndarray]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Sample i's ``(h, J)`` (views of size d_i) from the padded arrays of :meth:`_problems`.

        For subclasses that record the problems QFS-CAM solves (``qfsel.instances``,
        ``qfsel.quantum``): ``_problems`` and ``_solve`` pass ``h_all (B, dmax)`` and
        ``J_all (B, dmax, dmax)``, zero-padded beyond each sample's d.
        """
        return [(h_all[i, : c.size], j_all[i, : c.size, : c.size]) for i, c in enumerate(cands)]

    def _solve(
        self, name: str, h_all: np.ndarray, j_all: np.ndarray, beta: float, cands: list[np.ndarray]
    ) -> LayerSelection:
        import qfsel
        from qfsel.qubo import ProblemBatch

        b = len(cands)
        d = np.array([c.size for c in cands], dtype=np.int64)
        selected: list[np.ndarray] = [np.empty(0, np.int64)] * b
        energies = np.empty(b, dtype=np.float64)
        feasible = np.empty(b, dtype=bool)
        solver_s = 0.0
        calls = 0
        sampler_name = self.sampler if isinstance(self.sampler, str) else type(self.sampler).__name__
        t0 = time.perf_counter()
        for dval in np.unique(d):
            members = np.flatnonzero(d == dval)
            if members.size == b and dval == h_all.shape[1]:
                h, j = h_all, j_all  # every sample has the largest d: the arrays as they are
            else:
                span = np.arange(dval)
                h = np.ascontiguousarray(h_all[members[:, None], span[None, :]])
                j = np.ascontiguousarray(j_all[members[:, None, None], span[None, :, None], span[None, None, :]])
            # Arrays computed and checked by _problems (finite, J symmetric with a zero
            # diagonal), beta checked at construction, 1 <= k <= d checked by _candidates: no
            # copy and no second validation pass (qfsel.ProblemBatch(...) would make one).
            batch = ProblemBatch._trusted(h, j, beta, self.k)
            sol = qfsel.solve(batch, self.sampler, **self._solve_params())
            calls += 1
            states = np.asarray(sol.states).astype(bool)
            energies[members] = np.asarray(sol.energies, dtype=np.float64)
            feasible[members] = np.asarray(sol.feasible, dtype=bool)
            solver_s += float(sol.timing.get("total_s", 0.0))
            sampler_name = str(getattr(sol, "sampler", sampler_name))
            for row, i in enumerate(members):
                selected[i] = cands[i][states[row]]
        timing = {"total_s": solver_s, "solve_calls": float(calls), "wall_s": time.perf_counter() - t0}
        return LayerSelection(
            layer=name,
            selected=selected,
            candidates=cands,
            d=d,
            energies=energies,
            feasible=feasible,
            timing=timing,
            sampler=sampler_name,
        )

    def layer_weights(self, layer: LayerCapture, cap: Capture) -> tuple[torch.Tensor, LayerSelection]:
        alpha = scoring.gradcam_weights(layer.gradients)
        rel = self._relevance(layer, cap, alpha).detach().double().cpu().numpy()
        # A map that is identically zero adds nothing to the heatmap and has zero redundancy
        # with every map, so the QUBO would always select it: it is never a candidate.
        alive = layer.activations.flatten(2).any(dim=2).cpu().numpy()  # finite (checked by capture)
        cands = self._candidates(layer.name, rel, alpha.detach().double().cpu().numpy(), alive)
        h_all, j_all, beta = self._problems(layer, alpha, rel, cands)
        sel = self._solve(layer.name, h_all, j_all, beta, cands)
        mask = np.zeros(tuple(alpha.shape), dtype=bool)
        for i, s in enumerate(sel.selected):
            mask[i, s] = True
        return alpha * torch.from_numpy(mask).to(device=alpha.device, dtype=alpha.dtype), sel

    def __repr__(self) -> str:
        names = [n for n, _ in self.target_layers]
        return (
            f"QFSCAM(target_layers={names}, beta={self.beta}, k={self.k}, sampler={self.sampler!r}, "
            f"relevance={self.relevance!r}, redundancy={self.redundancy!r}, objective={self.objective!r}, "
            f"candidates={self.candidates})"
        )


def _symmetric(j: torch.Tensor) -> torch.Tensor:
    """Each (d, d) matrix's strict upper triangle mirrored below it: exactly symmetric, zero
    diagonal. The solvers read the upper triangle only, so what they solve is unchanged."""
    upper = torch.triu(j, diagonal=1)
    return upper + upper.transpose(1, 2)


def _check_finite_problems(name: str, what: str, row_sums: Any) -> None:
    """Raises naming the samples whose QUBO terms are NaN or inf. The terms of h and J lie in
    [0, 1] by construction (or are NaN/inf), so a sample's sum is finite exactly when all are."""
    ok = np.isfinite(row_sums.cpu().numpy() if isinstance(row_sums, torch.Tensor) else row_sums)
    if not ok.all():
        idx = np.flatnonzero(~ok).tolist()
        raise ValueError(
            f"QFS-CAM: the {what} of target layer {name!r} is NaN or inf for sample index {idx[0]} "
            f"(all: {idx}); the relevance or the feature maps overflowed"
        )


class _SelectedOutput(nn.Module):
    """``model`` followed by its output selector: a tensor-returning model for re-runs (ablation)."""

    def __init__(self, model: nn.Module, output_selector: OutputSelector) -> None:
        super().__init__()
        self.model = model
        self.output_selector = output_selector

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return select_output(self.model(x), self.output_selector)


def _takes_seed(sampler: Any) -> bool:
    """Whether ``seed`` may be passed to ``sampler``: every name qfsel routes takes it; a dimod
    sampler object only when its ``parameters`` list it (dimod warns on every call otherwise)."""
    params = getattr(sampler, "parameters", None)
    return isinstance(sampler, str) or not isinstance(params, Mapping) or "seed" in params


def _validate_solver(sampler: Any, params: Mapping[str, Any]) -> None:
    """Raises what ``qfsel.solve(problem, sampler, **params)`` would raise for the sampler and
    its parameters (unknown name, bad seed, unknown or out-of-range parameter), without solving."""
    from qfsel.routing import validate_solver

    validate_solver(sampler, params)


def _check_explainers_match(
    cam: BaseCAM, model: nn.Module | None, target_layers: LayerSpec | Sequence[LayerSpec] | None
) -> None:
    """Refuses ``explainers`` built for another model or other target layers than :func:`explain_all`
    was given (they would be explained instead, silently). Names and modules are compared with
    the explainer's resolved layers, without a walk over the model."""
    if model is not None and model is not cam.model:
        raise ValueError(
            f"explainers: they were built for another model ({type(cam.model).__name__} at "
            f"{id(cam.model):#x}) than the one given ({type(model).__name__} at {id(model):#x}); "
            "pass the model they explain, or build them for this one with build_explainers"
        )
    if target_layers is None:  # the explainers' own
        return
    specs = [target_layers] if isinstance(target_layers, (str, nn.Module)) else target_layers
    have = cam.target_layers
    same = isinstance(specs, Sequence) and len(specs) == len(have) and all(
        spec == name if isinstance(spec, str) else spec is module for spec, (name, module) in zip(specs, have)
    )
    if not same:  # maybe another name of the same module: resolved, on this failure path only
        try:
            same = [m for _, m in resolve_target_layers(cam.model, target_layers)] == [m for _, m in have]
        except (TypeError, ValueError):
            same = False
    if not same:
        given = [s if isinstance(s, str) else type(s).__name__ for s in specs] if isinstance(specs, Sequence) else specs
        raise ValueError(
            f"explainers: they explain target layers {[n for n, _ in have]}, but target_layers={given!r} "
            "was given; pass the same layers, or build explainers for these ones"
        )


METHODS: dict[str, type[BaseCAM]] = {"qfs": QFSCAM, "gradcam": GradCAM, "gradcam++": GradCAMPlusPlus}
"""Method names accepted by :func:`explain_all` (``"qfs-cam"`` is an alias of ``"qfs"``)."""

_ALIASES = {"qfs-cam": "qfs", "gradcampp": "gradcam++", "gradcam-plus-plus": "gradcam++"}


def method_names(methods: str | Sequence[str]) -> list[str]:
    """Normalises ``methods`` (a name or a sequence of names) to :data:`METHODS` keys, in order.

    Raises:
        ValueError: an unknown name, a repeated name, or no method at all.
        TypeError: a name that is not a string.
    """
    if not isinstance(methods, (str, Sequence, set, frozenset)):
        raise TypeError(
            f"methods: expected a method name or a sequence of them (e.g. ['gradcam', 'qfs']), got "
            f"{type(methods).__name__}"
        )
    items = [methods] if isinstance(methods, str) else list(methods)
    out: list[str] = []
    for m in items:
        if not isinstance(m, str):
            raise TypeError(f"methods: expected method names (str), got {type(m).__name__}")
        name = _ALIASES.get(m.lower(), m.lower())
        if name not in METHODS:
            raise ValueError(f"methods: expected names from {sorted(METHODS)}, got {m!r}")
        if name in out:
            raise ValueError(f"methods: {m!r} is given twice")
        out.append(name)
    if not out:
        raise ValueError(f"methods: expected at least one of {sorted(METHODS)}, got none")
    return out


def build_explainers(
    model: nn.Module,
    target_layers: LayerSpec | Sequence[LayerSpec],
    methods: str | Sequence[str] = ("qfs", "gradcam", "gradcam++"),
    *,
    reshape_transform: ReshapeTransform | None = None,
    upsample: bool = True,
    output_selector: OutputSelector = None,
    channels_last: bool | None = None,
    **qfs_params: Any,
) -> dict[str, BaseCAM]:
    """One explainer per method name, all on the same model and target layers.

    ``qfs_params`` (beta, k, sampler, relevance, ...) go to :class:`QFSCAM`; they are
    refused when QFS-CAM is not among ``methods`` (they would be silently ignored).
    """
    names = method_names(methods)
    if qfs_params and "qfs" not in names:
        raise TypeError(f"QFS-CAM parameters {sorted(qfs_params)} given, but 'qfs' is not among methods {names}")
    cams: dict[str, BaseCAM] = {}
    for name in names:
        cls = METHODS[name]
        extra = qfs_params if name == "qfs" else {}
        cams[name] = cls(
            model,
            target_layers,
            reshape_transform=reshape_transform,
            upsample=upsample,
            output_selector=output_selector,
            channels_last=channels_last,
            **extra,
        )
    return cams


def explain_all(
    model: nn.Module,
    input_tensor: torch.Tensor,
    target_layers: LayerSpec | Sequence[LayerSpec],
    methods: str | Sequence[str] = ("qfs", "gradcam", "gradcam++"),
    targets: TargetsLike = None,
    *,
    reshape_transform: ReshapeTransform | None = None,
    upsample: bool = True,
    output_selector: OutputSelector = None,
    channels_last: bool | None = None,
    explainers: Mapping[str, BaseCAM] | None = None,
    aug_smooth: bool = False,
    eigen_smooth: bool = False,
    as_tensor: bool = False,
    **qfs_params: Any,
) -> dict[str, ExplanationResult]:
    """Every requested method from one capture (one forward and one backward pass).

    GradCAM, GradCAM++ and QFS-CAM differ only in their per-map weights, so a batch is
    captured once and each method computes its weights from the same activations and
    gradients: the results equal those of calling each explainer on its own.

    Args:
        model, input_tensor, target_layers, targets, reshape_transform, upsample,
            output_selector, channels_last: as for :class:`BaseCAM` and :meth:`BaseCAM.explain`.
        aug_smooth, eigen_smooth, as_tensor: as for :meth:`BaseCAM.explain`; with
            ``aug_smooth`` each augmented pass is captured once too, for every method.
        methods: names from :data:`METHODS` ("qfs", "gradcam", "gradcam++").
        explainers: explainers already built by :func:`build_explainers` (reused across
            batches); ``model`` and ``target_layers`` must be theirs (or None), ``methods``, ``upsample``,
            ``output_selector`` and ``channels_last`` are then ignored, and QFS-CAM parameters are refused.
        **qfs_params: keyword arguments of :class:`QFSCAM` (beta, k, sampler, seed, ...).

    Returns:
        ``{method name: ExplanationResult}`` in the order of ``methods``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from qfsel import explain_all
        >>> _ = torch.manual_seed(0)
        >>> model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(),
        ...                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2))
        >>> res = explain_all(model, torch.rand(2, 3, 8, 8), ["1"], sampler="exact")
        >>> sorted(res), res["qfs"].heatmaps.shape
        (['gradcam', 'gradcam++', 'qfs'], (2, 8, 8))
    """
    if explainers is not None and not isinstance(explainers, Mapping):
        raise TypeError(
            "explainers: expected a mapping of method name -> explainer (as build_explainers returns), "
            f"got {type(explainers).__name__}"
        )
    cams = dict(explainers) if explainers is not None else build_explainers(
        model,
        target_layers,
        methods,
        reshape_transform=reshape_transform,
        upsample=upsample,
        output_selector=output_selector,
        channels_last=channels_last,
        **qfs_params,
    )
    if not cams:
        raise ValueError("explainers: expected at least one explainer, got an empty mapping")
    first = next(iter(cams.values()))
    if not isinstance(first, BaseCAM):
        raise TypeError(f"explainers[{next(iter(cams))!r}]: expected a qfsel CAM, got {type(first).__name__}")
    modules = [m for _, m in first.target_layers]
    if explainers is not None:
        _check_explainers_match(first, model, target_layers)
        if qfs_params:
            raise TypeError(
                f"QFS-CAM parameters {sorted(qfs_params)} given with explainers, which were built with "
                "their own: build the explainers with them (build_explainers(..., **qfs_params))"
            )
        if reshape_transform is not None and reshape_transform is not first.reshape_transform:
            raise ValueError(
                "reshape_transform: the explainers given were built with another one; build them with it"
            )
    for name, cam in cams.items():
        if not isinstance(cam, BaseCAM):
            raise TypeError(f"explainers[{name!r}]: expected a qfsel CAM, got {type(cam).__name__}")
        if (
            cam.model is not first.model
            or [m for _, m in cam.target_layers] != modules
            or cam.reshape_transform is not first.reshape_transform
            or cam.output_selector != first.output_selector
            or cam.channels_last != first.channels_last
        ):
            raise ValueError(
                f"explainers[{name!r}]: every explainer must share one model, target layers, "
                "reshape_transform, output_selector and channels_last"
            )
    return _explain_with(cams, input_tensor, targets, aug_smooth, eigen_smooth, as_tensor)
