"""PNG grids, reading user images into a model's format, and occlusion masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pixelgen.errors import ImageError
from pixelgen.images import (
    HIDDEN_RGB,
    PAD_VALUE,
    completion_grid,
    load_image,
    occlusion_mask,
    save_grid,
    save_image,
    to_uint8,
)


def read(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def test_to_uint8_scales_levels_to_full_range():
    assert to_uint8(torch.tensor([0, 1]), 2).tolist() == [0, 255]
    assert to_uint8(torch.tensor([0, 1, 2, 3]), 4).tolist() == [0, 85, 170, 255]
    assert to_uint8(torch.arange(256), 256).tolist() == list(range(256))


@pytest.mark.parametrize("channels,mode", [(1, "L"), (3, "RGB")])
def test_grid_size_mode_and_layout(tmp_path, channels, mode):
    images = torch.randint(0, 2, (5, channels, 4, 3))
    path = save_grid(images, 2, tmp_path / "g.png")  # 5 images: 3 per row, 2 rows
    with Image.open(path) as img:
        assert img.mode == mode and img.size == (3 * 3 + 4 * 2, 2 * 4 + 3 * 2)
    grid = read(path)
    assert grid[0, 0].tolist() == ([PAD_VALUE] * channels if channels == 3 else PAD_VALUE)
    # Image 4 (row 1, column 1) sits after one tile and two paddings in each direction.
    tile = grid[2 + 4 + 2 : 2 + 4 + 2 + 4, 2 + 3 + 2 : 2 + 3 + 2 + 3]
    expected = to_uint8(images[4], 2)
    assert np.array_equal(tile, expected[0] if channels == 1 else expected.transpose(1, 2, 0))
    assert set(np.unique(tile)) <= {0, 255}  # 2 levels: black and white


def test_grid_nrow_padding_and_scale(tmp_path):
    images = torch.zeros(6, 1, 5, 7, dtype=torch.long)
    path = save_grid(images, 2, tmp_path / "g.png", nrow=2, padding=1, scale=3)
    with Image.open(path) as img:
        assert img.size == (3 * (2 * 7 + 3 * 1), 3 * (3 * 5 + 4 * 1))
    # Nearest-neighbour enlargement: every source pixel becomes a 3x3 block.
    grid = read(path)
    assert np.array_equal(grid, grid[::3, ::3].repeat(3, 0).repeat(3, 1))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("levels", [2, 4, 256])
def test_saved_image_reloads_to_the_same_levels(tmp_path, channels, levels):
    image = torch.randint(0, levels, (channels, 6, 5), generator=torch.Generator().manual_seed(1))
    path = save_image(image, levels, tmp_path / "x.png")
    loaded, notes = load_image(path, channels=channels, levels=levels, size=(6, 5))
    assert torch.equal(loaded, image) and loaded.dtype == torch.long
    assert not any("resized" in n or "converted" in n for n in notes)


def write(path, array, mode):
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode=mode).save(path)
    return path


def test_load_converts_rgb_to_gray_and_resizes(tmp_path):
    rgb = np.zeros((20, 10, 3))
    rgb[:10] = 255  # white top half
    path = write(tmp_path / "c.png", rgb, "RGB")
    x, notes = load_image(path, channels=1, levels=256, size=(4, 2))
    assert x.shape == (1, 4, 2)
    assert x[0, :2].min() > 200 and x[0, 2:].max() < 50
    assert any("converted RGB to L" in n for n in notes)
    assert any("resized 20x10 to 4x2" in n for n in notes)


def test_load_converts_gray_to_rgb(tmp_path):
    path = write(tmp_path / "g.png", np.full((3, 3), 128), "L")
    x, notes = load_image(path, channels=3, levels=256)
    assert x.shape == (3, 3, 3) and (x == 128).all()
    assert notes == ["converted L to RGB"]


def test_load_binarizes_at_one_half(tmp_path):
    path = write(tmp_path / "b.png", [[0, 127, 128, 255]], "L")
    x, notes = load_image(path, channels=1, levels=2)
    assert x.tolist() == [[[0, 0, 1, 1]]]
    assert any("binarized at 0.5" in n for n in notes)
    # A black-and-white image needs no binarizing.
    bw = write(tmp_path / "bw.png", [[0, 255]], "L")
    assert load_image(bw, channels=1, levels=2)[1] == []


def test_load_quantizes_to_fewer_levels(tmp_path):
    path = write(tmp_path / "q.png", [[0, 40, 90, 200, 255]], "L")
    x, notes = load_image(path, channels=1, levels=4)
    assert x.tolist() == [[[0, 0, 1, 2, 3]]]
    assert any("quantized" in n for n in notes)


def test_load_drops_alpha_onto_white(tmp_path):
    rgba = np.zeros((2, 2, 4))
    rgba[..., 3] = 0  # fully transparent black: shown as white
    path = write(tmp_path / "a.png", rgba, "RGBA")
    x, notes = load_image(path, channels=1, levels=2)
    assert (x == 1).all() and "converted RGBA to L" in notes[0]


def test_unreadable_and_missing_images_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(ImageError, match="bad.png: cannot read image") as err:
        load_image(bad, channels=1, levels=2)
    assert "\n" not in str(err.value)
    with pytest.raises(ImageError, match="missing.png: no such image file"):
        load_image(tmp_path / "missing.png", channels=1, levels=2)


@pytest.mark.parametrize(
    "mode,rows,cols",
    [
        ("bottom-half", slice(4, 8), slice(None)),
        ("top-half", slice(0, 4), slice(None)),
        ("right-half", slice(None), slice(3, 6)),
        ("left-half", slice(None), slice(0, 3)),
        ("center", slice(2, 6), slice(1, 4)),
    ],
)
def test_fixed_masks(mode, rows, cols):
    mask = occlusion_mask(mode, (8, 6))
    expected = torch.zeros(8, 6, dtype=torch.bool)
    expected[rows, cols] = True
    assert mask.dtype == torch.bool and torch.equal(mask, expected)


def test_half_masks_of_odd_sizes_hide_the_middle_line():
    assert occlusion_mask("bottom-half", (5, 3)).sum(1).tolist() == [0, 0, 3, 3, 3]
    assert occlusion_mask("top-half", (5, 3)).sum(1).tolist() == [3, 3, 3, 0, 0]
    assert occlusion_mask("left-half", (3, 5)).sum(0).tolist() == [3, 3, 3, 0, 0]
    assert occlusion_mask("center", (7, 5)).sum().item() == 3 * 2


def test_random_mask_fraction_and_seed():
    m = occlusion_mask("random:0.25", (8, 10), seed=3)
    assert m.sum().item() == 20
    assert torch.equal(m, occlusion_mask("random:0.25", (8, 10), seed=3))
    assert not torch.equal(m, occlusion_mask("random:0.25", (8, 10), seed=4))
    assert occlusion_mask("random:0", (3, 3)).sum() == 0
    assert occlusion_mask("random:1", (3, 3)).all()
    for bad in ("random:abc", "random:1.5", "random:"):
        with pytest.raises(ImageError, match="random:0.5"):
            occlusion_mask(bad, (3, 3))


def test_mask_png(tmp_path):
    hidden = np.zeros((4, 6))
    hidden[1:3, 2:5] = 255
    path = write(tmp_path / "m.png", hidden, "L")
    assert torch.equal(occlusion_mask(str(path), (4, 6)), torch.from_numpy(hidden > 0))
    with pytest.raises(ImageError, match=r"mask is 4x6 but the images are 6x4") as err:
        occlusion_mask(str(path), (6, 4))
    assert "m.png" in str(err.value)
    with pytest.raises(ImageError, match="no such mask file"):
        occlusion_mask(str(tmp_path / "nope.png"), (4, 6))


def test_unknown_mode_lists_valid_ones():
    with pytest.raises(ImageError, match="bottom-half, top-half.*center, random:P"):
        occlusion_mask("middle", (4, 4))


def test_completion_grid(tmp_path):
    original = torch.ones(1, 4, 5, dtype=torch.long)  # white
    hidden = occlusion_mask("bottom-half", (4, 5))
    completions = torch.zeros(3, 1, 4, 5, dtype=torch.long)
    path = completion_grid(original, hidden, completions, 2, tmp_path / "c.png", padding=1)
    with Image.open(path) as img:
        assert img.mode == "RGB" and img.size == (5 * 5 + 6, 4 + 2)
    grid = read(path)
    first, view = grid[1:5, 1:6], grid[1:5, 7:12]
    assert (first == 255).all()
    assert (view[:2] == 255).all() and (view[2:] == HIDDEN_RGB).all()
    assert (grid[1:5, 13:18] == 0).all()  # first completion
    # Several inputs: one row each.
    many = completion_grid(
        original.expand(2, 1, 4, 5),
        hidden,
        completions.expand(2, 3, 1, 4, 5),
        2,
        tmp_path / "m.png",
        padding=1,
    )
    with Image.open(many) as img:
        assert img.size == (5 * 5 + 6, 2 * 4 + 3)


def test_a_decompression_bomb_is_a_one_line_error(tmp_path, monkeypatch):
    from PIL import Image as PILImage

    from pixelgen.errors import ImageError
    from pixelgen.images import load_image, occlusion_mask

    path = tmp_path / "bomb.png"
    PILImage.new("L", (64, 64)).save(path)
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 100)  # 4,096 pixels is then > 2x over
    with pytest.raises(ImageError, match="over Pillow's limit of 100 pixels"):
        load_image(path, channels=1, levels=2)
    with pytest.raises(ImageError, match="decompression bomb"):
        occlusion_mask(str(path), (64, 64))
