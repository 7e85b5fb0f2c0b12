"""Binary Sobel edge map with the default rules of Octave's ``edge(im)`` (image package 2.x).

Used by FMI_edge.  Gradients with the Sobel kernels divided by 8 and replicate
padding on the image scaled to [0, 1]; squared strength thresholded at
4·mean(strength²); a "simple thinning" keeps pixels whose strength exceeds
both horizontal neighbours or both vertical neighbours (zero outside).
MATLAB's ``edge`` thins differently (along the gradient direction), so values
of FMI_edge are "Octave-reference" (see ``metrics_conventions.md`` §7).

Two compiled passes (strength, then threshold and thinning) around numpy's
mean.  The gradients are ``scipy.ndimage.correlate(im, k, mode="nearest")``
bit for bit: ndimage sums the non-zero taps of the kernel in row-major order
starting from 0 (``tests/metrics/test_compiled_filters.py``), and so does
:func:`_strength` (numba does not contract into fused multiply-adds).
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _strength(im, out):
    """out = gy² + gx², gy/gx the Sobel/8 correlations of ``im`` with replicate padding."""
    h, w = im.shape
    for i in range(h):
        up = im[max(i - 1, 0)]
        mid = im[i]
        dn = im[min(i + 1, h - 1)]
        o = out[i]
        for j in range(w):
            jl = max(j - 1, 0)
            jr = min(j + 1, w - 1)
            # k = [[1, 2, 1], [0, 0, 0], [-1, -2, -1]] / 8, non-zero taps row-major
            gy = 0.0 + up[jl] * 0.125
            gy += up[j] * 0.25
            gy += up[jr] * 0.125
            gy += dn[jl] * -0.125
            gy += dn[j] * -0.25
            gy += dn[jr] * -0.125
            # k.T = [[1, 0, -1], [2, 0, -2], [1, 0, -1]] / 8
            gx = 0.0 + up[jl] * 0.125
            gx += up[jr] * -0.125
            gx += mid[jl] * 0.25
            gx += mid[jr] * -0.25
            gx += dn[jl] * 0.125
            gx += dn[jr] * -0.125
            o[j] = gy * gy + gx * gx


@njit(cache=True, nogil=True)
def _thin(s, t, out):
    """out = thinned edges of the strength ``s`` kept above ``t`` (zero outside the image)."""
    h, w = s.shape
    for i in range(h):
        for j in range(w):
            c = s[i, j]
            c = 0.0 if c <= t else c
            left = s[i, j - 1] if j > 0 else 0.0
            right = s[i, j + 1] if j < w - 1 else 0.0
            above = s[i - 1, j] if i > 0 else 0.0
            below = s[i + 1, j] if i < h - 1 else 0.0
            left = 0.0 if left <= t else left
            right = 0.0 if right <= t else right
            above = 0.0 if above <= t else above
            below = 0.0 if below <= t else below
            out[i, j] = (c > left and c > right) or (c > above and c > below)


def sobel_edge(x: np.ndarray) -> np.ndarray:
    """Boolean edge map of a 0–255 grey image."""
    im = np.ascontiguousarray(x / 255.0, dtype=np.float64)
    s = np.empty_like(im)
    _strength(im, s)
    t = 4 * s.mean()
    out = np.empty(im.shape, dtype=np.bool_)
    _thin(s, t, out)
    return out
