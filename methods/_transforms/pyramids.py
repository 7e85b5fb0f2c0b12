"""Gaussian, Laplacian and contrast (ratio-of-low-pass) pyramids.

Two border/expansion schemes of the Burt–Adelson 5-tap pyramid are provided; both use the
kernel ``w = [1 4 6 4 1] / 16`` (= Mertens' ``[.0625 .25 .375 .25 .0625]``), separable:

``variant='burt'`` (default)
    Burt & Adelson (1983) after Rockinger's fusion toolbox (``fuse_lap.m``, reused by the
    Liu/VIFB ``lp_fuse``): REDUCE = filter with mirror extension *without* edge repetition
    (``scipy.ndimage`` mode ``'mirror'``), keep samples ``[::2, ::2]``; EXPAND = zero-insert
    into the finer grid, filter with ``2·w`` per axis, same borders.  Odd sizes: the low-pass
    has ``ceil(n/2)`` samples and EXPAND fills back to ``n``.  Rockinger's code differs at the
    borders (its ``es2`` leaves the extension's corners zero; odd sides are first extended by
    a mirrored row/column): :mod:`.rockinger` reproduces it exactly.

``variant='mertens'``
    Tom Mertens' exposure-fusion pyramid code (``laplacian_pyramid.m``, ``downsample.m``,
    ``upsample.m``; used by Liu et al.'s CNN fusion, 2017): REDUCE filters with MATLAB
    ``'symmetric'`` borders (edge repeated; ``scipy.ndimage`` ``'reflect'``) and keeps
    ``[::2, ::2]``; EXPAND pads the coarse image by one replicated pixel, zero-inserts,
    filters with zero borders and ``2·w`` per axis, then crops (handling odd sizes
    exactly as Mertens' ``odd`` vector does).

Layout: ``laplacian_pyramid(img, levels)`` returns ``levels + 1`` arrays, the band-pass
(detail) images from the **finest** (index 0, full size) to the coarsest, then the low-pass
residual last.  Mertens' ``laplacian_pyramid(I, nlev)`` is therefore
``laplacian_pyramid(I, nlev - 1, variant='mertens')`` (his default ``nlev =
floor(log2(min(H, W)))``), and his ``gaussian_pyramid(I, nlev)`` is
``gaussian_pyramid(I, nlev - 1, variant='mertens')``.

Reconstruction is exact by construction (error ~1e-16).  Works for any H×W (and for
H×W×C stacks: the filters act on the first two axes only).
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from ._separable import axis0_then_axis1

Variant = Literal["burt", "mertens"]

BURT_KERNEL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
"""Burt–Adelson generating kernel with a = 0.375 (identical to Mertens' pyramid_filter)."""


def _check_variant(variant: str) -> None:
    if variant not in ("burt", "mertens"):
        raise ValueError(f"variant must be 'burt' or 'mertens', not {variant!r}")


def _sep_filter(img: np.ndarray, kernel: np.ndarray, mode: str) -> np.ndarray:
    """``correlate1d`` along axis 0 then axis 1; a 2-D image's axis-0 pass runs on the rows of its
    transpose (same values bit for bit, linear cost at 1024²: :mod:`._separable`)."""
    from scipy import ndimage
    return axis0_then_axis1(img, lambda x, axis: ndimage.correlate1d(x, kernel, axis=axis, mode=mode))


def reduce(image: np.ndarray, variant: Variant = "burt") -> np.ndarray:
    """One REDUCE step: low-pass filter then keep every other row and column (from index 0)."""
    _check_variant(variant)
    mode = "mirror" if variant == "burt" else "reflect"
    return _sep_filter(image, BURT_KERNEL, mode)[::2, ::2]


def expand(image: np.ndarray, shape: tuple[int, ...], variant: Variant = "burt") -> np.ndarray:
    """One EXPAND step: interpolate the coarse ``image`` onto the finer grid of ``shape[:2]``."""
    _check_variant(variant)
    h, w = shape[0], shape[1]
    if variant == "burt":
        up = np.zeros((h, w) + image.shape[2:], dtype=np.float64)
        up[::2, ::2] = image
        return _sep_filter(up, 2.0 * BURT_KERNEL, "mirror")
    # Mertens: replicate-pad by 1, zero-insert (x4 gain split as 2 per axis), zero-border filter, crop
    pad = [(1, 1), (1, 1)] + [(0, 0)] * (image.ndim - 2)
    padded = np.pad(image, pad, mode="edge")
    up = np.zeros((2 * padded.shape[0], 2 * padded.shape[1]) + image.shape[2:], dtype=np.float64)
    up[::2, ::2] = padded
    up = _sep_filter(up, 2.0 * BURT_KERNEL, "constant")
    return up[2:2 + h, 2:2 + w]


def gaussian_pyramid(image: np.ndarray, levels: int, variant: Variant = "burt") -> list[np.ndarray]:
    """Gaussian pyramid ``[G_0 = image, G_1, ..., G_levels]`` (``levels + 1`` arrays, fine → coarse)."""
    cur = np.asarray(image, dtype=np.float64)
    pyr = [cur]
    for _ in range(levels):
        cur = reduce(cur, variant)
        pyr.append(cur)
    return pyr


def laplacian_pyramid(image: np.ndarray, levels: int, variant: Variant = "burt") -> list[np.ndarray]:
    """Laplacian pyramid ``[L_0, ..., L_{levels-1}, G_levels]``.

    ``L_k = G_k − EXPAND(G_{k+1})`` are the band-pass images from the finest (full size) to the
    coarsest; the last entry is the low-pass residual ``G_levels``.  See the module docstring
    for the two variants and the mapping to Mertens' ``nlev``.
    """
    gauss = gaussian_pyramid(image, levels, variant)
    pyr = [g - expand(g_next, g.shape, variant) for g, g_next in zip(gauss[:-1], gauss[1:])]
    pyr.append(gauss[-1])
    return pyr


def reconstruct_laplacian(pyramid: list[np.ndarray], variant: Variant = "burt") -> np.ndarray:
    """Collapse a Laplacian pyramid (layout of :func:`laplacian_pyramid`)."""
    out = np.asarray(pyramid[-1], dtype=np.float64)
    for band in reversed(pyramid[:-1]):
        out = band + expand(out, band.shape, variant)
    return out


def contrast_pyramid(image: np.ndarray, levels: int, variant: Variant = "burt",
                     eps: float = 1e-6) -> list[np.ndarray]:
    """Toet's ratio-of-low-pass (contrast) pyramid ``[C_0, ..., C_{levels-1}, G_levels]``.

    ``C_k = G_k / (EXPAND(G_{k+1}) + eps) − 1`` (fine → coarse), last entry the low-pass
    residual.  ``eps`` guards the division on black backgrounds; it is used identically in
    :func:`reconstruct_contrast`, so reconstruction stays exact.  Meant for non-negative images.
    """
    gauss = gaussian_pyramid(image, levels, variant)
    pyr = [g / (expand(g_next, g.shape, variant) + eps) - 1.0 for g, g_next in zip(gauss[:-1], gauss[1:])]
    pyr.append(gauss[-1])
    return pyr


def reconstruct_contrast(pyramid: list[np.ndarray], variant: Variant = "burt", eps: float = 1e-6) -> np.ndarray:
    """Invert :func:`contrast_pyramid`: ``G_k = (C_k + 1) · (EXPAND(G_{k+1}) + eps)``."""
    out = np.asarray(pyramid[-1], dtype=np.float64)
    for band in reversed(pyramid[:-1]):
        out = (band + 1.0) * (expand(out, band.shape, variant) + eps)
    return out
