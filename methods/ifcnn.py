"""IFCNN-MAX (Zhang, Liu, Sun, Yan, Zhao, Zhang; Information Fusion 54:99–118, 2020).

A clean PyTorch re-implementation of the official network (``uzeful/IFCNN``,
``Code/model.py`` @ 8fe59c2) that loads the official legacy (pre-1.6 pickle)
``Code/snapshots/IFCNN-MAX.pth`` with ``weights_only=True`` and strict key and
shape matching.  The MAX variant is the one the authors use for medical,
infrared-visible and multi-focus images.  Inference only.

Network, per source: replicate-pad 3 → ``conv1`` 7×7, 3→64, no bias, stride 1
(the frozen ResNet-101 ``conv1``) → ``conv2`` (replicate-pad 1, 3×3 64→64 no bias,
BatchNorm, ReLU); fusion: element-wise **max** over the sources; reconstruction:
``conv3`` (same block) → ``conv4`` 1×1 64→3 with bias.  BatchNorm uses the running
statistics.  The checkpoint has no ``num_batches_tracked``: being a legacy
(version-less) state dict, PyTorch's BatchNorm loader supplies that counter itself,
so strict loading checks every other key and shape.

Pre- and post-processing as in the official ``IFCNN_Main.py`` for its MD and IV
(grey) data sets: each source is a grey image replicated to 3 channels, scaled to
[0, 1] with mean 0 / std 1 (no ImageNet normalisation); the 3-channel output is
clamped to [0, 1], multiplied by 255 and cast to uint8 (truncation), then
converted to grey with OpenCV's ``COLOR_RGB2GRAY`` fixed-point formula
``(4899 R + 9617 G + 1868 B + 8192) >> 14``, reproduced here without OpenCV.  The
method therefore returns uint8.  In fusionbench the second source is the BT.601
luma of a colour PET/SPECT (luma protocol); the official code has no medical
colour path.

Fidelity (``tests/methods/test_ifcnn.py``, ``docs/fidelity.md`` §IFCNN): against
the official notebook results ``Code/results`` — 8 medical pairs: 22 of 524,288
pixels off by one, the rest identical (PSNR 91.9 dB); 14 IR-VIS pairs: 138 of
2.67 M off by one (91.0 dB), on the measuring AVX-512 host; the counts move with
the CPU's float32 convolution order (24 and 131 on an AVX2 host, session 33), and
the test pins every pixel within ±1 and ≥ 99.98 % identical.  The paper release ``Results/MD`` differs from both
(26.6 dB): it was not made by the released weights and code.  VIFB's 21 IR-VIS
JPEGs (made with colour input and ImageNet normalisation, ``fuse_rgb(...,
imagenet=True)``): 40.9 dB, MAD 1.51, 64 % within ±1 — what JPEG q75 costs.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fusionbench.method_registry import register_method
from fusionbench.torch_method import TorchMethod, load_network, torch_threads
from fusionbench.weights import register_weights

from ._row_bands import even_bands, small_band_rows


register_weights(
    "ifcnn_max",
    filename="IFCNN-MAX.pth",
    sha256="6022b44c88a2f0367ba9b08fcdf0d663745d9a966fca0ee1f41867797b6ff53f",
    url="https://raw.githubusercontent.com/uzeful/IFCNN/8fe59c2b1553e52acc793986208ca479d134a8da/Code/snapshots/IFCNN-MAX.pth",
    method_dir="ifcnn",
    description="IFCNN-MAX official state_dict (uzeful/IFCNN Code/snapshots/IFCNN-MAX.pth, legacy pickle)",
)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_ifcnn_network() -> Any:
    """The IFCNN network (untrained, MAX fusion), with the official module names."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class ConvBlock(nn.Module):
        """Replicate-pad 1, 3×3 conv without bias, BatchNorm, ReLU."""

        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, bias=False)
            self.bn = nn.BatchNorm2d(cout)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.bn(self.conv(F.pad(x, (1, 1, 1, 1), mode="replicate")))
            return F.relu(y) if torch.is_grad_enabled() else y.relu_()  # in place: same values, one pass less

    class IFCNNNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, bias=False)
            self.conv2 = ConvBlock(64, 64)
            self.conv3 = ConvBlock(64, 64)
            self.conv4 = nn.Conv2d(64, 3, 1, bias=True)

        def forward(self, *sources: torch.Tensor) -> torch.Tensor:
            feats = [self.conv2(self.conv1(F.pad(s, (3, 3, 3, 3), mode="replicate"))) for s in sources]
            fused = feats[0]
            for f in feats[1:]:
                fused = torch.maximum(fused, f) if torch.is_grad_enabled() else torch.maximum(fused, f, out=fused)
            return self.conv4(self.conv3(fused))

    return IFCNNNet()


#: input rows a band reads beyond its own on either side (receptive field: 7×7, 3×3, 3×3, 1×1)
HALO = 5


def band_rows(shape: tuple[int, int]) -> int:
    """Output rows per band for an H×W input: all of them up to 256², else as many (≥ 16) as keep a band's
    64-channel float32 ``conv1`` map (4 halo rows included) within 8 MiB (:func:`methods._row_bands.small_band_rows`)."""
    return small_band_rows(shape, 64, 4)


def fast_forward(net: Any, *sources: Any, rows: int | None = None) -> Any:
    """The network's output on the inference path (issue 23): the same sums in another order.

    ``net(*sources)`` (the graph, and its bit-identical no-grad form) stays as it is; fusion runs this
    instead (float32 round-off only, ``tests/methods/test_ifcnn.py``): channels-last maps (oneDNN's
    7×7 3→64 and 3×3 64→64 convs ~1.5× faster on one thread than from NCHW) and each eval-mode
    BatchNorm folded into its conv (kernel × γ/√(σ² + ε), bias β − μ·γ/√(σ² + ε)), ReLU and the MAX
    fusion in place.  The convolutions, hence the FLOPs that :mod:`fusionbench.profile` counts, are the
    graph's (BatchNorm counts none) on images that run whole.

    Images above 256² (:func:`band_rows`; ``rows``: rows per band, for tests) run in bands of rows, so
    that no full-size 64-channel map exists: at 1024² the whole image's maps (256 MiB each) were fresh
    ``mmap``s page-faulted in at every call (2.2 GB of faults per fusion), a band's are reused from the
    heap.  Each band of output rows comes from the band's input rows with :data:`HALO` rows more on
    either side (clipped to the image), and each layer computes only the rows that the layers after it
    read (``conv1`` 2 rows beyond the band on either side, ``conv2`` 1, ``conv3`` none), padding rows by
    replication only at the image's borders, as the whole image does.  So every conv sees the whole
    image's input for the rows it computes, and the banded output is bit-identical to the whole image's
    (tested at odd sizes with small bands).
    """
    h, w = sources[0].shape[-2:]
    # a band spans 6 rows and 1,024 pixels at least: oneDNN picks its conv kernels by the problem's size,
    # and over a few hundred pixels it took others, whose sums differ in the last bit (measured 24-99 px wide)
    step = max(HALO + 1, -(-1024 // w), rows if rows is not None else band_rows((h, w)))
    folded = [_folded(net.conv2), _folded(net.conv3)]
    if step >= h:
        return _forward(net, folded, sources)
    out = None
    for r0, r1 in even_bands(0, h, step):
        s, e = max(0, r0 - HALO), min(h, r1 + HALO)
        y = _forward(net, folded, [x[:, :, s:e] for x in sources], keep=(r0 - s, r1 - s))
        if out is None:
            out = y.new_empty(y.shape[0], y.shape[1], h, w)
        out[:, :, r0:r1] = y
    return out


def _folded(blk: Any) -> tuple[Any, Any]:
    """A ConvBlock's eval-mode BatchNorm folded into its conv: (kernel × γ/√(σ² + ε), β − μ·γ/√(σ² + ε))."""
    import torch

    bn = blk.bn
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return blk.conv.weight * scale[:, None, None, None], bn.bias - bn.running_mean * scale


def _forward(net: Any, folded: list[tuple[Any, Any]], sources: Any, keep: tuple[int, int] | None = None) -> Any:
    """The network on inputs of H rows (channels-last, BatchNorm folded, in-place ReLU and MAX); NCHW out.

    ``keep``: the output rows ``[k0, k1)`` wanted (default all).  A map that ``k`` more rows of layers
    are still to read is computed on rows ``[k0 − k, k1 + k)`` clipped to ``[0, H)``; rows beyond
    ``[0, H)`` are replicate-padded, as at the image's borders (:func:`fast_forward` gives a band
    :data:`HALO` rows beyond its own wherever the image has them).
    """
    import torch
    import torch.nn.functional as F

    cl = torch.channels_last
    h = sources[0].shape[-2]
    k0, k1 = keep if keep is not None else (0, h)

    def conv(x: Any, x0: int, radius: int, k: int, fn: Any) -> Any:
        # fn on map x (its row 0 is input row x0, its rows cover [k0 - k - radius, k1 + k + radius) clipped),
        # padded by replication beyond [0, h): output rows [k0 - k, k1 + k) clipped
        a, b = max(0, k0 - k), min(h, k1 + k)
        x = x[:, :, max(0, a - radius) - x0:min(h, b + radius) - x0]
        pads = (radius, radius, max(0, radius - a), max(0, b + radius - h))
        return fn(F.pad(x, pads, mode="replicate"))

    def block(x: Any, x0: int, k: int, weight_bias: tuple[Any, Any]) -> Any:
        return conv(x, x0, 1, k, lambda p: F.conv2d(p, *weight_bias).relu_())

    fused = None
    for s in sources:
        x = s.contiguous(memory_format=cl)
        f = conv(x, 0, 3, 2, lambda p: net.conv1(p).contiguous(memory_format=cl))  # rows from k0 - 2
        f = block(f, max(0, k0 - 2), 1, folded[0])  # rows from k0 - 1
        fused = f if fused is None else torch.maximum(fused, f, out=fused)
    features = block(fused, max(0, k0 - 1), 0, folded[1])
    # conv4 (1×1, 64→3) on one thread: its sums over the 64 channels split across torch's threads, so its output
    # depended on the thread count (1 grey level on 1-4 pixels of 5 of 16 fused pairs, 2 threads against 1,
    # found by a reproducibility audit in session 30); the 3×3 and 7×7 convs above give the same bits on any
    # number of threads (tests/methods/test_ifcnn.py).  12.6 M multiply-adds at 256²: about 1 % of a fusion.
    with torch_threads(1):
        return net.conv4(features).contiguous()


def load_ifcnn_network(path: str | None = None) -> Any:
    """The IFCNN-MAX network with the official weights loaded strictly, in eval mode.

    Default: the cached official file, verified against its pinned sha256; ``path``:
    a file the caller supplies (loaded as is).
    """
    return load_network(build_ifcnn_network, "ifcnn_max", path)


def rgb_to_grey_opencv(rgb: np.ndarray) -> np.ndarray:
    """OpenCV ``cvtColor(uint8 RGB, COLOR_RGB2GRAY)``: fixed-point BT.601 weights, rounded."""
    r, g, b = (rgb[..., i].astype(np.int32) for i in range(3))
    return ((4899 * r + 9617 * g + 1868 * b + 8192) >> 14).astype(np.uint8)


def output_to_uint8(out: np.ndarray) -> np.ndarray:
    """Official post-processing of a 3×H×W output: clamp to [0, 1], ×255, truncate to uint8 (H×W×3)."""
    return (np.clip(out, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8).transpose(1, 2, 0)


@register_method(
    "ifcnn",
    display_name="IFCNN",
    family="deep",
    citation="Zhang, Liu, Sun, Yan, Zhao, Zhang, IFCNN: A general image fusion framework based on "
    "convolutional neural network, Information Fusion 54:99-118, 2020.",
    weights=("ifcnn_max",),
    version="1",
    uses_torch=True,
    # IFCNN-MAX, the released model, was trained on the authors' multi-focus dataset made from NYU-D v2 images
    # (README: "a large-scale and diverse multi-focus image dataset for training") and applied to every task
    trained_for=("multi-focus",),
    trained_on="the authors' multi-focus dataset made from NYU Depth v2 images",
)
class IFCNN(TorchMethod):
    """IFCNN-MAX with the official weights (luma method; returns uint8 as the official script saves it).

    Any size and aspect: the network is fully convolutional with replicate padding
    inside, so no outer padding is needed (none is added).  ``threads``: torch
    threads while fusing (see :class:`fusionbench.torch_method.TorchMethod`).
    """

    def __init__(self, threads: int | None = None) -> None:
        import torch

        super().__init__(threads=threads)
        self.network = load_ifcnn_network()
        self._torch = torch

    def torch_inputs(self, size: tuple[int, int] = (256, 256)) -> tuple[Any, ...]:
        """One forward pass's inputs for profiling: two 1×3×H×W tensors (grey replicated to 3 channels)."""
        return tuple(self._torch.rand(1, 1, *size).expand(1, 3, *size).contiguous() for _ in range(2))

    def torch_forward(self, *sources: Any) -> Any:
        """The pass fusion runs (and :mod:`fusionbench.profile` times and counts): :func:`fast_forward`."""
        return fast_forward(self.network, *sources)

    def fuse_rgb(self, a: np.ndarray, b: np.ndarray, imagenet: bool = False) -> np.ndarray:
        """Fuse two H×W or H×W×3 float images in [0, 1]; returns the official uint8 H×W×3 result.

        Grey images are replicated to 3 channels.  ``imagenet=True`` normalises with the
        ImageNet mean/std and de-normalises the output, as the official script does for
        colour multi-focus images and as VIFB ran IFCNN on its colour IR-VIS pairs; the
        default (mean 0, std 1) is the official setting for medical and IR-VIS grey data.
        """
        mean = np.array(IMAGENET_MEAN if imagenet else (0.0, 0.0, 0.0), np.float32)[:, None, None]
        std = np.array(IMAGENET_STD if imagenet else (1.0, 1.0, 1.0), np.float32)[:, None, None]

        def as_tensor(x: np.ndarray) -> Any:
            x = np.asarray(x, dtype=np.float32)
            x = np.repeat(x[None], 3, axis=0) if x.ndim == 2 else x.transpose(2, 0, 1)
            return self._torch.from_numpy(np.ascontiguousarray((x - mean) / std))[None]

        with self.inference():
            out = fast_forward(self.network, as_tensor(a), as_tensor(b))[0].numpy()
        return output_to_uint8(out * std + mean)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return rgb_to_grey_opencv(self.fuse_rgb(a, b))
