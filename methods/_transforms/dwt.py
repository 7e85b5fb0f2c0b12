"""2-D discrete wavelet transform through PyWavelets.

A thin, documented wrapper so every method uses one convention.  Any wavelet
and signal-extension mode PyWavelets supports is accepted.  PyWavelets is
imported on first use, so importing the methods package (e.g. to train on a
machine without it) does not need it.

The levels are PyWavelets' ``dwt2`` / ``idwt2`` steps (``dwtn``: a 1-D transform along
axis 0, then along axis 1; ``idwtn``: the reverse), done here with ``pywt.dwt`` / ``pywt.idwt``
on lines: the axis-0 step runs on the rows of a transposed copy (:mod:`._separable`).
PyWavelets walks columns with a stride of one row, which at 1024² costs 10× more per pixel
than along rows; the per-line arithmetic is the same, so the coefficients and the
reconstruction are those of ``pywt.wavedec2`` / ``pywt.waverec2`` bit for bit
(``tests/methods/test_transforms_separable.py``).
"""
from __future__ import annotations

import warnings

import numpy as np

from ._separable import transpose

Coeffs = list  # [cA_n, (cH_n, cV_n, cD_n), ..., (cH_1, cV_1, cD_1)]


def dwt_decompose(image: np.ndarray, wavelet: str = "db1", level: int = 3,
                  mode: str = "periodization") -> Coeffs:
    """Multilevel 2-D DWT of a 2-D image (float64).

    Returns the ``pywt.wavedec2`` layout: ``[cA_n, (cH_n, cV_n, cD_n), ..., (cH_1, cV_1, cD_1)]``
    — the approximation first, then detail triples from the **coarsest** to the finest level
    (H = horizontal detail, V = vertical, D = diagonal).  ``mode='periodization'`` is
    MATLAB's ``dwtmode('per')`` (the VIFB / Liu toolbox setting); ``'symmetric'`` is MATLAB's
    default ``'sym'``.  Works for any H×W; odd sizes are handled by PyWavelets.
    """
    import pywt

    x = np.asarray(image, dtype=np.float64)
    if x.ndim != 2:
        return pywt.wavedec2(x, wavelet, mode=mode, level=level)
    w = pywt.Wavelet(wavelet) if isinstance(wavelet, str) else wavelet
    if level < 0:
        raise ValueError(f"Level value of {level} is too low . Minimum level is 0.")
    if level > min(pywt.dwt_max_level(n, w.dec_len) for n in x.shape):
        warnings.warn(f"Level value of {level} is too high: all coefficients will experience boundary effects.",
                      stacklevel=2)
    details = []
    a = x
    for _ in range(level):
        a, bands = _dwt2(a, w, mode)
        details.append(bands)
    return [a] + details[::-1]


def _dwt2(x: np.ndarray, w, mode: str) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``pywt.dwt2(x, w, mode)`` bit for bit: ``(cA, (cH, cV, cD))`` = ``(aa, (da, ad, dd))`` of ``dwtn``."""
    import pywt

    lo_t, hi_t = pywt.dwt(transpose(x), w, mode, axis=1)  # axis 0 of x, on rows
    aa, ad = pywt.dwt(transpose(lo_t), w, mode, axis=1)
    da, dd = pywt.dwt(transpose(hi_t), w, mode, axis=1)
    return aa, (da, ad, dd)


def _idwt2(a: np.ndarray, bands: tuple[np.ndarray, np.ndarray, np.ndarray], w, mode: str) -> np.ndarray:
    """``pywt.idwt2((a, (da, ad, dd)), w, mode)`` bit for bit (``idwtn``: axis 1, then axis 0)."""
    import pywt

    da, ad, dd = bands
    lo = pywt.idwt(a, ad, w, mode, axis=1)
    hi = pywt.idwt(da, dd, w, mode, axis=1)
    return transpose(pywt.idwt(transpose(lo), transpose(hi), w, mode, axis=1))


def dwt_reconstruct(coeffs: Coeffs, wavelet: str = "db1", mode: str = "periodization",
                    shape: tuple[int, int] | None = None) -> np.ndarray:
    """Inverse of :func:`dwt_decompose`; ``shape`` crops the output to the original size
    (PyWavelets may return one extra row/column for odd sizes)."""
    import pywt

    a = np.asarray(coeffs[0])
    if a.ndim != 2 or len(coeffs) < 2 or any(c is None for d in coeffs[1:] for c in d) or a.dtype != np.float64:
        out = pywt.waverec2(coeffs, wavelet, mode=mode)
    else:
        w = pywt.Wavelet(wavelet) if isinstance(wavelet, str) else wavelet
        for bands in coeffs[1:]:
            bands = tuple(np.asarray(c, dtype=np.float64) for c in bands)
            if any(c.shape != bands[0].shape for c in bands):
                raise ValueError("All detail shapes must be the same length.")
            # waverec2 drops the approximation's extra row/column of an odd-sized level
            a = _idwt2(a[tuple(slice(None, -1 if n == m + 1 else None) for n, m in zip(a.shape, bands[0].shape))],
                       bands, w, mode)
        out = a
    if shape is not None:
        out = out[: shape[0], : shape[1]]
    return out
