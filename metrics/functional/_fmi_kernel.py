"""Compiled per-window kernel of feature mutual information (FMI).

The reference ("fast-FMI", Haghighat 2011; Tang ``analysis_fmi.m``, MEFB
``metricsFMI.m``) runs a double loop over the windows of the feature images and,
per window, over the w²×w² joint pmf: 30–1100 s in Octave for one 256² triple.
Every window needs a few dozen dependent, data-dependent steps on nine values
(min-max normalisation, cdfs, a Fréchet-bound coupling, entropies), so array
programming pays one pass over memory per step; this kernel, compiled with
numba, makes one pass and keeps each window in registers.  This module holds
the one-window form (``_side``, ``_pair``, ``_fmi_row_sums``); ``_fmi_lanes.fmi_mean``
runs ``_fmi_lanes``, which applies the same steps to many windows at once
(bit for bit the same sums, tested) and shares spans of rows between threads
(``row_sums_parallel``) or, inside ``evaluate``'s preset pool, runs them serially, all without the GIL.

Numerical conventions kept from the reference (they decide exact-zero tests):
MATLAB ``sum`` order (left to right) wherever the reference compares a sum with
zero, numpy's pairwise order where the vectorised formulation summed rows.
The joint entropy uses the staircase form of the Fréchet-bound pmf (at most
2l − 1 non-zero cells, l = w²), O(l) per window instead of O(l²); agreement
with the literal double loop is ~1e-14 (``tests/metrics/test_fmi_kernel.py``).
The per-value base-2 logarithms use the branch-free ``_log2.log2`` (≤ 2 ulp
from ``math.log2``) so that their loops vectorise: 1.2–1.25× faster kernel,
values moved by ~1e-16 relative.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._log2 import TINY, log2


@njit(cache=True)
def _pwsum(a, o, n):
    """Sum of a[o:o+n] in numpy's pairwise order for n ≤ 128 (what ``ndarray.sum`` does on a row)."""
    if n < 8:
        res = 0.0
        for i in range(o, o + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[o], a[o + 1], a[o + 2], a[o + 3]
    r4, r5, r6, r7 = a[o + 4], a[o + 5], a[o + 6], a[o + 7]
    i = o + 8
    stop = o + n - n % 8
    while i < stop:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < o + n:
        res += a[i]
        i += 1
    return res


@njit(cache=True)
def _gather(img, r, c, w, out):
    """The w×w window at (r, c), column-major (MATLAB order) into ``out``."""
    k = 0
    for j in range(w):
        for i in range(w):
            out[k] = img[r + i, c + j]
            k += 1


@njit(cache=True, inline="always")
def _side(win, w, l, p, cdf, t, logp, scratch):
    """Per-window pdf, cdf, centred pdf and log2 pdf; returns (sd, ss, entropy, total)."""
    lo = win[0]
    hi = win[0]
    for k in range(1, l):
        v = win[k]
        if v < lo:
            lo = v
        if v > hi:
            hi = v
    if hi == lo:
        for k in range(l):
            scratch[k] = 1.0
    else:
        span = hi - lo
        for k in range(l):
            scratch[k] = (win[k] - lo) / span
    # sum(sum(window)): column sums first, then their sum, left to right
    tot = 0.0
    for j in range(w):
        col = scratch[j * w]
        for i in range(1, w):
            col += scratch[j * w + i]
        tot = col if j == 0 else tot + col
    for k in range(l):
        p[k] = scratch[k] / tot
    cdf[0] = p[0]
    s = p[0]
    s1 = p[0]
    s2 = p[0]
    for k in range(1, l):
        cdf[k] = cdf[k - 1] + p[k]
        s += p[k]
    mean = s / l
    for k in range(l):
        t[k] = p[k] - mean
    # Σ i²p and Σ i p (i = 1..l), left to right
    for k in range(1, l):
        i = k + 1.0
        s2 += (i * i) * p[k]
        s1 += i * p[k]
    sd = math.sqrt(s2 - s1 * s1)
    ss = t[0] * t[0]
    for k in range(1, l):
        ss += t[k] * t[k]
    for k in range(l):
        pk = p[k]
        lg = log2(max(pk, TINY))  # branch-free: the loop vectorises
        logp[k] = lg if pk > 0 else 0.0
        scratch[k] = pk * logp[k]
    h = -_pwsum(scratch, 0, l)
    total = _pwsum(p, 0, l)
    return sd, ss, h, total


@njit(cache=True, inline="always")
def _pair(xp, xc, xt, xlog, xsd, xss, xh, xtot, fp, fc, ft, flog, fsd, fss, fh, ftot, l,
          xcu, ci, cj, mass, buf):
    """FMI of one (source window, fused window) pair from their per-window quantities."""
    num = xt[0] * ft[0]
    for k in range(1, l):
        num += xt[k] * ft[k]
    c = 0.0 if num == 0 else num / math.sqrt(xss * fss)
    pos = c >= 0
    if pos:
        for k in range(l):
            xcu[k] = xc[k]
    else:  # lower Fréchet bound: comonotone coupling with x reversed
        xcu[0] = xp[l - 1]
        for k in range(1, l):
            xcu[k] = xcu[k - 1] + xp[l - 1 - k]
    # staircase of the comonotone coupling: the step ending at F_i lies in cell
    # (i, #{X < F_i}); the one ending at X_j in cell (#{F <= X_j}, j).  Both cdfs
    # are non-decreasing, so the counts come from one merge.
    nxf = 0
    nfx = 0
    for i in range(l):
        while nxf < l and xcu[nxf] < fc[i]:
            nxf += 1
        while nfx < l and fc[nfx] <= xcu[i]:
            nfx += 1
        fprev = fc[i - 1] if i > 0 else 0.0
        xprev = xcu[i - 1] if i > 0 else 0.0
        xbf = xcu[nxf - 1] if nxf > 0 else 0.0
        fbx = fc[nfx - 1] if nfx > 0 else 0.0
        mass[i] = max(fc[i] - max(fprev, xbf), 0.0)
        mass[l + i] = max(xcu[i] - max(xprev, fbx), 0.0)
        ci[i] = i
        cj[i] = min(nxf, l - 1)
        ci[l + i] = min(nfx, l - 1)
        cj[l + i] = i
    if not pos:
        for m in range(2 * l):
            cj[m] = l - 1 - cj[m]
    # Σ_ij bound_ij = Σ_cells mass·(l−i)(l−j)
    for m in range(2 * l):
        buf[m] = mass[m] * ((l - ci[m]) * (l - cj[m]))
    sum_bound = _pwsum(buf, 0, 2 * l)
    cov = sum_bound - _pwsum(fc, 0, l) * _pwsum(xc, 0, l)
    ratio = c / (cov / (fsd * xsd))
    if xsd == 0 or fsd == 0 or (pos and c == 0):
        phi = 0.0
    else:
        phi = ratio
    k1 = 1 - phi
    logk = math.log2(abs(k1 if k1 != 0 else 1.0))
    # joint entropy: the product term (1−φ)·f⊗x in closed form, corrected on the staircase
    hprod = -k1 * (logk * ftot * xtot - fh * xtot - xh * ftot)
    n2 = 2 * l
    for m in range(n2):
        # an empty step adds nothing to its cell: base·log2|base| cancels (to rounding)
        if mass[m] == 0:
            buf[m] = 0.0
            buf[n2 + m] = 0.0
            continue
        base = k1 * (fp[ci[m]] * xp[cj[m]])
        buf[m] = base * ((logk + flog[ci[m]]) + xlog[cj[m]])
        buf[n2 + m] = phi * mass[m] + base  # the cell's mass
    for m in range(n2):  # cell·log2|cell|, in a loop of its own so that it vectorises
        cell = buf[n2 + m]
        a = abs(cell)
        lg = log2(max(a, TINY))
        buf[n2 + m] = (lg if a != 0 else 0.0) * cell
    hj = (hprod + _pwsum(buf, 0, n2)) - _pwsum(buf, n2, n2)
    mi = (xh + fh) - hj
    return 0.0 if mi == 0 else 2 * mi / (xh + fh)


@njit(cache=True, nogil=True, error_model="numpy")
def windows_scalar(ff, fa, fb, w, r, c0, nb, acc):
    """``acc`` plus FMI(A,F) + FMI(B,F) of the windows (r, c0 .. c0+nb−1), one window at a time, in order."""
    l = w * w
    v = np.empty((12, l))
    fwin, fp, fc, ft, flog = v[0], v[1], v[2], v[3], v[4]
    xwin, xp, xc, xt, xlog = v[5], v[6], v[7], v[8], v[9]
    scratch, xcu = v[10], v[11]
    ci = np.empty(2 * l, dtype=np.int64)
    cj = np.empty(2 * l, dtype=np.int64)
    mass = np.empty(2 * l)
    buf = np.empty(4 * l)
    for c in range(c0, c0 + nb):
        _gather(ff, r, c, w, fwin)
        have_f = False
        fsd = fss = fh = ftot = 0.0
        for src in range(2):
            _gather(fa if src == 0 else fb, r, c, w, xwin)
            same = True
            for k in range(l):
                if xwin[k] != fwin[k]:
                    same = False
                    break
            if same:
                acc += 1.0
                continue
            if not have_f:
                fsd, fss, fh, ftot = _side(fwin, w, l, fp, fc, ft, flog, scratch)
                have_f = True
            xsd, xss, xh, xtot = _side(xwin, w, l, xp, xc, xt, xlog, scratch)
            acc += _pair(xp, xc, xt, xlog, xsd, xss, xh, xtot, fp, fc, ft, flog, fsd, fss, fh, ftot, l,
                         xcu, ci, cj, mass, buf)
    return acc


@njit(cache=True, nogil=True, error_model="numpy")
def _fmi_row_sums(ff, fa, fb, w):
    """Σ over windows of FMI(A,F) + FMI(B,F), one partial sum per row of windows, one window at a time.

    The reference form of ``_fmi_lanes`` (which computes the same sums bit for bit, faster; tests).
    """
    rows = ff.shape[0] - w + 1
    cols = ff.shape[1] - w + 1
    out = np.zeros(rows)
    for r in range(rows):
        out[r] = windows_scalar(ff, fa, fb, w, r, 0, cols, 0.0)
    return out
