"""Train the bundled narrow CNNs: ``python -m qfsel.train --dataset mnist5k --n-features 16 ...``.

The paper's recipe with a small backbone trained from scratch (MNIST has no pretrained one):

1. backbone stage: the conv stack of :func:`qfsel.models.mnist_backbone` followed by a temporary
   2x2 max-pool and linear classifier is trained on the training split (Adam);
2. head stage: the backbone is frozen (weights and BatchNorm statistics), the temporary
   classifier dropped, and only the new parts - 3x3 conv to ``N_f``, ReLU, BatchNorm, linear -
   are trained with Adam, lr 1e-3, as in the paper.

Both stages see the training images with random shifts of up to 2 pixels. Everything is seeded
(``--seed``) and runs on the CPU with a fixed thread count, so a run reproduces its weights.
Accuracy is measured on ``mnist5k("test")``, which training never sees. The bundled weights
were made with::

    python -m qfsel.train --dataset mnist5k --n-features 16 --seed 0 \\
        --out python/qfsel/weights/narrow-mnist-16.pt      (likewise 24 and 32)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .datasets import mnist5k
from .models import mnist_backbone, narrow_cnn

__all__ = ["evaluate", "main", "train_narrow_mnist"]


def _shift(images: torch.Tensor, generator: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Translate each image by a random integer offset in [-max_shift, max_shift] (zero fill)."""
    if max_shift == 0:
        return images
    n, _, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator)
    out = torch.empty_like(images)
    for i in range(n):
        dy, dx = int(offsets[i, 0]), int(offsets[i, 1])
        out[i] = padded[i, :, dy : dy + h, dx : dx + w]
    return out


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """Accuracy of ``model`` (put in eval mode) on ``images`` and ``labels``."""
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start : start + batch_size])
        correct += int((logits.argmax(1) == labels[start : start + batch_size]).sum())
    return correct / max(1, len(images))


def _fit(
    model: nn.Module,
    parameters: list[nn.Parameter],
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    generator: torch.Generator,
    log: bool,
    tag: str,
) -> None:
    optimiser = torch.optim.Adam(parameters, lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, epochs))
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(images), generator=generator)
        total, start_time = 0.0, time.perf_counter()
        for start in range(0, len(images), batch_size):
            idx = order[start : start + batch_size]
            batch = _shift(images[idx], generator)
            loss = F.cross_entropy(model(batch), labels[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
        scheduler.step()
        if log:
            print(
                f"[{tag}] epoch {epoch + 1}/{epochs}: loss {total / len(images):.4f} "
                f"({time.perf_counter() - start_time:.1f} s)",
                flush=True,
            )


def train_narrow_mnist(
    n_features: int = 16,
    *,
    epochs: int = 20,
    backbone_epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    threads: int = 2,
    log: bool = True,
    train_limit: int | None = None,
) -> tuple[nn.Module, float]:
    """Train a MNIST narrow CNN (backbone from scratch, then the frozen-backbone head).

    Args:
        n_features: ``N_f`` of the explained layer.
        epochs: epochs of the head stage.
        backbone_epochs: epochs of the backbone stage.
        lr: Adam learning rate (both stages; cosine decay within each).
        batch_size: mini-batch size.
        seed: seeds the initialisation, the shuffling and the shifts.
        threads: torch CPU threads (fixed so that the result is reproducible).
        log: print progress.
        train_limit: train on only the first ``train_limit`` training images (for quick checks).

    Returns:
        ``(model, test_accuracy)`` with the model in eval mode.
    """
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
            return _train(n_features, epochs, backbone_epochs, lr, batch_size, seed, log, train_limit)
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(previous_deterministic)


def _train(
    n_features: int,
    epochs: int,
    backbone_epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    log: bool,
    train_limit: int | None,
) -> tuple[nn.Module, float]:
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    train_x, train_y = mnist5k("train")
    if train_limit is not None:
        train_x, train_y = train_x[:train_limit], train_y[:train_limit]
    test_x, test_y = mnist5k("test")

    backbone = mnist_backbone()
    scaffold = nn.Sequential(backbone, nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 7 * 7, 10))
    _fit(
        scaffold,
        list(scaffold.parameters()),
        train_x,
        train_y,
        epochs=backbone_epochs,
        lr=lr,
        batch_size=batch_size,
        generator=generator,
        log=log,
        tag="backbone",
    )
    if log:
        print(f"[backbone] test accuracy with its scaffold classifier: {evaluate(scaffold, test_x, test_y):.4f}")

    model = narrow_cnn(n_features, backbone, 10, pretrained=False, in_shape=(1, 28, 28))
    trainable = [p for p in model.parameters() if p.requires_grad]
    _fit(
        model,
        trainable,
        train_x,
        train_y,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        generator=generator,
        log=log,
        tag=f"head N_f={n_features}",
    )
    accuracy = evaluate(model, test_x, test_y)
    if log:
        print(f"[head N_f={n_features}] test accuracy: {accuracy:.4f} on {len(test_x)} held-out images")
    return model.eval(), accuracy


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m qfsel.train",
        description="Train a narrow CNN (the paper's recipe) on the offline MNIST 5k subset and "
        "save its weights (state dict plus metadata, loadable with torch.load(weights_only=True)).",
    )
    parser.add_argument("--dataset", choices=["mnist5k"], default="mnist5k", help="training data (default: mnist5k)")
    parser.add_argument("--n-features", type=int, default=16, help="N_f, maps in the explained layer (default: 16)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the head stage (default: 20)")
    parser.add_argument("--backbone-epochs", type=int, default=10, help="epochs of the backbone stage (default: 10)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)")
    parser.add_argument("--batch-size", type=int, default=64, help="mini-batch size (default: 64)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the .pt file")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    for name in ("n_features", "epochs", "backbone_epochs", "batch_size", "threads"):
        if getattr(args, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}", file=sys.stderr)
            return 2
    start = time.perf_counter()
    model, accuracy = train_narrow_mnist(
        args.n_features,
        epochs=args.epochs,
        backbone_epochs=args.backbone_epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
        threads=args.threads,
    )
    payload = {
        "format": "qfsel.narrow_cnn/1",
        "backbone": "mnist",
        "dataset": args.dataset,
        "n_features": args.n_features,
        "num_classes": 10,
        "explained_layer": "head.bn",
        "seed": args.seed,
        "epochs": args.epochs,
        "backbone_epochs": args.backbone_epochs,
        "test_accuracy": accuracy,
        "torch_version": str(torch.__version__),
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, args.out)
    print(f"saved {args.out} (test accuracy {accuracy:.4f}, {time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
