"""Compiled separable window filter shared by the SSIM family and Qp.

``scipy.ndimage.correlate1d`` is generic (one buffered line at a time, a
call per axis, strided lines along axis -2).  The kernel here filters one image
of a stack at a time: every row along axis -1 into a small (H, W) buffer, then
each output row as the weighted sum of ``n`` buffered rows, both loops
vectorised over the contiguous axis (~5x faster at 256²).  It performs the
same floating-point operations in the same order as ``correlate1d`` with a
symmetric kernel (axis -1 then axis -2; centre·w, then (left + right)·w from the
outermost pair inwards), so results are bit-for-bit equal; that matters where
metrics test a window variance for exact zero.

Border modes, as in ``scipy.ndimage``: ``constant`` (zeros), ``nearest`` and
``reflect`` (half-sample symmetric, ``d c b a | a b c d``).  ``valid`` keeps
only the outputs whose window lies inside the image (MATLAB ``filter2(...,
'valid')``).  Kernels must be odd-length and symmetric; the window is centred.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_MODES = {"constant": 0, "nearest": 1, "reflect": 2}


@njit(cache=True, nogil=True)
def _src(r, n, mode):
    """Index of the sample at r (outside [0, n)) under the border mode; -1 means zero."""
    if mode == 0:
        return -1
    if mode == 1:
        return 0 if r < 0 else n - 1
    # reflect (half-sample symmetric), period 2n
    p = 2 * n
    r = r % p
    if r < 0:
        r += p
    return r if r < n else p - 1 - r


@njit(cache=True, nogil=True)
def _sep_filter(x, g, mode, valid, out):
    """out[m] = separable correlation of x[m] with the symmetric kernel g on both axes.

    Axis -1 first, then axis -2, each tap sum in ``correlate1d``'s order for a
    symmetric kernel: centre·w[r], then (left + right)·w for the outermost pair
    inwards; so the result is bit-for-bit ``correlate1d`` (exact zeros of a
    variance stay exact zeros).
    """
    k, H, W = x.shape
    n = g.shape[0]
    r = n // 2
    if valid:
        i0, i1, j0, j1 = r, H - r, r, W - r
    else:
        i0, i1, j0, j1 = 0, H, 0, W
    wo = j1 - j0
    buf = np.zeros(W + 2 * r)  # one input row with r samples of border on each side
    hx = np.empty((H, wo))  # the rows filtered along axis -1 (only the output columns)
    zero = np.zeros(wo)
    gc = g[r]
    for m in range(k):
        xm = x[m]
        for i in range(H):
            xr = xm[i]
            row = buf[r:r + W]
            for j in range(W):
                row[j] = xr[j]
            if not valid:
                for d in range(1, r + 1):
                    c = -d
                    sj = _src(c, W, mode)
                    buf[r + c] = 0.0 if sj < 0 else xr[sj]
                    c = W - 1 + d
                    sj = _src(c, W, mode)
                    buf[r + c] = 0.0 if sj < 0 else xr[sj]
            h = hx[i]
            b = buf[j0:j0 + wo + n - 1]  # b[j + r] is the sample at output column j
            bc = b[r:r + wo]
            for j in range(wo):
                h[j] = bc[j] * gc
            for d in range(r, 0, -1):
                gd = g[r - d]
                bl = b[r - d:r - d + wo]  # zero-offset views keep the loop vectorised
                br = b[r + d:r + d + wo]
                for j in range(wo):
                    h[j] += (bl[j] + br[j]) * gd
        om = out[m]
        for i in range(i0, i1):
            o = om[i - i0]
            hc = hx[i]
            for j in range(wo):
                o[j] = hc[j] * gc
            for d in range(r, 0, -1):
                gd = g[r - d]
                s = i - d
                if s < 0:
                    s = _src(s, H, mode)
                up = zero if s < 0 else hx[s]
                s = i + d
                if s >= H:
                    s = _src(s, H, mode)
                dn = zero if s < 0 else hx[s]
                for j in range(wo):
                    o[j] += (up[j] + dn[j]) * gd
    return out


def sep_filter(x: np.ndarray, g: np.ndarray, *, mode: str = "constant", valid: bool = False,
               out: np.ndarray | None = None) -> np.ndarray:
    """Separable correlation of each image of ``x`` ((k, H, W) or (H, W)) with ``g`` on both axes.

    ``valid=False``: 'same' size with the border ``mode``; ``valid=True``: the
    'valid' part only (mode unused).  float64 in and out.  ``out``: an optional
    C-contiguous float64 array of the result's shape to write into (not ``x``).
    """
    g = np.ascontiguousarray(g, dtype=np.float64)
    n = g.shape[0]
    if n % 2 == 0 or np.any(g != g[::-1]):
        raise ValueError("sep_filter needs an odd-length symmetric kernel")
    squeeze = x.ndim == 2
    x3 = np.ascontiguousarray(x[None] if squeeze else x, dtype=np.float64)
    k, H, W = x3.shape
    shape = (k, max(H - n + 1, 0), max(W - n + 1, 0)) if valid else (k, H, W)
    if out is None:
        out = np.empty(shape)
    else:
        if out.dtype != np.float64 or not out.flags.c_contiguous or out.size != k * shape[1] * shape[2]:
            raise ValueError(f"sep_filter: out must be C-contiguous float64 of {shape[1:]} per image")
        if np.may_share_memory(out, x3):
            raise ValueError("sep_filter: out must not overlap the input")
        out = out.reshape(shape)
    if out.size:
        _sep_filter(x3, g, _MODES[mode], valid, out)
    return out[0] if squeeze else out


@njit(cache=True, nogil=True)
def _box_valid(x, size, out):
    """``_filters.box_valid`` in one compiled pass per image (same additions in the same order)."""
    k, H, W = x.shape
    c = np.zeros((H + 1, W + 1))
    row = np.empty(W)
    inv = float(size * size)
    for m in range(k):
        xm = x[m]
        for i in range(H):
            xr = xm[i]
            acc = 0.0
            for j in range(W):  # cumulative sum along axis -1
                acc += xr[j]
                row[j] = acc
            prev = c[i]
            cur = c[i + 1]
            for j in range(W):  # then along axis -2
                cur[j + 1] = prev[j + 1] + row[j]
        om = out[m]
        for i in range(H - size + 1):
            lo = c[i]
            hi = c[i + size]
            o = om[i]
            for j in range(W - size + 1):
                o[j] = (hi[j + size] - lo[j + size] - hi[j] + lo[j]) / inv
    return out


def box_valid(x: np.ndarray, size: int) -> np.ndarray:
    """Mean over size×size windows ('valid') by cumulative sums; bit-for-bit ``_filters.box_valid``."""
    squeeze = x.ndim == 2
    x3 = np.ascontiguousarray(x[None] if squeeze else x, dtype=np.float64)
    k, H, W = x3.shape
    out = np.empty((k, max(H - size + 1, 0), max(W - size + 1, 0)))
    if out.size:
        _box_valid(x3, size, out)
    return out[0] if squeeze else out


@njit(cache=True, nogil=True)
def _uniform_reflect(x, size, out):
    """``uniform_filter1d`` with 'reflect' borders on axis -1, then on axis -2 (scipy's running sums, same order)."""
    k, H, W = x.shape
    r = size // 2
    fs = float(size)
    line = np.empty(W + size - 1)
    t = np.empty((H + size - 1, W))
    acc = np.empty(W)
    for m in range(k):
        xm = x[m]
        for i in range(H):  # axis -1: one running sum per row
            xr = xm[i]
            for j in range(W):
                line[r + j] = xr[j]
            for d in range(1, r + 1):
                line[r - d] = xr[_src(-d, W, 2)]
            for d in range(size - r - 1):
                line[r + W + d] = xr[_src(W + d, W, 2)]
            tmp = 0.0
            for j in range(size):
                tmp += line[j]
            tr = t[r + i]
            tr[0] = tmp / fs
            for j in range(1, W):
                tmp += line[j + size - 1] - line[j - 1]
                tr[j] = tmp / fs
        for d in range(1, r + 1):  # reflected rows of the intermediate
            t[r - d, :] = t[r + _src(-d, H, 2)]
        for d in range(size - r - 1):
            t[r + H + d, :] = t[r + _src(H + d, H, 2)]
        om = out[m]
        for j in range(W):  # axis -2: running sums of all columns at once
            acc[j] = 0.0
        for u in range(size):
            tu = t[u]
            for j in range(W):
                acc[j] += tu[j]
        o = om[0]
        for j in range(W):
            o[j] = acc[j] / fs
        for i in range(1, H):
            hi = t[i + size - 1]
            lo = t[i - 1]
            o = om[i]
            for j in range(W):
                acc[j] += hi[j] - lo[j]
                o[j] = acc[j] / fs
    return out


def uniform_reflect(x: np.ndarray, size: int) -> np.ndarray:
    """``uniform_filter1d(uniform_filter1d(x, size, -1, mode='reflect'), size, -2, mode='reflect')``, bit for bit.

    x: (k, H, W) float64; ``size`` odd.
    """
    if size % 2 == 0:
        raise ValueError("uniform_reflect needs an odd size")
    x3 = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty(x3.shape)
    if out.size:
        _uniform_reflect(x3, size, out)
    return out


@njit(cache=True, nogil=True)
def skimage_ssim_means(s, C1, C2, cov_norm, crop):
    """Means of the two skimage SSIM maps (F vs s[1], F vs s[2]) over the map cropped by ``crop`` px.

    s: the 8 filtered moments (F, A, B, F², A², B², FA, FB), (8, H, W).  Same
    per-pixel formula as ``skimage.metrics.structural_similarity``; the means
    are plain sequential sums (numpy's are pairwise: ~1e-16 relative).
    """
    _, H, W = s.shape
    tot1 = 0.0
    tot2 = 0.0
    for i in range(crop, H - crop):
        for j in range(crop, W - crop):
            uf = s[0, i, j]
            vf = cov_norm * (s[3, i, j] - uf * uf)
            ux = s[1, i, j]
            vx = cov_norm * (s[4, i, j] - ux * ux)
            vxy = cov_norm * (s[6, i, j] - uf * ux)
            tot1 += ((2 * uf * ux + C1) * (2 * vxy + C2)) / ((uf * uf + ux * ux + C1) * (vf + vx + C2))
            ux = s[2, i, j]
            vx = cov_norm * (s[5, i, j] - ux * ux)
            vxy = cov_norm * (s[7, i, j] - uf * ux)
            tot2 += ((2 * uf * ux + C1) * (2 * vxy + C2)) / ((uf * uf + ux * ux + C1) * (vf + vx + C2))
    n = (H - 2 * crop) * (W - 2 * crop)
    return tot1 / n, tot2 / n


@njit(cache=True, nogil=True)
def _prewitt_mag(x, out):
    """sqrt(gx² + gy²) with the 3×3 kernels [[1,0,-1]]*3 and its transpose, zero borders.

    For integer-valued input every partial sum is exact, so this equals the two
    ``ndimage.correlate`` calls bit for bit.
    """
    k, H, W = x.shape
    P = np.zeros((H + 2, W + 2))
    cs = np.empty(W + 2)
    for m in range(k):
        xm = x[m]
        for i in range(H):
            P[i + 1, 1:W + 1] = xm[i]
        om = out[m]
        for i in range(H):
            a = P[i]
            b = P[i + 1]
            c = P[i + 2]
            for j in range(W + 2):
                cs[j] = a[j] + b[j] + c[j]
            o = om[i]
            for j in range(W):
                gx = cs[j] - cs[j + 2]
                gy = (a[j] + a[j + 1] + a[j + 2]) - (c[j] + c[j + 1] + c[j + 2])
                o[j] = np.sqrt(gx * gx + gy * gy)
    return out


def prewitt_mag(x: np.ndarray) -> np.ndarray:
    """Prewitt-like edge magnitude of each image of a (k, H, W) stack of integer grey levels (see ``_prewitt_mag``)."""
    x3 = np.ascontiguousarray(x, dtype=np.float64)
    return _prewitt_mag(x3, np.empty(x3.shape))


@njit(cache=True, nogil=True, error_model="numpy")
def _ssim_formula(mx, my, vx, vy, cxy, C1, C2, out):
    a, b, c, d, e, o = mx.ravel(), my.ravel(), vx.ravel(), vy.ravel(), cxy.ravel(), out.ravel()
    for j in range(o.shape[0]):
        o[j] = ((2 * a[j] * b[j] + C1) * (2 * e[j] + C2)) / ((a[j] * a[j] + b[j] * b[j] + C1) * (c[j] + d[j] + C2))
    return out


def ssim_formula(mx: np.ndarray, my: np.ndarray, vx: np.ndarray, vy: np.ndarray, cxy: np.ndarray, C1: float,
                 C2: float) -> np.ndarray:
    """((2μxμy + C1)(2σxy + C2)) / ((μx² + μy² + C1)(σx² + σy² + C2)) in one pass, same operation order as numpy."""
    args = [np.ascontiguousarray(v, dtype=np.float64) for v in (mx, my, vx, vy, cxy)]
    return _ssim_formula(*args, float(C1), float(C2), np.empty(args[0].shape))
