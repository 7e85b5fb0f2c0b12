"""Compiled disk erosion/dilation of :mod:`methods._morphology` in one sweep over the rows (numba, cached on disk).

At module level (imported on first use) so that numba's disk cache finds the kernels again in every new
process (``tests/methods/test_numba_cache.py``).
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _work_length(cols, size):  # pragma: no cover - compiled
    """Length of :func:`running_row`'s work rows: the padded row (cols + size − 1) rounded up to whole blocks."""
    return (cols + size - 1 + size - 1) // size * size


@njit(cache=True, nogil=True, inline="always")
def running_row(xr, size, maximum, line, g, h, o):  # pragma: no cover - compiled
    """Running extreme of width ``size`` along one row ``xr`` ('nearest' borders) into ``o``.

    Van Herk / Gil-Werman: three comparisons a pixel whatever ``size`` (odd ≥ 3); ``line``, ``g`` and ``h``
    are work rows of at least ``⌈(cols + size − 1) / size⌉ · size`` values (:func:`_work_length`).
    """
    cols = xr.shape[0]
    half = size // 2
    m = _work_length(cols, size)
    blocks = m // size
    for j in range(m):  # the row padded with its edge values ('nearest'); past cols + size − 1: edge too
        line[j] = xr[min(max(j - half, 0), cols - 1)]
    for b in range(blocks):
        s0 = b * size
        g[s0] = line[s0]
        for j in range(s0 + 1, s0 + size):
            v = line[j]
            g[j] = (v if v > g[j - 1] else g[j - 1]) if maximum else (v if v < g[j - 1] else g[j - 1])
        e = s0 + size - 1
        h[e] = line[e]
        for j in range(e - 1, s0 - 1, -1):
            v = line[j]
            h[j] = (v if v > h[j + 1] else h[j + 1]) if maximum else (v if v < h[j + 1] else h[j + 1])
    for j in range(cols):  # window line[j .. j + size − 1] = h[j] ∪ g[j + size − 1]
        a, c = h[j], g[j + size - 1]
        o[j] = (a if a > c else c) if maximum else (a if a < c else c)


@njit(cache=True, nogil=True)
def running_rows(x, size, maximum, out):  # pragma: no cover - compiled
    """:func:`running_row` on every row of ``x`` into ``out`` (``_morphology.running_extreme``)."""
    m = _work_length(x.shape[1], size)
    line = np.empty(m, x.dtype)
    g = np.empty(m, x.dtype)
    h = np.empty(m, x.dtype)
    for i in range(x.shape[0]):
        running_row(x[i], size, maximum, line, g, h, out[i])
    return out


@njit(cache=True, nogil=True)
def disk_rows(x, widths, slot_of, maximum, out):  # pragma: no cover - compiled
    """Max (``maximum``) or min of ``x`` over the disk with row half-widths ``widths`` (dy = −r..r), 'nearest'.

    ``slot_of[dy + r]`` is the index of ``2·widths[dy + r] + 1`` among the distinct widths.  Output row
    ``y`` is the running extreme of width ``w(0)`` of row ``y``, then combined with that of width
    ``w(dy)`` of row ``clip(y + dy)`` for dy = −r..−1, 1..r in that order (``np.maximum`` / ``np.minimum``
    (out, src): the second operand on ties), as the former whole-image passes (the tests' reference); the
    running extremes of the rows in reach are kept in a ring of 2r + 1 rows per width, so everything
    stays in cache instead of r + 1 full-size maps and 2r passes over the output.
    """
    rows, cols = x.shape
    nd = widths.shape[0]
    r = nd // 2
    nw = 0
    for k in range(nd):
        nw = max(nw, slot_of[k] + 1)
    sizes = np.zeros(nw, np.int64)
    for k in range(nd):
        sizes[slot_of[k]] = 2 * widths[k] + 1
    big = 1
    for s in range(nw):
        big = max(big, sizes[s])
    m = ((cols + big - 1 + big - 1) // big + 1) * big
    line = np.empty(m, x.dtype)
    g = np.empty(m, x.dtype)
    h = np.empty(m, x.dtype)
    ring = np.empty((nw, nd, cols), x.dtype)
    done = 0  # input rows whose running extremes are in the ring
    for y in range(rows):
        last = min(rows - 1, y + r)
        while done <= last:
            xr = x[done]
            slot = done % nd
            for s in range(nw):
                if sizes[s] == 1:
                    ring[s, slot, :] = xr
                else:
                    running_row(xr, sizes[s], maximum, line, g, h, ring[s, slot])
            done += 1
        o = out[y]
        o[:] = ring[slot_of[r], y % nd]
        for k in range(nd):
            dy = k - r
            if dy == 0:
                continue
            src = ring[slot_of[k], min(max(y + dy, 0), rows - 1) % nd]
            if maximum:
                for j in range(cols):
                    a, b = o[j], src[j]
                    o[j] = a if a > b else b
            else:
                for j in range(cols):
                    a, b = o[j], src[j]
                    o[j] = a if a < b else b
    return out
