"""The fusion network of Di et al. (2025), "mask optimisation and parallel attention" (MOPA).

Source: DI Jing, LIANG Chan, GUO Wenqing, LIAN Jing, *Multimodal medical image
fusion based on mask optimization and parallel attention mechanism*, Journal of
Measurement Science and Instrumentation 16(1):26-36, 2025, §1.1-1.4 and
Fig. 1-6.  No official code exists: this is fusionbench's reading of the text.
Every gap the text leaves is a constructor argument; the choices (and why) are:

* ``width=5`` feature channels per path (15 after concatenation).  The paper
  gives none.  Its Table 5 "GFLOPs" are, on the rows of baselines we run
  whole-image (SDNet 2.4587, MATR 4.2215), 1.32× our multiply-accumulate
  count (:data:`fusionbench.profile.PAPER_FLOPS_PER_MAC`); in that convention
  width 5 costs 2.352 at 256² (1.785 GMAC), the closest to the paper's 2.531
  (width 4: 1.45, width 6: 3.29).  Its "0.5×10⁷ parameters" cannot belong to
  the same fully convolutional network (5 M conv weights would cost hundreds
  of GFLOPs at 256²), so we match the FLOPs and report the parameter count as
  it comes.  ``docs/paper_network.md`` has the measurements.
* Binary masks (§1.1): Otsu's threshold of each full source image (Eq. 1-6,
  ``skimage.filters.threshold_otsu``), ``mask = image > T``, computed in numpy
  before the network (:func:`otsu_mask`).  Masks of patches are cut from the
  full-image masks, so training and inference agree.
* How mask and image enter a path: ``mask_mode='concat'`` stacks image and mask
  as two input channels (the network learns how to use the mask);
  ``'multiply'`` feeds ``[image, image·mask]`` instead.
* Feature extraction (§1.2): the MRI path and the PET/SPECT path are four 3×3
  conv + LReLU blocks each; the shared path takes both sources stacked and has
  three.  The three outputs are concatenated (``3·width`` channels).
* LReLU negative slope ``slope=0.2`` (common in fusion CNNs; the paper gives none).
* Contrast enhancement module (§1.3.1, Fig. 3): multiscale layer of 1×1, 3×3,
  5×5 and 7×7 convs (``3w → ⌊3w/4⌋`` each for the first three, the rest of the ``3w`` channels
  for the 7×7: 3/3/3/6 at ``w = 5``, concatenated back to ``3w``) + LReLU;
  a residual block (two 3×3 convs); the contrast map is the local standard
  deviation over a (2r+1)² window (Eq. 7, which is exactly the window's
  population standard deviation), ``r=3`` by default (a 7×7 window, the
  largest kernel of the multiscale layer); global max pooling; FC + LReLU
  (reduction 4) and FC + sigmoid give one weight per channel that multiplies
  the module's *input* features (``cem_apply="input"``; §1.3.1 says twice that
  "the original features" are multiplied); ``cem_apply="multiscale"``
  multiplies the multiscale layer's features instead.
* Detail preserving module (§1.3.2, Fig. 4): 3×3 conv + LReLU, then three
  parallel paths of 1, 2 and 3 depthwise-separable conv blocks (six in all),
  each path with a skip connection spanning its blocks (spans 1, 2, 3); the
  paths are concatenated, a 3×3 conv returns to the input width, and the
  module-wide residual sum is the span-6 connection.  A DSCB is depthwise 3×3
  + pointwise 1×1 + LReLU.  The DPM follows the CEM (Fig. 1 order as
  described in §1 "enhanced by a contrast enhancement module and a detail
  preservation module").
* Attention (§1.3.3, Fig. 5): channel branch — global average and
  max pooling, concatenated, conv + LReLU, conv + LReLU, conv + sigmoid (the
  paper's 3×3 kernels act on 1×1 pooled maps, where a zero-padded 3×3 conv
  equals a 1×1 conv, so 1×1 is used; hidden width ``⌊3w/2⌋`` = 7; the paper's "two
  3×3 convolutional layers followed by an LReLU" read as an LReLU after each, ``docs/paper_network.md``); spatial branch —
  mean and max over channels, concatenated, a ``7×7`` conv (CBAM's size) +
  sigmoid.  ``attention="cascade"`` (default): the spatial branch reads the
  channel branch's output, as §1.3.3's only operational sentence, Fig. 5's
  caption and the conclusion say; ``"parallel"``: both read the input (the
  title's word).  The two branch outputs are concatenated and combined by a
  3×3 conv + LReLU in both modes (the text: "the outputs from the upper and
  lower attention mechanisms are combined").
* Reconstruction head (not described): 3×3 conv ``3w → w`` + LReLU, 3×3 conv
  ``w → 1`` and a sigmoid, so the fused image lies in [0, 1].
* Decoupling network (§1.4, Fig. 6): fully convolutional, size preserving;
  its first layer takes the fused image concatenated with the outputs of the
  fourth conv block of the MRI and PET/SPECT paths ("the output from the fourth
  layer of the feature extraction phase is fed back into the first layer").
  A segment is 1×1 conv + LReLU + 3×3 conv + LReLU, with a residual sum where
  widths match ("composed of residual networks").  Two shared segments, then
  one segment + 3×3 conv + sigmoid per output: the two decoupled images that
  approximate the two sources.  It is used in training only.

Ablation switches (Table 4): ``use_mask=False`` feeds each single-modality
path the image alone (one input channel, no mask); ``use_contrast=False`` and
``use_attention=False`` replace the CEM or the attention module by the identity
(the features pass through unchanged); ``use_decouple=False`` builds no
decoupling network and drops L_decouple from the loss.  The DPM and the
reconstruction head are always present (Table 4 does not switch them).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .inference import InferencePath
from .layers import ContrastEnhancement, Decoupler, DetailPreserving, FeaturePath, ParallelAttention, conv_block

__all__ = ["MopaNet", "network_inputs", "otsu_mask"]


def otsu_mask(image: np.ndarray) -> np.ndarray:
    """Binary mask ``image > T`` with Otsu's threshold ``T`` (Eq. 1-6), as float32 0/1.

    A constant image has no threshold and gets an all-zero mask.
    """
    from skimage.filters import threshold_otsu

    image = np.asarray(image)
    if image.size == 0 or image.min() == image.max():
        return np.zeros(image.shape, np.float32)
    return (image > threshold_otsu(image)).astype(np.float32)


def check_sizes(*, width: int, contrast_r: int, spatial_kernel: int, slope: float) -> None:
    """``ValueError`` naming the parameter for a size or slope the network cannot use (:func:`fusionbench.checks.number`;
    until session 39 ``--set contrast_r=-1`` and ``spatial_kernel=4`` failed at the first step in torch's words,
    after the data was loaded, and ``slope=-5`` trained an LReLU that flips its negative half)."""
    from fusionbench.checks import number

    for name, value in (("width", width), ("contrast_r", contrast_r), ("spatial_kernel", spatial_kernel)):
        number("mopa", name, value, low=1, integer=True)
    if spatial_kernel % 2 == 0:
        raise ValueError(f"mopa: spatial_kernel must be odd (a centred 'same' convolution), got {spatial_kernel}")
    number("mopa", "slope", slope, low=0, high=1)  # the LReLU's negative slope


class MopaNet(nn.Module):
    """The whole network.  Input ``x``: N×4×H×W = [MRI, PET/SPECT luma, MRI mask, luma mask] in [0, 1].

    ``forward`` returns ``(fused, decoupled)`` with ``fused`` N×1×H×W in [0, 1]
    and ``decoupled`` a pair of N×1×H×W source estimates, or ``None`` when the
    decoupling network is switched off or ``decouple=False`` is passed
    (inference).
    """

    def __init__(
        self,
        width: int = 5,
        *,
        use_mask: bool = True,
        use_attention: bool = True,
        use_contrast: bool = True,
        use_decouple: bool = True,
        mask_mode: str = "concat",
        attention: str = "cascade",
        cem_apply: str = "input",
        contrast_r: int = 3,
        spatial_kernel: int = 7,
        slope: float = 0.2,
    ):
        super().__init__()
        if mask_mode not in ("concat", "multiply"):
            raise ValueError(f"mask_mode must be 'concat' or 'multiply', not {mask_mode!r}")
        check_sizes(width=width, contrast_r=contrast_r, spatial_kernel=spatial_kernel, slope=slope)
        self.use_mask, self.mask_mode = use_mask, mask_mode
        cin = 2 if use_mask else 1
        self.path_a = FeaturePath(cin, width, 4, slope)
        self.path_b = FeaturePath(cin, width, 4, slope)
        self.path_ab = FeaturePath(2, width, 3, slope)
        ch = 3 * width
        self.contrast = ContrastEnhancement(ch, contrast_r, 4, slope, cem_apply) if use_contrast else nn.Identity()
        self.detail = DetailPreserving(ch, slope)
        self.attention = ParallelAttention(ch, spatial_kernel, slope, attention) if use_attention else nn.Identity()
        self.head = nn.Sequential(conv_block(ch, width, 3, slope), nn.Conv2d(width, 1, 3, padding=1), nn.Sigmoid())
        self.decoupler = Decoupler(2 * width, width, slope) if use_decouple else None

    def _path_input(self, img: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if not self.use_mask:
            return img
        return torch.cat([img, mask if self.mask_mode == "concat" else img * mask], dim=1)

    def forward(self, x: torch.Tensor,
                decouple: bool = True) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """``(fused, decoupled)`` for ``x`` N×4×H×W: ``fused`` N×1×H×W in [0, 1], ``decoupled`` the two source
        estimates, or ``None`` without the decoupler or with ``decouple=False``.  One sample under
        ``torch.inference_mode`` runs :class:`InferencePath` (same weights, float32 round-off only)."""
        if torch.is_inference_mode_enabled() and x.shape[0] == 1:
            # the method's inference (fusionbench.methods.mopa): a lean path through the same weights
            # (InferencePath: float32 round-off only); training and no_grad validation never come here
            fused, fa, fb = InferencePath(self)(x)
            if self.decoupler is None or not decouple:
                return fused, None
            return fused, self.decoupler(fused, torch.cat([fa, fb], dim=1))
        if not torch.is_grad_enabled():
            # inference: channels-last memory, on which oneDNN's convolutions of these narrow (2-15 channel)
            # layers and the pooling run faster (about 20 % less CPU time in all; float32 round-off only)
            x = x.contiguous(memory_format=torch.channels_last)
        a, b, ma, mb = x[:, 0:1], x[:, 1:2], x[:, 2:3], x[:, 3:4]
        fa = self.path_a(self._path_input(a, ma))
        fb = self.path_b(self._path_input(b, mb))
        fab = self.path_ab(torch.cat([a, b], dim=1))
        f = self.contrast(torch.cat([fa, fb, fab], dim=1))
        f = self.attention(self.detail(f))
        fused = self.head(f)
        if self.decoupler is None or not decouple:
            return fused, None
        return fused, self.decoupler(fused, torch.cat([fa, fb], dim=1))


def network_inputs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Stack the network's 4 input channels ``[a, b, otsu(a), otsu(b)]`` (float32, 4×H×W).

    ``a`` and ``b`` are H×W float images in [0, 1] (MRI, and PET/SPECT luma or CT).
    """
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    return np.stack([a, b, otsu_mask(a), otsu_mask(b)])
