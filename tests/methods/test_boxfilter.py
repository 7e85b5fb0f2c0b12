"""methods/_boxfilter.uniform_nearest is scipy's uniform_filter(mode='nearest'), bit for bit."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from fusionbench.methods._boxfilter import uniform_nearest


@pytest.mark.parametrize("size", [1, 3, 5, 7, 9, 11, 13, 21])
def test_uniform_nearest_is_scipys(size):
    rng = np.random.default_rng(size)
    for shape in [(1, 1), (2, 3), (5, 4), (7, 30), (33, 17), (64, 64), (100, 257)]:
        for scale in (1.0, 255.0, 1e-3):
            x = rng.random(shape) * scale
            assert np.array_equal(uniform_nearest(x, size), ndimage.uniform_filter(x, size=size, mode="nearest"))
    x = np.round(rng.random((40, 50)) * 255)  # integer-valued, as LEGFF's uint8 backgrounds
    assert np.array_equal(uniform_nearest(x, size), ndimage.uniform_filter(x, size=size, mode="nearest"))


def test_uniform_nearest_rejects_what_it_does_not_do():
    with pytest.raises(ValueError, match="odd"):
        uniform_nearest(np.zeros((4, 4)), 4)
    with pytest.raises(ValueError, match="2-D"):
        uniform_nearest(np.zeros((2, 4, 4)), 3)
