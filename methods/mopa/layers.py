"""The building blocks of :class:`methods.mopa.network.MopaNet`, as the paper's §1.2-1.4 describes them.

Feature paths, the contrast enhancement module (CEM, with the local standard deviation of Eq. 7), the detail
preserving module (DPM, of depthwise-separable conv blocks), the parallel/cascade attention module and the
decoupling network.  Each reading of the text, with its source, is in the docstring of
:mod:`methods.mopa.network`; the lean inference pass over the same weights is :mod:`methods.mopa.inference`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: where the CEM's channel weights are applied: the module's input features, or the multiscale features
CEM_APPLY = ("input", "multiscale")
#: how the attention module's spatial branch reads its input
ATTENTION_MODES = ("cascade", "parallel")


def conv_block(cin: int, cout: int, k: int = 3, slope: float = 0.2) -> nn.Sequential:
    """``k×k`` conv (zero padding, size preserving) + LReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2), nn.LeakyReLU(slope))


class FeaturePath(nn.Sequential):
    """``n`` 3×3 conv + LReLU blocks (§1.2)."""

    def __init__(self, cin: int, width: int, n: int, slope: float):
        super().__init__(*[conv_block(cin if i == 0 else width, width, 3, slope) for i in range(n)])


def reflect_pad(x: torch.Tensor, r: int) -> torch.Tensor:
    """``F.pad(x, (r, r, r, r), mode="reflect")`` built from slices, flips and concatenation.

    Same values as torch's reflect padding, but its backward is made of slice
    and concatenation gradients only, which are deterministic on CUDA, whereas
    ``ReflectionPad2d``'s backward raises under
    ``torch.use_deterministic_algorithms(True)`` there.  Needs ``r < H, W``.
    """
    if r == 0:
        return x
    x = torch.cat([x[..., 1:r + 1].flip(-1), x, x[..., -r - 1:-1].flip(-1)], dim=-1)
    return torch.cat([x[..., 1:r + 1, :].flip(-2), x, x[..., -r - 1:-1, :].flip(-2)], dim=-2)


def local_std(x: torch.Tensor, r: int) -> torch.Tensor:
    """Per-channel standard deviation over the (2r+1)² window centred on each pixel (Eq. 7).

    Eq. 7, ``σ = (1/(2r+1))·sqrt(Σ (φ - μ)²)``, is the window's population
    standard deviation.  Borders use reflect padding (:func:`reflect_pad`,
    CUDA-deterministic).
    """
    k = 2 * r + 1
    xp = reflect_pad(x, r)
    if torch.is_grad_enabled():
        mean = F.avg_pool2d(xp, k, stride=1)
        mean_sq = F.avg_pool2d(xp * xp, k, stride=1)
    else:  # inference: the same window means as two 1-D passes (float32 round-off only; 3× faster on CPU)
        mean = F.avg_pool2d(F.avg_pool2d(xp, (k, 1), stride=1), (1, k), stride=1)
        mean_sq = F.avg_pool2d(F.avg_pool2d(xp * xp, (k, 1), stride=1), (1, k), stride=1)
    return torch.sqrt((mean_sq - mean * mean).clamp_min(0.0) + 1e-12)


class ContrastEnhancement(nn.Module):
    """Contrast enhancement module (§1.3.1, Fig. 3): channel weights from a contrast map."""

    def __init__(self, ch: int, r: int = 3, reduction: int = 4, slope: float = 0.2, apply: str = "input"):
        super().__init__()
        if apply not in CEM_APPLY:
            raise ValueError(f"cem_apply must be one of {CEM_APPLY}, not {apply!r}")
        self.r, self.cem_apply = r, apply
        q = ch // 4
        outs = (q, q, q, ch - 3 * q)  # four scales whose outputs concatenate back to ``ch``
        self.scales = nn.ModuleList([nn.Conv2d(ch, o, k, padding=k // 2) for o, k in zip(outs, (1, 3, 5, 7))])
        self.act = nn.LeakyReLU(slope)
        self.res = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.LeakyReLU(slope), nn.Conv2d(ch, ch, 3, padding=1))
        hidden = max(ch // reduction, 1)
        self.fc = nn.Sequential(nn.Linear(ch, hidden), nn.LeakyReLU(slope), nn.Linear(hidden, ch), nn.Sigmoid())

    def multiscale(self, x: torch.Tensor) -> torch.Tensor:
        """The multiscale layer's features (1×1, 3×3, 5×5, 7×7 convs concatenated, LReLU)."""
        return self.act(torch.cat([s(x) for s in self.scales], dim=1))

    def weights_of(self, m: torch.Tensor) -> torch.Tensor:
        """Channel weights (N×C×1×1) from multiscale features ``m``: residual flow, contrast map, pool, FCs."""
        flow = self.act(m + self.res(m))
        contrast = local_std(flow, self.r)
        pooled = torch.amax(contrast, dim=(2, 3))
        return self.fc(pooled)[:, :, None, None]

    def channel_weights(self, x: torch.Tensor) -> torch.Tensor:
        """The CEM's channel weights (N×C×1×1, sigmoid in (0, 1)) for input ``x``: :meth:`weights_of` of its
        multiscale features."""
        return self.weights_of(self.multiscale(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (``apply="multiscale"``: the multiscale features) times the channel weights (§1.3.1, Fig. 3)."""
        m = self.multiscale(x)
        w = self.weights_of(m)
        return (x if self.cem_apply == "input" else m) * w


class DSCB(nn.Sequential):
    """Depthwise-separable conv block: depthwise 3×3 + pointwise 1×1 + LReLU."""

    def __init__(self, ch: int, slope: float):
        super().__init__(nn.Conv2d(ch, ch, 3, padding=1, groups=ch), nn.Conv2d(ch, ch, 1), nn.LeakyReLU(slope))


class DetailPreserving(nn.Module):
    """Detail preserving module (§1.3.2, Fig. 4): 3 parallel DSCB paths (1+2+3 blocks) with skips."""

    def __init__(self, ch: int, slope: float = 0.2):
        super().__init__()
        self.head = conv_block(ch, ch, 3, slope)
        self.paths = nn.ModuleList([nn.Sequential(*[DSCB(ch, slope) for _ in range(n)]) for n in (1, 2, 3)])
        self.fuse = nn.Conv2d(3 * ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Head conv, the three DSCB paths each with its skip, concatenated and fused by a 3×3 conv, plus ``x``
        (the module-wide residual; §1.3.2, Fig. 4)."""
        h = self.head(x)
        outs = [h + path(h) for path in self.paths]  # skips spanning 1, 2 and 3 DSCBs
        return x + self.fuse(torch.cat(outs, dim=1))  # the span-6 (module-wide) residual


class ParallelAttention(nn.Module):
    """Channel + spatial attention (§1.3.3, Fig. 5), the two outputs combined by 3×3 conv + LReLU.

    ``mode="cascade"`` (default): the spatial branch reads the channel branch's
    re-weighted features ("the lower-level enhanced spatial attention mechanism
    takes the processed feature information as input", §1.3.3; Fig. 5's
    caption and the conclusion say cascading); the channel output ``x·wc`` and
    the spatial output ``(x·wc)·ws`` are concatenated and combined.
    ``mode="parallel"``: both branches read ``x`` (the title's word);
    ``x·wc`` and ``x·ws`` are concatenated and combined.  Same parameters in
    both modes.
    """

    def __init__(self, ch: int, spatial_kernel: int = 7, slope: float = 0.2, mode: str = "cascade"):
        super().__init__()
        if mode not in ATTENTION_MODES:
            raise ValueError(f"attention must be one of {ATTENTION_MODES}, not {mode!r}")
        self.mode = mode
        hidden = max(ch // 2, 1)
        self.channel = nn.Sequential(
            nn.Conv2d(2 * ch, hidden, 1), nn.LeakyReLU(slope),
            nn.Conv2d(hidden, hidden, 1), nn.LeakyReLU(slope),
            nn.Conv2d(hidden, ch, 1), nn.Sigmoid(),
        )
        self.spatial = nn.Sequential(nn.Conv2d(2, 1, spatial_kernel, padding=spatial_kernel // 2), nn.Sigmoid())
        self.combine = conv_block(2 * ch, ch, 3, slope)

    def spatial_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Spatial weights (N×1×H×W, sigmoid): the ``k×k`` conv of the channel-wise mean and maximum of ``x``."""
        return self.spatial(torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Channel weights ``wc`` from the spatial mean and maximum (1×1 convs), spatial weights ``ws`` as
        ``mode`` says; the two outputs concatenated and combined by 3×3 conv + LReLU (§1.3.3, Fig. 5)."""
        pooled = torch.cat([x.mean(dim=(2, 3), keepdim=True), x.amax(dim=(2, 3), keepdim=True)], dim=1)
        xc = x * self.channel(pooled)
        xs = xc * self.spatial_weights(xc) if self.mode == "cascade" else x * self.spatial_weights(x)
        return self.combine(torch.cat([xc, xs], dim=1))


class Segment(nn.Module):
    """Decoupling segment: 1×1 conv + LReLU + 3×3 conv + LReLU, residual where widths match."""

    def __init__(self, cin: int, cout: int, slope: float):
        super().__init__()
        self.body = nn.Sequential(conv_block(cin, cout, 1, slope), conv_block(cout, cout, 3, slope))
        self.residual = cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The segment's body of ``x``, plus ``x`` where input and output widths match."""
        y = self.body(x)
        return x + y if self.residual else y


class Decoupler(nn.Module):
    """Decoupling network (§1.4, Fig. 6): fused image + 4th-layer features → two source estimates."""

    def __init__(self, feat_ch: int, width: int, slope: float = 0.2):
        super().__init__()
        self.trunk = nn.Sequential(Segment(1 + feat_ch, width, slope), Segment(width, width, slope))
        self.heads = nn.ModuleList([
            nn.Sequential(Segment(width, width, slope), nn.Conv2d(width, 1, 3, padding=1), nn.Sigmoid())
            for _ in range(2)
        ])

    def forward(self, fused: torch.Tensor, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two source estimates (MRI, functional), each N×1×H×W in (0, 1), from the fused image and the
        feature paths' features (§1.4, Fig. 6)."""
        t = self.trunk(torch.cat([fused, feats], dim=1))
        return self.heads[0](t), self.heads[1](t)
