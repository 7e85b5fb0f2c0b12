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

Where every layer has a compiled kernel (:meth:`methods.mopa.inference.InferencePath.planar_ready`, session 11)
the passes run planar: the features are stored as one zero-padded planar map and the detail module's output
as another; a band reads its rows of a stored map with the rows around them (its neighbours' rows, or the
map's zero padding at the image's top and bottom) as the padding of its first conv, which changes only rows
in the halo, which are dropped.  There passes 1 and 2 run as **one** (session 12): a band computes the features
of its rows and of the contrast module's halo (8 rows a side, its feature convs reading 4 more), stores its own
rows, and runs the contrast flow and the std's maxima on its own features while they are in its cache: one
barrier fewer, the same bits (every row of a layer is the same sum wherever a band starts).  The stored maps'
pages are first written by the band workers (their padding zeroed per band), not by the calling thread.  Since
session 13 each band pass there is **one** compiled call that releases the GIL (:mod:`methods.mopa._pass_kernels`:
the same kernels on the same maps, so the same bits), with the layers' weights copied once per call into a flat
array (:func:`features_plan`, :func:`rest_plan`); a channels-last sample, multiplied masks, no contrast module or
a layer of another shape keep the per-kernel passes.

Each band's layers are :class:`methods.mopa.inference.InferencePath`'s own, so every output pixel is the
whole-image pass's sum of the same terms; the only differences are the attention's mean (band sums added
in float64, then divided) and oneDNN's blocking on a shorter map: float32 round-off (pinned
``tests/methods/test_mopa.py``).  With N > 1 torch threads the same passes run at every size, as N single-threaded band workers (one band
each at 256²; :func:`methods._band_workers.band_workers`, as MATR's inference): no OpenMP team, whose
idle thread spins after every operation.  A band of :data:`BAND_PIXELS_EACH` pixels keeps its largest map (the
detail module's 45-channel concatenation with halos, 26 MiB at 1024 columns) under glibc's 32 MiB
``mmap`` threshold, so band maps come from the heap and are reused band after band.
"""
from __future__ import annotations

import threading
import weakref
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


def _weights(conv: torch.nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """``conv.weight, conv.bias``; read from its parameter dict for a plain ``Conv2d`` (a shorter path than
    ``Module.__getattr__``, the same objects; a parametrized conv is of another class)."""
    if type(conv) is torch.nn.Conv2d:
        p = conv._parameters
        return p["weight"], p["bias"]
    return conv.weight, conv.bias


#: per network, the last tables of the compiled band passes by part ("features", "rest") and their keys
_PLANS: "weakref.WeakKeyDictionary[torch.nn.Module, dict[str, tuple[tuple[Any, ...], dict[str, Any]]]]" = \
    weakref.WeakKeyDictionary()


def _plan(net: torch.nn.Module, part: str, groups: tuple[list[tuple[torch.nn.Conv2d, float]], ...],
          check: Callable[[list[list[tuple[int, int, int]]]], bool]) -> dict[str, Any] | None:
    """The layer groups' weights and biases in one flat float32 array (``"flat"``: copied at every call, so the
    parameters' current values), and per group a table (``"tables"``) of rows (Cin, Cout, k, weight offset, bias
    offset) with the layers' LReLU slopes (1: none); ``None`` unless ``check`` accepts the groups' (Cin, Cout, k).

    The tables are kept between calls (``_PLANS``) under a key of the parameters' identities (kept with them, so
    no identity is reused) and the slopes: a replaced module or parameter, or a changed slope, builds new ones; a
    parameter changed in place, or its ``data`` replaced, is read by the copy."""
    params = [t for group in groups for conv, _ in group for t in _weights(conv)]
    key = (tuple(map(id, params)), tuple(s for group in groups for _, s in group))
    flat = torch._C._nn.flatten_dense_tensors(params).detach().numpy()
    kept = _PLANS.get(net, {}).get(part)
    if kept is not None and kept[0] == key and kept[1]["size"] == flat.size and flat.dtype == np.float32:
        return {**kept[1], "flat": flat}
    if not all(p.dtype == torch.float32 and p.is_contiguous() for p in params):
        return None
    tables, shapes, at, i = [], [], 0, 0
    for group in groups:
        rows = []
        for conv, _ in group:
            n, nb = params[i].numel(), params[i + 1].numel()
            rows.append((conv.in_channels, conv.out_channels, conv.kernel_size[0], at, at + n))
            at, i = at + n + nb, i + 2
        tables.append((np.array(rows, np.int64).reshape(len(rows), 5), np.array([s for _, s in group], np.float32)))
        shapes.append([r[:3] for r in rows])
    if at != flat.size or not check(shapes):
        return None
    plan = {"tables": tables, "size": at}
    _PLANS.setdefault(net, {})[part] = (key, {**plan, "params": params})
    return {**plan, "flat": flat}


def features_plan(path: Any, x: torch.Tensor, paths: Any, cem: Any) -> dict[str, Any] | None:
    """What :func:`methods.mopa._pass_kernels.features_contrast` needs of ``path``'s network (:func:`_plan`), after
    :meth:`~methods.mopa.inference.InferencePath.planar_ready` found every layer compiled (``paths``: the feature
    paths' layers it found); ``None`` where the compiled passes do not apply (a channels-last sample, masks
    multiplied into the images, no contrast module, a layer of another shape): the per-kernel passes run then."""
    from . import _pass_kernels as pk

    net = path.net
    if cem is None or not x.is_contiguous() or (net.use_mask and net.mask_mode != "concat"):
        return None
    act = cem.act.negative_slope
    first, lrelu, second = cem.res
    layers = [layer for p in paths for layer in p]
    n = len(layers)
    layers += [(c, act) for c in cem.scales]
    layers += ((first, lrelu.negative_slope), (second, act))
    plan = _plan(net, "features", (layers,), lambda s: (all(t in pk.PATH_SHAPES for t in s[0][:n])
                                                      and s[0][n:] == list(pk.SCALE_SHAPES + pk.CONTRAST_SHAPES)))
    if plan is None:
        return None
    sources = ((0, 2) if net.use_mask else (0,), (1, 3) if net.use_mask else (1,), (0, 1))
    channels = np.full((3, 2), -1, np.int64)
    for i, src in enumerate(sources):
        channels[i, :len(src)] = src
    return {**plan, "lengths": np.array([len(p) for p in paths], np.int64), "channels": channels,
            "inputs": [len(src) for src in sources]}


def rest_plan(net: torch.nn.Module, att: Any) -> dict[str, Any] | None:
    """:func:`features_plan` for :func:`methods.mopa._pass_kernels.detail` (the detail module's layers: head,
    each DSCB's depthwise and pointwise convs, fuse) and the attention and head passes (the spatial conv, the
    combining conv, the head's two convs; without attention the head's twice)."""
    from . import _pass_kernels as pk
    from . import _planar

    head, hact = net.detail.head
    detail = [(head, hact.negative_slope)]
    for p in net.detail.paths:
        for dw, pw, lr in p:
            detail += ((dw, 1.0), (pw, lr.negative_slope))
    detail.append((net.detail.fuse, 1.0))
    tail = _planar.head_layers(net.head)
    if tail is None:  # a head the compiled passes do not cover
        return None
    if att is not None:
        combine, cact = att.combine
        tail = [(_planar.single_conv(att.spatial), 1.0), (combine, cact.negative_slope)] + tail
    else:  # rows 0 and 1 (the attention's convs) unused
        tail = tail * 2
    plan = _plan(net, "rest", (detail, tail), lambda s: (
        len(net.detail.paths) == 3 and [s[0][0], s[0][-1]] == list(pk.DETAIL_SHAPES)
        and s[1] == (list(pk.TAIL_SHAPES) if att is not None else list(pk.TAIL_SHAPES[2:]) * 2)))
    if plan is None:
        return None
    return {**plan, "lengths": np.array([len(p) for p in net.detail.paths], np.int64)}


#: bytes of the stored detail map that a calling thread keeps between calls (:func:`_kept_detail`)
KEPT_DETAIL_BYTES = 16 << 20


class _Kept(threading.local):
    """One calling thread's stored detail map of the last call, with its shape."""

    def __init__(self) -> None:
        self.shape: tuple[int, int, int] | None = None
        self.map: torch.Tensor | None = None


_KEPT = _Kept()


def _kept_detail(shape: tuple[int, int, int]) -> torch.Tensor | None:
    """The calling thread's stored detail map of the last call if it had ``shape`` (else a new one, kept in its
    place), or ``None`` above :data:`KEPT_DETAIL_BYTES`.  Session 13: freed at the end of every call, this map and
    the stored features (≈ 4 MiB each at 256²) left more than glibc's trim threshold free at the top of the heap,
    which it then gave back, so the next call page-faulted both in again (≈ 2,000 faults, 2–3 ms of system time per
    2-thread forward in most processes).  The map never leaves :func:`banded_forward` (only ``fused`` and the
    stored features do), and every band zeroes the padding of its rows and writes its interior, so what the last
    call left in it is never read."""
    c, rows, cols = shape
    if c * rows * cols * 4 > KEPT_DETAIL_BYTES:
        return None
    kept = _KEPT
    if kept.shape != shape:
        kept.map = None  # (the old one freed first)
        kept.map, kept.shape = torch.empty(shape), shape
    return kept.map


#: the spatial weights' stand-in where there is no attention (an argument of a fixed type, never read)
_NO_WEIGHTS = np.zeros((1, 1), np.float32)


def _in_order(fn: Callable[[tuple[int, int]], None], bands: list[tuple[int, int]]) -> None:
    for band in bands:
        fn(band)


def banded_forward(path: Any, x: torch.Tensor, rows: int,
                   run: Callable[[Callable[[tuple[int, int]], None], list[tuple[int, int]]], None] = _in_order,
                   blocks: list[tuple[int, int]] | None = None, plan: dict[str, Any] | None = None,
                   rest: dict[str, Any] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``path(x)`` (``path``: a :class:`methods.mopa.inference.InferencePath`; fused, MRI-path and PET-path
    features) for one channels-last 1×4×H×W sample, in bands of
    ``rows`` rows (the module docstring).  ``run(fn, bands)`` calls ``fn(band)`` for every band of a pass, in
    any order or at once (band workers); each band writes only its own rows and its own entry of the
    per-band statistics, which are combined in band order.  Float32 round-off against the whole-image pass.

    ``blocks`` (with ``plan`` and ``rest``, :func:`features_plan`'s and :func:`rest_plan`'s for ``x``, neither
    ``None``): the whole image as one band through the compiled passes, the attention's sums taken per block of
    rows and the sigmoids laid out as in :func:`methods.mopa._split.split_forward` (its bits: the one-thread
    whole-image pass, session 13)."""
    from . import _std_kernels

    net = path.net
    _, _, h, w = x.shape
    # sizes within one row, none above `rows` (maps stay under the mmap threshold)
    bands = [(0, h)] if blocks is not None else even_bands(0, h, rows)
    width = net.path_a[0][0].out_channels
    ch = 3 * width
    cl = torch.channels_last

    # 1. the three feature paths → feats (each band's concatenated features copied into its rows); planar
    # throughout where every layer has a compiled kernel (session 11): feats a zero-padded planar map
    # (x: channels-last, or contiguous for the planar passes; with `blocks` the caller has just checked it)
    whole = blocks is not None or path.planar_ready(x)
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
        if blocks is not None:  # (the one band's planar features themselves: their column padding zeroed too)
            rims[:, pad:pad + h, :pad] = 0.0
            rims[:, pad:pad + h, pad + w:] = 0.0
        halo = sum(conv.kernel_size[0] // 2 for conv, _ in paths[0])  # (_halo(net.path_a): its layers, checked)
    else:
        feats = torch.empty(1, ch, h, w, memory_format=cl)
        halo = _halo(net.path_a)
    cem = path.contrast_module()
    if cem is not None:  # rows the contrast module's flow and local std read beyond a band on either side
        contrast_halo = max(s.kernel_size[0] for s in cem.scales) // 2 + _halo(cem.res) + cem.r
        best = torch.zeros(len(bands), ch, w) if whole else torch.zeros(len(bands), w * ch)  # per band: maxima
    merged = whole and cem is not None  # passes 1 and 2 as one (session 12)
    att = path.attention_module()
    # each band pass as one compiled call (session 13: no Python between the kernels, the GIL released throughout)
    if blocks is None:
        plan = features_plan(path, x, paths, cem) if merged else None
        rest = None
    unclaimed = [True] if blocks is None else []  # the later passes' plan: made in pass 1 by the band that ends first
    if plan is not None:
        from . import _pass_kernels

        sample, best_np = x[0].numpy(), best.numpy()
        (t1, s1), = plan["tables"]
    # one band per worker (an image of up to ≈ 2^18 pixels on N threads): each band's planar maps are its thread's
    # kept maps of the last call (_planar.scratch: no padding to zero again, no fresh pages; session 12)
    from .._band_workers import workers

    keep = len(bands) <= workers()

    def features(band: tuple[int, int]) -> None:
        nonlocal rest
        r0, r1 = band
        if plan is not None:  # the same kernels on the same maps as below, in one call
            lo, hi = max(0, r0 - contrast_halo), min(h, r1 + contrast_halo)
            xlo = max(0, lo - halo)
            hb = min(h, hi + halo) - xlo
            ins = [_planar.bordered(n, hb, w).numpy() for n in plan["inputs"]]
            own = blocks is not None  # (the whole image: its features are the stored map)
            _pass_kernels.features_contrast(
                sample, xlo, hb, *ins, plan["channels"], _planar.bordered(width, hb, w).numpy(),
                _planar.bordered(width, hb, w).numpy(), rims if own else _planar.bordered(ch, hb, w, pad).numpy(),
                pad, rims, not own, r0, r1, lo, hi, h, w, _planar.bordered(ch, hi - lo, w).numpy(),
                _planar.bordered(ch, hi - lo, w).numpy(), cem.r, best_np[bands.index(band)], t1, plan["flat"], s1,
                plan["lengths"])
            if unclaimed:  # the first band done (whichever) makes the later passes' plan while the others finish
                try:
                    unclaimed.pop()  # (atomic)
                except IndexError:
                    return
                rest = rest_plan(net, att)
            return
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
    planar = whole or path.planar_tail(feats)  # detail map stored planar, zero-padded by 1 (session 11)
    if planar:
        from . import _planar
        from ._split import _zero_border

        # each band zeroes the padding of its own rows (_zero_border) before writing them: no page of the map is
        # first touched by the calling thread; where every worker has one band, the calling thread's map of the
        # last call (_kept_detail; session 13)
        detail = _kept_detail((ch, h + 2, _planar.padded_width(w) + 2)) if keep else None
        if detail is None:
            detail = torch.empty(ch, h + 2, _planar.padded_width(w) + 2)
    else:
        detail = torch.empty(1, ch, h, w, memory_format=cl)
    # per band (or per block): sums and maxima over its pixels
    total = torch.zeros(len(blocks or bands), ch, dtype=torch.float64)
    peak = torch.empty(len(blocks or bands), ch)
    halo = _halo(net.detail.head, net.detail.paths[-1], net.detail.fuse)

    if rest is not None:
        out_np, total_np, peak_np = detail.numpy(), total.numpy(), peak.numpy()
        (t2, s2), (t3, s3) = rest["tables"]
        flat = rest["flat"]
        gains = np.ones(ch, np.float32) if scale is None else scale.reshape(ch).float().contiguous().numpy()
        if blocks is not None:  # the attention's sums per block of rows (the split pass's)
            cuts = np.array([b[0] for b in blocks] + [h], np.int64)

    def details(band: tuple[int, int]) -> None:
        r0, r1 = band
        i = bands.index(band)
        if rest is not None:  # the same kernels on the same maps as below, in one call
            lo, hi = max(0, r0 - halo), min(h, r1 + halo)
            n = hi - lo
            _pass_kernels.detail(
                rims, pad, lo, hi, r0, r1, h, w, gains, scale is not None, out_np, _planar.bordered(ch, n, w).numpy(),
                _planar.bordered(ch, n, w).numpy(), _planar.bordered(ch * len(net.detail.paths), n, w).numpy(),
                _planar.bordered(ch, n, w).numpy(), _planar.bordered(ch, n, w).numpy(), t2, flat, s2,
                rest["lengths"], *((total_np[i:i + 1], peak_np[i:i + 1], np.array([r0, r1])) if blocks is None
                                   else (total_np, peak_np, cuts)), att is not None)
            return
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
        for i in range(len(sums)):  # in band (block) order, whatever order the bands ran in
            mean += sums[i]
        wc = path.channel_weights(att, torch.from_numpy((mean / (h * w)).astype(np.float32)[None]),
                                  torch.from_numpy(peak.numpy().max(axis=0)[None]))
        halo = _halo(att.spatial, att.combine, net.head)
    else:
        halo = _halo(net.head)

    if rest is not None:
        d_np = detail.numpy()
        cols = _planar.padded_width(w)
        if att is not None:
            wc_np = wc.reshape(ch).float().contiguous().numpy()
            p = _planar.single_conv(att.spatial).kernel_size[0] // 2
            cascade = att.mode == "cascade"
        else:
            wc_np, p, cascade = np.ones(ch, np.float32), 0, False
        mid_ch = int(t3[2, 1])

    def head(band: tuple[int, int]) -> None:
        r0, r1 = band
        if rest is not None:  # the same kernels on the same maps as :func:`_planar.tail`, in two calls around torch's
            lo, hi = max(0, r0 - halo), min(h, r1 + halo)  # sigmoids (the same bits)
            n = hi - lo
            both = _planar.bordered(2 * ch, n, w).numpy()
            g = _NO_WEIGHTS
            # (the whole image: rows wider than the map and sigmoids into their destinations, as the split pass's)
            wide = cols if blocks is None else cols + _planar.LANES
            if att is not None:
                spatial = torch.empty(1, n, wide)
                _pass_kernels.attention_gate(d_np, lo, n, w, wc_np, cascade, both,
                                             _planar.bordered(2, n, w, p).numpy(), p, spatial.numpy(), t3, flat, s3)
                if blocks is None:
                    g = torch.sigmoid(spatial[0, :, :w]).numpy()
                else:
                    g = torch.sigmoid(spatial[0, :, :w], out=torch.empty(n, w)).numpy()
            out = torch.empty(1, n, wide)
            _pass_kernels.attention_head(d_np, lo, n, w, g, cascade, att is not None, both,
                                         _planar.bordered(ch, n, w).numpy(), _planar.bordered(mid_ch, n, w).numpy(),
                                         out.numpy(), t3, flat, s3)
            if blocks is None:
                fused[0, :, r0:r1].copy_(torch.sigmoid(out[0, :, :w])[r0 - lo:r1 - lo])
            else:
                torch.sigmoid(out[0, :, :w], out=fused[0, 0])
            return
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
