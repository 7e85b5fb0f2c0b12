"""MLEPF's multi-level morphological gradient, all scales of a row band in one sweep (issue 23, session 7).

``mlepf.mlmg`` grows the dilation and erosion of each plane scale by scale: with MATLAB's
``strel('disk', R)`` every scale adds either a 5×5 square (two vertical and two horizontal 3-point
line steps) or a 9-point diamond (one diagonal and one anti-diagonal step) to the previous scale's
structuring element, and the gradient sum adds c_i·(dilation_i − erosion_i) scale by scale.  The
session-6 kernel did each scale as whole-canvas passes (square or diamond, dilation, erosion, then
the sum): 40 sweeps of float64 canvases that do not fit in the L2 cache.

Here a block of scales sweeps the canvas together as a wavefront: scale s works on row y while scale
s + 1 works on row y − 2 (each pass reads two rows either side), in place, each scale keeping the
two input rows it has already overwritten in a 3-row ring; the sum of row y gets scale s after
scale s − 1.  So the rows in flight stay in cache for a whole block of scales.  Every output value
is the max/min of the same values (selection only, so exact in any grouping) and the sum adds in
the reference's order: the results equal the scale-by-scale kernel's (``tests/methods/test_mlepf.py``,
``test_wavefront_mlmg_*``).  Increments other than a square or a diamond return ``False`` (the caller
then uses the scale-by-scale kernel).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

#: scales swept together (the rows in flight and the rings of a block fit in a 2 MB L2 cache at 768 wide)
BLOCK = 10


@lru_cache(maxsize=None)
def wavefront_kernel() -> Callable[..., bool]:
    """``plane(img, steps, coefs, block, out) -> bool`` of :mod:`methods._mlmg_kernels` (numba; imported on
    first use, compiled once and cached on disk)."""
    from ._mlmg_kernels import plane

    return plane
