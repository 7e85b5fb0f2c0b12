"""The colour protocol, one module used by every method.

Convention (``docs/conventions.md``):

* luma is BT.601 *full range*: ``Y = 0.299 R + 0.587 G + 0.114 B`` on values in
  [0, 1] (scikit-image's ``rgb2gray`` uses BT.709 weights, so it is *not* this);
* a ``luma`` method fuses the luma of ``a`` with the luma of ``b`` (a grey image
  is its own luma); the result takes the chroma of the colour side
  (:func:`chroma_side`): ``C_RGB + (Y_fused - Y_C) * [1, 1, 1]``, clipped to
  [0, 1], where ``C`` is ``b`` when ``b`` is colour (PET/SPECT), else ``a`` when
  ``a`` is colour (a colour visible image in IR-VIS), else the result is grey.
  Adding the same amount to R, G and B keeps ``R - Y`` and ``B - Y``, so this is
  exactly "replace Y, keep Cb/Cr" of full-range YCbCr (before the clip);
* scores are computed on the fused luma (or grey), quantised to uint8 with
  round-half-to-even and clip (:func:`quantise`), against the lumas of ``a`` and ``b``.

Some baselines need other conversions (``../shared/notes/baselines.md`` §1.1):
studio-swing YCbCr exactly as MATLAB's ``rgb2ycbcr`` / ``ycbcr2rgb`` (used by
SDNet, MATR, SwinFusion's official scripts), provided here; MLEPF's HSV is Octave's
``rgb2hsv``/``hsv2rgb``, in ``methods/mlepf.py``.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

BT601 = np.array([0.299, 0.587, 0.114])

#: MATLAB ``rgb2ycbcr`` / ``ycbcr2rgb`` (BT.601 studio swing): the 3-decimal matrix and the offsets on the
#: [0, 255] scale, for R'G'B' in [0, 1] (also used as they are by the MATLAB ports, ``methods/_matlab.py``)
YCBCR_STUDIO_MATRIX_255 = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ]
)
YCBCR_STUDIO_OFFSET_255 = np.array([16.0, 128.0, 128.0])
# the same for values in [0, 1]: Y in [16, 235]/255, Cb/Cr in [16, 240]/255
_YCBCR_MATRIX = YCBCR_STUDIO_MATRIX_255 / 255.0
_YCBCR_OFFSET = YCBCR_STUDIO_OFFSET_255 / 255.0


def is_colour(image: np.ndarray) -> bool:
    """True for an H×W×3 array."""
    return image.ndim == 3 and image.shape[2] == 3


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 → float32 in [0, 1]; float input is returned as float32 unchanged."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255.0)
    return np.asarray(image, dtype=np.float32)


def rgb_to_luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 full-range luma of an H×W×3 image (same dtype family; uint8 → float in [0, 255])."""
    rgb = np.asarray(rgb)
    if not is_colour(rgb):
        raise ValueError(f"expected an H×W×3 image, got shape {rgb.shape}")
    work = rgb.astype(np.float64)
    return (work @ BT601).astype(np.float32 if rgb.dtype != np.float64 else np.float64)


def luma(image: np.ndarray) -> np.ndarray:
    """The luma of a colour image, or a grey image unchanged (float32 in [0, 1])."""
    image = to_float(image)
    return rgb_to_luma(image) if is_colour(image) else image


def merge_luma(fused_luma: np.ndarray, b_rgb: np.ndarray) -> np.ndarray:
    """Recolour: ``b_RGB + (Y_fused - Y_b)`` on every channel, clipped to [0, 1] (``b_rgb``: the colour source)."""
    b_rgb = to_float(b_rgb)
    delta = np.asarray(fused_luma, dtype=np.float32) - rgb_to_luma(b_rgb)
    return np.clip(b_rgb + delta[..., None], 0.0, 1.0).astype(np.float32)


def chroma_side(a: np.ndarray, b: np.ndarray) -> str | None:
    """Whose chroma a fused image takes: ``"b"`` if ``b`` is colour, else ``"a"`` if ``a`` is, else ``None``.

    ``b`` wins when both are colour: in the medical tasks the pseudo-colour of
    PET/SPECT carries the information, and the rule stays one rule for both tracks.
    """
    if is_colour(b):
        return "b"
    if is_colour(a):
        return "a"
    return None


def recolour(fused_luma: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The colour protocol's last step: fused luma → the output image in [0, 1] (float32).

    H×W×3 with the chroma of :func:`chroma_side` (via :func:`merge_luma`), or the
    fused luma itself (H×W) when both sources are grey.
    """
    side = chroma_side(a, b)
    if side is None:
        return np.asarray(fused_luma)
    return merge_luma(fused_luma, b if side == "b" else a)


def quantise(image: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] → uint8 with round (half to even) and clip; uint8 passes through.

    The clip is saturation (MATLAB's ``uint8``) of values a little outside [0, 1]; a method output on another
    scale never gets here (:func:`fusionbench.api.fuse_arrays` refuses it, ``FLOAT_OUTPUT_RANGE``)."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    return np.clip(np.round(image.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)


def luma_uint8(image: np.ndarray) -> np.ndarray:
    """The uint8 grey image that metrics see: grey as is, colour → quantised BT.601 luma."""
    image = np.asarray(image)
    if not is_colour(image):
        return quantise(image) if image.dtype != np.uint8 else image
    return quantise(rgb_to_luma(to_float(image)))


def rgb_to_ycbcr_studio(rgb: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` for float RGB in [0, 1] (BT.601 studio swing), output in [0, 1]."""
    rgb = to_float(rgb).astype(np.float64)
    return rgb @ _YCBCR_MATRIX.T + _YCBCR_OFFSET


def ycbcr_studio_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """MATLAB ``ycbcr2rgb`` for float YCbCr in [0, 1] (inverse of :func:`rgb_to_ycbcr_studio`), unclipped."""
    ycbcr = np.asarray(ycbcr, dtype=np.float64)
    return (ycbcr - _YCBCR_OFFSET) @ exact_inverse(_YCBCR_MATRIX).T


def exact_inverse(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a small square float matrix, each entry its exact value rounded once (rational Gauss-Jordan).

    For the colour conversions' ``inv``: LAPACK's inverse (``np.linalg.inv``, MATLAB/Octave ``inv``) rounds its
    last bits with the machine's BLAS kernels (OpenBLAS's SkylakeX and Haswell kernels give different bits for
    the 3×3 matrices used here), which would make a colour output depend on the CPU; this one does not.
    """
    rows = [[Fraction(float(v)) for v in row] for row in np.asarray(matrix, dtype=np.float64)]
    n = len(rows)
    if any(len(row) != n for row in rows):
        raise ValueError("expected a square matrix")
    work = [row + [Fraction(int(i == j)) for j in range(n)] for i, row in enumerate(rows)]
    for col in range(n):
        pivot = next((r for r in range(col, n) if work[r][col] != 0), None)
        if pivot is None:
            raise np.linalg.LinAlgError("singular matrix")
        work[col], work[pivot] = work[pivot], work[col]
        lead = work[col][col]
        work[col] = [v / lead for v in work[col]]
        for r in range(n):
            if r != col and work[r][col] != 0:
                factor = work[r][col]
                work[r] = [v - factor * w for v, w in zip(work[r], work[col])]
    return np.array([[float(v) for v in row[n:]] for row in work])
