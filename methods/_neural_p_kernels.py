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
