"""SDNet's two torch modules and their inference helpers: the squeeze network (layers 1–5, with its lean
banded inference path) and the decomposition head (layers 6–9, training only).  Built untrained by :func:`methods.sdnet._build_modules`;
the official weights are loaded by :func:`methods.sdnet.load_sdnet`.  Imported only when SDNet runs (torch).
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import _band_workers
from ._onednn import conv2d as _conv  # always oneDNN: the same bits for a band as for the whole image
from ._row_bands import even_bands, small_band_rows

_SIDES = ("ir", "vi")

#: input rows a band reads beyond its own on either side (receptive field radius: 5×5, then three 3×3, then 1×1)
HALO = 5


#: images of this many pixels or more run as one band per band worker on several torch threads (a 128²
#: image's halo rows cost ~8 % more work; smaller ones are not worth a second thread)
SPLIT_PIXELS = 1 << 14


@functools.cache
def keep_band_maps_on_the_heap() -> None:
    """Once per process: raise glibc's dynamic mmap threshold to 24 MiB (trim threshold 48 MiB), as freeing any
    24 MiB array does, so that a band's maps come from the heap and stay there between bands.

    glibc serves an allocation above its mmap threshold (128 KiB at start) with a fresh ``mmap`` and, when such
    a chunk is freed, raises the threshold to its size and the heap's trim threshold to twice that.  A process
    that has only run SDNet's bands (largest map ~7 MiB) trims its heap after every band, and every band's maps
    are then page-faulted in afresh (session 11, one thread, fresh processes: a 1024² forward after a 256² and a
    512² one, all banded, 733 MiB of page faults and 1.38 s instead of none and 1.0 s; a 512² forward after a
    300² one 93-132 MiB instead of none, ``tests/methods/test_sdnet.py``); a process that had freed a larger
    array first (a whole 256² image's 12 MiB map, the conv yardstick's 16 MiB) did not fault.  Not glibc, or
    a fixed threshold (``MALLOC_TRIM_THRESHOLD_``): no effect."""
    import torch

    torch.empty(24 << 20, dtype=torch.uint8)  # mmapped (above the threshold) and freed at once


def _side_weights(weight: Any) -> np.ndarray:
    """The 1×1 squeeze's 1×128×1×1 ``weight`` as a 2×4×16 float32 array: ``[side, k]`` is the column of map
    L(k+1) of side ``ir`` (0) or ``vi`` (1) in the official concatenation [L1_ir, L1_vi, L2_ir, L2_vi, …]."""
    return np.ascontiguousarray(weight.detach().reshape(4, 2, 16).numpy().transpose(1, 0, 2))


def _project_side(maps: tuple[Any, ...], parts: tuple[Any, ...], weights: np.ndarray, acc: np.ndarray,
                  add: bool) -> None:
    """One side's projection into ``acc`` (N×h×W float32), written (``add=False``) or added, by ``weights`` (4×16):
    ``maps`` its channels-last N×16×h×W maps L1, L2, L3; ``parts`` the channels-last N×48, N×32 and N×16×h×W
    convolution outputs whose channels 32-47, 16-31 and 0-15 are L4's three summands before its LeakyReLU, which
    :func:`methods._sdnet_kernels.project_side` adds and activates itself (L4 is never written).  One fixed order
    per pixel.

    That kernel replaced BLAS products of each map by its weight column (session 11, H1b): those rounded a
    pixel's 16-term sum by where the pixel fell in its rows (16×1: BLAS's matrix-vector path, on AVX-512 too;
    16×2: on MKL's AVX2 and SSE4.2 kernels, not on its AVX-512 ones), so bands of rows and 1 vs 2 threads
    differed in the last bit on AVX2 machines.  The kernel's sum is the same for a pixel wherever it lies, on
    SSE4, AVX2 and AVX-512 (``tests/methods/test_sdnet.py``)."""
    from ._sdnet_kernels import project_side

    channels = tuple(m.shape[1] for m in (*maps, *parts))
    if channels != (16, 16, 16, 48, 32, 16):
        raise ValueError(f"SDNet squeeze: maps of {channels} channels, expected (16, 16, 16, 48, 32, 16)")
    arrays = [m.detach().permute(0, 2, 3, 1).numpy() for m in (*maps, *parts)]  # N×h×W×C views
    for i in range(acc.shape[0]):
        # each image's rows of a channels-last map are contiguous: P×C views (a copy only if they were not)
        x = [np.ascontiguousarray(a[i]).reshape(-1, a.shape[-1]) for a in arrays]
        project_side(*x, weights, acc[i].reshape(-1), add)


def band_rows(shape: tuple[int, int]) -> int:
    """Output rows per band for an H×W input: as many (≥ 16) as keep the band's 48-channel float32 map (layer 1's
    share of layers 2-4), halo rows included, within 8 MiB (:func:`methods._row_bands.small_band_rows` with
    ``whole_pixels=0``): all of them while the whole image's map fits (up to ~128×330), 160 at width 256 (two
    bands of 128 rows at 256²), 32 at width 1024.  256² is banded too: its whole forward's maps (~50 MiB live)
    exceed glibc's trim threshold and were page-faulted in afresh at every call (44-60 MiB of faults a forward,
    none in two bands; session 11)."""
    return small_band_rows(shape, 48, 2 * HALO, whole_pixels=0)


def bands(h: int, step: int, workers: int) -> list[tuple[int, int]]:
    """Rows ``0 … h − 1`` as even bands of at most ``step`` rows, as many as a multiple of ``workers`` (each band
    worker then gets the same number of bands of the same size ±1 row) and at most ``h``."""
    n = max(1, -(-h // max(1, step)))
    n = min(h, -(-n // workers) * workers)
    return even_bands(0, h, -(-h // n))


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """The official leaky ReLU (slope 0.2)."""
    return F.leaky_relu(x, 0.2)


class SDNetSqueeze(nn.Module):
    """Layers 1–5: fused = tanh(conv1x1(dense features of both branches)); inputs/outputs in [−1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        for s in _SIDES:
            setattr(self, f"layer1_{s}", nn.Conv2d(1, 16, 5, padding=2))
            setattr(self, f"layer2_{s}", nn.Conv2d(16, 16, 3, padding=1))
            setattr(self, f"layer3_{s}", nn.Conv2d(32, 16, 3, padding=1))
            setattr(self, f"layer4_{s}", nn.Conv2d(48, 16, 3, padding=1))
        self.layer5_fuse = nn.Conv2d(128, 1, 1)

    def _branch(self, s: str, x: torch.Tensor) -> list[torch.Tensor]:
        f1 = lrelu(getattr(self, f"layer1_{s}")(x))
        f2 = lrelu(getattr(self, f"layer2_{s}")(f1))
        f3 = lrelu(getattr(self, f"layer3_{s}")(torch.cat([f1, f2], 1)))
        f4 = lrelu(getattr(self, f"layer4_{s}")(torch.cat([f1, f2, f3], 1)))
        return [f1, f2, f3, f4]

    def forward(self, function: torch.Tensor, structure: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():
            return self.infer(function, structure)
        fi = self._branch("ir", function)
        fv = self._branch("vi", structure)
        inter = [t for pair in zip(fi, fv) for t in pair]  # L1_ir, L1_vi, L2_ir, L2_vi, ...
        return torch.tanh(self.layer5_fuse(torch.cat(inter, 1)))

    def infer(self, function: torch.Tensor, structure: torch.Tensor, rows: int | None = None) -> torch.Tensor:
        """The inference path (no grad): :meth:`_forward_lean` in bands of rows (:func:`bands`).

        ``rows``: output rows per band (default :func:`band_rows`: two bands at 256²).  With N > 1
        torch threads the pass runs as N single-threaded band workers (:func:`methods._band_workers.band_workers`;
        nothing changes at one thread, with autograd or under a FLOP counter, which so counts the whole
        image's official FLOPs): an image of :data:`SPLIT_PIXELS` or more is cut into a multiple of N bands
        (256²: the same two of 128 rows), each worker taking a run of consecutive bands
        (:func:`methods._band_workers.run_spans`, ``contiguous``), so no small 16-channel convolution is split
        two ways inside oneDNN (a barrier per operation: two threads gave ~1.5× one, session 10).

        Each band of output rows is :meth:`_forward_lean` on the band's input rows with :data:`HALO` rows
        more on either side (clipped to the image), every layer computed only on the rows that later
        layers still read.  A cut's zero padding spoils 2 rows inward at the 5×5 layer and one more at
        each 3×3 layer (5 in all; the 1×1 squeeze none), all outside the rows kept; at the image's
        borders a band pads as the whole image does.  So every kept row sees the whole image's input;
        the convolutions and the squeeze's sums (:func:`_project_side`) round a pixel the same
        wherever it lies, so the output is bit-identical whatever the bands and the thread count
        (``tests/methods/test_sdnet.py``: odd sizes, 1-row bands, 1 vs 2 threads).  Why bands: a whole image's
        16- and 48-channel maps (12 MiB at 256², 192 MiB at 1024²) are page-faulted in afresh at every call
        (fresh ``mmap``s, or a heap trimmed after every call); a band's are reused from the heap
        (:func:`band_rows`, :func:`keep_band_maps_on_the_heap`; ``docs/fidelity.md`` §SDNet, sessions 9 and 11).
        """
        h, w = function.shape[-2:]
        keep_band_maps_on_the_heap()
        with _band_workers.band_workers():
            n = _band_workers.workers() if h * w >= SPLIT_PIXELS else 1
            spans = bands(h, rows if rows is not None else band_rows((h, w)), n)
            if len(spans) == 1 or torch._C._len_torch_dispatch_stack() > 0:  # a FLOP counter: the official count
                return self._forward_lean(function, structure)
            weights = [self._lean_weights(s) for s in _SIDES]
            out = function.new_empty(function.shape[0], 1, h, w)

            def band(span: tuple[int, int]) -> None:
                r0, r1 = span
                s, e = max(0, r0 - HALO), min(h, r1 + HALO)
                self._forward_lean(function[:, :, s:e], structure[:, :, s:e], weights, keep=(r0 - s, r1 - s),
                                   out=out[:, :, r0:r1])

            _band_workers.run_spans(band, spans, contiguous=True)
        return out

    def _lean_weights(self, s: str) -> tuple[torch.Tensor, ...]:
        """Side ``s`` (ir, vi): the stacked channels-last kernels and bias of :meth:`_forward_lean`."""
        cl = torch.channels_last
        l2, l3, l4 = (getattr(self, f"layer{k}_{s}") for k in range(2, 5))
        w_a = torch.cat([l2.weight, l3.weight[:, :16], l4.weight[:, :16]]).contiguous(memory_format=cl)
        w_b = torch.cat([l3.weight[:, 16:], l4.weight[:, 16:32]]).contiguous(memory_format=cl)
        w_c = l4.weight[:, 32:].contiguous(memory_format=cl)
        return w_a, torch.cat([l2.bias, l3.bias, l4.bias]), w_b, w_c

    def _forward_lean(self, function: torch.Tensor, structure: torch.Tensor,
                      weights: list[tuple[torch.Tensor, ...]] | None = None,
                      keep: tuple[int, int] | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
        """Inference without any ``concat``: the same sums, grouped by the feature map they read.

        A dense layer's conv over ``concat([f1, f2, f3])`` is the sum of one conv per
        piece, so each feature map is convolved once, as soon as it exists, with the
        kernels of every later layer that reads it stacked (f1: 16→48, f2: 16→32,
        f3: 16→16; the FLOPs of the official graph).  Feature maps are channels-last
        (oneDNN runs these 16-channel convs ~3× faster than in NCHW), and the 1×1
        squeeze over the 128 concatenated channels is the sum of the eight 16-channel
        maps' projections (:func:`_project_side`, one side's four maps at once; under a FLOP
        counter the official 16×1 products).  Only the float32 summation order differs from the
        official graph (max |Δ| ~3e-7 on [−1, 1]; ``tests/methods/test_sdnet.py``).

        ``keep``: the output rows ``[k0, k1)`` wanted (default all); each map is then cut to the rows
        that the maps after it read (``k`` more on either side, where ``k`` is the receptive radius
        still ahead, clipped to the input): with a band's halo, no row is computed twice for nothing
        beyond what the later layers need.  ``out``: where to write the N×1×(k1 − k0)×W result (a band of
        a larger output; default a new tensor).
        """
        cl = torch.channels_last
        n, _, h, w = function.shape
        k0, k1 = keep if keep is not None else (0, h)

        def rows_for(radius: int, base: int) -> slice:
            # rows [k0 - radius, k1 + radius) of the input (clipped), in a map whose row 0 is input row base
            return slice(max(0, k0 - radius) - base, min(h, k1 + radius) - base)

        top = [max(0, k0 - r) for r in range(4)]  # input row of row 0 of a map still read up to radius r
        hk = k1 - k0
        counting = torch._C._len_torch_dispatch_stack() > 0  # a FLOP counter: the official 1×1 product
        if counting:
            columns = self.layer5_fuse.weight.reshape(8, 16, 1)  # L1_ir, L1_vi, L2_ir, L2_vi, ...
            fused = None
        else:
            side_weights = _side_weights(self.layer5_fuse.weight)
            acc = np.empty((n, hk, w), np.float32)
        for side_index, (s, x) in enumerate(zip(_SIDES, (function, structure))):
            w_a, b_a, w_b, w_c = weights[side_index] if weights is not None else self._lean_weights(s)
            layer1 = getattr(self, f"layer1_{s}")
            f1 = F.leaky_relu_(_conv(x, layer1.weight, layer1.bias, 2).contiguous(memory_format=cl), 0.2)
            f1 = f1[:, :, rows_for(3, 0)]  # rows from top[3]
            a = _conv(f1, w_a, b_a, 1)  # f1's share of layers 2-4, rows from top[3]
            f2 = F.leaky_relu(a[:, :16, rows_for(2, top[3])], 0.2)  # rows from top[2]
            b = _conv(f2, w_b, None, 1)  # f2's share of layers 3-4, rows from top[2]
            f3 = F.leaky_relu_(a[:, 16:32, rows_for(1, top[3])] + b[:, :16, rows_for(1, top[2])], 0.2)
            parts = (a[:, :, rows_for(0, top[3])], b[:, :, rows_for(0, top[2])],
                     _conv(f3, w_c, None, 1)[:, :, rows_for(0, top[1])])  # L4 = lrelu(a[32:] + b[16:] + c)
            kept = (f1[:, :, rows_for(0, top[3])], f2[:, :, rows_for(0, top[2])], f3[:, :, rows_for(0, top[1])])
            if counting:
                kept += (F.leaky_relu_(parts[0][:, 32:] + parts[1][:, 16:] + parts[2], 0.2),)
                for k, f in enumerate(kept):
                    part = f.permute(0, 2, 3, 1).reshape(-1, 16) @ columns[2 * k + side_index]
                    fused = part if fused is None else fused.add_(part)
            else:
                _project_side(kept, parts, side_weights[side_index], acc, add=side_index > 0)
            del kept, parts  # this side's maps then go as the next side's replace them (less memory live)
        if counting:
            fused = fused.reshape(n, hk, w, 1).permute(0, 3, 1, 2)
        else:
            fused = torch.from_numpy(acc).reshape(n, 1, hk, w)
        if out is None:
            out = function.new_empty(n, 1, hk, w)
        torch.add(fused, self.layer5_fuse.bias, out=out)
        return out.tanh_()


class SDNetDecomposer(nn.Module):
    """Layers 6–9 (training only): fused → (rebuilt function image, rebuilt structure image) in [−1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.layer6_sept = nn.Conv2d(1, 128, 1)
        for s in _SIDES:
            setattr(self, f"layer7_{s}", nn.Conv2d(128, 16, 3, padding=1))
            setattr(self, f"layer8_{s}", nn.Conv2d(16, 4, 3, padding=1))
            setattr(self, f"layer9_{s}", nn.Conv2d(4, 1, 3, padding=1))

    def forward(self, fused: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = lrelu(self.layer6_sept(fused))
        out = []
        for s in _SIDES:
            h = lrelu(getattr(self, f"layer7_{s}")(g))
            h = lrelu(getattr(self, f"layer8_{s}")(h))
            out.append(torch.tanh(getattr(self, f"layer9_{s}")(h)))
        return out[0], out[1]
