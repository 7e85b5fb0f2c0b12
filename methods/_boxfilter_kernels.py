"""Compiled kernel of :mod:`._boxfilter` (numba, cached on disk; imported on first use).

Kept at module level and apart from the numpy code so that numba's disk cache finds it again in
every new process (``tests/methods/test_numba_cache.py``).
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _row_mean(acc, size, line, o):  # pragma: no cover - compiled
    """SciPy's axis-1 running mean (mode 'nearest') of one row ``acc`` of the axis-0 running sums, into ``o``.

    ``acc / size`` copied into ``line`` (length ``cols + size − 1``) padded with its edge values, then the
    first window summed element by element and ``tmp += line[j + size − 1] − line[j − 1]``,
    ``o[j] = tmp / size``: SciPy's operations in SciPy's order.
    """
    cols = acc.shape[0]
    half = size // 2
    fs = float(size)
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
    acc = np.zeros(cols)
    line = np.empty(cols + size - 1)
    for i in range(rows):
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
        _row_mean(acc, size, line, out[i])  # axis 1 on this row of the intermediate
    return out


@njit(cache=True, nogil=True)
def guided_nearest(image, guide, size, eps, out):  # pragma: no cover - compiled
    """He et al.'s guided filter with ``box_nearest`` means, row by row, into ``out`` (``size`` odd ≥ 3).

    The operations of ``legff.guided_filter`` on whole images, value for value: the four means of
    G, I, G·G and G·I (axis-0 running sums of the products made row by row, the same products), then
    ``a = (mean(G·I) − mean(G)·mean(I)) / ((mean(G·G) − mean(G)·mean(G)) + eps)`` and
    ``b = mean(I) − a·mean(G)`` a row at a time, kept in a ring of ``size + 1`` rows, and their
    means a row at a time, ``out = mean(a)·G + mean(b)``.  Everything a row needs stays in cache; the
    whole-image version made ten full-size temporaries, each a fresh allocation at 1024².
    """
    rows, cols = image.shape
    half = size // 2
    ring_n = size + 1
    acc_g = np.zeros(cols)
    acc_i = np.zeros(cols)
    acc_gg = np.zeros(cols)
    acc_gi = np.zeros(cols)
    acc_a = np.zeros(cols)
    acc_b = np.zeros(cols)
    line = np.empty(cols + size - 1)
    mg = np.empty(cols)
    mi = np.empty(cols)
    mgg = np.empty(cols)
    mgi = np.empty(cols)
    ring_a = np.empty((ring_n, cols))
    ring_b = np.empty((ring_n, cols))
    made = 0  # rows of a and b made so far
    for i in range(rows):
        # make the rows of a and b up to i + half (clipped): the first stage, one row at a time
        while made <= min(rows - 1, i + half):
            k = made
            if k == 0:
                for u in range(size):
                    gr = guide[min(max(u - half, 0), rows - 1)]
                    ir = image[min(max(u - half, 0), rows - 1)]
                    for j in range(cols):
                        g, v = gr[j], ir[j]
                        acc_g[j] += g
                        acc_i[j] += v
                        acc_gg[j] += g * g
                        acc_gi[j] += g * v
            else:
                hi = min(k + size - 1 - half, rows - 1)
                lo = max(k - 1 - half, 0)
                ghi, glo, ihi, ilo = guide[hi], guide[lo], image[hi], image[lo]
                for j in range(cols):
                    acc_g[j] += ghi[j] - glo[j]
                    acc_i[j] += ihi[j] - ilo[j]
                    acc_gg[j] += ghi[j] * ghi[j] - glo[j] * glo[j]
                    acc_gi[j] += ghi[j] * ihi[j] - glo[j] * ilo[j]
            _row_mean(acc_g, size, line, mg)
            _row_mean(acc_i, size, line, mi)
            _row_mean(acc_gg, size, line, mgg)
            _row_mean(acc_gi, size, line, mgi)
            ar, br = ring_a[k % ring_n], ring_b[k % ring_n]
            for j in range(cols):
                var_g = mgg[j] - mg[j] * mg[j]
                cov = mgi[j] - mg[j] * mi[j]
                a = cov / (var_g + eps)
                ar[j] = a
                br[j] = mi[j] - a * mg[j]
            made += 1
        # second stage: the means of a and b for row i, then the output row
        if i == 0:
            for u in range(size):
                r = min(max(u - half, 0), rows - 1)
                ar, br = ring_a[r % ring_n], ring_b[r % ring_n]
                for j in range(cols):
                    acc_a[j] += ar[j]
                    acc_b[j] += br[j]
        else:
            hi = min(i + size - 1 - half, rows - 1) % ring_n
            lo = max(i - 1 - half, 0) % ring_n
            ahi, alo, bhi, blo = ring_a[hi], ring_a[lo], ring_b[hi], ring_b[lo]
            for j in range(cols):
                acc_a[j] += ahi[j] - alo[j]
                acc_b[j] += bhi[j] - blo[j]
        _row_mean(acc_a, size, line, mg)
        _row_mean(acc_b, size, line, mi)
        gr, o = guide[i], out[i]
        for j in range(cols):
            o[j] = mg[j] * gr[j] + mi[j]
    return out
