"""Compiled per-pixel terms of the Gaussian scale-mixture VIF model (private to ``visual.py``).

From the window statistics σ_ref² (``s11``), σ_dist² (``s22``) and σ_ref,dist
(``s12``) of one scale, the Sheikh–Bovik model (``vifp_mscale.m``) computes the
gain g = σ₁₂/(σ₁² + 1e-10), the residual variance σ_v² = σ₂² − g·σ₁₂, applies the
reference's masked assignments in order (σ₁² < 1e-10: g = 0, σ_v² = σ₂², σ₁² = 0;
σ₂² < 1e-10: g = 0, σ_v² = 0; g < 0: σ_v² = σ₂², g = 0; σ_v² ≤ 1e-10: σ_v² = 1e-10),
and takes num = log10(1 + g²σ₁²/(σ_v² + σ_n²)), den = log10(1 + σ₁²/σ_n²).
These kernels fuse that chain in one pass and write only the arguments of
the two logarithms, instead of a dozen full-size temporaries; the results
equal the NumPy expression bit for bit up to the order of the final sums.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_EPS = 1e-10


@njit(cache=True, nogil=True)
def _terms(s11: float, s22: float, s12: float, sigma_nsq: float):  # pragma: no cover - compiled
    """(1 + g²σ₁²/(σ_v² + σ_n²), 1 + σ₁²/σ_n², g) at one position: the arguments of the two log10 terms."""
    a = s11 if s11 > 0.0 else 0.0
    c = s22 if s22 > 0.0 else 0.0
    gg = s12 / (a + _EPS)
    sv = c - gg * s12
    if a < _EPS:
        gg = 0.0
        sv = c
        a = 0.0
    if c < _EPS:
        gg = 0.0
        sv = 0.0
    if gg < 0.0:
        sv = c
        gg = 0.0
    if sv < _EPS:
        sv = _EPS
    return 1.0 + gg * gg * a / (sv + sigma_nsq), 1.0 + a / sigma_nsq, gg


@njit(cache=True, nogil=True)
def gsm_log_args(s11: np.ndarray, s22: np.ndarray, s12: np.ndarray, sigma_nsq: float,
                 num: np.ndarray, den: np.ndarray) -> None:  # pragma: no cover - compiled
    """Write the arguments of log10 for num and den into ``num``, ``den`` (k, h, w).

    ``s11``, ``s12`` are (k, h, w), ``s22`` is (h, w); the logarithms are taken by the
    caller with NumPy's vectorised ``log10`` (much faster than a scalar loop).
    """
    k, h, w = s11.shape
    for i in range(k):
        for y in range(h):
            for x in range(w):
                num[i, y, x], den[i, y, x], _ = _terms(s11[i, y, x], s22[y, x], s12[i, y, x], sigma_nsq)


@njit(cache=True, nogil=True)
def viff_log_args(s11: np.ndarray, s22: np.ndarray, s12: np.ndarray, sigma_nsq: float,
                  num: np.ndarray, den: np.ndarray) -> None:  # pragma: no cover - compiled
    """Han's VIFF selection for two references: write into ``num``, ``den`` (h, w) the log10
    arguments of the reference with the smaller gain at each position (the second one on ties)."""
    h, w = s22.shape
    for y in range(h):
        for x in range(w):
            n0, d0, g0 = _terms(s11[0, y, x], s22[y, x], s12[0, y, x], sigma_nsq)
            n1, d1, g1 = _terms(s11[1, y, x], s22[y, x], s12[1, y, x], sigma_nsq)
            if g0 < g1:
                num[y, x] = n0
                den[y, x] = d0
            else:
                num[y, x] = n1
                den[y, x] = d1
