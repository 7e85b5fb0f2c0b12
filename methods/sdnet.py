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

**Agreement with the official code** (session 16; its committed cases pinned in
``tests/methods/test_sdnet.py``, at ≥ 99.99 % identical per case).  The repository ships no fused output, so the
official code itself was run here: ``test.py`` unchanged under TensorFlow 2.15
(CPU), and for colour ``input_process.m`` → ``test.py`` → ``output_process.m``
with the two MATLAB scripts under GNU Octave 7.3, unchanged but for their loop
bound (``scripts/reference_runs/official_python``).

* grey, 48 pairs (the 3 official test pairs, 20 MRI-CT, the 25 TNO pairs whole;
  TNO through the banded path): unrounded result within 2.3e-4 grey levels;
  saved 8-bit result ≥ 99.995 % identical on the measuring host (official pair 3: 99.9939 %, 4 of
  65,536 values, on an AVX2 host in session 33: the counts move with the CPU), 6 of 48 bit-exact, never off
  by more than 1 (float32 summation order: TensorFlow's kernels vs oneDNN's);
* colour, 40 pairs (20 MRI-PET, 20 MRI-SPECT): the network's input Y identical on
  every pixel; RGB ≥ 99.996 % identical (mean 99.9991 %), 20 of 40 bit-exact, max
  2.  Until session 16 the colour path used the exact MATLAB matrix and rounded Y
  once (a documented deviation): on the same 40 pairs 82.3–100 % identical (mean
  91.0 %), max 4.

Also checked (pinned in the test):

* layers 1–5 equal a numpy transcription of ``test.py`` computed straight from
  the raw HWIO checkpoint tensors with TF 'SAME' zero padding (max |Δ| 5.9e-5
  grey levels on a 48×56 crop; pinned below 5e-4);
* on the three official test pairs (``Test_Function``/``Test_Structure``): the
  raw fused Y stays in [0, 255], correlates with the MRI (ρ = 0.893–0.905) and
  the PET Y (ρ = 0.868–0.887), and its mean lies between theirs;
* the decomposition head, loaded from the same checkpoint, rebuilds the PET Y
  at 24.0 / 25.5 / 26.5 dB PSNR and the MRI at 20.9 / 21.8 / 22.4 dB from the
  fused image; crossed (PET head vs MRI and vice versa) only 11.9–13.0 dB.
  This checks that the two branches' weights are where the graph expects them.

Cost (inference, layers 1–5): 28,705 parameters, 3.75 GFLOPs for one 256² pair.
Inference (issue 23) runs a concat-free, channels-last form of the same sums
(:meth:`methods._sdnet_net.SDNetSqueeze._forward_lean`: float32 summation order only, max |Δ| 3e-7 on
[−1, 1]; the official graph's FLOP count): one thread, 256², loaded machine, 62–74 → 37–40 ms,
0.29–0.37 → 0.56–0.62 of the plain 3×3 conv's GFLOP/s measured alongside.  Images from 256² up run it in
bands of rows with a 5-row halo (:meth:`methods._sdnet_net.SDNetSqueeze.infer`; 256² in two), bit-identical to the whole image, so
that no map is page-faulted in afresh at every call (session 9: cost per pixel at 1024² no longer above 256²'s;
session 11: 256² too, and glibc's mmap threshold raised once so that band maps stay on the heap).  With N torch
threads the bands run on N single-threaded band workers (session 11), the output bit-identical to one
thread's (``docs/fidelity.md`` §SDNet, "SDNet at two threads").  That identity holds on AVX2 and SSE4 machines
too: the 1×1 squeeze is a compiled fixed-order sum per pixel (:func:`methods._sdnet_net._project_side`,
:mod:`methods._sdnet_kernels`) instead of BLAS products, and every convolution runs through oneDNN (``_onednn.conv2d``),
never ATen's own path for small maps; both round a pixel the same wherever it lies on every instruction set
(session 11, H1b; a subprocess test runs the checks under AVX2 and SSE4 stand-ins).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fusionbench import colour
from fusionbench.method_registry import UNLISTED_HARVARD, register_method
from fusionbench.torch_method import TorchMethod, as_tensor

from ._matlab import to_uint8
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

def _build_modules() -> tuple[Any, Any]:
    """The squeeze network (layers 1–5, inference) and decomposition head (layers 6–9), untrained
    (:mod:`methods._sdnet_net`)."""
    from ._sdnet_net import SDNetDecomposer, SDNetSqueeze

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
    trained_for=("medical",),  # the official Medical/ checkpoint (upstream's IR_VIS/ one is not in the assets)
    trained_on=UNLISTED_HARVARD,
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
