"""Small vectorised filtering helpers shared by the windowed metrics.

All filters act on the last two axes, so a stack ``(k, H, W)`` of images is
filtered in one call.  ``valid`` means MATLAB ``filter2(w, x, 'valid')``.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import _libm


@lru_cache(maxsize=None)
def gaussian_1d(size: int, sigma: float) -> np.ndarray:
    """The 1-D factor of MATLAB ``fspecial('gaussian', size, sigma)`` (normalised).

    ``exp`` by the C library (``_libm``): the taps are the same on every CPU.
    """
    r = (size - 1) / 2.0
    x = np.arange(size, dtype=np.float64) - r
    g = _libm.exp(-(x * x) / (2.0 * sigma * sigma))
    g /= g.sum()
    g.setflags(write=False)
    return g


def sep_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable correlation with the 1-D kernel ``g`` on both axes, 'valid' part only.

    Reference implementation kept for the tests (the compiled ``_ssim_fast.sep_filter(valid=True)`` equals it).
    """
    from scipy import ndimage
    n = len(g)
    r = n // 2
    y = ndimage.correlate1d(x, g, axis=-1, mode="constant")
    y = ndimage.correlate1d(y, g, axis=-2, mode="constant")
    h, w = x.shape[-2:]
    return y[..., r:h - (n - 1 - r), r:w - (n - 1 - r)]


def sep_valid_decimate(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``sep_valid(x, g)[..., ::2, ::2]`` without computing the discarded samples of the second pass.

    Reference implementation kept for the tests (VIF's decimated scales, the compiled ``_ssim_fast.sep_filter``
    then ``[..., ::2, ::2]``, equal it).
    """
    from scipy import ndimage
    n = len(g)
    r = n // 2
    h, w = x.shape[-2:]
    y = ndimage.correlate1d(x, g, axis=-1, mode="constant")[..., r:w - (n - 1 - r):2]
    y = ndimage.correlate1d(y, g, axis=-2, mode="constant")
    return y[..., r:h - (n - 1 - r):2, :]


def box_valid(x: np.ndarray, size: int) -> np.ndarray:
    """Mean over size×size windows ('valid'), by cumulative sums (exact up to rounding)."""
    c = np.cumsum(np.cumsum(x, axis=-1), axis=-2)
    c = np.pad(c, [(0, 0)] * (x.ndim - 2) + [(1, 0), (1, 0)])
    s = c[..., size:, size:] - c[..., :-size, size:] - c[..., size:, :-size] + c[..., :-size, :-size]
    return s / float(size * size)


def halve(x: np.ndarray) -> np.ndarray:
    """MATLAB ``imfilter(x, ones(2)/4, 'symmetric', 'same')`` followed by ``(1:2:end, 1:2:end)``."""
    h, w = x.shape[-2:]
    pad = [(0, 0)] * (x.ndim - 2) + [(0, h % 2), (0, w % 2)]
    y = np.pad(x, pad, mode="symmetric")
    return (y[..., 0::2, 0::2] + y[..., 1::2, 0::2] + y[..., 0::2, 1::2] + y[..., 1::2, 1::2]) / 4.0
