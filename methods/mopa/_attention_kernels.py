"""Compiled passes of ``mopa``'s attention module (§1.3.3) for inference (float32, channels-last maps).

In torch the attention's steps around its two convolutions are separate passes over the 15-channel map:
the mean and the maximum over pixels (channel branch), the gating product ``x·wc``, the mean and maximum
over channels (spatial branch), the product with the spatial weights and the 30-channel concatenation
that the combining conv reads (≈ 8 ms of a 256² forward on one thread, session 9).  Here:

* :func:`pixel_sum_max`: the sums (float64) and maxima over the pixels of every channel, one pass;
* :func:`gate`: ``x·wc`` written into the first half of the combining conv's input, and the spatial
  branch's input (mean and maximum over channels of ``x·wc`` in cascade mode, of ``x`` in parallel mode);
* :func:`gate_spatial`: the second half, ``(x·wc)·s`` (cascade) or ``x·s`` (parallel).

The same products as the graph; the means' sums in another order (float32 round-off).  No ``fastmath``,
no FMA, every sum in the written order, so the result does not depend on the instruction set (tested).
Compiled on first use (imported lazily by :mod:`methods.mopa.inference`), cached on disk; they release the GIL.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_F = np.float32


@njit(cache=True, nogil=True, error_model="numpy")
def pixel_sum_max(x, sums, peak):  # pragma: no cover - compiled
    """``sums[c]`` (float64) = Σ over pixels of ``x[..., c]``, ``peak[c]`` (float32) = their maximum, for ``x``
    (H, W, C) float32 C-contiguous.  Per (column, channel) down the rows, then over the columns in order."""
    h, w, c = x.shape
    n = w * c
    acc = np.zeros(n, np.float64)
    mx = x[0].reshape(n).copy()
    for y in range(h):
        row = x[y].reshape(n)
        for p in range(n):
            v = row[p]
            acc[p] += v
            mx[p] = v if v > mx[p] else mx[p]
    for ch in range(c):
        sums[ch] = acc[ch]
        peak[ch] = mx[ch]
    for xx in range(1, w):
        for ch in range(c):
            sums[ch] += acc[xx * c + ch]
            v = mx[xx * c + ch]
            peak[ch] = v if v > peak[ch] else peak[ch]


@njit(cache=True, nogil=True, error_model="numpy")
def gate(x, wc, cascade, out, spatial):  # pragma: no cover - compiled
    """``out[..., :C] = x·wc`` and ``spatial[..., 0]``, ``spatial[..., 1]`` = mean and maximum over channels
    of ``x·wc`` (``cascade``) or of ``x``; ``x`` (H, W, C), ``out`` (H, W, 2C), ``spatial`` (H, W, 2)."""
    h, w, c = x.shape
    inv = _F(1.0) / _F(c)
    for y in range(h):
        for xx in range(w):
            src = x[y, xx]
            dst = out[y, xx]
            s = _F(0.0)
            m = _F(0.0)
            for ch in range(c):
                v = src[ch] * wc[ch]
                dst[ch] = v
                u = v if cascade else src[ch]
                s += u
                m = u if ch == 0 or u > m else m
            spatial[y, xx, 0] = s * inv
            spatial[y, xx, 1] = m


@njit(cache=True, nogil=True, error_model="numpy")
def gate_spatial(x, s, cascade, out):  # pragma: no cover - compiled
    """``out[..., C:] = out[..., :C]·s`` (``cascade``) or ``x·s``; ``s`` (H, W) the spatial weights."""
    h, w, c = x.shape
    for y in range(h):
        for xx in range(w):
            dst = out[y, xx]
            g = s[y, xx]
            if cascade:
                for ch in range(c):
                    dst[c + ch] = dst[ch] * g
            else:
                src = x[y, xx]
                for ch in range(c):
                    dst[c + ch] = src[ch] * g


# ------------------------------------------------------------------ planar maps (session 11)
# Planar maps are passed whole (C-contiguous buffers, so that the loops along a row vectorise) with the offset
# (``oy``, ``ox``) of the h × w image inside them: pixel (y, x) of channel c is ``buf[c, oy + y, ox + x]``.


@njit(cache=True, nogil=True, error_model="numpy")
def pixel_sum_max_planar(x, oy, ox, h, w, sums, peak):  # pragma: no cover - compiled
    """:func:`pixel_sum_max` for a planar map: per (channel, column) down the rows, then over the columns in
    order (the order of the channels-last kernel: the same maxima, float64 sums equal to round-off)."""
    c = x.shape[0]
    acc = np.zeros(w, np.float64)
    mx = np.empty(w, np.float32)
    for ch in range(c):
        first = x[ch, oy][ox:ox + w]
        for p in range(w):
            acc[p] = 0.0
            mx[p] = first[p]
        for y in range(h):
            row = x[ch, oy + y][ox:ox + w]
            for p in range(w):
                v = row[p]
                acc[p] += v
                mx[p] = v if v > mx[p] else mx[p]
        s = acc[0]
        m = mx[0]
        for p in range(1, w):
            s += acc[p]
            m = mx[p] if mx[p] > m else m
        sums[ch] = s
        peak[ch] = m


@njit(cache=True, nogil=True, error_model="numpy")
def gate_planar(x, xo, wc, cascade, out, oo, spatial, so, h, w):  # pragma: no cover - compiled
    """:func:`gate` on planar maps: ``out[:C] = x·wc`` and ``spatial[0]``, ``spatial[1]`` = mean and maximum over
    channels of ``x·wc`` (``cascade``) or of ``x``; ``xo``, ``oo``, ``so``: the (row, column) offsets of the
    h × w image in ``x``, ``out``, ``spatial``.  The channel sums in channel order from 0, as :func:`gate`:
    the same bits."""
    c = x.shape[0]
    inv = _F(1.0) / _F(c)
    for y in range(h):
        s = spatial[0, so[0] + y][so[1]:so[1] + w]
        m = spatial[1, so[0] + y][so[1]:so[1] + w]
        for ch in range(c):
            src = x[ch, xo[0] + y][xo[1]:xo[1] + w]
            dst = out[ch, oo[0] + y][oo[1]:oo[1] + w]
            g = wc[ch]
            if ch == 0:
                for p in range(w):
                    v = src[p] * g
                    dst[p] = v
                    u = v if cascade else src[p]
                    s[p] = _F(0.0) + u
                    m[p] = u
            else:
                for p in range(w):
                    v = src[p] * g
                    dst[p] = v
                    u = v if cascade else src[p]
                    s[p] = s[p] + u
                    m[p] = u if u > m[p] else m[p]
        for p in range(w):
            s[p] = s[p] * inv


@njit(cache=True, nogil=True, error_model="numpy")
def gate_spatial_planar(x, xo, g, out, oo, cascade, h, w):  # pragma: no cover - compiled
    """:func:`gate_spatial` on planar maps: ``out[C + c] = out[c]·g`` (``cascade``) or ``x[c]·g``; ``g`` (h, w)
    C-contiguous; offsets as :func:`gate_planar`."""
    c = x.shape[0]
    for ch in range(c):
        for y in range(h):
            gy = g[y]
            dst = out[c + ch, oo[0] + y][oo[1]:oo[1] + w]
            if cascade:
                src = out[ch, oo[0] + y][oo[1]:oo[1] + w]
            else:
                src = x[ch, xo[0] + y][xo[1]:xo[1] + w]
            for p in range(w):
                dst[p] = src[p] * gy[p]
