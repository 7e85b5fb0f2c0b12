"""Multiscale transforms shared by the classical and the transform-domain baselines.

One module per transform, each with a ``*_decompose`` / ``*_reconstruct`` pair:

- :mod:`.dwt`: 2-D DWT through PyWavelets (``wavedec2`` layout).
- :mod:`.pyramids`: Gaussian / Laplacian pyramids (Burt–Adelson [1 4 6 4 1]/16, and
  Mertens' 5-tap variant with MATLAB ``'symmetric'`` borders), contrast pyramid (Toet).
- :mod:`.nsst`: Easley–Labate–Lim local non-subsampled shearlet transform (``nsst_dec2``).
- :mod:`.nsct`: Cunha–Zhou–Do non-subsampled contourlet transform (``nsctdec``).

Band order convention of the directional transforms (NSST, NSCT): they return
``(lowpass, bands)`` where ``lowpass`` is the toolbox's ``y{1}`` (H×W) and
``bands[l]`` is an array of shape ``(ndir_l, H, W)`` holding the toolbox's
``y{l+2}`` — ``l = 0`` is the **coarsest** band-pass level, ``l = -1`` the finest —
with ``bands[l][d]`` = toolbox direction ``d + 1``.  This is the order of the
Octave dumps in ``../shared/official/octave_runs/transforms`` (``band_l<l+1>[:, :, d]``).
``nsst_fuse`` / ``nsct_fuse`` fuse two images' transforms direction by direction (same values as
decompose → fuse → reconstruct, without holding either decomposition whole).
"""
from __future__ import annotations

from .dwt import dwt_decompose, dwt_reconstruct
from .nsct import nsct_decompose, nsct_fuse, nsct_reconstruct
from .nsst import nsst_decompose, nsst_fuse, nsst_reconstruct
from .pyramids import (
    contrast_pyramid,
    gaussian_pyramid,
    laplacian_pyramid,
    reconstruct_contrast,
    reconstruct_laplacian,
)

__all__ = [
    "dwt_decompose", "dwt_reconstruct",
    "laplacian_pyramid", "reconstruct_laplacian", "gaussian_pyramid",
    "contrast_pyramid", "reconstruct_contrast",
    "nsst_decompose", "nsst_reconstruct", "nsst_fuse",
    "nsct_decompose", "nsct_reconstruct", "nsct_fuse",
]
