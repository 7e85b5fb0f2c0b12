"""The compiled one-map INSML and WLE of :mod:`methods._neural_p` and their padding (numba, no fast-math,
cached on disk), described there.

At module level, imported on first use (:func:`methods._neural_p._insml_plane_kernel`,
:func:`~methods._neural_p._wle_plane_kernel`), so that numba's disk cache finds them again in a new
process: built inside factories, the plane kernels captured the padding kernel as a closure variable and
missed the cache in every process (see :mod:`methods._pcnn_kernels`).
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def pad(src, dst, repeat_edge):  # pragma: no cover
    rows, cols = src.shape
    dst[1:rows + 1, 1:cols + 1] = src
    top, bottom = (0, rows - 1) if repeat_edge or rows == 1 else (1, rows - 2)
    left, right = (0, cols - 1) if repeat_edge or cols == 1 else (1, cols - 2)
    dst[0, 1:cols + 1] = src[top]
    dst[rows + 1, 1:cols + 1] = src[bottom]
    for r in range(rows + 2):
        dst[r, 0] = dst[r, left + 1]
        dst[r, cols + 1] = dst[r, right + 1]


@njit(cache=True, nogil=True)
def insml_plane(x, kernel, c, out):  # pragma: no cover
    rows, cols = x.shape
    xp = np.empty((rows + 2, cols + 2))
    tp = np.empty((rows + 2, cols + 2))
    pad(x, xp, True)
    for y in range(rows):
        u, m, d = xp[y], xp[y + 1], xp[y + 2]
        ul, uc, ur = u[0:cols], u[1:cols + 1], u[2:cols + 2]
        ml, mc, mr = m[0:cols], m[1:cols + 1], m[2:cols + 2]
        dl, dc, dr = d[0:cols], d[1:cols + 1], d[2:cols + 2]
        t_row = tp[y + 1, 1:cols + 1]
        for j in range(cols):
            v = mc[j]
            t = abs(v - uc[j])
            t += abs(v - dc[j])
            t += abs(v - ml[j])
            t += abs(v - mr[j])
            t += c * abs(v - ul[j])
            t += c * abs(v - dr[j])
            t += c * abs(v - dl[j])
            t += c * abs(v - ur[j])
            t_row[j] = t
    # symmetric pad of temp (its edge rows/columns are computed above)
    tp[0, 1:cols + 1] = tp[1, 1:cols + 1]
    tp[rows + 1, 1:cols + 1] = tp[rows, 1:cols + 1]
    for r in range(rows + 2):
        tp[r, 0] = tp[r, 1]
        tp[r, cols + 1] = tp[r, cols]
    cp = np.empty((rows + 2, cols + 2))
    for y in range(rows):
        u, m, d = tp[y], tp[y + 1], tp[y + 2]
        u0, m0, d0 = u[0:cols], m[0:cols], d[0:cols]
        u1, m1, d1 = u[1:cols + 1], m[1:cols + 1], d[1:cols + 1]
        u2, m2, d2 = u[2:cols + 2], m[2:cols + 2], d[2:cols + 2]
        c_row = cp[y + 1, 1:cols + 1]
        for j in range(cols):
            acc = 0.0                    # column-major: columns outer, rows inner
            acc += u0[j]
            acc += m0[j]
            acc += d0[j]
            acc += u1[j]
            acc += m1[j]
            acc += d1[j]
            acc += u2[j]
            acc += m2[j]
            acc += d2[j]
            c_row[j] = np.sqrt(acc / 9.0)
    cp[0, 1:cols + 1] = cp[1, 1:cols + 1]
    cp[rows + 1, 1:cols + 1] = cp[rows, 1:cols + 1]
    for r in range(rows + 2):
        cp[r, 0] = cp[r, 1]
        cp[r, cols + 1] = cp[r, cols]
    k00, k10, k20 = kernel[0, 0], kernel[1, 0], kernel[2, 0]
    k01, k11, k21 = kernel[0, 1], kernel[1, 1], kernel[2, 1]
    k02, k12, k22 = kernel[0, 2], kernel[1, 2], kernel[2, 2]
    for y in range(rows):
        # Octave dconv2i: kernel columns j, then rows i; tap (i, j) reads pixel (y + 1 − i, x + 1 − j)
        u, m, d = cp[y], cp[y + 1], cp[y + 2]
        u0, m0, d0 = u[0:cols], m[0:cols], d[0:cols]
        u1, m1, d1 = u[1:cols + 1], m[1:cols + 1], d[1:cols + 1]
        u2, m2, d2 = u[2:cols + 2], m[2:cols + 2], d[2:cols + 2]
        o = out[y]
        for j in range(cols):
            acc = 0.0
            acc += k00 * d2[j]
            acc += k10 * m2[j]
            acc += k20 * u2[j]
            acc += k01 * d1[j]
            acc += k11 * m1[j]
            acc += k21 * u1[j]
            acc += k02 * d0[j]
            acc += k12 * m0[j]
            acc += k22 * u0[j]
            o[j] = acc
    return out


@njit(cache=True, nogil=True)
def wle_plane(x, kernel, out):  # pragma: no cover
    rows, cols = x.shape
    xp = np.empty((rows + 2, cols + 2))
    pad(x, xp, False)
    k00, k10, k20 = kernel[0, 0], kernel[1, 0], kernel[2, 0]
    k01, k11, k21 = kernel[0, 1], kernel[1, 1], kernel[2, 1]
    k02, k12, k22 = kernel[0, 2], kernel[1, 2], kernel[2, 2]
    for y in range(rows):
        # Octave dconv2i: kernel columns j, then rows i; tap (i, j) reads pixel (y + 1 − i, x + 1 − j)
        u, m, d = xp[y], xp[y + 1], xp[y + 2]
        u0, m0, d0 = u[0:cols], m[0:cols], d[0:cols]
        u1, m1, d1 = u[1:cols + 1], m[1:cols + 1], d[1:cols + 1]
        u2, m2, d2 = u[2:cols + 2], m[2:cols + 2], d[2:cols + 2]
        o = out[y]
        for j in range(cols):
            acc = 0.0
            v = d2[j]
            acc += k00 * (v * v)
            v = m2[j]
            acc += k10 * (v * v)
            v = u2[j]
            acc += k20 * (v * v)
            v = d1[j]
            acc += k01 * (v * v)
            v = m1[j]
            acc += k11 * (v * v)
            v = u1[j]
            acc += k21 * (v * v)
            v = d0[j]
            acc += k02 * (v * v)
            v = m0[j]
            acc += k12 * (v * v)
            v = u0[j]
            acc += k22 * (v * v)
            o[j] = acc
    return out


@njit(cache=True, nogil=True)
def cnp_plane(s, iterations, theta0, h, dr, dc, wt, block, counts):  # pragma: no cover
    """The CNP neuron model on one map (:func:`methods._neural_p.cnp_firing_counts`), counts added into ``counts``.

    Parts of rows at a local fixed point are not recomputed.  The map is cut into segments of ``block``
    columns (``block`` ≥ ``h``; ``block`` ≤ 0 turns this off).  If every neuron of rows ``y − h .. y + h`` in segments ``b − 1 .. b + 1``
    fired in each of the previous two iterations, every neuron of segment ``b`` of row ``y`` sees the same
    link input ``work`` as in the previous iteration (the same firing pattern over its whole 7×7 window,
    added in the same order), hence the same F = S + work, L = work and θ = 1, and fires again: its F and
    L are left as they are, its output (the map of two iterations ago) already holds ones, and its counts
    add one.  Every value is the one the full computation gives (the numpy reference's), bit for bit.
    """
    rows, cols = s.shape
    skip = block > 0  # block ≤ 0: every segment computed at every iteration (for the tests)
    if not skip:
        block = max(cols, 1)
    nb = (cols + block - 1) // block
    cur = np.zeros((rows + 2 * h, cols + 2 * h))  # zero-padded output map p (0.0 / 1.0)
    nxt = np.zeros((rows + 2 * h, cols + 2 * h))
    f = np.zeros((rows, cols))
    link = np.zeros((rows, cols))
    # θ is θ0 until the first firing and 1 ever after, i.e. 1 exactly where counts > 0 (counts start
    # at 0): not stored (8 B a pixel less to stream per iteration, ~4 % at 1024²)
    work = np.empty(cols)
    # segment (row, block) fired whole in the iteration before the previous one / the previous one / this one
    full_prev = np.zeros((rows, nb), np.bool_)
    full_cur = np.zeros((rows, nb), np.bool_)
    full_new = np.zeros((rows, nb), np.bool_)
    settled = np.zeros((rows + 1, nb), np.int64)  # prefix counts over rows of segments full in both
    previous_all = False
    for it in range(iterations):
        any_settled = False
        for r in range(rows if skip else 0):
            for b in range(nb):
                both = full_prev[r, b] and full_cur[r, b]
                settled[r + 1, b] = settled[r, b] + (1 if both else 0)
                any_settled = any_settled or both
        every = True  # did every neuron fire in this iteration?
        for y in range(rows):
            r0, r1 = max(0, y - h), min(rows, y + h + 1)
            centre = cur[h + y]
            dst = nxt[h + y]
            crow = counts[y]
            srow, frow, lrow = s[y], f[y], link[y]
            for b in range(nb):
                x0, x1 = b * block, min(cols, (b + 1) * block)
                if any_settled:
                    quiet = True
                    for q in range(max(0, b - 1), min(nb, b + 2)):
                        quiet = quiet and settled[r1, q] - settled[r0, q] == r1 - r0
                    if quiet:
                        # local fixed point: same work, F, L and θ as last time, fires again (docstring)
                        for x in range(x0, x1):
                            crow[x] += 1
                        full_new[y, b] = True
                        continue
                n = x1 - x0
                wseg = work[x0:x1]
                wseg[:] = 0.0
                for k in range(wt.shape[0]):
                    src = cur[h + y + dr[k], h + dc[k] + x0:h + dc[k] + x1]
                    w = wt[k]
                    for x in range(n):
                        wseg[x] += src[x] * w
                seg_all = True
                for x in range(x0, x1):
                    wk = work[x]
                    if centre[h + x] != 0.0:   # fired: F ← S + work, L ← work, θ ← 1
                        fv = (0.0 + srow[x]) + wk
                        lv = 0.0 + wk
                    else:
                        fv = (frow[x] + srow[x]) + wk
                        lv = lrow[x] + wk
                    th = 1.0 if crow[x] > 0 else theta0
                    frow[x] = fv
                    lrow[x] = lv
                    fired = fv * (1.0 + lv) >= th
                    dst[h + x] = 1.0 if fired else 0.0
                    crow[x] += fired
                    seg_all = seg_all and fired
                full_new[y, b] = seg_all
                every = every and seg_all
        cur, nxt = nxt, cur
        full_prev, full_cur, full_new = full_cur, full_new, full_prev
        if every and previous_all:
            # all fired twice in a row: the next step sees the same input (p all 1, θ = 1, F and L
            # restarted from S and the same work), so every later step fires everywhere too
            counts += iterations - 1 - it
            break
        previous_all = every
    return counts
