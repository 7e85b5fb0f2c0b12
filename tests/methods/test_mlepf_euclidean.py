"""MLEPF ``strel_shape="euclidean"``: the row-decomposed true-disk MLMG (``methods/_mlmg.py``) gives the bits of the
numpy reference (``mlepf.mlmg_numpy``: ``ndimage.grey_dilation`` / ``grey_erosion`` with the full disk footprint)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from fusionbench.methods import _mlmg
from fusionbench.methods import mlepf as m
from fusionbench.methods._matlab import disk_footprint

#: the MLMG's radii (2i + 1, i = 1..40) and every radius 0..40
RADII = sorted(set(range(0, 41)) | set(range(3, 82, 2)))


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _image(rng: np.random.Generator, shape: tuple[int, int], dtype: type) -> np.ndarray:
    x = (rng.random(shape) * 255).astype(dtype) if dtype == np.uint8 else np.abs(rng.standard_normal(shape))
    x[rng.random(shape) < 0.3] = x.flat[0]  # ties
    return x


def _padded_reference(x: np.ndarray, radius: int, maximum: bool) -> np.ndarray:
    """MATLAB imdilate / imerode by strel('disk', r, 0): pixels outside the image ignored (every pair of pixels)."""
    h, w = x.shape
    yy, xx = np.divmod(np.arange(h * w), w)
    inside = (yy[:, None] - yy[None, :]) ** 2 + (xx[:, None] - xx[None, :]) ** 2 <= radius * radius
    fill = np.iinfo(x.dtype).min if maximum and x.dtype.kind == "u" else np.iinfo(x.dtype).max if x.dtype.kind == "u" \
        else (-np.inf if maximum else np.inf)
    values = np.where(inside, x.ravel()[None, :], fill)
    return (values.max(axis=1) if maximum else values.min(axis=1)).reshape(h, w).astype(x.dtype)


def test_disk_plan_rows_are_the_footprints() -> None:
    radii = tuple(range(0, 82))
    big, uses = _mlmg.disk_plan(radii)
    assert big == 81
    for s, r in enumerate(radii):
        fp = np.zeros((2 * r + 1, 2 * r + 1), dtype=bool)
        for w, pairs in enumerate(uses):
            for scale, dy in pairs:
                if scale == s:
                    fp[r + dy, r - w : r + w + 1] = True
        assert np.array_equal(fp, disk_footprint(r)), r


@pytest.mark.parametrize("dtype", [np.float64, np.uint8])
@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (5, 1), (2, 2), (7, 5), (13, 17), (3, 40)])
def test_disk_extremes_every_radius_small_images(shape: tuple[int, int], dtype: type) -> None:
    """Images smaller than the footprints (up to 163×163): every radius 0..81 against MATLAB's ±Inf-padded
    dilation/erosion (brute force), and the reference's scipy calls for the radii of the MLMG and 0..40."""
    x = _image(np.random.default_rng(shape[0] * 100 + shape[1]), shape, dtype)
    radii = list(range(0, 82))
    dil, ero = _mlmg.disk_extremes(x, radii)
    for k, r in enumerate(radii):
        assert _same_bits(dil[k], _padded_reference(x, r, True)), r
        assert _same_bits(ero[k], _padded_reference(x, r, False)), r
        if r in RADII and x.size <= 40:
            fp = disk_footprint(r)
            assert _same_bits(dil[k], ndimage.grey_dilation(x, footprint=fp, mode="nearest")), r
            assert _same_bits(ero[k], ndimage.grey_erosion(x, footprint=fp, mode="nearest")), r


@pytest.mark.parametrize("dtype", [np.float64, np.uint8])
def test_disk_extremes_equal_scipy_footprint(dtype: type, monkeypatch: pytest.MonkeyPatch) -> None:
    """Odd sizes, several bands of output rows (band of 5 rows forced), the radii 0..40 and those of the MLMG
    (up to 81, larger than the image): bit-identical to ``grey_dilation``/``grey_erosion(mode="nearest")``."""
    monkeypatch.setattr(_mlmg, "_band_rows", lambda h, w: 5)
    rng = np.random.default_rng(7)
    x = _image(rng, (23, 19), dtype)
    dil, ero = _mlmg.disk_extremes(x, RADII)
    for k, r in enumerate(RADII):
        fp = disk_footprint(r)
        assert _same_bits(dil[k], ndimage.grey_dilation(x, footprint=fp, mode="nearest")), r
        assert _same_bits(ero[k], ndimage.grey_erosion(x, footprint=fp, mode="nearest")), r


def test_disk_extremes_wide_image_and_errors() -> None:
    x = _image(np.random.default_rng(3), (9, 201), np.float64)
    radii = [0, 1, 5, 13, 81]
    dil, ero = _mlmg.disk_extremes(x, radii)
    for k, r in enumerate(radii):
        fp = disk_footprint(r)
        assert _same_bits(dil[k], ndimage.grey_dilation(x, footprint=fp, mode="nearest")), r
        assert _same_bits(ero[k], ndimage.grey_erosion(x, footprint=fp, mode="nearest")), r
    with pytest.raises(ValueError, match="2-D"):
        _mlmg.disk_extremes(np.zeros((2, 3, 4)), [1])
    with pytest.raises(ValueError, match="radii"):
        _mlmg.disk_extremes(np.zeros((3, 4)), [-1])


def test_euclidean_mlmg_equals_numpy_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """All 40 scales (disks up to radius 81 on 2 planes of 19×23, one with a flat zero region): the same bits as
    ``mlmg_numpy(shape="euclidean")``, on one thread and on two, with one band or bands of 4 rows."""
    rng = np.random.default_rng(11)
    maps = np.abs(rng.standard_normal((2, 19, 23)))
    maps[0, :6] = 0.0
    maps[1, rng.random((19, 23)) < 0.2] = 0.5
    ref = m.mlmg_numpy(maps, 40, "euclidean")
    few = m.mlmg_numpy(maps, 3, "euclidean")
    assert _same_bits(m.mlmg(maps, 40, "euclidean", workers=1), ref)
    assert _same_bits(m.mlmg(maps, 40, "euclidean", workers=2), ref)
    assert _same_bits(m.mlmg(maps, 3, "euclidean"), few)
    monkeypatch.setattr(_mlmg, "_band_rows", lambda h, w: 4)
    assert _same_bits(m.mlmg(maps, 40, "euclidean", workers=2), ref)
    assert _same_bits(m.mlmg(maps, 3, "euclidean", workers=1), few)
