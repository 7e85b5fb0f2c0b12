"""Compiled separable window filter shared by the SSIM family and Qp.

``scipy.ndimage.correlate1d`` is generic (one buffered line at a time, one
pass over memory per axis).  The kernel here filters one image of a stack at a
time, both axes in one pass over the output: each output row is the weighted sum
of ``n`` input rows (vectorised over the contiguous axis), then the horizontal
taps are applied to that row from a small padded buffer.  Results equal
``correlate1d`` on both axes up to the order of the floating-point additions
(~1e-16 relative).

Border modes, as in ``scipy.ndimage``: ``constant`` (zeros), ``nearest`` and
``reflect`` (half-sample symmetric, ``d c b a | a b c d``).  ``valid`` keeps
only the outputs whose window lies inside the image (MATLAB ``filter2(...,
'valid')``).  Kernels must have odd length; the window is centred.
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
    """out[m] = separable correlation of x[m] with g on both axes (see the module docstring)."""
    k, H, W = x.shape
    n = g.shape[0]
    r = n // 2
    if valid:
        i0, i1, j0, j1 = r, H - r, r, W - r
    else:
        i0, i1, j0, j1 = 0, H, 0, W
    wo = j1 - j0
    # row buffer with r samples of border on each side (only those actually read are filled)
    buf = np.zeros(W + 2 * r)
    row = buf[r:r + W]
    g0 = g[0]
    for m in range(k):
        xm = x[m]
        om = out[m]
        for i in range(i0, i1):
            # vertical taps: row[j] = sum_t g[t] * x[m, i + t - r, j]  (1-D views keep this vectorised)
            first = True
            for t in range(n):
                s = i + t - r
                if s < 0 or s >= H:
                    s = _src(s, H, mode)
                    if s < 0:
                        continue
                gt = g[t]
                xs = xm[s]
                if first:
                    for j in range(W):
                        row[j] = gt * xs[j]
                    first = False
                else:
                    for j in range(W):
                        row[j] += gt * xs[j]
            if first:
                row[:] = 0.0
            if not valid:
                for j in range(r):
                    c = -1 - j
                    sj = _src(c, W, mode)
                    buf[r + c] = 0.0 if sj < 0 else row[sj]
                    c = W + j
                    sj = _src(c, W, mode)
                    buf[r + c] = 0.0 if sj < 0 else row[sj]
            # horizontal taps on the padded row: o[j] = sum_t g[t] * buf[j0 + j + t]
            o = om[i - i0]
            b = buf[j0:j0 + wo + n - 1]
            for j in range(wo):
                o[j] = g0 * b[j]
            for t in range(1, n):
                gt = g[t]
                for j in range(wo):
                    o[j] += gt * b[j + t]
    return out


def sep_filter(x: np.ndarray, g: np.ndarray, *, mode: str = "constant", valid: bool = False) -> np.ndarray:
    """Separable correlation of each image of ``x`` ((k, H, W) or (H, W)) with ``g`` on both axes.

    ``valid=False``: 'same' size with the border ``mode``; ``valid=True``: the
    'valid' part only (mode unused).  float64 in and out.
    """
    g = np.ascontiguousarray(g, dtype=np.float64)
    n = g.shape[0]
    if n % 2 == 0:
        raise ValueError("sep_filter needs an odd-length kernel")
    squeeze = x.ndim == 2
    x3 = np.ascontiguousarray(x[None] if squeeze else x, dtype=np.float64)
    k, H, W = x3.shape
    if valid:
        out = np.empty((k, max(H - n + 1, 0), max(W - n + 1, 0)))
    else:
        out = np.empty((k, H, W))
    if out.size:
        _sep_filter(x3, g, _MODES[mode], valid, out)
    return out[0] if squeeze else out
