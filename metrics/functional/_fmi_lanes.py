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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True, error_model="numpy")
def _row(ff, fa, fb, w, r):
    """Σ over the windows of row r of FMI(A,F) + FMI(B,F), positions added in order (A then B at each).

    A block where most windows are identical in X and F (flat regions of edge maps) goes through the
    one-window kernel, which skips those windows (they score 1); the values are the same either way.
    """
    cols = ff.shape[1] - w + 1
    l = w * w
    L = LANES
    # per-window vectors (l, L): f side, then one source side (reused for A and B)
    fv = np.empty((5, l, L))
    xv = np.empty((5, l, L))
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
    fwin, fp, fc, ft, flog = fv[0], fv[1], fv[2], fv[3], fv[4]
    xwin, xp, xc, xt, xlog = xv[0], xv[1], xv[2], xv[3], xv[4]
    fsd, fss, fh, ftot, fcs = s[3], s[4], s[5], s[6], s[7]
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
                _side_lanes(fwin, w, l, nb, fp, fc, ft, flog, scratch, s[0], s[1], s[2], fsd, fss, fh, ftot,
                            fcs, s[8], r8)
                have_f = True
            _side_lanes(xwin, w, l, nb, xp, xc, xt, xlog, scratch, s[0], s[1], s[2], s[9], s[10], s[11], s[12],
                        s[13], s[8], r8)
            _pair_lanes(xwin, fwin, xp, xc, xt, xlog, s[9], s[10], s[11], s[12], s[13],
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
        out[r] = _row(ff, fa, fb, w, r)
    return out


def fmi_mean(ff: np.ndarray, fa: np.ndarray, fb: np.ndarray, w: int) -> float:
    """Mean of FMI(A,F) and FMI(B,F) over all w×w windows of three feature images (float64).

    Computed by this module's lanes kernel (many windows at a time; bit-for-bit
    ``_fmi_kernel``'s one-window kernel): serial and GIL-free inside ``evaluate``'s pool or with one
    numba thread, else rows shared between numba's threads.
    """
    arrays = [np.ascontiguousarray(x, dtype=np.float64) for x in (ff, fa, fb)]
    if inside_pool() or numba.get_num_threads() == 1:
        sums = row_sums_serial(*arrays, w)
    else:
        with PARALLEL_LOCK:
            sums = row_sums_parallel(*arrays, w)
    rows, cols = ff.shape[0] - w + 1, ff.shape[1] - w + 1
    return float(sums.sum()) / (2 * rows * cols)
