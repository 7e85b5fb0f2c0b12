"""The compiled block solver of :mod:`methods._small_eig` (numba, cached on disk), described there.

At module level, imported on first use by :func:`methods._small_eig._kernel`, so that numba's disk cache
finds it again in a new process: built inside a factory, the solver captured the QR step (another compiled
function) as a closure variable and was compiled again by every process (5 s of CPU per fresh worker;
see :mod:`methods._pcnn_kernels`).  The constants are compile-time constants of the kernel; they are
defined here, where numba's cache sees their changes, and :mod:`methods._small_eig` re-exports them.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

N = 16  #: matrix size
MAX_SWEEPS = 60  #: QR sweeps allowed per eigenvalue before it is accepted as is (never reached in tests)
n, max_sweeps = N, MAX_SWEEPS
eps = float(np.finfo(np.float64).eps)


@njit(inline="always", error_model="numpy")
def qr_step(jf, st, mm, sig, dj, bb, alpha, ep, g, p, c, s):  # pragma: no cover
    """One root-free implicit-QR step of one lane (Pal–Walker–Kahan, LAPACK ``dsterf``'s QR branch; numba,
    inlined into the solver; see :mod:`methods._small_eig`, step 3).

    Position j of the lane's tridiagonal: diagonal d_j (used at the block's first step), squared coupling
    bb = e²_j, next diagonal alpha = d_{j+1}, the previous squared coupling ep, and the state (γ, p, c, s)
    the previous step handed on; the lane's unreduced block [st, mm] and shift sig.  Returns the new
    (e²_{j−1}, d_j, e²_j, d_{j+1}) and the state for step j + 1.  Outside the block every value is returned
    unchanged (the state is then not used).  No square root: c and s are the squared cosine and sine.
    """
    first = jf == st
    inside = (jf >= st) & (jf < mm)
    g0 = dj - sig if first else g
    p0 = g0 * g0 if first else p
    c0 = 1.0 if first else c
    s0 = 0.0 if first else s
    r = p0 + bb
    inv = 1.0 / r
    cn = p0 * inv
    sn = bb * inv
    gn = cn * (alpha - sig) - sn * g0
    pn = gn * gn / cn if cn != 0.0 else c0 * bb
    last = inside & (jf + 1.0 == mm)
    return (s0 * r if inside & (jf > st) else ep, g0 + (alpha - gn) if inside else dj,
            sn * pn if last else bb, sig + gn if last else alpha, gn, pn, cn, sn)


@njit(cache=True, nogil=True, error_model="numpy")
def solve(rows, index, norms, eigs, want_eigs, nl):  # pragma: no cover
    """For every ``p`` in ``index``: eigenvalues of MᵀM, M = rows[p].reshape(16, 16), into norms / eigs."""
    count = index.shape[0]
    a = np.zeros((n * n, nl))  # a[r·16 + i]: M[r, i] of every lane
    g = np.zeros((n * n, nl))  # g[i·16 + j]: G[i, j], symmetric, full storage
    v = np.zeros((n, nl))
    pv = np.zeros((n, nl))
    d = np.zeros((n, nl))
    e = np.zeros((n + 1, nl))  # e[j] couples j and j + 1
    aux = np.zeros((11, nl))
    acc, tau, scal, mu, start, power, mq = aux[0], aux[1], aux[2], aux[3], aux[4], aux[5], aux[6]
    gam, pw, cw, sw = aux[7], aux[8], aux[9], aux[10]  # the root-free step's state: γ, p, c, s
    bottom = np.zeros(nl, np.int64)
    sweeps = np.zeros(nl, np.int64)
    for b0 in range(0, count, nl):
        used = min(nl, count - b0)
        for t0 in range(0, n * n, 8):  # transpose into the lanes 8 elements a matrix at a time (cache-friendly)
            for q in range(nl):
                if q < used:
                    src = rows[index[b0 + q]]
                    for t in range(t0, t0 + 8):
                        a[t, q] = src[t]
                else:
                    for t in range(t0, t0 + 8):
                        a[t, q] = 0.0
        # scale each matrix by a power of two (exact): the Gram and its squares stay far from under/overflow
        for q in range(nl):
            acc[q] = 0.0
        for t in range(n * n):
            at = a[t]
            for q in range(nl):
                mag = abs(at[q])
                acc[q] = mag if mag > acc[q] else acc[q]
        for q in range(nl):
            expo = math.frexp(acc[q])[1] if acc[q] > 0.0 else 0
            power[q] = math.ldexp(1.0, expo)
            tau[q] = math.ldexp(1.0, -expo)
        for t in range(n * n):
            at = a[t]
            for q in range(nl):
                at[q] = at[q] * tau[q]
        # 1. Gram matrix, rows summed in ascending order
        for i in range(n):
            for j in range(i + 1):
                gij = g[i * n + j]
                for q in range(nl):
                    gij[q] = 0.0
                for r in range(0, n, 4):  # four rows a pass over the lanes, added in ascending order
                    a0i, a0j, a1i, a1j = a[r * n + i], a[r * n + j], a[(r + 1) * n + i], a[(r + 1) * n + j]
                    a2i, a2j = a[(r + 2) * n + i], a[(r + 2) * n + j]
                    a3i, a3j = a[(r + 3) * n + i], a[(r + 3) * n + j]
                    for q in range(nl):
                        gij[q] = gij[q] + a0i[q] * a0j[q] + a1i[q] * a1j[q] + a2i[q] * a2j[q] + a3i[q] * a3j[q]
                gji = g[j * n + i]
                for q in range(nl):
                    gji[q] = gij[q]
        # 2. Householder tridiagonalisation (column k: reflect rows k+1..n-1)
        for k in range(n - 2):
            for q in range(nl):
                acc[q] = 0.0
            for i in range(k + 2, n):
                gik = g[i * n + k]
                for q in range(nl):
                    acc[q] += gik[q] * gik[q]
            x0r, dk, ek, v1 = g[(k + 1) * n + k], g[k * n + k], e[k], v[k + 1]
            diag = d[k]
            for q in range(nl):
                x0 = x0r[q]
                s2 = acc[q]
                norm = np.sqrt(x0 * x0 + s2)
                beta = -norm if x0 >= 0.0 else norm
                reflect = s2 > 0.0
                tau[q] = (beta - x0) / beta if reflect else 0.0
                scal[q] = 1.0 / (x0 - beta) if reflect else 0.0
                ek[q] = beta if reflect else x0
                diag[q] = dk[q]
                v1[q] = 1.0
            for i in range(k + 2, n):
                gik, vi = g[i * n + k], v[i]
                for q in range(nl):
                    vi[q] = gik[q] * scal[q]
            # p = τ·G₂₂·v
            for i in range(k + 1, n):
                pi = pv[i]
                for q in range(nl):
                    pi[q] = 0.0
                for j in range(k + 1, n):
                    gij, vj = g[i * n + j], v[j]
                    for q in range(nl):
                        pi[q] += gij[q] * vj[q]
                for q in range(nl):
                    pi[q] = tau[q] * pi[q]
            # w = p − (τ/2)(pᵀv)·v
            for q in range(nl):
                acc[q] = 0.0
            for i in range(k + 1, n):
                pi, vi = pv[i], v[i]
                for q in range(nl):
                    acc[q] += pi[q] * vi[q]
            for q in range(nl):
                acc[q] = -0.5 * tau[q] * acc[q]
            for i in range(k + 1, n):
                pi, vi = pv[i], v[i]
                for q in range(nl):
                    pi[q] = pi[q] + acc[q] * vi[q]
            # G₂₂ ← G₂₂ − v wᵀ − w vᵀ
            for i in range(k + 1, n):
                vi, wi = v[i], pv[i]
                for j in range(k + 1, i + 1):
                    gij, gji, vj, wj = g[i * n + j], g[j * n + i], v[j], pv[j]
                    for q in range(nl):
                        val = gij[q] - vi[q] * wj[q] - wi[q] * vj[q]
                        gij[q] = val
                        gji[q] = val
        for q in range(nl):
            d[n - 2, q] = g[(n - 2) * n + n - 2, q]
            d[n - 1, q] = g[(n - 1) * n + n - 1, q]
            e[n - 2, q] = g[(n - 1) * n + n - 2, q]
            e[n - 1, q] = 0.0
            e[n, q] = 0.0
        # 3. implicit QR steps with Wilkinson shift; lane q works on its unreduced block [start, mq]
        for j in range(n - 1):  # the root-free steps work on the squared couplings e²
            ej = e[j]
            for q in range(nl):
                ej[q] = ej[q] * ej[q]
        for q in range(nl):
            bottom[q] = n - 1
            sweeps[q] = 0
        top = n - 1
        while top > 0:
            for j in range(top):
                ej, dj, dj1 = e[j], d[j], d[j + 1]
                for q in range(nl):
                    bound = eps * (abs(dj[q]) + abs(dj1[q]))  # |e| ≤ ε(|d_j| + |d_j+1|), squared
                    ej[q] = 0.0 if ej[q] <= bound * bound else ej[q]
            top = 0
            for q in range(nl):  # deflate converged eigenvalues, then this lane's shift
                m = bottom[q]
                while m > 0 and (e[m - 1, q] == 0.0 or sweeps[q] >= max_sweeps):
                    e[m - 1, q] = 0.0
                    m -= 1
                    sweeps[q] = 0
                bottom[q] = m
                mq[q] = float(m)
                top = max(top, m)
                sweeps[q] += 1
                if m > 0:
                    half = 0.5 * (d[m - 1, q] - d[m, q])
                    off2 = e[m - 1, q]  # the squared coupling
                    root = np.sqrt(half * half + off2)
                    den = half + root if half >= 0.0 else half - root
                    mu[q] = d[m, q] - off2 / den if den != 0.0 else d[m, q]
                start[q] = 0.0
            for j in range(top - 1):
                ej = e[j]
                nxt = float(j + 1)
                for q in range(nl):
                    start[q] = nxt if (ej[q] == 0.0) & (nxt < mq[q]) else start[q]
            # the steps j and j + 1 in one pass over the lanes: what step j hands to step j + 1
            # (d[j + 1], e²[j] and the rotation state) stays in registers
            j = 0
            while j + 1 < top:
                jf = float(j)
                dj, dj1, dj2, ej, ej1 = d[j], d[j + 1], d[j + 2], e[j], e[j + 1]
                ep = e[j - 1] if j > 0 else e[n]  # e[n] stays 0 (unused when j = 0)
                for q in range(nl):
                    st, mm, sh = start[q], mq[q], mu[q]
                    ep0, d0, e0, d1, g1, p1, c1, s1 = qr_step(jf, st, mm, sh, dj[q], ej[q], dj1[q], ep[q],
                                                              gam[q], pw[q], cw[q], sw[q])
                    ep1, d1, e1, d2, g2, p2, c2, s2 = qr_step(jf + 1.0, st, mm, sh, d1, ej1[q], dj2[q], e0,
                                                              g1, p1, c1, s1)
                    ep[q] = ep0
                    dj[q] = d0
                    ej[q] = ep1
                    dj1[q] = d1
                    ej1[q] = e1
                    dj2[q] = d2
                    gam[q] = g2
                    pw[q] = p2
                    cw[q] = c2
                    sw[q] = s2
                j += 2
            if j < top:
                jf = float(j)
                dj, dj1, ej = d[j], d[j + 1], e[j]
                ep = e[j - 1] if j > 0 else e[n]
                for q in range(nl):
                    ep0, d0, e0, d1, g1, p1, c1, s1 = qr_step(jf, start[q], mq[q], mu[q], dj[q], ej[q], dj1[q],
                                                              ep[q], gam[q], pw[q], cw[q], sw[q])
                    ep[q] = ep0
                    dj[q] = d0
                    ej[q] = e0
                    dj1[q] = d1
                    gam[q] = g1
                    pw[q] = p1
                    cw[q] = c1
                    sw[q] = s1
        for q in range(nl):
            acc[q] = 0.0
        for i in range(n):
            di = d[i]
            for q in range(nl):
                lam = di[q]
                acc[q] += np.sqrt(lam) if lam > 0.0 else 0.0
        for q in range(used):
            norms[b0 + q] = acc[q] * power[q]
            if want_eigs:
                for i in range(n):
                    eigs[b0 + q, i] = d[i, q] * power[q] * power[q]
