"""Compiled maximum of the local standard deviation, for the contrast module's inference (float32).

The contrast enhancement module (§1.3.1) needs, per channel, only the **maximum over pixels** of the local
standard deviation (Eq. 7: the (2r+1)² window's population standard deviation, reflect-padded borders).
In torch that is a padded copy, window sums of the map and of its square, and the whole std map before
its maximum (14 ms of a 256² ``mopa`` forward on one thread, session 8); :func:`local_std_max` computes
the maxima in one pass over the rows without storing any map: for each padded input row the horizontal
(2r+1)-tap sums of x and x², kept in a ring of 2r+1 rows, their vertical sums for each output row, then
``σ = √(max(E[x²] − E[x]², 0) + 10⁻¹²)`` (the same formula, window means as ``sum·(1/(2r+1)²)``) and a
running maximum.  Float32 round-off only against the torch formulation (the sums run horizontal first);
no ``fastmath``, no FMA, every sum in the written order, loops over the ``W·C`` values of a row
innermost (vectorised across pixels and channels), so the result does not depend on the instruction set
(tested in ``tests/methods/test_mopa.py``).

:func:`local_std_max_rows` does the same for the output rows of one band of rows (the banded inference,
:mod:`methods.mopa._banded`), its window rows read from the band's halo and reflected only at the image's
top and bottom; :func:`local_std_max` is its whole-image case.  Channels-last input ``(H, W, C)``, as the
inference path holds its maps.  Compiled on first use (imported
lazily by :mod:`methods.mopa.inference`), cached on disk; it releases the GIL.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_F = np.float32
_ZERO, _TINY = _F(0.0), _F(1e-12)


@njit(cache=True, nogil=True, error_model="numpy")
def _reflect(i, n):  # pragma: no cover - compiled
    """Index ``i`` of a reflect-padded axis of length ``n`` (``-1 → 1``, ``n → n − 2``), |overhang| < n."""
    if i < 0:
        return -i
    if i >= n:
        return 2 * (n - 1) - i
    return i


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _horizontal_sums(src, stride, k, hs_in, hq_in):  # pragma: no cover - compiled
    """``hs_in[p]``, ``hq_in[p]`` = the k-tap sums of ``src[p + d·stride]`` and of its square, d = 0 … k − 1 in
    order, for the interior values ``p < len(hs_in)`` of a row (taps that need no reflection)."""
    m = hs_in.shape[0]
    tap = src[0:m]
    for p in range(m):
        a = tap[p]
        hs_in[p] = a
        hq_in[p] = a * a
    for d in range(1, k):
        tap = src[d * stride:d * stride + m]
        for p in range(m):
            a = tap[p]
            hs_in[p] = hs_in[p] + a
            hq_in[p] = hq_in[p] + a * a


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _vertical_std_max(ring, ring_sq, first, inv, s, q, best):  # pragma: no cover - compiled
    """One output row: the vertical sums of the k ring rows from slot ``first`` on (in order), the window's
    population standard deviation from them and the running maximum ``best`` updated in place."""
    k, n = ring.shape
    row = ring[first]
    row_sq = ring_sq[first]
    for p in range(n):
        s[p] = row[p]
        q[p] = row_sq[p]
    for d in range(1, k):
        row = ring[(first + d) % k]
        row_sq = ring_sq[(first + d) % k]
        for p in range(n):
            s[p] = s[p] + row[p]
            q[p] = q[p] + row_sq[p]
    for p in range(n):
        mean = s[p] * inv
        var = q[p] * inv - mean * mean
        var = var if var > _ZERO else _ZERO
        sd = np.sqrt(var + _TINY)
        best[p] = sd if sd > best[p] else best[p]


@njit(cache=True, nogil=True, error_model="numpy")
def local_std_max_rows(x, r, g0, h, y0, y1, best):  # pragma: no cover - compiled
    """Running maximum ``best[xx·C + c]`` (updated in place, per column and channel) of the local standard
    deviation over output rows ``[y0, y1)`` of an image of ``h`` rows, of which ``x`` (Hb, W, C float32,
    C-contiguous) holds rows ``g0 … g0 + Hb − 1``: a band of rows whose halo covers every row a window reads
    (``y − r … y + r``, reflected at the image's top and bottom), window (2r+1)², reflect padding;
    ``r < h`` and ``r < W``.  The whole image is ``g0 = 0``, ``[y0, y1) = [0, h)`` (:func:`local_std_max`)."""
    w, c = x.shape[1], x.shape[2]
    k = 2 * r + 1
    n = w * c
    inv = _F(1.0) / _F(k * k)
    ring = np.empty((k, n), np.float32)     # horizontal window sums of x, one row per padded input row
    ring_sq = np.empty((k, n), np.float32)  # the same for x²
    s = np.empty(n, np.float32)
    q = np.empty(n, np.float32)
    for yy in range(y0 - r, y1 + r):
        src = x[_reflect(yy, h) - g0].reshape(n)
        slot = (yy + r) % k
        hs = ring[slot]
        hq = ring_sq[slot]
        # interior columns: the taps are whole rows shifted by c values
        m = (w - 2 * r) * c  # values of the interior columns; slices, so that every loop starts at 0
        hs_in = hs[r * c:r * c + m]
        hq_in = hq[r * c:r * c + m]
        _horizontal_sums(src, c, k, hs_in, hq_in)
        # border columns: reflected taps
        for xx in range(w):
            if r <= xx < w - r:
                continue
            for ch in range(c):
                a = src[_reflect(xx - r, w) * c + ch]
                t = a
                u = a * a
                for d in range(1, k):
                    a = src[_reflect(xx + d - r, w) * c + ch]
                    t = t + a
                    u = u + a * a
                hs[xx * c + ch] = t
                hq[xx * c + ch] = u
        if yy < y0 + r:
            continue
        # output row y = yy − r: vertical sums over the padded rows y − r … y + r, in order
        _vertical_std_max(ring, ring_sq, (yy - r) % k, inv, s, q, best)  # slot (yy − r) % k: padded row y − r


@njit(cache=True, nogil=True, error_model="numpy")
def column_max(best, c, out):  # pragma: no cover - compiled
    """``out[ch]`` = max over columns of ``best[xx·c + ch]`` (the per-column maxima of :func:`local_std_max_rows`)."""
    w = best.shape[0] // c
    for ch in range(c):
        out[ch] = best[ch]
    for xx in range(1, w):
        for ch in range(c):
            v = best[xx * c + ch]
            out[ch] = v if v > out[ch] else out[ch]


@njit(cache=True, nogil=True, error_model="numpy")
def local_std_max(x, r, out):  # pragma: no cover - compiled
    """``out[c]`` = max over pixels of the local standard deviation of channel ``c`` of ``x`` (H, W, C float32,
    C-contiguous), window (2r+1)², reflect padding; ``r < H`` and ``r < W``."""
    h, w, c = x.shape
    best = np.zeros(w * c, np.float32)  # running maximum over the rows, per (column, channel)
    local_std_max_rows(x, r, 0, h, 0, h, best)
    column_max(best, c, out)


@njit(cache=True, nogil=True, error_model="numpy")
def local_std_max_rows_planar(x, oy, ox, w, r, g0, h, y0, y1, best):  # pragma: no cover - compiled
    """:func:`local_std_max_rows` for a planar map: ``x`` a C-contiguous (C, ·, ·) float32 buffer whose
    ``x[c, oy + i, ox:ox + w]`` is image row ``g0 + i`` of channel c; running maxima ``best[c, xx]`` per
    (channel, column).  The same sums in the same order as the channels-last kernel (horizontal taps in
    order, then the window's rows in order), so the same bits; vectorised along the columns (session 11)."""
    c = x.shape[0]
    k = 2 * r + 1
    inv = _F(1.0) / _F(k * k)
    ring = np.empty((k, w), np.float32)
    ring_sq = np.empty((k, w), np.float32)
    s = np.empty(w, np.float32)
    q = np.empty(w, np.float32)
    m = w - 2 * r
    for ch in range(c):
        out = best[ch]
        for yy in range(y0 - r, y1 + r):
            src = x[ch, oy + _reflect(yy, h) - g0][ox:ox + w]
            slot = (yy + r) % k
            hs = ring[slot]
            hq = ring_sq[slot]
            hs_in = hs[r:r + m]
            hq_in = hq[r:r + m]
            _horizontal_sums(src, 1, k, hs_in, hq_in)
            for xx in range(w):
                if r <= xx < w - r:
                    continue
                a = src[_reflect(xx - r, w)]
                t = a
                u = a * a
                for d in range(1, k):
                    a = src[_reflect(xx + d - r, w)]
                    t = t + a
                    u = u + a * a
                hs[xx] = t
                hq[xx] = u
            if yy < y0 + r:
                continue
            _vertical_std_max(ring, ring_sq, (yy - r) % k, inv, s, q, out)
