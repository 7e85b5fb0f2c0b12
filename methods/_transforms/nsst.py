"""Non-subsampled shearlet transform (NSST), Easley–Labate–Lim "local" version.

Reproduces ``nsst_dec2`` / ``nsst_rec2`` of the shearlet toolbox shipped with
``MorvanLi/CNP-MIF`` (``shearlet/``; G. Easley, D. Labate, W.-Q. Lim, "Sparse directional
image representations using the discrete shearlet transform", ACHA 25, 2008):

1. a non-subsampled à-trous Laplacian pyramid (``atrousdec``) with Cunha's filters
   (``'maxflat'`` by default), ``len(dcomp)`` levels;
2. per level ``l``, ``2**dcomp[l]`` shearing filters of support ``dsize[l]``×``dsize[l]``:
   Meyer windows on the pseudo-polar grid mapped to Cartesian coordinates and inverse
   FFT'd (``shearing_filters_Myer``), zero-padded to the image size, FFT'd and normalised
   per level by ``sqrt(Σ_k |F_k|²)`` (a tight frame);
3. coefficients ``real(ifft2(F_k · fft2(band)))`` (periodic convolution); the inverse
   multiplies by ``conj(F_k)``, sums over ``k`` and inverts the pyramid.

Layout (same as the toolbox and the Octave dumps): ``lowpass`` = ``dst{1}`` (H×W);
``bands[l]`` = ``dst{l+2}`` of shape ``(2**dcomp[l], H, W)``, ``l = 0`` the **coarsest**
level (``dcomp``/``dsize`` are listed coarse → fine, as in the toolbox);
``bands[l][d]`` = ``dst{l+2}(:, :, d+1)``.

Agreement with the toolbox under GNU Octave 7.3 (``../shared/official/octave_runs/transforms``,
pinned in ``tests/methods/test_transforms_nsst.py``): see ``docs/transforms.md``
max |ours − Octave| over every band ≤ 1.3e-15 for CNP's setting (dcomp [2,2,3,3], dsize [4,4,8,8])
and for [3,3,4,4]/[8,8,16,16] on two 256² MRI slices and a random image (6e-8 against the float32
dump, i.e. float32 rounding).  Perfect reconstruction ≤ 2.6e-15 measured, pinned at 2e-14.

The toolbox handles square images only (``[L, L] = size(x)``); this port also accepts H×W
(the shearing filters are padded to H×W), an extension not covered by the Octave reference.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ._atrous import nsp_decompose, nsp_reconstruct
from ._cache import bounded_cache, in_one_pass
from ._directional import directional_fuse, filter_directions, synthesise_directions
from ._filters import shearing_filters_meyer


@bounded_cache
def shear_filter_bank(shape: tuple[int, int], dcomp: int, dsize: int) -> np.ndarray:
    """Normalised frequency responses ``(2**dcomp, H, W//2+1)`` (rfft2 half-plane) of one level.

    Equals the toolbox's ``shear_f{l}`` (``fft2(w, L, L)/L`` normalised by ``sqrt(Σ|F_k|²)``);
    the ``1/L`` factor cancels in the normalisation.  Read-only, kept in the byte-bounded cache.
    """
    from scipy import fft as sfft
    w = shearing_filters_meyer(dsize, dcomp)
    f = sfft.rfft2(w, s=shape, axes=(-2, -1))
    return f / np.sqrt(np.sum(np.abs(f) ** 2, axis=0))


def nsst_decompose(image: np.ndarray, dcomp: Sequence[int] = (2, 2, 3, 3),
                   dsize: Sequence[int] = (4, 4, 8, 8),
                   pyr_filter: str = "maxflat") -> tuple[np.ndarray, list[np.ndarray]]:
    """NSST decomposition; returns ``(lowpass, bands)`` (layout in the module docstring).

    Defaults are CNP's setting (dcomp [2,2,3,3], dsize [4,4,8,8], 'maxflat'); Liu's
    NSST-PAPCNN uses dcomp [3,3,4,4], dsize [8,8,16,16].
    """
    if len(dcomp) != len(dsize):
        raise ValueError("dcomp and dsize must have the same length")
    x = np.asarray(image, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError("nsst_decompose expects a 2-D image")
    low, highs = nsp_decompose(x, pyr_filter, len(dcomp))
    bands = []
    for band, k, n in zip(highs, dcomp, dsize):
        bands.append(filter_directions(band, shear_filter_bank(x.shape, int(k), int(n))))
    return low, bands


def nsst_reconstruct(lowpass: np.ndarray, bands: Sequence[np.ndarray],
                     dsize: Sequence[int] = (4, 4, 8, 8), pyr_filter: str = "maxflat") -> np.ndarray:
    """Inverse of :func:`nsst_decompose` (``dcomp`` is read from ``bands[l].shape[0]``)."""
    if len(bands) != len(dsize):
        raise ValueError("one dsize per level is needed")
    shape = np.shape(lowpass)
    highs = []
    for band, n in zip(bands, dsize):
        k = int(np.log2(band.shape[0]))
        if 2 ** k != band.shape[0]:
            raise ValueError("the number of directions per level must be a power of 2")
        highs.append(synthesise_directions(band, shear_filter_bank(shape, k, int(n)), conjugate=True))
    return nsp_reconstruct(lowpass, highs, pyr_filter)


@in_one_pass
def nsst_fuse(img1: np.ndarray, img2: np.ndarray, low_rule: Callable[[np.ndarray, np.ndarray], np.ndarray],
              band_rule: Callable[[np.ndarray, np.ndarray], np.ndarray], dcomp: Sequence[int] = (2, 2, 3, 3),
              dsize: Sequence[int] = (4, 4, 8, 8), pyr_filter: str = "maxflat", *,
              context_rows: int | None = None) -> np.ndarray:
    """``nsst_reconstruct(low_rule(low1, low2), [band_rule per direction], …)`` of two images' NSSTs.

    Same values as decomposing both images, fusing every direction with ``band_rule(c1, c2)``
    (one H×W map of each image → the fused map) and the low-pass bands with ``low_rule``, then
    reconstructing; but each direction is made, fused and folded into the reconstruction in
    turn, so neither decomposition is held whole and every temporary is one H×W map.
    ``context_rows=k``: ``band_rule`` depends on the rows within ``k`` of each pixel only (0: pointwise)
    and runs on blocks of rows inside the FFTs (``_directional.directional_fuse``; same values).
    """
    if len(dcomp) != len(dsize):
        raise ValueError("dcomp and dsize must have the same length")
    x1 = np.asarray(img1, dtype=np.float64)
    x2 = np.asarray(img2, dtype=np.float64)
    if x1.ndim != 2 or x1.shape != x2.shape:
        raise ValueError("nsst_fuse expects two 2-D images of the same shape")
    low1, highs1 = nsp_decompose(x1, pyr_filter, len(dcomp))
    low2, highs2 = nsp_decompose(x2, pyr_filter, len(dcomp))
    low = low_rule(low1, low2)
    del low1, low2
    highs = []
    for lev, (k, n) in enumerate(zip(dcomp, dsize)):
        h1, h2 = highs1[lev], highs2[lev]
        highs1[lev] = highs2[lev] = None  # type: ignore[call-overload]  # freed level by level
        bank = shear_filter_bank(x1.shape, int(k), int(n))
        highs.append(directional_fuse(h1, h2, bank, bank, band_rule, conjugate=True,
                                      context_rows=context_rows))
    return nsp_reconstruct(low, highs, pyr_filter)
