"""``mopa``'s three feature paths on planar maps with the compiled direct convolutions (issue 23, session 10).

The paths' 2→5 and 5→5 3×3 conv + LReLU layers (eleven of them) run with
:mod:`methods.mopa._conv_kernels` (≈ 140 GFLOP/s against oneDNN's 30–40 on these widths, one thread,
256²) on zero-padded planar buffers that stay planar from layer to layer; each path's last layer is
copied into its five channels of the channels-last 15-channel map that the contrast module reads (no
``cat``).  Float32 round-off against oneDNN (another summation order; pinned in
``tests/methods/test_mopa_conv_kernels.py``).  Used only by :class:`methods.mopa.inference.InferencePath`
under ``torch.inference_mode`` on one channels-last float32 sample; every other case (other layer
shapes, a FLOP counter) keeps the oneDNN path.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import numpy as np
import torch
from torch import nn

from ._conv_kernels import KERNELS, LANES, RESIDUAL_KERNELS, to_channels_last, to_planar, to_planar_scaled


def _hwc(x: torch.Tensor) -> np.ndarray:
    """The H×W×C numpy view of one channels-last map (as ``inference._hwc``: importing it would close an import
    cycle, ``inference`` importing this module lazily)."""
    return x.permute(0, 2, 3, 1)[0].numpy()


def padded_width(w: int) -> int:
    """``w`` rounded up to whole vectors (:data:`LANES`): the columns a kernel writes for a row of ``w``."""
    return -(-w // LANES) * LANES


def has_kernel(conv: nn.Module) -> bool:
    """Whether ``conv`` is a square, biased, stride-1, zero-'same'-padded ``Conv2d`` of a compiled shape."""
    if not isinstance(conv, nn.Conv2d):
        return False
    k = conv.kernel_size[0]
    return ((conv.in_channels, conv.out_channels, k) in KERNELS and conv.kernel_size == (k, k)
            and conv.padding == (k // 2, k // 2) and conv.stride == (1, 1) and conv.dilation == (1, 1)
            and conv.groups == 1 and conv.bias is not None and conv.padding_mode == "zeros")


def apply(conv: nn.Conv2d, inp: np.ndarray, out: np.ndarray, h: int, w: int, slope: float | None = None,
          at: int = 0) -> None:
    """``conv`` (then LReLU with ``slope``; ``None``: no activation) by its compiled kernel: planar ``inp``
    (zero padding in it) → ``out[:, at:at + h, at:at + w]`` (:mod:`methods.mopa._conv_kernels`)."""
    KERNELS[(conv.in_channels, conv.out_channels, conv.kernel_size[0])](
        inp, conv.weight.detach().reshape(-1).numpy(), conv.bias.detach().numpy(),
        np.float32(1.0 if slope is None else slope), out, h, w, at, at)


def path_layers(seq: nn.Sequential) -> list[tuple[nn.Conv2d, float]] | None:
    """The (conv, LReLU slope) layers of a feature path when every one has a compiled kernel, else ``None``."""
    layers = []
    for block in seq:
        mods = tuple(block) if isinstance(block, nn.Sequential) else ()  # (no Sequential indexing: serial time)
        if not (len(mods) == 2 and isinstance(mods[1], nn.LeakyReLU) and has_kernel(mods[0])):
            return None
        layers.append((mods[0], float(mods[1].negative_slope)))
    return layers or None


def run_layers(layers: list[tuple[nn.Conv2d, float]], inp: torch.Tensor, h: int, w: int,
               spare: list[torch.Tensor], last: tuple[torch.Tensor, int]) -> None:
    """The layers on the zero-padded planar map ``inp`` (Cin × (h + 2) × (≥ Wv + 2), the image at [1:, 1:]),
    intermediate maps in ``spare`` (two buffers of the layers' width, zero borders), the last layer's output
    into ``last = (buffer, p)`` at [p:, p:] (its other entries are left as they are: zero padding)."""
    x = inp
    for i, (conv, slope) in enumerate(layers):
        out, at = last if i == len(layers) - 1 else (spare[i % 2], 1)
        apply(conv, x.numpy(), out.numpy(), h, w, slope, at)
        x = out


def features(net: nn.Module, x: torch.Tensor, paths: tuple[list[tuple[nn.Conv2d, float]], ...],
             pad: int = 1, channels_last: bool = True) -> tuple[torch.Tensor | None, torch.Tensor]:
    """The concatenated outputs of ``net``'s three feature paths (``paths``: their :func:`path_layers`) for
    one 1×4×H×W sample ``x``: a channels-last 1×3w×H×W map (``None`` unless ``channels_last``), and the same
    values planar with ``pad`` zero rows and columns around them (3w × (H + 2·pad) × (Wv + 2·pad)), which the
    multiscale convs read."""
    _, _, h, w = x.shape
    width = paths[0][-1][0].out_channels
    feats = torch.empty(1, 3 * width, h, w, memory_format=torch.channels_last) if channels_last else None
    planar = bordered(3 * width, h, w, pad)
    spare = [bordered(width, h, w), bordered(width, h, w)]
    if net.use_mask and net.mask_mode != "concat":
        a, b, ma, mb = x[:, 0:1], x[:, 1:2], x[:, 2:3], x[:, 3:4]
        inputs = (net._path_input(a, ma), net._path_input(b, mb), torch.cat([a, b], dim=1))
    else:  # the paths' inputs are channels of the sample: copied straight into the planar maps (no concatenation)
        inputs = ((0, 2) if net.use_mask else (0,), (1, 3) if net.use_mask else (1,), (0, 1))
        sample = x[0].numpy()
    for i, (layers, src) in enumerate(zip(paths, inputs)):
        if isinstance(src, tuple):
            inp = bordered(len(src), h, w)
            into = inp.numpy()
            for k, channel in enumerate(src):
                into[k, 1:h + 1, 1:w + 1] = sample[channel]
        else:
            inp = bordered(src.shape[1], h, w)
            inp[:, 1:h + 1, 1:w + 1] = src[0]
        out = planar[i * width:(i + 1) * width]
        run_layers(layers, inp, h, w, spare, (out, pad))
        if channels_last:
            to_channels_last(out.numpy(), pad, pad, _hwc(feats), i * width)
    return feats, planar


def planar_copy(x: torch.Tensor, pad: int) -> torch.Tensor:
    """The channels-last 1×C×H×W map ``x`` as a planar C × (H + 2·pad) × (Wv + 2·pad) map, zero-padded."""
    _, c, h, w = x.shape
    out = torch.zeros(c, h + 2 * pad, padded_width(w) + 2 * pad)
    to_planar(_hwc(x), out.numpy(), pad, pad)
    return out


def multiscale_layers(cem: nn.Module) -> list[nn.Conv2d] | None:
    """The contrast module's multiscale convs when every one has a compiled kernel, else ``None``."""
    convs = list(cem.scales)
    return convs if all(has_kernel(c) for c in convs) else None


def multiscale(convs: list[nn.Conv2d], planar: torch.Tensor, pad: int, h: int, w: int,
               slope: float | None) -> torch.Tensor:
    """The multiscale layer (the convs' outputs concatenated, then LReLU with ``slope`` if given) from the
    planar features that :func:`features` returned with ``pad`` ≥ every kernel's half-width: a channels-last
    1×C×H×W map.  Each conv with its own taps (no zero-padded 7×7 kernel: the counted multiply-adds)."""
    channels = sum(c.out_channels for c in convs)
    out = torch.empty(channels, h, padded_width(w))
    start = 0
    for conv in convs:
        n, off = conv.out_channels, pad - conv.kernel_size[0] // 2
        apply(conv, planar.numpy()[:, off:, off:], out.numpy()[start:start + n], h, w, slope)
        start += n
    m = torch.empty(1, channels, h, w, memory_format=torch.channels_last)
    to_channels_last(out.numpy(), 0, 0, _hwc(m), 0)
    return m


def multiscale_planar(convs: list[nn.Conv2d], planar: torch.Tensor, pad: int, h: int, w: int,
                      slope: float | None) -> torch.Tensor:
    """:func:`multiscale` into a planar map padded by 1 (:func:`bordered`) instead of a channels-last one."""
    m = bordered(sum(c.out_channels for c in convs), h, w)
    start = 0
    for conv in convs:
        n, off = conv.out_channels, pad - conv.kernel_size[0] // 2
        apply(conv, planar.numpy()[:, off:, off:], m.numpy()[start:start + n], h, w, slope, 1)
        start += n
    return m


def contrast_supported(cem: nn.Module | None) -> bool:
    """Whether the contrast module (``None``: switched off) runs planar: its multiscale convs and its two
    residual 3×3 convs have compiled kernels, and its weights multiply its input (``apply="input"``)."""
    if cem is None:
        return True
    first, act, second = cem.res
    return (cem.cem_apply == "input" and multiscale_layers(cem) is not None and has_kernel(first)
            and isinstance(act, nn.LeakyReLU) and isinstance(second, nn.Conv2d)
            and (second.in_channels, second.out_channels, second.kernel_size[0]) in RESIDUAL_KERNELS
            and second.kernel_size == (3, 3) and second.padding == (1, 1) and second.stride == (1, 1)
            and second.dilation == (1, 1) and second.groups == 1 and second.bias is not None
            and second.padding_mode == "zeros")


def contrast_flow(cem: nn.Module, planar: torch.Tensor, pad: int, h: int, w: int) -> torch.Tensor:
    """The contrast module's residual flow ``lrelu(m + res(m))``, ``m`` its multiscale features, from the planar
    features padded by ``pad`` (:func:`contrast_supported`): a planar map padded by 1 (:func:`bordered`)."""
    slope = float(cem.act.negative_slope)
    m = multiscale_planar(multiscale_layers(cem), planar, pad, h, w, slope)
    first, act, second = cem.res
    mid = bordered(first.out_channels, h, w)
    apply(first, m.numpy(), mid.numpy(), h, w, float(act.negative_slope), 1)
    RESIDUAL_KERNELS[(second.in_channels, second.out_channels, 3)](  # in place: flow = lrelu(conv(mid) + m)
        mid.numpy(), _flat(second.weight), _flat(second.bias), np.float32(slope), m.numpy(), m.numpy(), h, w, 1, 1)
    return m


def local_std_max_rows(flow: torch.Tensor, r: int, g0: int, h: int, y0: int, y1: int, rows: int, w: int,
                       best: torch.Tensor) -> None:
    """Running maxima (``best``, C × w) of the local std over image rows ``[y0, y1)`` of an image of ``h`` rows,
    from the planar ``flow`` (padded by 1) holding ``rows`` image rows from ``g0``
    (:func:`methods.mopa._std_kernels.local_std_max_rows_planar`)."""
    from . import _std_kernels

    buf, oy, ox = whole(flow, 1)
    _std_kernels.local_std_max_rows_planar(buf, oy, ox, w, r, g0, h, y0, y1, best.numpy())


def head_layers(seq: nn.Sequential) -> list[tuple[nn.Conv2d, float]] | None:
    """The reconstruction head's (conv, slope) layers — a conv + LReLU block, then a conv before the final
    sigmoid (slope 1: no activation) — when both have compiled kernels, else ``None``."""
    mods = tuple(seq)
    if not (len(mods) == 3 and isinstance(mods[1], nn.Conv2d) and isinstance(mods[2], nn.Sigmoid)):
        return None
    first = path_layers(mods[0:1])
    return None if first is None or not has_kernel(mods[1]) else first + [(mods[1], 1.0)]


def single_conv(seq: nn.Sequential) -> nn.Conv2d | None:
    """The conv of a conv + sigmoid Sequential (the spatial attention) when it has a compiled kernel, else ``None``."""
    mods = tuple(seq)
    if not (len(mods) == 2 and isinstance(mods[1], nn.Sigmoid)):
        return None
    return mods[0] if has_kernel(mods[0]) else None


def conv_sigmoid(conv: nn.Conv2d, inp: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``sigmoid(conv(x))`` (one output channel; H×W, contiguous) for the zero-padded planar input ``inp``
    (Cin × (h + k − 1) × (≥ Wv + k − 1), the image at [p:, p:] with p = k // 2)."""
    out = torch.empty(1, h, padded_width(w))
    apply(conv, inp.numpy(), out.numpy(), h, w)
    return torch.sigmoid(out[0, :, :w])


def head(layers: list[tuple[nn.Conv2d, float]], f: torch.Tensor) -> torch.Tensor:
    """The reconstruction head (:func:`head_layers`) on the channels-last 1×C×H×W map ``f``: the fused
    image, 1×1×H×W (sigmoid applied)."""
    (first, slope), (last, _) = layers
    _, ch, h, w = f.shape
    cols = padded_width(w) + 2
    inp = torch.zeros(ch, h + 2, cols)
    to_planar(_hwc(f), inp.numpy(), 1, 1)
    mid = torch.zeros(first.out_channels, h + 2, cols)
    apply(first, inp.numpy(), mid.numpy(), h, w, slope, 1)
    return conv_sigmoid(last, mid, h, w)[None, None]


# ---------------------------------------------------------------------------- detail module (session 11)
#: bytes of planar maps one thread keeps between :func:`scratch` blocks (a 256² band's maps of the three banded
#: passes: 29.4 MiB per worker)
SCRATCH_BYTES = 32 << 20
#: a thread's kept maps of a shape that none of its last ``SCRATCH_STALE`` blocks took are dropped when a new map
#: does not fit
SCRATCH_STALE = 8


class _Scratch(threading.local):
    """One thread's kept planar maps by (C, h, w, p), the block that last took each shape, and within a
    :func:`scratch` block how many of each it took."""

    def __init__(self) -> None:
        self.maps: dict[tuple[int, int, int, int], list[torch.Tensor]] = {}
        self.used: dict[tuple[int, int, int, int], int] = {}
        self.kept = 0
        self.block = 0
        self.taken: dict[tuple[int, int, int, int], int] | None = None


_SCRATCH = _Scratch()


@contextlib.contextmanager
def scratch() -> Iterator[None]:
    """Within the block, :func:`bordered` hands out the calling thread's kept maps of the asked shape, each at most
    once, and keeps the fresh ones it makes while they fit in :data:`SCRATCH_BYTES` (session 12: the band workers'
    maps of one call serve the next; none of them may be used after the block).  A kept map's padding is still 0:
    every writer (the compiled kernels, the copies into interiors) writes only its interior and sets the lanes
    past ``w`` back to 0, and nothing writes its padding.  A map that does not fit is an ordinary fresh one (the
    kept ones are not dropped for it, unless no recent block took their shape)."""
    s = _SCRATCH
    if s.taken is not None:  # nested: the outer block's maps stay taken
        yield
        return
    s.taken = {}
    s.block += 1
    try:
        yield
    finally:
        s.taken = None


def bordered(c: int, h: int, w: int, p: int = 1) -> torch.Tensor:
    """A planar C × (h + 2p) × (Wv + 2p) buffer whose padding (rows and columns around [p:p + h, p:p + w],
    the lanes past ``w`` included) is 0 and whose interior is left to be written (not cleared: a kernel or a
    copy writes all of it); within a :func:`scratch` block, a kept one."""
    s = _SCRATCH
    if s.taken is None:
        return _bordered(c, h, w, p)
    key = (c, h, w, p)
    n = s.taken.get(key, 0)
    kept = s.maps.get(key, [])
    s.used[key] = s.block
    if n < len(kept):
        s.taken[key] = n + 1
        return kept[n]
    buf = _bordered(c, h, w, p)
    size = buf.numel() * buf.element_size()
    if s.kept + size > SCRATCH_BYTES:  # full: drop the shapes no recent block took
        stale = [k for k in s.maps if s.used[k] < s.block - SCRATCH_STALE]
        for k in stale:
            s.kept -= sum(t.numel() * t.element_size() for t in s.maps.pop(k))
    if s.kept + size <= SCRATCH_BYTES:
        s.maps.setdefault(key, []).append(buf)
        s.kept += size
        s.taken[key] = n + 1
    return buf


def _bordered(c: int, h: int, w: int, p: int) -> torch.Tensor:
    buf = torch.empty(c, h + 2 * p, padded_width(w) + 2 * p)
    buf[:, :p] = 0.0
    buf[:, p + h:] = 0.0
    buf[:, p:p + h, :p] = 0.0
    buf[:, p:p + h, p + w:] = 0.0
    return buf


def _is_dscb(block: nn.Module, ch: int) -> bool:
    """Whether ``block`` is a DSCB of ``ch`` channels that :mod:`methods.mopa._detail_kernels` computes."""
    from ._detail_kernels import CHANNELS

    if not (isinstance(block, nn.Sequential) and len(block) == 3 and ch == CHANNELS):
        return False
    dw, pw, act = block
    return (isinstance(dw, nn.Conv2d) and isinstance(pw, nn.Conv2d) and isinstance(act, nn.LeakyReLU)
            and dw.in_channels == dw.out_channels == dw.groups == ch and dw.kernel_size == (3, 3)
            and dw.padding == (1, 1) and dw.stride == (1, 1) and dw.dilation == (1, 1) and dw.bias is not None
            and dw.padding_mode == "zeros" and pw.in_channels == pw.out_channels == ch and pw.kernel_size == (1, 1)
            and pw.groups == 1 and pw.stride == (1, 1) and pw.padding == (0, 0) and pw.bias is not None)


def detail_supported(dpm: nn.Module) -> bool:
    """Whether the detail module ``dpm`` (head conv + LReLU, DSCB paths, 3×3 fuse conv) has compiled layers."""
    head = tuple(dpm.head)
    ch = head[0].in_channels if head and isinstance(head[0], nn.Conv2d) else -1
    fuse = dpm.fuse
    return (len(head) == 2 and isinstance(head[1], nn.LeakyReLU) and has_kernel(head[0])
            and head[0].out_channels == ch
            and all(_is_dscb(b, ch) for path in dpm.paths for b in path) and all(len(p) > 0 for p in dpm.paths)
            and isinstance(fuse, nn.Conv2d) and fuse.bias is not None and fuse.groups == 1
            and (fuse.in_channels, fuse.out_channels, fuse.kernel_size[0]) in RESIDUAL_KERNELS
            and fuse.in_channels == ch * len(dpm.paths) and fuse.kernel_size == (3, 3) and fuse.padding == (1, 1)
            and fuse.stride == (1, 1) and fuse.dilation == (1, 1) and fuse.padding_mode == "zeros")


def _flat(t: torch.Tensor) -> np.ndarray:
    return t.detach().reshape(-1).numpy()


def detail(dpm: nn.Module, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`detail_planar`, its result copied to a channels-last 1×C×H×W map."""
    _, ch, h, w = x.shape
    planar = detail_planar(dpm, x, scale)
    out = torch.empty(1, ch, h, w, memory_format=torch.channels_last)
    to_channels_last(planar.numpy(), 1, 1, _hwc(out), 0)
    return out


def detail_planar(dpm: nn.Module, x: torch.Tensor | np.ndarray, scale: torch.Tensor | None = None,
                  into: tuple[torch.Tensor, int, int, int] | None = None) -> torch.Tensor:
    """The detail module (:func:`detail_supported`) on ``x · scale`` — ``x`` a channels-last 1×C×H×W map, or a
    planar C × H × W numpy view (of :func:`features`' planar map) — (``scale``:
    the contrast module's 1×C×1×1 channel weights, or ``None``): a planar C × (H + 2) × (Wv + 2) map, zero-padded
    (:func:`bordered`).

    Planar throughout: ``x · scale`` copied once into a zero-padded planar buffer (the products as torch's),
    the head conv + LReLU and the 3×3 fuse conv with the module-wide residual sum as compiled direct
    convolutions (:mod:`methods.mopa._conv_kernels`), each DSCB as one compiled pass with the path's skip
    sum in its last block (:mod:`methods.mopa._detail_kernels`), the paths' outputs written straight into
    their channels of the fuse conv's planar input (no ``cat``).  ``into = (dest, row, at, n)``: the fuse conv
    computes only rows ``[at, at + n)`` and writes them to rows ``[row, row + n)`` of the planar ``dest`` (a band's
    own rows into the stored map: no copy, no halo rows); ``dest`` is returned."""
    from . import _detail_kernels as dk

    head, act = dpm.head
    if isinstance(x, np.ndarray):  # planar C × H × W (a view of the stored features)
        ch, h, w = x.shape
        xw = bordered(ch, h, w)
        inside = torch.from_numpy(interior(xw, h, w))
        if scale is None:
            inside.copy_(torch.from_numpy(x))
        else:
            torch.mul(torch.from_numpy(x), scale.reshape(ch, 1, 1), out=inside)
    else:
        _, ch, h, w = x.shape
        xw = bordered(ch, h, w)
        if scale is None:
            to_planar(_hwc(x), xw.numpy(), 1, 1)
        else:
            to_planar_scaled(_hwc(x), scale.reshape(ch).float().contiguous().numpy(), xw.numpy(), 1, 1)
    hb = bordered(ch, h, w)
    apply(head, xw.numpy(), hb.numpy(), h, w, float(act.negative_slope), 1)
    cat = bordered(ch * len(dpm.paths), h, w)
    spare = [bordered(ch, h, w), bordered(ch, h, w)]
    for i, path in enumerate(dpm.paths):
        src = hb
        for j, block in enumerate(path):
            dw, pw, lrelu = block
            weights = (_flat(dw.weight), _flat(dw.bias), _flat(pw.weight), _flat(pw.bias),
                       np.float32(lrelu.negative_slope))
            if j == len(path) - 1:
                dst = cat[i * ch:(i + 1) * ch]
                dk.dscb_skip(src.numpy(), *weights, dst.numpy(), hb.numpy(), h, w, 1, 1)
            else:
                dst = spare[j % 2]
                dk.dscb(src.numpy(), *weights, dst.numpy(), h, w, 1, 1)
            src = dst
    fuse = dpm.fuse
    kernel = RESIDUAL_KERNELS[(fuse.in_channels, fuse.out_channels, 3)]
    if into is None:
        kernel(cat.numpy(), _flat(fuse.weight), _flat(fuse.bias), np.float32(1.0), xw.numpy(), xw.numpy(), h, w, 1, 1)
        return xw
    dest, row, at, n = into  # only rows [at, at + n) of x, written to dest[:, row:row + n] (the band's own rows)
    kernel(cat.numpy()[:, at:], _flat(fuse.weight), _flat(fuse.bias), np.float32(1.0), dest.numpy()[:, row:],
           xw.numpy()[:, 1 + at:], n, w, 0, 1)
    return dest


def interior(planar: torch.Tensor, h: int, w: int, p: int = 1) -> np.ndarray:
    """The C × h × w image part of a planar buffer padded by ``p`` (a numpy view)."""
    return planar.numpy()[:, p:p + h, p:p + w]


def pixel_sum_max(planar: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums (float64) and maxima over the pixels of every channel of the planar map's h × w image (1×C each)."""
    from . import _attention_kernels

    c = planar.shape[0]
    sums = torch.empty(1, c, dtype=torch.float64)
    peak = torch.empty(1, c)
    buf, oy, ox = whole(planar, 1)
    _attention_kernels.pixel_sum_max_planar(buf, oy, ox, h, w, sums[0].numpy(), peak[0].numpy())
    return sums, peak


def whole(planar: torch.Tensor, p: int) -> tuple[np.ndarray, int, int]:
    """The C-contiguous numpy buffer under the planar map ``planar`` (a view of rows of it, or itself) and the
    (row, column) offset of its image, which starts at [p, p] of the view: the compiled loops read whole
    buffers (their rows then vectorise) at an offset.

    The buffer is found from the view's storage, not from ``Tensor._base``, which views taken under
    ``torch.inference_mode`` do not record (session 12: the band workers' rows of the stored detail map were
    copied, 0.2 ms each, twice per band)."""
    if planar.dim() == 3 and planar.stride(2) == 1 and planar.stride(1) > 0:
        c, cols, plane = planar.shape[0], planar.stride(1), planar.stride(0)
        offset = planar.storage_offset()
        if (plane % cols == 0 and plane >= planar.shape[1] * cols and cols >= planar.shape[2] and 0 <= offset < plane
                and planar.untyped_storage().nbytes() == c * plane * planar.element_size()):
            base = planar.as_strided((c, plane // cols, cols), (plane, cols, 1), 0)  # the whole C-contiguous buffer
            row, col = divmod(offset, cols)
            return base.numpy(), row + p, col + p
    return planar.contiguous().numpy(), p, p  # not rows of a whole buffer: a copy (or itself, if contiguous)


def tail_supported(att: nn.Module | None, head: nn.Sequential) -> bool:
    """Whether the attention module (``None``: switched off) and the head have compiled layers throughout."""
    if head_layers(head) is None:
        return False
    if att is None:
        return True
    combine = tuple(att.combine)
    return (single_conv(att.spatial) is not None and len(combine) == 2 and has_kernel(combine[0])
            and isinstance(combine[1], nn.LeakyReLU))


def tail(att: nn.Module | None, head: nn.Sequential, d: torch.Tensor, h: int, w: int,
         wc: torch.Tensor | None) -> torch.Tensor:
    """Attention (with the channel weights ``wc``, 1×C×1×1) and head on the planar detail map ``d``
    (C × (h + 2) × (≥ Wv + 2), the image at [1:, 1:], padded by zeros or by rows outside a band): the fused
    image, 1×1×h×w (:func:`tail_supported`).  Planar throughout: the gating products and the spatial branch's
    input (:func:`methods.mopa._attention_kernels.gate_planar`, the same products and sums as the channels-last
    kernels) written straight into the combining conv's zero-padded input, the 7×7 spatial conv, the 3×3
    30→15 combining conv + LReLU and the head's convs compiled; no layout copy."""
    from . import _attention_kernels as kernels

    c = d.shape[0]
    if att is not None:
        conv = single_conv(att.spatial)
        p = conv.kernel_size[0] // 2
        cascade = att.mode == "cascade"
        both = bordered(2 * c, h, w)
        spatial = bordered(2, h, w, p)
        src, dy, dx = whole(d, 1)
        at = np.array([dy, dx]), np.array([1, 1])
        kernels.gate_planar(src, at[0], wc.reshape(c).float().contiguous().numpy(), cascade, both.numpy(), at[1],
                            spatial.numpy(), np.array([p, p]), h, w)
        weights = conv_sigmoid(conv, spatial, h, w)
        kernels.gate_spatial_planar(src, at[0], weights.numpy(), both.numpy(), at[1], cascade, h, w)
        d = bordered(c, h, w)
        combine, act = att.combine
        apply(combine, both.numpy(), d.numpy(), h, w, float(act.negative_slope), 1)
    return head_planar(head_layers(head), d, h, w)


def head_planar(layers: list[tuple[nn.Conv2d, float]], inp: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The reconstruction head (:func:`head_layers`) on a planar map padded by 1 (:func:`bordered`): 1×1×h×w."""
    (first, slope), (last, _) = layers
    mid = bordered(first.out_channels, h, w)
    apply(first, inp.numpy(), mid.numpy(), h, w, slope, 1)
    return conv_sigmoid(last, mid, h, w)[None, None]
