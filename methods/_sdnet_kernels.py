"""Compiled step of SDNet's inference path (float32): the 1×1 squeeze's projection of one side's four maps.

:func:`project_side` — for every pixel of one branch's 16-channel channels-last maps (L1, L2, L3 of the ``ir``
or the ``vi`` side, :mod:`methods.sdnet`, and L4 = LeakyReLU of its three convolution shares, added and
activated here, so that L4 is never written), the 64-term sum ``Σ_k Σ_c x_k[p, c]·w[k, c]`` in one fixed
order: per channel c, ``((x₁w₁ + x₂w₂) + x₃w₃) + x₄w₄`` (each product rounded, no fused multiply-add), then
the 16 channel sums by a fixed pairwise tree (c with c + 8, then + 4, then ``(t₀ + t₂) + (t₁ + t₃)``).  The
sum is written to ``acc`` (the first side) or added to it (the second side: ``acc + s``).

Why (issue 23, session 11): the squeeze had been a BLAS product of each map by its 16×1 (later 16×2) weight
column, and BLAS rounds a pixel's dot product by where the pixel falls in its rows on some instruction sets
(the 16×2 product was alike everywhere only on MKL's AVX-512 kernels), so bands of rows differed from the
whole image in the last bit on AVX2 and SSE4.2.  Here every pixel goes through the same operations in the same
order wherever it lies, and without ``fastmath`` LLVM keeps IEEE order and rounding whatever it vectorises,
so the bits are the same on SSE4, AVX2 and AVX-512 (``tests/methods/test_sdnet.py``: processes with numba
built for Nehalem, Haswell and the host).  Module level, ``cache=True``: found in numba's disk cache by every new process;
``nogil``: SDNet's two band workers run it at the same time.  Imported lazily by :mod:`methods.sdnet`.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def project_side(x1: np.ndarray, x2: np.ndarray, x3: np.ndarray, a: np.ndarray, b: np.ndarray, c4: np.ndarray,
                 w: np.ndarray, acc: np.ndarray, add: bool) -> None:  # pragma: no cover - compiled
    """``acc[p] (+)= Σ_c (((x1[p,c]·w[0,c] + x2[p,c]·w[1,c]) + x3[p,c]·w[2,c]) + x4[p,c]·w[3,c])`` summed over c
    by the fixed tree of the module docstring, where ``x4 = LeakyReLU₀.₂((a[p, 32 + c] + b[p, 16 + c]) + c4[p, c])``
    is computed here (L4 is read by nothing else: its three summands, the shares of the 16→48, 16→32 and 16→16
    convolutions, are added and activated as torch's ``add`` and ``leaky_relu`` do, ``x if x > 0 else x·0.2f``,
    without being written).  ``x1``…``x3``, ``c4`` P×16, ``a`` P×48, ``b`` P×32 (the whole convolution outputs:
    C-contiguous arrays let LLVM vectorise, channel slices did not, 0.71 against 1.01 ms a 128×256 band), all
    C-contiguous float32; ``w`` 4×16; ``acc`` P."""
    slope = np.float32(0.2)
    t = np.empty(16, np.float32)
    for p in range(acc.shape[0]):
        for c in range(16):
            v = (a[p, 32 + c] + b[p, 16 + c]) + c4[p, c]
            x4 = v if v > 0 else v * slope
            t[c] = ((x1[p, c] * w[0, c] + x2[p, c] * w[1, c]) + x3[p, c] * w[2, c]) + x4 * w[3, c]
        for c in range(8):
            t[c] = t[c] + t[c + 8]
        for c in range(4):
            t[c] = t[c] + t[c + 4]
        s = (t[0] + t[2]) + (t[1] + t[3])
        if add:
            acc[p] = acc[p] + s
        else:
            acc[p] = s
