"""Target callables: what score of the model output an explanation explains.

Follows pytorch-grad-cam's convention: a target is a callable that maps *one
sample's* model output (for a classifier, a ``(C,)`` logit vector) to a scalar
tensor. ``targets=None`` explains each sample's predicted class.

Example:
    >>> import torch
    >>> from qfsel.targets import ClassifierOutputTarget, ClassifierOutputSoftmaxTarget
    >>> logits = torch.tensor([1.0, 3.0, 0.5])
    >>> float(ClassifierOutputTarget(1)(logits))
    3.0
    >>> round(float(ClassifierOutputSoftmaxTarget(1)(logits)), 4)
    0.8214

The same classes are importable from ``qfsel`` itself (``from qfsel import
ClassifierOutputTarget``), as from ``pytorch_grad_cam.utils.model_targets``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Union

import numpy as np
import torch

__all__ = [
    "BinaryClassifierOutputTarget",
    "ClassifierOutputTarget",
    "ClassifierOutputSoftmaxTarget",
    "RegressionOutputTarget",
    "Target",
    "TargetsLike",
    "normalize_targets",
]

#: A target: maps one sample's model output to a scalar tensor.
Target = Callable[[torch.Tensor], torch.Tensor]
#: What ``targets=`` accepts: None, one class index, one callable, or one entry per sample.
TargetsLike = Union[None, int, Target, Sequence[Union[int, Target]], np.ndarray, torch.Tensor]


def _integer(value: object) -> int | None:
    """``value`` as a Python int when it is one integer: an int or numpy integer, or a 0-d integer
    numpy array or torch tensor (``labels[i]``); None otherwise (bools included)."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, torch.Tensor):
        dtype = value.dtype
        if value.ndim == 0 and not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool):
            return int(value.item())
    elif isinstance(value, np.ndarray) and value.ndim == 0 and np.issubdtype(value.dtype, np.integer):
        return int(value.item())
    return None


def _describe(value: object) -> str:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        dtype = str(value.dtype).removeprefix("torch.")
        return f"{type(value).__name__} of dtype {dtype} and shape {tuple(value.shape)}"
    return f"{type(value).__name__} {value!r}"


def _check_category(category: object) -> int:
    value = _integer(category)
    if value is None:
        raise TypeError(
            "category must be a non-negative int (a class index; a 0-d integer tensor or array is "
            f"taken as one); got {_describe(category)}"
        )
    if value < 0:
        raise ValueError(f"category must be a non-negative int (a class index); got {value}")
    return value


def _refuse_class(value: object, where: str) -> None:
    """A target class given where an instance is expected (``targets=ClassifierOutputTarget``)."""
    if isinstance(value, type):
        raise TypeError(
            f"{where}: {value.__name__} is a class, not a target; pass an instance, e.g. {value.__name__}(3)"
        )


class ClassifierOutputTarget:
    """The raw logit of one class.

    For a model whose output has more axes per sample, laid out ``(B, C, ...)`` as PyTorch
    lays out class scores (a segmentation model's ``(B, C, H, W)`` logits), the class axis is
    the first axis of one sample's output and the score is the sum of class ``category``'s
    values over the other axes (every pixel's logit for that class). Another layout needs a
    callable target.

    Args:
        category: the class index.

    Example:
        >>> import torch
        >>> float(ClassifierOutputTarget(0)(torch.tensor([2.0, -1.0])))
        2.0
    """

    def __init__(self, category: int) -> None:
        self.category = _check_category(category)

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        _check_class_index(model_output, self.category)
        if model_output.ndim == 1:
            return model_output[self.category]
        return model_output[self.category].sum()

    def __repr__(self) -> str:
        return f"ClassifierOutputTarget({self.category})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, type(self)) and type(other) is type(self) and other.category == self.category

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.category))


class ClassifierOutputSoftmaxTarget(ClassifierOutputTarget):
    """The softmax probability of one class (softmax over the class axis).

    The class axis is as for :class:`ClassifierOutputTarget`: the only axis of a ``(C,)``
    output, the first of a ``(C, H, W)`` one (summed over the pixels).

    Args:
        category: the class index.

    Example:
        >>> import torch
        >>> float(ClassifierOutputSoftmaxTarget(0)(torch.tensor([0.0, 0.0])))
        0.5
    """

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        _check_class_index(model_output, self.category)
        probs = torch.softmax(model_output, dim=0)
        if probs.ndim == 1:
            return probs[self.category]
        return probs[self.category].sum()

    def __repr__(self) -> str:
        return f"ClassifierOutputSoftmaxTarget({self.category})"


class BinaryClassifierOutputTarget:
    """One-logit binary classifier: the logit for ``category=1``, minus the logit for ``0``.

    For models whose output is one logit per sample, ``(B,)`` or ``(B, 1)``
    (the positive class's probability is ``sigmoid(logit)``). Explaining class 0
    then shows what argues *against* the positive class.

    Args:
        category: 1 (the positive class) or 0.

    Example:
        >>> import torch
        >>> float(BinaryClassifierOutputTarget(1)(torch.tensor([2.5]))), float(BinaryClassifierOutputTarget(0)(torch.tensor(2.5)))
        (2.5, -2.5)
    """

    def __init__(self, category: int) -> None:
        category = _check_category(category)
        if category not in (0, 1):
            raise ValueError(f"category must be 0 or 1 for a binary classifier; got {category}")
        self.category = category

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        value = _one_value(model_output, "BinaryClassifierOutputTarget", "one logit per sample, (B,) or (B, 1)")
        return value if self.category == 1 else -value

    def __repr__(self) -> str:
        return f"BinaryClassifierOutputTarget({self.category})"


class RegressionOutputTarget:
    """The raw output value of a regression model (no softmax, no class).

    Args:
        index: None for a model with one output per sample (``(B,)`` or ``(B, 1)``);
            otherwise the position of the explained value in one sample's output
            (an int, or a tuple of ints for a multi-axis output).

    Example:
        >>> import torch
        >>> float(RegressionOutputTarget()(torch.tensor([0.3]))), float(RegressionOutputTarget(1)(torch.tensor([0.3, 7.0])))
        (0.30000001192092896, 7.0)
    """

    def __init__(self, index: int | tuple[int, ...] | None = None) -> None:
        if index is not None:
            items = index if isinstance(index, tuple) else (index,)
            values = [v for v in map(_integer, items) if v is not None]
            if not items or len(values) != len(items):
                raise TypeError(f"index must be None, an int or a tuple of ints; got {index!r}")
            index = tuple(values) if isinstance(index, tuple) else values[0]
        self.index = index

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        if self.index is None:
            return _one_value(model_output, "RegressionOutputTarget()", "one value per sample, (B,) or (B, 1)")
        if not isinstance(model_output, torch.Tensor):
            raise TypeError(f"RegressionOutputTarget expects a tensor; got {type(model_output).__name__}")
        try:
            return model_output[self.index]
        except IndexError as exc:
            raise ValueError(
                f"RegressionOutputTarget({self.index!r}): out of range for one sample's output of shape "
                f"{tuple(model_output.shape)}"
            ) from exc

    def __repr__(self) -> str:
        return f"RegressionOutputTarget({'' if self.index is None else repr(self.index)})"


def _one_value(model_output: torch.Tensor, who: str, what: str) -> torch.Tensor:
    if not isinstance(model_output, torch.Tensor) or model_output.numel() != 1:
        shape = tuple(getattr(model_output, "shape", ()))
        raise ValueError(
            f"{who} expects {what}; one sample's output has shape {shape}"
            + (" (a multi-class output? use ClassifierOutputTarget)" if len(shape) == 1 and shape[0] > 1 else "")
        )
    return model_output.reshape(())


def _check_class_index(model_output: torch.Tensor, category: int) -> None:
    if not isinstance(model_output, torch.Tensor) or model_output.ndim == 0:
        one_value = isinstance(model_output, torch.Tensor)
        raise TypeError(
            "a classifier target expects one sample's output as a tensor with a class axis; "
            f"got {type(model_output).__name__} of shape {tuple(getattr(model_output, 'shape', ()))}"
            + (
                " (one value per sample: for a one-logit binary classifier use "
                "BinaryClassifierOutputTarget(1), for a regression RegressionOutputTarget())"
                if one_value
                else ""
            )
        )
    n = model_output.shape[0]
    if category >= n:
        layout = (
            ""
            if model_output.ndim == 1
            else f" (the first axis of one sample's output of shape {tuple(model_output.shape)}, as in (B, C, H, W) "
            "segmentation logits; for another layout pass a callable target)"
        )
        raise ValueError(f"target class {category} is out of range: the model output has {n} classes{layout}")


def _predicted_class_targets(categories: Sequence[int]) -> list[Target]:
    """One :class:`ClassifierOutputTarget` per class index of an argmax (``tolist()`` ints, >= 0).

    Equal to ``[ClassifierOutputTarget(c) for c in categories]``, without re-checking indices
    an argmax produced, and one object per distinct class (samples of the same class share
    it): this runs on every ``targets=None`` capture.
    """
    made: dict[int, ClassifierOutputTarget] = {}
    for c in set(categories):
        t = object.__new__(ClassifierOutputTarget)
        t.category = c
        made[c] = t
    return [made[c] for c in categories]


def normalize_targets(targets: TargetsLike, model_output: torch.Tensor) -> list[Target]:
    """Turns ``targets=`` into one callable per sample.

    Args:
        targets: None (each sample's predicted class, argmax over the last axis of
            its output), an int (that class for every sample), one callable (used
            for every sample), or a sequence / 1-D array of length B whose items are
            ints or callables. A 0-d integer tensor or array (``labels[i]``) counts as
            an int.
        model_output: the batch output ``(B, ...)``; used for the batch size and,
            with ``targets=None``, the predicted classes.

    Returns:
        A list of B callables.

    Raises:
        TypeError: an entry is neither an int nor a callable, or is a target class
            rather than an instance (``ClassifierOutputTarget`` for ``ClassifierOutputTarget(3)``).
        ValueError: the sequence length is not B.
    """
    batch = int(model_output.shape[0])
    if targets is None:
        if model_output.ndim != 2:
            raise ValueError(
                "targets=None explains the predicted class, which needs a (B, C) model output; "
                f"got an output of shape {tuple(model_output.shape)}: pass explicit target callables"
            )
        return _predicted_class_targets(model_output.detach().argmax(dim=1).tolist())
    category = _integer(targets)
    if category is not None:
        return [ClassifierOutputTarget(category) for _ in range(batch)]
    _refuse_class(targets, "targets")
    if callable(targets) and not isinstance(targets, (torch.Tensor, np.ndarray)):
        return [targets for _ in range(batch)]
    if isinstance(targets, torch.Tensor):
        targets = targets.detach().cpu().numpy()
    if isinstance(targets, np.ndarray):
        if targets.ndim != 1 or not np.issubdtype(targets.dtype, np.integer):
            raise TypeError(
                f"targets as an array must be 1-D integers (class indices); got dtype {targets.dtype}, "
                f"shape {targets.shape}"
            )
        targets = targets.tolist()
    if not isinstance(targets, Sequence) or isinstance(targets, (str, bytes)):
        raise TypeError(
            "targets must be None, an int, a callable, or a sequence of ints/callables (one per sample); "
            f"got {type(targets).__name__}"
        )
    if len(targets) != batch:
        raise ValueError(f"targets must have one entry per sample (B={batch}); got {len(targets)} entries")
    out: list[Target] = []
    for i, t in enumerate(targets):
        category = _integer(t)
        if category is not None:
            out.append(ClassifierOutputTarget(category))
        elif callable(t) and not isinstance(t, type):
            out.append(t)
        else:
            _refuse_class(t, f"targets[{i}]")
            raise TypeError(f"targets[{i}] must be an int or a callable; got {type(t).__name__} {t!r}")
    return out
