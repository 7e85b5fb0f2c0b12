"""MATR: multiscale adaptive transformer (Tang, He, Liu, Duan; IEEE TIP 31:5134–5149, 2022).

A clean PyTorch re-implementation of the official network (``tthinking/MATR``,
``Networks/net.py`` and ``Networks/layers.py`` @ b427644) that loads the official
``models/model_10.pth`` with strict key and shape matching.  Inference only.

What is reproduced, exactly:

* **Adaptive convolution** = context-gated convolution (Lin et al., ECCV 2020),
  3×3, no bias, zero padding 1.  The input is average-pooled to 3×3 (context, 9
  values per channel), projected 9→5 (``ce``); one path (``ce_bn``, ReLU, ``gd``
  5→9) gives a gate per *input* channel and tap, the other (``ci_bn2``, ReLU,
  ``ci`` across channels, ``ci_bn``, ReLU, ``gd2`` 5→9) a gate per *output*
  channel and tap; the kernel of each sample is ``sigmoid(in + out) ⊙ W``.  The
  official code applies it with ``unfold`` + ``matmul``; here it is one grouped
  ``conv2d`` (same products, different summation order: float32 rounding only).
* **One shared 16→16 adaptive conv block** (``conv``: adaptive conv + BN + ReLU)
  applied **nine times** exactly as the official forward does, with its
  recomputations: ``b1 = conv(T(conv(x0)))``, ``b2 = conv(T(conv(conv(x0))))``,
  ``b3 = conv(T(conv(conv(conv(x0)))))``, ``x0 = convInput(input)`` (2→16), and
  ``out = tanh(1×1 conv(b1 + b2 + b3))``.  (Six distinct results; the official
  code recomputes three of them, and so does this module, so that FLOPs are those
  of the official network.)
* **The window-1 "transformer"** ``T`` (3 pre-LN blocks, dim 16, 8 heads, MLP
  ratio 4, exact-erf GELU), shared by the three branches.  The official block
  turns the B×C×H×W feature map into tokens with ``view`` and no permute, so a
  token is **16 consecutive values of the contiguous C·H·W memory** — for
  ``W % 16 == 0`` a 1×16 row segment of one channel, not the 16-channel vector of a
  pixel.  LayerNorm, attention and MLP act on those tokens, and the result is
  viewed back to B×C×H×W.  This quirk is reproduced on purpose.  With window
  size 1 each attention window holds one token, so the softmax weight is exactly
  1 and attention reduces to ``proj(v)``; the relative-position bias table and
  the (all-zero) shift mask have no effect; the official code still forms the
  1×1 attention products, this module skips them (bit-identical result; their
  FLOPs, 2·2·16 per token, are below 0.2 % of the total).
* **Inference speed** (issue 23): the pass of one sample runs on channels-last maps with BatchNorm folded,
  by bands of rows with the token blocks as one compiled pass per band, float32 round-off only (max |Δ|
  pinned ≤ 1e-5 in ``tests/methods/test_matr.py``); its history, session by session, is in
  :mod:`methods._matr_net`, the band machinery in :mod:`methods._matr_bands`.
* **Square inputs only**: the official adaptive conv reshapes its output with
  ``sqrt(H·W)``.  A non-square pair is padded to a square with symmetric
  (edge-repeating) borders at the bottom/right, fused, and cropped back.  The
  padding changes the 3×3 average-pool context, so a non-square result is not
  what the official code would give on the crop (it cannot run at all).
* Inputs: the official ``Test.py`` stacks ``[functional, MRI]`` as PIL ``L``
  images scaled to [0, 1].  Here the functional channel is the BT.601 luma ``b``
  of the fusionbench colour protocol (float, not rounded to 8 bits) and the MRI
  is ``a``.  Output: ``tanh``; the official script writes ``(out·255)`` cast to
  uint8, i.e. truncation (and negatives wrap around).  Here the output is
  clipped to [0, 1] and then truncated the same way, so the method returns uint8
  (the official colour results agree far better with truncation: 97–99 % of
  pixels exact, against 43–46 % with rounding).  Colour: the fusionbench luma
  protocol reproduces the official colour results (see below).  BatchNorm uses
  the running statistics (``model.eval()``).

Weights: the checkpoint holds 13,633 values (95 entries), of which 13,422 are
parameters (the rest are BatchNorm statistics and the relative-position index).
13,206 parameters act on the output; the unused ``patch_embed.norm``
(LayerNorm(96), 192 values) and the three inert relative-position tables (24
values) are loaded too (strict) and counted by :func:`fusionbench.profile.params`
(13,422).

Fidelity against the official colour results ``fusion result/{PET-MRI/002,
SPECT-MRI/020}.bmp`` through ``fusionbench.fuse`` (RGB, all channels): PET-MRI
PSNR 63.0 dB, MAD 0.032, 96.8 % exact, 100 % within ±1; SPECT-MRI PSNR 68.6 dB,
MAD 0.009, 99.1 % exact, 100 % within ±1 (pinned in
``tests/methods/test_matr.py``; ``docs/fidelity.md`` §MATR).  The grey network against the
official ``Test.py`` run here unchanged (CPU, torch 2.13) on 62 pairs (the 2 official pairs and
20 each of MRI-PET, MRI-SPECT, MRI-CT): PSNR 66.0 dB, 99.970 % of values exact, all but one
within ±1 (a negative output the official cast wraps to 255, clipped to 0 here).  The GFP-PC
microscopy pair is out of scope.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fusionbench.method_registry import UNLISTED_HARVARD, register_method
from fusionbench.torch_method import TorchMethod, crop, load_network
from fusionbench.weights import register_weights

register_weights(
    "matr",
    filename="model_10.pth",
    sha256="523f6be0ef0330a84c473a7ad2e037a7eb1a98584021c4772dfd317c1c0ddaab",
    url="https://raw.githubusercontent.com/tthinking/MATR/b427644d4dab600a805cf2711d8a31232aaa2ca5/models/model_10.pth",
    method_dir="matr",
    description="MATR official state_dict (tthinking/MATR models/model_10.pth)",
)


def build_matr_network() -> Any:
    """The MATR network (untrained), with the official module names (:mod:`methods._matr_net`)."""
    from ._matr_net import build_matr_network as build

    return build()



def load_matr_network(path: str | None = None) -> Any:
    """The MATR network with the official weights loaded strictly, in eval mode.

    Default: the cached official file, verified against its pinned sha256; ``path``:
    a file the caller supplies (loaded as is).
    """
    return load_network(build_matr_network, "matr", path)


def pad_to_square(image: np.ndarray) -> np.ndarray:
    """Pad an H×W image at the bottom/right to a square with symmetric (edge-repeating) borders."""
    h, w = image.shape[:2]
    n = max(h, w)
    return np.pad(image, ((0, n - h), (0, n - w)), mode="symmetric")


@register_method(
    "matr",
    display_name="MATR",
    family="deep",
    citation="Tang, He, Liu, Duan, MATR: Multimodal medical image fusion via multiscale adaptive transformer, "
    "IEEE Trans. Image Processing 31:5134-5149, 2022.",
    weights=("matr",),
    version="1",
    uses_torch=True,
    trained_for=("medical",),  # the one released model, trained for medical fusion (no IR-VIS model upstream)
    trained_on=UNLISTED_HARVARD,
)
class MATR(TorchMethod):
    """MATR with the official weights (luma method: ``a`` = MRI, ``b`` = functional luma).

    Any size and aspect: the official network needs a square, so a non-square pair
    is padded to a square at the bottom/right (symmetric, edge row repeated, see
    :func:`pad_to_square`) and the result cropped back.  ``threads``: torch threads
    while fusing (see :class:`fusionbench.torch_method.TorchMethod`).
    """

    def __init__(self, threads: int | None = None) -> None:
        import torch

        super().__init__(threads=threads)
        self.network = load_matr_network()
        self._torch = torch

    def torch_inputs(self, size: tuple[int, int] = (256, 256)) -> tuple[Any, ...]:
        """One forward pass's input for profiling: a 1×2×H×W tensor (both sources)."""
        return (self._torch.rand(1, 2, *size),)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        h, w = a.shape
        x = np.stack([pad_to_square(b), pad_to_square(a)]).astype(np.float32)
        with self.inference():
            out = self.network(self._torch.from_numpy(x)[None])[0, 0].numpy()
        # Official Test.py: (out * 255).astype(uint8), i.e. truncation (negatives clipped here, not wrapped).
        return np.floor(np.clip(crop(out, (h, w)), 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)
