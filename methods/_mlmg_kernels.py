"""The compiled MLMG kernels (numba, cached on disk): the wavefront kernel of :mod:`methods._mlmg` (described
there) and the scale-by-scale kernel ``scale_plane`` of ``mlepf._mlmg_plane_kernel`` (the fallback for other
increments and the tests' reference), sharing the 5- and 9-value max/min helpers.

At module level, imported on first use by :func:`methods._mlmg.wavefront_kernel` and
``mlepf._mlmg_plane_kernel``, so that numba's disk cache finds them again in a new process (a kernel built
inside a factory, calling other compiled functions of that factory, missed the cache in every process; see
:mod:`methods._pcnn_kernels`; ``tests/methods/test_numba_cache.py``).
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def max5(a, b, c, d, e, dst, n, take_max):  # pragma: no cover
    # dst[j] = max/min(a[j], b[j], c[j], d[j], e[j]), in that order (slices from 0: LLVM vectorises)
    if take_max:
        for j in range(n):
            m = a[j]
            q = b[j]
            m = q if q > m else m
            q = c[j]
            m = q if q > m else m
            q = d[j]
            m = q if q > m else m
            q = e[j]
            dst[j] = q if q > m else m
    else:
        for j in range(n):
            m = a[j]
            q = b[j]
            m = q if q < m else m
            q = c[j]
            m = q if q < m else m
            q = d[j]
            m = q if q < m else m
            q = e[j]
            dst[j] = q if q < m else m


@njit(cache=True, nogil=True, inline="always")
def max9(c, cm, cp, um, up, dm, dp, u2, d2, dst, n, take_max):  # pragma: no cover
    # the diamond's 9 values, in the session-6 pass's order
    if take_max:
        for j in range(n):
            m = c[j]
            q = cm[j]
            m = q if q > m else m
            q = cp[j]
            m = q if q > m else m
            q = um[j]
            m = q if q > m else m
            q = up[j]
            m = q if q > m else m
            q = dm[j]
            m = q if q > m else m
            q = dp[j]
            m = q if q > m else m
            q = u2[j]
            m = q if q > m else m
            q = d2[j]
            dst[j] = q if q > m else m
    else:
        for j in range(n):
            m = c[j]
            q = cm[j]
            m = q if q < m else m
            q = cp[j]
            m = q if q < m else m
            q = um[j]
            m = q if q < m else m
            q = up[j]
            m = q if q < m else m
            q = dm[j]
            m = q if q < m else m
            q = dp[j]
            m = q if q < m else m
            q = u2[j]
            m = q if q < m else m
            q = d2[j]
            dst[j] = q if q < m else m


@njit(cache=True, nogil=True, inline="always")
def stage_row(canvas, ring, y, top, x0, x1, square, v, o, take_max):  # pragma: no cover
    # one scale's pass on row y of `canvas` (in place); ring[k]: input row r (r % 3 == k) already overwritten
    um2 = ring[(y - 2) % 3] if y - 2 >= top else canvas[y - 2]
    um1 = ring[(y - 1) % 3] if y - 1 >= top else canvas[y - 1]
    c0, d1, d2 = canvas[y], canvas[y + 1], canvas[y + 2]
    n = x1 - x0
    if square:
        # max/min of 5 rows into v (columns x0 − 2 .. x1 + 1), then of 5 columns (the session-6 square5 order)
        lo, hi = x0 - 2, x1 + 2
        max5(um2[lo:hi], um1[lo:hi], c0[lo:hi], d1[lo:hi], d2[lo:hi], v, n + 4, take_max)
        max5(v[0:n], v[1:n + 1], v[2:n + 2], v[3:n + 3], v[4:n + 4], o, n, take_max)
    else:
        # the 9-point diamond (0,0), (0,±2), (−1,±1), (+1,±1), (−2,0), (+2,0) (the session-6 diamond order)
        max9(c0[x0:x1], c0[x0 - 2:x1 - 2], c0[x0 + 2:x1 + 2], um1[x0 - 1:x1 - 1], um1[x0 + 1:x1 + 1],
             d1[x0 - 1:x1 - 1], d1[x0 + 1:x1 + 1], um2[x0:x1], d2[x0:x1], o, n, take_max)
    ring[y % 3, x0 - 2:x1 + 2] = c0[x0 - 2:x1 + 2]
    c0[x0:x1] = o[:n]


@njit(cache=True, nogil=True)
def plane(img, steps, coefs, block, out):  # pragma: no cover
    h, w = img.shape
    ns = steps.shape[0]
    # as the scale-by-scale kernel: finite values reach steps[-1, 0] + 2·steps[-1, 1] beyond the image,
    # the passes read 2 further, one spare row/column
    pad = steps[-1, 0] + 2 * steps[-1, 1] + 3
    hh, ww = h + 2 * pad, w + 2 * pad
    square = np.empty(ns, np.bool_)
    ys0 = np.empty(ns, np.int64)
    ys1 = np.empty(ns, np.int64)
    xs0 = np.empty(ns, np.int64)
    xs1 = np.empty(ns, np.int64)
    pa, pd, r = 0, 0, 0
    for i in range(ns):
        a, d = steps[i, 0], steps[i, 1]
        if a - pa == 2 and d == pd:
            square[i] = True
        elif a == pa and d - pd == 1:
            square[i] = False
        else:
            return False
        r += 2  # both add 2 rows and 2 columns to the reach
        # rows/columns beyond the image a scale computes: where finite values can be (r) and where a
        # later scale reads them for the image's values (2 per scale left); outside, stale values
        # stay in the canvas but only the rows/columns outside the next scale's range read them
        rr = min(r, 2 * (ns - 1 - i))
        ys0[i], ys1[i] = max(2, pad - rr), min(hh - 2, pad + h + rr)
        xs0[i], xs1[i] = max(2, pad - rr), min(ww - 2, pad + w + rr)
        pa, pd = a, d
    dil = np.full((hh, ww), -np.inf)
    ero = np.full((hh, ww), np.inf)
    dil[pad:pad + h, pad:pad + w] = img
    ero[pad:pad + h, pad:pad + w] = img
    ring_d = np.empty((block, 3, ww))
    ring_e = np.empty((block, 3, ww))
    v = np.empty(ww)
    o = np.empty(ww)
    for s0 in range(0, ns, block):
        s1 = min(ns, s0 + block)
        last = 0
        for s in range(s0, s1):
            last = max(last, ys1[s] + 2 * (s - s0))
        for lead in range(ys0[s0], last):
            for s in range(s0, s1):
                y = lead - 2 * (s - s0)
                if y < ys0[s] or y >= ys1[s]:
                    continue
                k = s - s0
                stage_row(dil, ring_d[k], y, ys0[s], xs0[s], xs1[s], square[s], v, o, True)
                stage_row(ero, ring_e[k], y, ys0[s], xs0[s], xs1[s], square[s], v, o, False)
                if pad <= y < pad + h:
                    c = coefs[s]
                    drow, erow, orow = dil[y, pad:pad + w], ero[y, pad:pad + w], out[y - pad]
                    for j in range(w):
                        orow[j] = orow[j] + c * (drow[j] - erow[j])
    return True


# ------------------------------------------------------------------ the scale-by-scale kernel
# (``mlepf._mlmg_plane_kernel``: increments other than a square or a diamond, and the tests' reference
# for the wavefront; ``grouped=False`` runs every 3-point line step as its own pass)


@njit(cache=True, nogil=True)
def line_step(src, dst, dy, dx, y0, y1, x0, x1, take_max):  # pragma: no cover
    # dst = max/min of src at (y, x) − (dy, dx), (y, x) + (dy, dx) and (y, x), in that order
    for y in range(y0, y1):
        for xx in range(x0, x1):
            m = src[y - dy, xx - dx]
            q = src[y + dy, xx + dx]
            v = src[y, xx]
            if take_max:
                m = m if m > q else q
                dst[y, xx] = v if v > m else m
            else:
                m = m if m < q else q
                dst[y, xx] = v if v < m else m


@njit(cache=True, nogil=True)
def square5(src, dst, y0, y1, x0, x1, v, take_max):  # pragma: no cover
    # dst = dilation (take_max) or erosion by the 5×5 square: max/min of 5 rows into v, then of 5 columns
    n = x1 - x0
    for y in range(y0, y1):
        lo, hi = x0 - 2, x1 + 2
        max5(src[y - 2, lo:hi], src[y - 1, lo:hi], src[y, lo:hi], src[y + 1, lo:hi], src[y + 2, lo:hi], v, n + 4,
             take_max)
        max5(v[0:n], v[1:n + 1], v[2:n + 2], v[3:n + 3], v[4:n + 4], dst[y, x0:x1], n, take_max)


@njit(cache=True, nogil=True)
def diamond(src, dst, y0, y1, x0, x1, take_max):  # pragma: no cover
    # dst = dilation/erosion by {0, ±(1,1)} ⊕ {0, ±(−1,1)} = (0,0), (±1,±1), (0,±2), (±2,0)
    n = x1 - x0
    for y in range(y0, y1):
        u2, u1, c0, d1, d2 = src[y - 2], src[y - 1], src[y], src[y + 1], src[y + 2]
        max9(c0[x0:x1], c0[x0 - 2:x1 - 2], c0[x0 + 2:x1 + 2], u1[x0 - 1:x1 - 1], u1[x0 + 1:x1 + 1],
             d1[x0 - 1:x1 - 1], d1[x0 + 1:x1 + 1], u2[x0:x1], d2[x0:x1], dst[y, x0:x1], n, take_max)


@njit(cache=True, nogil=True, inline="always")
def _reach(pad, r, n, total, margin):  # pragma: no cover
    """Rows (or columns) ``[lo, hi)`` of ``scale_plane``'s canvas (``total`` long, the image's ``n`` at ``pad``) that a
    pass writes: the image and ``r`` beyond it on each side, kept ``margin`` from the canvas edge (the pass reads
    ``margin`` further)."""
    return max(margin, pad - r), min(total - margin, pad + n + r)


@njit(cache=True, nogil=True)
def scale_plane(img, steps, coefs, grouped, out):  # pragma: no cover
    h, w = img.shape
    # finite values reach at most steps[-1, 0] + 2·steps[-1, 1] rows/columns beyond the image; the grouped
    # passes read 2 further, and one spare row/column keeps the canvas edge out of reach
    pad = steps[-1, 0] + 2 * steps[-1, 1] + 3
    hh, ww = h + 2 * pad, w + 2 * pad
    dil = np.full((hh, ww), -np.inf)
    ero = np.full((hh, ww), np.inf)
    dil[pad:pad + h, pad:pad + w] = img
    ero[pad:pad + h, pad:pad + w] = img
    dil2, ero2 = dil.copy(), ero.copy()
    v = np.empty(ww)
    ry, rx = 0, 0  # how far beyond the image finite values can be
    pa, pd = 0, 0
    for i in range(steps.shape[0]):
        a, d = steps[i, 0], steps[i, 1]
        if grouped and a - pa == 2:
            # 2 vertical + 2 horizontal 3-point steps = one 5×5 square
            ry += 2
            rx += 2
            y0, y1 = _reach(pad, ry, h, hh, 2)
            x0, x1 = _reach(pad, rx, w, ww, 2)
            square5(dil, dil2, y0, y1, x0, x1, v, True)
            square5(ero, ero2, y0, y1, x0, x1, v, False)
            dil, dil2 = dil2, dil
            ero, ero2 = ero2, ero
            first = 2
        else:
            first = 0
        if grouped and d - pd == 1:
            # 1 diagonal + 1 anti-diagonal 3-point step = one 9-point diamond
            ry += 2
            rx += 2
            y0, y1 = _reach(pad, ry, h, hh, 2)
            x0, x1 = _reach(pad, rx, w, ww, 2)
            diamond(dil, dil2, y0, y1, x0, x1, True)
            diamond(ero, ero2, y0, y1, x0, x1, False)
            dil, dil2 = dil2, dil
            ero, ero2 = ero2, ero
            last = 2
        else:
            last = 4
        for k in range(first, last):   # the remaining directions, one 3-point step at a time
            dy = 1 if k != 1 else 0
            dx = 0 if k == 0 else 1
            if k == 3:
                dy = -1
            n = a - pa if k < 2 else d - pd
            for _ in range(n):
                ry += abs(dy)
                rx += dx
                ay = abs(dy)
                y0, y1 = _reach(pad, ry, h, hh, ay)
                x0, x1 = _reach(pad, rx, w, ww, dx)
                line_step(dil, dil2, dy, dx, y0, y1, x0, x1, True)
                line_step(ero, ero2, dy, dx, y0, y1, x0, x1, False)
                dil, dil2 = dil2, dil
                ero, ero2 = ero2, ero
        pa, pd = a, d
        c = coefs[i]
        for y in range(h):
            for xx in range(w):
                out[y, xx] = out[y, xx] + c * (dil[pad + y, pad + xx] - ero[pad + y, pad + xx])
    return out
