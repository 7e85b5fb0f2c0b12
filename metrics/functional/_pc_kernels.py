"""Compiled per-orientation accumulation of Kovesi's ``phasecong3`` (used by Qp).

For one orientation, the complex log-Gabor responses of all scales (single
precision, from the FFT) are turned into phase-congruency energy, the
frequency-spread weight and the orientation's contribution to the PC and
covariance accumulators.  Array programming takes ~20 float64 passes over the
(images × scales × pixels) data for this; here two compiled passes (energy and
exponent; weight and accumulation) around one numpy ``exp``, row-vectorised, in
float64 with the same formulas, the same operation order and the same order
of the sums over scales as numpy's axis-0 reductions.  The amplitudes follow
numpy's SIMD complex64 ``absolute`` (max·sqrt(1 + (min/max)²) with the square
fused; bit-identical to ``np.abs`` on this AVX-512 build, within an ulp of
single precision on builds that take another path), and the weight's
exponential is numpy's, so the maps equal the numpy chain's.
``masked_corr_sum`` fuses the per-pixel scores of Qp's masked correlation.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def apply_bank(spec, bank, out):
    """out[k, s] = spec[k] · bank[s]: n image spectra times one orientation's real filters, in complex64.

    ``spec`` (n, H, W) and ``out`` (n, ns, H, W) complex64 viewed as float32 (…, 2W), ``bank`` (ns, H, W)
    float32.  The products are numpy's ``spec[:, None] * bank`` bit for bit: numpy promotes the real
    filter to complex (imaginary part 0) and multiplies, (a + ib)(g + i0) = (ag − b·0) + i(a·0 + bg),
    which keeps the signs of zeros; the same expressions are written here (no fused multiply-add:
    numba does not contract).  One pass instead of numpy's promote-then-multiply, ~3× faster.
    """
    n, H, W2 = spec.shape
    z = np.float32(0.0)
    for k in range(n):
        for s in range(bank.shape[0]):
            for i in range(H):
                x = spec[k, i]
                g = bank[s, i]
                o = out[k, s, i]
                for j in range(W2 // 2):
                    a = x[2 * j]
                    b = x[2 * j + 1]
                    c = g[j]
                    o[2 * j] = a * c - b * z
                    o[2 * j + 1] = a * z + b * c


@njit(cache=True, nogil=True)
def _cabs(re, im):
    """|re + i·im| in float32 as numpy's SIMD complex64 ``absolute``: max·sqrt(1 + (min/max)²), the square fused."""
    re = abs(re)
    im = abs(im)
    larger = max(re, im)
    if larger == np.float32(0.0):
        return np.float32(0.0)
    ratio = min(re, im) / larger
    r = np.float64(ratio)
    return larger * np.sqrt(np.float32(r * r + 1.0))


@njit(cache=True, nogil=True, error_model="numpy")
def orientation_energy(EO, eps, cutoff, g_sharp, an0_out, sum_an_out, energy_out, arg_out):
    """First half of one orientation: amplitudes, energy and the weight's exponent.

    EO: the (n, nscale, H, W) complex64 filter responses of n images, viewed as
    float32 (n, nscale, H, 2W) (interleaved real, imaginary).  Writes the
    smallest scale's amplitudes (float32, for the noise median) and (n, H, W)
    float64 maps: Σ_s An, the energy before the noise threshold and
    (cutoff − width)·g, whose exponential numpy then takes in one vectorised pass.
    Works one image row at a time so that the loops over the row vectorise.
    """
    n, ns, H, W2 = EO.shape
    W = W2 // 2
    # x / ns = x · (1/ns) exactly when ns is a power of two (both round the same real number): one
    # division less per pixel (~15 % of this kernel)
    pow2 = (ns & (ns - 1)) == 0
    inv_ns = 1.0 / ns
    se = np.empty(W)
    so = np.empty(W)
    mx = np.empty(W)
    me = np.empty(W)
    mo = np.empty(W)
    for k in range(n):
        for i in range(H):
            san = sum_an_out[k, i]
            a0 = an0_out[k, i]
            for s in range(ns):
                v = EO[k, s, i]
                if s == 0:
                    for j in range(W):
                        a = _cabs(v[2 * j], v[2 * j + 1])
                        a0[j] = a
                        an = np.float64(a)
                        san[j] = an
                        se[j] = np.float64(v[2 * j])
                        so[j] = np.float64(v[2 * j + 1])
                        mx[j] = an
                else:
                    for j in range(W):
                        an = np.float64(_cabs(v[2 * j], v[2 * j + 1]))
                        san[j] += an
                        se[j] += np.float64(v[2 * j])
                        so[j] += np.float64(v[2 * j + 1])
                        mx[j] = max(mx[j], an)
            en = energy_out[k, i]
            for j in range(W):
                xe = math.sqrt(se[j] * se[j] + so[j] * so[j]) + eps
                me[j] = se[j] / xe
                mo[j] = so[j] / xe
                en[j] = 0.0
            for s in range(ns):
                v = EO[k, s, i]
                for j in range(W):
                    e = np.float64(v[2 * j])
                    o = np.float64(v[2 * j + 1])
                    en[j] += e * me[j] + o * mo[j] - abs(e * mo[j] - o * me[j])
            ao = arg_out[k, i]
            if pow2:
                for j in range(W):
                    ao[j] = (cutoff - san[j] / (mx[j] + eps) * inv_ns) * g_sharp
            else:
                for j in range(W):
                    ao[j] = (cutoff - san[j] / (mx[j] + eps) / ns) * g_sharp


@njit(cache=True, nogil=True, error_model="numpy")
def orientation_accumulate(sum_an, energy, expo, T, cos_a, sin_a, tot_energy, tot_sum_an, covx2, covy2, covxy):
    """Second half: noise threshold, weight 1/(1+exp(·)) and the updates of the five (n, H, W) accumulators."""
    for k in range(sum_an.shape[0]):
        t_k = T[k]
        a = sum_an[k].ravel()
        en = energy[k].ravel()
        ex = expo[k].ravel()
        te = tot_energy[k].ravel()
        ta = tot_sum_an[k].ravel()
        cx2 = covx2[k].ravel()
        cy2 = covy2[k].ravel()
        cxy = covxy[k].ravel()
        for j in range(a.shape[0]):
            weight = 1.0 / (1 + ex[j])
            ta[j] += a[j]
            we = weight * max(en[j] - t_k, 0.0)
            te[j] += we
            pc_o = we / a[j]  # inf/nan where the amplitude sum is 0, as numpy (error_model="numpy")
            cx = pc_o * cos_a
            cy = pc_o * sin_a
            cx2[j] += cx * cx
            cy2[j] += cy * cy
            cxy[j] += cx * cy


@njit(cache=True, nogil=True, error_model="numpy")
def masked_corr_sum(S, r0, m1, m2, m3, C, total):
    """``total`` + Σ max(r1, r2, r3) of ``_masked_corr`` over the rows of the masks (h, W).

    S (11, H', W) holds the 11 filtered maps; mask row i pairs with S row ``r0 + i`` (a band of
    rows: the sum runs in row-major order, so bands in order give the whole image's sum exactly).
    r_k = (σ_kf + C) / (sqrt|σ_k² σ_f²| + C) where mask k holds, else 0.
    """
    H, W = m1.shape
    for i0 in range(H):
        i = r0 + i0
        for j in range(W):
            mu1 = S[0, i, j]
            mu2 = S[1, i, j]
            mum = S[2, i, j]
            muf = S[3, i, j]
            sf = S[7, i, j] - muf * muf
            r1 = 0.0
            r2 = 0.0
            r3 = 0.0
            if m1[i0, j]:
                s1 = S[4, i, j] - mu1 * mu1
                r1 = (S[8, i, j] - mu1 * muf + C) / (math.sqrt(abs(s1 * sf)) + C)
            if m2[i0, j]:
                s2 = S[5, i, j] - mu2 * mu2
                r2 = (S[9, i, j] - mu2 * muf + C) / (math.sqrt(abs(s2 * sf)) + C)
            if m3[i0, j]:
                sm = S[6, i, j] - mum * mum
                r3 = (S[10, i, j] - mum * muf + C) / (math.sqrt(abs(sm * sf)) + C)
            total += max(max(r1, r2), r3)
    return total


@njit(cache=True, nogil=True)
def finish(tot_energy, tot_sum_an, covx2, covy2, covxy, norient, eps, pc, M, m):
    """PC = Σ energy / (Σ An + ε) and the moments M, m from the covariance accumulators (numpy's order)."""
    te, ta = tot_energy.ravel(), tot_sum_an.ravel()
    a, b, c = covx2.ravel(), covy2.ravel(), covxy.ravel()
    p, big, small = pc.ravel(), M.ravel(), m.ravel()
    half = norient / 2
    for j in range(te.shape[0]):
        p[j] = te[j] / (ta[j] + eps)
        x2 = a[j] / half
        y2 = b[j] / half
        xy = c[j] / norient
        d = x2 - y2
        denom = math.sqrt(xy * xy + d * d) + eps
        big[j] = (y2 + x2 + denom) / 2
        small[j] = (y2 + x2 - denom) / 2
