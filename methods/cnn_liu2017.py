"""CNN: Liu, Chen, Cheng, Peng, "A medical image fusion method based on convolutional neural networks" (FUSION 2017).

A re-implementation of the authors' MATLAB code as distributed in VIFB
(``xingchenzhang/VIFB`` @ 22b2ea9, ``methods/CNN/``: ``run_CNN.m``,
``band_fuse.m``, ``maxpooling_s2.m``, ``es2.m``, Mertens' ``pyramid/``), with the
official trained model ``model/cnnmodel.mat`` (the light medical / IR-VIS
model, without the multi-focus FC layer).  The network runs in PyTorch; the
weight map and the pyramid fusion in NumPy.

1. **Siamese network** (shared weights), each source grey in [0, 1]: 3×3 conv
   1→64 + ReLU, 3×3 64→128 + ReLU, 2×2 max-pool stride 2 (a zero row/column is
   appended to odd sizes, which equals ``ceil_mode`` after ReLU), 3×3 128→256 +
   ReLU; zero 'same' padding.  The two 256-channel maps are concatenated (first
   source first) and an 8×8 'valid' conv gives two maps; the score is the softmax
   probability of the second class (computed in float64 as ``1 − p₁`` as in
   ``run_CNN.m``).  The ``.mat`` kernels are per-(in, out) vectors of 9 or 64
   taps reshaped **column-major**; MATLAB's ``conv2(x, rot90(k, 2))`` is the
   correlation with ``k`` that ``conv2d`` computes.  ``biases_output`` is loaded and
   shape-checked but, as in ``run_CNN.m``, **not added** (|b| < 1e-3).
2. **Weight map**: each score covers the 16×16 patch at stride 2 (patches are cut
   at the image border); scores are summed over overlapping patches and divided
   by the count (vectorised with a zero-inserted score grid and a causal 16×16
   box sum).  The map weights the first source.
3. **Pyramid fusion**: Laplacian pyramids of both sources and a Gaussian
   pyramid of the weight map (Mertens' 5-tap code, MATLAB 'symmetric' borders;
   ``methods/_transforms/pyramids.py``, ``variant='mertens'``) with ``nlev =
   floor(log(min(H, W)) / log 2)`` levels.  Every level (the residual included)
   is fused with Burt's rule over a 3×3 window with ``es2`` mirror borders (the
   four extension corners stay zero, as in ``es2.m``): match ``M = 2ΣAB / (ΣA² +
   ΣB² + eps)``; if ``M > 0.6`` the weighted average ``W·A + (1−W)·B``, otherwise
   the coefficient with the larger local energy.  Then collapse.

Source order and colour: ``run_CNN.m`` feeds (IR, visible) and weights the IR;
here the first source is ``b`` (PET/SPECT luma, CT or IR) and the second ``a``
(MRI or visible), so for IR-VIS this is the VIFB order.  VIFB fuses R, G and B of
colour inputs separately with the grey-derived weight map; fusionbench fuses the
luma (luma protocol) and keeps the functional image's chroma.  The fused image
is returned as float in [0, 1] (the runner rounds; MATLAB ``uint8`` rounds half
away from zero, which only differs at exact halves).

Fidelity (``tests/methods/test_cnn.py``, ``docs/fidelity.md`` §CNN): no official
medical output exists; VIFB's 21 IR-VIS results are JPEG.  With VIFB's colour
protocol (R, G, B fused separately), our uint8 results JPEG-encoded at quality 75
(PIL) are **bit-identical** to VIFB's files on all 21 pairs where torch's convolutions run AVX-512 or SSE code
(with oneDNN's AVX2 kernels a few JPEG blocks move: 2 of 21 pairs, 318 values, max 5, on an AVX2 host in
session 33; the test pins ≥ 99.99 % exact); compared directly
(the cost of JPEG) 42.9 dB, MAD 0.94, 51 % exact, 80 % within ±1.  Without JPEG:
VIFB's ``run_CNN.m`` run unchanged under GNU Octave on 68 grey 8-bit cases (60
Harvard pairs of the three medical tasks, TNO pairs, crops) gives ``uint8(F·255)``
equal to ours on 61 cases and on all but 7 of 5,476,748 values, each of those
within 1.6e-5 of a rounding half (float32 sums in another order).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fusionbench.method_registry import register_method
from fusionbench.torch_method import TorchMethod, as_tensor, crop
from fusionbench.weights import register_weights, weights_path

from ._transforms.pyramids import gaussian_pyramid, laplacian_pyramid, reconstruct_laplacian

from . import _onednn
from ._row_bands import BAND_PIXELS, fixed_bands

register_weights(
    "cnn_liu2017",
    filename="cnnmodel.mat",
    sha256="f826e6739aa6cea943a1323642468760102fc735ff090cd83ab28d998ba76a20",
    url="https://raw.githubusercontent.com/xingchenzhang/VIFB/22b2ea9d91499cc5962d9bdcae9c290270f0fade/methods/CNN/model/cnnmodel.mat",
    method_dir="cnn_liu2017",
    description="Liu et al. 2017 CNN fusion model (VIFB methods/CNN/model/cnnmodel.mat)",
)

PATCH = 16
STRIDE = 2
THRESHOLD = 0.6
_MAT_SHAPES = {
    "weights_b1_1": (9, 64), "biases_b1_1": (64, 1),
    "weights_b1_2": (64, 9, 128), "biases_b1_2": (128, 1),
    "weights_b1_3": (128, 9, 256), "biases_b1_3": (256, 1),
    "weights_output": (512, 64, 2), "biases_output": (2, 1),
}


def build_cnn_network() -> Any:
    """The siamese score network (untrained); ``net(first, second)`` returns the 2-class logits."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class SiameseCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 64, 3, padding=1)
            self.conv2 = nn.Conv2d(64, 128, 3, padding=1)
            self.conv3 = nn.Conv2d(128, 256, 3, padding=1)
            self.output = nn.Conv2d(512, 2, 8, bias=False)

        def branches(self, first: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """Both sources' 256-channel maps, one source at a time (only one 64-channel full-resolution map
            exists at a time); in inference ``conv1`` always on oneDNN (:func:`methods._onednn.conv2d`), so that a
            narrow band rounds as the whole image does on every instruction set."""
            c1 = self.conv1
            return tuple(self.tail(_onednn.conv2d(x, c1.weight, c1.bias, 1)) for x in (first, second))

        def tail(self, y: torch.Tensor) -> torch.Tensor:
            """The branch after ``conv1``: ReLU, ``conv2`` + ReLU, the ceil-mode pool, ``conv3`` + ReLU."""
            if not torch.is_grad_enabled():  # inference: the same values (bit-identical), less memory traffic
                x = self.conv2(y.relu_()).relu_()
                del y  # the caller's conv1 map: freed before conv3 (one 64-channel map less at the peak)
                return self.conv3(max_pool2_ceil(x)).relu_()
            x = F.relu(self.conv2(F.relu(y)))
            x = F.max_pool2d(x, 2, ceil_mode=True)
            return F.relu(self.conv3(x))

        def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
            return self.output(torch.cat(self.branches(first, second), dim=1))

    return SiameseCNN()




def max_pool2_ceil(x: Any) -> Any:
    """``F.max_pool2d(x, 2, ceil_mode=True)`` as element-wise maxima of strided slices (bit-identical).

    A maximum is exact, so the order does not matter; an odd height/width gets a row/column of −inf
    (the ceil-mode window that covers only the last row/column).  On one thread ~6× faster than
    torch's NCHW max-pool kernel on the 128-channel map of this network (issue 23).
    """
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        x = F.pad(x, (0, w % 2, 0, h % 2), value=float("-inf"))
    rows = x[..., 0::2, :].maximum(x[..., 1::2, :])
    return rows[..., 0::2].maximum(rows[..., 1::2])


#: bytes of a band's largest map (``conv2``'s 128 float32 channels at full resolution) in the banded path
BAND_BYTES = 64 * 2**20
#: input rows a band of pooled rows reads beyond its own on either side (receptive field of the branch)
HALO = 4


def band_rows(shape: tuple[int, int]) -> int:
    """Pooled rows per band for an H×W input: all of them up to :data:`BAND_PIXELS`, else ≥ 16 rows whose
    ``conv2`` map (2 input rows per pooled row, 128 float32 channels) fits :data:`BAND_BYTES`."""
    h, w = shape
    pooled = (h + 1) // 2
    if h * w <= BAND_PIXELS:
        return pooled
    return min(pooled, max(16, BAND_BYTES // (2 * 128 * 4 * w)))


def pooled_band(net: Any, first: Any, second: Any, k0: int, k1: int) -> tuple[Any, Any]:
    """Rows ``[k0, k1)`` of both sources' branch maps (``net.branches``, pooled resolution, no grad),
    channels-last, from a band of input.

    The branch reads input rows ``[2·k0 − 4, 2·k1 + 4)`` (clipped to the image): ``conv1`` and ``conv2``
    each need one row more on either side, the pool two full rows per pooled row and ``conv3`` one
    pooled row (two full rows).  The zero padding a conv adds at a cut (not an image border) spoils one
    row per layer inward; with this halo the spoiled rows all lie outside ``[k0, k1)``.  The band starts
    on an even row, so the pool pairs the rows as on the whole image (an odd height's ceil-mode window
    falls in the last band as on the whole image).
    """
    import torch

    h = first.shape[-2]
    s, e = max(0, 2 * k0 - HALO), min(h, 2 * k1 + HALO)
    with torch.no_grad():  # the graph's bit-identical inference form
        maps = net.branches(first[:, :, s:e], second[:, :, s:e])
    return tuple(f[:, :, k0 - s // 2:k1 - s // 2].contiguous(memory_format=torch.channels_last) for f in maps)


def fast_logits(net: Any, first: Any, second: Any, rows: int | None = None) -> Any:
    """The network's 2-class logits on the inference path (issue 23): the output layer's sums in another order.

    ``net(first, second)`` (the graph) is kept for training-style checks; fusion runs this instead.  The
    two branches are the graph's bit-identical no-grad form (NCHW: channels-last convs there would round
    differently and cost the bit-identical VIFB JPEGs).  The 8×8 'valid' output conv (512→2, ~20 GFLOP/s:
    oneDNN vectorises over output channels) becomes a 1×8 conv with the 8 row taps as 16 output
    channels, per source (no 512-channel ``cat``), whose planes are summed shifted by their tap:
    ``out[o, y, x] = Σ_i g[o, i, y + i, x]``.  On channels-last maps a range of rows is one contiguous
    block, so the conv runs on the rows every tap needs (``y ∈ [7, H − 7)``) and each of the 7 rows at
    either side with only the taps that read it: the multiply-adds (and the FLOPs that
    :mod:`fusionbench.profile` counts) are exactly the 8×8 conv's.  Float32 round-off only
    (``tests/methods/test_cnn.py``).

    Large images (:func:`band_rows`; ``rows``: pooled rows per band, for tests) go through the whole
    network in bands of rows, so that no full-size feature map exists (at 1024² the whole-image maps
    peak at ~1.4 GB).  Each band's branch maps come from the band's input rows with a halo
    (:func:`pooled_band`); their interior rows feed the output conv band after band, and the 7 border
    rows at either side are kept for the end.  Every conv thus sees the same input rows as on the whole
    image, and each logit receives its taps in the same order (interior rows in increasing row order,
    then the top, then the bottom border rows), so the banded logits are bit-identical to the whole
    image's (tested at odd sizes with small bands).  A band's output conv spans at least 16 rows: over only
    a few output rows of a narrow map oneDNN takes another kernel, whose sums differ in the last bit.  The
    halos cost ~6 % more branch FLOPs at 1024².
    """
    import torch
    import torch.nn.functional as F

    weight = net.output.weight  # o × c × i × j
    n_out, n_in, kh, kw = weight.shape
    h, w = first.shape[-2:]
    hp, wp = (h + 1) // 2, (w + 1) // 2
    ho, wo = hp - kh + 1, wp - kw + 1
    if ho < 1 or wo < 1:
        with torch.no_grad():
            return net.output(torch.cat(net.branches(first, second), dim=1))
    taps = weight.permute(2, 0, 1, 3).reshape(kh * n_out, n_in, 1, kw)  # (i, o) × c × 1 × j
    half = n_in // 2
    k1, k2 = taps[:, :half].contiguous(), taps[:, half:].contiguous()
    out = torch.zeros(first.shape[0], n_out, ho, wo, dtype=first.dtype)

    def add_rows(f1: Any, f2: Any, base: int, y0: int, y1: int, i0: int, i1: int) -> None:
        # out[:, :, y - i] += the taps i0..i1-1 of input rows [y0, y1), both sources (row y of f is base + y)
        if y1 <= y0 or i1 <= i0:
            return
        taps_of = slice(i0 * n_out, i1 * n_out)
        g = F.conv2d(f1[:, :, y0 - base:y1 - base], k1[taps_of]).add_(F.conv2d(f2[:, :, y0 - base:y1 - base],
                                                                                k2[taps_of]))
        g = g.view(g.shape[0], i1 - i0, n_out, y1 - y0, wo)
        for t, i in enumerate(range(i0, i1)):
            lo, hi = max(y0, i), min(y1, i + ho)
            out[:, :, lo - i:hi - i] += g[:, t, :, lo - y0:hi - y0]

    def maps(r0: int, r1: int) -> tuple[Any, Any]:
        # both sources' branch maps, pooled rows [r0, r1), channels-last; the whole image as before banding
        if r0 > 0 or r1 < hp:
            return pooled_band(net, first, second, r0, r1)
        with torch.no_grad():  # the graph's bit-identical inference form
            whole = net.branches(first, second)
        return tuple(f.contiguous(memory_format=torch.channels_last) for f in whole)

    if ho <= kh - 1:  # very short maps (one band): every row with the taps that read it
        f1, f2 = maps(0, hp)
        for y in range(hp):
            add_rows(f1, f2, 0, y, y + 1, max(0, y - ho + 1), min(kh, y + 1))
        return out
    # the interior output rows [7, ho) in chunks of ≥ `step` rows (the last takes the remainder); each chunk's
    # branch maps come from one band, the first band also holding the top border rows, the last the bottom ones
    step = max(16, rows if rows is not None else band_rows((h, w)))
    chunks = fixed_bands(kh - 1, ho, step)
    top = bottom = None
    for c0, c1 in chunks:
        r0, r1 = (0 if c0 == kh - 1 else c0), (hp if c1 == ho else c1)
        f1, f2 = maps(r0, r1)
        add_rows(f1, f2, r0, c0, c1, 0, kh)  # the interior rows, read by every tap
        if r0 == 0:
            top = (f1[:, :, :kh - 1], f2[:, :, :kh - 1])
            if len(chunks) > 1:  # copies, so that the band's maps are freed
                top = tuple(t.clone(memory_format=torch.channels_last) for t in top)
        if r1 == hp:
            bottom = (f1[:, :, ho - r0:], f2[:, :, ho - r0:])
        del f1, f2
    for y in range(kh - 1):  # then each border row with only its own taps, as on the whole image
        add_rows(*top, 0, y, y + 1, 0, y + 1)
    for y in range(ho, hp):
        add_rows(*bottom, ho, y, y + 1, y - ho + 1, kh)
    return out


def mat_to_state_dict(mat: dict[str, np.ndarray]) -> dict[str, Any]:
    """Map the eight ``cnnmodel.mat`` arrays to the network's state dict (column-major kernels).

    Raises ``ValueError`` on a missing, extra or mis-shaped array.
    """
    import torch

    arrays = {k: v for k, v in mat.items() if not k.startswith("__")}
    if set(arrays) != set(_MAT_SHAPES):
        raise ValueError(f"cnnmodel.mat: expected arrays {sorted(_MAT_SHAPES)}, found {sorted(arrays)}")
    for k, shape in _MAT_SHAPES.items():
        if arrays[k].shape != shape:
            raise ValueError(f"cnnmodel.mat: {k} has shape {arrays[k].shape}, expected {shape}")

    def kernels(w: np.ndarray, k: int) -> Any:
        # MATLAB reshape(w(j, :, i), k, k) is column-major: tap r + k*c → kernel[r, c].
        if w.ndim == 2:
            w = w[None]
        cin, _, cout = w.shape
        k4 = w.reshape(cin, k, k, cout, order="F").transpose(3, 0, 1, 2)
        return torch.from_numpy(np.ascontiguousarray(k4, dtype=np.float32))

    def bias(b: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(b.ravel(), dtype=np.float32))

    return {
        "conv1.weight": kernels(arrays["weights_b1_1"], 3), "conv1.bias": bias(arrays["biases_b1_1"]),
        "conv2.weight": kernels(arrays["weights_b1_2"], 3), "conv2.bias": bias(arrays["biases_b1_2"]),
        "conv3.weight": kernels(arrays["weights_b1_3"], 3), "conv3.bias": bias(arrays["biases_b1_3"]),
        "output.weight": kernels(arrays["weights_output"], 8),
    }


def load_cnn_network(path: str | None = None) -> Any:
    """The siamese network with the official weights (strict), in eval mode."""
    from scipy.io import loadmat

    net = build_cnn_network()
    # weights_path verifies the cached file against its pinned sha256 at every load (memoised)
    net.load_state_dict(mat_to_state_dict(loadmat(path or weights_path("cnn_liu2017"))), strict=True)
    return net.eval()


def scores_to_weight_map(score: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Average the patch scores over every pixel their 16×16 stride-2 patch covers (``run_CNN.m``)."""
    h, w = shape
    grid = np.zeros((h + PATCH, w + PATCH))
    counts = np.zeros_like(grid)
    sh, sw = score.shape
    grid[: STRIDE * sh : STRIDE, : STRIDE * sw : STRIDE] = score
    counts[: STRIDE * sh : STRIDE, : STRIDE * sw : STRIDE] = 1.0

    def causal_box(x: np.ndarray) -> np.ndarray:
        # out[y, x] = sum of x[y - 15 .. y, x - 15 .. x]
        for axis in (0, 1):
            c = np.cumsum(x, axis=axis)
            shifted = np.zeros_like(c)
            idx = [slice(None)] * 2
            src = [slice(None)] * 2
            idx[axis] = slice(PATCH, None)
            src[axis] = slice(None, -PATCH)
            shifted[tuple(idx)] = c[tuple(src)]
            x = c - shifted
        return x

    return causal_box(grid)[:h, :w] / causal_box(counts)[:h, :w]


def _es2_box3(x: np.ndarray) -> np.ndarray:
    """3×3 box sum 'valid' over Rockinger's ``es2`` extension (mirror without edge repeat, zero corners)."""
    ext = np.pad(x, 1, mode="reflect")
    ext[0, 0] = ext[0, -1] = ext[-1, 0] = ext[-1, -1] = 0.0
    c = ext[:, :-2] + ext[:, 1:-1] + ext[:, 2:]
    return c[:-2] + c[1:-1] + c[2:]


def band_fuse(m1: np.ndarray, m2: np.ndarray, weight: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """Burt's match/salience rule of ``band_fuse.m`` (3×3 window): weighted average if matched, else max energy."""
    s1 = _es2_box3(m1 * m1)
    s2 = _es2_box3(m2 * m2)
    match = 2.0 * _es2_box3(m1 * m2) / (s1 + s2 + np.finfo(np.float64).eps)
    select = np.where(s1 > s2, m1, m2)
    return np.where(match > threshold, weight * m1 + (1.0 - weight) * m2, select)


def pyramid_levels(shape: tuple[int, ...]) -> int:
    """Mertens' default ``nlev = floor(log(min(r, c)) / log(2))``."""
    return int(np.floor(np.log(min(shape[0], shape[1])) / np.log(2)))


def fuse_with_map(first: np.ndarray, second: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Pyramid fusion of two H×W images with the weight map of ``first`` (one channel of ``run_CNN.m``)."""
    nlev = pyramid_levels(first.shape)
    pw = gaussian_pyramid(weight, nlev - 1, variant="mertens")
    p1 = laplacian_pyramid(np.asarray(first, np.float64), nlev - 1, variant="mertens")
    p2 = laplacian_pyramid(np.asarray(second, np.float64), nlev - 1, variant="mertens")
    return reconstruct_laplacian([band_fuse(x, y, w) for x, y, w in zip(p1, p2, pw)], variant="mertens")


@register_method(
    "cnn",
    display_name="CNN",
    family="deep",
    citation="Liu, Chen, Cheng, Peng, A medical image fusion method based on convolutional neural networks, "
    "Proc. 20th Int. Conf. Information Fusion (FUSION), 2017.",
    weights=("cnn_liu2017",),
    version="1",
    uses_torch=True,
    # the official model is that of Liu et al.'s multi-focus paper (Inf. Fusion 36, 2017), which the medical
    # paper reuses: 16x16 ImageNet patches against their Gaussian-blurred copies
    trained_for=("multi-focus",),
    trained_on="ImageNet patches and their blurred copies (the authors' multi-focus model)",
)
class CNN(TorchMethod):
    """Liu et al. 2017 CNN fusion with the official model (luma method; first source = ``b``).

    Any size and aspect ≥ 16×16 as is (the score map and the pyramid follow the
    image size, as ``run_CNN.m``); a smaller image (under one 16×16 patch) is
    reflect-padded at the bottom/right to 16 and the result cropped back.
    ``threads``: torch threads while fusing (see :class:`fusionbench.torch_method.TorchMethod`).
    """

    def __init__(self, threads: int | None = None) -> None:
        import torch

        super().__init__(threads=threads)
        self.network = load_cnn_network()
        self._torch = torch

    def torch_inputs(self, size: tuple[int, int] = (256, 256)) -> tuple[Any, ...]:
        """One forward pass's inputs for profiling: two 1×1×H×W tensors."""
        return (self._torch.rand(1, 1, *size), self._torch.rand(1, 1, *size))

    def torch_forward(self, first: Any, second: Any) -> Any:
        """The pass fusion runs (and :mod:`fusionbench.profile` times and counts): :func:`fast_logits`."""
        return fast_logits(self.network, first, second)

    def weight_map(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """The H×W weight map of ``first`` (grey float images in [0, 1])."""
        with self.inference():
            logits = fast_logits(self.network, as_tensor(first), as_tensor(second))
        z = logits[0].double().numpy()
        p1 = np.exp(z[0]) / (np.exp(z[0]) + np.exp(z[1]))
        return scores_to_weight_map(1.0 - p1, first.shape)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        shape = a.shape
        if min(shape) < PATCH:  # under one patch: reflect-pad to 16 (bottom/right), crop back
            pad = ((0, max(0, PATCH - shape[0])), (0, max(0, PATCH - shape[1])))
            a, b = np.pad(a, pad, mode="reflect" if min(shape) > 1 else "edge"), \
                np.pad(b, pad, mode="reflect" if min(shape) > 1 else "edge")
        w = self.weight_map(b, a)
        return crop(np.clip(fuse_with_map(b, a, w), 0.0, 1.0), shape)
