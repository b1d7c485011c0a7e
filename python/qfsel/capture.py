"""Capture activations and gradients of target layers with scoped hooks.

One forward pass with forward hooks on the target layers, then ONE
``torch.autograd.grad`` call on the sum of the per-sample target scores gives,
for every sample of the batch, the activations ``A`` (B, K, H, W) of each target
layer and the gradients ``G = d score_b / d A_b`` (samples do not interact in
eval mode, so the gradient of the sum w.r.t. sample b's activations is the
gradient of sample b's own score).

Design notes:

* The forward hook keeps the layer's output tensor ``a`` and hands the rest of
  the network a clone of it. A following in-place op (``ReLU(inplace=True)``)
  then modifies the clone, never ``a``: both the stored activations and the
  gradient w.r.t. ``a`` are those of the layer's real output.
* Gradients come from ``torch.autograd.grad(sum(scores), outputs)``, so the
  model's parameters' ``.grad`` are left untouched.
* Autograd records only what the backward pass needs: the input does not require
  grad and, for the duration of the pass, neither do the model's parameters
  (their flags are restored afterwards). A target layer whose output does not
  require grad (none before it does) hands the rest of the network a new leaf
  with its values, so the graph starts at the first target layer: nothing before
  it is recorded, and the backward pass computes no weight gradients. Later
  target layers are differentiated as graph nodes, so a gradient that flows
  through one target layer to another is complete.
* A model whose samples interact in eval mode (a BatchNorm without running statistics)
  gets one backward pass per sample instead, so that each sample's gradients are those of
  its own score.
* Hooks are removed in ``finally`` (a context manager that never swallows
  exceptions); the model is put in eval mode for the pass and every submodule's
  previous ``training`` flag is restored afterwards.
* On the CPU the pass runs in the channels-last memory layout (``channels_last=None``, the
  default): a CNN's pass on the CPU is up to 1.55x faster in it (as fast, on one of seven
  families measured; docs/benchmarks.md, section 7). The input is handed over channels-last (or, for a
  single-channel input, whose layout is ambiguous, the first Conv2d's output is converted); the
  user's model and its parameters are not touched, and the captured activations and gradients are
  handed back in the usual contiguous layout. The results agree with a contiguous pass to float
  rounding (about 1e-6 relative). A model whose pass fails in that layout (e.g. one that
  calls ``.view`` where ``.reshape`` is needed, in its forward or in a custom autograd.Function's
  backward; or that asserts its input is contiguous) is run in the contiguous layout instead, then
  and for every later pass. So is a model whose output in that layout differs from its output in
  the input's own layout by more than rounding (one that reads its input's memory as if it were
  contiguous, e.g. through ``torch.as_strided``): a model's first channels-last pass is checked
  against one forward pass (no gradients) in the input's own layout. ``channels_last=False``
  switches it off; ``True`` uses it on every device.
* Passes are serialised (:data:`PASS_LOCK`): threads sharing an explainer or a model
  get the results they would get alone, and the model's flags come back as they were.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from qfsel.capture import capture
    >>> model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
    ...                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> cap = capture(model, torch.rand(2, 3, 8, 8), ["0"])
    >>> tuple(cap.layers[0].activations.shape), tuple(cap.layers[0].gradients.shape)
    ((2, 4, 8, 8), (2, 4, 8, 8))
"""

from __future__ import annotations

import contextlib
import math
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import torch
from torch import nn

from qfsel.targets import (
    ClassifierOutputTarget,
    Target,
    TargetsLike,
    _predicted_class_targets,
    normalize_targets,
)

__all__ = [
    "Capture",
    "LayerCapture",
    "LayerHooks",
    "ReshapeTransform",
    "capture",
    "OutputSelector",
    "PASS_LOCK",
    "check_channels_last",
    "check_input",
    "check_output_selector",
    "check_reshape_transform",
    "eval_mode",
    "frozen_parameters",
    "resolve_target_layers",
    "select_output",
]

#: Held by every pass that changes a model for its duration (its training and requires_grad
#: flags, hooks on its layers): :func:`capture` and the re-runs of
#: :func:`qfsel.scoring.ablation_relevance`. Two threads explaining at once (one explainer, or two
#: on one model) would otherwise see each other's changes: hooks firing in the other pass, and a
#: model left in eval mode (the second pass restores the flags the first one had set). Passes
#: are serialised; qfsel's hooks also ignore forward passes run by other threads meanwhile.
PASS_LOCK = threading.RLock()

#: Maps a layer's output (and its gradient) to a (B, K, H, W) tensor.
ReshapeTransform = Callable[[torch.Tensor], torch.Tensor]
LayerSpec = Union[str, nn.Module]

_LISTED_NAMES = 20

#: Models whose forward pass failed in the channels-last layout and worked in the contiguous one
#: (see the module docstring): the error, by model. Weak keys: a model that is deleted drops out.
_NOT_CHANNELS_LAST: weakref.WeakKeyDictionary[nn.Module, str] = weakref.WeakKeyDictionary()

#: Models whose first channels-last pass gave the output of a pass in the input's own layout (to
#: rounding; :func:`_channels_last_differs`): later passes are not checked again.
_CHANNELS_LAST_OK: weakref.WeakKeyDictionary[nn.Module, bool] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class LayerCapture:
    """What one target layer gave in one capture.

    Attributes:
        name: the layer's name in ``model.named_modules()``.
        module: the layer.
        activations: (B, K, H, W), detached, on the model's device.
        gradients: (B, K, H, W), gradient of each sample's target score w.r.t.
            that sample's activations.
    """

    name: str
    module: nn.Module
    activations: torch.Tensor
    gradients: torch.Tensor

    def __repr__(self) -> str:
        a = self.activations
        return (
            f"LayerCapture(name={self.name!r}, module={type(self.module).__name__}, "
            f"activations={tuple(a.shape)} {str(a.dtype).removeprefix('torch.')} on {a.device})"
        )


@dataclass(frozen=True)
class Capture:
    """The result of :func:`capture`.

    Attributes:
        input: the input batch (detached).
        layers: one :class:`LayerCapture` per target layer, in the order given.
        output: the model output (detached), e.g. (B, C) logits.
        scores: (B,) target score of each sample (detached).
        targets: the B target callables used.
        predicted: (B,) argmax of the output for a (B, C) output, else -1.
    """

    input: torch.Tensor
    layers: tuple[LayerCapture, ...]
    output: torch.Tensor
    scores: torch.Tensor
    targets: tuple[Target, ...]
    predicted: torch.Tensor

    def __repr__(self) -> str:
        pred = self.predicted.tolist()
        shown = str(pred[:8])[:-1] + (", ...]" if len(pred) > 8 else "]")
        return (
            f"Capture(input={tuple(self.input.shape)} on {self.input.device}, "
            f"layers={[layer.name for layer in self.layers]}, output={tuple(self.output.shape)}, predicted={shown})"
        )


def _layer_listing(model: nn.Module) -> str:
    names = [n for n, _ in model.named_modules() if n]
    conv_like = (nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm, nn.ReLU, nn.modules.pooling._MaxPoolNd)
    listed = [n for n, m in model.named_modules() if n and isinstance(m, conv_like)] or names
    shown = ", ".join(repr(n) for n in listed[:_LISTED_NAMES])
    more = " ..." if len(listed) > _LISTED_NAMES else ""
    return f"valid names include {shown}{more} ({len(names)} named modules in total)"


def resolve_target_layers(model: nn.Module, target_layers: LayerSpec | Sequence[LayerSpec]) -> list[tuple[str, nn.Module]]:
    """Resolves target layers given as names or modules to ``(name, module)`` pairs.

    Args:
        model: the network.
        target_layers: one layer or a non-empty sequence of layers; each a dotted
            name as in ``model.named_modules()`` (e.g. ``"layer4.1.conv2"``) or a
            module of the model.

    Raises:
        ValueError: a name that is not a submodule (the message lists valid
            names), a module that is not part of the model, a layer given twice,
            or an empty list.
        TypeError: an entry that is neither a str nor an nn.Module.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if isinstance(target_layers, (str, nn.Module)):
        target_layers = [target_layers]
    if not isinstance(target_layers, Sequence) or len(target_layers) == 0:
        raise ValueError(
            "target_layers must be a layer name, a module, or a non-empty list of them; "
            f"got {target_layers!r}"
        )
    by_name: dict[str, nn.Module] = {}
    name_of: dict[int, str] = {}
    for n, m in model.named_modules():  # one walk over the model (this runs on every capture)
        by_name[n] = m
        name_of.setdefault(id(m), n)
    out: list[tuple[str, nn.Module]] = []
    for i, layer in enumerate(target_layers):
        if isinstance(layer, str):
            if layer not in by_name:
                raise ValueError(
                    f"target_layers[{i}] = {layer!r} is not a submodule of {type(model).__name__}; "
                    + _layer_listing(model)
                )
            out.append((layer, by_name[layer]))
        elif isinstance(layer, nn.Module):
            if id(layer) not in name_of:
                raise ValueError(
                    f"target_layers[{i}] is a {type(layer).__name__} that is not part of the model; "
                    + _layer_listing(model)
                )
            out.append((name_of[id(layer)] or "<model>", layer))
        else:
            raise TypeError(
                f"target_layers[{i}] must be a layer name (str) or an nn.Module; got {type(layer).__name__}"
            )
        first = next(j for j, (_, m) in enumerate(out) if m is out[-1][1])
        if first != i:
            raise ValueError(
                f"target_layers[{i}] ({out[-1][0]!r}) repeats target_layers[{first}]; give each layer once"
            )
    return out


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Puts ``model`` in eval mode; restores every submodule's ``training`` flag on exit."""
    with _eval_mode(model):
        yield model


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[list[tuple[nn.Module, bool]]]:
    """:func:`eval_mode`, yielding ``(module, previous training flag)`` for every module (one walk
    over the model serves the flags and :func:`_mixes_batch`)."""
    flags = [(m, m.training) for m in model.modules()]
    if any(flag for _, flag in flags):  # a model already in eval mode is left as it is
        model.eval()
    try:
        yield flags
    finally:
        for m, flag in flags:
            if m.training != flag:  # nn.Module.__setattr__ is slow: only the flags that changed
                m.training = flag


@contextlib.contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[nn.Module]:
    """Sets ``requires_grad=False`` on the model's parameters that have it; restores them on exit.

    Inside, autograd records nothing for the parameters: a pass that needs gradients
    with respect to activations only (:func:`capture`) builds no graph before its first
    target layer and computes no weight gradients.
    """
    changed = [p for p in model.parameters() if p.requires_grad]
    try:
        for p in changed:
            p.requires_grad_(False)
        yield model
    finally:
        for p in changed:
            try:
                p.requires_grad_(True)
            except RuntimeError:
                # A parameter made under torch.inference_mode() (an inference tensor): its flag
                # can only be set back inside inference mode.
                with torch.inference_mode():
                    p.requires_grad_(True)


def _reshaped(transform: ReshapeTransform, name: str, output: torch.Tensor) -> Any:
    """``transform(output)``; its failure raised as a ValueError naming the layer and the output.

    A ValueError passes through the forward pass as it is (see :func:`_forward`): a RuntimeError
    would be reported as a forward pass that failed on the input.
    """
    try:
        return transform(output)
    except Exception as err:
        raise ValueError(
            f"reshape_transform failed on the output of target layer {name!r}, {_shape_of(output)}: "
            f"{type(err).__name__}: {err}; it must map that output to (B, K, H, W) feature maps"
        ) from err


class LayerHooks:
    """Forward hooks on target layers that keep each layer's output; a context manager.

    On enter, registers one forward hook per layer; on exit (also on error),
    removes them all. Exceptions are never swallowed.

    Args:
        layers: ``(name, module)`` pairs.
        reshape_transform: applied to each layer's output; the result must be
            4-D (B, K, H, W).
    """

    def __init__(self, layers: Sequence[tuple[str, nn.Module]], reshape_transform: ReshapeTransform | None = None):
        self.layers = list(layers)
        self.reshape_transform = reshape_transform
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles: list[Any] = []
        self._thread = threading.get_ident()

    def _make_hook(self, name: str) -> Callable[..., torch.Tensor | None]:
        def hook(module: nn.Module, inputs: Any, output: Any) -> torch.Tensor | None:
            if threading.get_ident() != self._thread:
                return None  # another thread's forward pass of the model: not this capture's
            if not isinstance(output, torch.Tensor):
                raise TypeError(
                    f"target layer {name!r} returned a {type(output).__name__}, not a tensor; "
                    "choose a layer with a tensor output"
                )
            if name in self.outputs:
                raise ValueError(
                    f"target layer {name!r} was called more than once in one forward pass "
                    "(a shared module); choose a layer that runs once"
                )
            transform = self.reshape_transform
            view = output if transform is None else _reshaped(transform, name, output)
            if not isinstance(view, torch.Tensor) or view.ndim != 4:
                shape = tuple(view.shape) if isinstance(view, torch.Tensor) else type(view).__name__
                hint = (
                    "pass reshape_transform= a function mapping it to (B, K, H, W), e.g. for a "
                    "vision transformer: lambda t: t[:, 1:].reshape(t.shape[0], 14, 14, -1).permute(0, 3, 1, 2)"
                    if self.reshape_transform is None
                    else "the reshape_transform given must return a 4-D tensor"
                )
                raise ValueError(
                    f"target layer {name!r} gives an output of shape {shape}, but CAM methods need "
                    f"(B, K, H, W) feature maps: {hint}"
                )
            if not output.requires_grad and (output.is_floating_point() or output.is_complex()):
                # Nothing before this layer is differentiated: the graph starts here, at a leaf
                # holding the layer's output (see the module docstring).
                output = output.detach().requires_grad_(True)
            self.outputs[name] = output
            # The rest of the network gets a clone: in-place ops downstream (ReLU(inplace=True))
            # then cannot alter the stored output or the graph node we differentiate against.
            return output.clone()

        return hook

    def __enter__(self) -> LayerHooks:
        self._thread = threading.get_ident()
        try:
            for name, module in self.layers:
                self._handles.append(module.register_forward_hook(self._make_hook(name)))
        except BaseException:
            self.remove()
            raise
        return self

    def remove(self) -> None:
        """Removes every hook registered so far (idempotent)."""
        while self._handles:
            self._handles.pop().remove()

    def __exit__(self, *exc: object) -> None:
        self.remove()


def check_channels_last(channels_last: object) -> bool | None:
    """``channels_last``: None (channels-last on the CPU), True (on every device) or False."""
    if channels_last is not None and not isinstance(channels_last, bool):
        raise TypeError(
            "channels_last must be None (channels-last memory layout on the CPU), True (on every "
            f"device) or False (the input's own layout); got {channels_last!r}"
        )
    return channels_last


def _wants_channels_last(model: nn.Module, x: torch.Tensor, channels_last: bool | None) -> bool:
    if channels_last is False or x.ndim != 4 or (channels_last is None and x.device.type != "cpu"):
        return False
    return model not in _NOT_CHANNELS_LAST


@contextlib.contextmanager
def _channels_last_layout(modules: Iterable[nn.Module], x: torch.Tensor, on: bool) -> Iterator[torch.Tensor]:
    """Yields the input to run the pass on: ``x`` itself, or, when ``on``, ``x`` in channels-last
    layout. A single-channel ``x`` is the same in both layouts (PyTorch keeps its outputs
    contiguous): then the first Conv2d output that is contiguous is converted instead, by a forward
    hook that acts once. Every later layer keeps the layout of its input."""
    if not on:
        yield x
        return
    if x.shape[1] > 1:
        yield x.contiguous(memory_format=torch.channels_last)
        return
    thread, pending = threading.get_ident(), [True]

    def convert(module: nn.Module, inputs: Any, output: Any) -> torch.Tensor | None:
        if not pending[0] or threading.get_ident() != thread:
            return None
        pending[0] = False
        if isinstance(output, torch.Tensor) and output.ndim == 4 and output.shape[1] > 1 and output.is_contiguous():
            return output.contiguous(memory_format=torch.channels_last)
        return None

    handles = []
    try:
        # Registered before the target layers' hooks: a target Conv2d's hook sees the converted output.
        for m in modules:
            if isinstance(m, nn.Conv2d):
                handles.append(m.register_forward_hook(convert))
        yield x
    finally:
        for handle in handles:
            handle.remove()


def _channels_last_differs(
    model: nn.Module, x: torch.Tensor, out: torch.Tensor, output_selector: OutputSelector
) -> str | None:
    """Runs ``model`` on ``x`` in its own layout (no gradients) and compares the output with ``out``,
    that of the channels-last pass: None when they agree to rounding (the model is then trusted in
    that layout, :data:`_CHANNELS_LAST_OK`), else what differs. The tolerance is sqrt(eps) of the
    output's dtype times its largest magnitude (float32: 3.5e-4; the layouts differ by about 1e-6):
    a model that, say, views its input through ``torch.as_strided`` with contiguous strides of its
    own, or hands its ``data_ptr()`` to an extension, differs by far more."""
    try:
        with PASS_LOCK, eval_mode(model), torch.no_grad():
            ref = select_output(model(x), output_selector)
    except Exception:
        ref = None  # runs only in channels-last (a .permute(0, 2, 3, 1).view(...)): nothing to compare
    got = out.detach()
    if ref is None:
        _CHANNELS_LAST_OK[model] = True
        return None
    if ref.shape != got.shape:
        return (f"its output in the channels-last layout has shape {tuple(got.shape)}, in the input's own "
                f"layout {tuple(ref.shape)}")
    ref = ref.to(got.dtype)
    if got.is_floating_point() or got.is_complex():
        finite = ref[torch.isfinite(ref)]
        scale = float(finite.abs().max()) if finite.numel() else 0.0
        tol = math.sqrt(torch.finfo(got.dtype).eps) * scale
        same = bool(torch.isclose(got, ref, rtol=0.0, atol=tol, equal_nan=True).all())
    else:
        tol, same = 0.0, torch.equal(got, ref)
    if same:
        _CHANNELS_LAST_OK[model] = True
        return None
    gap = float(torch.nan_to_num((got - ref).abs(), nan=math.inf).max())
    return (f"its output in the channels-last layout differs from the one in the input's own layout by up "
            f"to {gap:.3g} (rounding would be below {tol:.3g}): the model reads its input's memory as if "
            "it were contiguous")


def check_input(model: nn.Module, input_tensor: object) -> torch.Tensor:
    """Checks that ``input_tensor`` is a non-empty floating (B, C, H, W) batch.

    The channel count, size, dtype and device are left to the model's forward pass:
    guessing them from the model's modules (e.g. its first registered Conv2d) refuses
    models that run, such as one that defines its head before its stem or repeats a
    grey channel to three inside ``forward``. When the forward pass fails,
    :func:`capture` names the module that raised and what it was given.

    Raises:
        TypeError: not a floating-point torch tensor.
        ValueError: not 4-D, or empty.
    """
    if not isinstance(input_tensor, torch.Tensor):
        raise TypeError(f"input_tensor must be a torch.Tensor (B, C, H, W); got {type(input_tensor).__name__}")
    if input_tensor.ndim != 4:
        hint = " (a single image? use input_tensor.unsqueeze(0))" if input_tensor.ndim == 3 else ""
        raise ValueError(
            f"input_tensor must be 4-D (B, C, H, W); got shape {tuple(input_tensor.shape)}{hint}"
        )
    if not input_tensor.is_floating_point():
        raise TypeError(f"input_tensor must be a floating-point tensor; got dtype {input_tensor.dtype}")
    if input_tensor.shape[0] == 0:
        raise ValueError("input_tensor must hold at least one sample; got B = 0")
    return input_tensor


#: What ``output_selector=`` accepts: None (the model returns a tensor), a key or attribute
#: name (``"logits"`` for Hugging Face image classifiers), a position in a returned tuple,
#: or a callable mapping the model's output to the (B, ...) tensor to explain.
OutputSelector = Union[None, str, int, Callable[[Any], torch.Tensor]]


def check_reshape_transform(reshape_transform: object) -> ReshapeTransform | None:
    """Checks ``reshape_transform`` (None or a callable); returns it."""
    if reshape_transform is not None and not callable(reshape_transform):
        raise TypeError(f"reshape_transform must be callable or None; got {type(reshape_transform).__name__}")
    return reshape_transform


def check_output_selector(output_selector: object) -> OutputSelector:
    """Checks ``output_selector`` (see :data:`OutputSelector`); returns it."""
    if output_selector is None or isinstance(output_selector, str) or callable(output_selector):
        return output_selector
    if isinstance(output_selector, int) and not isinstance(output_selector, bool):
        return output_selector
    raise TypeError(
        "output_selector: expected None, a key or attribute name (str, e.g. 'logits'), a tuple "
        f"position (int) or a callable; got {type(output_selector).__name__} {output_selector!r}"
    )


def _describe_output(out: object) -> str:
    if isinstance(out, Mapping):
        return f"a {type(out).__name__} with keys {list(out.keys())}"
    if isinstance(out, (tuple, list)):
        kinds = ", ".join(
            f"{type(v).__name__}{tuple(v.shape) if isinstance(v, torch.Tensor) else ''}" for v in out[:8]
        )
        return f"a {type(out).__name__} of {len(out)} items ({kinds}{', ...' if len(out) > 8 else ''})"
    return f"a {type(out).__name__}"


def select_output(out: object, output_selector: OutputSelector = None) -> torch.Tensor:
    """The tensor to explain from a model's output (see :data:`OutputSelector`).

    Example:
        >>> import torch
        >>> from qfsel.capture import select_output
        >>> select_output({"logits": torch.zeros(2, 3)}, "logits").shape
        torch.Size([2, 3])
        >>> select_output((torch.zeros(2, 3), torch.ones(2)), 0).shape
        torch.Size([2, 3])
    """
    selected: object = out
    if output_selector is None:
        if not isinstance(out, torch.Tensor):
            hint = (
                "output_selector='logits' (a key or attribute of the output)"
                if isinstance(out, Mapping) or hasattr(out, "logits")
                else "output_selector=0 (a position in the returned tuple)"
                if isinstance(out, (tuple, list))
                else "output_selector= a callable mapping the output to the (B, C) tensor"
            )
            raise TypeError(
                f"the model must return a tensor (e.g. (B, C) logits); it returned {_describe_output(out)}: "
                f"pass {hint}"
            )
    elif isinstance(output_selector, str):
        if isinstance(out, Mapping):
            if output_selector not in out:
                raise ValueError(
                    f"output_selector={output_selector!r}: the model returned {_describe_output(out)}"
                )
            selected = out[output_selector]
        elif hasattr(out, output_selector):
            selected = getattr(out, output_selector)
        else:
            raise ValueError(
                f"output_selector={output_selector!r}: the model returned {_describe_output(out)}, "
                "which has no such key or attribute"
            )
    elif isinstance(output_selector, int):
        items = list(out.values()) if isinstance(out, Mapping) else out
        if not isinstance(items, (tuple, list)):
            raise ValueError(
                f"output_selector={output_selector}: a position needs a tuple, list or dict output; "
                f"the model returned {_describe_output(out)}"
            )
        if not -len(items) <= output_selector < len(items):
            raise ValueError(
                f"output_selector={output_selector}: out of range, the model returned {_describe_output(out)}"
            )
        selected = items[output_selector]
    else:
        selected = output_selector(out)
    if not isinstance(selected, torch.Tensor):
        raise TypeError(
            f"output_selector={output_selector!r} gave a {type(selected).__name__}, not a tensor "
            f"(the model returned {_describe_output(out)})"
        )
    return selected


class _ForwardFailed(Exception):
    """The model's forward pass raised a RuntimeError; located and reported by :func:`capture`."""

    def __init__(self, err: RuntimeError) -> None:
        super().__init__(str(err))
        self.err = err


def _shape_of(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)} on {value.device}"
    return f"a {type(value).__name__}"


def _failing_module(model: nn.Module, x: torch.Tensor) -> tuple[str, nn.Module, str] | None:
    """Re-runs a failed forward pass with hooks on every module: the innermost one that raised.

    Only called after a failure, so a forward pass that works pays nothing for it.
    """
    stack: list[tuple[str, nn.Module, str]] = []
    failed: list[tuple[str, nn.Module, str]] = []
    handles = []

    def enter(name: str) -> Callable[..., None]:
        def pre(module: nn.Module, inputs: tuple[Any, ...]) -> None:
            stack.append((name, module, _shape_of(inputs[0]) if inputs else "no positional input"))

        return pre

    def leave(module: nn.Module, inputs: Any, output: Any) -> None:
        if stack:
            stack.pop()

    try:
        for name, module in model.named_modules():
            handles.append(module.register_forward_pre_hook(enter(name or "<model>")))
            handles.append(module.register_forward_hook(leave))
        try:
            with torch.no_grad():
                model(x)
        except Exception:
            failed = list(stack)
    finally:
        for handle in handles:
            handle.remove()
    inner = [entry for entry in failed if entry[0] != "<model>"]
    return inner[-1] if inner else None


def _forward_error(model: nn.Module, x: torch.Tensor, err: RuntimeError) -> ValueError:
    frozen = [n for n, t in (*model.named_parameters(), *model.named_buffers()) if t.is_inference()]
    if frozen:
        return ValueError(
            f"model: {len(frozen)} of its parameters and buffers (e.g. {frozen[0]!r}) were made under "
            "torch.inference_mode(); autograd cannot differentiate through such tensors, and CAM "
            "methods need gradients: build or load the model outside torch.inference_mode() (use "
            f"torch.no_grad() there), or copy them, e.g. model.load_state_dict({{k: v.clone() for k, v in "
            f"model.state_dict().items()}}, assign=True) outside it ({err})"
        )
    param = next(model.parameters(), None)
    where = f"{x.dtype} on {x.device}" + (
        "" if param is None else f"; the model's parameters: {param.dtype} on {param.device}"
    )
    located = _failing_module(model, x)
    at = (
        ""
        if located is None
        else f" in module {located[0]!r} ({type(located[1]).__name__}: {_module_summary(located[1])}), "
        f"which was given {located[2]}"
    )
    return ValueError(
        f"the model's forward pass failed on input_tensor of shape {tuple(x.shape)} ({where}){at}; "
        f"check the input's channel count, size, dtype and device: {err}"
    )


def _module_summary(module: nn.Module) -> str:
    text = module.extra_repr() or "no arguments"
    return text if len(text) <= 80 else text[:77] + "..."


def _forward(model: nn.Module, x: torch.Tensor, output_selector: OutputSelector = None) -> torch.Tensor:
    try:
        raw = model(x)
    except (ValueError, TypeError):
        raise
    except torch.cuda.OutOfMemoryError:
        raise
    except RuntimeError as err:
        raise _ForwardFailed(err) from err
    out = select_output(raw, output_selector)
    if out.ndim == 0 or out.shape[0] != x.shape[0]:
        raise ValueError(
            f"the model output must have the batch on axis 0 (B = {x.shape[0]}); got shape {tuple(out.shape)}"
            + ("" if output_selector is None else f" (output_selector={output_selector!r})")
        )
    return out


def _all_finite(t: torch.Tensor) -> bool:
    """Whether every value of ``t`` is finite. One reduction first: the sum is finite only if
    all the values are (a NaN or an inf makes it NaN or inf); only a non-finite sum (maybe
    just an overflow) is looked at value by value."""
    if t.is_floating_point() and math.isfinite(float(t.sum(dtype=torch.promote_types(t.dtype, torch.float32)))):
        return True
    return bool(torch.isfinite(t).all())


def _check_finite(name: str, what: str, t: torch.Tensor) -> None:
    if _all_finite(t):
        return
    bad = ~torch.isfinite(t.flatten(1)).all(dim=1)
    if bool(bad.any()):
        idx = torch.nonzero(bad).flatten().tolist()
        raise ValueError(f"{what} of target layer {name!r} contain NaN or inf for sample index {idx[0]} (all: {idx})")


def capture(
    model: nn.Module,
    input_tensor: torch.Tensor,
    target_layers: LayerSpec | Sequence[LayerSpec],
    targets: TargetsLike = None,
    reshape_transform: ReshapeTransform | None = None,
    output_selector: OutputSelector = None,
    channels_last: bool | None = None,
) -> Capture:
    """Runs one forward and one backward pass and returns activations and gradients.

    Gradients are computed even when called inside ``torch.no_grad()`` or
    ``torch.inference_mode()``.

    Args:
        model: the network; run in eval mode, its flags restored afterwards.
        input_tensor: (B, C, H, W) floating batch on the model's device.
        target_layers: names or modules (see :func:`resolve_target_layers`).
        targets: see :func:`qfsel.targets.normalize_targets`; None = predicted class.
        reshape_transform: maps a non-(B, K, H, W) layer output (and its gradient)
            to (B, K, H, W).
        output_selector: for a model that returns a dict, a tuple or an object
            (e.g. a Hugging Face ``ImageClassifierOutput``), which part is explained:
            a key or attribute name (``"logits"``), a tuple position, or a callable
            (see :func:`select_output`). None: the model returns a tensor.
        channels_last: the memory layout of the pass (see the module docstring). None
            (default): channels-last on the CPU, up to 1.55x faster there, same results to float
            rounding; True: on every device; False: the input's own layout.

    Returns:
        A :class:`Capture` (its ``output`` is the selected tensor).

    Raises:
        ValueError: bad input, unknown layer, a layer output that is not
            (B, K, H, W) (after reshape_transform), a target score that does not
            depend differentiably on the model output, or NaN/inf target scores,
            activations or gradients (naming the sample). A forward pass that fails
            is reported with the module that raised and the input it was given.
        TypeError: a target that does not return a scalar tensor, or a model
            output that is not a tensor without an ``output_selector``.
    """
    layers = resolve_target_layers(model, target_layers)
    check_output_selector(output_selector)
    check_reshape_transform(reshape_transform)
    check_channels_last(channels_last)
    return _capture(model, input_tensor, layers, targets, reshape_transform, output_selector, channels_last)


def _capture(
    model: nn.Module,
    input_tensor: torch.Tensor,
    layers: Sequence[tuple[str, nn.Module]],
    targets: TargetsLike,
    reshape_transform: ReshapeTransform | None,
    output_selector: OutputSelector,
    channels_last: bool | None = None,
) -> Capture:
    """:func:`capture` with target layers already resolved and the selector (and ``channels_last``)
    already checked."""
    check_input(model, input_tensor)
    # Gradients are needed even when the caller is inside torch.no_grad() or
    # torch.inference_mode(): both are switched off for this pass. An inference
    # tensor (made under inference_mode) is copied so that the pass runs on a normal one.
    # The input does not require grad: the graph starts at the target layers (LayerHooks).
    with torch.inference_mode(False):
        x = input_tensor.detach()
        if x.is_inference():
            x = x.clone()
    use_cl = _wants_channels_last(model, x, channels_last)
    cl_error: str | None = None
    while True:
        hooks = LayerHooks(layers, reshape_transform)
        try:
            # PASS_LOCK: one pass at a time (two threads would see each other's flags and hooks).
            with PASS_LOCK, _eval_mode(model) as flags, frozen_parameters(model), \
                    _channels_last_layout((m for m, _ in flags), x, use_cl) as x_pass, hooks, \
                    torch.inference_mode(False), torch.enable_grad():
                out, target_fns, score_vec, grads, predicted = _forward_backward(
                    model, x_pass, layers, hooks, targets, output_selector, (m for m, _ in flags)
                )
        except (torch.cuda.OutOfMemoryError, MemoryError):
            raise
        except Exception as err:
            if use_cl:
                # Any failure of the channels-last pass may be the layout's (a .view that needs a
                # contiguous tensor, in the forward or in a custom autograd.Function's backward; an
                # assert or a ValueError of the model on its input's layout): once more in the
                # input's own layout, which raises the error again if it is not the layout's; the
                # model is remembered only if that pass works.
                use_cl = False
                cl_error = str(err.err) if isinstance(err, _ForwardFailed) else f"{type(err).__name__}: {err}"
                continue
            if not isinstance(err, _ForwardFailed):
                raise
            # Located after the hooks are gone (they would fire again); in eval mode as the pass was.
            with PASS_LOCK, eval_mode(model):
                error = _forward_error(model, x, err.err)
            raise error from err.err
        if use_cl and model not in _CHANNELS_LAST_OK:
            # The model's first channels-last pass: its output is checked against a pass in the
            # input's own layout (a model that reads its input's memory as if it were contiguous
            # raises nothing and computes something else).
            differs = _channels_last_differs(model, x, out, output_selector)
            if differs is not None:
                use_cl, cl_error = False, differs
                continue
        break
    if cl_error is not None:
        _NOT_CHANNELS_LAST[model] = cl_error
        if channels_last:
            warnings.warn(
                f"channels_last=True: the model's pass does not work in the channels-last layout "
                f"({cl_error.splitlines()[0] if cl_error else 'no message'}); it runs in the input's own "
                "layout instead",
                RuntimeWarning, stacklevel=3,
            )
    raw = [hooks.outputs[n] for n, _ in layers]
    return _assemble(layers, x, raw, grads, out, target_fns, score_vec, reshape_transform, predicted,
                     contiguous=use_cl)


def _forward_backward(
    model: nn.Module,
    x: torch.Tensor,
    layers: Sequence[tuple[str, nn.Module]],
    hooks: LayerHooks,
    targets: TargetsLike,
    output_selector: OutputSelector,
    modules: Iterable[nn.Module] = (),
) -> tuple[torch.Tensor, list[Target], torch.Tensor, list[torch.Tensor | None], torch.Tensor | None]:
    """The pass; ``modules``: the model's modules, for :func:`_mixes_batch` (read only for B > 1;
    empty: not checked)."""
    out = _forward(model, x, output_selector)
    missing = [n for n, _ in layers if n not in hooks.outputs]
    if missing:
        raise ValueError(
            f"target layers {missing} did not run in the model's forward pass: choose modules that "
            "forward() calls (a module whose parent uses its weights directly never runs, e.g. "
            "nn.MultiheadAttention's out_proj; a fused fast path can skip submodules too)"
        )
    predicted: torch.Tensor | None = None
    if targets is None and out.ndim == 2 and out.requires_grad:
        # The predicted classes: one argmax serves the targets, the scores' gather and
        # Capture.predicted (the same values as normalize_targets + _class_scores).
        predicted = out.detach().argmax(dim=1)
        target_fns = _predicted_class_targets(predicted.tolist())
        score_vec = out.gather(1, predicted[:, None]).reshape(-1)
    else:
        target_fns = normalize_targets(targets, out)
        gathered = _class_scores(out, target_fns)
        score_vec = _scores_one_by_one(out, target_fns) if gathered is None else gathered
    if not _all_finite(score_vec.detach()):
        bad = ~torch.isfinite(score_vec.detach())
        idx = torch.nonzero(bad).flatten().tolist()
        raise ValueError(
            f"the target score is NaN or inf for sample index {idx[0]} (all: {idx}); "
            "check the model output for these samples"
        )
    raw = [hooks.outputs[n] for n, _ in layers]
    needs = [r for r in raw if r.requires_grad]
    grads_needed: Sequence[torch.Tensor | None] = ()
    if needs and score_vec.requires_grad:
        if score_vec.shape[0] > 1 and _mixes_batch(modules):
            grads_needed = _grads_one_sample_at_a_time(score_vec, needs)
        else:
            grads_needed = torch.autograd.grad(score_vec.sum(), needs, allow_unused=True)
    it = iter(grads_needed)
    grads = [next(it) if r.requires_grad else None for r in raw]
    return out, target_fns, score_vec, grads, predicted


def _mixes_batch(modules: Iterable[nn.Module]) -> bool:
    """Whether samples interact in a model's eval-mode forward pass, given its modules: a BatchNorm
    without running statistics (``track_running_stats=False``) normalises with the batch's own,
    even in eval mode. Then the gradient of the summed scores w.r.t. sample b's activations is
    not that of sample b's score."""
    batch_norm = nn.modules.batchnorm._BatchNorm
    # _buffers: nn.Module.__getattr__ costs about 0.5 us a buffer, a ResNet has dozens of BatchNorms.
    return any(isinstance(m, batch_norm) and m._buffers.get("running_mean") is None for m in modules)


def _grads_one_sample_at_a_time(
    score_vec: torch.Tensor, needs: Sequence[torch.Tensor]
) -> list[torch.Tensor | None]:
    """``d score_b / d A_b`` for every b by one backward pass per sample (see :func:`_mixes_batch`)."""
    rows: list[list[torch.Tensor | None]] = [[] for _ in needs]
    last = score_vec.shape[0] - 1
    for b in range(score_vec.shape[0]):
        grads = torch.autograd.grad(score_vec[b], needs, retain_graph=b < last, allow_unused=True)
        for row, g in zip(rows, grads):
            row.append(None if g is None else g[b])
    out: list[torch.Tensor | None] = []
    for r, row in zip(needs, rows):
        if all(g is None for g in row):
            out.append(None)
        else:
            out.append(torch.stack([torch.zeros_like(r[b]) if g is None else g for b, g in enumerate(row)]))
    return out


def _class_scores(out: torch.Tensor, target_fns: Sequence[Target]) -> torch.Tensor | None:
    """The (B,) scores of plain class targets (``targets=None`` or ints) in one gather, or None.

    The same values (and gradients) as calling each :class:`ClassifierOutputTarget` on its
    sample, without B small graph nodes; None when another kind of target, a class out of
    range or an output that is not a differentiable (B, C) tensor needs the general path.
    """
    if out.ndim != 2 or not out.requires_grad or not all(type(fn) is ClassifierOutputTarget for fn in target_fns):
        return None
    cats = [fn.category for fn in target_fns]  # type: ignore[attr-defined]
    if max(cats) >= out.shape[1]:
        return None
    index = torch.tensor(cats, dtype=torch.long, device=out.device)
    return out.gather(1, index[:, None]).reshape(-1)


def _scores_one_by_one(out: torch.Tensor, target_fns: Sequence[Target]) -> torch.Tensor:
    scores = []
    for i, fn in enumerate(target_fns):
        s = fn(out[i])
        if not isinstance(s, torch.Tensor) or s.numel() != 1:
            raise TypeError(
                f"targets[{i}] must map one sample's output to a scalar tensor; "
                f"got {type(s).__name__} of shape {tuple(getattr(s, 'shape', ()))}"
            )
        if not s.requires_grad:
            raise ValueError(
                f"targets[{i}] returned a score that is not differentiable with respect to the model "
                f"(dtype {s.dtype}, requires_grad=False): the target must compute a floating-point "
                "score from the model output without detaching it (no .detach(), .item(), argmax or "
                "new tensors), and the model's forward must not run under torch.no_grad()"
            )
        scores.append(s.reshape(()))
    return torch.stack(scores)


def _assemble(
    layers: Sequence[tuple[str, nn.Module]],
    x: torch.Tensor,
    raw: list[torch.Tensor],
    grads: list[torch.Tensor | None],
    out: torch.Tensor,
    target_fns: list[Target],
    score_vec: torch.Tensor,
    reshape_transform: ReshapeTransform | None,
    predicted: torch.Tensor | None = None,
    contiguous: bool = False,
) -> Capture:
    """The :class:`Capture`; ``contiguous``: activations and gradients handed back contiguous (a
    channels-last pass gives them in its layout)."""
    captured: list[LayerCapture] = []
    for (name, module), r, g in zip(layers, raw, grads):
        g = torch.zeros_like(r) if g is None else g
        a = r.detach()
        if reshape_transform is not None:
            a, g = reshape_transform(a), reshape_transform(g)
        a, g = a.detach(), g.detach()
        if contiguous:
            a, g = a.contiguous(), g.contiguous()
        if a.shape[0] != x.shape[0]:
            raise ValueError(
                f"target layer {name!r} gives feature maps of shape {tuple(a.shape)} for a batch of "
                f"{x.shape[0]}: their first axis must be the batch"
                + ("; check reshape_transform" if reshape_transform is not None else "")
            )
        _check_finite(name, "activations", a)
        _check_finite(name, "gradients", g)
        captured.append(LayerCapture(name=name, module=module, activations=a, gradients=g))
    out = out.detach()
    if predicted is None:
        predicted = (
            out.argmax(dim=1)
            if out.ndim == 2
            else torch.full((out.shape[0],), -1, dtype=torch.long, device=out.device)
        )
    return Capture(
        input=x.detach(),
        layers=tuple(captured),
        output=out,
        scores=score_vec.detach(),
        targets=tuple(target_fns),
        predicted=predicted,
    )
