"""Tiny CNNs with fixed weights for the explanation tests (seconds on a CPU)."""

from __future__ import annotations

import torch
from torch import nn


def _seeded(seed: int):
    return torch.random.fork_rng(devices=[])


class GapNet(nn.Module):
    """conv(3->K, 3x3) -> ReLU ("act") -> global average pool -> Linear(K->C) ("fc").

    With target layer "act": logit_c = sum_k W_ck mean(A_k) + b_c, so
    d logit_c / dA_kij = W_ck / (H W).
    """

    def __init__(self, k: int = 6, classes: int = 3, inplace: bool = False, seed: int = 0) -> None:
        super().__init__()
        with _seeded(seed):
            torch.manual_seed(seed)
            self.conv = nn.Conv2d(3, k, 3, padding=1)
            self.act = nn.ReLU(inplace=inplace)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(k, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.act(self.conv(x))).flatten(1))


class PaperNet(nn.Module):
    """The paper's head in miniature: conv -> ReLU -> BatchNorm ("bn", explained) -> flatten -> Linear.

    No global pooling: d logit_c / dA = W_c reshaped to (K, H, W), with mixed signs.
    """

    def __init__(self, k: int = 8, classes: int = 3, size: int = 6, seed: int = 0) -> None:
        super().__init__()
        with _seeded(seed):
            torch.manual_seed(seed)
            self.conv = nn.Conv2d(3, k, 3, padding=1)
            self.relu = nn.ReLU()
            self.bn = nn.BatchNorm2d(k)
            self.bn.running_mean.uniform_(-0.2, 0.2)
            self.bn.running_var.uniform_(0.5, 1.5)
            nn.init.uniform_(self.bn.weight, 0.5, 1.5)
            nn.init.uniform_(self.bn.bias, -0.1, 0.3)
            self.flat = nn.Flatten()
            self.fc = nn.Linear(k * size * size, classes)
        self.k, self.size = k, size

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.relu(self.conv(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flat(self.features(x)))


class TwoLayerNet(nn.Module):
    """conv1 -> ReLU -> conv2 (stride 2) -> ReLU -> GAP -> Linear: two target layers of different sizes."""

    def __init__(self, seed: int = 1) -> None:
        super().__init__()
        with _seeded(seed):
            torch.manual_seed(seed)
            self.conv1 = nn.Conv2d(3, 5, 3, padding=1)
            self.act1 = nn.ReLU()
            self.conv2 = nn.Conv2d(5, 6, 3, padding=1, stride=2)
            self.act2 = nn.ReLU()
            self.fc = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act2(self.conv2(self.act1(self.conv1(x))))
        return self.fc(h.mean(dim=(2, 3)))


class Tokens(nn.Module):
    """(B, K, H, W) -> (B, H*W, K) tokens, as a transformer block would output."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).transpose(1, 2)


class TokenNet(nn.Module):
    """conv -> ReLU -> tokens ("tokens", 3-D output) -> mean over tokens -> Linear."""

    def __init__(self, k: int = 4, seed: int = 0) -> None:
        super().__init__()
        with _seeded(seed):
            torch.manual_seed(seed)
            self.conv = nn.Conv2d(3, k, 3, padding=1)
            self.act = nn.ReLU()
            self.tokens = Tokens()
            self.fc = nn.Linear(k, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.tokens(self.act(self.conv(x))).mean(dim=1))


def tokens_to_maps(size: int):
    """reshape_transform for TokenNet: (B, H*W, K) -> (B, K, H, W)."""

    def transform(t: torch.Tensor) -> torch.Tensor:
        return t.transpose(1, 2).reshape(t.shape[0], t.shape[2], size, size)

    return transform


def images(b: int = 4, size: int = 6, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, size, size, generator=g)


def no_hooks_left(model: nn.Module) -> bool:
    return all(
        not m._forward_hooks and not m._backward_hooks and not m._forward_pre_hooks
        and not getattr(m, "_backward_pre_hooks", {})
        for m in model.modules()
    )


class HeadFirstNet(nn.Module):
    """Defines ``head = Conv2d(8, 4, 1)`` before ``stem = Conv2d(3, 8, 3)``: runs on 3-channel input."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        with _seeded(seed):
            torch.manual_seed(seed)
            self.head = nn.Conv2d(8, 4, 1)
            self.stem = nn.Conv2d(3, 8, 3, padding=1)
            self.act = nn.ReLU()
            self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.act(self.head(self.stem(x))).mean(dim=(2, 3)))


class GreyToRGBNet(GapNet):
    """A GapNet (3-channel conv) that takes grey images: repeats the channel to three in forward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.expand(-1, 3, -1, -1))


class DictOutputNet(GapNet):
    """A GapNet returning ``{"logits": (B, C), "features": (B, K)}`` like a Hugging Face classifier."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # type: ignore[override]
        feats = self.pool(self.act(self.conv(x))).flatten(1)
        return {"features": feats, "logits": self.fc(feats)}


class TupleOutputNet(GapNet):
    """A GapNet returning ``(logits, features)``."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        feats = self.pool(self.act(self.conv(x))).flatten(1)
        return self.fc(feats), feats


def dead_map_gapnet(dead: tuple[int, ...] = (0,), k: int = 6, seed: int = 0) -> GapNet:
    """A GapNet whose channels ``dead`` never fire (zero weights, negative bias before the ReLU)
    while the classifier weights of every class on them are positive."""
    model = GapNet(k=k, seed=seed)
    with torch.no_grad():
        for c in dead:
            model.conv.weight[c] = 0.0
            model.conv.bias[c] = -1.0
            model.fc.weight[:, c] = 5.0
    return model
