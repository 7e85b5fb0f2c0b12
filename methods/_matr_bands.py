"""Band machinery of MATR's inference pass (:meth:`methods._matr_net.MATRNet._infer_bands`).

Rows cut into bands of about :data:`BAND_PIXELS` pixels (:func:`row_spans`), what a band stage writes
(:class:`Target`, :class:`Stage`), the padded channels-last feature maps reused within and between passes
(:class:`Maps`), and the gated convolution's 3×3 context pooled from per-row sums the band workers take
(:class:`PoolBins`).  The compiled passes are in :mod:`methods._matr_kernels` (:func:`matr_kernels`, imported on
first use: it imports numba).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np


#: pixels per band of rows of the inference path: a band's 16-channel conv output (4 MB, this machine's L2 cache)
#: and the token blocks on it run together, whatever the image size (issue 23: cost linear in the pixels); a 256²
#: map is one band (one per worker on several threads): smaller bands cost more calls than they saved there
BAND_PIXELS = 65536


def row_spans(h: int, w: int) -> list[tuple[int, int]]:
    """Rows ``0 … h − 1`` cut into bands of about :data:`BAND_PIXELS` pixels, as many as a multiple of the band
    workers (at least one each)."""
    from ._band_workers import workers as band_workers

    workers = band_workers()
    n = max(workers, -(-h * w // BAND_PIXELS))
    n = min(h, -(-n // workers) * workers)
    cuts = [round(i * h / n) for i in range(n + 1)]
    return [(cuts[i], cuts[i + 1]) for i in range(n)]


class Target(NamedTuple):
    """One output of ``Basic3x3.band_pass``: the padded map ``out`` it writes (``accumulate``: adds to), ``after(out,
    y0, y1)`` run on a band's rows once written, ``store(part, channel, out, y0, y1)`` (if given) writing the band
    instead of the torch ReLU and copy."""

    out: Any
    after: Callable[[Any, int, int], None] | None
    accumulate: bool
    store: Callable[..., None] | None


class Stage(NamedTuple):
    """One output of a gated convolution of ``MATRNet._infer_bands``, prepared: ``band(span)`` computes a band of the
    convolution (and what follows on those rows; ``None`` on the other outputs of a convolution with several),
    ``dst`` the map it writes, ``nchw_tokens`` whether the token blocks run on the whole
    map afterwards (tokens straddle rows, or a FLOP counter), ``pool`` whether its pooled context is needed,
    ``sums`` the per-row context sums its bands take (``None``: pooled by torch from the whole map)."""

    band: Callable[[tuple[int, int]], None] | None
    dst: Any
    nchw_tokens: bool
    pool: bool
    sums: np.ndarray | None


def map_pixels(padded: Any) -> Any:
    """The H × W × C pixels (a view) of a padded channels-last map of :class:`Maps`."""
    return padded.permute(0, 2, 3, 1)[0, 1:-1]


def band_pixels(part: Any) -> np.ndarray:
    """The rows × W × C pixels of a band's channels-last 1 × C × rows × W convolution output, as a C-contiguous array."""
    pixels = part.permute(0, 2, 3, 1)[0]
    return (pixels if pixels.is_contiguous() else pixels.contiguous()).numpy()


def map_image(padded: Any) -> Any:
    """The 1 × C × H × W image (a channels-last view) of a padded map of :class:`Maps`."""
    return padded[:, :, 1:-1]


#: the most bytes of feature maps that the network keeps from one inference pass for the next (those of a 256²
#: pass, 22 MB, are kept; a 512² pass's, 86 MB, are not)
KEEP_MAPS_BYTES = 32 << 20


class Maps:
    """Full-size feature maps of one shape for one inference pass, reused once given back.

    Each map is channels-last 1 × C × (H + 2) × W with rows 0 and H + 1 zero (the convolution's zero padding in
    y, see ``Basic3x3.band_pass``).  A fresh map's pages fault in when first written (at 1024² a map is 64 MB, a
    fresh ``mmap``; smaller ones come from a heap that glibc trims after each pass), which cost ≈ 7 % of a 256²
    pass: so the pass reuses the maps it no longer needs (five allocated for ten convolutions, not eleven),
    and :meth:`keep` leaves them to the next pass on the same network while they total at most
    :data:`KEEP_MAPS_BYTES` (:meth:`for_pass`).
    """

    def __init__(self, shape: tuple[int, int, int, int], spare: list | None = None) -> None:
        self.shape = shape
        self.spare: list = spare if spare is not None else []

    @classmethod
    def for_pass(cls, owner: Any, shapes: list[tuple[int, int, int, int]]) -> list["Maps"]:
        """One :class:`Maps` per shape, with the maps that ``owner``'s previous pass kept (taken from it)."""
        kept = owner.__dict__.pop("_kept_maps", {})  # taken, not shared: a concurrent pass allocates its own
        return [cls(shape, kept.get(shape)) for shape in shapes]

    @staticmethod
    def keep(owner: Any, pools: list["Maps"]) -> None:
        """Leave the spare maps of ``pools`` to ``owner``'s next pass if they total at most :data:`KEEP_MAPS_BYTES`."""
        total = sum(t.numel() * t.element_size() for pool in pools for t in pool.spare)
        if total <= KEEP_MAPS_BYTES:
            owner.__dict__["_kept_maps"] = {pool.shape: pool.spare for pool in pools}

    def take(self) -> Any:
        """A map: a spare one, or a new one with its two padding rows zeroed."""
        if self.spare:
            return self.spare.pop()
        import torch

        b, c, h, w = self.shape
        t = torch.empty((b, c, h + 2, w), memory_format=torch.channels_last)
        t[:, :, 0].zero_()
        t[:, :, h + 1].zero_()
        return t

    def give(self, t: Any) -> None:
        """``t`` is no longer needed: the next :meth:`take` returns it."""
        self.spare.append(t)


class PoolBins:
    """The k × k adaptive average pooling of a C-channel map (the gated conv's context), from per-row sums that
    the band workers take as they write the rows (:func:`methods._matr_kernels.row_bin_sums`).

    Bins as ``torch.nn.functional.adaptive_avg_pool2d``: ``[⌊i·n/k⌋, ⌈(i + 1)·n/k⌉)``.  The sums are float64
    and taken in a fixed order, so the pooled context does not depend on the bands (or the thread count); it
    differs from torch's float32 pooling by round-off.
    """

    def __init__(self, h: int, w: int, c: int, k: int) -> None:
        self.h, self.c, self.k = h, c, k
        self.rows = [(i * h // k, -(-(i + 1) * h // k)) for i in range(k)]
        cols = [(j * w // k, -(-(j + 1) * w // k)) for j in range(k)]
        self.starts = np.array([a for a, _ in cols], np.int64)
        self.ends = np.array([b for _, b in cols], np.int64)
        self.counts = np.array([[(ye - ys) * (xe - xs) for xs, xe in cols] for ys, ye in self.rows], np.float64)
        self.row_starts = np.array([a for a, _ in self.rows], np.int64)
        self.row_ends = np.array([b for _, b in self.rows], np.int64)

    def sums(self) -> np.ndarray:
        """The H × k × C float64 per-row sums that :meth:`add` fills, band by band."""
        return np.empty((self.h, self.k, self.c), np.float64)

    def add(self, mem: Any, y0: int, y1: int, sums: np.ndarray) -> None:
        """The column-bin sums of rows ``y0 … y1 − 1`` of ``mem`` (H × W × C pixels, a view) into ``sums``."""
        matr_kernels().row_bin_sums(mem[y0:y1].numpy(), self.starts, self.ends, sums[y0:y1])

    def relu_add(self, src: np.ndarray, channel: int, mem: Any, y0: int, y1: int, sums: np.ndarray) -> None:
        """Rows ``y0 … y1 − 1`` of ``mem`` (H × W × C pixels, a view) = ReLU of channels ``channel …`` of ``src`` (the
        band's convolution output, C-contiguous rows × W × Cs), and their column-bin sums into ``sums``, in one pass
        (:func:`methods._matr_kernels.relu_rows_sums`: the sums of :meth:`add`, the same bits)."""
        matr_kernels().relu_rows_sums(src, channel, mem[y0:y1].numpy(), self.starts, self.ends, sums[y0:y1])

    def pooled(self, sums: np.ndarray) -> Any:
        """The 1 × C × k × k float32 average pooling from the complete ``sums`` (one compiled call,
        :func:`methods._matr_kernels.bin_means`: the bins' rows added in order, in float64, divided and rounded)."""
        import torch

        means = np.empty((self.c, self.k * self.k), np.float32)
        matr_kernels().bin_means(sums, self.row_starts, self.row_ends, self.counts, means)
        return torch.from_numpy(means).view(1, self.c, self.k, self.k)


_KERNELS: Any = None


def matr_kernels() -> Any:
    """:mod:`methods._matr_kernels`, imported on first use (it imports numba), then remembered."""
    global _KERNELS
    if _KERNELS is None:
        from . import _matr_kernels

        _KERNELS = _matr_kernels
    return _KERNELS
