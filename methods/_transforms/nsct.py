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
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def nsct_decompose(image: np.ndarray, levels: Sequence[int] = (1, 2, 3, 3), pyr_filter: str = "9-7",
                   dir_filter: str = "pkva") -> tuple[np.ndarray, list[np.ndarray]]:
    """NSCT decomposition; returns ``(lowpass, bands)`` (layout in the module docstring).

    Defaults are DTNP's setting ('9-7', 'pkva', [1,2,3,3]).
    """
    raise NotImplementedError("NSCT is being implemented (issue 5)")


def nsct_reconstruct(lowpass: np.ndarray, bands: Sequence[np.ndarray], pyr_filter: str = "9-7",
                     dir_filter: str = "pkva") -> np.ndarray:
    """Inverse of :func:`nsct_decompose` (``levels`` is read from the band shapes)."""
    raise NotImplementedError("NSCT is being implemented (issue 5)")
