"""Feature mutual information (FMI), Haghighat, Aghagolzadeh & Seyedarabi 2011.

A fast re-implementation of the "fast-FMI" code (Tang ``analysis_fmi.m``,
MEFB ``metricsFMI.m``): every w×w window (w = 3) of a feature image is turned
into a pdf (min-max normalised values, a constant window becoming all ones,
divided by their sum, in MATLAB column-major order); the joint pdf of a source
window and the fused window is built from the marginal cdfs with Nelsen's
upper (c ≥ 0) or lower (c < 0) Fréchet bound, and FMI = 2·MI/(H_X + H_F),
averaged over windows and over the two sources.  A window identical in X and F
scores 1.  The per-window work is a compiled kernel (``_fmi_kernel``): one pass
over the windows, O(w²) per window through the staircase form of the coupling.

Features: ``'none'`` (raw pixels), ``'dct'`` (orthonormal 2-D DCT of the whole
image, MATLAB ``dct2``), ``'wavelet'`` (single-level ``dwt2`` with the discrete
Meyer wavelet, symmetric extension, subbands tiled [cA cH; cV cD] and rescaled
to [0,1]) and ``'edge'`` (binary Sobel edge map, MATLAB/Octave ``edge`` default).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .._input import prepare, undefined
from ._options import number, option
# the compiled (numba) kernels are imported in the functions that run them: importing this module, as loading the
# metric registry does in every CLI command and worker, then imports no numba (tests/test_imports.py)


@lru_cache(maxsize=1)
def _dmey102():
    """Discrete Meyer wavelet at MATLAB's length (102 taps).

    PyWavelets' ``dmey`` has 62 taps; MATLAB's has 102, which changes the
    ``dwt2`` output size and alignment.  Zero-padding PyWavelets' filters by 20
    taps on each side reproduces the reference FMI_w values to ≤ 1.1e-4 relative
    on the synthetic triples, but only to 2.7e-2 on the Harvard triple: there the
    missing outer taps, tiny as they are, decide whether windows of the large
    black background are constant (a documented known deviation,
    ``calibration.KNOWN_DEVIATIONS``); see docs/metrics.md.
    """
    import pywt

    base = pywt.Wavelet("dmey")
    z = np.zeros(20)
    bank = [np.r_[z, np.asarray(f), z] for f in base.filter_bank]
    return pywt.Wavelet("dmey102", filter_bank=bank)


def _rerange(x: np.ndarray) -> np.ndarray:
    lo, hi = x.min(), x.max()
    return np.ones_like(x) if hi == lo else (x - lo) / (hi - lo)


#: the features ``fmi`` accepts
FEATURES = ("none", "dct", "wavelet", "edge", "gradient")


def _feature(x: np.ndarray, feature: str) -> np.ndarray:
    if feature == "none":
        return x
    if feature == "dct":
        from scipy.fft import dctn

        return dctn(x, norm="ortho")
    if feature == "wavelet":
        from ._dwt import dwt2_tiled

        # = np.block of pywt.dwt2(..., mode="symmetric")'s subbands, bit for bit
        return np.ascontiguousarray(_rerange(dwt2_tiled(x, _dmey102())))
    if feature == "edge":
        from ._edge import sobel_edge

        return sobel_edge(x).astype(np.float64)
    if feature == "gradient":
        return np.gradient(x, axis=1)
    option("fmi", "feature", feature, FEATURES)  # raises: fmi checks its feature before it gets here
    raise AssertionError(feature)


def fmi(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, feature: str = "none", w: int = 3,
        data_range: float | None = None) -> float:
    """FMI with the named feature; mean of FMI(A,F) and FMI(B,F) over all w×w windows.

    Conventions: ``FMI_pixel`` = feature 'none' (true pixel FMI), ``FMI_dct``,
    ``FMI_w`` (discrete Meyer wavelet), ``FMI_edge`` (the default of the
    reference code, which Tang labels "FMI_pixel" and MEFB labels "FMI").
    ``FMI_w`` of a constant F is NaN with an ``UndefinedMetricWarning`` (its
    feature windows would be round-off).  ``FMI_edge`` of a constant F is *not*
    undefined: its edge map is empty, so each of its windows equals every empty
    window of the sources' (sparse) edge maps and scores 1 there, as in the
    reference code; a blank F scores higher than a real fusion (0.9455 at any
    grey level against 0.9285 for the average on syn_s0_128; docs/metrics.md).
    ``feature`` is one of ``'none'`` (default), ``'dct'``, ``'wavelet'``, ``'edge'``, ``'gradient'``;
    any other value raises ``ValueError`` before the images are read, as does a window side ``w`` that is not
    an integer ≥ 2 (every preset and reference uses 3; a window larger than the image is undefined, NaN).
    """
    from ._fmi_lanes import fmi_mean
    option("fmi", "feature", feature, FEATURES)
    w = number("fmi", "w", w, low=2, integer=True)
    f, A, B = prepare(fused, a, b, data_range=data_range)
    if feature == "wavelet" and f.min() == f.max():
        # the detail subbands of a constant image are 0 in exact arithmetic but the round-off of the
        # filter sums here (~1e-13, exactly 0 only at grey level 0); rescaled to [0, 1], that noise
        # decides every window's pdf (before version 2: 0.038 at level 128, 5.9e-17 at level 0)
        return undefined("FMI_w is undefined when F is constant (its wavelet detail windows are round-off)")
    fa, fb, ff = (_feature(x, feature) for x in (A, B, f))
    if min(ff.shape) < w:
        return undefined("FMI needs images larger than the window")
    v = fmi_mean(ff, fa, fb, w)
    return undefined("FMI is undefined on this input") if np.isnan(v) else v
