"""Reading and validating images: every bad input gets one line naming the file."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fusionbench.io import ImageError, check_pair, load_image


def test_grey_rgb_and_equal_channel_rgb(tmp_path) -> None:
    g = np.arange(64, dtype=np.uint8).reshape(8, 8)
    Image.fromarray(g).save(tmp_path / "g.png")
    Image.fromarray(np.stack([g] * 3, -1)).save(tmp_path / "g3.png")
    c = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(c).save(tmp_path / "c.png")
    assert np.array_equal(load_image(tmp_path / "g.png"), g)
    assert np.array_equal(load_image(tmp_path / "g3.png"), g)  # TNO stores grey as RGB
    assert np.array_equal(load_image(tmp_path / "c.png"), c)


@pytest.mark.parametrize("kind, reason", [
    ("missing", "file not found"),
    ("text", "not an image file"),
    ("truncated", "unreadable or truncated"),
    ("sixteen", "16-bit"),
    ("rgba", "alpha channel"),
])
def test_bad_files_name_the_file_and_reason(tmp_path, kind, reason) -> None:
    path = tmp_path / f"{kind}.png"
    if kind == "text":
        path.write_text("not an image")
    elif kind == "truncated":
        Image.fromarray(np.zeros((64, 64), np.uint8) + 7).save(path)
        path.write_bytes(path.read_bytes()[:60])
    elif kind == "sixteen":
        Image.fromarray(np.zeros((8, 8), np.uint16) + 300).save(path)
    elif kind == "rgba":
        Image.fromarray(np.zeros((8, 8, 4), np.uint8)).save(path)
    with pytest.raises(ImageError) as info:
        load_image(path)
    message = str(info.value)
    assert str(path) in message and reason in message and "\n" not in message


def test_size_mismatch_names_both_files() -> None:
    with pytest.raises(ImageError, match="b.png: size 4x4 differs from its partner a.png"):
        check_pair(np.zeros((8, 8)), np.zeros((4, 4)), "a.png", "b.png")


def test_colour_is_accepted_on_either_side_unless_grey_a_is_asked() -> None:
    grey, rgb = np.zeros((6, 7), np.uint8), np.zeros((6, 7, 3), np.uint8)
    for a, b in ((grey, rgb), (rgb, grey), (rgb, rgb), (grey, grey)):
        check_pair(a, b, "a.png", "b.png")
    with pytest.raises(ImageError, match="^vis.png: the anatomical/visible image must be grey here"):
        check_pair(rgb, grey, "vis.png", "ir.png", grey_a=True)
    check_pair(grey, rgb, "mri.png", "pet.png", grey_a=True)


def test_odd_sizes_load_as_they_are(tmp_path) -> None:
    c = np.random.default_rng(3).integers(0, 256, (67, 93, 3), dtype=np.uint8)
    Image.fromarray(c).save(tmp_path / "vis.png")
    Image.fromarray(c[..., 0]).save(tmp_path / "ir.png")
    a, b = load_image(tmp_path / "vis.png"), load_image(tmp_path / "ir.png")
    assert a.shape == (67, 93, 3) and b.shape == (67, 93)
    check_pair(a, b, tmp_path / "vis.png", tmp_path / "ir.png")
