"""MLEPF's multi-level morphological gradient, all scales of a row band in one sweep (issue 23, session 7);
below, the true-disk variant (``strel_shape="euclidean"``) by disk rows, all scales sharing the running extremes.

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
from typing import Callable, Iterator

import numpy as np

#: scales swept together (the rows in flight and the rings of a block fit in a 2 MB L2 cache at 768 wide)
BLOCK = 10


@lru_cache(maxsize=None)
def wavefront_kernel() -> Callable[..., bool]:
    """``plane(img, steps, coefs, block, out) -> bool`` of :mod:`methods._mlmg_kernels` (numba; imported on
    first use, compiled once and cached on disk)."""
    from ._mlmg_kernels import plane

    return plane


# ---------------------------------------------------------------- the true disk (strel_shape="euclidean")
#
# MLEPF's ``strel_shape="euclidean"`` takes the dilation and erosion by the true disk x² + y² ≤ r²
# (``_matlab.disk_footprint``, r = 2i + 1, i = 1..40, so up to 163×163).  The numpy reference
# (``mlepf.mlmg_numpy``) calls ``ndimage.grey_dilation`` / ``grey_erosion`` with the full footprint
# (≈ πr² comparisons a pixel): 127 s a 256² plane.  A flat disk is the union of its rows: row dy
# (|dy| ≤ r) is the segment |dx| ≤ w_r(dy) = ⌊√(r² − dy²)⌋, so the max over the disk at (y, x) is the
# max over dy of the running max of half-width w_r(dy) along x of row y + dy (min likewise).
#
# Here every scale shares the running extremes: those of half-width w + 1 are the max (min) of those of
# half-width w one column to the left and one to the right (windows [x − 1 − w, x − 1 + w] and
# [x + 1 − w, x + 1 + w] cover [x − w − 1, x + w + 1] for w ≥ 1; w = 0 → 1 takes the centre too), so the
# half-widths 0..R cost one elementwise max each; after half-width w is built, every (scale, dy) with
# w_r(dy) = w folds row y + dy of it into that scale's extreme.  Rows are taken in bands of output rows
# (the band plus R rows either side, clipped to the image: 'nearest'), with the 40 scales' extremes of
# the band kept side by side.  The values are replaced by their ranks (``np.unique``: order-preserving,
# uint8/uint16/uint32), so the maxima and minima move 2 bytes a pixel instead of 8 (and are exact:
# only selection).
#
# Borders: ``grey_dilation(mode="nearest")`` reads pixel (clip(y + dy), clip(x + dx)); clipping a
# coordinate moves it towards the centre's, which stays inside the disk, so the result is the max over
# the in-image part of the disk — MATLAB's imdilate/imerode with −Inf/+Inf padding — and the row
# decomposition above clips rows, then columns, to the same pixels.  Maxima and minima select values,
# so the results are bit-identical to the reference (no NaN; the MLMG's inputs are |·|, so no −0
# either: np.unique keeps one zero of ±0): ``tests/methods/test_mlepf_euclidean.py``.


@lru_cache(maxsize=None)
def disk_plan(radii: tuple[int, ...]) -> tuple[int, tuple[tuple[tuple[int, int], ...], ...]]:
    """``(R, uses)`` for disks of the given radii: R = the largest, ``uses[w]`` the (scale index, dy) pairs
    whose disk row dy has half-width ⌊√(r² − dy²)⌋ = w (exact, integer square root), w = 0..R."""
    import math

    if not radii or min(radii) < 0:
        raise ValueError(f"disk radii are >= 0, not {radii}")
    big = max(radii)
    uses: list[list[tuple[int, int]]] = [[] for _ in range(big + 1)]
    for s, r in enumerate(radii):
        for dy in range(-r, r + 1):
            uses[math.isqrt(r * r - dy * dy)].append((s, dy))
    return big, tuple(tuple(u) for u in uses)


def _ranks(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, rank of each pixel) with the smallest unsigned dtype that holds the ranks."""
    values, inverse = np.unique(image, return_inverse=True)
    n = len(values)
    dtype = np.uint8 if n <= 1 << 8 else np.uint16 if n <= 1 << 16 else np.uint32
    return values, inverse.reshape(image.shape).astype(dtype)


def _band_extremes(ranks: np.ndarray, radii: tuple[int, ...], y0: int, y1: int,
                   dil: np.ndarray, ero: np.ndarray) -> None:
    """Max (``dil[s]``) and min (``ero[s]``) of ``ranks`` over the disk of radius ``radii[s]`` for the output
    rows y0..y1 − 1, 'nearest' borders (see above)."""
    big, uses = disk_plan(radii)
    h, w = ranks.shape
    rows = np.clip(np.arange(y0 - big, y1 + big), 0, h - 1)
    hi = ranks[rows]  # running max of half-width `width` of the band's rows (row R + k = output row y0 + k)
    lo = hi.copy()  # running min
    hi_next, lo_next = np.empty_like(hi), np.empty_like(hi)
    n = y1 - y0
    started = [False] * len(radii)
    for width in range(big + 1):
        if width and w > 1:  # half-width width from width − 1 (a 1-column image is its own running extreme)
            for run, nxt, pick in ((hi, hi_next, np.maximum), (lo, lo_next, np.minimum)):
                pick(run[:, :-2], run[:, 2:], out=nxt[:, 1:-1])
                pick(run[:, 0], run[:, 1], out=nxt[:, 0])
                pick(run[:, -2], run[:, -1], out=nxt[:, -1])
                if width == 1:
                    pick(nxt, run, out=nxt)
            hi, hi_next, lo, lo_next = hi_next, hi, lo_next, lo
        for s, dy in uses[width]:
            src = slice(big + dy, big + dy + n)
            if started[s]:
                np.maximum(dil[s], hi[src], out=dil[s])
                np.minimum(ero[s], lo[src], out=ero[s])
            else:
                started[s] = True
                dil[s] = hi[src]
                ero[s] = lo[src]


def _band_rows(h: int, w: int) -> int:
    """Output rows per band: about 64k pixels (a 256² plane in one band; the 40 scales' band extremes then
    take 2 × 40 × 64k uint16 = 10 MB), at least 16.  Whole MLEPF pair, 256², loaded 2-core machine: bands
    of 32 / 64 / 128 / 256 rows 1.95 / 1.40 / 1.15 / 1.05–1.2 s; 4 planes of 576×768: 42 / 85 / 170 rows
    3.85 / 3.69 / 3.71 s."""
    return max(16, min(h, (1 << 16) // max(w, 1)))


def disk_extremes(image: np.ndarray, radii: tuple[int, ...] | list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(dilations, erosions) of a 2-D image by the true disks of ``radii``: two (len(radii), H, W) arrays equal
    to ``ndimage.grey_dilation`` / ``grey_erosion(image, footprint=disk_footprint(r), mode="nearest")``
    (bit-identical for images without NaN or −0; see above).  The MLMG uses :func:`euclidean_mlmg_plane`,
    which sums the scales band by band instead of keeping them."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"disk_extremes takes a 2-D image, not shape {image.shape}")
    radii = tuple(int(r) for r in radii)
    h, w = image.shape
    dil = np.empty((len(radii), h, w), image.dtype)
    ero = np.empty_like(dil)
    if image.size == 0:
        return dil, ero
    values, ranks = _ranks(image)
    for y0, y1, band_dil, band_ero in _banded_extremes(ranks, radii):
        dil[:, y0:y1] = values[band_dil]
        ero[:, y0:y1] = values[band_ero]
    return dil, ero


def _banded_extremes(ranks: np.ndarray, radii: tuple[int, ...]) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """``(y0, y1, dilations, erosions)`` of each band of output rows (:func:`_band_rows`), every radius's
    disk extremes of the rank image ``ranks`` for rows ``y0:y1`` (:func:`_band_extremes`)."""
    h, w = ranks.shape
    step = _band_rows(h, w)
    for y0 in range(0, h, step):
        y1 = min(h, y0 + step)
        band_dil = np.empty((len(radii), y1 - y0, w), ranks.dtype)
        band_ero = np.empty_like(band_dil)
        _band_extremes(ranks, radii, y0, y1, band_dil, band_ero)
        yield y0, y1, band_dil, band_ero


def euclidean_mlmg_plane(x: np.ndarray, scales: int, out: np.ndarray) -> None:
    """``out`` = Σ_{i=1..scales} (dilation − erosion)(x, disk(2i + 1)) / (2i + 1) of one float64 plane, added
    scale by scale in the order and with the operations of ``mlepf.mlmg_numpy`` (same bits)."""
    radii = tuple(2 * i + 1 for i in range(1, scales + 1))
    out[...] = 0.0
    if x.size == 0 or not radii:
        return
    values, ranks = _ranks(x)
    for y0, y1, band_dil, band_ero in _banded_extremes(ranks, radii):
        acc = out[y0:y1]
        for s, i in enumerate(range(1, scales + 1)):
            acc[...] = acc + 1 / (2 * i + 1) * (values[band_dil[s]] - values[band_ero[s]])
