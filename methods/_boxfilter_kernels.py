"""Compiled kernel of :mod:`._boxfilter` (numba, cached on disk; imported on first use).

Kept at module level and apart from the numpy code so that numba's disk cache finds it again in
every new process (``tests/methods/test_numba_cache.py``).
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def box_nearest(x, size, out):  # pragma: no cover - compiled
    """``ndimage.uniform_filter(x, size, mode='nearest')`` of a 2-D float64 ``x`` into ``out``, bit for bit.

    SciPy's two passes (module docstring of :mod:`._boxfilter`), done row by row: the axis-0
    running sum (one per column, all columns at once) yields row ``i`` of the intermediate, and
    the axis-1 running sum runs on that row at once, while it is in the first-level cache,
    instead of in a second sweep over the whole image (which at 1024² reads it back from memory).
    Each value goes through the same operations in the same order as in SciPy.
    """
    rows, cols = x.shape
    half = size // 2
    fs = float(size)
    acc = np.zeros(cols)
    line = np.empty(cols + size - 1)
    for i in range(rows):
        o = out[i]
        if i == 0:
            # axis 0: the first window of every column (rows clipped to the image: 'nearest')
            for u in range(size):
                xr = x[min(max(u - half, 0), rows - 1)]
                for j in range(cols):
                    acc[j] += xr[j]
        else:
            hi = x[min(i + size - 1 - half, rows - 1)]
            lo = x[max(i - 1 - half, 0)]
            for j in range(cols):
                acc[j] += hi[j] - lo[j]
        # axis 1 on this row of the intermediate, from a padded copy of it
        for j in range(cols):
            line[half + j] = acc[j] / fs
        for d in range(half):
            line[d] = line[half]
            line[half + cols + d] = line[half + cols - 1]
        tmp = 0.0
        for j in range(size):
            tmp += line[j]
        o[0] = tmp / fs
        for j in range(1, cols):
            tmp += line[j + size - 1] - line[j - 1]
            o[j] = tmp / fs
    return out
