"""``scipy.ndimage.uniform_filter(x, size, mode="nearest")`` on 2-D float64 images, bit for bit, compiled.

SciPy computes a box mean as one running sum per line and axis (axis 0, then
axis 1): the first window summed element by element, then for every next
position ``tmp += line[j + size − 1] − line[j − 1]`` and ``out[j] = tmp / size``,
on a line padded by ``size // 2`` on each side (mode ``nearest``: the edge
value repeated).  This module does the same operations in the same order, so
the values are identical, but the axis-0 pass runs all columns at once (one
running sum per column, contiguous rows, vectorised by LLVM), each row of its
result gets its axis-1 pass at once (one sweep over the image, not two: the
second sweep read a 1024² image back from memory), and neither pass copies
lines into scipy's per-line buffers (kernel: :mod:`._boxfilter_kernels`).  LEGFF's guided filters spend most
of their time here (``methods/legff.py``).  ``tests/methods/test_boxfilter.py``
pins the equality on random images of many shapes and window sizes, including
images smaller than the window.
"""
from __future__ import annotations

import numpy as np


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
        from ._boxfilter_kernels import box_nearest

        box_nearest(x, int(size), out)
    return out
