"""Rockinger's Laplacian pyramid, exactly as ``lp_fuse.m`` computes it (Liu's MST-SR toolbox, VIFB).

Oliver Rockinger's image fusion toolbox (1999) is the pyramid code of Liu, Liu & Wang's
MST-SR toolbox (``lp_fuse.m``, Inf. Fusion 24, 2015), which VIFB ships.  Per level:

* an odd side is first extended by one mirrored row/column (``adb.m``: numpy ``'reflect'`` at
  the bottom/right), and the size before that extension is recorded;
* ``G = conv2(conv2(es2(M, 2), w, 'valid'), w', 'valid')`` with ``w = [1 4 6 4 1]/16``, where
  ``es2`` mirrors without repeating the edge but leaves its ``n``×``n`` corners **zero**
  (:func:`es2`) — unlike a true separable mirror filter, which the ``'burt'`` variant of
  :mod:`.pyramids` is;
* ``MT = conv2(conv2(es2(undec2(dec2(G)), 2), 2w, 'valid'), 2w', 'valid')`` (``dec2`` keeps
  ``[::2, ::2]``, ``undec2`` zero-inserts into twice the size); the band is ``M − MT`` at the
  extended size, and the next level is ``dec2(G)``.

Synthesis: ``M = interp(undec2(M)) + band``, cropped to the recorded size, coarse to fine.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

W = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
"""``lp_fuse.m``'s ``w``."""


def es2(x: np.ndarray, n: int) -> np.ndarray:
    """``es2(X, n)`` on the last two axes: mirror by ``n`` without repeating the edge (numpy
    ``'reflect'``); the four ``n``×``n`` corners stay zero, as ``es2.m`` never fills them."""
    pad = [(0, 0)] * (x.ndim - 2) + [(n, n), (n, n)]
    y = np.pad(np.asarray(x, dtype=np.float64), pad, mode="reflect")
    for rows in (slice(0, n), slice(-n, None)):
        for cols in (slice(0, n), slice(-n, None)):
            y[..., rows, cols] = 0.0
    return y


def _filter(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``conv2(conv2(es2(X, 2), k, 'valid'), k', 'valid')`` for a symmetric 5-tap ``k``: along the
    rows first (``k`` is a row vector), then down the columns."""
    h, w = x.shape
    ext = es2(x, 2)
    rows = sum(kernel[t] * ext[:, t:t + w] for t in range(5))
    return sum(kernel[t] * rows[t:t + h, :] for t in range(5))


def _undec2(x: np.ndarray) -> np.ndarray:
    up = np.zeros((2 * x.shape[0], 2 * x.shape[1]))
    up[::2, ::2] = x
    return up


def _analysis(image: np.ndarray, levels: int, band: Callable[[np.ndarray, np.ndarray], np.ndarray],
              ) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """The per-level loop of ``lp_fuse.m`` / ``rp_fuse.m``; ``band(M, MT)`` makes a level's band."""
    m = np.asarray(image, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"Rockinger's pyramids take a 2-D image, not shape {m.shape}")
    bands, sizes = [], []
    for _ in range(levels):
        sizes.append(m.shape)
        odd = (m.shape[0] % 2, m.shape[1] % 2)
        if any(odd):
            m = np.pad(m, ((0, odd[0]), (0, odd[1])), mode="reflect")
        g = _filter(m, W)
        bands.append(band(m, _filter(_undec2(g[::2, ::2]), 2 * W)))
        m = g[::2, ::2]
    bands.append(m)
    return bands, sizes


def _synthesis(pyramid: list[np.ndarray], sizes: list[tuple[int, int]],
               combine: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """The synthesis loop: ``M = combine(interp(undec2(M)), band)``, cropped to the level's size."""
    m = np.asarray(pyramid[-1], dtype=np.float64)
    for band, (h, w) in zip(reversed(pyramid[:-1]), reversed(sizes)):
        m = combine(_filter(_undec2(m), 2 * W), band)[:h, :w]
    return m


def rockinger_pyramid(image: np.ndarray, levels: int) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """``lp_fuse.m``'s analysis: ``([band_0, ..., band_{levels-1}, low], sizes)``, fine to coarse.

    Each band ``M − MT`` has the (even) size of its level after ``adb``; ``sizes[k]`` is the size before.
    """
    return _analysis(image, levels, lambda m, mt: m - mt)


def reconstruct_rockinger(pyramid: list[np.ndarray], sizes: list[tuple[int, int]]) -> np.ndarray:
    """``lp_fuse.m``'s synthesis of a (fused) pyramid in the layout of :func:`rockinger_pyramid`."""
    return _synthesis(pyramid, sizes, lambda mt, band: mt + band)


def rockinger_ratio_pyramid(image: np.ndarray, levels: int,
                            eps: float = 1e-6) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """``rp_fuse.m``'s analysis (Toet's ratio of low-pass pyramid in Rockinger's code): as
    :func:`rockinger_pyramid`, but each band is the ratio ``M ./ (MT + eps)`` (not minus one)."""
    return _analysis(image, levels, lambda m, mt: m / (mt + eps))


def reconstruct_rockinger_ratio(pyramid: list[np.ndarray], sizes: list[tuple[int, int]],
                                eps: float = 1e-6) -> np.ndarray:
    """``rp_fuse.m``'s synthesis: ``M = (interp(undec2(M)) + eps) .* band``, cropped, coarse to fine."""
    return _synthesis(pyramid, sizes, lambda mt, band: (mt + eps) * band)
