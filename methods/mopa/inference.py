"""The inference pass of :class:`methods.mopa.network.MopaNet` for one sample (issue 23): the same layers and
weights as its ``forward``, with what costs time around these narrow convolutions cut (:class:`InferencePath`).

:meth:`MopaNet.forward <methods.mopa.network.MopaNet.forward>` comes here under ``torch.inference_mode`` for a batch
of one; training and ``no_grad`` validation never do.  Outputs equal the module's own forward up to float32
round-off (pinned in ``tests/methods/test_mopa.py``); the compiled passes it calls are in ``_planar``, ``_split``,
``_banded`` and the ``_*_kernels`` modules of this package.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .layers import ContrastEnhancement, DetailPreserving, ParallelAttention, reflect_pad


class InferencePath:
    """The forward pass of one sample under ``torch.inference_mode`` (issue 23), with the module's own weights.

    The same layers in the same order as :meth:`MopaNet.forward` — so the same counted FLOPs — with
    what costs time around these narrow convolutions cut: channels-last maps; every convolution that an
    LReLU or a residual sum follows as one oneDNN convolution with them as post-ops, pointwise (1×1) ones
    included (:meth:`conv`; torch sends a batch-1 1×1 conv on one thread to its slow non-oneDNN path);
    other activations, sums and gating products in place; the contrast module's maximum of the local
    standard deviation as one compiled pass that stores no map (:func:`_local_std_max`; otherwise window
    sums by doubling slices, :func:`_window_sum`, and maxima by halving, :func:`_max_over_pixels`); its
    four multiscale convolutions as one (:meth:`multiscale`).  Since session 10 the narrow layers that oneDNN
    runs at 10–67 GFLOP/s — the feature paths' 2→5 and 5→5 convs, the multiscale convs (each with its own
    taps), the spatial attention's 7×7 2→1 conv and the head's 15→5 and 5→1 convs — run as compiled direct
    convolutions on planar maps (:mod:`methods.mopa._planar`, :mod:`methods.mopa._conv_kernels`; 2–12× faster
    per layer).  Since session 11 the whole pass runs **planar** when every layer has a compiled kernel
    (:meth:`planar_ready`, the registered width): the 15→15, 30→15 and 45→15 convs (the last two with their
    residual sums) compiled too, each DSCB one compiled pass (:mod:`methods.mopa._detail_kernels`), the
    attention's passes and the local std's maxima on planar maps, no layout copy and no concatenation
    (:meth:`_planar_forward`; since session 13 each pass one compiled call, :mod:`methods.mopa._pass_kernels`);
    other widths keep oneDNN for those layers.  With N > 1 torch threads and
    :attr:`SPLIT_LAYERS` that planar pass shares every layer's output rows among N single-threaded band workers
    (:mod:`methods.mopa._split`, session 11: no halo rows, the same bits as one thread).  Images above 2^19
    pixels, and any image when torch has N > 1 threads (unless split), run in bands of rows (:mod:`methods.mopa._banded`: four passes around
    the three global statistics, three where every layer is compiled (session 12: features and contrast module in one);
    with N threads, N single-threaded band workers, each with its own consecutive bands).  Float32 round-off
    only (max |Δ| pinned in ``tests/methods/test_mopa.py``).  Training never uses it: it runs only in
    inference mode.
    """

    #: with N > 1 torch threads, images of at least 2·N·MIN_WORKER_ROWS rows run as N band workers
    MIN_WORKER_ROWS = 16
    #: with every layer compiled, images up to 2^19 pixels run the whole-image planar pass; ``True``: at N > 1
    #: threads too, each layer's rows split among N workers (:mod:`methods.mopa._split`, a barrier per layer);
    #: ``False`` (kept: faster in wall time whenever both cores were free on the loaded machine of session 11,
    #: 24.4 against 27.2–27.8 ms at 256²): at N > 1 threads the banded passes (one band per worker, halo rows
    #: recomputed, three barriers since session 12; idle there 23.6–24.4 against 28.3–29.4 ms for the split).
    #: ``benchmarks/benchmark_methods.py::MopaThreadSchedule`` compares the two.
    SPLIT_LAYERS = False

    def __init__(self, net: nn.Module):
        self.net = net
        #: (channels-last features, their zero-padded planar copy, its padding) of the last :meth:`features`
        self._planar_features: tuple[torch.Tensor, torch.Tensor, int] | None = None
        #: the feature paths' compiled layers (:func:`methods.mopa._planar.path_layers`) of the last :meth:`planar_ready`
        self.checked_paths: tuple[list[tuple[nn.Conv2d, float]] | None, ...] | None = None

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        try:
            return self._forward(x)
        finally:
            self._planar_features = None  # no feature maps held between calls

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        from .._band_workers import band_workers

        net = self.net
        if not _planar_input(x):
            with band_workers():  # N > 1 threads: the layout copy on one torch thread, no OpenMP team woken for it
                x = x.contiguous(memory_format=torch.channels_last)  # (its idle thread spins on a band worker's core)
        # the planar passes read a contiguous or channels-last sample as it is (their feature paths copy its rows into
        # planar maps): no layout copy for them (session 12: 0.27 ms at 256², one thread); the others convert it
        if (self.SPLIT_LAYERS or torch.get_num_threads() == 1) and self.whole_image(x) and self.planar_ready(x):
            return self._planar_forward(x)
        rows = self.band_rows(x)
        if rows is not None:
            from functools import partial

            from .._band_workers import run_spans
            from ._banded import banded_forward

            # torch's N threads become N single-threaded band workers (as MATR's and SwinFusion's inference), each
            # with its own run of consecutive bands in every pass (the first on the calling thread: one pool
            # thread woken per pass at 256² on two threads, and a band's rows stay on one core from pass to pass)
            with band_workers():
                return banded_forward(self, x, rows, partial(run_spans, contiguous=True))
        x = x.contiguous(memory_format=torch.channels_last)
        f = self.features(x)
        width = net.path_a[-1][0].out_channels
        fa, fb = f[:, 0:width], f[:, width:2 * width]
        scale = None
        if isinstance(net.contrast, ContrastEnhancement):
            if net.contrast.cem_apply == "input":  # the channel weights go to the detail module with its input
                _, flow = self.contrast_flow(net.contrast, f)
                scale = self.contrast_weights(net.contrast, _local_std_max(flow, net.contrast.r))
            else:
                f = self.contrast(net.contrast, f)
        att = self.attention_module()
        if self.planar_tail(f):  # detail, attention and head planar throughout (session 11)
            from . import _planar

            h, w = f.shape[-2:]
            d = _planar.detail_planar(net.detail, f, scale)
            wc = None
            if att is not None:
                sums, peak = _planar.pixel_sum_max(d, h, w)
                wc = self.channel_weights(att, (sums / (h * w)).float(), peak)
            return _planar.tail(att, net.head, d, h, w, wc), fa, fb
        f = self.detail(net.detail, f, scale)
        if isinstance(net.attention, ParallelAttention):
            f = self.attention(net.attention, f)
        return self.head(net.head, f), fa, fb

    def band_rows(self, x: torch.Tensor) -> int | None:
        """Rows per band (:mod:`methods.mopa._banded`) when ``x`` runs in bands: above 2^19 pixels
        (:func:`methods.mopa._banded.band_rows`), or with N > 1 torch threads (at most ``⌈H/N⌉`` rows, one
        band per worker at least); else ``None``: small images on one thread, a FLOP counter (which counts
        the network's FLOPs on the whole image), and the CEM weighting its multiscale features (a second
        full map to keep; not banded)."""
        from ._banded import band_rows

        cem = self.net.contrast
        if torch._C._len_torch_dispatch_stack() > 0 or (isinstance(cem, ContrastEnhancement) and cem.cem_apply != "input"):
            return None
        h, w = x.shape[-2:]
        if min(h, w) <= 2 * (cem.r if isinstance(cem, ContrastEnhancement) else 0) + 1:
            return None  # maps narrower than the local std's window: the whole-image pass and its fallbacks
        rows = band_rows((h, w))
        workers = torch.get_num_threads()
        if workers > 1 and h >= 2 * workers * self.MIN_WORKER_ROWS:  # one band per worker at least
            return min(rows or h, -(-h // workers))
        return rows

    # ----------------------------------------------------------------- layers
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The three feature paths' outputs concatenated (1×3w×H×W, channels-last) for the 1×4×H×W sample
        ``x``: on a channels-last float32 map as compiled direct convolutions on planar maps
        (:mod:`methods.mopa._planar`, session 10: 3–4× oneDNN's speed on these 2→5 and 5→5 layers, float32
        round-off), otherwise each path through :meth:`seq` and one ``cat``."""
        net = self.net
        if _compiled_ready(x):
            from . import _planar

            paths = tuple(_planar.path_layers(p) for p in (net.path_a, net.path_b, net.path_ab))
            if all(p is not None for p in paths):
                cem = net.contrast
                pad = max(s.kernel_size[0] for s in cem.scales) // 2 if isinstance(cem, ContrastEnhancement) else 1
                feats, planar = _planar.features(net, x, paths, pad)
                self._planar_features = (feats, planar, pad)  # for the multiscale convs (:meth:`multiscale`)
                return feats
        a, b, ma, mb = x[:, 0:1], x[:, 1:2], x[:, 2:3], x[:, 3:4]
        return torch.cat([self.seq(net.path_a, net._path_input(a, ma)), self.seq(net.path_b, net._path_input(b, mb)),
                          self.seq(net.path_ab, torch.cat([a, b], dim=1))], dim=1)

    @staticmethod
    def _onednn(conv: nn.Conv2d, x: torch.Tensor, add: torch.Tensor | None) -> bool:
        """Whether ``conv`` on ``x`` (and the sum with ``add``) goes to oneDNN's convolution with post-ops."""
        return (_onednn_ready(x) and conv.padding_mode == "zeros" and isinstance(conv.padding, tuple)
                and (add is None or add.is_contiguous(memory_format=torch.channels_last)))

    def conv(self, conv: nn.Conv2d, x: torch.Tensor, slope: float | None = None,
             add: torch.Tensor | None = None) -> torch.Tensor:
        """``conv(x)``, then ``+ add`` if given, then LReLU with ``slope`` if given (the graph's order).

        On a channels-last float32 map, one oneDNN convolution with the sum and the LReLU as post-ops
        (``torch.ops.mkldnn._convolution_pointwise``): no second pass over the output, and a pointwise
        (1×1) conv runs in oneDNN instead of torch's batch-1 1×1 path (0.44 against 0.80 ms for ``mm``,
        bias and LReLU on 15 channels at 256², one thread, session 9); the same values as the separate
        operations on the tests' maps (max |Δ| 0).  Otherwise (a FLOP counter, other layouts) the separate
        operations, a pointwise conv over a full map as one ``mm`` of the channels-last pixels.
        """
        if self._onednn(conv, x, add):
            geometry = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
            unary, scalars = ("leaky_relu", [slope]) if slope is not None else ("none", [])
            if add is None:
                return _CONV_POINTWISE(x, conv.weight, conv.bias, *geometry, unary, scalars, "")
            # (oneDNN fuses only ReLU after a sum here: the LReLU of conv + add follows in place)
            y = _CONV_POINTWISE.binary(x, add, conv.weight, conv.bias, *geometry, "add", None, None, [], "")
            return y if slope is None else F.leaky_relu_(y, slope)
        if conv.kernel_size == (1, 1) and conv.groups == 1 and x.shape[0] == 1 and x.shape[-1] * x.shape[-2] > 1:
            _, c, h, w = x.shape
            pixels = x.permute(0, 2, 3, 1).reshape(h * w, c)  # a view of channels-last memory
            y = torch.mm(pixels, conv.weight.reshape(conv.out_channels, c).t())
            if conv.bias is not None:
                y.add_(conv.bias)
            y = y.view(1, h, w, conv.out_channels).permute(0, 3, 1, 2)
        else:
            y = conv(x)
        if add is not None:
            y = y.add_(add)
        return y if slope is None else F.leaky_relu_(y, slope)

    def seq(self, seq: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        """A Sequential of convs, LReLUs, sigmoids and nested conv blocks/DSCBs, activations in place (a conv's
        LReLU as its post-op, :meth:`conv`)."""
        layers = list(seq)
        i = 0
        while i < len(layers):
            layer = layers[i]
            if isinstance(layer, nn.Sequential):
                x = self.seq(layer, x)
            elif isinstance(layer, nn.Conv2d):
                if i + 1 < len(layers) and isinstance(layers[i + 1], nn.LeakyReLU):
                    i += 1
                    x = self.conv(layer, x, slope=layers[i].negative_slope)
                else:
                    x = self.conv(layer, x)
            elif isinstance(layer, nn.LeakyReLU):
                x = F.leaky_relu_(x, layer.negative_slope)
            elif isinstance(layer, nn.Sigmoid):
                x = x.sigmoid_()
            else:
                x = layer(x)
            i += 1
        return x

    def contrast(self, cem: "ContrastEnhancement", x: torch.Tensor) -> torch.Tensor:
        """The CEM's output: ``x`` (``apply="multiscale"``: its multiscale features) times the channel weights
        from the maxima over pixels of the local std."""
        m, flow = self.contrast_flow(cem, x)
        w = self.contrast_weights(cem, _local_std_max(flow, cem.r))
        return (x if cem.cem_apply == "input" else m).mul(w)

    def contrast_flow(self, cem: "ContrastEnhancement", x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The CEM's multiscale features ``m`` and its residual flow (whose local std gives the weights)."""
        slope = cem.act.negative_slope
        m = self.multiscale(cem, x, slope)
        first, act, second = cem.res
        return m, self.conv(second, self.conv(first, m, slope=act.negative_slope), slope=slope, add=m)

    @staticmethod
    def contrast_weights(cem: "ContrastEnhancement", std_max: torch.Tensor) -> torch.Tensor:
        """The CEM's channel weights (N×C×1×1) from the maxima over pixels of the local std (N×C): its FC layers
        as functional calls where they are (Linear, LReLU, Linear, Sigmoid) — the modules' own operations without
        their calls (serial time between the band passes, session 12) — else the Sequential itself."""
        layers = _vector_layers(cem.fc, nn.Linear)
        if layers is None:
            return cem.fc(std_max)[:, :, None, None]
        return _run_vector_layers(layers, std_max)[:, :, None, None]

    def multiscale(self, cem: "ContrastEnhancement", x: torch.Tensor, slope: float | None = None) -> torch.Tensor:
        """The multiscale layer's convs, concatenated (then LReLU with ``slope`` if given); outside a FLOP
        counter as **one** conv (with the LReLU as its post-op, :meth:`conv`).

        The 1×1, 3×3, 5×5 (3 outputs each) and 7×7 (6 outputs) convs read the same input, so their
        kernels, centred in zero-padded 7×7 ones, make one 7×7 conv with the 15 outputs in the
        concatenation's order: the same sums (the padded taps add exact zeros), no ``cat``, and
        oneDNN, which computes a 16-wide block of outputs per pass, runs one 15-wide conv instead of
        four narrow ones: 8.5 against 15.8 ms at 256², one thread (session 8), outputs equal on the
        tests' inputs.  The multiply-adds by zero are work of this implementation, not of the network,
        so under a FLOP counter (a dispatch mode: :func:`fusionbench.profile.count_flops`) the four
        convs run as they are and the counted FLOPs stay the network's (tested).  Since session 10, on a
        channels-last float32 map the four convs run instead as compiled direct convolutions, each with its
        own taps, on a zero-padded planar copy of ``x`` (:func:`methods.mopa._planar.multiscale`; the copy that
        :meth:`features` made, or one made here): ≈ 4.6 against 7.9–8.6 ms for the merged 7×7 at 256²,
        one thread (loaded), float32 round-off.
        """
        scales = list(cem.scales)
        k = max(s.kernel_size[0] for s in scales)
        mergeable = all(s.kernel_size[0] == s.kernel_size[1] and s.kernel_size[0] % 2 == 1
                        and s.padding == (s.kernel_size[0] // 2,) * 2 and s.stride == (1, 1)
                        and s.dilation == (1, 1) and s.groups == 1 and s.bias is not None for s in scales)
        if not mergeable or torch._C._len_torch_dispatch_stack() > 0:
            y = torch.cat([self.conv(s, x) for s in scales], dim=1)
            return y if slope is None else F.leaky_relu_(y, slope)
        if _compiled_ready(x):  # each conv compiled with its own taps on planar maps (session 10)
            from . import _planar

            convs = _planar.multiscale_layers(cem)
            if convs is not None:
                planar = self._planar_features
                if planar is None or planar[0] is not x or planar[2] < k // 2:  # not x's copy from :meth:`features`
                    planar = (x, _planar.planar_copy(x, k // 2), k // 2)
                return _planar.multiscale(convs, planar[1], planar[2], x.shape[2], x.shape[3], slope)
        weight = x.new_zeros(sum(s.out_channels for s in scales), x.shape[1], k, k)
        start = 0
        for s in scales:
            ks, n = s.kernel_size[0], s.out_channels
            p = (k - ks) // 2
            weight[start:start + n, :, p:p + ks, p:p + ks] = s.weight
            start += n
        bias = torch.cat([s.bias for s in scales])
        if _onednn_ready(x):
            return _CONV_POINTWISE(x, weight, bias, [k // 2] * 2, [1, 1], [1, 1], 1,
                                   *(("leaky_relu", [slope]) if slope is not None else ("none", [])), "")
        y = F.conv2d(x, weight, bias, padding=k // 2)
        return y if slope is None else F.leaky_relu_(y, slope)

    def planar_ready(self, x: torch.Tensor) -> bool:
        """Whether the whole network runs planar with compiled layers on the 1×4×H×W sample ``x`` (session 11):
        a channels-last or contiguous float32 map (:func:`_planar_input`: the planar passes copy its rows into planar
        maps), every layer of a compiled shape, the contrast module weighting its input, and the map wider and
        taller than the local std's reach."""
        if not _planar_input(x):
            return False
        from . import _planar

        net, cem = self.net, self.contrast_module()
        paths = tuple(_planar.path_layers(p) for p in (net.path_a, net.path_b, net.path_ab))
        #: the feature paths' layers this check found, for the caller that runs them right after it (no second walk)
        self.checked_paths = paths
        return (all(p is not None for p in paths)
                and _planar.contrast_supported(cem) and (cem is None or cem.r < min(x.shape[-2:]))
                and _planar.detail_supported(net.detail) and _planar.tail_supported(self.attention_module(), net.head))

    def feature_pad(self) -> int:
        """Zero padding of the planar features: the multiscale convs' largest half-width (1 without a CEM)."""
        cem = self.contrast_module()
        return max(s.kernel_size[0] for s in cem.scales) // 2 if cem is not None else 1

    @staticmethod
    def whole_image(x: torch.Tensor) -> bool:
        """Whether ``x`` is small enough for the whole-image planar pass (up to 2^19 pixels,
        :func:`methods.mopa._banded.band_rows`); larger images keep the banded passes (maps under the mmap
        threshold)."""
        from ._banded import band_rows

        return band_rows(tuple(x.shape[-2:])) is None

    def _planar_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The whole-image pass planar throughout (:meth:`planar_ready`): features, contrast flow and its local
        std's maxima, detail module, attention and head on planar maps with compiled layers, no layout copy, no
        concatenation; with N > 1 torch threads every layer's output rows shared by N band workers, no halo rows
        (:func:`methods.mopa._split.split_forward`).  Float32 round-off against oneDNN's layers (other summation
        orders); the same bits at any thread count.  With one worker, where the compiled band passes apply
        (:func:`methods.mopa._banded.features_plan`), the whole image as their one band, with this pass's sums
        and sigmoids (session 13: its bits, a compiled call per pass instead of a Python call per layer)."""
        from functools import partial

        from .._band_workers import band_workers, run_spans, workers
        from ._split import split_forward, worker_rows

        with band_workers():
            paths = self.checked_paths  # (planar_ready's walk, which ran just before)
            if workers() == 1 and paths is not None and all(p is not None for p in paths):
                from ._banded import banded_forward, features_plan, rest_plan

                plan = features_plan(self, x, paths, self.contrast_module())
                rest = None if plan is None else rest_plan(self.net, self.attention_module())
                if rest is not None:
                    return banded_forward(self, x, x.shape[2], blocks=worker_rows(x.shape[2], 1)[0], plan=plan,
                                          rest=rest)
            return split_forward(self, x, partial(run_spans, contiguous=True), workers())

    def planar_tail(self, x: torch.Tensor) -> bool:
        """Whether the detail module, the attention and the head run planar with compiled layers throughout on
        ``x`` (the detail module's input; :func:`methods.mopa._planar.detail_planar`, :func:`~methods.mopa._planar.tail`):
        a channels-last float32 map, and every layer of those modules of a compiled shape."""
        if not _compiled_ready(x):
            return False
        from . import _planar

        return _planar.detail_supported(self.net.detail) and _planar.tail_supported(self.attention_module(),
                                                                                    self.net.head)

    def detail(self, dpm: "DetailPreserving", x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """The detail module on ``x · scale`` (``scale``: the contrast module's channel weights, N×C×1×1, or
        ``None``: on ``x``).  On a channels-last float32 map of the registered width, planar with compiled
        layers throughout (:func:`methods.mopa._planar.detail`, session 11); otherwise oneDNN's convs."""
        if _compiled_ready(x):
            from . import _planar

            if _planar.detail_supported(dpm):
                return _planar.detail(dpm, x, scale)
        if scale is not None:
            x = x * scale
        h = self.seq(dpm.head, x)
        outs = torch.cat([self.seq(path, h).add_(h) for path in dpm.paths], dim=1)
        return self.conv(dpm.fuse, outs, add=x)

    def head(self, head: nn.Sequential, f: torch.Tensor) -> torch.Tensor:
        """The reconstruction head (conv + LReLU, conv, sigmoid) on ``f``: on a channels-last float32 map as
        compiled direct convolutions on planar maps (:func:`methods.mopa._planar.head`, session 10: the 15→5
        and 5→1 convs 3× and 7× oneDNN's speed), otherwise :meth:`seq`."""
        if _compiled_ready(f):
            from . import _planar

            layers = _planar.head_layers(head)
            if layers is not None:
                return _planar.head(layers, f)
        return self.seq(head, f)

    def contrast_module(self) -> "ContrastEnhancement | None":
        """The network's CEM, or ``None`` when switched off (``use_contrast=False``)."""
        cem = self.net.contrast
        return cem if isinstance(cem, ContrastEnhancement) else None

    def attention_module(self) -> "ParallelAttention | None":
        """The network's attention module, or ``None`` when switched off (``use_attention=False``)."""
        att = self.net.attention
        return att if isinstance(att, ParallelAttention) else None

    @staticmethod
    def pixel_sum_max(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sums (float64) and maxima over the pixels of every channel of one map (1×C each)."""
        if _compiled_ready(x):
            return _pixel_sum_max(x)
        return x.sum(dim=(2, 3), dtype=torch.float64), _max_over_pixels(x)

    def attention(self, att: "ParallelAttention", x: torch.Tensor) -> torch.Tensor:
        """The attention module's output: channel weights from the per-channel means and maxima over pixels, then
        :meth:`attention_apply`."""
        if _compiled_ready(x):
            sums, peak = _pixel_sum_max(x)
            wc = self.channel_weights(att, (sums / (x.shape[-1] * x.shape[-2])).float(), peak)
        else:
            wc = self.channel_weights(att, x.mean(dim=(2, 3)), _max_over_pixels(x))
        return self.attention_apply(att, x, wc)

    def channel_weights(self, att: "ParallelAttention", mean: torch.Tensor, peak: torch.Tensor) -> torch.Tensor:
        """The channel branch's weights (N×C×1×1) from the means and maxima over pixels (N×C each).  Where the
        branch is 1×1 convs with LReLUs and a final sigmoid (:func:`_vector_layers`), each conv of the N×C×1×1
        map as ``F.linear`` of the N×C vectors: torch runs both as the same GEMM (the same bits; the tests'
        ``test_channel_weights_as_linear_layers``) on a much shorter path, which runs cold between the band
        passes (0.13 ms for the first conv, session 12); otherwise :meth:`seq`."""
        layers = _vector_layers(att.channel, nn.Conv2d)
        if layers is None:
            return self.seq(att.channel, torch.cat([mean, peak], dim=1)[:, :, None, None])
        return _run_vector_layers(layers, torch.cat([mean, peak], dim=1))[:, :, None, None]

    def attention_apply(self, att: "ParallelAttention", x: torch.Tensor, wc: torch.Tensor) -> torch.Tensor:
        """The attention module's output from ``x`` and the channel weights: gating, spatial branch, combine
        (on a channels-last float32 map the gating products, the spatial branch's input and the combining
        conv's input in two compiled passes, :mod:`methods.mopa._attention_kernels`)."""
        if _compiled_ready(x):
            from . import _attention_kernels as kernels

            _, c, h, w = x.shape
            cascade = att.mode == "cascade"
            from . import _planar

            both = torch.empty(1, 2 * c, h, w, memory_format=torch.channels_last)  # [x·wc, spatially gated]
            pixels, out = _hwc(x), _hwc(both)
            gains = wc.reshape(c).float().contiguous().numpy()
            conv = _planar.single_conv(att.spatial)
            if conv is not None:  # the spatial branch's input written planar and zero-padded, its conv compiled
                p = conv.kernel_size[0] // 2
                spatial = torch.zeros(2, h + 2 * p, _planar.padded_width(w) + 2 * p)
                kernels.gate(pixels, gains, cascade, out, spatial.numpy()[:, p:p + h, p:p + w].transpose(1, 2, 0))
                weights = _planar.conv_sigmoid(conv, spatial, h, w)
            else:
                spatial = torch.empty(1, 2, h, w, memory_format=torch.channels_last)
                kernels.gate(pixels, gains, cascade, out, _hwc(spatial))
                weights = self.seq(att.spatial, spatial).reshape(h, w).contiguous()
            kernels.gate_spatial(pixels, weights.numpy(), cascade, out)
            return self.seq(att.combine, both)
        xc = x * wc
        source = xc if att.mode == "cascade" else x
        spatial = torch.cat([source.mean(dim=1, keepdim=True), source.amax(dim=1, keepdim=True)], dim=1)
        xs = source * self.seq(att.spatial, spatial)
        return self.seq(att.combine, torch.cat([xc, xs], dim=1))


#: oneDNN's convolution with post-ops (CPU builds with oneDNN), or ``None``
_CONV_POINTWISE = getattr(getattr(torch.ops, "mkldnn", None), "_convolution_pointwise", None) \
    if torch.backends.mkldnn.is_available() else None


@functools.lru_cache(maxsize=1)
def _pointwise_works() -> bool:
    """Whether this torch's :data:`_CONV_POINTWISE` takes the calls below and gives the separate operations'
    values (a private operator: its signature may differ in other torch versions; then the plain path runs)."""
    if _CONV_POINTWISE is None:
        return False
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 5, 6, generator=g).contiguous(memory_format=torch.channels_last)
    add = torch.rand(1, 2, 5, 6, generator=g).contiguous(memory_format=torch.channels_last)
    w, b = torch.rand(2, 3, 3, 3, generator=g) - 0.5, torch.rand(2, generator=g)
    geometry = ([1, 1], [1, 1], [1, 1], 1)
    try:
        with torch.inference_mode():
            y = _CONV_POINTWISE(x, w, b, *geometry, "leaky_relu", [0.2], "")
            z = _CONV_POINTWISE.binary(x, add, w, b, *geometry, "add", None, None, [], "")
            ref = F.conv2d(x, w, b, padding=1)
    except (RuntimeError, TypeError):
        return False
    return bool(torch.allclose(y, F.leaky_relu(ref, 0.2), atol=1e-5) and torch.allclose(z, ref + add, atol=1e-5))


def _onednn_ready(x: torch.Tensor) -> bool:
    """Whether a convolution of ``x`` may go to :data:`_CONV_POINTWISE`: one channels-last float32 map of more
    than one pixel, outside a dispatch mode (a FLOP counter does not count that operator), on a torch whose
    operator takes these calls (:func:`_pointwise_works`)."""
    return (_CONV_POINTWISE is not None and x.dtype == torch.float32 and x.shape[0] == 1
            and x.shape[-1] * x.shape[-2] > 1 and x.is_contiguous(memory_format=torch.channels_last)
            and torch._C._len_torch_dispatch_stack() == 0 and _pointwise_works())


def _compiled_ready(x: torch.Tensor) -> bool:
    """Whether the compiled kernels may read ``x``: one channels-last float32 map outside a dispatch mode."""
    return (x.dtype == torch.float32 and x.shape[0] == 1 and x.is_contiguous(memory_format=torch.channels_last)
            and not x.requires_grad and torch._C._len_torch_dispatch_stack() == 0)


def _vector_layers(seq: nn.Sequential, kind: type) -> list[tuple[torch.Tensor, torch.Tensor, float | None]] | None:
    """The layers of a channel-weight MLP (the CEM's ``fc``: ``kind`` = ``nn.Linear``; the attention's channel
    branch: ``nn.Conv2d``, 1×1 convs of an N×C×1×1 map) as (weight as an out × in matrix, bias, LReLU slope or
    ``None``: sigmoid) when it is [layer, LReLU]*, layer, Sigmoid with biased layers (and, for convs, 1×1,
    stride 1, no padding, no dilation, one group, zero padding mode: the conv of a 1×1 map is that matrix times
    the vector); else ``None``."""
    mods = tuple(seq)
    if len(mods) < 2 or len(mods) % 2 or not isinstance(mods[-1], nn.Sigmoid):
        return None
    layers = []
    for i in range(0, len(mods), 2):
        layer, act = mods[i], mods[i + 1]
        if type(layer) is not kind or layer.bias is None:
            return None
        if kind is nn.Conv2d:
            if not (layer.kernel_size == (1, 1) and layer.stride == (1, 1) and layer.padding == (0, 0)
                    and layer.dilation == (1, 1) and layer.groups == 1 and layer.padding_mode == "zeros"):
                return None
            weight = layer.weight.reshape(layer.out_channels, layer.in_channels)
        else:
            weight = layer.weight
        if i + 2 == len(mods):
            slope = None
        elif type(act) is nn.LeakyReLU:
            slope = act.negative_slope
        else:
            return None
        layers.append((weight, layer.bias, slope))
    return layers


def _run_vector_layers(layers: list[tuple[torch.Tensor, torch.Tensor, float | None]], x: torch.Tensor) -> torch.Tensor:
    """:func:`_vector_layers`' MLP on the N×C vectors ``x``: ``F.linear``, then LReLU (in place) or sigmoid."""
    for weight, bias, slope in layers:
        x = F.linear(x, weight, bias)
        x = x.sigmoid_() if slope is None else F.leaky_relu_(x, slope)
    return x


def _planar_input(x: torch.Tensor) -> bool:
    """Whether the planar passes (:meth:`InferencePath.planar_ready`) may read the sample ``x`` as it is: one
    float32 map, channels-last or contiguous (they copy its channels' rows into planar maps), outside a dispatch
    mode."""
    return (x.dtype == torch.float32 and x.shape[0] == 1 and not x.requires_grad
            and (x.is_contiguous(memory_format=torch.channels_last) or x.is_contiguous())
            and torch._C._len_torch_dispatch_stack() == 0)


def _hwc(x: torch.Tensor) -> np.ndarray:
    """The H×W×C numpy view of one channels-last map."""
    return x.permute(0, 2, 3, 1)[0].numpy()


def _pixel_sum_max(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums (float64) and maxima over the pixels of every channel of one channels-last float32 map (1×C each)."""
    from . import _attention_kernels

    sums = torch.empty(1, x.shape[1], dtype=torch.float64)
    peak = torch.empty(1, x.shape[1])
    _attention_kernels.pixel_sum_max(_hwc(x), sums[0].numpy(), peak[0].numpy())
    return sums, peak


def _local_std_max(x: torch.Tensor, r: int) -> torch.Tensor:
    """``amax(local_std(x, r), dim=(2, 3))`` (N×C) for inference: for one channels-last float32 sample the
    compiled one-pass kernel (:func:`methods.mopa._std_kernels.local_std_max`: 2.5 against 11 ms at 256²,
    one thread; float32 round-off only), otherwise the torch formulation."""
    n, c, h, w = x.shape
    if n == 1 and r < h and r < w and x.dtype == torch.float32 and x.is_contiguous(memory_format=torch.channels_last):
        from . import _std_kernels

        out = torch.empty(1, c)
        _std_kernels.local_std_max(x.permute(0, 2, 3, 1)[0].numpy(), r, out[0].numpy())
        return out
    return _max_over_pixels(_local_std_inference(x, r))


def _max_over_pixels(x: torch.Tensor) -> torch.Tensor:
    """``torch.amax(x, dim=(2, 3))`` (N×C) by halving the pixel rows of the channels-last memory (exact, ~5× faster)."""
    n, c, h, w = x.shape
    t = x.permute(0, 2, 3, 1).reshape(n, h * w, c)
    while t.shape[1] > 1:
        rows = t.shape[1]
        half = rows // 2
        m = torch.maximum(t[:, :half], t[:, half:2 * half])
        if rows % 2:
            m[:, 0] = torch.maximum(m[:, 0], t[:, -1])
        t = m
    return t[:, 0]


def _window_sum(t: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """Sums over ``k`` consecutive entries along ``dim`` ('valid'): powers-of-two partial sums, then combined."""
    n = t.shape[dim]
    out = n - k + 1
    sums = {1: t}
    p = 1
    while 2 * p <= k:
        s = sums[p]
        length = s.shape[dim] - p
        sums[2 * p] = s.narrow(dim, 0, length) + s.narrow(dim, p, length)
        p *= 2
    total, offset = None, 0
    while p >= 1:
        if k - offset >= p:
            term = sums[p].narrow(dim, offset, out)
            total = term.clone() if total is None else total.add_(term)
            offset += p
        p //= 2
    return total


def _local_std_inference(x: torch.Tensor, r: int) -> torch.Tensor:
    """:func:`local_std` for inference: the (2r+1)² window means as window sums by slices (round-off only)."""
    k = 2 * r + 1
    xp = reflect_pad(x, r)

    def mean(t: torch.Tensor) -> torch.Tensor:
        return _window_sum(_window_sum(t, k, 2), k, 3).mul_(1.0 / (k * k))

    mu = mean(xp)
    return mean(xp * xp).sub_(mu.mul_(mu)).clamp_min_(0.0).add_(1e-12).sqrt_()
