"""Feature mutual information (FMI), Haghighat, Aghagolzadeh & Seyedarabi 2011.

A vectorised re-implementation of the "fast-FMI" code (Tang ``analysis_fmi.m``,
MEFB ``metricsFMI.m``): every w×w window (w = 3) of a feature image is turned
into a pdf (min-max normalised values, a constant window becoming all ones,
divided by their sum, in MATLAB column-major order); the joint pdf of a source
window and the fused window is built from the marginal cdfs with Nelsen's
upper (c ≥ 0) or lower (c < 0) Fréchet bound, and FMI = 2·MI/(H_X + H_F),
averaged over windows and over the two sources.  A window identical in X and F
scores 1.  All windows are processed at once as (n_windows, w², w²) arrays.

Features: ``'none'`` (raw pixels), ``'dct'`` (orthonormal 2-D DCT of the whole
image, MATLAB ``dct2``), ``'wavelet'`` (single-level ``dwt2`` with the discrete
Meyer wavelet, symmetric extension, subbands tiled [cA cH; cV cD] and rescaled
to [0,1]) and ``'edge'`` (binary Sobel edge map, MATLAB/Octave ``edge`` default).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._input import prepare, undefined


CHUNK = 1 << 12


def _windows(x: np.ndarray, w: int) -> np.ndarray:
    """All w×w windows as rows of length w², column-major inside the window."""
    return _block(sliding_window_view(x, (w, w)), w)


def _block(v: np.ndarray, w: int) -> np.ndarray:
    """Windows of a (m, n, w, w) view as rows of length w², column-major inside the window."""
    return v.transpose(0, 1, 3, 2).reshape(-1, w * w)


def _seqsum(x: np.ndarray) -> np.ndarray:
    """Row sums accumulated left to right, as MATLAB ``sum`` does (not numpy's pairwise order).

    The reference tests floating-point sums for exact zero (e.g. the correlation
    numerator of a constant window), so the summation order matters there.
    """
    s = x[:, 0].copy()
    for k in range(1, x.shape[1]):
        s += x[:, k]
    return s


def _norm_pdf(win: np.ndarray, w: int) -> np.ndarray:
    lo = win.min(axis=1, keepdims=True)
    hi = win.max(axis=1, keepdims=True)
    const = hi == lo
    span = np.where(const, 1.0, hi - lo)
    s = np.where(const, 1.0, (win - lo) / span)
    # sum(sum(window)): column sums first, then their sum (column-major rows here)
    tot = _seqsum(np.stack([_seqsum(s[:, j * w:(j + 1) * w]) for j in range(w)], axis=1))
    return s / tot[:, None]


def _xlog2x(p: np.ndarray) -> np.ndarray:
    """p·log2|p| with 0 where p = 0 (MATLAB real(−p·log2 p) for negative p)."""
    a = np.abs(p)
    a[a == 0] = 1.0
    np.log2(a, out=a)
    a *= p
    return a


def _cumsum_seq(p: np.ndarray) -> np.ndarray:
    """Row-wise cumulative sums, left to right (column loop: faster than cumsum on short rows)."""
    c = np.empty_like(p)
    c[:, 0] = p[:, 0]
    for k in range(1, p.shape[1]):
        np.add(c[:, k - 1], p[:, k], out=c[:, k])
    return c


def _coupling_path(fc: np.ndarray, xc: np.ndarray):
    """Support of the comonotone coupling of two pmfs given by their cdfs.

    The joint pmf of the upper Fréchet bound (the 2-D differences of
    min(F_i, X_j)) is non-zero on a monotone staircase of at most 2l − 1 cells:
    cell (i, j) carries the overlap of (F_{i−1}, F_i] and (X_{j−1}, X_j].  The
    staircase steps end at the 2l breakpoints; the step ending at F_i lies in
    cell (i, #{X < F_i}) and the one ending at X_j in cell (#{F ≤ X_j}, j); its
    mass is the breakpoint minus the largest breakpoint before it.  Returns
    (i, j, mass) for all 2l steps (order irrelevant; empty steps have mass 0).
    """
    n, l = fc.shape
    nx_f = np.zeros((n, l), dtype=np.int8)  # X breakpoints before F_i
    nf_x = np.zeros((n, l), dtype=np.int8)  # F breakpoints before X_j (F first on ties)
    for j in range(l):
        nx_f += xc[:, j:j + 1] < fc
        nf_x += fc[:, j:j + 1] <= xc
    ar = np.arange(l)[None, :]
    zero = np.zeros((n, 1))
    fprev = np.concatenate([zero, fc[:, :-1]], axis=1)
    xprev = np.concatenate([zero, xc[:, :-1]], axis=1)
    x_before_f = np.where(nx_f > 0, np.take_along_axis(xc, np.maximum(nx_f - 1, 0), axis=1), 0.0)
    f_before_x = np.where(nf_x > 0, np.take_along_axis(fc, np.maximum(nf_x - 1, 0), axis=1), 0.0)
    mass_f = np.maximum(fc - np.maximum(fprev, x_before_f), 0.0)
    mass_x = np.maximum(xc - np.maximum(xprev, f_before_x), 0.0)
    ci = np.concatenate([np.broadcast_to(ar, (n, l)), np.minimum(nf_x, l - 1)], axis=1)
    cj = np.concatenate([np.minimum(nx_f, l - 1), np.broadcast_to(ar, (n, l))], axis=1)
    return ci, cj, np.concatenate([mass_f, mass_x], axis=1)


class _Side:
    """Per-window quantities of one feature image that FMI needs (rows = windows)."""

    def __init__(self, win: np.ndarray, w: int) -> None:
        l = win.shape[1]
        self.p = p = _norm_pdf(win, w)
        self.c = _cumsum_seq(p)
        self.t = p - (_seqsum(p) / l)[:, None]
        i = np.arange(1, l + 1, dtype=np.float64)
        self.sd = np.sqrt(_seqsum(i * i * p) - _seqsum(i * p) ** 2)
        self.ss = _seqsum(self.t * self.t)
        pos = p > 0
        self.log = np.log2(np.where(pos, p, 1.0))  # 0 where p = 0
        self.h = -(p * self.log).sum(axis=1)
        self.total = p.sum(axis=1)

    def rows(self, m: np.ndarray) -> "_Side":
        out = object.__new__(_Side)
        for k, v in self.__dict__.items():
            out.__dict__[k] = v[m]
        return out


def _fmi_windows(xw: np.ndarray, fw: np.ndarray, fside: "_Side | None" = None) -> np.ndarray:
    """FMI of each (source window, fused window) pair; rows of length l = w².

    Exact re-formulation of the reference double loops: the joint pmf is
    φ·J + (1−φ)·f⊗x, where J (the Fréchet-bound pmf) lives on a staircase of
    ≤ 2l−1 cells, so the joint entropy is the closed-form entropy of the
    product term corrected on those cells only (O(l) work per window instead
    of O(l²)).  Agreement with the literal computation is ~1e-14.
    ``fside`` (the fused windows' quantities) may be shared between sources.
    """
    n, l = xw.shape
    w = int(round(np.sqrt(l)))
    out = np.ones(n)
    diff = ~np.all(xw == fw, axis=1)
    if not diff.any():
        return out
    xs = _Side(xw[diff], w)
    fs = (fside if fside is not None else _Side(fw, w)).rows(diff)
    xp, fp = xs.p, fs.p
    num = _seqsum(xs.t * fs.t)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(num == 0, 0.0, num / np.sqrt(xs.ss * fs.ss))
    pos = c >= 0
    # upper bound (c ≥ 0): comonotone coupling; lower bound (c < 0): countermonotone,
    # i.e. the comonotone coupling of f with x reversed.
    xc_use = np.where(pos[:, None], xs.c, _cumsum_seq(np.ascontiguousarray(xp[:, ::-1])))
    ci, cj, mass = _coupling_path(fs.c, xc_use)
    cj = np.where(pos[:, None], cj, l - 1 - cj)
    # Σ_ij bound_ij = Σ_cells mass·(l−i)(l−j) (the bound is the 2-D cumulative sum of its pmf)
    sum_bound = (mass * ((l - ci) * (l - cj))).sum(axis=1)
    cov = sum_bound - fs.c.sum(axis=1) * xs.c.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = c / (cov / (fs.sd * xs.sd))
    deg = (xs.sd == 0) | (fs.sd == 0) | (pos & (c == 0))
    phi = np.where(deg, 0.0, ratio)
    # joint entropy: product term (1−φ)·f⊗x over all cells in closed form ...
    k = 1 - phi
    logk = np.log2(np.abs(np.where(k != 0, k, 1.0)))
    hprod = -k * (logk * fs.total * xs.total - fs.h * xs.total - xs.h * fs.total)
    # ... corrected on the staircase cells, where the bound adds φ·mass
    fpi = np.take_along_axis(fp, ci, axis=1)
    xpj = np.take_along_axis(xp, cj, axis=1)
    base = k[:, None] * (fpi * xpj)
    base_log = logk[:, None] + np.take_along_axis(fs.log, ci, axis=1) + np.take_along_axis(xs.log, cj, axis=1)
    cell = phi[:, None] * mass + base
    hj = hprod + (base * base_log).sum(axis=1) - _xlog2x(cell).sum(axis=1)
    mi = xs.h + fs.h - hj
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(mi == 0, 0.0, 2 * mi / (xs.h + fs.h))
    out[diff] = v
    return out


@lru_cache(maxsize=1)
def _dmey102():
    """Discrete Meyer wavelet at MATLAB's length (102 taps).

    PyWavelets' ``dmey`` has 62 taps; MATLAB's has 102, which changes the
    ``dwt2`` output size and alignment.  Zero-padding PyWavelets' filters by 20
    taps on each side reproduces the reference FMI_w values to < 1e-4 relative
    (the remaining MATLAB outer taps are negligible); see docs/metrics.md.
    """
    import pywt

    base = pywt.Wavelet("dmey")
    z = np.zeros(20)
    bank = [np.r_[z, np.asarray(f), z] for f in base.filter_bank]
    return pywt.Wavelet("dmey102", filter_bank=bank)


def _rerange(x: np.ndarray) -> np.ndarray:
    lo, hi = x.min(), x.max()
    return np.ones_like(x) if hi == lo else (x - lo) / (hi - lo)


def _feature(x: np.ndarray, feature: str) -> np.ndarray:
    if feature == "none":
        return x
    if feature == "dct":
        from scipy.fft import dctn

        return dctn(x, norm="ortho")
    if feature == "wavelet":
        import pywt

        cA, (cH, cV, cD) = pywt.dwt2(x, _dmey102(), mode="symmetric")
        return _rerange(np.block([[cA, cH], [cV, cD]]))
    if feature == "edge":
        from ._edge import sobel_edge

        return sobel_edge(x).astype(np.float64)
    if feature == "gradient":
        return np.gradient(x, axis=1)
    raise ValueError(f"unknown FMI feature {feature!r} (none, dct, wavelet, edge, gradient)")


def fmi(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, feature: str = "none", w: int = 3,
        data_range: float | None = None) -> float:
    """FMI with the named feature; mean of FMI(A,F) and FMI(B,F) over all w×w windows.

    Conventions: ``FMI_pixel`` = feature 'none' (true pixel FMI), ``FMI_dct``,
    ``FMI_w`` (discrete Meyer wavelet), ``FMI_edge`` (the default of the
    reference code, which Tang labels "FMI_pixel" and MEFB labels "FMI").
    """
    f, A, B = prepare(fused, a, b, data_range=data_range)
    fa, fb, ff = (_feature(x, feature) for x in (A, B, f))
    if min(ff.shape) < w:
        return undefined("FMI needs images larger than the window")
    # process blocks of window rows (~4k windows) to bound memory and stay in cache
    va, vb, vf = (sliding_window_view(x, (w, w)) for x in (fa, fb, ff))
    rows, cols = vf.shape[:2]
    step = max(1, CHUNK // cols)
    total = 0.0
    for r0 in range(0, rows, step):
        blk = slice(r0, min(rows, r0 + step))
        fwin = _block(vf[blk], w)
        fside = _Side(fwin, w)
        total += float((_fmi_windows(_block(va[blk], w), fwin, fside)
                        + _fmi_windows(_block(vb[blk], w), fwin, fside)).sum())
    v = total / (2 * rows * cols)
    return undefined("FMI is undefined on this input") if np.isnan(v) else v
