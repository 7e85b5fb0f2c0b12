"""2-D discrete wavelet transform through PyWavelets.

A thin, documented wrapper so every method uses one convention.  Any wavelet
and signal-extension mode PyWavelets supports is accepted.  PyWavelets is
imported on first use, so importing the methods package (e.g. to train on a
machine without it) does not need it.
"""
from __future__ import annotations

import numpy as np

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

    return pywt.wavedec2(np.asarray(image, dtype=np.float64), wavelet, mode=mode, level=level)


def dwt_reconstruct(coeffs: Coeffs, wavelet: str = "db1", mode: str = "periodization",
                    shape: tuple[int, int] | None = None) -> np.ndarray:
    """Inverse of :func:`dwt_decompose`; ``shape`` crops the output to the original size
    (PyWavelets may return one extra row/column for odd sizes)."""
    import pywt

    out = pywt.waverec2(coeffs, wavelet, mode=mode)
    if shape is not None:
        out = out[: shape[0], : shape[1]]
    return out
