"""``scipy.ndimage.uniform_filter(x, size, mode="nearest")`` on 2-D float64 images, bit for bit, compiled.

SciPy computes a box mean as one running sum per line and axis (axis 0, then
axis 1): the first window summed element by element, then for every next
position ``tmp += line[j + size − 1] − line[j − 1]`` and ``out[j] = tmp / size``,
on a line padded by ``size // 2`` on each side (mode ``nearest``: the edge
value repeated).  This module does the same operations in the same order, so
the values are identical, but the axis-0 pass runs all columns at once (one
running sum per column, contiguous rows, vectorised by LLVM) and neither pass
copies lines into scipy's per-line buffers.  LEGFF's guided filters spend most
of their time here (``methods/legff.py``).  ``tests/methods/test_boxfilter.py``
pins the equality on random images of many shapes and window sizes, including
images smaller than the window.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=None)
def _kernel():
    """The compiled two-pass box mean (numba, compiled on first use, cached on disk)."""
    from numba import njit

    @njit(cache=True, nogil=True)
    def box(x, size, out):  # pragma: no cover - compiled
        rows, cols = x.shape
        half = size // 2
        fs = float(size)
        acc = np.zeros(cols)
        # axis 0: a running sum down every column at once (rows clipped to the image: 'nearest')
        for u in range(size):
            src = min(max(u - half, 0), rows - 1)
            xr = x[src]
            for j in range(cols):
                acc[j] += xr[j]
        o = out[0]
        for j in range(cols):
            o[j] = acc[j] / fs
        for i in range(1, rows):
            hi = x[min(i + size - 1 - half, rows - 1)]
            lo = x[max(i - 1 - half, 0)]
            o = out[i]
            for j in range(cols):
                acc[j] += hi[j] - lo[j]
                o[j] = acc[j] / fs
        # axis 1: one running sum per row of the intermediate, on a padded copy of the row
        line = np.empty(cols + size - 1)
        for i in range(rows):
            row = out[i]
            for j in range(cols):
                line[half + j] = row[j]
            for d in range(half):
                line[d] = row[0]
                line[half + cols + d] = row[cols - 1]
            tmp = 0.0
            for j in range(size):
                tmp += line[j]
            row[0] = tmp / fs
            for j in range(1, cols):
                tmp += line[j + size - 1] - line[j - 1]
                row[j] = tmp / fs
        return out

    return box


def uniform_nearest(x: np.ndarray, size: int) -> np.ndarray:
    """``ndimage.uniform_filter(x, size=size, mode="nearest")`` for a 2-D image and an odd ``size``, bit for bit."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"uniform_nearest takes a 2-D image, not shape {x.shape}")
    if size < 1 or size % 2 == 0:
        raise ValueError(f"uniform_nearest needs an odd window size >= 1, not {size}")
    if size == 1:  # scipy returns the input unchanged (no running sum)
        return x.copy()
    out = np.empty_like(x)
    if x.size:
        _kernel()(x, int(size), out)
    return out
