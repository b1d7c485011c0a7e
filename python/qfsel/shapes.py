"""A seeded synthetic 10-class shapes dataset with ground-truth object masks.

Every image shows one class-defining object (its class is its shape) at a random position,
scale, rotation and colour, on a cluttered, textured background with a few small distractor
blobs. Its pixel mask comes with it, so explanations can be scored for localization (pointing
game, relevance mass, IoU) against the truth. Images are generated on the fly from a seed; no
file is stored.

Re-exported by :mod:`qfsel.datasets` as :func:`qfsel.datasets.shapes`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import check_int, check_positive_int

__all__ = ["SHAPE_CLASSES", "ShapesData", "shapes", "shape_mask"]

SHAPE_CLASSES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "cross",
    "plus",
    "ring",
    "star",
    "bars",
    "ell",
    "half-disc",
)
"""The 10 class names of :func:`shapes`, in label order."""

_SPLIT_OFFSET = {"train": 0, "test": 1_000_003}


def shape_mask(label: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The mask of shape ``label`` in object coordinates ``(u, v)`` (the object spans [-1, 1]^2).

    Args:
        label: class index (0-9, see :data:`SHAPE_CLASSES`).
        u, v: arrays of the same shape, horizontal and vertical object coordinates.

    Returns:
        A bool array of that shape.
    """
    r = np.hypot(u, v)
    au, av = np.abs(u), np.abs(v)
    if label == 0:  # circle
        return r <= 1.0
    if label == 1:  # square
        return (au <= 0.85) & (av <= 0.85)
    if label == 2:  # triangle, apex up
        return (v <= 0.8) & (v >= -1.0 + 1.8 * au) & (au <= 1.0)
    if label == 3:  # diagonal cross (X)
        d1, d2 = np.abs(u - v) / np.sqrt(2), np.abs(u + v) / np.sqrt(2)
        return ((d1 <= 0.22) | (d2 <= 0.22)) & (au <= 0.9) & (av <= 0.9)
    if label == 4:  # plus
        return ((au <= 0.22) & (av <= 1.0)) | ((av <= 0.22) & (au <= 1.0))
    if label == 5:  # ring
        return (r <= 1.0) & (r >= 0.6)
    if label == 6:  # five-pointed star
        theta = np.arctan2(u, -v)  # 0 at the top
        sector = np.mod(theta + np.pi / 5, 2 * np.pi / 5) - np.pi / 5  # 0 at each point
        radius = 1.0 - 0.6 * np.abs(sector) / (np.pi / 5)
        return r <= radius
    if label == 7:  # three vertical bars
        return (av <= 0.95) & ((au <= 0.16) | (np.abs(au - 0.65) <= 0.16))
    if label == 8:  # L
        return ((u >= -0.8) & (u <= -0.35) & (av <= 0.95)) | ((v >= 0.5) & (v <= 0.95) & (u >= -0.8) & (u <= 0.8))
    if label == 9:  # half disc (flat side down)
        return (r <= 1.0) & (v <= 0.15)
    raise ValueError(f"label: expected a class index in 0..9, got {label!r}")


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Value noise: a (cells+1)^2 random grid bilinearly interpolated to size x size, in [0, 1]."""
    grid = rng.random((cells + 1, cells + 1))
    t = np.linspace(0.0, cells, size, endpoint=False)
    i = t.astype(int)
    f = t - i
    a = grid[i][:, i] * (1 - f)[None, :] + grid[i][:, i + 1] * f[None, :]
    b = grid[i + 1][:, i] * (1 - f)[None, :] + grid[i + 1][:, i + 1] * f[None, :]
    return a * (1 - f)[:, None] + b * f[:, None]


def _one_image(rng: np.random.Generator, label: int, size: int, clutter: float, distractors: int):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    # background: two octaves of coloured value noise plus faint random stripes
    base = rng.random(3) * 0.6 + 0.2
    noise = 0.6 * _smooth_noise(rng, size, 4) + 0.4 * _smooth_noise(rng, size, 12)
    tint = rng.random(3) * 0.5 - 0.25
    image = np.clip(base[None, None, :] + clutter * (noise[..., None] - 0.5) * (1 + tint[None, None, :]), 0, 1)
    n_lines = int(rng.integers(0, 4)) if clutter > 0 else 0
    for _ in range(n_lines):
        angle = rng.random() * np.pi
        offset = (rng.random() - 0.5) * size
        dist = np.abs((xx - size / 2) * np.cos(angle) + (yy - size / 2) * np.sin(angle) - offset)
        line = dist <= 0.6
        image[line] = np.clip(image[line] * (1 - 0.5 * clutter) + 0.5 * clutter * rng.random(3), 0, 1)
    # the object
    scale = size * (0.16 + 0.12 * rng.random())  # half-width in pixels
    margin = scale * 1.05
    cx = margin + rng.random() * (size - 2 * margin)
    cy = margin + rng.random() * (size - 2 * margin)
    angle = (rng.random() - 0.5) * np.deg2rad(30)
    dx, dy = (xx - cx) / scale, (yy - cy) / scale
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    mask = shape_mask(label, u, v)
    # object colour far from the local background mean
    bg_mean = image[mask].mean(axis=0) if mask.any() else image.mean(axis=(0, 1))
    colour = rng.random(3)
    for _ in range(8):
        if np.abs(colour - bg_mean).sum() > 0.9:
            break
        colour = rng.random(3)
    else:
        colour = np.where(bg_mean > 0.5, 0.05, 0.95)
    # distractors: small blobs (smaller than any object), drawn outside the object
    for _ in range(distractors):
        radius = size * (0.03 + 0.04 * rng.random())
        bx, by = rng.random() * size, rng.random() * size
        stretch = 0.6 + 0.8 * rng.random()
        blob = ((xx - bx) / radius) ** 2 + ((yy - by) / (radius * stretch)) ** 2 <= 1.0
        blob &= ~mask
        image[blob] = rng.random(3)
    image[mask] = colour * (0.9 + 0.1 * rng.random())
    return image.astype(np.float32), mask


@dataclass
class ShapesData:
    """Images, labels and object masks of :func:`shapes`.

    Attributes:
        images: float32 ``(N, 3, size, size)`` in [0, 1].
        labels: int64 ``(N,)`` in 0-9.
        masks: bool ``(N, size, size)``, the class-defining object's pixels.
        class_names: :data:`SHAPE_CLASSES`.
    """

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    class_names: tuple[str, ...] = SHAPE_CLASSES

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __iter__(self):  # unpack as images, labels, masks
        return iter((self.images, self.labels, self.masks))


def shapes(
    n: int,
    size: int = 64,
    seed: int = 0,
    *,
    split: str = "train",
    clutter: float = 0.5,
    distractors: int = 3,
) -> ShapesData:
    """Generate ``n`` shapes images with their class-defining object masks (deterministic).

    Classes are balanced in turn (image ``i`` has label ``i % 10``), each image is drawn from
    its own random stream ``(seed, split, i)``, so the first ``m`` images of ``shapes(n)`` are
    ``shapes(m)`` and the ``"train"`` and ``"test"`` splits of one seed never share a stream.

    Args:
        n: number of images.
        size: side in pixels (>= 16).
        seed: non-negative int.
        split: ``"train"`` or ``"test"``.
        clutter: background texture contrast in [0, 1] (0: flat background).
        distractors: number of small distractor blobs per image (>= 0).

    Returns:
        A :class:`ShapesData` (unpacks as ``images, labels, masks``).

    Example:
        >>> from qfsel.datasets import shapes
        >>> images, labels, masks = shapes(20, size=32, seed=0)
        >>> images.shape, labels[:3].tolist(), masks.shape, bool(masks[0].any())
        ((20, 3, 32, 32), [0, 1, 2], (20, 32, 32), True)
    """
    n = check_positive_int("n", n)
    size = check_int("size", size, low=16)
    seed = check_int("seed", seed, low=0)
    if split not in _SPLIT_OFFSET:
        raise ValueError(f"split must be one of {sorted(_SPLIT_OFFSET)}, got {split!r}")
    if isinstance(clutter, bool) or not isinstance(clutter, (int, float)) or not 0.0 <= float(clutter) <= 1.0:
        raise ValueError(f"clutter must be a number in [0, 1], got {clutter!r}")
    distractors = check_int("distractors", distractors, low=0)
    images = np.empty((n, 3, size, size), dtype=np.float32)
    masks = np.empty((n, size, size), dtype=bool)
    labels = np.arange(n, dtype=np.int64) % len(SHAPE_CLASSES)
    for i in range(n):
        rng = np.random.default_rng([seed, _SPLIT_OFFSET[split], i])
        img, mask = _one_image(rng, int(labels[i]), size, float(clutter), distractors)
        images[i] = img.transpose(2, 0, 1)
        masks[i] = mask
    return ShapesData(images, labels, masks)
