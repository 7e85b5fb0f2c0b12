"""``mopa``'s whole-image planar pass with every layer split by output rows over the band workers (issue 23, session 11).

The whole-image planar pass (every layer a compiled kernel on zero-padded planar maps,
:meth:`methods.mopa.inference.InferencePath.planar_ready`) computes each layer on a whole stored map.  Here each
such step — a layer, the three feature paths' layer *i* together, the DSCB *j* of every detail path together,
a gating pass — is cut by **output rows**: with N band workers (:func:`methods._band_workers.run_spans`,
``contiguous=True``) worker *k* writes rows ``[r_k, r_{k+1})`` of every map in every step, so it finds its
rows in its cache in the next step, and reads the rows around them (its first and last rows' taps) from its
neighbours' output of the previous step.  No halo rows are recomputed (the banded passes of
:mod:`methods.mopa._banded` recompute 4–8 rows per side per pass); the price is a barrier per step (18 at the
registered width: ``run_spans`` returns when every worker is done).  With one worker the steps run in order
on the calling thread: the whole-image pass.

Every pixel of every layer is the same sum of the same terms whatever the rows a call computes (the compiled
kernels compute rows independently), so the result does not depend on the number of workers.  The three
global statistics are reduced without depending on it either: the local std's maxima and the attention's
maxima are maxima (exact in any order); the attention's sums over pixels are taken per block of
:data:`SUM_ROWS` rows (float64), a fixed cut of the image, and added in block order.  So one and two threads
give the same bits (pinned in ``tests/methods/test_mopa.py``).

Used by :class:`methods.mopa.inference.InferencePath` for images up to 2^19 pixels (larger ones keep the
banded passes, whose maps stay under glibc's mmap threshold) when every layer has a compiled kernel: at one
thread (the whole-image pass) for the nets that the compiled band passes do not cover (since session 13 the others
run the whole image as one band of :mod:`methods.mopa._pass_kernels`, with this pass's sums and sigmoids: the same
bits), at N > 1 threads when ``InferencePath.SPLIT_LAYERS`` is set (off by
default: on the loaded machine of session 11 the banded schedule's four barriers beat this one's 19 in wall
time whenever both cores were free; ``benchmarks/benchmark_methods.py::MopaThreadSchedule`` compares them idle).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from .._row_bands import even_bands
from . import _planar
from ._conv_kernels import KERNELS, RESIDUAL_KERNELS

#: rows of a block of the attention's sums over pixels (a fixed cut of the image: the sums' rounding does not
#: depend on the number of workers); the workers' rows are whole blocks
SUM_ROWS = 32

Run = Callable[[Callable[[tuple[int, int]], None], Sequence[tuple[int, int]]], None]


def _in_order(fn: Callable[[tuple[int, int]], None], spans: Sequence[tuple[int, int]]) -> None:
    for span in spans:
        fn(span)


def worker_rows(h: int, workers: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The fixed blocks of :data:`SUM_ROWS` rows of an image of ``h`` rows, and the rows of each of (at most)
    ``workers`` workers: consecutive whole blocks, as evenly shared as blocks allow."""
    blocks = even_bands(0, h, SUM_ROWS)
    n = max(1, min(workers, len(blocks)))
    cuts = [round(i * len(blocks) / n) for i in range(n + 1)]
    return blocks, [(blocks[a][0], blocks[b - 1][1]) for a, b in zip(cuts[:-1], cuts[1:])]


def _grid(run: Run, spans: Sequence[tuple[int, int]], step: Callable[[int, int, tuple[int, int]], None],
          lengths: Sequence[int]) -> None:
    """``step(k, i, span)`` for the layers ``i < lengths[k]`` of independent chains ``k`` (feature paths, DSCB
    paths).  One worker: chain after chain (a chain's maps stay in the cache); several: layer ``i`` of every
    chain in one step (one barrier per layer, not per chain and layer)."""
    if len(spans) == 1:
        for k, n in enumerate(lengths):
            for i in range(n):
                step(k, i, spans[0])
        return
    for i in range(max(lengths)):
        run(lambda span, i=i: [step(k, i, span) for k, n in enumerate(lengths) if i < n], spans)


def _lazy(c: int, h: int, w: int, p: int = 1) -> np.ndarray:
    """A planar C × (h + 2p) × (Wv + 2p) buffer left unwritten: the step that writes a worker's rows first zeroes
    their padding (:func:`_zero_border`), so the pages are first touched by the workers, not the calling thread
    (as :func:`methods.mopa._planar.bordered` once every worker has run)."""
    return torch.empty(c, h + 2 * p, _planar.padded_width(w) + 2 * p).numpy()


def _zero_border(buf: np.ndarray, p: int, h: int, w: int, r0: int, r1: int) -> None:
    """Zero the padding of image rows ``[r0, r1)`` of the planar ``buf`` (image at [p, p], h × w): the columns
    around them (the lanes past ``w`` included), and the ``p`` rows above the image (``r0 = 0``) or below it
    (``r1 = h``)."""
    t = torch.from_numpy(buf)
    if r0 == 0:
        t[:, :p].zero_()
    if r1 == h:
        t[:, p + h:].zero_()
    t[:, p + r0:p + r1, :p].zero_()
    t[:, p + r0:p + r1, p + w:].zero_()


def _flat(t: torch.Tensor) -> np.ndarray:
    return t.detach().reshape(-1).numpy()


def _conv(conv: torch.nn.Conv2d, inp: np.ndarray, out: np.ndarray, r0: int, r1: int, w: int,
          slope: float | None, at: int, off: int = 0) -> None:
    """Output rows ``[r0, r1)`` of ``conv`` (then LReLU with ``slope``) from the planar ``inp`` (its padding in
    it, the image at [off + k//2, off + k//2]) into ``out[:, at + r0:, at:]``."""
    KERNELS[(conv.in_channels, conv.out_channels, conv.kernel_size[0])](
        inp[:, off + r0:, off:], _flat(conv.weight), conv.bias.detach().numpy(),
        np.float32(1.0 if slope is None else slope), out, r1 - r0, w, at + r0, at)


def split_forward(path: Any, x: torch.Tensor, run: Run = _in_order, workers: int = 1,
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``path(x)`` (``path``: a :class:`methods.mopa.inference.InferencePath` whose network is
    :meth:`~methods.mopa.inference.InferencePath.planar_ready` for ``x``) for one channels-last 1×4×H×W sample:
    the fused map and the two paths' features, each layer's output rows shared among ``workers`` workers;
    ``run(fn, spans)`` calls ``fn(span)`` for every worker's rows (at once with band workers) and returns
    when all are done (the module docstring)."""
    net = path.net
    _, _, h, w = x.shape
    blocks, spans = worker_rows(h, workers)
    pad = path.feature_pad()
    paths = [_planar.path_layers(p) for p in (net.path_a, net.path_b, net.path_ab)]
    width = paths[0][-1][0].out_channels
    ch = 3 * width
    cols = _planar.padded_width(w)

    # 1. the three feature paths, layer i of each in one step → `stored` (planar, zero padding `pad`)
    stored_np = _lazy(ch, h, w, pad)
    stored = torch.from_numpy(stored_np)
    a, b, ma, mb = x[:, 0:1], x[:, 1:2], x[:, 2:3], x[:, 3:4]
    sources = (net._path_input(a, ma), net._path_input(b, mb), torch.cat([a, b], dim=1))
    inputs = []
    for src in sources:
        inp = _planar.bordered(src.shape[1], h, w)
        inp[:, 1:h + 1, 1:w + 1] = src[0]
        inputs.append(inp.numpy())
    # intermediate maps (zero borders): one pair per path with several workers (the paths' layer i run in one
    # step), one pair for all with one worker (path after path); fewer fresh pages
    pairs = [[_lazy(width, h, w) for _ in range(2)] for _ in (paths if len(spans) > 1 else [0])]
    spare = pairs * (1 if len(spans) > 1 else len(paths))

    def layer(k: int, i: int, span: tuple[int, int]) -> None:
        r0, r1 = span
        layers = paths[k]
        conv, slope = layers[i]
        src = inputs[k] if i == 0 else spare[k][(i - 1) % 2]
        if i == len(layers) - 1:
            dst = stored_np[k * width:(k + 1) * width]
            _zero_border(dst, pad, h, w, r0, r1)
            _conv(conv, src, dst, r0, r1, w, slope, pad)
        else:
            _zero_border(spare[k][i % 2], 1, h, w, r0, r1)
            _conv(conv, src, spare[k][i % 2], r0, r1, w, slope, 1)

    _grid(run, spans, layer, [len(p) for p in paths])
    del inputs, spare, pairs  # freed maps: the next ones reuse their pages (fewer page faults)

    # 2. the contrast module's flow lrelu(m + res(m)) and the maxima of its local std → its channel weights
    scale = None
    cem = path.contrast_module()
    if cem is not None:
        slope = float(cem.act.negative_slope)
        convs = _planar.multiscale_layers(cem)
        m = _lazy(sum(c.out_channels for c in convs), h, w)
        first, act, second = cem.res
        mid = _lazy(first.out_channels, h, w)
        residual = RESIDUAL_KERNELS[(second.in_channels, second.out_channels, 3)]

        def multiscale(span: tuple[int, int]) -> None:
            r0, r1 = span
            _zero_border(m, 1, h, w, r0, r1)
            start = 0
            for conv in convs:
                n = conv.out_channels
                _conv(conv, stored_np, m[start:start + n], r0, r1, w, slope, 1, pad - conv.kernel_size[0] // 2)
                start += n

        def res_first(span: tuple[int, int]) -> None:
            _zero_border(mid, 1, h, w, span[0], span[1])
            _conv(first, m, mid, span[0], span[1], w, float(act.negative_slope), 1)

        def res_second(span: tuple[int, int]) -> None:  # in place: m = lrelu(conv(mid) + m), own rows only
            r0, r1 = span
            residual(mid[:, r0:], _flat(second.weight), _flat(second.bias), np.float32(slope), m, m,
                     r1 - r0, w, 1 + r0, 1)

        best = torch.zeros(len(spans), m.shape[0], w)  # per worker: maxima per (channel, column)
        flow = torch.from_numpy(m)

        def std_max(span: tuple[int, int]) -> None:
            _planar.local_std_max_rows(flow, cem.r, 0, h, span[0], span[1], h, w, best[spans.index(span)])

        for step in (multiscale, res_first, res_second, std_max):
            run(step, spans)
        scale = path.contrast_weights(cem, best.amax(dim=0).amax(dim=1)[None])
        del m, mid, flow

    # 3. the detail module on feats · scale → xw (in place), with its sums and maxima per block of rows
    from . import _detail_kernels as dk

    dpm = net.detail
    head, hact = dpm.head
    xw_np = _lazy(ch, h, w)
    xw = torch.from_numpy(xw_np)
    inside = torch.from_numpy(_planar.interior(xw, h, w))
    feats_in = torch.from_numpy(stored_np[:, pad:pad + h, pad:pad + w])
    hb = _lazy(ch, h, w)
    cat = _lazy(ch * len(dpm.paths), h, w)
    shared = [_lazy(ch, h, w) for _ in range(2)] if len(spans) == 1 else None
    dspare = [(shared or [_lazy(ch, h, w) for _ in range(2)]) if len(p) > 1 else []
              for p in dpm.paths]

    def scaled(span: tuple[int, int]) -> None:  # the products as torch's (x * w)
        r0, r1 = span
        _zero_border(xw_np, 1, h, w, r0, r1)
        if scale is None:
            inside[:, r0:r1].copy_(feats_in[:, r0:r1])
        else:
            torch.mul(feats_in[:, r0:r1], scale.reshape(ch, 1, 1), out=inside[:, r0:r1])

    def detail_head(span: tuple[int, int]) -> None:
        _zero_border(hb, 1, h, w, span[0], span[1])
        _conv(head, xw_np, hb, span[0], span[1], w, float(hact.negative_slope), 1)

    run(scaled, spans)
    run(detail_head, spans)
    def dscb(i: int, j: int, span: tuple[int, int]) -> None:
        r0, r1 = span
        p = dpm.paths[i]
        dw, pw, lrelu = p[j]
        weights = (_flat(dw.weight), _flat(dw.bias), _flat(pw.weight), _flat(pw.bias), np.float32(lrelu.negative_slope))
        src = hb if j == 0 else dspare[i][(j - 1) % 2]
        if j == len(p) - 1:
            _zero_border(cat[i * ch:(i + 1) * ch], 1, h, w, r0, r1)
            dk.dscb_skip(src[:, r0:], *weights, cat[i * ch:(i + 1) * ch], hb, r1 - r0, w, 1 + r0, 1)
        else:
            _zero_border(dspare[i][j % 2], 1, h, w, r0, r1)
            dk.dscb(src[:, r0:], *weights, dspare[i][j % 2], r1 - r0, w, 1 + r0, 1)

    _grid(run, spans, dscb, [len(p) for p in dpm.paths])

    att = path.attention_module()
    sums = np.zeros((len(blocks), ch), np.float64)
    peaks = np.empty((len(blocks), ch), np.float32)
    fuse = dpm.fuse
    fuse_kernel = RESIDUAL_KERNELS[(fuse.in_channels, fuse.out_channels, 3)]

    def fuse_rows(span: tuple[int, int]) -> None:  # in place into xw (its own rows), then their sums and maxima
        from . import _attention_kernels

        r0, r1 = span
        fuse_kernel(cat[:, r0:], _flat(fuse.weight), _flat(fuse.bias), np.float32(1.0), xw_np, xw_np,
                    r1 - r0, w, 1 + r0, 1)
        if att is not None:
            for k, (b0, b1) in enumerate(blocks):
                if r0 <= b0 and b1 <= r1:
                    _attention_kernels.pixel_sum_max_planar(xw_np, 1 + b0, 1, b1 - b0, w, sums[k], peaks[k])

    run(fuse_rows, spans)
    del hb, cat, dspare, shared

    # 4. attention and head → the fused image
    fused = torch.empty(1, 1, h, w)
    d = xw_np
    if att is not None:
        total = np.zeros(ch, np.float64)
        for k in range(len(blocks)):  # in block order, whatever the workers
            total += sums[k]
        wc = path.channel_weights(att, (torch.from_numpy(total)[None] / (h * w)).float(),
                                  torch.from_numpy(peaks.max(axis=0))[None])
        from . import _attention_kernels as ak

        conv = _planar.single_conv(att.spatial)
        p = conv.kernel_size[0] // 2
        cascade = att.mode == "cascade"
        both = _lazy(2 * ch, h, w)
        spatial = _lazy(2, h, w, p)
        gains = wc.reshape(ch).float().contiguous().numpy()
        pre = torch.empty(1, h, cols + _planar.LANES)  # wider than the rows: sigmoid row by row, any cut
        weights = torch.empty(h, w)
        combine, cact = att.combine
        d = _lazy(ch, h, w)

        def gate(span: tuple[int, int]) -> None:
            r0, r1 = span
            _zero_border(both, 1, h, w, r0, r1)
            _zero_border(spatial, p, h, w, r0, r1)
            ak.gate_planar(xw_np, np.array([1 + r0, 1]), gains, cascade, both, np.array([1 + r0, 1]), spatial,
                           np.array([p + r0, p]), r1 - r0, w)

        def gate_spatial(span: tuple[int, int]) -> None:
            r0, r1 = span
            _conv(conv, spatial, pre.numpy(), r0, r1, w, None, 0)
            torch.sigmoid(pre[0, r0:r1, :w], out=weights[r0:r1])
            ak.gate_spatial_planar(xw_np, np.array([1 + r0, 1]), weights.numpy()[r0:r1], both,
                                   np.array([1 + r0, 1]), cascade, r1 - r0, w)

        def combine_rows(span: tuple[int, int]) -> None:
            _zero_border(d, 1, h, w, span[0], span[1])
            _conv(combine, both, d, span[0], span[1], w, float(cact.negative_slope), 1)

        for step in (gate, gate_spatial, combine_rows):
            run(step, spans)
        del both, spatial, pre, weights
    (first, fslope), (last, _) = _planar.head_layers(net.head)
    mid = _lazy(first.out_channels, h, w)
    out = torch.empty(1, h, cols + _planar.LANES)

    def head_first(span: tuple[int, int]) -> None:
        _zero_border(mid, 1, h, w, span[0], span[1])
        _conv(first, d, mid, span[0], span[1], w, fslope, 1)

    def head_last(span: tuple[int, int]) -> None:
        r0, r1 = span
        _conv(last, mid, out.numpy(), r0, r1, w, None, 0)
        torch.sigmoid(out[0, r0:r1, :w], out=fused[0, 0, r0:r1])

    run(head_first, spans)
    run(head_last, spans)
    feats = stored[None, :, pad:pad + h, pad:pad + w]
    return fused, feats[:, 0:width], feats[:, width:2 * width]
