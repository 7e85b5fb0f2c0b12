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
        erosion = morph._by_rows(x, radius, ndimage.minimum_filter1d, np.minimum, "nearest")
        dilation = morph._by_rows(x, radius, ndimage.maximum_filter1d, np.maximum, "nearest")
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
