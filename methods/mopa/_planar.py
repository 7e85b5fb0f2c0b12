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
    """The H×W×C numpy view of one channels-last map."""
    return x.permute(0, 2, 3, 1)[0].numpy()


def path_layers(seq: nn.Sequential) -> list[tuple[nn.Conv2d, float]] | None:
    """The (conv, LReLU slope) layers of a feature path when every one has a compiled kernel, else ``None``."""
    layers = []
    for block in seq:
        if not (isinstance(block, nn.Sequential) and len(block) == 2 and isinstance(block[1], nn.LeakyReLU)):
            return None
        conv = block[0]
        k = conv.kernel_size[0]
        if not (isinstance(conv, nn.Conv2d) and (conv.in_channels, conv.out_channels, k) in KERNELS
                and conv.kernel_size == (k, k) and conv.padding == (k // 2, k // 2) and conv.stride == (1, 1)
                and conv.dilation == (1, 1) and conv.groups == 1 and conv.bias is not None
                and conv.padding_mode == "zeros"):
            return None
        layers.append((conv, float(block[1].negative_slope)))
    return layers or None


def run_layers(layers: list[tuple[nn.Conv2d, float]], inp: torch.Tensor, h: int, w: int,
               spare: list[torch.Tensor]) -> torch.Tensor:
    """The layers on the zero-padded planar map ``inp`` (Cin × (h + 2) × (≥ Wv + 2), the image at [1:, 1:]);
    the last layer's padded planar output (one of ``spare``: two buffers of the layers' width, zero borders)."""
    x = inp
    for i, (conv, slope) in enumerate(layers):
        out = spare[i % 2]
        KERNELS[(conv.in_channels, conv.out_channels, conv.kernel_size[0])](
            x.numpy(), conv.weight.detach().reshape(-1).numpy(), conv.bias.detach().numpy(), np.float32(slope),
            out.numpy(), h, w, 1, 1)
        x = out
    return x


def features(net: nn.Module, x: torch.Tensor,
             paths: tuple[list[tuple[nn.Conv2d, float]], ...]) -> torch.Tensor:
    """The concatenated outputs of ``net``'s three feature paths (``paths``: their :func:`path_layers`) for
    one 1×4×H×W sample ``x``: a channels-last 1×3w×H×W map."""
    _, _, h, w = x.shape
    width = paths[0][-1][0].out_channels
    cols = -(-w // LANES) * LANES + 2
    feats = torch.empty(1, 3 * width, h, w, memory_format=torch.channels_last)
    spare = [torch.zeros(width, h + 2, cols), torch.zeros(width, h + 2, cols)]
    a, b, ma, mb = x[:, 0:1], x[:, 1:2], x[:, 2:3], x[:, 3:4]
    inputs = (net._path_input(a, ma), net._path_input(b, mb), torch.cat([a, b], dim=1))
    for i, (layers, src) in enumerate(zip(paths, inputs)):
        inp = torch.zeros(src.shape[1], h + 2, cols)
        inp[:, 1:h + 1, 1:w + 1] = src[0]
        out = run_layers(layers, inp, h, w, spare)
        to_channels_last(out.numpy(), 1, 1, _hwc(feats), i * width)
    return feats


def dscb_layers(block: nn.Module) -> tuple[nn.Conv2d, nn.Conv2d, float] | None:
    """(depthwise conv, pointwise conv, LReLU slope) of a detail-module DSCB with a compiled kernel, else ``None``."""
    from ._conv_kernels import DSCB as KERNELS_DSCB

    if not (isinstance(block, nn.Sequential) and len(block) == 3 and isinstance(block[2], nn.LeakyReLU)):
        return None
    dw, pw = block[0], block[1]
    ch = dw.in_channels
    if not (isinstance(dw, nn.Conv2d) and isinstance(pw, nn.Conv2d) and ch in KERNELS_DSCB
            and dw.out_channels == ch and dw.groups == ch and dw.kernel_size == (3, 3) and dw.padding == (1, 1)
            and pw.in_channels == ch and pw.out_channels == ch and pw.groups == 1 and pw.kernel_size == (1, 1)
            and pw.padding == (0, 0) and all(m.stride == (1, 1) and m.dilation == (1, 1) and m.bias is not None
                                              and m.padding_mode == "zeros" for m in (dw, pw))):
        return None
    return dw, pw, float(block[2].negative_slope)


def detail_paths(paths: list[list[tuple[nn.Conv2d, nn.Conv2d, float]]], h: torch.Tensor) -> torch.Tensor:
    """The detail module's parallel DSCB paths, each plus its skip ``h``, concatenated (channels-last
    1×(len(paths)·C)×H×W) for the channels-last 1×C×H×W map ``h`` (``paths``: their :func:`dscb_layers`)."""
    from ._conv_kernels import DSCB as KERNELS_DSCB

    _, ch, rows, w = h.shape
    cols = -(-w // LANES) * LANES + 2
    hp = torch.zeros(ch, rows + 2, cols)
    to_planar(_hwc(h), hp.numpy(), 1, 1)  # (4× faster than torch's copy of this permutation)
    spare = [torch.zeros(ch, rows + 2, cols), torch.zeros(ch, rows + 2, cols)]
    outs = torch.empty(1, len(paths) * ch, rows, w, memory_format=torch.channels_last)
    for i, path in enumerate(paths):
        src = hp
        for j, (dw, pw, slope) in enumerate(path):
            dst = spare[j % 2]
            KERNELS_DSCB[ch][j == len(path) - 1](
                src.numpy(), dw.weight.detach().reshape(-1).numpy(), dw.bias.detach().numpy(),
                pw.weight.detach().reshape(-1).numpy(), pw.bias.detach().numpy(), np.float32(slope), hp.numpy(),
                dst.numpy(), rows, w, 1, 1)
            src = dst
        to_channels_last(src.numpy(), 1, 1, _hwc(outs), i * ch)
    return outs


def head_layers(seq: nn.Sequential) -> list[tuple[nn.Conv2d, float]] | None:
    """The reconstruction head's (conv, slope) layers — a conv + LReLU block, then a conv before the final
    sigmoid (slope 1: no activation) — when both have compiled kernels, else ``None``."""
    if not (len(seq) == 3 and isinstance(seq[1], nn.Conv2d) and isinstance(seq[2], nn.Sigmoid)):
        return None
    first = path_layers(seq[0:1])
    last = path_layers(nn.Sequential(nn.Sequential(seq[1], nn.LeakyReLU(1.0))))
    return None if first is None or last is None else first + last


def single_conv(seq: nn.Sequential) -> nn.Conv2d | None:
    """The conv of a conv + sigmoid Sequential (the spatial attention) when it has a compiled kernel, else ``None``."""
    if not (len(seq) == 2 and isinstance(seq[1], nn.Sigmoid)):
        return None
    layers = path_layers(nn.Sequential(nn.Sequential(seq[0], nn.LeakyReLU(1.0))))
    return None if layers is None else layers[0][0]


def conv_sigmoid(conv: nn.Conv2d, inp: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``sigmoid(conv(x))`` (one output channel; H×W, contiguous) for the zero-padded planar input ``inp``
    (Cin × (h + k − 1) × (≥ Wv + k − 1), the image at [p:, p:] with p = k // 2)."""
    out = torch.empty(1, h, -(-w // LANES) * LANES)
    KERNELS[(conv.in_channels, 1, conv.kernel_size[0])](
        inp.numpy(), conv.weight.detach().reshape(-1).numpy(), conv.bias.detach().numpy(), np.float32(1.0),
        out.numpy(), h, w, 0, 0)
    return torch.sigmoid(out[0, :, :w])


def head(layers: list[tuple[nn.Conv2d, float]], f: torch.Tensor) -> torch.Tensor:
    """The reconstruction head (:func:`head_layers`) on the channels-last 1×C×H×W map ``f``: the fused
    image, 1×1×H×W (sigmoid applied)."""
    (first, slope), (last, _) = layers
    _, ch, h, w = f.shape
    cols = -(-w // LANES) * LANES + 2
    inp = torch.zeros(ch, h + 2, cols)
    to_planar(_hwc(f), inp.numpy(), 1, 1)
    mid = torch.zeros(first.out_channels, h + 2, cols)
    KERNELS[(first.in_channels, first.out_channels, 3)](
        inp.numpy(), first.weight.detach().reshape(-1).numpy(), first.bias.detach().numpy(), np.float32(slope),
        mid.numpy(), h, w, 1, 1)
    return conv_sigmoid(last, mid, h, w)[None, None]
