"""viz: overlay arithmetic, input forms, grid layout and titles, PNG files."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.image import imread

from qfsel.viz import as_rgb, comparison_grid, overlay, save_comparison_grid, save_overlay


def test_overlay_is_the_alpha_blend_of_the_colormap():
    rng = np.random.default_rng(0)
    img = rng.random((5, 7, 3))
    heat = rng.random((5, 7))
    out = overlay(img, heat, alpha=0.3, cmap="viridis")
    expected = 0.7 * img + 0.3 * colormaps["viridis"](heat)[:, :, :3]
    np.testing.assert_allclose(out, expected, atol=1e-12)
    np.testing.assert_allclose(overlay(img, heat, alpha=0.0), img)


def test_image_forms_uint8_gray_and_float():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    rgb = as_rgb(gray)
    assert rgb.shape == (3, 4, 3)
    np.testing.assert_allclose(rgb[:, :, 1], gray / 255.0)
    np.testing.assert_allclose(as_rgb(np.full((2, 2, 1), 0.5)), np.full((2, 2, 3), 0.5))


@pytest.mark.parametrize(
    ("image", "heat", "err", "pattern"),
    [
        (np.zeros((3, 8, 8)), np.zeros((8, 8)), ValueError, "channels first"),
        (np.full((4, 4), 2.0), np.zeros((4, 4)), ValueError, r"\[0, 1\].*uint8"),
        (np.zeros((4, 4, 4)), np.zeros((4, 4)), ValueError, r"\(H, W\) or \(H, W, 3\)"),
        (np.zeros((4, 4), dtype=bool), np.zeros((4, 4)), TypeError, "dtype bool"),
        (np.zeros((4, 4)), np.zeros((2, 2)), ValueError, "upsample=True"),
        (np.zeros((4, 4)), np.full((4, 4), np.nan), ValueError, "finite"),
    ],
)
def test_bad_inputs(image, heat, err, pattern):
    with pytest.raises(err, match=pattern):
        overlay(image, heat)


def test_bad_alpha_and_cmap():
    with pytest.raises(ValueError, match="alpha"):
        overlay(np.zeros((2, 2)), np.zeros((2, 2)), alpha=1.5)
    with pytest.raises(ValueError, match="alpha"):
        overlay(np.zeros((2, 2)), np.zeros((2, 2)), alpha=float("nan"))
    with pytest.raises(TypeError, match="alpha"):
        overlay(np.zeros((2, 2)), np.zeros((2, 2)), alpha="0.5")
    with pytest.raises(ValueError, match="cmap"):
        overlay(np.zeros((2, 2)), np.zeros((2, 2)), cmap="no-such-map")


def test_grid_layout_titles_and_png(tmp_path):
    rng = np.random.default_rng(1)
    images = (rng.random((2, 12, 12, 3)) * 255).astype(np.uint8)
    maps = {m: rng.random((2, 12, 12)) for m in ("GradCAM", "GradCAM++", "QFS-CAM")}
    fig = comparison_grid(
        images,
        maps,
        class_names=["cat", "cup"],
        scores={"GradCAM": [1.5, 2.25], "QFS-CAM": [1.5, 2.25]},
        num_selected={"QFS-CAM": [3, 5]},
    )
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 8
    assert titles[:4] == ["cat", "GradCAM\ncat 1.50", "GradCAM++\ncat", "QFS-CAM\ncat 1.50\n3 maps"]
    assert titles[7] == "QFS-CAM\ncup 2.25\n5 maps"
    path = save_comparison_grid(tmp_path / "grid.png", images, maps, class_names=["cat", "cup"], dpi=50)
    png = imread(path)
    assert png.ndim == 3 and png.shape[0] > 50 and png.shape[1] > png.shape[0]  # 4 columns, 2 rows
    one = save_overlay(tmp_path / "one.png", images[0], maps["GradCAM"][0])
    assert imread(one).shape[:2] == (12, 12)


def test_grid_argument_checks():
    img = np.zeros((1, 4, 4))
    with pytest.raises(ValueError, match=r"heatmaps\['A'\]: expected 1 maps"):
        comparison_grid(img, {"A": np.zeros((2, 4, 4))})
    with pytest.raises(ValueError, match="not a method"):
        comparison_grid(img, {"A": np.zeros((1, 4, 4))}, scores={"B": [1.0]})
    with pytest.raises(ValueError, match="class_names"):
        comparison_grid(img, {"A": np.zeros((1, 4, 4))}, class_names=["a", "b"])
    with pytest.raises(ValueError, match="at least one method"):
        comparison_grid(img, {})


def test_numpy_alpha_is_a_number():
    """np.float32(0.3) was refused as 'expected a number in [0, 1]'."""
    img, heat = np.zeros((2, 2)), np.ones((2, 2))
    np.testing.assert_allclose(overlay(img, heat, alpha=np.float32(0.25)), overlay(img, heat, alpha=0.25), atol=1e-7)


@pytest.mark.parametrize(
    ("image", "heat", "pattern"),
    [
        ("cat.png", np.zeros((2, 2)), r"image: expected an array of uint8 or float values, got str"),
        (None, np.zeros((2, 2)), r"image: expected .* got NoneType"),
        (np.zeros((2, 2)), "hot", r"heatmap: expected an \(H, W\) array of numbers"),
    ],
)
def test_non_numeric_image_or_heatmap_is_named(image, heat, pattern):
    """Were 'got shape ()' and numpy's 'could not convert string to float'."""
    with pytest.raises(TypeError, match=pattern):
        overlay(image, heat)


def test_grid_bad_heatmaps_panel_size_and_dpi(tmp_path):
    """Were an AttributeError ('list' has no 'items'), a LinAlgError (panel_size=0) and matplotlib's error."""
    img, maps = np.zeros((1, 4, 4)), {"A": np.zeros((1, 4, 4))}
    with pytest.raises(TypeError, match="heatmaps: expected a mapping"):
        comparison_grid(img, [np.zeros((1, 4, 4))])
    for size in (0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="panel_size"):
            comparison_grid(img, maps, panel_size=size)
    with pytest.raises(ValueError, match="dpi"):
        save_comparison_grid(tmp_path / "g.png", img, maps, dpi=0)
    assert not (tmp_path / "g.png").exists()


def test_show_cam_on_image_is_the_overlay_in_uint8():
    from PIL import Image

    import qfsel
    from qfsel.viz import show_cam_on_image

    rng = np.random.default_rng(1)
    img = (rng.random((9, 11, 3)) * 255).astype(np.uint8)
    heat = rng.random((9, 11))
    out = show_cam_on_image(img, heat, alpha=0.4)
    assert out.dtype == np.uint8 and out.shape == (9, 11, 3)
    np.testing.assert_array_equal(out, np.rint(overlay(img, heat, alpha=0.4) * 255).astype(np.uint8))
    assert np.abs(out.astype(int) - np.rint(overlay(img, heat, alpha=0.4) * 255)).max() == 0
    assert Image.fromarray(out).mode == "RGB"
    assert qfsel.show_cam_on_image is show_cam_on_image
    with pytest.raises(ValueError, match="heatmap: expected the image's size"):
        show_cam_on_image(img, heat[:5])


def test_save_overlay_with_a_title_labels_the_png(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(2)
    img, heat = rng.random((40, 30, 3)), rng.random((40, 30))
    plain = save_overlay(tmp_path / "plain.png", img, heat)
    assert imread(plain).shape[:2] == (40, 30)  # pixel for pixel without a title
    titled = save_overlay(tmp_path / "titled.png", img, heat, title="7 - QFS-CAM, 3 maps")
    with Image.open(titled) as png:
        assert png.text["Title"] == "7 - QFS-CAM, 3 maps"
        assert png.size == (30, 40 + 28)
    pixels = imread(titled)
    assert pixels[:28].std() > 0  # the title band holds text, not a flat colour
    with pytest.raises(TypeError, match="title"):
        save_overlay(tmp_path / "bad.png", img, heat, title=3)


def test_an_image_a_hair_outside_the_unit_range_is_rounding():
    """x * std + mean can land at 1.0000001 or -1e-8: clipped (the heatmaps' 1e-6 tolerance);
    anything further out is still refused."""
    img = np.full((4, 5, 3), 0.5)
    img[0, 0, 0], img[1, 1, 1] = 1.0 + 5e-7, -5e-8
    out = as_rgb(img)
    assert out.min() == 0.0 and out.max() == 1.0 and out[2, 2, 2] == 0.5
    img[0, 0, 0] = 1.01
    with pytest.raises(ValueError, match=r"expected float values in \[0, 1\]"):
        as_rgb(img)
