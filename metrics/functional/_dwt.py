"""Single-level 2-D ``dwt2`` (symmetric extension) by a compiled kernel, bit-for-bit PyWavelets (private).

FMI_w uses the discrete Meyer wavelet at MATLAB's 102 taps, of which the outer
41 are zero (``feature._dmey102``).  ``pywt.dwt2`` multiplies all 102 taps;
here each output sample is the sum of the non-zero taps only, **in the same
order as PyWavelets' C loop** (``downsampling_convolution``, symmetric mode:
filter index ascending, except at the right border where the mirrored samples
come first with the filter index descending), so the sums are bit-for-bit
PyWavelets' (adding an exact zero product does not change a sum).  The order
of each output's terms is tabulated once per (length, filter); the kernel then
runs over whole rows (vectorised along the contiguous axis), four terms per
pass over the output row.  Axis 0 is filtered first, then axis 1, as ``pywt.dwt2``.
:func:`dwt2_tiled` writes the four subbands straight into FMI_w's tiled
[cA cH; cV cD] image (one transpose instead of four and a copy).  Only signals at least as long
as the filter take this path; shorter ones are left to PyWavelets.
"""
from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

if TYPE_CHECKING:
    import pywt


@lru_cache(maxsize=16)
def _plan(n: int, h_bytes: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offsets, filter indices, input indices) of every output sample, in PyWavelets' summation order."""
    h = np.frombuffer(h_bytes, dtype=np.float64)
    f_len = len(h)
    if n < f_len:
        raise ValueError("signal shorter than the filter")
    offs, fs, src = [0], [], []
    for i in range(1, n + f_len - 1, 2):  # step 2, first output at i = step - 1
        seq: list[tuple[int, int]] = []
        if i < f_len:  # left overhang: the signal, then its mirror image (input[0], input[1], ...)
            seq += [(j, i - j) for j in range(i + 1)]
            seq += [(j, j - i - 1) for j in range(i + 1, f_len)]
        elif i < n:  # filter inside the signal
            seq += [(j, i - j) for j in range(f_len)]
        else:  # right overhang: mirrored samples first, filter index descending, then the signal
            seq += [(i - n - j, n - 1 - j) for j in range(i - n + 1)]
            seq += [(j, i - j) for j in range(i - n + 1, f_len)]
        seq = [(j, s) for j, s in seq if h[j] != 0.0]
        fs += [j for j, _ in seq]
        src += [s for _, s in seq]
        offs.append(len(fs))
    out = (np.array(offs, dtype=np.int64), np.array(fs, dtype=np.int64), np.array(src, dtype=np.int64))
    for a in out:
        a.setflags(write=False)
    return out


@njit(cache=True, nogil=True)
def _down(x, h, offs, fs, src, out):
    """out[o] = Σ_t h[fs[t]] · x[src[t]] over t in offs[o]:offs[o+1], term by term in that order (rows)."""
    m = x.shape[1]
    for o in range(out.shape[0]):
        r = out[o]
        for c in range(m):
            r[c] = 0.0
        t = offs[o]
        end = offs[o + 1]
        while t + 4 <= end:  # four terms per pass over the row (the same additions, in the same order)
            h0, h1, h2, h3 = h[fs[t]], h[fs[t + 1]], h[fs[t + 2]], h[fs[t + 3]]
            x0, x1, x2, x3 = x[src[t]], x[src[t + 1]], x[src[t + 2]], x[src[t + 3]]
            for c in range(m):
                r[c] = (((r[c] + h0 * x0[c]) + h1 * x1[c]) + h2 * x2[c]) + h3 * x3[c]
            t += 4
        while t < end:
            hj = h[fs[t]]
            row = x[src[t]]
            for c in range(m):
                r[c] += hj * row[c]
            t += 1


def _down_axis0(x: np.ndarray, h: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    offs, fs, src = _plan(x.shape[0], h.tobytes())
    if out is None:
        out = np.empty((len(offs) - 1, x.shape[1]))
    _down(np.ascontiguousarray(x, dtype=np.float64), h, offs, fs, src, out)
    return out


def dwt2_symmetric(x: np.ndarray, wavelet: pywt.Wavelet) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``pywt.dwt2(x, wavelet, mode='symmetric')``, bit for bit: (cA, (cH, cV, cD))."""
    lo = np.ascontiguousarray(wavelet.dec_lo, dtype=np.float64)
    hi = np.ascontiguousarray(wavelet.dec_hi, dtype=np.float64)
    if min(x.shape) < len(lo):
        import pywt

        return pywt.dwt2(x, wavelet, mode="symmetric")
    a = np.ascontiguousarray(_down_axis0(x, lo).T)  # axis 0 first, as pywt
    d = np.ascontiguousarray(_down_axis0(x, hi).T)
    return _down_axis0(a, lo).T, (_down_axis0(d, lo).T, _down_axis0(a, hi).T, _down_axis0(d, hi).T)


def dwt2_tiled(x: np.ndarray, wavelet: pywt.Wavelet) -> np.ndarray:
    """``np.block([[cA, cH], [cV, cD]])`` of :func:`dwt2_symmetric`, bit for bit.

    The second pass writes the transposed subbands into one array whose
    transpose is the tiled image (the rows of each block stay contiguous).
    """
    lo = np.ascontiguousarray(wavelet.dec_lo, dtype=np.float64)
    hi = np.ascontiguousarray(wavelet.dec_hi, dtype=np.float64)
    if min(x.shape) < len(lo):
        cA, (cH, cV, cD) = dwt2_symmetric(x, wavelet)
        return np.block([[cA, cH], [cV, cD]])
    a = np.ascontiguousarray(_down_axis0(x, lo).T)
    d = np.ascontiguousarray(_down_axis0(x, hi).T)
    n1, n0 = len(_plan(a.shape[0], lo.tobytes())[0]) - 1, a.shape[1]  # subband shape transposed: (cols, rows)
    u = np.empty((2 * n1, 2 * n0))  # u.T = [[cA, cH], [cV, cD]]: u = [[cA.T, cV.T], [cH.T, cD.T]]
    _down_axis0(a, lo, u[:n1, :n0])
    _down_axis0(a, hi, u[:n1, n0:])
    _down_axis0(d, lo, u[n1:, :n0])
    _down_axis0(d, hi, u[n1:, n0:])
    return u.T
