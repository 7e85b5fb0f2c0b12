"""Compiled MATLAB ``uint8()`` conversion and uint8 histogram for :mod:`methods.legff` (numba, cached on disk).

At module level (imported on first use) so that numba's disk cache finds them again in every new process.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _level(v):  # pragma: no cover - compiled
    # MATLAB uint8(v) as methods._matlab.to_uint8: round half away from zero, NaN → 0, saturate (±Inf too)
    if v != v:
        return 0
    r = np.floor(v + 0.5) if v >= 0 else np.ceil(v - 0.5)
    if r <= 0.0:
        return 0
    if r >= 255.0:
        return 255
    return int(r)


@njit(cache=True, nogil=True)
def to_uint8(x, out):  # pragma: no cover - compiled
    """``out[...] = methods._matlab.to_uint8(x)`` for a 2-D float64 ``x`` (same levels)."""
    rows, cols = x.shape
    for i in range(rows):
        xr, o = x[i], out[i]
        for j in range(cols):
            o[j] = _level(xr[j])
    return out


@njit(cache=True, nogil=True)
def uint8_histogram(x, negate, counts):  # pragma: no cover - compiled
    """``counts[k]`` += the pixels of ``to_uint8(−x if negate else x)`` at level k (a 2-D float64 ``x``)."""
    rows, cols = x.shape
    for i in range(rows):
        xr = x[i]
        for j in range(cols):
            counts[_level(-xr[j] if negate else xr[j])] += 1
    return counts
