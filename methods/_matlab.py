"""Small MATLAB-compatible building blocks shared by the LEGFF, MLEPF, MDL, SDNet and NSST-PAPCNN ports.

Only what those official codes need, each written to reproduce MATLAB's
arithmetic (rounding rule, border handling, structuring-element shape), because
the ports are checked bit for bit against the official code run under Octave
(``../shared/official/octave_runs/MANIFEST.md``).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from fusionbench.colour import YCBCR_STUDIO_MATRIX_255 as _YCBCR_T
from fusionbench.colour import YCBCR_STUDIO_OFFSET_255 as _YCBCR_OFFSET
from fusionbench.colour import exact_inverse


def to_uint8(x: np.ndarray) -> np.ndarray:
    """MATLAB ``uint8(x)``: round half away from zero, saturate to [0, 255]; NaN → 0."""
    x = np.asarray(x, dtype=np.float64)
    out = np.where(x >= 0, np.floor(x + 0.5), np.ceil(x - 0.5))
    out = np.nan_to_num(out, nan=0.0)
    return np.clip(out, 0, 255).astype(np.uint8)


def float_to_uint8_image(x: np.ndarray) -> np.ndarray:
    """The uint8 image behind a float image in [0, 1] made by ``k / 255`` (exact round trip)."""
    return np.clip(np.round(np.asarray(x, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def _lincomb_uint8(coeffs: np.ndarray, planes: np.ndarray, offset: float) -> np.ndarray:
    """MATLAB ``imlincomb(k1, A1, k2, A2, k3, A3, offset)`` for uint8 planes: double sum, uint8()."""
    acc = coeffs[0] * planes[..., 0].astype(np.float64)
    acc = acc + coeffs[1] * planes[..., 1]
    acc = acc + coeffs[2] * planes[..., 2]
    return to_uint8(acc + offset)


def rgb2ycbcr_uint8(rgb: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` on a uint8 H×W×3 image (``imlincomb`` per plane, uint8 out)."""
    t = _YCBCR_T / 255.0
    return np.stack([_lincomb_uint8(t[p], rgb, _YCBCR_OFFSET[p]) for p in range(3)], axis=-1)


def ycbcr2rgb_uint8(ycbcr: np.ndarray) -> np.ndarray:
    """MATLAB ``ycbcr2rgb`` on a uint8 H×W×3 image (the inverse of the 3-decimal matrix, uint8 out).

    The inverse is :func:`fusionbench.colour.exact_inverse` (the same on every CPU), not LAPACK's.
    """
    tinv = exact_inverse(_YCBCR_T)
    t = 255.0 * tinv
    offset = 255.0 * tinv @ _YCBCR_OFFSET
    return np.stack([_lincomb_uint8(t[p], ycbcr, -offset[p]) for p in range(3)], axis=-1)


#: the analogue YUV of ``ConvertRGBtoYUV.m`` (Yu Liu's codes: NSST-PAPCNN-Fusion; also MDLatLRRv2): rows Y, U, V
ANALOGUE_YUV = np.array([[0.299, 0.587, 0.114],
                         [-0.147, -0.289, 0.436],
                         [0.615, -0.515, -0.100]])


def rgb_to_yuv(rgb: np.ndarray) -> np.ndarray:
    """``ConvertRGBtoYUV.m`` on a double H×W×3 image: each plane ``R·m1 + G·m2 + B·m3``, in that order."""
    r, g, b = (rgb[..., i] for i in range(3))
    return np.stack([r * m[0] + g * m[1] + b * m[2] for m in ANALOGUE_YUV], axis=-1)


def yuv_to_rgb(yuv: np.ndarray) -> np.ndarray:
    """``ConvertYUVtoRGB.m``: the same sums with the inverse of :data:`ANALOGUE_YUV`.

    The official ``inv`` (LAPACK) rounds with the BLAS kernels of the machine; the exact inverse rounded once
    (:func:`fusionbench.colour.exact_inverse`) is the same on every CPU (docs/fidelity.md, NSST-PAPCNN).
    """
    y, u, v = (yuv[..., i] for i in range(3))
    return np.stack([y * m[0] + u * m[1] + v * m[2] for m in exact_inverse(ANALOGUE_YUV)], axis=-1)


def entropy_uint8(img: np.ndarray) -> float:
    """MATLAB ``entropy`` of a uint8 image: 256-bin histogram, log2, empty bins dropped.

    Reference implementation kept for the tests (LEGFF's compiled ``legff._entropy_of_uint8`` equals it).
    """
    counts = np.bincount(np.asarray(img, dtype=np.uint8).ravel(), minlength=256).astype(np.float64)
    p = counts[counts > 0] / img.size
    return float(-np.sum(p * np.log2(p)))


@lru_cache(maxsize=None)
def disk_footprint(radius: int) -> np.ndarray:
    """``strel('disk', r, 0)``: the true Euclidean disk x² + y² ≤ r² (a (2r+1)² bool array), which is
    :func:`skimage.morphology.disk` (the same array for every radius 0–59, checked)."""
    from skimage.morphology import disk

    return disk(radius, dtype=bool)


def strel_disk_params(radius: int, n: int = 4) -> tuple[int, int]:
    """MATLAB ``strel('disk', R)`` (default N = 4) as two periodic-line half-lengths.

    MATLAB builds the disk as the Minkowski sum of four periodic lines along
    (1,0), (0,1), (1,1), (−1,1), each with ``floor(k/|v|)`` repetitions,
    ``k = 2R / (cot(π/8) + 1/sin(π/8))``, plus — when that falls short of R —
    a horizontal and a vertical line of length ``2(R − reach − 1) + 1``
    (Adams 1993; Jones & Soille 1996).  Lines along an axis merge with the
    periodic line of step 1 on that axis, so the shape is
    ``PL(a, (1,0)) ⊕ PL(a, (0,1)) ⊕ PL(d, (1,1)) ⊕ PL(d, (−1,1))``; this returns
    ``(a, d)``.  R < 3 is MATLAB's true disk and is not handled here.
    """
    if n != 4 or radius < 3:
        raise ValueError("only the default N = 4 decomposition for R >= 3 is implemented")
    theta = np.pi / (2 * n)
    k = 2 * radius / (1 / np.tan(theta) + 1 / np.sin(theta))
    axis = int(np.floor(k))
    diag = int(np.floor(k / np.sqrt(2)))
    reach = axis + 2 * diag  # largest row offset of the four periodic lines
    length = 2 * (radius - reach - 1) + 1
    if length >= 3:
        axis += (length - 1) // 2
    return axis, diag


def strel_disk_footprint(radius: int) -> np.ndarray:
    """The neighbourhood of MATLAB ``strel('disk', R)`` (N = 4), as a bool array.

    Reference implementation kept for the tests (MLEPF's incremental MLMG, built from :func:`strel_disk_params`,
    against direct morphology with this footprint).
    """
    axis, diag = strel_disk_params(radius)
    ext = axis + 2 * diag
    fp = np.zeros((2 * ext + 1, 2 * ext + 1), dtype=bool)
    fp[ext, ext] = True
    for (dy, dx), p in (((1, 0), axis), ((0, 1), axis), ((1, 1), diag), ((-1, 1), diag)):
        for _ in range(p):
            fp = fp | np.roll(fp, (dy, dx), (0, 1)) | np.roll(fp, (-dy, -dx), (0, 1))
    return fp
