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
Perfect reconstruction ≤ 2.6e-15 measured, pinned at 2e-14.  Works for non-square images (the toolbox does too):
5 non-square Octave runs are pinned as well (``octave_nsct_nonsquare`` in the test's folder).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ._atrous import nsp_decompose, nsp_reconstruct
from ._cache import bounded_cache, in_one_pass, would_keep
from ._conv import periodic_kernel_fft
from ._directional import ELIDE_BYTES, directional_fuse, filter_directions, synthesise_directions
from ._filters import nsdfb_filters

_Q1 = np.array([[1, -1], [1, 1]])


def bank_shape(shape: tuple[int, int], nlevels: int) -> tuple[int, int, int]:
    """Shape of an ``nlevels``-level bank of half-spectra on an H×W grid: ``(2**nlevels, H, W//2+1)``."""
    return (2 ** nlevels, int(shape[0]), int(shape[1]) // 2 + 1)


@bounded_cache
def nsdfb_responses(shape: tuple[int, int], dir_filter: str, nlevels: int, kind: str = "d") -> np.ndarray:
    """Frequency responses (rfft2 half-plane) of the ``2**nlevels`` channels of the
    non-subsampled DFB (``nsdfbdec`` for kind 'd', ``nsdfbrec`` for 'r'), shape
    ``(2**nlevels, H, W//2+1)``, channels in toolbox order.

    Every stage of the toolbox's tree is a periodic convolution (``efilter2`` / ``zconv2``), so a
    channel is the product of the responses along its path: filtering by the tree and by this
    product agree to rounding error.  Read-only, kept in the byte-bounded cache (``_cache``).
    """
    (k1, k2), f1, f2 = nsdfb_filters(dir_filter, kind)
    out = np.empty(bank_shape(shape, nlevels), dtype=np.complex128)
    if nlevels >= 3:
        # The channels of the tree one level shorter are this tree's parents, computed by the same
        # products (only their destination differs), so they are taken from the cache (session 9: where
        # the cache cannot hold every level, as nsct.liu at 1024², a rebuilt 4-level bank no longer
        # recomputes its first three levels)
        parents = nsdfb_responses(shape, dir_filter, nlevels - 1, kind)
        _last_level(parents, f1, f2, shape, nlevels, out)
        return out
    fan = [periodic_kernel_fft(k1, shape), periodic_kernel_fft(k2, shape)]
    if nlevels == 1:
        out[0], out[1] = fan
        return out
    # Each channel is written once, straight into ``out`` (no stacked copy of a list of channels,
    # which at 1024² cost as much as the FFTs).  Operand order as the former
    # ``y[k - 1] * periodic_kernel_fft(...)``: numpy elided that temporary (≥ ELIDE_BYTES), i.e.
    # multiplied ``stage * parent``, which can differ in the last bit (complex FMA).
    fan_q = [periodic_kernel_fft(k1, shape, _Q1), periodic_kernel_fft(k2, shape, _Q1)]
    for i, (a, b) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        _product(fan[a], fan_q[b], out[i], swap=False)
    return out


def _stage(lev: int, k: int) -> tuple[np.ndarray, int]:
    """Resampling matrix ``mkl`` and filter index ``i`` of parent channel ``k`` (1-based) at level ``lev`` ≥ 3.

    The toolbox's ``nsdfbdec`` / ``nsdfbrec``: the first ``2**(lev-2)`` parents are upsampled by
    ``2·[[2**(lev-3), 0], [0, 1]]·[[1, 0], [−slk, 1]]`` and use ``f1[i]``, ``f2[i]`` with ``i = (k−1) mod 2``, the
    others by ``2·[[1, 0], [0, 2**(lev-3)]]·[[1, −slk], [0, 1]]`` with ``i = (k−1) mod 2 + 2``, where
    ``slk = 2·⌊(k'−1)/2⌋ − 2**(lev-3) + 1`` (``k'`` counted within each half); ``i`` is the toolbox's index less one.
    """
    half = 2 ** (lev - 2)
    if k <= half:
        slk = 2 * ((k - 1) // 2) - 2 ** (lev - 3) + 1
        return 2 * np.array([[2 ** (lev - 3), 0], [0, 1]]) @ np.array([[1, 0], [-slk, 1]]), (k - 1) % 2
    slk = 2 * ((k - half - 1) // 2) - 2 ** (lev - 3) + 1
    return 2 * np.array([[1, 0], [0, 2 ** (lev - 3)]]) @ np.array([[1, -slk], [0, 1]]), (k - 1) % 2 + 2


def _last_level(parents: np.ndarray, f1, f2, shape: tuple[int, int], lev: int, out: np.ndarray) -> None:
    """Level ``lev`` (≥ 3) of the tree: each parent channel times its two children's stage responses, into ``out``."""
    for k in range(1, 2 ** (lev - 1) + 1):
        mkl, i = _stage(lev, k)
        parent = parents[k - 1]
        for j, f in ((2 * k - 2, f1[i]), (2 * k - 1, f2[i])):
            stage = periodic_kernel_fft(f, shape, mkl)
            _product(parent, stage, out[j], swap=stage.nbytes >= ELIDE_BYTES)


def _product(parent: np.ndarray, stage: np.ndarray, out: np.ndarray, swap: bool) -> np.ndarray:
    """``parent * stage`` (``stage * parent`` when ``swap``) into ``out``."""
    return np.multiply(stage, parent, out=out) if swap else np.multiply(parent, stage, out=out)


class StreamedBank:
    """The channels of an ``nlevels``-level bank (≥ 3) made one at a time, for a fusion the cache cannot hold.

    ``bank[j]`` is channel ``j`` of :func:`nsdfb_responses` (same bits: its parent channel from the cached
    ``(nlevels − 1)``-level bank times the stage response, the product :func:`_last_level` makes), written
    into a buffer that the next ``bank[j]`` overwrites.  ``shape`` and ``nbytes`` are those of the whole bank.

    Why (issue 23, session 10): ``nsct.liu`` at 1024² needs ~620 MB of responses and spectra for the 384 MB
    cache (``_cache.MAX_BYTES``), so its two 4-level banks (134 MB each) were built whole at every pair and
    dropped.  Made channel by channel they cost the same stage FFTs and products without 268 MB of fresh
    memory a pair, and the rest of the working set stays cached.
    """

    def __init__(self, shape: tuple[int, int], dir_filter: str, nlevels: int, kind: str) -> None:
        if nlevels < 3:
            raise ValueError("a streamed bank needs at least 3 levels")
        self.grid = (int(shape[0]), int(shape[1]))
        self.nlevels = nlevels
        self.parents = nsdfb_responses(self.grid, dir_filter, nlevels - 1, kind)
        _, self.f1, self.f2 = nsdfb_filters(dir_filter, kind)
        self.shape = bank_shape(self.grid, nlevels)
        self.nbytes = int(np.prod(self.shape)) * np.dtype(np.complex128).itemsize
        self._stage = np.empty(self.shape[1:], dtype=np.complex128)
        self._channel: np.ndarray | None = None  # made on the first ``bank[j]`` (the fusions read rows only)
        self._block: np.ndarray | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, j: int) -> np.ndarray:
        parent, stage, swap = self._factors(j)
        if self._channel is None:
            self._channel = np.empty(self.shape[1:], dtype=np.complex128)
        return _product(parent, stage, self._channel, swap=swap)

    def rows(self, j: int) -> Callable[[int, int], np.ndarray]:
        """Channel ``j`` in blocks of rows (``_directional.channel_rows``): the stage response is made once, and
        each block ``[r0, r1)`` is the product of the parent's and the stage's rows (the product ``bank[j]``
        makes, same operand order), in a small buffer that the next block overwrites.  The channel plane is
        never written whole: the products that use it read each block while it is in cache (session 11).
        """
        parent, stage, swap = self._factors(j)

        def block(r0: int, r1: int) -> np.ndarray:
            if self._block is None or self._block.shape[0] < r1 - r0:
                self._block = np.empty((r1 - r0,) + self.shape[2:], dtype=np.complex128)
            return _product(parent[r0:r1], stage[r0:r1], self._block[:r1 - r0], swap=swap)

        return block

    def _factors(self, j: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """Channel ``j``'s parent (cached), its stage response (in the stage buffer) and the product's operand order."""
        k = j // 2 + 1  # parent channel, 1-based as in the toolbox
        mkl, i = _stage(self.nlevels, k)
        stage = periodic_kernel_fft((self.f1 if j % 2 == 0 else self.f2)[i], self.grid, mkl, out=self._stage)
        return self.parents[k - 1], stage, stage.nbytes >= ELIDE_BYTES


def fusion_bank(shape: tuple[int, int], dir_filter: str, nlevels: int, kind: str) -> np.ndarray | StreamedBank:
    """The bank for one fusion: :func:`nsdfb_responses` when cached or when the cache would keep it, else a
    :class:`StreamedBank` (same channels, made one at a time)."""
    shape = (int(shape[0]), int(shape[1]))
    hit = nsdfb_responses.peek(shape, dir_filter, nlevels, kind)  # type: ignore[attr-defined]
    if hit is not None:
        return hit
    nbytes = int(np.prod(bank_shape(shape, nlevels))) * np.dtype(np.complex128).itemsize
    if nlevels < 3 or would_keep(nbytes):
        return nsdfb_responses(shape, dir_filter, nlevels, kind)
    return StreamedBank(shape, dir_filter, nlevels, kind)


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
        bands.append(filter_directions(high, nsdfb_responses(x.shape, dir_filter, n, "d")))
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
        bank = nsdfb_responses(shape, dir_filter, n, "r")
        highs.append(synthesise_directions(band, bank, swap=bank.nbytes >= ELIDE_BYTES))
    return nsp_reconstruct(lowpass, highs, pyr_filter)


@in_one_pass
def nsct_fuse(img1: np.ndarray, img2: np.ndarray, low_rule: Callable[[np.ndarray, np.ndarray], np.ndarray],
              band_rule: Callable[[np.ndarray, np.ndarray], np.ndarray], levels: Sequence[int] = (1, 2, 3, 3),
              pyr_filter: str = "9-7", dir_filter: str = "pkva", *, context_rows: int | None = None) -> np.ndarray:
    """``nsct_reconstruct(low_rule(low1, low2), [band_rule per direction], …)`` of two images' NSCTs.

    Same values as decomposing both images, fusing every direction with ``band_rule(c1, c2)``
    (one H×W map of each image → the fused map) and the low-pass bands with ``low_rule``, then
    reconstructing; but the directional bands are made, fused and folded into the
    reconstruction one direction at a time, so neither decomposition is held whole (1024²:
    a few hundred MB less) and every temporary is one H×W map.  ``context_rows=k``: ``band_rule``
    depends on the rows within ``k`` of each pixel only (0: pointwise) and runs on blocks of rows inside
    the FFTs (``_directional.directional_fuse``; same values).
    """
    x1 = np.asarray(img1, dtype=np.float64)
    x2 = np.asarray(img2, dtype=np.float64)
    if x1.ndim != 2 or x1.shape != x2.shape:
        raise ValueError("nsct_fuse expects two 2-D images of the same shape")
    low1, highs1 = nsp_decompose(x1, pyr_filter, len(levels))
    low2, highs2 = nsp_decompose(x2, pyr_filter, len(levels))
    low = low_rule(low1, low2)
    del low1, low2
    highs = []
    for lev, n in enumerate(levels):
        h1, h2 = highs1[lev], highs2[lev]
        highs1[lev] = highs2[lev] = None  # type: ignore[call-overload]  # freed level by level
        n = int(n)
        if n == 0:
            highs.append(np.asarray(band_rule(h1, h2), dtype=np.float64))
            continue
        synthesis = fusion_bank(x1.shape, dir_filter, n, "r")
        highs.append(directional_fuse(h1, h2, fusion_bank(x1.shape, dir_filter, n, "d"), synthesis,
                                      band_rule, swap=synthesis.nbytes >= ELIDE_BYTES, context_rows=context_rows))
    return nsp_reconstruct(low, highs, pyr_filter)
