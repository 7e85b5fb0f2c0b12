"""Non-subsampled contourlet transform (NSCT), Cunha–Zhou–Do.

Reproduces ``nsctdec`` / ``nsctrec`` of the Nonsubsampled Contourlet Toolbox (as shipped in
``MorvanLi/DTNP-MIF/nsct_toolbox``): a non-subsampled pyramid (``nsfbdec`` with
``atrousfilters``: '9-7', 'maxflat', 'pyr', 'pyrexc') followed at each level by a
non-subsampled directional filter bank (``nsdfbdec`` with ``dfilters``: 'pkva',
'dmaxflat7', 'vk').

Layout (same as the toolbox and the Octave dumps): ``lowpass`` = ``y{1}`` (H×W);
``bands[l]`` = ``y{l+2}`` stacked to shape ``(2**levels[l], H, W)``, ``l = 0`` the
**coarsest** level (``levels`` is listed coarse → fine, as in the toolbox: DTNP's
``[1, 2, 3, 3]`` gives 2, 4, 8, 8 directions); ``bands[l][d]`` = ``y{l+2}{d+1}``.
A level of 0 directions gives shape ``(1, H, W)`` (the band-pass image itself).

Agreement with the toolbox under GNU Octave 7.3 (``../shared/official/octave_runs/transforms``,
pinned in ``tests/methods/test_transforms_nsct.py``): max |ours − Octave| over every band
≤ 3.1e-15 for '9-7'/'pkva'/[1,2,3,3] (DTNP), 'pyrexc'/'vk'/[2,3,3,4] (Liu MST-SR) and
'maxflat'/'dmaxflat7'/[2,3,3,4] (toolbox default), on two 256² MRI slices and a random image.
Perfect reconstruction ≤ 4e-15.  Works for non-square images (the toolbox does too).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
from scipy import fft as sfft

from ._atrous import nsp_decompose, nsp_reconstruct
from ._conv import periodic_kernel_fft
from ._filters import nsdfb_filters

_Q1 = np.array([[1, -1], [1, 1]])


@lru_cache(maxsize=32)
def nsdfb_responses(shape: tuple[int, int], dir_filter: str, nlevels: int, kind: str = "d") -> np.ndarray:
    """Frequency responses (rfft2 half-plane) of the ``2**nlevels`` channels of the
    non-subsampled DFB (``nsdfbdec`` for kind 'd', ``nsdfbrec`` for 'r'), shape
    ``(2**nlevels, H, W//2+1)``, channels in toolbox order.

    Every stage of the toolbox's tree is a periodic convolution (``efilter2`` / ``zconv2``), so a
    channel is the product of the responses along its path: filtering by the tree and by this
    product agree to rounding error.
    """
    (k1, k2), f1, f2 = nsdfb_filters(dir_filter, kind)
    fan = [periodic_kernel_fft(k1, shape), periodic_kernel_fft(k2, shape)]
    if nlevels == 1:
        out = np.stack(fan)
        out.setflags(write=False)
        return out
    fan_q = [periodic_kernel_fft(k1, shape, _Q1), periodic_kernel_fft(k2, shape, _Q1)]
    y = [fan[0] * fan_q[0], fan[0] * fan_q[1], fan[1] * fan_q[0], fan[1] * fan_q[1]]
    for lev in range(3, nlevels + 1):
        new = [None] * 2 ** lev
        half = 2 ** (lev - 2)
        for k in range(1, 2 ** (lev - 1) + 1):
            if k <= half:
                slk = 2 * ((k - 1) // 2) - 2 ** (lev - 3) + 1
                mkl = 2 * np.array([[2 ** (lev - 3), 0], [0, 1]]) @ np.array([[1, 0], [-slk, 1]])
                i = (k - 1) % 2
            else:
                slk = 2 * ((k - half - 1) // 2) - 2 ** (lev - 3) + 1
                mkl = 2 * np.array([[1, 0], [0, 2 ** (lev - 3)]]) @ np.array([[1, -slk], [0, 1]])
                i = (k - 1) % 2 + 2
            new[2 * k - 2] = y[k - 1] * periodic_kernel_fft(f1[i], shape, mkl)
            new[2 * k - 1] = y[k - 1] * periodic_kernel_fft(f2[i], shape, mkl)
        y = new
    out = np.stack(y)
    out.setflags(write=False)
    return out


def nsct_decompose(image: np.ndarray, levels: Sequence[int] = (1, 2, 3, 3), pyr_filter: str = "9-7",
                   dir_filter: str = "pkva") -> tuple[np.ndarray, list[np.ndarray]]:
    """NSCT decomposition; returns ``(lowpass, bands)`` (layout in the module docstring).

    Defaults are DTNP's setting ('9-7', 'pkva', [1,2,3,3]).  The toolbox's own defaults are
    ('maxflat', 'dmaxflat7'); Liu's MST-SR toolbox uses ('pyrexc', 'vk', [2,3,3,4]).
    """
    x = np.asarray(image, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError("nsct_decompose expects a 2-D image")
    low, highs = nsp_decompose(x, pyr_filter, len(levels))
    bands = []
    for high, n in zip(highs, levels):
        n = int(n)
        if n == 0:
            bands.append(high[None])
            continue
        resp = nsdfb_responses(x.shape, dir_filter, n, "d")
        bands.append(sfft.irfft2(resp * sfft.rfft2(high), s=x.shape, axes=(-2, -1)))
    return low, bands


def nsct_reconstruct(lowpass: np.ndarray, bands: Sequence[np.ndarray], pyr_filter: str = "9-7",
                     dir_filter: str = "pkva") -> np.ndarray:
    """Inverse of :func:`nsct_decompose` (``levels`` is read from the band shapes)."""
    shape = np.shape(lowpass)
    highs = []
    for band in bands:
        nd = band.shape[0]
        n = int(np.log2(nd))
        if 2 ** n != nd:
            raise ValueError("the number of directions per level must be a power of 2")
        if n == 0:
            highs.append(np.asarray(band[0], dtype=np.float64))
            continue
        resp = nsdfb_responses(shape, dir_filter, n, "r")
        highs.append(sfft.irfft2(np.sum(resp * sfft.rfft2(band, axes=(-2, -1)), axis=0), s=shape))
    return nsp_reconstruct(lowpass, highs, pyr_filter)
