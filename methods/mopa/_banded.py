"""``mopa``'s inference in bands of rows: large images without full-size temporaries (issue 23).

At 1024² every full-size feature map of the whole-image pass (15 float32 channels: 60 MiB; the detail
module's concatenation: 180 MiB) is a fresh ``mmap`` that the kernel page-faults in at every call, so the
cost per pixel doubled from 256² to 1024² (session 8).  The network is local except for three global
statistics — the contrast module's maximum over pixels of the local std, and the attention's mean and
maximum over pixels — so it runs as four passes over bands of rows, each band reading a halo of rows
beyond its own (the rows its convolutions spoil at a band edge, where they pad with zeros, lie in the
halo and are dropped):

1. feature paths (four 3×3 convs: halo 4) → ``feats``, the one stored 15-channel map;
2. contrast module's flow (the merged 7×7 multiscale conv, two 3×3 convs) and the maximum of its local
   std (window 2r+1, reflected only at the image's top and bottom) over the band's rows
   (:func:`methods.mopa._std_kernels.local_std_max_rows`) → the channel weights;
3. ``feats · weights`` through the detail module (3×3, three depthwise 3×3, 3×3: halo 5) → ``detail``,
   the second stored map, and its sums and maxima over the band's pixels → the attention's channel weights;
4. attention (7×7 spatial conv, 3×3 combine) and the head (two 3×3 convs) → the fused rows.

Where every layer has a compiled kernel (:meth:`methods.mopa.network.InferencePath.planar_ready`, session 11)
the passes run planar: the features are stored as one zero-padded planar map and the detail module's output
as another; a band reads its rows of a stored map with the rows around them (its neighbours' rows, or the
map's zero padding at the image's top and bottom) as the padding of its first conv, which changes only rows
in the halo, which are dropped.  There passes 1 and 2 run as **one** (session 12): a band computes the features
of its rows and of the contrast module's halo (8 rows a side, its feature convs reading 4 more), stores its own
rows, and runs the contrast flow and the std's maxima on its own features while they are in its cache: one
barrier fewer, the same bits (every row of a layer is the same sum wherever a band starts).  The stored maps'
pages are first written by the band workers (their padding zeroed per band), not by the calling thread.

Each band's layers are :class:`methods.mopa.network.InferencePath`'s own, so every output pixel is the
whole-image pass's sum of the same terms; the only differences are the attention's mean (band sums added
in float64, then divided) and oneDNN's blocking on a shorter map: float32 round-off (pinned
``tests/methods/test_mopa.py``).  With N > 1 torch threads the same passes run at every size, as N single-threaded band workers (one band
each at 256²; :func:`methods._band_workers.band_workers`, as MATR's inference): no OpenMP team, whose
idle thread spins after every operation.  A band of :data:`BAND_PIXELS_EACH` pixels keeps its largest map (the
detail module's 45-channel concatenation with halos, 26 MiB at 1024 columns) under glibc's 32 MiB
``mmap`` threshold, so band maps come from the heap and are reused band after band.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from .._row_bands import BAND_PIXELS, even_bands

#: pixels of one band (rows × columns, at least 32 rows) when an image is banded (above :data:`BAND_PIXELS`)
BAND_PIXELS_EACH = 1 << 17
#: rows of a band never go below this (halos stay a small part of a band on wide images)
MIN_BAND_ROWS = 32


def band_rows(shape: tuple[int, int]) -> int | None:
    """Rows per band for an H×W image, or ``None`` for the whole-image pass (up to :data:`BAND_PIXELS`)."""
    h, w = shape
    if h * w <= BAND_PIXELS:
        return None
    rows = max(MIN_BAND_ROWS, BAND_PIXELS_EACH // w)
    return rows if rows < h else None


def _halo(*modules: torch.nn.Module) -> int:
    """Rows a chain of size-preserving convs reads beyond its output on either side: Σ kernel_height // 2."""
    return sum(m.kernel_size[0] // 2 for mod in modules for m in mod.modules() if isinstance(m, torch.nn.Conv2d))


def _rows(t: torch.Tensor, r0: int, r1: int, halo: int) -> tuple[torch.Tensor, int]:
    """Rows ``[r0 − halo, r1 + halo)`` of ``t`` (clipped to the image; a view) and where row ``r0`` lies in it."""
    lo = max(0, r0 - halo)
    return t[:, :, lo:min(t.shape[2], r1 + halo)], r0 - lo


def _crop(t: torch.Tensor, at: int, n: int) -> torch.Tensor:
    return t[:, :, at:at + n]


def _scoped(fn: Callable[[tuple[int, int]], None]) -> Callable[[tuple[int, int]], None]:
    """``fn`` run with its thread's kept planar maps (:func:`methods.mopa._planar.scratch`)."""
    from . import _planar

    def band(b: tuple[int, int]) -> None:
        with _planar.scratch():
            fn(b)

    return band


def _in_order(fn: Callable[[tuple[int, int]], None], bands: list[tuple[int, int]]) -> None:
    for band in bands:
        fn(band)


def banded_forward(path: Any, x: torch.Tensor, rows: int,
                   run: Callable[[Callable[[tuple[int, int]], None], list[tuple[int, int]]], None] = _in_order,
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``path(x)`` (``path``: a :class:`methods.mopa.network.InferencePath`; fused, MRI-path and PET-path
    features) for one channels-last 1×4×H×W sample, in bands of
    ``rows`` rows (the module docstring).  ``run(fn, bands)`` calls ``fn(band)`` for every band of a pass, in
    any order or at once (band workers); each band writes only its own rows and its own entry of the
    per-band statistics, which are combined in band order.  Float32 round-off against the whole-image pass."""
    from . import _std_kernels

    net = path.net
    _, _, h, w = x.shape
    bands = even_bands(0, h, rows)  # sizes within one row, none above `rows` (maps stay under the mmap threshold)
    width = net.path_a[0][0].out_channels
    ch = 3 * width
    cl = torch.channels_last

    # 1. the three feature paths → feats (each band's concatenated features copied into its rows); planar
    # throughout where every layer has a compiled kernel (session 11): feats a zero-padded planar map
    whole = path.planar_ready(x)  # (x: channels-last, or contiguous for the planar passes)
    if not whole:
        x = x.contiguous(memory_format=cl)
    if whole:
        from . import _planar

        pad = path.feature_pad()
        paths = path.checked_paths  # (planar_ready's walk just now; every entry a list, as it returned True)
        if paths is None or any(p is None for p in paths):
            paths = tuple(_planar.path_layers(p) for p in (net.path_a, net.path_b, net.path_ab))
        # the bands copy whole rows of their zero-bordered features (column padding included) into it, so only its
        # top and bottom padding rows are zeroed here: its pages are first touched by the band workers
        stored = torch.empty(ch, h + 2 * pad, _planar.padded_width(w) + 2 * pad)
        rims = stored.numpy()  # (numpy's fills: a shorter path than torch's indexing, run cold here)
        rims[:, :pad] = 0.0
        rims[:, pad + h:] = 0.0
    else:
        feats = torch.empty(1, ch, h, w, memory_format=cl)
    halo = _halo(net.path_a)
    cem = path.contrast_module()
    if cem is not None:  # rows the contrast module's flow and local std read beyond a band on either side
        contrast_halo = max(s.kernel_size[0] for s in cem.scales) // 2 + _halo(cem.res) + cem.r
        best = torch.zeros(len(bands), ch, w) if whole else torch.zeros(len(bands), w * ch)  # per band: maxima
    merged = whole and cem is not None  # passes 1 and 2 as one (session 12)
    # one band per worker (an image of up to ≈ 2^18 pixels on N threads): each band's planar maps are its thread's
    # kept maps of the last call (_planar.scratch: no padding to zero again, no fresh pages; session 12)
    from .._band_workers import workers

    keep = len(bands) <= workers()

    def features(band: tuple[int, int]) -> None:
        r0, r1 = band
        if merged:  # the features of rows [lo, hi) (the contrast module's reach), then the contrast flow on them
            lo, hi = max(0, r0 - contrast_halo), min(h, r1 + contrast_halo)
            xb, at = _rows(x, lo, hi, halo)
            _, fb = _planar.features(net, xb, paths, pad, channels_last=False)
            own = at + r0 - lo
            stored[:, pad + r0:pad + r1].copy_(fb[:, pad + own:pad + own + r1 - r0])
            # rows [lo, hi) of the band's planar features with the rows around them (or 0) as padding, as the
            # stored map's rows [lo, hi) with theirs: the rows that differ spoil only rows whose std is dropped
            flow = _planar.contrast_flow(cem, fb[:, at:at + hi - lo + 2 * pad], pad, hi - lo, w)
            _planar.local_std_max_rows(flow, cem.r, lo, h, r0, r1, hi - lo, w, best[bands.index(band)])
            return
        xb, at = _rows(x, r0, r1, halo)
        if whole:
            _, fb = _planar.features(net, xb, paths, pad, channels_last=False)
            stored[:, pad + r0:pad + r1].copy_(fb[:, pad + at:pad + at + r1 - r0])
        else:
            feats[:, :, r0:r1].copy_(_crop(path.features(xb), at, r1 - r0))

    run(_scoped(features) if whole and keep else features, bands)
    if whole:
        feats = stored[None, :, pad:pad + h, pad:pad + w]

    # 2. the contrast module's channel weights from the maximum of its flow's local std
    scale = None
    if cem is not None:
        halo = contrast_halo

        def contrast(band: tuple[int, int]) -> None:  # (planar: run with the features above)
            r0, r1 = band
            fb, at = _rows(feats, r0, r1, halo)
            _, flow = path.contrast_flow(cem, fb)
            lo = r0 - at  # the first image row of the band's flow
            _std_kernels.local_std_max_rows(flow.permute(0, 2, 3, 1)[0].numpy(), cem.r, lo, h, r0, r1,
                                            best[bands.index(band)].numpy())

        if not merged:
            run(contrast, bands)
        if whole:  # (numpy's maximum: the same values as torch's amax on a shorter path, run cold here; session 12)
            std_max = torch.from_numpy(best.numpy().max(axis=2).max(axis=0)[None])
        else:
            std_max = torch.empty(1, ch)
            _std_kernels.column_max(best.amax(dim=0).numpy(), ch, std_max[0].numpy())
        scale = path.contrast_weights(cem, std_max)

    # 3. the detail module on the re-weighted features → detail, with its sums and maxima over pixels
    att = path.attention_module()
    planar = whole or path.planar_tail(feats)  # detail map stored planar, zero-padded by 1 (session 11)
    if planar:
        from . import _planar
        from ._split import _zero_border

        # each band zeroes the padding of its own rows (_zero_border) before writing them: no page of the map is
        # first touched by the calling thread
        detail = torch.empty(ch, h + 2, _planar.padded_width(w) + 2)
    else:
        detail = torch.empty(1, ch, h, w, memory_format=cl)
    total = torch.zeros(len(bands), ch, dtype=torch.float64)  # per band: sums and maxima over its pixels
    peak = torch.empty(len(bands), ch)
    halo = _halo(net.detail.head, net.detail.paths[-1], net.detail.fuse)

    def details(band: tuple[int, int]) -> None:
        r0, r1 = band
        i = bands.index(band)
        if whole:
            lo, hi = max(0, r0 - halo), min(h, r1 + halo)
            fb, at = stored.numpy()[:, pad + lo:pad + hi, pad:pad + w], r0 - lo
        else:
            fb, at = _rows(feats, r0, r1, halo)
        if planar:  # the band's own rows straight into the stored map
            _zero_border(detail.numpy(), 1, h, w, r0, r1)
            _planar.detail_planar(net.detail, fb, scale, into=(detail, 1 + r0, at, r1 - r0))
            if att is not None:  # the band's rows of the stored map, with the row above and below as padding
                total[i:i + 1], peak[i:i + 1] = _planar.pixel_sum_max(detail[:, r0:r1 + 2], r1 - r0, w)
            return
        out = _crop(path.detail(net.detail, fb, scale), at, r1 - r0)
        detail[:, :, r0:r1].copy_(out)
        if att is not None:
            total[i:i + 1], peak[i:i + 1] = path.pixel_sum_max(out)

    run(_scoped(details) if planar and keep else details, bands)

    # 4. attention and head → the fused rows
    fused = torch.empty(1, 1, h, w)
    wc = None
    if att is not None:
        # in numpy (the same IEEE operations as torch's on a shorter path, run cold between the passes; session 12)
        sums = total.numpy()
        mean = np.zeros(ch)
        for i in range(len(bands)):  # in band order, whatever order the bands ran in
            mean += sums[i]
        wc = path.channel_weights(att, torch.from_numpy((mean / (h * w)).astype(np.float32)[None]),
                                  torch.from_numpy(peak.numpy().max(axis=0)[None]))
        halo = _halo(att.spatial, att.combine, net.head)
    else:
        halo = _halo(net.head)

    def head(band: tuple[int, int]) -> None:
        r0, r1 = band
        if planar:  # rows [lo, hi) of the stored planar map, with the row above and below (or 0) as padding
            lo, hi = max(0, r0 - halo), min(h, r1 + halo)
            out = _planar.tail(att, net.head, detail[:, lo:hi + 2], hi - lo, w, wc)
            fused[:, :, r0:r1].copy_(out[:, :, r0 - lo:r1 - lo])
            return
        db, at = _rows(detail, r0, r1, halo)
        if att is not None:
            db = path.attention_apply(att, db, wc)
        fused[:, :, r0:r1].copy_(_crop(path.head(net.head, db), at, r1 - r0))

    run(_scoped(head) if planar and keep else head, bands)
    return fused, feats[:, 0:width], feats[:, width:2 * width]
