"""CNN families for layout benchmarks: the bundled models and hand-written stand-ins of common
architectures (random weights: speed only). Each entry: (name, model, target layer, input batch)."""

from __future__ import annotations

import torch
from torch import nn


class _Basic(nn.Module):
    """A ResNet basic block."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.short = (nn.Sequential() if stride == 1 and cin == cout
                      else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.b2(self.c2(self.relu(self.b1(self.c1(x))))) + self.short(x))


def resnet_cifar() -> nn.Module:
    """ResNet-18 for 32x32 inputs (CIFAR layout)."""
    widths = [(64, 64, 1), (64, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1),
              (256, 512, 2), (512, 512, 1)]
    return nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                         *[_Basic(a, b, s) for a, b, s in widths], nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(512, 10))


def vgg_small() -> nn.Module:
    """VGG-style stack of 3x3 convolutions and max pooling, 64x64 inputs."""
    layers: list[nn.Module] = []
    c = 3
    for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.ReLU(inplace=True)]
            c = int(v)
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512 * 4 * 4, 10))


def _inverted_residual(cin: int, cout: int, stride: int, expand: int = 6) -> nn.Module:
    h = cin * expand
    return nn.Sequential(nn.Conv2d(cin, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU6(),
                         nn.Conv2d(h, h, 3, stride, 1, groups=h, bias=False), nn.BatchNorm2d(h), nn.ReLU6(),
                         nn.Conv2d(h, cout, 1, bias=False), nn.BatchNorm2d(cout))


def mobilenet_small() -> nn.Module:
    """MobileNetV2-style inverted residuals (depthwise convolutions), 96x96 inputs."""
    blocks = [(32, 16, 1, 1), (16, 24, 2, 6), (24, 24, 1, 6), (24, 32, 2, 6), (32, 64, 2, 6), (64, 96, 1, 6),
              (96, 160, 2, 6)]
    return nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6(),
                         *[_inverted_residual(a, b, s, e) for a, b, s, e in blocks],
                         nn.Conv2d(160, 640, 1), nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(640, 10))


def grey_dilated() -> nn.Module:
    """One-channel 128x128 inputs, a strided 5x5, a dilated and a grouped convolution."""
    return nn.Sequential(nn.Conv2d(1, 32, 5, 2, 2), nn.ReLU(), nn.Conv2d(32, 64, 3, 1, 2, dilation=2),
                         nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(64, 128, 3, padding=1, groups=4),
                         nn.ReLU(), nn.AdaptiveMaxPool2d(4), nn.Flatten(), nn.Linear(2048, 2))


def families() -> list[tuple[str, nn.Module, str, torch.Tensor]]:
    from qfsel.models import efficientnet_lite0, load_model

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    mnist, shapes = load_model("narrow-mnist-16"), load_model("shapes-paper-16")
    return [
        ("narrow-mnist-16, 64 x 1x28x28", mnist.model, mnist.default_layer, torch.rand(64, 1, 28, 28, generator=g)),
        ("shapes-paper-16, 32 x 3x64x64", shapes.model, shapes.default_layer, torch.rand(32, 3, 64, 64, generator=g)),
        ("EfficientNet-Lite0, 8 x 3x224x224", efficientnet_lite0(), "_head_act", torch.rand(8, 3, 224, 224, generator=g)),
        ("ResNet-18 (CIFAR), 64 x 3x32x32", resnet_cifar(), "10", torch.rand(64, 3, 32, 32, generator=g)),
        ("VGG-style, 16 x 3x64x64", vgg_small(), "14", torch.rand(16, 3, 64, 64, generator=g)),
        ("MobileNetV2-style, 16 x 3x96x96", mobilenet_small(), "11", torch.rand(16, 3, 96, 96, generator=g)),
        ("grey, dilated + grouped, 16 x 1x128x128", grey_dilated(), "7", torch.rand(16, 1, 128, 128, generator=g)),
    ]
