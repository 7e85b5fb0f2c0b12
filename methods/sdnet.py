"""SDNet: squeeze-and-decomposition network (Zhang & Ma, IJCV 2021), medical model, official weights.

What is reproduced (official code ``HaoZhang1018/SDNet`` @ bf6a2ee, ``Medical/``):

* the network of ``Medical/test.py`` re-implemented in PyTorch and loaded from
  the official TF1 checkpoint ``Medical.model-29`` (read without TensorFlow by
  :mod:`methods._tf1_checkpoint`; HWIO → OIHW, strict key and shape match, all
  32 variables / 67,091 values used).  Two dense branches (``*_ir`` = the
  *function* image, PET/SPECT Y; ``*_vi`` = the *structure* image, MRI):
  5×5 1→16, 3×3 16→16, 3×3 32→16, 3×3 48→16, LeakyReLU 0.2, zero 'SAME'
  padding (symmetric k//2 at stride 1, as TF computes it).  The squeeze is a
  1×1 conv on the 128 channels concatenated as
  [L1_ir, L1_vi, L2_ir, L2_vi, L3_ir, L3_vi, L4_ir, L4_vi] + tanh.  The
  decomposition head (layers 6–9, training only) is loaded too, as
  :attr:`SDNet.decomposer`, and is used by the tests as a check of the loaded
  weights: it rebuilds both sources from the fused image;
* inputs scaled (x − 127.5)/127.5, output y·127.5 + 127.5;
* ``stretch=True`` (default): the official ``test.py`` saves the fused Y with
  ``scipy.misc.imsave``, whose ``bytescale`` maps the image's min→0 and max→255
  (round half up).  That min-max stretch is part of every official result and
  is reproduced; ``stretch=False`` gives the raw network output instead;
* colour (``colour='own'``): the official MATLAB scripts ``input_process.m`` /
  ``output_process.m`` with ``RGB2YCbCr.m`` / ``YCbCr2RGB.m`` (BT.601 studio
  swing, 3-decimal matrices), reproduced exactly: the network gets the 8-bit Y
  that ``RGB2YCbCr.m`` computes on the ``uint8`` image (each product rounded to
  ``uint8``, :func:`official_y`); the saved 8-bit fused Y is put back with the
  colour image's Cb/Cr (in double) through ``YCbCr2RGB.m`` and MATLAB ``uint8``
  (:func:`official_rgb`).  A grey second image (CT, grey SPECT) is fed as is and
  the result is grey.

**Agreement with the official code** (session 16; pinned in
``tests/methods/test_sdnet.py``).  The repository ships no fused output, so the
official code itself was run here: ``test.py`` unchanged under TensorFlow 2.15
(CPU), and for colour ``input_process.m`` → ``test.py`` → ``output_process.m``
with the two MATLAB scripts under GNU Octave 7.3, unchanged but for their loop
bound (``scripts/reference_runs/official_python``).

* grey, 48 pairs (the 3 official test pairs, 20 MRI-CT, the 25 TNO pairs whole;
  TNO through the banded path): unrounded result within 2.3e-4 grey levels;
  saved 8-bit result ≥ 99.995 % identical, 6 of 48 bit-exact, never off by more
  than 1 (float32 summation order: TensorFlow's kernels vs oneDNN's);
* colour, 40 pairs (20 MRI-PET, 20 MRI-SPECT): the network's input Y identical on
  every pixel; RGB ≥ 99.996 % identical (mean 99.9991 %), 20 of 40 bit-exact, max
  2.  Until session 16 the colour path used the exact MATLAB matrix and rounded Y
  once (a documented deviation): on the same 40 pairs 82.3–100 % identical (mean
  91.0 %), max 4.

Also checked (pinned in the test):

* layers 1–5 equal a numpy transcription of ``test.py`` computed straight from
  the raw HWIO checkpoint tensors with TF 'SAME' zero padding (max |Δ| < 0.002
  grey levels on a 48×56 crop);
* on the three official test pairs (``Test_Function``/``Test_Structure``): the
  raw fused Y stays in [0, 255], correlates with the MRI (ρ = 0.893–0.905) and
  the PET Y (ρ = 0.868–0.887), and its mean lies between theirs;
* the decomposition head, loaded from the same checkpoint, rebuilds the PET Y
  at 24.0 / 25.5 / 26.5 dB PSNR and the MRI at 20.9 / 21.8 / 22.4 dB from the
  fused image; crossed (PET head vs MRI and vice versa) only 11.9–13.0 dB.
  This checks that the two branches' weights are where the graph expects them.

Cost (inference, layers 1–5): 28,705 parameters, 3.75 GFLOPs for one 256² pair.
Inference (issue 23) runs a concat-free, channels-last form of the same sums
(:meth:`SDNetSqueeze._forward_lean`: float32 summation order only, max |Δ| 3e-7 on
[−1, 1]; the official graph's FLOP count): one thread, 256², loaded machine, 62–74 → 37–40 ms,
0.29–0.37 → 0.56–0.62 of the plain 3×3 conv's GFLOP/s measured alongside.  Images from 256² up run it in
bands of rows with a 5-row halo (:meth:`SDNetSqueeze.infer`; 256² in two), bit-identical to the whole image, so
that no map is page-faulted in afresh at every call (session 9: cost per pixel at 1024² no longer above 256²'s;
session 11: 256² too, and glibc's mmap threshold raised once so that band maps stay on the heap).  With N torch
threads the bands run on N single-threaded band workers (session 11), the output bit-identical to one
thread's (``docs/fidelity.md`` §SDNet, "SDNet at two threads").  That identity holds on AVX2 and SSE4 machines
too: the 1×1 squeeze is a compiled fixed-order sum per pixel (:func:`_project_side`,
:mod:`methods._sdnet_kernels`) instead of BLAS products, and every convolution runs through oneDNN (:func:`_conv`),
never ATen's own path for small maps; both round a pixel the same wherever it lies on every instruction set
(session 11, H1b; a subprocess test runs the checks under AVX2 and SSE4 stand-ins).
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from fusionbench import colour
from fusionbench.method_registry import register_method
from fusionbench.torch_method import TorchMethod, as_tensor

from ._matlab import to_uint8
from ._onednn import conv2d as _conv  # always oneDNN: the same bits for a band as for the whole image
from ._row_bands import even_bands, small_band_rows
from ._tf1_checkpoint import checkpoint_index, convert_tensors, load_state_strict, read_checkpoint, register_checkpoint

_REPO = "https://raw.githubusercontent.com/HaoZhang1018/SDNet/bf6a2eeed1f723f0fd319b882d2bf38016bf6e55"
_PREFIX = "Medical.model-29"

WEIGHTS = register_checkpoint(
    "sdnet", base_url=f"{_REPO}/Medical/checkpoint", prefix=_PREFIX, method_dir="sdnet",
    index_sha256="e7e22f1195e6b624f38ba886c36a734be183a0399282c1ee6e9582db15ffa969",
    data_sha256="062d217c7eca5cf910d11115a40347927d7a7b2e6c034a7a76b6149defd97898",
    what="SDNet medical model (67,091 float32)",
)

_CITATION = ("Zhang H., Ma J., SDNet: A versatile squeeze-and-decomposition network for real-time image fusion, "
             "International Journal of Computer Vision 129, 2761-2785, 2021. Code: github.com/HaoZhang1018/SDNet.")

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


def _build_modules() -> tuple[Any, Any]:
    """The squeeze network (layers 1–5, inference) and decomposition head (layers 6–9), untrained."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from . import _band_workers

    def lrelu(x: torch.Tensor) -> torch.Tensor:
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

    return SDNetSqueeze(), SDNetDecomposer()


def _tf_to_torch_name(tf_name: str) -> str:
    """``fusion_model/layer7_ir/w7_ir`` → ``decomposer.layer7_ir.weight`` (layers 1–5 → ``squeeze.``)."""
    scope, layer, var = tf_name.split("/")
    if scope != "fusion_model":
        raise KeyError(f"unexpected SDNet variable {tf_name!r}")
    part = "squeeze" if int(layer[5:].split("_")[0]) <= 5 else "decomposer"
    kind = {"w": "weight", "b": "bias"}[var[0]]
    return f"{part}.{layer}.{kind}"


def load_sdnet(prefix: str | Path) -> tuple[Any, Any]:
    """Build SDNet and load the TF1 checkpoint ``prefix`` strictly; returns (squeeze, decomposer) in eval mode."""
    from torch import nn

    squeeze, decomposer = _build_modules()
    tensors = read_checkpoint(prefix)
    both = nn.ModuleDict({"squeeze": squeeze, "decomposer": decomposer})
    load_state_strict(both, convert_tensors(tensors, {k: _tf_to_torch_name(k) for k in tensors}))
    return squeeze.eval(), decomposer.eval()


def bytescale(image: np.ndarray) -> np.ndarray:
    """``scipy.misc.bytescale`` with default limits: min→0, max→255, clip, round half up → uint8."""
    image = np.asarray(image, dtype=np.float64)
    lo, hi = float(image.min()), float(image.max())
    scale = 255.0 / ((hi - lo) or 1.0)
    return np.floor(np.clip((image - lo) * scale, 0, 255) + 0.5).astype(np.uint8)


def _as_uint8(rgb: np.ndarray) -> np.ndarray:
    """An RGB image as the uint8 file the official scripts read (floats in [0, 1] × 255, MATLAB rounding)."""
    rgb = np.asarray(rgb)
    return rgb if rgb.dtype == np.uint8 else to_uint8(rgb.astype(np.float64) * 255.0)


def official_y(rgb8: np.ndarray) -> np.ndarray:
    """``input_process.m``: the 8-bit Y that ``RGB2YCbCr.m`` gives for a ``uint8`` RGB image.

    ``Y = 0.257*R+0.504*G+0.098*B+16`` evaluated by MATLAB on ``uint8`` operands:
    each product is rounded to ``uint8`` (half away from zero, saturating) and the
    sum saturates at every ``+``, left to right.  (In floating point, rounded once,
    the Y differs by one grey level on 8.8 % of the pixels of 60 Harvard PETs.)
    """
    rgb8 = np.asarray(rgb8)
    if rgb8.dtype != np.uint8 or rgb8.ndim != 3 or rgb8.shape[-1] != 3:
        raise ValueError(f"official_y takes an H×W×3 uint8 image, not {rgb8.dtype} {rgb8.shape}")
    rgb = rgb8.astype(np.float64)
    total = np.zeros(rgb.shape[:2], dtype=np.int32)
    for coefficient, channel in zip((0.257, 0.504, 0.098), range(3)):
        total = np.minimum(total + to_uint8(coefficient * rgb[..., channel]), 255)
    return np.minimum(total + 16, 255).astype(np.uint8)


def _official_ycbcr_to_rgb(y: np.ndarray, rgb8: np.ndarray) -> np.ndarray:
    """``output_process.m`` before its ``uint8``: fused Y (double) with the Cb/Cr of ``rgb8``, through
    ``RGB2YCbCr.m`` and ``YCbCr2RGB.m`` (3-decimal BT.601 studio-swing matrices, in double, in their order)."""
    r, g, b = (rgb8[..., i].astype(np.float64) for i in range(3))
    cb = -0.148 * r - 0.291 * g + 0.439 * b + 128
    cr = 0.439 * r - 0.368 * g - 0.071 * b + 128
    y = np.asarray(y, dtype=np.float64)
    red = 1.164 * (y - 16) + 1.596 * (cr - 128)
    green = 1.164 * (y - 16) - 0.392 * (cb - 128) - 0.813 * (cr - 128)
    blue = 1.164 * (y - 16) + 2.017 * (cb - 128)
    return np.stack([red, green, blue], axis=-1)


def official_rgb(y8: np.ndarray, rgb8: np.ndarray) -> np.ndarray:
    """``output_process.m``: the fused 8-bit Y put back with the colour source's Cb/Cr, as ``uint8`` RGB."""
    return to_uint8(_official_ycbcr_to_rgb(y8, rgb8))


@register_method(
    "sdnet", display_name="SDNet", family="deep", citation=_CITATION, colour="own",
    weights=WEIGHTS, deterministic=True, version="2",
    params={"stretch": True}, uses_torch=True, trainable=False,
)
class SDNet(TorchMethod):
    """SDNet medical model (official TF1 weights); colour by the official studio-swing YCbCr scripts.

    Any size and aspect as is: the network is fully convolutional with 'SAME' zero
    padding, like the official TF graph, so no outer padding is added.
    ``threads``: torch threads while fusing (see :class:`fusionbench.torch_method.TorchMethod`).
    The checkpoint files are verified against their pinned sha256 at every load.
    """

    def __init__(self, stretch: bool = True, threads: int | None = None) -> None:
        super().__init__(threads=threads)
        index = checkpoint_index("sdnet")
        self.stretch = bool(stretch)
        self.network, self.decomposer = load_sdnet(index.with_name(_PREFIX))

    def torch_inputs(self, size: tuple[int, int] = (256, 256)) -> tuple[Any, Any]:
        """Example inputs of one forward pass: (function, structure), each 1×1×H×W in [−1, 1]."""
        import torch

        gen = torch.Generator().manual_seed(0)
        return tuple(torch.rand(1, 1, *size, generator=gen) * 2 - 1 for _ in range(2))

    def fuse_grey(self, structure: np.ndarray, function: np.ndarray) -> np.ndarray:
        """Raw network output in grey levels [0, 255] (float32) for inputs in grey levels [0, 255]."""
        def prep(x: np.ndarray) -> Any:
            return as_tensor((np.asarray(x, dtype=np.float32) - 127.5) / 127.5)

        with self.inference():
            fused = self.network(prep(function), prep(structure))
        return fused[0, 0].numpy() * np.float32(127.5) + np.float32(127.5)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a`` MRI or visible (H×W, or H×W×3 colour), ``b`` PET/SPECT (H×W×3) or grey CT/SPECT/IR; floats in [0, 1].

        A colour image enters as the 8-bit Y of ``input_process.m`` (:func:`official_y`);
        the result takes the Cb/Cr of ``b`` when ``b`` is colour, else of ``a`` when ``a``
        is colour (a colour visible image: the IR-VIS protocol), else it is grey
        (``output_process.m``: :func:`official_rgb`).
        """
        chroma_source = None
        if colour.is_colour(a):
            chroma_source = _as_uint8(a)
            structure = official_y(chroma_source).astype(np.float64)
        else:
            structure = np.asarray(a, dtype=np.float64) * 255.0
        if colour.is_colour(b):
            chroma_source = _as_uint8(b)
            function = official_y(chroma_source).astype(np.float64)
        else:
            function = np.asarray(b, dtype=np.float64) * 255.0
        y = self.fuse_grey(structure, function)
        if not self.stretch:
            y = np.clip(y, 0, 255).astype(np.float64)
            if chroma_source is None:
                return (y / 255.0).astype(np.float32)
            return np.clip(_official_ycbcr_to_rgb(y, chroma_source) / 255.0, 0.0, 1.0).astype(np.float32)
        y8 = bytescale(y)  # the saved 8-bit Y of test.py
        if chroma_source is None:
            return y8
        return official_rgb(y8, chroma_source)
