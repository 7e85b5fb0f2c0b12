"""LEGFF: local-extreme-map guided multi-modal brain image fusion.

Zhang Y., Xiang W., Zhang S., Shen J., Wei R., Bai X., Zhang L., Zhang Q.,
"Local extreme map guided multi-modal brain image fusion", Frontiers in
Neuroscience 16, 1055451 (2022).  Official MATLAB code: ``uzeful/LEGFF``
(commit ae0ccee, ``Main.m`` + ``imleguidedfilter.m``); this is a clean
re-implementation of that code's arithmetic.

Algorithm (per source, five scales r = 3, 5, 7, 9, 11, the current background
cast to uint8 — round half away from zero, saturate — at every scale):

1. m = grey erosion by the true disk of radius r (``strel('disk', r, 0)``);
2. f = guided filter of the image with guide m (r×r box means, replicate border,
   ε = 0.01 on the 0–255 scale, MATLAB ``imguidedfilter`` defaults);
3. M = grey dilation of f by the same disk; f' = guided filter of f with guide M;
4. feature = image − f', new background = f'.

Bright parts (max(feature, 0)) are fused by the elementwise max, dark parts by
the elementwise min; each scale is weighted by the entropy of its uint8 fused
map divided by the smallest entropy; the bases are fused by max (medical) or by
the official mean-offset rule (``base="mean_offset"``, the official IR/visible
setting, variant ``legff.ivf``).

Colour (``colour='own'``, exactly as ``Main.m``): with a colour functional image
both sources go through MATLAB's uint8 ``rgb2ycbcr`` (studio swing; the grey MRI
is replicated to RGB), the Y planes are fused, each chroma plane is the
|C − 127.5|-weighted average of both sources' chroma, and MATLAB's uint8
``ycbcr2rgb`` converts back.  Grey pairs (CT) are fused on the grey values.

Fidelity (``tests/methods/test_legff.py``, ``docs/fidelity.md``): bit-exact
(PSNR inf, MAD 0, 100 % of values exact) against all 27 official medical outputs
of ``Results/`` (CT/PET/SPECT-MRI), all 20 official IR/visible outputs
(``legff.ivf``), the 6 Octave runs of the official code on Harvard pairs, and 7
non-square cases (crops of MRI-PET, MRI-SPECT, MRI-CT and TNO, and two whole TNO pairs)
on which the official ``Main.m`` was run here under Octave.
"""
from __future__ import annotations

import numpy as np

from fusionbench.method_registry import register_method

from ._boxfilter import uniform_nearest
from ._morphology import disk_dilation, disk_erosion

from ._matlab import (
    float_to_uint8_image,
    rgb2ycbcr_uint8,
    to_uint8,
    ycbcr2rgb_uint8,
)

_EPS = np.finfo(np.float64).eps  # MATLAB eps
_GF_EPS = 0.01  # imguidedfilter DegreeOfSmoothing for a double guide: 0.01 * diff([0, 1])**2


def _box(x: np.ndarray, size: int) -> np.ndarray:
    """Mean over a size×size window with replicate padding (``imboxfilt`` default).

    ``ndimage.uniform_filter(x, size, mode="nearest")``, bit for bit, compiled (:mod:`._boxfilter`).
    """
    return uniform_nearest(x, size)


def guided_filter(image: np.ndarray, guide: np.ndarray, size: int, eps: float = _GF_EPS) -> np.ndarray:
    """He et al.'s guided filter as MATLAB ``imguidedfilter(image, guide, 'NeighborhoodSize', size)``.

    One compiled sweep over the rows (:func:`._boxfilter_kernels.guided_nearest`, issue 23 session 9):
    the operations of :func:`guided_filter_whole` value for value, without its ten full-size temporaries
    (at 1024² each a fresh allocation that the kernel page-faults in at every call).
    """
    image = np.ascontiguousarray(image, dtype=np.float64)
    guide = np.ascontiguousarray(guide, dtype=np.float64)
    if size < 3 or size % 2 == 0 or image.shape != guide.shape or image.ndim != 2 or not image.size:
        return guided_filter_whole(image, guide, size, eps)
    from ._boxfilter_kernels import guided_nearest

    return guided_nearest(image, guide, int(size), float(eps), np.empty_like(image))


def guided_filter_whole(image: np.ndarray, guide: np.ndarray, size: int, eps: float = _GF_EPS) -> np.ndarray:
    """:func:`guided_filter` on whole images (numpy, box means of :mod:`._boxfilter`); the reference."""
    mean_g = _box(guide, size)
    mean_i = _box(image, size)
    var_g = _box(guide * guide, size) - mean_g * mean_g
    cov_gi = _box(guide * image, size) - mean_g * mean_i
    a = cov_gi / (var_g + eps)
    b = mean_i - a * mean_g
    return _box(a, size) * guide + _box(b, size)


def local_extreme_guided_filter(img: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """``imleguidedfilter``: (feature, filtered background) of a uint8 image at scale r."""
    image = img.astype(np.float64)
    # grey erosion/dilation by the true disk strel('disk', r, 0), row by row (bit-identical to
    # ndimage.grey_erosion with the disk footprint); 'nearest' borders equal MATLAB's ±Inf padding
    # for a disk (the clipped offsets stay in the disk).
    low = disk_erosion(image, r, mode="nearest")
    filtered = guided_filter(image, low, r)
    high = disk_dilation(filtered, r, mode="nearest")
    filtered = guided_filter(filtered, high, r)
    return image - filtered, filtered


def _uint8(x: np.ndarray) -> np.ndarray:
    """MATLAB ``uint8(x)`` (:func:`._matlab.to_uint8`, same levels) in one compiled pass for 2-D float images.

    The numpy version makes five full-size temporaries: at 1024² 11.5 ms a call against 0.26 ms at 256²
    (2.8× a pixel); LEGFF converts 20 maps a fusion.
    """
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x
    if x.ndim != 2:
        return to_uint8(x)
    from ._legff_kernels import to_uint8 as compiled

    return compiled(np.ascontiguousarray(x, dtype=np.float64), np.empty(x.shape, np.uint8))


def _entropy_of_uint8(x: np.ndarray, negate: bool = False) -> float:
    """``entropy_uint8(to_uint8(-x if negate else x))`` without the uint8 image: its histogram, then the same sum."""
    from ._legff_kernels import uint8_histogram

    counts = uint8_histogram(np.ascontiguousarray(x, dtype=np.float64), negate, np.zeros(256, np.int64))
    counts = counts.astype(np.float64)
    p = counts[counts > 0] / x.size
    return float(-np.sum(p * np.log2(p)))


def fuse_grey(img1: np.ndarray, img2: np.ndarray, *, scales: int = 5, base: str = "max") -> np.ndarray:
    """LEGFF on two uint8 grey images; returns the fused image as double (before ``uint8``)."""
    bg1, bg2 = img1, img2
    bright, dark = [], []
    en_b, en_d = [], []
    for j in range(1, scales + 1):
        r = 2 * j + 1
        f1, bg1 = local_extreme_guided_filter(_uint8(bg1), r)
        f2, bg2 = local_extreme_guided_filter(_uint8(bg2), r)
        b = np.maximum(np.maximum(f1, 0), np.maximum(f2, 0))
        d = np.minimum(np.minimum(f1, 0), np.minimum(f2, 0))
        bright.append(b)
        dark.append(d)
        en_b.append(_entropy_of_uint8(b))
        en_d.append(_entropy_of_uint8(d, negate=True))
    w_b = (np.array(en_b) + _EPS) / (min(en_b) + _EPS)
    w_d = (np.array(en_d) + _EPS) / (min(en_d) + _EPS)
    fb = 0.0
    fd = 0.0
    for j in range(scales):
        fb = fb + w_b[j] * bright[j]
        fd = fd + w_d[j] * dark[j]
    if base == "max":
        fbase = np.maximum(bg1, bg2)
    elif base == "mean_offset":
        m1, m2 = bg1.mean(), bg2.mean()
        d1, d2 = bg1 - m1, bg2 - m2
        fbase = max(m1, m2) + np.maximum(np.maximum(d1, d2), 0) + np.minimum(np.minimum(d1, d2), 0)
    else:
        raise ValueError(f"base must be 'max' or 'mean_offset', not {base!r}")
    return fb + fd + fbase


def _chroma_average(c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    c1 = c1.astype(np.float64)
    c2 = c2.astype(np.float64)
    w1, w2 = np.abs(c1 - 127.5), np.abs(c2 - 127.5)
    return (c1 * w1 + c2 * w2) / (w1 + w2)


def legff_uint8(img1: np.ndarray, img2: np.ndarray, *, scales: int = 5, base: str = "max") -> np.ndarray:
    """``Main.m`` on uint8 inputs: img1 (MRI / visible) and img2 (functional / IR), each grey or RGB; returns uint8.

    The official colour branch (image 2 RGB, the grey image 1 replicated to RGB) is used
    whenever either image is colour: a colour visible ``img1`` with a grey infrared ``img2``
    takes the same rule with the grey side replicated (its Cb = Cr = 128 carry almost no
    weight in the |C − 127.5| chroma average, so the result keeps the visible chroma).
    """
    if img2.ndim == 3 or img1.ndim == 3:
        rgb1 = img1 if img1.ndim == 3 else np.repeat(img1[..., None], 3, axis=2)
        rgb2 = img2 if img2.ndim == 3 else np.repeat(img2[..., None], 3, axis=2)
        ycc1 = rgb2ycbcr_uint8(rgb1)
        ycc2 = rgb2ycbcr_uint8(rgb2)
        y = _uint8(fuse_grey(ycc1[..., 0], ycc2[..., 0], scales=scales, base=base))
        cb = _uint8(_chroma_average(ycc1[..., 1], ycc2[..., 1]))
        cr = _uint8(_chroma_average(ycc1[..., 2], ycc2[..., 2]))
        return ycbcr2rgb_uint8(np.stack([y, cb, cr], axis=-1))
    return _uint8(fuse_grey(img1, img2, scales=scales, base=base))


_CITATION = (
    "Zhang Y. et al., Local extreme map guided multi-modal brain image fusion, "
    "Frontiers in Neuroscience 16:1055451, 2022. Code: github.com/uzeful/LEGFF"
)


@register_method("legff.ivf", display_name="LEGFF (IR/VIS)", family="edge-preserving", citation=_CITATION,
                 colour="own", version="1", params={"base": "mean_offset"}, tasks=("IR-VIS",),
                 description="LEGFF with the official infrared/visible base rule (mean offset)")
@register_method("legff", display_name="LEGFF", family="edge-preserving", citation=_CITATION,
                 colour="own", version="1", params={"base": "max"})
def legff(a: np.ndarray, b: np.ndarray, *, base: str = "max", scales: int = 5) -> np.ndarray:
    """LEGFF (official ``Main.m`` arithmetic); ``a`` MRI/visible, ``b`` functional/IR, grey or RGB, floats in [0, 1].

    Returns uint8 (H×W, or H×W×3 when ``a`` or ``b`` is colour).  The inputs are taken as
    the uint8 images they came from (``round(255·x)``), as the official code reads them.
    """
    img1 = float_to_uint8_image(a)
    img2 = float_to_uint8_image(b)
    return legff_uint8(img1, img2, scales=scales, base=base)
