"""Datasets that :func:`qfsel.explain_dataset` reads: image folders, bundled sets, torch Datasets.

Every source is a map-style dataset whose items are loaded in DataLoader worker processes. An
item that cannot be loaded (unreadable or corrupt file, an exception in a user's
``__getitem__``) becomes a *failure* with its reason; the job records it and goes on.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["ImageFolder", "resolve_dataset", "Item", "collate_items"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
BUNDLED = ("mnist5k-train", "mnist5k-test")
_UINT16 = getattr(torch, "uint16", None)  # (torch >= 2.3)


def _check_size(name: str, resize: Any) -> tuple[int, int] | None:
    if resize is None:
        return None
    if isinstance(resize, int) and not isinstance(resize, bool):
        resize = (resize, resize)
    if (not isinstance(resize, (tuple, list)) or len(resize) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in resize)):
        raise ValueError(f"{name}: expected None, a positive int or (height, width) of positive ints, got {resize!r}")
    return (int(resize[0]), int(resize[1]))


def printable(text: str) -> str:
    """``text`` as valid UTF-8 for the store: the bytes of a file name that is not UTF-8 (which
    Python keeps as lone surrogates) written as \\xNN."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no file name gives
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _listed(p: Path) -> bool:
    """Whether a folder entry can hold dataset images: not hidden (".ipynb_checkpoints", the
    "._name" files macOS leaves on other file systems, ...) and not a qfsel results store (one
    written inside the dataset folder: its preview.png is no dataset image)."""
    from .store import MARKER

    return not p.name.startswith(".") and not (p.is_dir() and (p / MARKER).exists())


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_SUFFIXES and _listed(p)


def _images_under(folder: Path) -> list[Path]:
    """The image files under ``folder`` and its listed subfolders, sorted by path."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if _listed(here / d)]
        found.extend(here / f for f in filenames if _is_image(here / f) and (here / f).is_file())
    return sorted(found)


def _pixels_to_tensor(arr: np.ndarray, channels: int) -> torch.Tensor:
    """A read image (uint8 (H, W, 3), or float grey (H, W) in [0, 1]) as a float32 (C, H, W)
    tensor in [0, 1] with ``channels`` channels: grey repeated for RGB, RGB averaged for grey
    (a grey image read as RGB keeps its exact values: a mean of three equal floats may not)."""
    if channels == 1 and arr.ndim == 3 and (arr[..., 0] == arr[..., 1]).all() and (arr[..., 0] == arr[..., 2]).all():
        arr = arr[..., 0]
    if channels == 1 and arr.ndim == 2:
        arr = arr.astype(np.float32) / np.float32(255.0) if arr.dtype == np.uint8 else arr.astype(np.float32)
        return torch.from_numpy(np.ascontiguousarray(arr))[None]
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / np.float32(255.0)
    arr = arr.astype(np.float32)
    if arr.ndim == 2:
        arr = arr[..., None].repeat(3, axis=2)
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)
    if channels == 1:
        t = t.mean(dim=0, keepdim=True)
    return t


class ImageFolder(torch.utils.data.Dataset):
    """The image files of a folder: class subfolders (labels by sorted folder name) or flat (label -1).

    Args:
        root: the folder.
        transform: image (uint8 RGB array, or float grey in [0, 1] for 16-bit files) -> tensor
            (C, H, W) or (1, C, H, W). Default: float in [0, 1], ``channels`` channels,
            resized to ``resize`` when given.
        resize: (height, width) (or one int) every image is resized to (default transform only).
        channels: 1 (grey) or 3 (RGB) for the default transform.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        ValueError: ``root`` holds no image files, or images of different sizes without
            ``resize`` and without a ``transform``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        transform: Callable[[Any], torch.Tensor] | None = None,
        *,
        resize: int | tuple[int, int] | None = None,
        channels: int = 3,
    ) -> None:
        root = Path(root).expanduser()
        if not root.exists():
            raise FileNotFoundError(f"dataset: no such folder {root}")
        if not root.is_dir():
            raise ValueError(f"dataset: expected a folder of images, got {root}, a file")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform: expected a callable or None, got {type(transform).__name__}")
        if channels not in (1, 3):
            raise ValueError(f"channels: expected 1 or 3, got {channels!r}")
        # absolute: the records' paths stay valid when the store is read from another folder
        root = root.absolute()
        self.root, self.transform, self.channels = root, transform, channels
        self.resize = _check_size("resize", resize)
        subdirs = sorted(p for p in root.iterdir() if p.is_dir() and _listed(p))
        files: list[Path] = []
        labels: list[int] = []
        top = sorted(p for p in root.iterdir() if p.is_file() and _is_image(p))
        if subdirs and not top:
            self.classes = [p.name for p in subdirs]
            for label, d in enumerate(subdirs):
                found = _images_under(d)
                files.extend(found)
                labels.extend([label] * len(found))
        else:
            self.classes = []
            files, labels = top, [-1] * len(top)
        if not files:
            raise ValueError(
                f"dataset: the folder {root} holds no image files ({', '.join(IMAGE_SUFFIXES)}), "
                "neither directly nor in class subfolders"
            )
        self.files = files
        self.labels = labels
        if transform is None and self.resize is None:
            self._check_sizes()

    def _check_sizes(self) -> None:
        from PIL import Image

        first: tuple[Path, tuple[int, int]] | None = None
        for p in self.files:
            try:
                with Image.open(p) as im:  # reads the header only
                    size = (im.height, im.width)
            except Exception:  # noqa: BLE001  (an unreadable file is a failure when it is loaded)
                continue
            if first is None:
                first = (p, size)
            elif size != first[1]:
                raise ValueError(
                    f"dataset: images of different sizes: {first[0]} is {first[1][0]}x{first[1][1]} but {p} is "
                    f"{size[0]}x{size[1]} (height x width); pass resize=(height, width) or a transform"
                )

    def __len__(self) -> int:
        return len(self.files)

    def path(self, i: int) -> str:
        return printable(str(self.files[i]))

    def label(self, i: int) -> int:
        return self.labels[i]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from ..cli._common import _read_image

        image = _read_image(self.files[i])
        if self.transform is not None:
            return self.transform(image), self.labels[i]
        t = _pixels_to_tensor(image, self.channels)
        if self.resize is not None and tuple(t.shape[1:]) != self.resize:
            t = F.interpolate(t[None], size=self.resize, mode="bilinear", align_corners=False, antialias=True)[0]
        return t.contiguous(), self.labels[i]

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for p in self.files:
            h.update(os.fsencode(p.relative_to(self.root)) + b"\0")  # (a file name need not be UTF-8)
        return h.hexdigest()[:16]


class TensorImages(torch.utils.data.Dataset):
    """A (N, C, H, W) tensor (and optional labels) as a dataset."""

    def __init__(self, images: torch.Tensor, labels: Any = None, name: str = "tensor") -> None:
        if images.ndim != 4 or not (images.is_floating_point() or images.dtype in (torch.uint8, _UINT16, torch.bool)):
            raise ValueError(f"dataset: expected a floating, uint8, uint16 or bool (N, C, H, W) tensor, got "
                             f"{images.dtype} of shape {tuple(images.shape)}")
        self.images = images
        self.labels = None if labels is None else torch.as_tensor(labels).long()
        self.name = name

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], -1 if self.labels is None else int(self.labels[i])

    def fingerprint(self) -> str:
        h = hashlib.sha256(str(tuple(self.images.shape)).encode())
        h.update(self.images.detach().cpu().contiguous().numpy().tobytes())
        if self.labels is not None:  # other labels are another dataset (the records hold them)
            h.update(b"labels\0" + self.labels.cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


def resolve_dataset(dataset: Any, *, transform: Any = None, resize: Any = None, channels: int = 3) -> tuple[Any, str]:
    """``(map-style dataset, description)`` for what :func:`qfsel.explain_dataset` accepts."""
    if isinstance(dataset, (str, os.PathLike)):
        if isinstance(dataset, str) and dataset in BUNDLED:
            from ..datasets import mnist5k

            images, labels = mnist5k(dataset.split("-")[1])
            return TensorImages(images, labels, dataset), dataset
        if isinstance(dataset, str) and not os.path.exists(dataset) and dataset.startswith("mnist"):
            raise ValueError(f"dataset: unknown bundled dataset {dataset!r}; bundled: {', '.join(BUNDLED)}")
        folder = ImageFolder(dataset, transform, resize=resize, channels=channels)
        return folder, f"folder {folder.root}"
    if isinstance(dataset, (torch.Tensor, np.ndarray)) and dataset.ndim == 4:
        return TensorImages(_as_tensor(dataset)), "tensor"
    if (isinstance(dataset, (tuple, list)) and len(dataset) == 2 and all(isinstance(a, (torch.Tensor, np.ndarray))
                                                                          for a in dataset)
            and dataset[0].ndim == 4 and dataset[1].ndim == 1):  # (images, labels)
        images, labels = dataset
        if len(labels) != len(images):
            raise ValueError(f"dataset: (images, labels) with {len(images)} images but {len(labels)} labels")
        if not (isinstance(labels, torch.Tensor) and not labels.is_floating_point()
                or isinstance(labels, np.ndarray) and labels.dtype.kind in "iub"):
            raise ValueError(f"dataset: (images, labels) needs integer labels, got {labels.dtype}")
        return TensorImages(_as_tensor(images), _as_tensor(labels)), "tensor"
    if isinstance(dataset, torch.Tensor):
        return TensorImages(dataset), "tensor"  # (its shape is refused there)
    if isinstance(dataset, torch.utils.data.DataLoader):
        raise TypeError("dataset: expected a dataset, got a DataLoader; pass its dataset (loader.dataset): "
                        "explain_dataset batches and loads the images itself (batch_size=, num_workers=)")
    if isinstance(dataset, dict):
        raise TypeError(f"dataset: expected a dataset, got a dict (keys {sorted(map(str, dataset))[:4]}); pass the "
                        "images as a (N, C, H, W) tensor, as (images, labels), or a map-style torch Dataset")
    if isinstance(dataset, torch.utils.data.Dataset) or (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
        if isinstance(dataset, torch.utils.data.IterableDataset):
            raise TypeError("dataset: expected a map-style dataset (with __len__ and __getitem__), got an IterableDataset")
        return dataset, type(dataset).__name__
    raise TypeError(
        "dataset: expected an image folder path, a bundled dataset name "
        f"({', '.join(BUNDLED)}), a (N, C, H, W) tensor or a map-style torch Dataset; got {type(dataset).__name__}"
    )


def _as_tensor(a: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A tensor sharing ``a``'s memory (a memory-mapped array stays on disk); read-only arrays
    too (torch warns that writing through the tensor is undefined: nothing writes)."""
    if isinstance(a, torch.Tensor):
        return a
    if not a.flags.writeable:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(a)
    return torch.from_numpy(a)


def dataset_fingerprint(ds: Any) -> str:
    fp = getattr(ds, "fingerprint", None)
    if callable(fp):
        return str(fp())
    return f"{type(ds).__module__}.{type(ds).__qualname__}:{len(ds)}"


class Item:
    """One loaded item: index, image tensor (C, H, W) or None, label, path, failure reason."""

    __slots__ = ("index", "image", "label", "path", "reason")

    def __init__(self, index: int, image: torch.Tensor | None, label: int, path: str, reason: str) -> None:
        self.index, self.image, self.label, self.path, self.reason = index, image, label, path, reason


#: Keys of a dict item (a Hugging Face style example) holding the image, and the label.
IMAGE_KEYS = ("image", "pixel_values", "img", "input")
LABEL_KEYS = ("label", "labels", "target", "y")


def _split_item(item: Any) -> tuple[Any, Any]:
    """(image, label) of a dataset item: an image, an (image, label, ...) tuple or a dict."""
    if isinstance(item, dict):
        key = next((k for k in IMAGE_KEYS if k in item), None)
        if key is None:
            raise ValueError(f"a dict item needs its image under one of the keys {list(IMAGE_KEYS)}; got keys {sorted(map(str, item))}")
        return item[key], next((item[k] for k in LABEL_KEYS if k in item), -1)
    if isinstance(item, (tuple, list)):
        return (item[0], item[1] if len(item) > 1 else -1) if item else (item, -1)
    return item, -1


def _as_image_tensor(image: Any, channels: int | None = None) -> torch.Tensor:
    """A tensor from a tensor, a numpy array or a PIL image; 8-bit and 16-bit images (uint8 and
    uint16 tensors and arrays) are scaled to [0, 1], booleans to 0 and 1, a (H, W) one gets a
    channel axis. A PIL image of any mode is read as an image file is (grey, palette, RGBA,
    16-bit ...) and brought to ``channels`` channels (default 3), (H, W, C) to (C, H, W)."""
    if not isinstance(image, torch.Tensor):
        if hasattr(image, "mode") and hasattr(image, "getbands"):  # a PIL image
            from ..cli._common import _pil_array

            return _pixels_to_tensor(_pil_array(image), channels or 3)
        arr = np.array(image)  # a copy: the caller's array may be read-only
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"expected an image: a tensor, a numpy array of numbers or a PIL image; got "
                            f"{type(image).__name__} {image!r:.40}")
        if arr.dtype == np.uint16:  # (torch has few uint16 kernels)
            arr = arr.astype(np.float32) / np.float32(65535.0)
        image = torch.from_numpy(arr)
    if image.dtype == torch.uint8:
        image = image.float() / 255.0
    elif _UINT16 is not None and image.dtype == _UINT16:
        image = image.float() / 65535.0
    elif image.dtype == torch.bool:
        image = image.float()
    if image.ndim == 2:
        image = image[None]
    return image


def _as_label(label: Any, class_index: dict[str, int] | None = None) -> int:
    """A class index from an int, a bool, a one-element tensor or array, an integral float (1.0),
    a one-hot vector (the index of its single 1), or a class name found in ``class_index`` (the
    dataset's ``classes``); -1 (no label) for anything else (None, another string, a multi-hot
    vector). See :func:`label_note` for the warning a job gives about the latter."""
    if isinstance(label, str):
        return class_index.get(label, -1) if class_index else -1
    if isinstance(label, (torch.Tensor, np.ndarray, list, tuple)):
        try:
            arr = label.detach().cpu().numpy() if isinstance(label, torch.Tensor) else np.asarray(label)
        except (TypeError, ValueError, RuntimeError):
            return -1
        if arr.size == 1:
            label = arr.reshape(-1)[0].item()
        elif arr.ndim == 1 and arr.dtype.kind in "biuf" and bool(np.isin(arr, (0, 1)).all()) and int(arr.sum()) == 1:
            return int(np.argmax(arr))  # one-hot
        else:
            return -1
    if isinstance(label, (float, np.floating)) and float(label).is_integer():
        label = int(label)
    if isinstance(label, (int, np.integer)) and -(2**63) <= int(label) < 2**63:  # (bool included; int64 in the store)
        return int(label)
    return -1


def label_note(ds: Any, class_index: dict[str, int] | None) -> str | None:
    """A warning's text when the dataset's first item has a label that is recorded as -1 (no
    label) although it is there (a string that is no class name, a multi-hot vector, ...); None
    when its label is a class index or absent."""
    try:
        _, label = _split_item(ds[0])
    except Exception:  # noqa: BLE001  (an unreadable first item: the job records it)
        return None
    if label is None or (isinstance(label, (int, np.integer)) and int(label) == -1) or _as_label(label, class_index) != -1:
        return None
    kind = type(label).__name__
    hint = ("give the dataset a `classes` list holding its label names" if isinstance(label, str) and not class_index
            else "return class indices (ints) as labels")
    return (f"dataset: the label of item 0 ({label!r:.60}, a {kind}) is not a class index"
            f"{' nor one of the dataset classes' if class_index else ''}; such labels are recorded as -1 "
            f"(no label). To keep them, {hint}")


class Loadable(torch.utils.data.Dataset):
    """Wraps a dataset so that ``__getitem__`` never raises: failures become :class:`Item` with a reason."""

    def __init__(self, ds: Any, shape: tuple[int, ...] | None, channels: int | None = None,
                 classes: Sequence[str] | None = None) -> None:
        self.ds, self.shape, self.channels = ds, shape, channels
        #: class name -> label, for datasets whose items carry their class names as labels
        self.class_index = {c: i for i, c in enumerate(classes)} if classes else None

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> Item:
        try:  # (a user's dataset may have a path method of its own)
            path = printable(str(self.ds.path(i))) if callable(getattr(self.ds, "path", None)) else ""
        except Exception:  # noqa: BLE001
            path = ""
        try:
            image, label = _split_item(self.ds[i])
            label = _as_label(label, self.class_index)
            image = _as_image_tensor(image, self.channels)
            if image.ndim == 4 and image.shape[0] == 1:
                image = image[0]
            if image.ndim != 3 or not image.is_floating_point():
                raise ValueError(f"expected a (C, H, W) or (H, W) image, floating, uint8, uint16 or bool; got "
                                 f"{image.dtype} of shape {tuple(image.shape)}")
            if self.shape is not None and tuple(image.shape) != self.shape:
                raise ValueError(
                    f"image of shape {tuple(image.shape)} (C, H, W) but the dataset's first image has shape {self.shape}; "
                    "resize the images (resize=(H, W)) or use a transform that makes one size"
                )
            return Item(i, image.float().contiguous(), label, path, "")
        except Exception as exc:  # noqa: BLE001  (recorded in the failures table; the job goes on)
            return Item(i, None, -1, path, printable(f"{type(exc).__name__}: {exc}"))


def collate_items(items: Sequence[Item]) -> tuple[list[Item], torch.Tensor | None]:
    """The items and the (B', C, H, W) batch of the readable ones (None if none is)."""
    good = [it.image for it in items if it.image is not None]
    batch = torch.stack([g for g in good if g is not None]) if good else None
    for it in items:
        it.image = None
    return list(items), batch


def first_shape(ds: Loadable) -> torch.Tensor:
    """The first readable image (its shape is the dataset's image shape)."""
    reasons = []
    for i in range(min(len(ds), 64)):
        it = ds[i]
        if it.image is not None:
            return it.image
        reasons.append(f"{i}: {it.reason}")
    raise ValueError(f"dataset: none of its first {min(len(ds), 64)} items can be loaded ({'; '.join(reasons[:3])})")
