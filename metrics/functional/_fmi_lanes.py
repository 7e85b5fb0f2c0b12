"""FMI window kernel vectorised *across* windows, and :func:`fmi_mean`, the FMI presets' entry point.

``_fmi_kernel._fmi_row_sums`` handles one window position at a time: its loops
run over the l = w² values of a window (9 for w = 3), too short for SIMD, and
the coupling's merge branches on data.  Here a row of window positions is
processed in blocks of ``LANES`` positions laid out structure-of-arrays
(``q[k, j]``: value k of the window at position j), every loop runs over the
positions (contiguous, vectorised), and the data-dependent steps are
branch-free: the merge pointers of the staircase are counts
(#{k: X_k < F_i}: both cdfs are non-decreasing, so the merge stops exactly
there), "the cdf just below" is the last one below (a select), and tests
(``hi == lo``, an empty step, a window identical in X and F) are selects.

Every window position gets **the same floating-point operations in the same
order** as in ``_fmi_row_sums`` (the same sums in MATLAB's left-to-right or
numpy's pairwise order, the same ``_log2.log2``, ``math.log2`` where it used
it), and the per-row sum adds the positions in the same order, so the result
is bit-for-bit that of the one-window kernel (``tests/metrics/test_fmi_kernel.py``).

For 3×3 windows (every FMI preset) ``_side3_lanes`` and ``_pair3_lanes`` do the same per window in
one to three passes over the lanes instead of ~50: the window's nine values and their intermediates
are named locals (registers), the per-side and per-pair results go to flat buffers at constant row
offsets (so that LLVM sees the stores cannot overlap and vectorises the whole body), counts and cell
indices are small integers held exactly in doubles, and the staircase's data-dependent loads are
selections among the nine loaded values.  Same operations in the same order, hence the same bits;
1.6× less kernel time (docs/metrics.md, issue 23, fifth round).  Other window sizes keep the general
loops.
"""
from __future__ import annotations

import math
import threading

import numba
import numpy as np
from numba import njit, prange

from ._fmi_kernel import windows_scalar
from ._log2 import TINY, log2
from ._threads import inside_pool

LANES = 128
# numba's fallback threading layer (workqueue) must not be entered by two Python
# threads at once (Dask runs metrics on threads), so parallel calls are serialised.
PARALLEL_LOCK = threading.Lock()


@njit(cache=True, nogil=True)
def _pwsum_lanes(a, o, n, nb, out, r):
    """out[j] = Σ_k a[o+k, j] for k < n in numpy's pairwise order (n ≤ 128), for each lane j < nb; r: (8, LANES) scratch."""
    if n < 8:
        for j in range(nb):
            out[j] = a[o, j]
        for k in range(o + 1, o + n):
            for j in range(nb):
                out[j] += a[k, j]
        return
    for q in range(8):
        for j in range(nb):
            r[q, j] = a[o + q, j]
    i = o + 8
    stop = o + n - n % 8
    while i < stop:
        for q in range(8):
            for j in range(nb):
                r[q, j] += a[i + q, j]
        i += 8
    for j in range(nb):
        out[j] = ((r[0, j] + r[1, j]) + (r[2, j] + r[3, j])) + ((r[4, j] + r[5, j]) + (r[6, j] + r[7, j]))
    while i < o + n:
        for j in range(nb):
            out[j] += a[i, j]
        i += 1


@njit(cache=True, nogil=True)
def _gather_lanes(img, r, c0, w, nb, win):
    """win[k, j] = value k (column-major) of the w×w window at (r, c0 + j)."""
    k = 0
    for jj in range(w):
        for i in range(w):
            row = img[r + i]
            for j in range(nb):
                win[k, j] = row[c0 + jj + j]
            k += 1


@njit(cache=True, nogil=True, error_model="numpy")
def _side_lanes(win, w, l, nb, p, cdf, t, logp, scratch, lo, hi, tot, sd, ss, h, total, csum, tmp, r8):
    """``_fmi_kernel._side`` for nb windows; also csum = pairwise Σ cdf (used by the covariance)."""
    for j in range(nb):
        lo[j] = win[0, j]
        hi[j] = win[0, j]
    for k in range(1, l):
        for j in range(nb):
            v = win[k, j]
            lo[j] = v if v < lo[j] else lo[j]
            hi[j] = v if v > hi[j] else hi[j]
    for k in range(l):
        for j in range(nb):
            span = hi[j] - lo[j]
            scratch[k, j] = 1.0 if hi[j] == lo[j] else (win[k, j] - lo[j]) / span
    for jj in range(w):  # column sums, then their sum left to right
        for j in range(nb):
            col = scratch[jj * w, j]
            for i in range(1, w):
                col += scratch[jj * w + i, j]
            tot[j] = col if jj == 0 else tot[j] + col
    for k in range(l):
        for j in range(nb):
            p[k, j] = scratch[k, j] / tot[j]
    for j in range(nb):
        cdf[0, j] = p[0, j]
        tmp[j] = p[0, j]  # running sum s
    for k in range(1, l):
        for j in range(nb):
            cdf[k, j] = cdf[k - 1, j] + p[k, j]
            tmp[j] += p[k, j]
    for k in range(l):
        for j in range(nb):
            t[k, j] = p[k, j] - tmp[j] / l
    for j in range(nb):
        lo[j] = p[0, j]  # Σ i p (i = 1..l), left to right
        hi[j] = p[0, j]  # Σ i² p
    for k in range(1, l):
        i = k + 1.0
        for j in range(nb):
            hi[j] += (i * i) * p[k, j]
            lo[j] += i * p[k, j]
    for j in range(nb):
        sd[j] = math.sqrt(hi[j] - lo[j] * lo[j])
        ss[j] = t[0, j] * t[0, j]
    for k in range(1, l):
        for j in range(nb):
            ss[j] += t[k, j] * t[k, j]
    for k in range(l):
        for j in range(nb):
            pk = p[k, j]
            lg = log2(max(pk, TINY))
            logp[k, j] = lg if pk > 0 else 0.0
            scratch[k, j] = pk * logp[k, j]
    _pwsum_lanes(scratch, 0, l, nb, h, r8)
    for j in range(nb):
        h[j] = -h[j]
    _pwsum_lanes(p, 0, l, nb, total, r8)
    _pwsum_lanes(cdf, 0, l, nb, csum, r8)


# Rows of the flat per-side buffer of ``_side3_lanes`` (w = 3, l = 9): row r holds lanes r·LANES .. r·LANES + 127.
S3_P, S3_C, S3_T, S3_G = 0, 9, 18, 27  # pdf, cdf, centred pdf, log2 pdf: nine rows each
S3_SD, S3_SS, S3_H, S3_TOT, S3_CS = 36, 37, 38, 39, 40  # per-window scalars
S3_ROWS = 41


@njit(cache=True, nogil=True)
def _select(c, x, y):
    """``x if c else y`` as a call, for ``_pair3_lanes``: the same value, and LLVM inlines it to one select.

    Numba's SSA repair visits every block once per reassigned name, so a body with ~700 conditional
    expressions (each one a branch and a join) took 52 s of a cold compile; written as calls, 8 s.  The
    operands here are plain loads and arithmetic without side effects, so evaluating both is harmless, and
    the kernel's speed and bits are unchanged (measured: 0.15 s for eight 256² FMI row-sum calls either way;
    ``tests/metrics/test_fmi_kernel.py``).  ``_side3_lanes`` keeps its conditionals: there an operand is a
    log2 that the branch skips, and as calls that kernel ran 1.7× slower.
    """
    return x if c else y


@njit(cache=True, nogil=True, error_model="numpy")
def _side3_lanes(win, nb, o):
    """``_side_lanes`` for 3×3 windows: every step of a window in one pass over the lanes.

    Same operations in the same order per window as ``_side_lanes`` (and ``_fmi_kernel._side``), so the
    same bits; the nine values and their intermediates stay in registers instead of going through
    twenty (9, LANES) scratch passes.  ``o`` is one flat float64 buffer of S3_ROWS × LANES: with constant
    row offsets LLVM sees that the stores cannot overlap and vectorises the whole body over the lanes
    (separate output arrays would need run-time overlap checks, beyond which it does not vectorise).
    """
    L = LANES
    for j in range(nb):
        v0 = win[0, j]
        v1 = win[1, j]
        v2 = win[2, j]
        v3 = win[3, j]
        v4 = win[4, j]
        v5 = win[5, j]
        v6 = win[6, j]
        v7 = win[7, j]
        v8 = win[8, j]
        lo = v0
        hi = v0
        lo = v1 if v1 < lo else lo
        hi = v1 if v1 > hi else hi
        lo = v2 if v2 < lo else lo
        hi = v2 if v2 > hi else hi
        lo = v3 if v3 < lo else lo
        hi = v3 if v3 > hi else hi
        lo = v4 if v4 < lo else lo
        hi = v4 if v4 > hi else hi
        lo = v5 if v5 < lo else lo
        hi = v5 if v5 > hi else hi
        lo = v6 if v6 < lo else lo
        hi = v6 if v6 > hi else hi
        lo = v7 if v7 < lo else lo
        hi = v7 if v7 > hi else hi
        lo = v8 if v8 < lo else lo
        hi = v8 if v8 > hi else hi
        flat = hi == lo
        span = hi - lo
        s0 = 1.0 if flat else (v0 - lo) / span
        s1 = 1.0 if flat else (v1 - lo) / span
        s2 = 1.0 if flat else (v2 - lo) / span
        s3 = 1.0 if flat else (v3 - lo) / span
        s4 = 1.0 if flat else (v4 - lo) / span
        s5 = 1.0 if flat else (v5 - lo) / span
        s6 = 1.0 if flat else (v6 - lo) / span
        s7 = 1.0 if flat else (v7 - lo) / span
        s8 = 1.0 if flat else (v8 - lo) / span
        tot = (s0 + s1) + s2  # column sums, then their sum left to right
        tot = tot + ((s3 + s4) + s5)
        tot = tot + ((s6 + s7) + s8)
        p0 = s0 / tot
        p1 = s1 / tot
        p2 = s2 / tot
        p3 = s3 / tot
        p4 = s4 / tot
        p5 = s5 / tot
        p6 = s6 / tot
        p7 = s7 / tot
        p8 = s8 / tot
        c0 = p0  # the cdf; also the running sum s of _side_lanes (the same additions)
        c1 = c0 + p1
        c2 = c1 + p2
        c3 = c2 + p3
        c4 = c3 + p4
        c5 = c4 + p5
        c6 = c5 + p6
        c7 = c6 + p7
        c8 = c7 + p8
        mean = c8 / 9
        t0 = p0 - mean
        t1 = p1 - mean
        t2 = p2 - mean
        t3 = p3 - mean
        t4 = p4 - mean
        t5 = p5 - mean
        t6 = p6 - mean
        t7 = p7 - mean
        t8 = p8 - mean
        m1 = p0  # Σ i p and Σ i² p (i = 1..9), left to right; (i·i) is exact
        m2 = p0
        m2 += 4.0 * p1
        m1 += 2.0 * p1
        m2 += 9.0 * p2
        m1 += 3.0 * p2
        m2 += 16.0 * p3
        m1 += 4.0 * p3
        m2 += 25.0 * p4
        m1 += 5.0 * p4
        m2 += 36.0 * p5
        m1 += 6.0 * p5
        m2 += 49.0 * p6
        m1 += 7.0 * p6
        m2 += 64.0 * p7
        m1 += 8.0 * p7
        m2 += 81.0 * p8
        m1 += 9.0 * p8
        q = t0 * t0
        q += t1 * t1
        q += t2 * t2
        q += t3 * t3
        q += t4 * t4
        q += t5 * t5
        q += t6 * t6
        q += t7 * t7
        q += t8 * t8
        g0 = log2(max(p0, TINY)) if p0 > 0 else 0.0
        g1 = log2(max(p1, TINY)) if p1 > 0 else 0.0
        g2 = log2(max(p2, TINY)) if p2 > 0 else 0.0
        g3 = log2(max(p3, TINY)) if p3 > 0 else 0.0
        g4 = log2(max(p4, TINY)) if p4 > 0 else 0.0
        g5 = log2(max(p5, TINY)) if p5 > 0 else 0.0
        g6 = log2(max(p6, TINY)) if p6 > 0 else 0.0
        g7 = log2(max(p7, TINY)) if p7 > 0 else 0.0
        g8 = log2(max(p8, TINY)) if p8 > 0 else 0.0
        o[(S3_P + 0) * L + j] = p0
        o[(S3_P + 1) * L + j] = p1
        o[(S3_P + 2) * L + j] = p2
        o[(S3_P + 3) * L + j] = p3
        o[(S3_P + 4) * L + j] = p4
        o[(S3_P + 5) * L + j] = p5
        o[(S3_P + 6) * L + j] = p6
        o[(S3_P + 7) * L + j] = p7
        o[(S3_P + 8) * L + j] = p8
        o[(S3_C + 0) * L + j] = c0
        o[(S3_C + 1) * L + j] = c1
        o[(S3_C + 2) * L + j] = c2
        o[(S3_C + 3) * L + j] = c3
        o[(S3_C + 4) * L + j] = c4
        o[(S3_C + 5) * L + j] = c5
        o[(S3_C + 6) * L + j] = c6
        o[(S3_C + 7) * L + j] = c7
        o[(S3_C + 8) * L + j] = c8
        o[(S3_T + 0) * L + j] = t0
        o[(S3_T + 1) * L + j] = t1
        o[(S3_T + 2) * L + j] = t2
        o[(S3_T + 3) * L + j] = t3
        o[(S3_T + 4) * L + j] = t4
        o[(S3_T + 5) * L + j] = t5
        o[(S3_T + 6) * L + j] = t6
        o[(S3_T + 7) * L + j] = t7
        o[(S3_T + 8) * L + j] = t8
        o[(S3_G + 0) * L + j] = g0
        o[(S3_G + 1) * L + j] = g1
        o[(S3_G + 2) * L + j] = g2
        o[(S3_G + 3) * L + j] = g3
        o[(S3_G + 4) * L + j] = g4
        o[(S3_G + 5) * L + j] = g5
        o[(S3_G + 6) * L + j] = g6
        o[(S3_G + 7) * L + j] = g7
        o[(S3_G + 8) * L + j] = g8
        o[S3_SD * L + j] = math.sqrt(m2 - m1 * m1)
        o[S3_SS * L + j] = q
        # numpy's pairwise order for nine terms: eight accumulators, their tree, then the ninth
        o[S3_H * L + j] = -(((((p0 * g0) + (p1 * g1)) + ((p2 * g2) + (p3 * g3)))
                             + (((p4 * g4) + (p5 * g5)) + ((p6 * g6) + (p7 * g7)))) + p8 * g8)
        o[S3_TOT * L + j] = (((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7))) + p8
        o[S3_CS * L + j] = (((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7))) + c8


@njit(cache=True, nogil=True, error_model="numpy")
def _pair_lanes(xwin, fwin, xp, xc, xt, xlog, xsd, xss, xh, xtot, xcs, fp, fc, ft, flog, fsd, fss, fh, ftot, fcs,
                l, nb, xcu, ci, cj, mass, buf, c, k1, logk, phi, hprod, s_a, s_b, r8, nxf, nfx, same, val,
                xq, xlq, gx, gl, gf, gfl, base, tlog):
    """``_fmi_kernel._pair`` for nb (source window, fused window) pairs; writes val[j] (1 for identical windows).

    xq, xlq, gx, gl, gf, gfl (l, LANES) and base, tlog (2l, LANES) are scratch for the cells' terms.
    """
    for j in range(nb):
        s_a[j] = xt[0, j] * ft[0, j]
    for k in range(1, l):
        for j in range(nb):
            s_a[j] += xt[k, j] * ft[k, j]
    for j in range(nb):
        num = s_a[j]
        c[j] = 0.0 if num == 0 else num / math.sqrt(xss[j] * fss[j])
    # the coupled source cdf: X itself (c ≥ 0) or X reversed (lower Fréchet bound)
    for j in range(nb):
        xcu[0, j] = xc[0, j] if c[j] >= 0 else xp[l - 1, j]
    for k in range(1, l):
        for j in range(nb):
            xcu[k, j] = xc[k, j] if c[j] >= 0 else xcu[k - 1, j] + xp[l - 1 - k, j]
    # staircase: merge pointers as counts.  Both cdfs are non-decreasing (cumulative sums of
    # non-negative terms), so {k: X_k < F_i} is a prefix of the X indices and {i: F_i <= X_k} a
    # prefix of the F indices: one comparison per (i, k) gives both counts, and "the X cdf just
    # below F_i" and "the F cdf at or below X_k" are the last elements of those prefixes (loaded
    # afterwards at the counted index: the same values the merge selects)
    n2 = 2 * l
    for k in range(l):
        for j in range(nb):
            nfx[k, j] = l  # l − #{i: X_k < F_i} = #{i: F_i <= X_k}
    for i in range(l):
        fci = fc[i]
        for j in range(nb):
            nxf[j] = 0
        for k in range(l):
            xk = xcu[k]
            nk = nfx[k]
            for j in range(nb):
                below = xk[j] < fci[j]
                nxf[j] += 1 if below else 0
                nk[j] -= 1 if below else 0
        for j in range(nb):
            a = nxf[j]
            xb = xcu[a - 1, j] if a > 0 else 0.0  # the X cdf just below F_i
            fprev = fc[i - 1, j] if i > 0 else 0.0
            mass[i, j] = max(fc[i, j] - max(fprev, xb), 0.0)
            a = min(a, l - 1)
            ci[i, j] = i
            cj[i, j] = l - 1 - a if c[j] < 0 else a
    for k in range(l):
        for j in range(nb):
            b = nfx[k, j]
            fb = fc[b - 1, j] if b > 0 else 0.0  # the F cdf at or below X_k
            xprev = xcu[k - 1, j] if k > 0 else 0.0
            mass[l + k, j] = max(xcu[k, j] - max(xprev, fb), 0.0)
            ci[l + k, j] = min(b, l - 1)
            cj[l + k, j] = l - 1 - k if c[j] < 0 else k
    for m in range(n2):
        for j in range(nb):
            buf[m, j] = mass[m, j] * ((l - ci[m, j]) * (l - cj[m, j]))
    _pwsum_lanes(buf, 0, n2, nb, s_a, r8)
    for j in range(nb):
        cov = s_a[j] - fcs[j] * xcs[j]
        ratio = c[j] / (cov / (fsd[j] * xsd[j]))
        degenerate = xsd[j] == 0 or fsd[j] == 0 or (c[j] >= 0 and c[j] == 0)
        ph = 0.0 if degenerate else ratio
        phi[j] = ph
        kk = 1 - ph
        k1[j] = kk
    for j in range(nb):  # libm log2, once per pair (as the one-window kernel)
        kk = k1[j]
        logk[j] = math.log2(abs(kk if kk != 0 else 1.0))
    for j in range(nb):
        hprod[j] = -k1[j] * (logk[j] * ftot[j] * xtot[j] - fh[j] * xtot[j] - xh[j] * ftot[j])
    # cells m < l lie in row i = m (static), cells l + k in column k or l − 1 − k (xq: X's pdf in
    # coupling order): only the other index needs a data-dependent load (same values as before)
    for k in range(l):
        for j in range(nb):
            pos = c[j] >= 0
            xq[k, j] = xp[k, j] if pos else xp[l - 1 - k, j]
            xlq[k, j] = xlog[k, j] if pos else xlog[l - 1 - k, j]
    # the data-dependent loads first, into rows of their own (gx, gl: X's pdf and log2 pdf at the
    # row-i cells; gf, gfl: F's at the column-k cells), so that the arithmetic below vectorises
    for i in range(l):
        gxi = gx[i]
        gli = gl[i]
        for j in range(nb):
            b = cj[i, j]
            gxi[j] = xp[b, j]
            gli[j] = xlog[b, j]
    for k in range(l):
        gfk = gf[k]
        gflk = gfl[k]
        for j in range(nb):
            a = ci[l + k, j]
            gfk[j] = fp[a, j]
            gflk[j] = flog[a, j]
    # the cell arithmetic in short loops over few arrays each (LLVM vectorises a loop only if it can
    # check the arrays' overlap at run time with a few comparisons)
    for i in range(l):
        fpi = fp[i]
        gxi = gx[i]
        bs = base[i]
        for j in range(nb):
            bs[j] = k1[j] * (fpi[j] * gxi[j])
    for k in range(l):
        gfk = gf[k]
        xqk = xq[k]
        bs = base[l + k]
        for j in range(nb):
            bs[j] = k1[j] * (gfk[j] * xqk[j])
    for i in range(l):  # log terms: row-i cells (F index i), then column-k cells (X index k)
        fli = flog[i]
        gli = gl[i]
        tl = tlog[i]
        for j in range(nb):
            tl[j] = (logk[j] + fli[j]) + gli[j]
    for k in range(l):
        gflk = gfl[k]
        xlk = xlq[k]
        tl = tlog[l + k]
        for j in range(nb):
            tl[j] = (logk[j] + gflk[j]) + xlk[j]
    for m in range(n2):
        mm = mass[m]
        bs = base[m]
        tl = tlog[m]
        b0 = buf[m]
        for j in range(nb):
            b0[j] = 0.0 if mm[j] == 0 else bs[j] * tl[j]
    for m in range(n2):
        mm = mass[m]
        bs = base[m]
        b1 = buf[n2 + m]
        for j in range(nb):
            b1[j] = 0.0 if mm[j] == 0 else phi[j] * mm[j] + bs[j]
    for m in range(n2):
        for j in range(nb):
            cell = buf[n2 + m, j]
            aa = abs(cell)
            lg = log2(max(aa, TINY))
            buf[n2 + m, j] = (lg if aa != 0 else 0.0) * cell
    _pwsum_lanes(buf, 0, n2, nb, s_a, r8)
    _pwsum_lanes(buf, n2, n2, nb, s_b, r8)
    for j in range(nb):
        hj = (hprod[j] + s_a[j]) - s_b[j]
        hs = xh[j] + fh[j]
        mi = hs - hj
        v = 0.0 if mi == 0 else 2 * mi / hs
        val[j] = 1.0 if same[j] else v


# Rows of ``_pair3_lanes``'s flat scratch: φ, 1 − φ, the correlation, log2|1 − φ|, the 18 cells' pdf indices
# (row cells: X's; column cells: F's), the 18 staircase masses.  Rows 0–17 are left unused: with this
# layout LLVM (numba 0.68) vectorises the first pass; with the same rows from 0, or the masses first, it
# reports an "unsafe indirect dependence" between the stores and leaves the pass scalar (2× slower;
# measured with -pass-remarks=loop-vectorize, docs/metrics.md)
P3_PHI, P3_K1, P3_C, P3_LOGK, P3_IDX, P3_MASS = 18, 19, 20, 21, 22, 40
P3_ROWS = 58


@njit(cache=True, nogil=True, error_model="numpy")
def _pair3_lanes(fo, xo, nb, w3, same, val):
    """``_pair_lanes`` for 3×3 windows: three passes over the lanes instead of ~30.

    ``fo``/``xo``: the fused and source sides (``_side3_lanes``'s layout); ``w3`` (P3_ROWS × LANES) is
    flat scratch.  Pass 1 (vectorised): the correlation, the coupled
    cdf, the staircase (counts, and "the cdf just below" as the last element of the prefix the
    comparisons select, which is the element the count indexes), the masses and φ; pass 2: the
    C library's log2 of 1 − φ (as ``_pair_lanes``); pass 3 (vectorised): the cells' entropy terms.
    Counts and cell indices are small integers held exactly in doubles (int64 → double conversions do
    not vectorise on AVX2), and the pdf values at a cell's index are selected from the nine loaded
    values (a data-dependent load would stop LLVM from vectorising: it cannot bound its address).  Per pair the same
    operations in the same order as ``_pair_lanes``, hence the same bits (``test_fmi_kernel.py``).
    """
    L = LANES
    for j in range(nb):
        num = xo[(S3_T + 0) * L + j] * fo[(S3_T + 0) * L + j]
        num += xo[(S3_T + 1) * L + j] * fo[(S3_T + 1) * L + j]
        num += xo[(S3_T + 2) * L + j] * fo[(S3_T + 2) * L + j]
        num += xo[(S3_T + 3) * L + j] * fo[(S3_T + 3) * L + j]
        num += xo[(S3_T + 4) * L + j] * fo[(S3_T + 4) * L + j]
        num += xo[(S3_T + 5) * L + j] * fo[(S3_T + 5) * L + j]
        num += xo[(S3_T + 6) * L + j] * fo[(S3_T + 6) * L + j]
        num += xo[(S3_T + 7) * L + j] * fo[(S3_T + 7) * L + j]
        num += xo[(S3_T + 8) * L + j] * fo[(S3_T + 8) * L + j]
        c = _select(num == 0, 0.0, num / math.sqrt(xo[S3_SS * L + j] * fo[S3_SS * L + j]))
        pos = c >= 0
        neg = c < 0
        r = xo[(S3_P + 8) * L + j]  # lower Fréchet bound: the cdf of X reversed
        u0 = _select(pos, xo[(S3_C + 0) * L + j], r)
        r = r + xo[(S3_P + 7) * L + j]
        u1 = _select(pos, xo[(S3_C + 1) * L + j], r)
        r = r + xo[(S3_P + 6) * L + j]
        u2 = _select(pos, xo[(S3_C + 2) * L + j], r)
        r = r + xo[(S3_P + 5) * L + j]
        u3 = _select(pos, xo[(S3_C + 3) * L + j], r)
        r = r + xo[(S3_P + 4) * L + j]
        u4 = _select(pos, xo[(S3_C + 4) * L + j], r)
        r = r + xo[(S3_P + 3) * L + j]
        u5 = _select(pos, xo[(S3_C + 5) * L + j], r)
        r = r + xo[(S3_P + 2) * L + j]
        u6 = _select(pos, xo[(S3_C + 6) * L + j], r)
        r = r + xo[(S3_P + 1) * L + j]
        u7 = _select(pos, xo[(S3_C + 7) * L + j], r)
        r = r + xo[(S3_P + 0) * L + j]
        u8 = _select(pos, xo[(S3_C + 8) * L + j], r)
        f0 = fo[(S3_C + 0) * L + j]
        f1 = fo[(S3_C + 1) * L + j]
        f2 = fo[(S3_C + 2) * L + j]
        f3 = fo[(S3_C + 3) * L + j]
        f4 = fo[(S3_C + 4) * L + j]
        f5 = fo[(S3_C + 5) * L + j]
        f6 = fo[(S3_C + 6) * L + j]
        f7 = fo[(S3_C + 7) * L + j]
        f8 = fo[(S3_C + 8) * L + j]
        # staircase: a_i = #{k: X_k < F_i}, b_k = #{i: F_i <= X_k}; both sets are prefixes (non-decreasing
        # cdfs), so the last selected element is the one at the counted index
        b0 = 9.0
        fb0 = 0.0
        b1 = 9.0
        fb1 = 0.0
        b2 = 9.0
        fb2 = 0.0
        b3 = 9.0
        fb3 = 0.0
        b4 = 9.0
        fb4 = 0.0
        b5 = 9.0
        fb5 = 0.0
        b6 = 9.0
        fb6 = 0.0
        b7 = 9.0
        fb7 = 0.0
        b8 = 9.0
        fb8 = 0.0
        a = 0.0
        xb = 0.0
        lt = u0 < f0
        a += _select(lt, 1.0, 0.0)
        b0 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u0, xb)
        fb0 = _select(lt, fb0, f0)
        lt = u1 < f0
        a += _select(lt, 1.0, 0.0)
        b1 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u1, xb)
        fb1 = _select(lt, fb1, f0)
        lt = u2 < f0
        a += _select(lt, 1.0, 0.0)
        b2 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u2, xb)
        fb2 = _select(lt, fb2, f0)
        lt = u3 < f0
        a += _select(lt, 1.0, 0.0)
        b3 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u3, xb)
        fb3 = _select(lt, fb3, f0)
        lt = u4 < f0
        a += _select(lt, 1.0, 0.0)
        b4 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u4, xb)
        fb4 = _select(lt, fb4, f0)
        lt = u5 < f0
        a += _select(lt, 1.0, 0.0)
        b5 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u5, xb)
        fb5 = _select(lt, fb5, f0)
        lt = u6 < f0
        a += _select(lt, 1.0, 0.0)
        b6 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u6, xb)
        fb6 = _select(lt, fb6, f0)
        lt = u7 < f0
        a += _select(lt, 1.0, 0.0)
        b7 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u7, xb)
        fb7 = _select(lt, fb7, f0)
        lt = u8 < f0
        a += _select(lt, 1.0, 0.0)
        b8 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u8, xb)
        fb8 = _select(lt, fb8, f0)
        m0 = max(f0 - max(0.0, xb), 0.0)
        a = min(a, 8.0)
        q0 = _select(neg, 8.0 - a, a)
        a = 0.0
        xb = 0.0
        lt = u0 < f1
        a += _select(lt, 1.0, 0.0)
        b0 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u0, xb)
        fb0 = _select(lt, fb0, f1)
        lt = u1 < f1
        a += _select(lt, 1.0, 0.0)
        b1 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u1, xb)
        fb1 = _select(lt, fb1, f1)
        lt = u2 < f1
        a += _select(lt, 1.0, 0.0)
        b2 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u2, xb)
        fb2 = _select(lt, fb2, f1)
        lt = u3 < f1
        a += _select(lt, 1.0, 0.0)
        b3 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u3, xb)
        fb3 = _select(lt, fb3, f1)
        lt = u4 < f1
        a += _select(lt, 1.0, 0.0)
        b4 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u4, xb)
        fb4 = _select(lt, fb4, f1)
        lt = u5 < f1
        a += _select(lt, 1.0, 0.0)
        b5 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u5, xb)
        fb5 = _select(lt, fb5, f1)
        lt = u6 < f1
        a += _select(lt, 1.0, 0.0)
        b6 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u6, xb)
        fb6 = _select(lt, fb6, f1)
        lt = u7 < f1
        a += _select(lt, 1.0, 0.0)
        b7 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u7, xb)
        fb7 = _select(lt, fb7, f1)
        lt = u8 < f1
        a += _select(lt, 1.0, 0.0)
        b8 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u8, xb)
        fb8 = _select(lt, fb8, f1)
        m1 = max(f1 - max(f0, xb), 0.0)
        a = min(a, 8.0)
        q1 = _select(neg, 8.0 - a, a)
        a = 0.0
        xb = 0.0
        lt = u0 < f2
        a += _select(lt, 1.0, 0.0)
        b0 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u0, xb)
        fb0 = _select(lt, fb0, f2)
        lt = u1 < f2
        a += _select(lt, 1.0, 0.0)
        b1 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u1, xb)
        fb1 = _select(lt, fb1, f2)
        lt = u2 < f2
        a += _select(lt, 1.0, 0.0)
        b2 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u2, xb)
        fb2 = _select(lt, fb2, f2)
        lt = u3 < f2
        a += _select(lt, 1.0, 0.0)
        b3 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u3, xb)
        fb3 = _select(lt, fb3, f2)
        lt = u4 < f2
        a += _select(lt, 1.0, 0.0)
        b4 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u4, xb)
        fb4 = _select(lt, fb4, f2)
        lt = u5 < f2
        a += _select(lt, 1.0, 0.0)
        b5 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u5, xb)
        fb5 = _select(lt, fb5, f2)
        lt = u6 < f2
        a += _select(lt, 1.0, 0.0)
        b6 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u6, xb)
        fb6 = _select(lt, fb6, f2)
        lt = u7 < f2
        a += _select(lt, 1.0, 0.0)
        b7 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u7, xb)
        fb7 = _select(lt, fb7, f2)
        lt = u8 < f2
        a += _select(lt, 1.0, 0.0)
        b8 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u8, xb)
        fb8 = _select(lt, fb8, f2)
        m2 = max(f2 - max(f1, xb), 0.0)
        a = min(a, 8.0)
        q2 = _select(neg, 8.0 - a, a)
        a = 0.0
        xb = 0.0
        lt = u0 < f3
        a += _select(lt, 1.0, 0.0)
        b0 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u0, xb)
        fb0 = _select(lt, fb0, f3)
        lt = u1 < f3
        a += _select(lt, 1.0, 0.0)
        b1 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u1, xb)
        fb1 = _select(lt, fb1, f3)
        lt = u2 < f3
        a += _select(lt, 1.0, 0.0)
        b2 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u2, xb)
        fb2 = _select(lt, fb2, f3)
        lt = u3 < f3
        a += _select(lt, 1.0, 0.0)
        b3 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u3, xb)
        fb3 = _select(lt, fb3, f3)
        lt = u4 < f3
        a += _select(lt, 1.0, 0.0)
        b4 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u4, xb)
        fb4 = _select(lt, fb4, f3)
        lt = u5 < f3
        a += _select(lt, 1.0, 0.0)
        b5 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u5, xb)
        fb5 = _select(lt, fb5, f3)
        lt = u6 < f3
        a += _select(lt, 1.0, 0.0)
        b6 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u6, xb)
        fb6 = _select(lt, fb6, f3)
        lt = u7 < f3
        a += _select(lt, 1.0, 0.0)
        b7 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u7, xb)
        fb7 = _select(lt, fb7, f3)
        lt = u8 < f3
        a += _select(lt, 1.0, 0.0)
        b8 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u8, xb)
        fb8 = _select(lt, fb8, f3)
        m3 = max(f3 - max(f2, xb), 0.0)
        a = min(a, 8.0)
        q3 = _select(neg, 8.0 - a, a)
        a = 0.0
        xb = 0.0
        lt = u0 < f4
        a += _select(lt, 1.0, 0.0)
        b0 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u0, xb)
        fb0 = _select(lt, fb0, f4)
        lt = u1 < f4
        a += _select(lt, 1.0, 0.0)
        b1 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u1, xb)
        fb1 = _select(lt, fb1, f4)
        lt = u2 < f4
        a += _select(lt, 1.0, 0.0)
        b2 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u2, xb)
        fb2 = _select(lt, fb2, f4)
        lt = u3 < f4
        a += _select(lt, 1.0, 0.0)
        b3 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u3, xb)
        fb3 = _select(lt, fb3, f4)
        lt = u4 < f4
        a += _select(lt, 1.0, 0.0)
        b4 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u4, xb)
        fb4 = _select(lt, fb4, f4)
        lt = u5 < f4
        a += _select(lt, 1.0, 0.0)
        b5 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u5, xb)
        fb5 = _select(lt, fb5, f4)
        lt = u6 < f4
        a += _select(lt, 1.0, 0.0)
        b6 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u6, xb)
        fb6 = _select(lt, fb6, f4)
        lt = u7 < f4
        a += _select(lt, 1.0, 0.0)
        b7 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u7, xb)
        fb7 = _select(lt, fb7, f4)
        lt = u8 < f4
        a += _select(lt, 1.0, 0.0)
        b8 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u8, xb)
        fb8 = _select(lt, fb8, f4)
        m4 = max(f4 - max(f3, xb), 0.0)
        a = min(a, 8.0)
        q4 = _select(neg, 8.0 - a, a)
        a = 0.0
        xb = 0.0
        lt = u0 < f5
        a += _select(lt, 1.0, 0.0)
        b0 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u0, xb)
        fb0 = _select(lt, fb0, f5)
        lt = u1 < f5
        a += _select(lt, 1.0, 0.0)
        b1 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u1, xb)
        fb1 = _select(lt, fb1, f5)
        lt = u2 < f5
        a += _select(lt, 1.0, 0.0)
        b2 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u2, xb)
        fb2 = _select(lt, fb2, f5)
        lt = u3 < f5
        a += _select(lt, 1.0, 0.0)
        b3 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u3, xb)
        fb3 = _select(lt, fb3, f5)
        lt = u4 < f5
        a += _select(lt, 1.0, 0.0)
        b4 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u4, xb)
        fb4 = _select(lt, fb4, f5)
        lt = u5 < f5
        a += _select(lt, 1.0, 0.0)
        b5 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u5, xb)
        fb5 = _select(lt, fb5, f5)
        lt = u6 < f5
        a += _select(lt, 1.0, 0.0)
        b6 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u6, xb)
        fb6 = _select(lt, fb6, f5)
        lt = u7 < f5
        a += _select(lt, 1.0, 0.0)
        b7 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u7, xb)
        fb7 = _select(lt, fb7, f5)
        lt = u8 < f5
        a += _select(lt, 1.0, 0.0)
        b8 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u8, xb)
        fb8 = _select(lt, fb8, f5)
        m5 = max(f5 - max(f4, xb), 0.0)
        a = min(a, 8.0)
        q5 = _select(neg, 8.0 - a, a)
        a = 0.0
        xb = 0.0
        lt = u0 < f6
        a += _select(lt, 1.0, 0.0)
        b0 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u0, xb)
        fb0 = _select(lt, fb0, f6)
        lt = u1 < f6
        a += _select(lt, 1.0, 0.0)
        b1 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u1, xb)
        fb1 = _select(lt, fb1, f6)
        lt = u2 < f6
        a += _select(lt, 1.0, 0.0)
        b2 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u2, xb)
        fb2 = _select(lt, fb2, f6)
        lt = u3 < f6
        a += _select(lt, 1.0, 0.0)
        b3 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u3, xb)
        fb3 = _select(lt, fb3, f6)
        lt = u4 < f6
        a += _select(lt, 1.0, 0.0)
        b4 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u4, xb)
        fb4 = _select(lt, fb4, f6)
        lt = u5 < f6
        a += _select(lt, 1.0, 0.0)
        b5 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u5, xb)
        fb5 = _select(lt, fb5, f6)
        lt = u6 < f6
        a += _select(lt, 1.0, 0.0)
        b6 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u6, xb)
        fb6 = _select(lt, fb6, f6)
        lt = u7 < f6
        a += _select(lt, 1.0, 0.0)
        b7 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u7, xb)
        fb7 = _select(lt, fb7, f6)
        lt = u8 < f6
        a += _select(lt, 1.0, 0.0)
        b8 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u8, xb)
        fb8 = _select(lt, fb8, f6)
        m6 = max(f6 - max(f5, xb), 0.0)
        a = min(a, 8.0)
        q6 = _select(neg, 8.0 - a, a)
        a = 0.0
        xb = 0.0
        lt = u0 < f7
        a += _select(lt, 1.0, 0.0)
        b0 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u0, xb)
        fb0 = _select(lt, fb0, f7)
        lt = u1 < f7
        a += _select(lt, 1.0, 0.0)
        b1 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u1, xb)
        fb1 = _select(lt, fb1, f7)
        lt = u2 < f7
        a += _select(lt, 1.0, 0.0)
        b2 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u2, xb)
        fb2 = _select(lt, fb2, f7)
        lt = u3 < f7
        a += _select(lt, 1.0, 0.0)
        b3 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u3, xb)
        fb3 = _select(lt, fb3, f7)
        lt = u4 < f7
        a += _select(lt, 1.0, 0.0)
        b4 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u4, xb)
        fb4 = _select(lt, fb4, f7)
        lt = u5 < f7
        a += _select(lt, 1.0, 0.0)
        b5 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u5, xb)
        fb5 = _select(lt, fb5, f7)
        lt = u6 < f7
        a += _select(lt, 1.0, 0.0)
        b6 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u6, xb)
        fb6 = _select(lt, fb6, f7)
        lt = u7 < f7
        a += _select(lt, 1.0, 0.0)
        b7 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u7, xb)
        fb7 = _select(lt, fb7, f7)
        lt = u8 < f7
        a += _select(lt, 1.0, 0.0)
        b8 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u8, xb)
        fb8 = _select(lt, fb8, f7)
        m7 = max(f7 - max(f6, xb), 0.0)
        a = min(a, 8.0)
        q7 = _select(neg, 8.0 - a, a)
        a = 0.0
        xb = 0.0
        lt = u0 < f8
        a += _select(lt, 1.0, 0.0)
        b0 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u0, xb)
        fb0 = _select(lt, fb0, f8)
        lt = u1 < f8
        a += _select(lt, 1.0, 0.0)
        b1 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u1, xb)
        fb1 = _select(lt, fb1, f8)
        lt = u2 < f8
        a += _select(lt, 1.0, 0.0)
        b2 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u2, xb)
        fb2 = _select(lt, fb2, f8)
        lt = u3 < f8
        a += _select(lt, 1.0, 0.0)
        b3 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u3, xb)
        fb3 = _select(lt, fb3, f8)
        lt = u4 < f8
        a += _select(lt, 1.0, 0.0)
        b4 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u4, xb)
        fb4 = _select(lt, fb4, f8)
        lt = u5 < f8
        a += _select(lt, 1.0, 0.0)
        b5 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u5, xb)
        fb5 = _select(lt, fb5, f8)
        lt = u6 < f8
        a += _select(lt, 1.0, 0.0)
        b6 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u6, xb)
        fb6 = _select(lt, fb6, f8)
        lt = u7 < f8
        a += _select(lt, 1.0, 0.0)
        b7 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u7, xb)
        fb7 = _select(lt, fb7, f8)
        lt = u8 < f8
        a += _select(lt, 1.0, 0.0)
        b8 -= _select(lt, 1.0, 0.0)
        xb = _select(lt, u8, xb)
        fb8 = _select(lt, fb8, f8)
        m8 = max(f8 - max(f7, xb), 0.0)
        a = min(a, 8.0)
        q8 = _select(neg, 8.0 - a, a)
        m9 = max(u0 - max(0.0, fb0), 0.0)
        q9 = min(b0, 8.0)
        d0 = _select(neg, 8.0, 0.0)
        m10 = max(u1 - max(u0, fb1), 0.0)
        q10 = min(b1, 8.0)
        d1 = _select(neg, 7.0, 1.0)
        m11 = max(u2 - max(u1, fb2), 0.0)
        q11 = min(b2, 8.0)
        d2 = _select(neg, 6.0, 2.0)
        m12 = max(u3 - max(u2, fb3), 0.0)
        q12 = min(b3, 8.0)
        d3 = _select(neg, 5.0, 3.0)
        m13 = max(u4 - max(u3, fb4), 0.0)
        q13 = min(b4, 8.0)
        d4 = _select(neg, 4.0, 4.0)
        m14 = max(u5 - max(u4, fb5), 0.0)
        q14 = min(b5, 8.0)
        d5 = _select(neg, 3.0, 5.0)
        m15 = max(u6 - max(u5, fb6), 0.0)
        q15 = min(b6, 8.0)
        d6 = _select(neg, 2.0, 6.0)
        m16 = max(u7 - max(u6, fb7), 0.0)
        q16 = min(b7, 8.0)
        d7 = _select(neg, 1.0, 7.0)
        m17 = max(u8 - max(u7, fb8), 0.0)
        q17 = min(b8, 8.0)
        d8 = _select(neg, 0.0, 8.0)
        t0 = m0 * (9.0 * (9.0 - q0))
        t1 = m1 * (8.0 * (9.0 - q1))
        t2 = m2 * (7.0 * (9.0 - q2))
        t3 = m3 * (6.0 * (9.0 - q3))
        t4 = m4 * (5.0 * (9.0 - q4))
        t5 = m5 * (4.0 * (9.0 - q5))
        t6 = m6 * (3.0 * (9.0 - q6))
        t7 = m7 * (2.0 * (9.0 - q7))
        t8 = m8 * (1.0 * (9.0 - q8))
        t9 = m9 * ((9.0 - q9) * (9.0 - d0))
        t10 = m10 * ((9.0 - q10) * (9.0 - d1))
        t11 = m11 * ((9.0 - q11) * (9.0 - d2))
        t12 = m12 * ((9.0 - q12) * (9.0 - d3))
        t13 = m13 * ((9.0 - q13) * (9.0 - d4))
        t14 = m14 * ((9.0 - q14) * (9.0 - d5))
        t15 = m15 * ((9.0 - q15) * (9.0 - d6))
        t16 = m16 * ((9.0 - q16) * (9.0 - d7))
        t17 = m17 * ((9.0 - q17) * (9.0 - d8))
        # numpy's pairwise order for 18 terms: eight accumulators (two terms each), their tree, then two
        sb_lo = ((t0 + t8) + (t1 + t9)) + ((t2 + t10) + (t3 + t11))
        sb_hi = ((t4 + t12) + (t5 + t13)) + ((t6 + t14) + (t7 + t15))
        sb = ((sb_lo + sb_hi) + t16) + t17
        cov = sb - fo[S3_CS * L + j] * xo[S3_CS * L + j]
        xsd = xo[S3_SD * L + j]
        fsd = fo[S3_SD * L + j]
        ratio = c / (cov / (fsd * xsd))
        degenerate = (xsd == 0) | (fsd == 0) | (pos & (c == 0))
        phi = _select(degenerate, 0.0, ratio)
        w3[P3_PHI * L + j] = phi
        w3[P3_K1 * L + j] = 1 - phi
        w3[P3_C * L + j] = c
        w3[(P3_MASS + 0) * L + j] = m0
        w3[(P3_IDX + 0) * L + j] = q0
        w3[(P3_MASS + 1) * L + j] = m1
        w3[(P3_IDX + 1) * L + j] = q1
        w3[(P3_MASS + 2) * L + j] = m2
        w3[(P3_IDX + 2) * L + j] = q2
        w3[(P3_MASS + 3) * L + j] = m3
        w3[(P3_IDX + 3) * L + j] = q3
        w3[(P3_MASS + 4) * L + j] = m4
        w3[(P3_IDX + 4) * L + j] = q4
        w3[(P3_MASS + 5) * L + j] = m5
        w3[(P3_IDX + 5) * L + j] = q5
        w3[(P3_MASS + 6) * L + j] = m6
        w3[(P3_IDX + 6) * L + j] = q6
        w3[(P3_MASS + 7) * L + j] = m7
        w3[(P3_IDX + 7) * L + j] = q7
        w3[(P3_MASS + 8) * L + j] = m8
        w3[(P3_IDX + 8) * L + j] = q8
        w3[(P3_MASS + 9) * L + j] = m9
        w3[(P3_IDX + 9) * L + j] = q9
        w3[(P3_MASS + 10) * L + j] = m10
        w3[(P3_IDX + 10) * L + j] = q10
        w3[(P3_MASS + 11) * L + j] = m11
        w3[(P3_IDX + 11) * L + j] = q11
        w3[(P3_MASS + 12) * L + j] = m12
        w3[(P3_IDX + 12) * L + j] = q12
        w3[(P3_MASS + 13) * L + j] = m13
        w3[(P3_IDX + 13) * L + j] = q13
        w3[(P3_MASS + 14) * L + j] = m14
        w3[(P3_IDX + 14) * L + j] = q14
        w3[(P3_MASS + 15) * L + j] = m15
        w3[(P3_IDX + 15) * L + j] = q15
        w3[(P3_MASS + 16) * L + j] = m16
        w3[(P3_IDX + 16) * L + j] = q16
        w3[(P3_MASS + 17) * L + j] = m17
        w3[(P3_IDX + 17) * L + j] = q17
    for j in range(nb):  # libm log2, once per pair (as the one-window kernel)
        kk = w3[P3_K1 * L + j]
        w3[P3_LOGK * L + j] = math.log2(abs(_select(kk != 0, kk, 1.0)))
    for j in range(nb):
        k1 = w3[P3_K1 * L + j]
        phi = w3[P3_PHI * L + j]
        logk = w3[P3_LOGK * L + j]
        pos = w3[P3_C * L + j] >= 0
        xh = xo[S3_H * L + j]
        fh = fo[S3_H * L + j]
        xtot = xo[S3_TOT * L + j]
        ftot = fo[S3_TOT * L + j]
        hprod = -k1 * (logk * ftot * xtot - fh * xtot - xh * ftot)
        xp0 = xo[(S3_P + 0) * L + j]
        xg0 = xo[(S3_G + 0) * L + j]
        xp1 = xo[(S3_P + 1) * L + j]
        xg1 = xo[(S3_G + 1) * L + j]
        xp2 = xo[(S3_P + 2) * L + j]
        xg2 = xo[(S3_G + 2) * L + j]
        xp3 = xo[(S3_P + 3) * L + j]
        xg3 = xo[(S3_G + 3) * L + j]
        xp4 = xo[(S3_P + 4) * L + j]
        xg4 = xo[(S3_G + 4) * L + j]
        xp5 = xo[(S3_P + 5) * L + j]
        xg5 = xo[(S3_G + 5) * L + j]
        xp6 = xo[(S3_P + 6) * L + j]
        xg6 = xo[(S3_G + 6) * L + j]
        xp7 = xo[(S3_P + 7) * L + j]
        xg7 = xo[(S3_G + 7) * L + j]
        xp8 = xo[(S3_P + 8) * L + j]
        xg8 = xo[(S3_G + 8) * L + j]
        fp0 = fo[(S3_P + 0) * L + j]
        fg0 = fo[(S3_G + 0) * L + j]
        fp1 = fo[(S3_P + 1) * L + j]
        fg1 = fo[(S3_G + 1) * L + j]
        fp2 = fo[(S3_P + 2) * L + j]
        fg2 = fo[(S3_G + 2) * L + j]
        fp3 = fo[(S3_P + 3) * L + j]
        fg3 = fo[(S3_G + 3) * L + j]
        fp4 = fo[(S3_P + 4) * L + j]
        fg4 = fo[(S3_G + 4) * L + j]
        fp5 = fo[(S3_P + 5) * L + j]
        fg5 = fo[(S3_G + 5) * L + j]
        fp6 = fo[(S3_P + 6) * L + j]
        fg6 = fo[(S3_G + 6) * L + j]
        fp7 = fo[(S3_P + 7) * L + j]
        fg7 = fo[(S3_G + 7) * L + j]
        fp8 = fo[(S3_P + 8) * L + j]
        fg8 = fo[(S3_G + 8) * L + j]
        g = w3[(P3_IDX + 0) * L + j]
        # row cell 0 (F index 0): X's pdf and log2 pdf at the coupled index g (selected: no gather)
        px = xp0
        lx = xg0
        px = _select(g == 1, xp1, px)
        lx = _select(g == 1, xg1, lx)
        px = _select(g == 2, xp2, px)
        lx = _select(g == 2, xg2, lx)
        px = _select(g == 3, xp3, px)
        lx = _select(g == 3, xg3, lx)
        px = _select(g == 4, xp4, px)
        lx = _select(g == 4, xg4, lx)
        px = _select(g == 5, xp5, px)
        lx = _select(g == 5, xg5, lx)
        px = _select(g == 6, xp6, px)
        lx = _select(g == 6, xg6, lx)
        px = _select(g == 7, xp7, px)
        lx = _select(g == 7, xg7, lx)
        px = _select(g == 8, xp8, px)
        lx = _select(g == 8, xg8, lx)
        base = k1 * (fp0 * px)
        tl = (logk + fg0) + lx
        mm = w3[(P3_MASS + 0) * L + j]
        e0 = _select(mm == 0, 0.0, base * tl)
        cell = _select(mm == 0, 0.0, phi * mm + base)
        aa = abs(cell)
        h0 = (_select(aa != 0, log2(max(aa, TINY)), 0.0)) * cell
        g = w3[(P3_IDX + 1) * L + j]
        # row cell 1 (F index 1): X's pdf and log2 pdf at the coupled index g (selected: no gather)
        px = xp0
        lx = xg0
        px = _select(g == 1, xp1, px)
        lx = _select(g == 1, xg1, lx)
        px = _select(g == 2, xp2, px)
        lx = _select(g == 2, xg2, lx)
        px = _select(g == 3, xp3, px)
        lx = _select(g == 3, xg3, lx)
        px = _select(g == 4, xp4, px)
        lx = _select(g == 4, xg4, lx)
        px = _select(g == 5, xp5, px)
        lx = _select(g == 5, xg5, lx)
        px = _select(g == 6, xp6, px)
        lx = _select(g == 6, xg6, lx)
        px = _select(g == 7, xp7, px)
        lx = _select(g == 7, xg7, lx)
        px = _select(g == 8, xp8, px)
        lx = _select(g == 8, xg8, lx)
        base = k1 * (fp1 * px)
        tl = (logk + fg1) + lx
        mm = w3[(P3_MASS + 1) * L + j]
        e1 = _select(mm == 0, 0.0, base * tl)
        cell = _select(mm == 0, 0.0, phi * mm + base)
        aa = abs(cell)
        h1 = (_select(aa != 0, log2(max(aa, TINY)), 0.0)) * cell
        g = w3[(P3_IDX + 2) * L + j]
        # row cell 2 (F index 2): X's pdf and log2 pdf at the coupled index g (selected: no gather)
        px = xp0
        lx = xg0
        px = _select(g == 1, xp1, px)
        lx = _select(g == 1, xg1, lx)
        px = _select(g == 2, xp2, px)
        lx = _select(g == 2, xg2, lx)
        px = _select(g == 3, xp3, px)
        lx = _select(g == 3, xg3, lx)
        px = _select(g == 4, xp4, px)
        lx = _select(g == 4, xg4, lx)
        px = _select(g == 5, xp5, px)
        lx = _select(g == 5, xg5, lx)
        px = _select(g == 6, xp6, px)
        lx = _select(g == 6, xg6, lx)
        px = _select(g == 7, xp7, px)
        lx = _select(g == 7, xg7, lx)
        px = _select(g == 8, xp8, px)
        lx = _select(g == 8, xg8, lx)
        base = k1 * (fp2 * px)
        tl = (logk + fg2) + lx
        mm = w3[(P3_MASS + 2) * L + j]
        e2 = _select(mm == 0, 0.0, base * tl)
        cell = _select(mm == 0, 0.0, phi * mm + base)
        aa = abs(cell)
        h2 = (_select(aa != 0, log2(max(aa, TINY)), 0.0)) * cell
        g = w3[(P3_IDX + 3) * L + j]
        # row cell 3 (F index 3): X's pdf and log2 pdf at the coupled index g (selected: no gather)
        px = xp0
        lx = xg0
        px = _select(g == 1, xp1, px)
        lx = _select(g == 1, xg1, lx)
        px = _select(g == 2, xp2, px)
        lx = _select(g == 2, xg2, lx)
        px = _select(g == 3, xp3, px)
        lx = _select(g == 3, xg3, lx)
        px = _select(g == 4, xp4, px)
        lx = _select(g == 4, xg4, lx)
        px = _select(g == 5, xp5, px)
        lx = _select(g == 5, xg5, lx)
        px = _select(g == 6, xp6, px)
        lx = _select(g == 6, xg6, lx)
        px = _select(g == 7, xp7, px)
        lx = _select(g == 7, xg7, lx)
        px = _select(g == 8, xp8, px)
        lx = _select(g == 8, xg8, lx)
        base = k1 * (fp3 * px)
        tl = (logk + fg3) + lx
        mm = w3[(P3_MASS + 3) * L + j]
        e3 = _select(mm == 0, 0.0, base * tl)
        cell = _select(mm == 0, 0.0, phi * mm + base)
        aa = abs(cell)
        h3 = (_select(aa != 0, log2(max(aa, TINY)), 0.0)) * cell
        g = w3[(P3_IDX + 4) * L + j]
        # row cell 4 (F index 4): X's pdf and log2 pdf at the coupled index g (selected: no gather)
        px = xp0
        lx = xg0
        px = _select(g == 1, xp1, px)
        lx = _select(g == 1, xg1, lx)
        px = _select(g == 2, xp2, px)
        lx = _select(g == 2, xg2, lx)
        px = _select(g == 3, xp3, px)
        lx = _select(g == 3, xg3, lx)
        px = _select(g == 4, xp4, px)
        lx = _select(g == 4, xg4, lx)
        px = _select(g == 5, xp5, px)
        lx = _select(g == 5, xg5, lx)
        px = _select(g == 6, xp6, px)
        lx = _select(g == 6, xg6, lx)
        px = _select(g == 7, xp7, px)
        lx = _select(g == 7, xg7, lx)
        px = _select(g == 8, xp8, px)
        lx = _select(g == 8, xg8, lx)
        base = k1 * (fp4 * px)
        tl = (logk + fg4) + lx
        mm = w3[(P3_MASS + 4) * L + j]
        e4 = _select(mm == 0, 0.0, base * tl)
        cell = _select(mm == 0, 0.0, phi * mm + base)
        aa = abs(cell)
        h4 = (_select(aa != 0, log2(max(aa, TINY)), 0.0)) * cell
        g = w3[(P3_IDX + 5) * L + j]
        # row cell 5 (F index 5): X's pdf and log2 pdf at the coupled index g (selected: no gather)
        px = xp0
        lx = xg0
        px = _select(g == 1, xp1, px)
        lx = _select(g == 1, xg1, lx)
        px = _select(g == 2, xp2, px)
        lx = _select(g == 2, xg2, lx)
        px = _select(g == 3, xp3, px)
        lx = _select(g == 3, xg3, lx)
        px = _select(g == 4, xp4, px)
        lx = _select(g == 4, xg4, lx)
        px = _select(g == 5, xp5, px)
        lx = _select(g == 5, xg5, lx)
        px = _select(g == 6, xp6, px)
        lx = _select(g == 6, xg6, lx)
        px = _select(g == 7, xp7, px)
        lx = _select(g == 7, xg7, lx)
        px = _select(g == 8, xp8, px)
        lx = _select(g == 8, xg8, lx)
        base = k1 * (fp5 * px)
        tl = (logk + fg5) + lx
        mm = w3[(P3_MASS + 5) * L + j]
        e5 = _select(mm == 0, 0.0, base * tl)
        cell = _select(mm == 0, 0.0, phi * mm + base)
        aa = abs(cell)
        h5 = (_select(aa != 0, log2(max(aa, TINY)), 0.0)) * cell
        g = w3[(P3_IDX + 6) * L + j]
        # row cell 6 (F index 6): X's pdf and log2 pdf at the coupled index g (selected: no gather)
        px = xp0
        lx = xg0
        px = _select(g == 1, xp1, px)
        lx = _select(g == 1, xg1, lx)
        px = _select(g == 2, xp2, px)
        lx = _select(g == 2, xg2, lx)
        px = _select(g == 3, xp3, px)
        lx = _select(g == 3, xg3, lx)
        px = _select(g == 4, xp4, px)
        lx = _select(g == 4, xg4, lx)
        px = _select(g == 5, xp5, px)
        lx = _select(g == 5, xg5, lx)
        px = _select(g == 6, xp6, px)
        lx = _select(g == 6, xg6, lx)
        px = _select(g == 7, xp7, px)
        lx = _select(g == 7, xg7, lx)
        px = _select(g == 8, xp8, px)
        lx = _select(g == 8, xg8, lx)
        base = k1 * (fp6 * px)
        tl = (logk + fg6) + lx
        mm = w3[(P3_MASS + 6) * L + j]
        e6 = _select(mm == 0, 0.0, base * tl)
        cell = _select(mm == 0, 0.0, phi * mm + base)
        aa = abs(cell)
        h6 = (_select(aa != 0, log2(max(aa, TINY)), 0.0)) * cell
        g = w3[(P3_IDX + 7) * L + j]
        # row cell 7 (F index 7): X's pdf and log2 pdf at the coupled index g (selected: no gather)
        px = xp0
        lx = xg0
        px = _select(g == 1, xp1, px)
        lx = _select(g == 1, xg1, lx)
        px = _select(g == 2, xp2, px)
        lx = _select(g == 2, xg2, lx)
        px = _select(g == 3, xp3, px)
        lx = _select(g == 3, xg3, lx)
        px = _select(g == 4, xp4, px)
        lx = _select(g == 4, xg4, lx)
        px = _select(g == 5, xp5, px)
        lx = _select(g == 5, xg5, lx)
        px = _select(g == 6, xp6, px)
        lx = _select(g == 6, xg6, lx)
        px = _select(g == 7, xp7, px)
        lx = _select(g == 7, xg7, lx)
        px = _select(g == 8, xp8, px)
        lx = _select(g == 8, xg8, lx)
        base = k1 * (fp7 * px)
        tl = (logk + fg7) + lx
        mm = w3[(P3_MASS + 7) * L + j]
        e7 = _select(mm == 0, 0.0, base * tl)
        cell = _select(mm == 0, 0.0, phi * mm + base)
        aa = abs(cell)
        h7 = (_select(aa != 0, log2(max(aa, TINY)), 0.0)) * cell
        g = w3[(P3_IDX + 8) * L + j]
        # row cell 8 (F index 8): X's pdf and log2 pdf at the coupled index g (selected: no gather)
        px = xp0
        lx = xg0
        px = _select(g == 1, xp1, px)
        lx = _select(g == 1, xg1, lx)
        px = _select(g == 2, xp2, px)
        lx = _select(g == 2, xg2, lx)
        px = _select(g == 3, xp3, px)
        lx = _select(g == 3, xg3, lx)
        px = _select(g == 4, xp4, px)
        lx = _select(g == 4, xg4, lx)
        px = _select(g == 5, xp5, px)
        lx = _select(g == 5, xg5, lx)
        px = _select(g == 6, xp6, px)
        lx = _select(g == 6, xg6, lx)
        px = _select(g == 7, xp7, px)
        lx = _select(g == 7, xg7, lx)
        px = _select(g == 8, xp8, px)
        lx = _select(g == 8, xg8, lx)
        base = k1 * (fp8 * px)
        tl = (logk + fg8) + lx
        mm = w3[(P3_MASS + 8) * L + j]
        e8 = _select(mm == 0, 0.0, base * tl)
        cell = _select(mm == 0, 0.0, phi * mm + base)
        aa = abs(cell)
        h8 = (_select(aa != 0, log2(max(aa, TINY)), 0.0)) * cell
        g = w3[(P3_IDX + 9) * L + j]
        # column cell 9 (X index 0 in coupling order): F's pdf and log2 pdf at the counted index g
        pf = fp0
        lf = fg0
        pf = _select(g == 1, fp1, pf)
        lf = _select(g == 1, fg1, lf)
        pf = _select(g == 2, fp2, pf)
        lf = _select(g == 2, fg2, lf)
        pf = _select(g == 3, fp3, pf)
        lf = _select(g == 3, fg3, lf)
        pf = _select(g == 4, fp4, pf)
        lf = _select(g == 4, fg4, lf)
        pf = _select(g == 5, fp5, pf)
        lf = _select(g == 5, fg5, lf)
        pf = _select(g == 6, fp6, pf)
        lf = _select(g == 6, fg6, lf)
        pf = _select(g == 7, fp7, pf)
        lf = _select(g == 7, fg7, lf)
        pf = _select(g == 8, fp8, pf)
        lf = _select(g == 8, fg8, lf)
        xq = _select(pos, xp0, xp8)
        xlq = _select(pos, xg0, xg8)
        base = k1 * (pf * xq)
        tl = (logk + lf) + xlq
        mm = w3[(P3_MASS + 9) * L + j]
        e9 = _select(mm == 0, 0.0, base * tl)
        cell = _select(mm == 0, 0.0, phi * mm + base)
        aa = abs(cell)
        h9 = (_select(aa != 0, log2(max(aa, TINY)), 0.0)) * cell
        g = w3[(P3_IDX + 10) * L + j]
        # column cell 10 (X index 1 in coupling order): F's pdf and log2 pdf at the counted index g
        pf = fp0
        lf = fg0
        pf = _select(g == 1, fp1, pf)
        lf = _select(g == 1, fg1, lf)
        pf = _select(g == 2, fp2, pf)
        lf = _select(g == 2, fg2, lf)
        pf = _select(g == 3, fp3, pf)
        lf = _select(g == 3, fg3, lf)
        pf = _select(g == 4, fp4, pf)
        lf = _select(g == 4, fg4, lf)
        pf = _select(g == 5, fp5, pf)
        lf = _select(g == 5, fg5, lf)
        pf = _select(g == 6, fp6, pf)
        lf = _select(g == 6, fg6, lf)
        pf = _select(g == 7, fp7, pf)
        lf = _select(g == 7, fg7, lf)
        pf = _select(g == 8, fp8, pf)
        lf = _select(g == 8, fg8, lf)
        xq = _select(pos, xp1, xp7)
        xlq = _select(pos, xg1, xg7)
        base = k1 * (pf * xq)
        tl = (logk + lf) + xlq
        mm = w3[(P3_MASS + 10) * L + j]
        e10 = _select(mm == 0, 0.0, base * tl)
        cell = _select(mm == 0, 0.0, phi * mm + base)
        aa = abs(cell)
        h10 = (_select(aa != 0, log2(max(aa, TINY)), 0.0)) * cell
        g = w3[(P3_IDX + 11) * L + j]
        # column cell 11 (X index 2 in coupling order): F's pdf and log2 pdf at the counted index g
        pf = fp0
        lf = fg0
        pf = _select(g == 1, fp1, pf)
        lf = _select(g == 1, fg1, lf)
        pf = _select(g == 2, fp2, pf)
        lf = _select(g == 2, fg2, lf)
        pf = _select(g == 3, fp3, pf)
        lf = _select(g == 3, fg3, lf)
        pf = _select(g == 4, fp4, pf)
        lf = _select(g == 4, fg4, lf)
        pf = _select(g == 5, fp5, pf)
        lf = _select(g == 5, fg5, lf)
        pf = _select(g == 6, fp6, pf)
        lf = _select(g == 6, fg6, lf)
        pf = _select(g == 7, fp7, pf)
        lf = _select(g == 7, fg7, lf)
        pf = _select(g == 8, fp8, pf)
        lf = _select(g == 8, fg8, lf)
        xq = _select(pos, xp2, xp6)
        xlq = _select(pos, xg2, xg6)
        base = k1 * (pf * xq)
        tl = (logk + lf) + xlq
        mm = w3[(P3_MASS + 11) * L + j]
        e11 = _select(mm == 0, 0.0, base * tl)
        cell = _select(mm == 0, 0.0, phi * mm + base)
        aa = abs(cell)
        h11 = (_select(aa != 0, log2(max(aa, TINY)), 0.0)) * cell
        g = w3[(P3_IDX + 12) * L + j]
        # column cell 12 (X index 3 in coupling order): F's pdf and log2 pdf at the counted index g
        pf = fp0
        lf = fg0
        pf = _select(g == 1, fp1, pf)
        lf = _select(g == 1, fg1, lf)
        pf = _select(g == 2, fp2, pf)
        lf = _select(g == 2, fg2, lf)
        pf = _select(g == 3, fp3, pf)
        lf = _select(g == 3, fg3, lf)
        pf = _select(g == 4, fp4, pf)
        lf = _select(g == 4, fg4, lf)
        pf = _select(g == 5, fp5, pf)
        lf = _select(g == 5, fg5, lf)
        pf = _select(g == 6, fp6, pf)
        lf = _select(g == 6, fg6, lf)
        pf = _select(g == 7, fp7, pf)
        lf = _select(g == 7, fg7, lf)
        pf = _select(g == 8, fp8, pf)
        lf = _select(g == 8, fg8, lf)
        xq = _select(pos, xp3, xp5)
        xlq = _select(pos, xg3, xg5)
        base = k1 * (pf * xq)
        tl = (logk + lf) + xlq
        mm = w3[(P3_MASS + 12) * L + j]
        e12 = _select(mm == 0, 0.0, base * tl)
        cell = _select(mm == 0, 0.0, phi * mm + base)
        aa = abs(cell)
        h12 = (_select(aa != 0, log2(max(aa, TINY)), 0.0)) * cell
        g = w3[(P3_IDX + 13) * L + j]
        # column cell 13 (X index 4 in coupling order): F's pdf and log2 pdf at the counted index g
        pf = fp0
        lf = fg0
        pf = _select(g == 1, fp1, pf)
        lf = _select(g == 1, fg1, lf)
        pf = _select(g == 2, fp2, pf)
        lf = _select(g == 2, fg2, lf)
        pf = _select(g == 3, fp3, pf)
        lf = _select(g == 3, fg3, lf)
        pf = _select(g == 4, fp4, pf)
        lf = _select(g == 4, fg4, lf)
        pf = _select(g == 5, fp5, pf)
        lf = _select(g == 5, fg5, lf)
        pf = _select(g == 6, fp6, pf)
        lf = _select(g == 6, fg6, lf)
        pf = _select(g == 7, fp7, pf)
        lf = _select(g == 7, fg7, lf)
        pf = _select(g == 8, fp8, pf)
        lf = _select(g == 8, fg8, lf)
        xq = _select(pos, xp4, xp4)
        xlq = _select(pos, xg4, xg4)
        base = k1 * (pf * xq)
        tl = (logk + lf) + xlq
        mm = w3[(P3_MASS + 13) * L + j]
        e13 = _select(mm == 0, 0.0, base * tl)
        cell = _select(mm == 0, 0.0, phi * mm + base)
        aa = abs(cell)
        h13 = (_select(aa != 0, log2(max(aa, TINY)), 0.0)) * cell
        g = w3[(P3_IDX + 14) * L + j]
        # column cell 14 (X index 5 in coupling order): F's pdf and log2 pdf at the counted index g
        pf = fp0
        lf = fg0
        pf = _select(g == 1, fp1, pf)
        lf = _select(g == 1, fg1, lf)
        pf = _select(g == 2, fp2, pf)
        lf = _select(g == 2, fg2, lf)
        pf = _select(g == 3, fp3, pf)
        lf = _select(g == 3, fg3, lf)
        pf = _select(g == 4, fp4, pf)
        lf = _select(g == 4, fg4, lf)
        pf = _select(g == 5, fp5, pf)
        lf = _select(g == 5, fg5, lf)
        pf = _select(g == 6, fp6, pf)
        lf = _select(g == 6, fg6, lf)
        pf = _select(g == 7, fp7, pf)
        lf = _select(g == 7, fg7, lf)
        pf = _select(g == 8, fp8, pf)
        lf = _select(g == 8, fg8, lf)
        xq = _select(pos, xp5, xp3)
        xlq = _select(pos, xg5, xg3)
        base = k1 * (pf * xq)
        tl = (logk + lf) + xlq
        mm = w3[(P3_MASS + 14) * L + j]
        e14 = _select(mm == 0, 0.0, base * tl)
        cell = _select(mm == 0, 0.0, phi * mm + base)
        aa = abs(cell)
        h14 = (_select(aa != 0, log2(max(aa, TINY)), 0.0)) * cell
        g = w3[(P3_IDX + 15) * L + j]
        # column cell 15 (X index 6 in coupling order): F's pdf and log2 pdf at the counted index g
        pf = fp0
        lf = fg0
        pf = _select(g == 1, fp1, pf)
        lf = _select(g == 1, fg1, lf)
        pf = _select(g == 2, fp2, pf)
        lf = _select(g == 2, fg2, lf)
        pf = _select(g == 3, fp3, pf)
        lf = _select(g == 3, fg3, lf)
        pf = _select(g == 4, fp4, pf)
        lf = _select(g == 4, fg4, lf)
        pf = _select(g == 5, fp5, pf)
        lf = _select(g == 5, fg5, lf)
        pf = _select(g == 6, fp6, pf)
        lf = _select(g == 6, fg6, lf)
        pf = _select(g == 7, fp7, pf)
        lf = _select(g == 7, fg7, lf)
        pf = _select(g == 8, fp8, pf)
        lf = _select(g == 8, fg8, lf)
        xq = _select(pos, xp6, xp2)
        xlq = _select(pos, xg6, xg2)
        base = k1 * (pf * xq)
        tl = (logk + lf) + xlq
        mm = w3[(P3_MASS + 15) * L + j]
        e15 = _select(mm == 0, 0.0, base * tl)
        cell = _select(mm == 0, 0.0, phi * mm + base)
        aa = abs(cell)
        h15 = (_select(aa != 0, log2(max(aa, TINY)), 0.0)) * cell
        g = w3[(P3_IDX + 16) * L + j]
        # column cell 16 (X index 7 in coupling order): F's pdf and log2 pdf at the counted index g
        pf = fp0
        lf = fg0
        pf = _select(g == 1, fp1, pf)
        lf = _select(g == 1, fg1, lf)
        pf = _select(g == 2, fp2, pf)
        lf = _select(g == 2, fg2, lf)
        pf = _select(g == 3, fp3, pf)
        lf = _select(g == 3, fg3, lf)
        pf = _select(g == 4, fp4, pf)
        lf = _select(g == 4, fg4, lf)
        pf = _select(g == 5, fp5, pf)
        lf = _select(g == 5, fg5, lf)
        pf = _select(g == 6, fp6, pf)
        lf = _select(g == 6, fg6, lf)
        pf = _select(g == 7, fp7, pf)
        lf = _select(g == 7, fg7, lf)
        pf = _select(g == 8, fp8, pf)
        lf = _select(g == 8, fg8, lf)
        xq = _select(pos, xp7, xp1)
        xlq = _select(pos, xg7, xg1)
        base = k1 * (pf * xq)
        tl = (logk + lf) + xlq
        mm = w3[(P3_MASS + 16) * L + j]
        e16 = _select(mm == 0, 0.0, base * tl)
        cell = _select(mm == 0, 0.0, phi * mm + base)
        aa = abs(cell)
        h16 = (_select(aa != 0, log2(max(aa, TINY)), 0.0)) * cell
        g = w3[(P3_IDX + 17) * L + j]
        # column cell 17 (X index 8 in coupling order): F's pdf and log2 pdf at the counted index g
        pf = fp0
        lf = fg0
        pf = _select(g == 1, fp1, pf)
        lf = _select(g == 1, fg1, lf)
        pf = _select(g == 2, fp2, pf)
        lf = _select(g == 2, fg2, lf)
        pf = _select(g == 3, fp3, pf)
        lf = _select(g == 3, fg3, lf)
        pf = _select(g == 4, fp4, pf)
        lf = _select(g == 4, fg4, lf)
        pf = _select(g == 5, fp5, pf)
        lf = _select(g == 5, fg5, lf)
        pf = _select(g == 6, fp6, pf)
        lf = _select(g == 6, fg6, lf)
        pf = _select(g == 7, fp7, pf)
        lf = _select(g == 7, fg7, lf)
        pf = _select(g == 8, fp8, pf)
        lf = _select(g == 8, fg8, lf)
        xq = _select(pos, xp8, xp0)
        xlq = _select(pos, xg8, xg0)
        base = k1 * (pf * xq)
        tl = (logk + lf) + xlq
        mm = w3[(P3_MASS + 17) * L + j]
        e17 = _select(mm == 0, 0.0, base * tl)
        cell = _select(mm == 0, 0.0, phi * mm + base)
        aa = abs(cell)
        h17 = (_select(aa != 0, log2(max(aa, TINY)), 0.0)) * cell
        s_lo = ((e0 + e8) + (e1 + e9)) + ((e2 + e10) + (e3 + e11))  # pairwise, as sb
        s_hi = ((e4 + e12) + (e5 + e13)) + ((e6 + e14) + (e7 + e15))
        hj = hprod + (((s_lo + s_hi) + e16) + e17)
        s_lo = ((h0 + h8) + (h1 + h9)) + ((h2 + h10) + (h3 + h11))
        s_hi = ((h4 + h12) + (h5 + h13)) + ((h6 + h14) + (h7 + h15))
        hj = hj - (((s_lo + s_hi) + h16) + h17)
        hs = xh + fh
        mi = hs - hj
        v = _select(mi == 0, 0.0, 2 * mi / hs)
        val[j] = _select(same[j], 1.0, v)


@njit(cache=True, nogil=True, error_model="numpy")
def _row(ff, fa, fb, w, r):
    """Σ over the windows of row r of FMI(A,F) + FMI(B,F), positions added in order (A then B at each).

    A block where most windows are identical in X and F (flat regions of edge maps) goes through the
    one-window kernel, which skips those windows (they score 1); the values are the same either way.
    """
    cols = ff.shape[1] - w + 1
    l = w * w
    L = LANES
    # per-side buffers, flat (``_side3_lanes``'s layout for any l): pdf, cdf, centred pdf, log2 pdf
    # (l rows of L lanes each), then the scalars sd, ss, h, total, Σ cdf; f side, then one source
    # side (reused for A and B)
    nrow = 4 * l + 5
    fo = np.empty(nrow * L)
    xo = np.empty(nrow * L)
    fwin = np.empty((l, L))
    w3 = np.empty(P3_ROWS * L)  # _pair3_lanes' scratch (w = 3)
    xwin = np.empty((l, L))
    scratch = np.empty((l, L))
    xcu = np.empty((l, L))
    ci = np.empty((2 * l, L), dtype=np.int64)
    cj = np.empty((2 * l, L), dtype=np.int64)
    cnt = np.empty((2, L), dtype=np.int64)
    nfx = np.empty((l, L), dtype=np.int64)
    xqq = np.empty((6, l, L))  # scratch of the cells' terms (_pair_lanes)
    btl = np.empty((2, 2 * l, L))
    same = np.empty((2, L), dtype=np.bool_)
    mass = np.empty((2 * l, L))
    buf = np.empty((4 * l, L))
    r8 = np.empty((8, L))
    s = np.empty((24, L))  # per-lane scalars
    vals = np.empty((2, L))
    acc = 0.0
    fp, fc, ft, flog = (fo[0:l * L].reshape((l, L)), fo[l * L:2 * l * L].reshape((l, L)),
                        fo[2 * l * L:3 * l * L].reshape((l, L)), fo[3 * l * L:4 * l * L].reshape((l, L)))
    xp, xc, xt, xlog = (xo[0:l * L].reshape((l, L)), xo[l * L:2 * l * L].reshape((l, L)),
                        xo[2 * l * L:3 * l * L].reshape((l, L)), xo[3 * l * L:4 * l * L].reshape((l, L)))
    fsc = fo[4 * l * L:].reshape((5, L))  # sd, ss, h, total, Σ cdf
    xsc = xo[4 * l * L:].reshape((5, L))
    fsd, fss, fh, ftot, fcs = fsc[0], fsc[1], fsc[2], fsc[3], fsc[4]
    xsd, xss, xh, xtot, xcs = xsc[0], xsc[1], xsc[2], xsc[3], xsc[4]
    for c0 in range(0, cols, L):
        nb = min(L, cols - c0)
        _gather_lanes(ff, r, c0, w, nb, fwin)
        n_same = 0
        for src in range(2):
            _gather_lanes(fa if src == 0 else fb, r, c0, w, nb, xwin)
            sm = same[src]
            for j in range(nb):
                sm[j] = True
            for k in range(l):
                for j in range(nb):
                    sm[j] = sm[j] and xwin[k, j] == fwin[k, j]
            for j in range(nb):
                n_same += 1 if sm[j] else 0
        if n_same == 2 * nb:  # every pair identical: 1 each, added in order
            for j in range(2 * nb):
                acc += 1.0
            continue
        if 20 * n_same > 9 * (2 * nb):  # over 45 % of the pairs identical: one window at a time
            acc = windows_scalar(ff, fa, fb, w, r, c0, nb, acc)
            continue
        have_f = False
        for src in range(2):
            _gather_lanes(fa if src == 0 else fb, r, c0, w, nb, xwin)
            sm = same[src]
            if not have_f:
                if w == 3:
                    _side3_lanes(fwin, nb, fo)
                else:
                    _side_lanes(fwin, w, l, nb, fp, fc, ft, flog, scratch, s[0], s[1], s[2], fsd, fss, fh, ftot,
                                fcs, s[8], r8)
                have_f = True
            if w == 3:
                _side3_lanes(xwin, nb, xo)
            else:
                _side_lanes(xwin, w, l, nb, xp, xc, xt, xlog, scratch, s[0], s[1], s[2], xsd, xss, xh, xtot,
                            xcs, s[8], r8)
            if w == 3:
                _pair3_lanes(fo, xo, nb, w3, sm, vals[src])
                continue
            _pair_lanes(xwin, fwin, xp, xc, xt, xlog, xsd, xss, xh, xtot, xcs,
                        fp, fc, ft, flog, fsd, fss, fh, ftot, fcs, l, nb, xcu, ci, cj, mass, buf,
                        s[14], s[15], s[16], s[17], s[18], s[19], s[20], r8, cnt[0], nfx, sm, vals[src],
                        xqq[0], xqq[1], xqq[2], xqq[3], xqq[4], xqq[5], btl[0], btl[1])
        for j in range(nb):
            acc += vals[0, j]
            acc += vals[1, j]
    return acc


@njit(cache=True, nogil=True, error_model="numpy")
def row_sums_serial(ff, fa, fb, w):
    """Per-row sums of FMI(A,F) + FMI(B,F) (as ``_fmi_kernel._fmi_row_sums``), one thread, GIL released."""
    rows = ff.shape[0] - w + 1
    out = np.zeros(rows)
    for r in range(rows):
        out[r] = _row(ff, fa, fb, w, r)
    return out


@njit(cache=True, parallel=True, error_model="numpy")
def row_sums_parallel(ff, fa, fb, w):
    """The same, rows shared between numba's threads."""
    rows = ff.shape[0] - w + 1
    out = np.zeros(rows)
    for r in prange(rows):
        # prange's index is unsigned inside the parallel loop: as int64, ``_row`` (and what it calls, over a
        # minute of cold compilation) is compiled for one index type, the one ``row_sums_serial`` uses
        out[r] = _row(ff, fa, fb, w, np.int64(r))
    return out


def _read_only(x: np.ndarray) -> np.ndarray:
    """A read-only float64 C-contiguous view (or copy) of ``x``: the kernels see one array type.

    numba compiles a kernel once per argument type, and a read-only array is another type than a writable
    one (the FMI presets pass both: prepared images are read-only, features are new arrays); one type halves
    the cold compilation of this module (over 25 s of CPU).
    """
    view = np.ascontiguousarray(x, dtype=np.float64).view()
    view.flags.writeable = False
    return view


def fmi_mean(ff: np.ndarray, fa: np.ndarray, fb: np.ndarray, w: int) -> float:
    """Mean of FMI(A,F) and FMI(B,F) over all w×w windows of three feature images (float64).

    Computed by this module's lanes kernel (many windows at a time; bit-for-bit
    ``_fmi_kernel``'s one-window kernel): serial and GIL-free inside ``evaluate``'s pool or with one
    numba thread, else rows shared between numba's threads.
    """
    arrays = [_read_only(x) for x in (ff, fa, fb)]
    if inside_pool() or numba.get_num_threads() == 1:
        sums = row_sums_serial(*arrays, w)
    else:
        with PARALLEL_LOCK:
            sums = row_sums_parallel(*arrays, w)
    rows, cols = ff.shape[0] - w + 1, ff.shape[1] - w + 1
    return float(sums.sum()) / (2 * rows * cols)
