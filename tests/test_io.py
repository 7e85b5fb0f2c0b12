"""Reading and validating images: every bad input gets one line naming the file."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fusionbench.io import ImageError, check_pair, check_pair_files, image_size, load_image


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
    for read in (load_image, image_size):  # the header check refuses it with the same one-line reason
        with pytest.raises(ImageError) as info:
            read(path)
        message = str(info.value)
        assert str(path) in message and reason in message and "\n" not in message, read.__name__


def test_pair_files_checked_without_decoding(tmp_path) -> None:
    grey, rgb = np.zeros((6, 7), np.uint8), np.zeros((6, 7, 3), np.uint8)
    Image.fromarray(grey).save(tmp_path / "a.png")
    Image.fromarray(rgb).save(tmp_path / "b.jpg")
    Image.fromarray(np.zeros((7, 6), np.uint8)).save(tmp_path / "t.png")
    Image.fromarray(np.zeros((6, 7), np.uint8)).convert("P").save(tmp_path / "p.png")
    assert image_size(tmp_path / "a.png") == (7, 6)
    check_pair_files(tmp_path / "a.png", tmp_path / "b.jpg")   # colour on either side, any format
    check_pair_files(tmp_path / "p.png", tmp_path / "a.png")   # a palette image is read as RGB
    with pytest.raises(ImageError, match=r"t.png: size 6x7 differs from its partner .*a.png \(7x6\)$"):
        check_pair_files(tmp_path / "a.png", tmp_path / "t.png")


def test_a_pair_too_small_to_score_is_refused_once_at_the_pair_check(tmp_path) -> None:
    """A 1×1 (or 1×N) pair used to pass and fail once per metric per method ("images must be at least 2x2");
    2×2 is the smallest size every metric preset scores, which :data:`fusionbench.io.MIN_SIDE` follows."""
    from fusionbench.io import MIN_SIDE
    from fusionbench.metrics import evaluate

    for size in ((1, 1), (1, 5), (5, 1), (2, 2)):
        for side in "ab":
            Image.fromarray(np.zeros(size, np.uint8)).save(tmp_path / f"{side}.png")
        if min(size) < MIN_SIDE:
            with pytest.raises(ImageError, match=rf"a\.png: size {size[1]}x{size[0]} is too small to score "
                                                 r"\(the metrics need at least 2x2\)$"):
                check_pair_files(tmp_path / "a.png", tmp_path / "b.png")
        else:
            check_pair_files(tmp_path / "a.png", tmp_path / "b.png")
    rng = np.random.default_rng(0)
    smallest = [rng.integers(0, 256, (MIN_SIDE, MIN_SIDE), dtype=np.uint8) for _ in range(3)]
    assert len(evaluate(*smallest, "all")) > 30  # every preset gives a value (NaN where undefined)
    with pytest.raises(ValueError, match="at least 2x2"):
        evaluate(*(x[:1] for x in smallest), "all")


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


def test_index_images_reports_twins_and_other_files(tmp_path) -> None:
    from fusionbench.io import index_images

    grey = np.zeros((4, 4), np.uint8)
    Image.fromarray(grey).save(tmp_path / "1.png")
    Image.fromarray(grey).save(tmp_path / "1.jpg")
    Image.fromarray(grey).save(tmp_path / "2.bmp")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden.png").write_bytes(b"")
    problems: list[str] = []
    found = index_images(tmp_path, problems)
    # the PNG is kept (IMAGE_SUFFIXES order), the JPEG of the same stem skipped; before, name order kept 1.jpg
    assert {k: v.name for k, v in found.items()} == {"1": "1.png", "2": "2.bmp"}
    assert any("1.jpg" in p and "second image" in p for p in problems)
    assert any("notes.txt" in p and "not an image" in p for p in problems)
    quiet: list[str] = []
    index_images(tmp_path, quiet, report_other_files=False)
    assert len(quiet) == 1 and "second image" in quiet[0]
    with pytest.raises(FileNotFoundError, match="missing"):
        index_images(tmp_path / "missing", [])


def test_folder_dataset_reports_a_stem_twice(tmp_path) -> None:
    import fusionbench.data as data

    grey = np.full((8, 8), 7, np.uint8)
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
        Image.fromarray(grey).save(tmp_path / side / "p1.png")
    Image.fromarray(grey).save(tmp_path / "b" / "p1.bmp")
    ds = data.create_dataset(f"folder:{tmp_path}")
    assert [p.id for p in ds.pairs] == ["p1"]
    assert any("p1.png" in p and "second image" in p for p in ds.problems)


def test_formats_pillow_decodes_are_read(tmp_path) -> None:
    """WebP and JPEG 2000 pairs are read like PNG (docs/datasets.md: any format Pillow reads as 8-bit grey or RGB;
    they were skipped as "not an image file (extension .webp)"); the mode rules are the same (16-bit refused from
    the header); a format Pillow registers but fusionbench does not read is named as such."""
    from PIL import features

    import fusionbench.data as data
    from fusionbench.io import IMAGE_SUFFIXES, index_images

    if not (features.check("webp") and features.check("jpg_2000")):
        pytest.skip("this Pillow is built without WebP or JPEG 2000")
    grey = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    colour = np.stack([grey, 255 - grey, grey // 2], -1)
    for side, image in (("a", grey), ("b", colour)):
        (tmp_path / side).mkdir()
        Image.fromarray(image).save(tmp_path / side / "w.webp", lossless=True)
        Image.fromarray(image).save(tmp_path / side / "j.jp2", irreversible=False)  # lossless JPEG 2000
    ds = data.create_dataset(f"folder:{tmp_path}")
    assert [p.id for p in ds.pairs] == ["j", "w"] and ds.problems == []
    for pair in ds.pairs:
        check_pair_files(pair.a_path, pair.b_path)
        assert np.array_equal(load_image(pair.a_path), grey) and np.array_equal(load_image(pair.b_path), colour)
    assert IMAGE_SUFFIXES[:2] == (".png", ".bmp") and {".webp", ".jp2", ".j2k", ".tga"} <= set(IMAGE_SUFFIXES)
    Image.fromarray(np.full((6, 8), 300, np.uint16)).save(tmp_path / "deep.jp2")
    with pytest.raises(ImageError, match="deep.jp2: 16-bit image"):
        image_size(tmp_path / "deep.jp2")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "figure.eps").write_text("%!PS-Adobe-3.0 EPSF-3.0\n")
    problems: list[str] = []
    index_images(tmp_path / "figures", problems)
    assert problems == [f"{tmp_path / 'figures' / 'figure.eps'}: unsupported image format .eps (EPS: not read with this "
                        "Pillow; fusionbench.io.IMAGE_SUFFIXES lists the extensions read), skipped"]


def test_upper_and_mixed_case_extensions_are_images_and_the_png_is_still_preferred(tmp_path) -> None:
    """Camera and scanner files (``1.PNG``, ``2.JpG``) are images: a case-sensitive check skipped them as
    "unsupported image format .PNG", and ranked ``1.PNG`` after ``1.jpg`` (the lossy twin was kept)."""
    from PIL import features

    from fusionbench.io import index_images, is_image_suffix

    grey = np.arange(16, dtype=np.uint8).reshape(4, 4)
    Image.fromarray(grey).save(tmp_path / "1.PNG", format="PNG")
    Image.fromarray(grey).save(tmp_path / "1.jpg")
    Image.fromarray(grey).save(tmp_path / "2.JpG", format="JPEG")
    problems: list[str] = []
    found = index_images(tmp_path, problems)
    assert {k: v.name for k, v in found.items()} == {"1": "1.PNG", "2": "2.JpG"}
    assert problems == [f"{tmp_path / '1.jpg'}: a second image named '1' (using 1.PNG), skipped"]
    assert np.array_equal(load_image(found["1"]), grey)
    suffixes = [".PNG", ".JpG", ".TIFF", ".Bmp"] + ([".WEBP"] if features.check("webp") else [])
    assert all(is_image_suffix(s) for s in suffixes) and not is_image_suffix(".TXT")


@pytest.mark.parametrize("suffix, fmt", [(".h5", "HDF5"), (".grib", "GRIB"), (".bufr", "BUFR"), (".wmf", "WMF")])
def test_stub_formats_pillow_only_identifies_are_not_images(tmp_path, suffix, fmt) -> None:
    """Pillow registers HDF5, GRIB, BUFR and WMF with stub readers that decode nothing: such a file is named as an
    unsupported format, not taken as an image that then fails the header check."""
    from fusionbench.io import IMAGE_SUFFIXES, index_images, is_image_suffix

    (tmp_path / f"x{suffix}").write_bytes(bytes(64))
    problems: list[str] = []
    assert index_images(tmp_path, problems) == {}
    assert problems == [f"{tmp_path / f'x{suffix}'}: unsupported image format {suffix} ({fmt}: not read with this "
                        "Pillow; fusionbench.io.IMAGE_SUFFIXES lists the extensions read), skipped"]
    assert suffix not in IMAGE_SUFFIXES and not is_image_suffix(suffix)


@pytest.mark.parametrize("bad, reason", [
    (np.full((6, 7), np.nan, np.float32), "holds 42 NaN or infinite values"),
    (np.array([[0.2, np.inf], [0.1, 0.3]]), "holds 1 NaN or infinite values"),
    (np.full((6, 7), 1.5), "float arrays must lie in [0, 1]"),
    (np.zeros((6, 7), np.uint16), "array dtype uint16 not supported"),
    (np.zeros((6, 7, 1)), "expected an H×W or H×W×3 image"),
    (np.zeros((0, 7), np.uint8), "empty image (shape (0, 7))"),  # was fused into an empty result
])
def test_fuse_names_the_bad_array_not_the_method(bad, reason) -> None:
    """An array argument of ``fusionbench.fuse`` that is not an image is refused naming the argument; a NaN in
    the input is the input's fault, not reported as the method's NaN output."""
    import fusionbench

    good = np.zeros(bad.shape[:2], np.float32)
    with pytest.raises(ImageError) as info:
        fusionbench.fuse("average", bad, good)
    assert str(info.value).startswith("a: ") and reason in str(info.value)


def test_a_folder_given_as_an_image_says_so(tmp_path) -> None:
    from fusionbench.io import ImageError, load_image

    with pytest.raises(ImageError, match="is a folder, not an image file"):
        load_image(tmp_path)


# --------------------------------------------------------------------------- atomic_write (audit 1.4)
def test_atomic_write_replaces_the_file_on_success(tmp_path) -> None:
    from fusionbench.io import atomic_write

    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with atomic_write(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.bin.") and tmp.name.endswith(".tmp")
        tmp.write_bytes(b"new")
        assert target.read_bytes() == b"old"  # nothing visible before the block ends
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_atomic_write_keeps_the_old_file_and_no_temp_file_on_error(tmp_path) -> None:
    from fusionbench.io import atomic_write

    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="write failed"):
        with atomic_write(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("write failed")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
    with pytest.raises(KeyboardInterrupt):  # an interrupt too (a killed training's checkpoint)
        with atomic_write(tmp_path / "new.bin") as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_atomic_write_temp_names_are_unique_per_thread(tmp_path) -> None:
    """Two writers of one file in the same process get two temporary files (the old ``.<pid>.tmp`` was shared)."""
    import threading

    from fusionbench.io import atomic_write

    target = tmp_path / "out.bin"
    inside, release, names = threading.Barrier(3), threading.Event(), []  # the two writers and this test

    def writer(payload: bytes) -> None:
        with atomic_write(target) as tmp:
            tmp.write_bytes(payload)
            names.append(tmp.name)
            inside.wait(timeout=10)  # both temporary files exist at once
            release.wait(timeout=10)

    threads = [threading.Thread(target=writer, args=(bytes([i]) * 1000,)) for i in (1, 2)]
    for t in threads:
        t.start()
    inside.wait(timeout=10)
    assert len(set(names)) == 2
    release.set()
    for t in threads:
        t.join()
    assert target.read_bytes() in (b"\x01" * 1000, b"\x02" * 1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_save_png_from_many_threads_into_one_path_never_collides(tmp_path) -> None:
    """``save_png`` into the content-addressed cache can race; its fixed ``<name>.tmp`` made one writer's rename
    take the other's half-written file, or fail with ``FileNotFoundError``.  Now every write is whole."""
    from concurrent.futures import ThreadPoolExecutor

    from fusionbench.io import save_png

    target = tmp_path / "cache" / "fused.png"
    images = [np.full((64, 64), i, dtype=np.uint8) for i in range(8)]

    def write(i: int) -> None:
        for _ in range(10):
            save_png(target, images[i])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(8)))  # re-raises any writer's error
    assert any(np.array_equal(load_image(target), im) for im in images)
    assert sorted(p.name for p in target.parent.iterdir()) == ["fused.png"]


def test_a_folder_that_cannot_be_listed_is_named_with_the_reason(tmp_path, monkeypatch) -> None:
    """A side folder this user cannot read was a bare "[Errno 13] Permission denied: '…/a'"; the message now says
    what failed. (Root ignores ``chmod 000``, so the listing is made to fail.)"""
    from pathlib import Path

    from fusionbench.io import index_images

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", refuse)
    with pytest.raises(PermissionError, match="cannot list the folder") as info:
        index_images(tmp_path, [])
    assert info.value.filename == str(tmp_path) and str(tmp_path) in str(info.value)


def test_atomic_write_syncs_the_data_before_the_rename_and_the_folder_after(tmp_path, monkeypatch) -> None:
    """A power cut must find the old file or the complete new one: the temporary file's data reach the disk
    (``fsync``) before it is renamed into place, and the folder's entry after."""
    import os

    from fusionbench import io

    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(src)))
        real_replace(src, dst)

    monkeypatch.setattr(io.os, "fsync", fsync)
    monkeypatch.setattr(io.os, "replace", replace)
    with io.atomic_write(tmp_path / "w.bin") as tmp:
        tmp.write_bytes(b"data")
    assert events == [("fsync", str(tmp)), ("replace", str(tmp)), ("fsync", str(tmp_path))]


def test_rgb_is_grey_only_when_all_three_channels_are_equal(tmp_path) -> None:
    """IO1: an RGB file is returned as grey only when R = G = B; R = G ≠ B stays colour."""
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = rgb[..., 1] = 100
    rgb[..., 2] = 30
    Image.fromarray(rgb).save(tmp_path / "rg.png")
    out = load_image(tmp_path / "rg.png")
    assert out.shape == (4, 5, 3)
    np.testing.assert_array_equal(out, rgb)
    rgb[..., 2] = 100
    Image.fromarray(rgb).save(tmp_path / "grey.png")
    assert load_image(tmp_path / "grey.png").shape == (4, 5)


def test_a_colour_palette_image_is_read_as_its_rgb_colours(tmp_path) -> None:
    """IO2: mode P expands to RGB (not PIL's grey conversion of the palette)."""
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[:, :3] = (200, 30, 10)
    rgb[:, 3:] = (10, 40, 220)
    Image.fromarray(rgb).quantize(colors=2).save(tmp_path / "p.png")
    with Image.open(tmp_path / "p.png") as img:
        assert img.mode == "P"
    np.testing.assert_array_equal(load_image(tmp_path / "p.png"), rgb)


@pytest.mark.parametrize("suffix", [".png", ".gif", ".tif", ".webp"])
def test_a_file_of_several_frames_is_refused_naming_it(tmp_path, suffix) -> None:
    """An animated PNG/GIF/WebP or a multi-page TIFF was read by its first frame, silently (session 31's
    untrusted-input audit); now load_image and the planner's header check refuse it, and one frame still reads."""
    frames = [Image.fromarray(np.full((8, 9), v, np.uint8)) for v in (10, 200, 90)]
    several, one = tmp_path / f"several{suffix}", tmp_path / f"one{suffix}"
    frames[0].save(several, save_all=True, append_images=frames[1:])
    frames[0].save(one)
    for read in (load_image, image_size):
        with pytest.raises(ImageError, match=r"holds 3 frames \(an animation or a multi-page file\)") as err:
            read(several)
        assert str(several) in str(err.value)
    assert load_image(one).shape == (8, 9) and image_size(one) == (9, 8)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's "Corrupt EXIF data" on the damaged TIFFs
def test_a_damaged_file_of_several_frames_is_one_image_error(tmp_path) -> None:
    """Counting frames makes Pillow seek through them: a damaged TIFF raised ``TypeError: Missing dimensions`` and
    a damaged GIF an ``IndexError`` out of the check, which stopped a whole run naming no file (session 32's
    review: 316 of 2,400 fuzzed files).  Every one is an ImageError naming the file."""
    import io
    import random

    frames = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 50), dtype=np.uint8)) for i in range(3)]
    rng = random.Random(0)
    for fmt, suffix in (("GIF", ".gif"), ("TIFF", ".tif"), ("PNG", ".png"), ("WEBP", ".webp")):
        buf = io.BytesIO()
        frames[0].save(buf, format=fmt, save_all=True, append_images=frames[1:])
        raw = buf.getvalue()
        for k in range(60):
            data = bytearray(raw[: rng.randrange(20, len(raw))] if k % 2 else raw)
            for _ in range(0 if k % 2 else 3):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            path = tmp_path / f"f{k}{suffix}"
            path.write_bytes(bytes(data))
            for read in (image_size, load_image):
                try:
                    read(path)
                except ImageError as exc:
                    assert str(path) in str(exc)


def test_a_camera_jpeg_with_an_mpo_preview_reads_its_photograph(tmp_path) -> None:
    """Cameras write a second (preview) image into many JPEGs (MPO); Pillow counts 2 frames, and the first is the
    photograph by definition: read, not refused as several frames."""
    photo = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    path = tmp_path / "cam.jpg"
    Image.fromarray(photo).save(path, format="MPO", save_all=True, append_images=[Image.fromarray(photo[::2, ::2])])
    assert Image.open(path).n_frames == 2
    assert load_image(path).shape == (40, 50, 3) and image_size(path) == (50, 40)


def _png_rgb16(path, rgb16: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG, written from its chunks (PIL opens such files but cannot write them)."""
    import struct
    import zlib

    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_a_16_bit_colour_png_is_refused_like_a_16_bit_grey_one(tmp_path) -> None:
    """Session 38's metrics audit: PIL reads a 16-bit-per-channel RGB PNG as mode RGB, keeping the high byte of each
    channel, so it was scored (and fused) as 8-bit without a word; 16-bit grey was refused, as the README says."""
    path = tmp_path / "deep_rgb.png"
    _png_rgb16(path, (np.random.default_rng(0).random((8, 9, 3)) * 65535).astype(np.uint16))
    with pytest.raises(ImageError, match=r"deep_rgb\.png: 16-bit colour image \(16 bits per channel\)"):
        load_image(path)
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (8, 9, 3), dtype=np.uint8)).save(tmp_path / "rgb8.png")
    assert load_image(tmp_path / "rgb8.png").shape == (8, 9, 3)
