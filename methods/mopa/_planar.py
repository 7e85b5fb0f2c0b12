"""``mopa``'s three feature paths on planar maps with the compiled direct convolutions (issue 23, session 10).

The paths' 2→5 and 5→5 3×3 conv + LReLU layers (eleven of them) run with
:mod:`methods.mopa._conv_kernels` (≈ 140 GFLOP/s against oneDNN's 30–40 on these widths, one thread,
256²) on zero-padded planar buffers that stay planar from layer to layer; each path's last layer is
copied into its five channels of the channels-last 15-channel map that the contrast module reads (no
``cat``).  Float32 round-off against oneDNN (another summation order; pinned in
``tests/methods/test_mopa_conv_kernels.py``).  Used only by :class:`methods.mopa.network.InferencePath`
under ``torch.inference_mode`` on one channels-last float32 sample; every other case (other layer
shapes, a FLOP counter) keeps the oneDNN path.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._conv_kernels import KERNELS, LANES, to_channels_last, to_planar


def _hwc(x: torch.Tensor) -> np.ndarray:
    """The H×W×C numpy view of one channels-last map (as ``network._hwc``: importing it would close an import
    cycle, ``network`` importing this module lazily)."""
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
        if not (isinstance(block, nn.Sequential) and len(block) == 2 and isinstance(block[1], nn.LeakyReLU)
                and has_kernel(block[0])):
            return None
        layers.append((block[0], float(block[1].negative_slope)))
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
             pad: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The concatenated outputs of ``net``'s three feature paths (``paths``: their :func:`path_layers`) for
    one 1×4×H×W sample ``x``: a channels-last 1×3w×H×W map, and the same values planar with ``pad`` zero rows
    and columns around them (3w × (H + 2·pad) × (Wv + 2·pad)), which the multiscale convs read."""
    _, _, h, w = x.shape
    width = paths[0][-1][0].out_channels
    cols = padded_width(w)
    feats = torch.empty(1, 3 * width, h, w, memory_format=torch.channels_last)
    planar = torch.zeros(3 * width, h + 2 * pad, cols + 2 * pad)
    spare = [torch.zeros(width, h + 2, cols + 2), torch.zeros(width, h + 2, cols + 2)]
    a, b, ma, mb = x[:, 0:1], x[:, 1:2], x[:, 2:3], x[:, 3:4]
    inputs = (net._path_input(a, ma), net._path_input(b, mb), torch.cat([a, b], dim=1))
    for i, (layers, src) in enumerate(zip(paths, inputs)):
        inp = torch.zeros(src.shape[1], h + 2, cols + 2)
        inp[:, 1:h + 1, 1:w + 1] = src[0]
        out = planar[i * width:(i + 1) * width]
        run_layers(layers, inp, h, w, spare, (out, pad))
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


def head_layers(seq: nn.Sequential) -> list[tuple[nn.Conv2d, float]] | None:
    """The reconstruction head's (conv, slope) layers — a conv + LReLU block, then a conv before the final
    sigmoid (slope 1: no activation) — when both have compiled kernels, else ``None``."""
    if not (len(seq) == 3 and isinstance(seq[1], nn.Conv2d) and isinstance(seq[2], nn.Sigmoid)):
        return None
    first = path_layers(seq[0:1])
    return None if first is None or not has_kernel(seq[1]) else first + [(seq[1], 1.0)]


def single_conv(seq: nn.Sequential) -> nn.Conv2d | None:
    """The conv of a conv + sigmoid Sequential (the spatial attention) when it has a compiled kernel, else ``None``."""
    if not (len(seq) == 2 and isinstance(seq[1], nn.Sigmoid)):
        return None
    return seq[0] if has_kernel(seq[0]) else None


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
