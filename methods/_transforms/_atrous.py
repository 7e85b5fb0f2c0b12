"""Non-subsampled (à trous) pyramid shared by NSST (``atrousdec``/``atrousrec``) and NSCT
(``nsfbdec``/``nsfbrec``): the two toolboxes implement the same scheme."""
from __future__ import annotations

import numpy as np

from ._conv import atrous_conv, atrous_convs
from ._filters import atrous_filters


def nsp_decompose(x: np.ndarray, pyr_filter: str, nlevels: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """``nlevels``-level non-subsampled pyramid: returns ``(lowpass, bandpasses)`` with the
    band-pass images ordered **coarse → fine** (the toolbox's ``y{2} … y{N+1}``)."""
    h0, h1, _, _ = atrous_filters(pyr_filter)
    low = np.asarray(x, dtype=np.float64)
    highs = []
    for lev in range(nlevels):
        high, low = atrous_convs(low, (h1, h0), lev)  # one transform of ``low`` when h0, h1 share a shape
        highs.append(high)
    return low, highs[::-1]


def nsp_reconstruct(low: np.ndarray, highs: list[np.ndarray], pyr_filter: str) -> np.ndarray:
    """Inverse of :func:`nsp_decompose` (``highs`` coarse → fine)."""
    _, _, g0, g1 = atrous_filters(pyr_filter)
    x = np.asarray(low, dtype=np.float64)
    n = len(highs)
    for i, high in enumerate(highs):
        lev = n - 1 - i
        x = atrous_conv(x, g0, lev) + atrous_conv(high, g1, lev)
    return x
