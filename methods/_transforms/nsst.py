"""Non-subsampled shearlet transform (NSST), Easley–Labate–Lim "local" version.

Reproduces ``nsst_dec2`` / ``nsst_rec2`` of the shearlet toolbox shipped with
``MorvanLi/CNP-MIF`` (``shearlet/``): a non-subsampled à-trous Laplacian pyramid with
Cunha's ``'maxflat'`` filters, then per level ``2**dcomp[l]`` directional shear filters of
support ``dsize[l]`` built from Meyer windows on the pseudo-polar grid and normalised to a
tight frame, applied by periodic (FFT) convolution.

Layout (same as the toolbox and the Octave dumps): ``lowpass`` = ``dst{1}`` (H×W);
``bands[l]`` = ``dst{l+2}`` of shape ``(2**dcomp[l], H, W)``, ``l = 0`` the **coarsest**
level (``dcomp``/``dsize`` are listed coarse → fine, as in the toolbox);
``bands[l][d]`` = ``dst{l+2}(:, :, d+1)``.  Square images only (as the toolbox).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def nsst_decompose(image: np.ndarray, dcomp: Sequence[int] = (2, 2, 3, 3),
                   dsize: Sequence[int] = (4, 4, 8, 8),
                   pyr_filter: str = "maxflat") -> tuple[np.ndarray, list[np.ndarray]]:
    """NSST decomposition; returns ``(lowpass, bands)`` (layout in the module docstring).

    Defaults are CNP's setting (dcomp [2,2,3,3], dsize [4,4,8,8], 'maxflat').
    """
    raise NotImplementedError("NSST is being implemented (issue 5)")


def nsst_reconstruct(lowpass: np.ndarray, bands: Sequence[np.ndarray],
                     dsize: Sequence[int] = (4, 4, 8, 8), pyr_filter: str = "maxflat") -> np.ndarray:
    """Inverse of :func:`nsst_decompose` (``dcomp`` is read from ``bands[l].shape[0]``)."""
    raise NotImplementedError("NSST is being implemented (issue 5)")
