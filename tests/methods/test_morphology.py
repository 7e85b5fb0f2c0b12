"""Disk erosion/dilation by rows (methods/_morphology.py) are bit-identical to scipy's with the disk footprint."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from fusionbench.methods import _morphology as morph
from fusionbench.methods._matlab import disk_footprint


@pytest.mark.parametrize("radius", list(range(0, 14)))
@pytest.mark.parametrize("dtype", [np.float64, np.uint8])
def test_by_rows_equals_scipy_footprint(radius, dtype):
    rng = np.random.default_rng(radius)
    for shape in [(1, 1), (3, 40), (7, 5), (40, 33), (64, 71)]:
        x = (rng.random(shape) * 255).astype(dtype)
        x[rng.random(shape) < 0.3] = 7  # ties
        fp = disk_footprint(radius)
        erosion = morph._by_rows(x, radius, False)
        dilation = morph._by_rows(x, radius, True)
        assert erosion.dtype == x.dtype and np.array_equal(erosion, ndimage.grey_erosion(x, footprint=fp, mode="nearest"))
        assert np.array_equal(dilation, ndimage.grey_dilation(x, footprint=fp, mode="nearest"))
        # the public functions (which call scipy itself for small radii) agree too
        assert np.array_equal(morph.disk_erosion(x, radius), ndimage.grey_erosion(x, footprint=fp, mode="nearest"))
        assert np.array_equal(morph.disk_dilation(x, radius), ndimage.grey_dilation(x, footprint=fp, mode="nearest"))


def test_other_modes_and_bad_input():
    x = np.random.default_rng(0).random((20, 30))
    fp = disk_footprint(7)
    assert np.array_equal(morph.disk_erosion(x, 7, mode="reflect"), ndimage.grey_erosion(x, footprint=fp, mode="reflect"))
    assert list(morph.disk_row_half_widths(3)) == [0, 2, 2, 3, 2, 2, 0]
    with pytest.raises(ValueError, match="2-D"):
        morph.disk_erosion(np.zeros((2, 3, 4)), 5)
    with pytest.raises(ValueError, match="radius"):
        morph.disk_row_half_widths(-1)


@pytest.mark.parametrize("size", [1, 3, 5, 7, 9, 13, 23])
def test_running_extreme_is_scipys_filter1d(size):
    rng = np.random.default_rng(size)
    for shape in [(1, 1), (2, 3), (5, 40), (33, 17)]:
        for dtype in (np.float64, np.uint8):
            x = (rng.random(shape) * 255).astype(dtype)
            got_min, got_max = morph.running_extreme(x, size, False), morph.running_extreme(x, size, True)
            assert got_min.dtype == x.dtype
            assert np.array_equal(got_min, ndimage.minimum_filter1d(x, size, axis=1, mode="nearest"))
            assert np.array_equal(got_max, ndimage.maximum_filter1d(x, size, axis=1, mode="nearest"))
    with pytest.raises(ValueError, match="odd"):
        morph.running_extreme(np.zeros((3, 3)), 4, False)


def _whole_image_passes(image, radius, maximum):
    """The disk extreme as written before session 9: the running extreme of each distinct width over the whole
    image (:func:`morph.running_extreme`), then 2r whole-image ``np.maximum`` / ``np.minimum`` (out, row
    ``clip(y + dy)``) passes for dy = −r..−1, 1..r (the second operand on ties)."""
    combine = np.maximum if maximum else np.minimum
    rows = image.shape[0]
    widths = morph.disk_row_half_widths(radius)
    along_x = {w: morph.running_extreme(image, 2 * w + 1, maximum) for w in sorted(set(widths.tolist()))}
    out = along_x[widths[radius]].copy()  # dy = 0
    for dy, w in zip(range(-radius, radius + 1), widths):
        if dy == 0:
            continue
        src = along_x[w]
        k = min(abs(dy), rows)
        if dy > 0:   # output row y sees row min(y + dy, rows − 1)
            combine(out[:rows - k], src[k:], out=out[:rows - k])
            combine(out[rows - k:], src[rows - 1], out=out[rows - k:])
        else:        # output row y sees row max(y + dy, 0)
            combine(out[k:], src[:rows - k], out=out[k:])
            combine(out[:k], src[0], out=out[:k])
    return out


@pytest.mark.parametrize("radius", [4, 7, 11, 16])
def test_one_sweep_equals_whole_image_passes(radius):
    """Issue 23 (session 9): the one-sweep kernel (a ring of running extremes) gives the former whole-image
    passes' values bit for bit, signed zeros included, on images shorter and narrower than the disk."""
    rng = np.random.default_rng(100 + radius)
    for shape in [(1, 1), (2, 50), (50, 2), (radius, radius + 3), (61, 47)]:
        for x in (rng.random(shape), np.round(rng.random(shape) * 3), np.where(rng.random(shape) < 0.5, 0.0, -0.0)):
            for maximum in (False, True):
                got, want = morph._by_rows(x, radius, maximum), _whole_image_passes(x, radius, maximum)
                assert np.array_equal(got, want) and np.array_equal(np.signbit(got), np.signbit(want))


def test_disk_footprint_is_matlab_strel_disk_r_0() -> None:
    """``strel('disk', r, 0)``: the true Euclidean disk x² + y² ≤ r² (now from scikit-image)."""
    from fusionbench.methods._matlab import disk_footprint

    for r in range(0, 25):
        y, x = np.mgrid[-r:r + 1, -r:r + 1]
        fp = disk_footprint(r)
        assert fp.dtype == bool and np.array_equal(fp, x * x + y * y <= r * r)
