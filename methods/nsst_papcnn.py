"""NSST-PAPCNN: parameter-adaptive pulse coupled neural network in the NSST domain.

Yin M., Liu X., Liu Y., Chen X., "Medical image fusion with parameter-adaptive pulse
coupled neural network in nonsubsampled shearlet transform domain", IEEE Transactions
on Instrumentation and Measurement 68(1), 49-64 (2019).  Official MATLAB code:
``yuliu316316/NSST-PAPCNN-Fusion`` (commit 04454e9, ``fuse_NSST_PAPCNN.m`` and the files
it calls); this is a clean re-implementation of that code's arithmetic.

Pipeline (``fuse_NSST_PAPCNN(A, B)``, both images ``double(uint8)/255``):

1. NSST of both images: ``'maxflat'`` pyramid, 4 levels, dcomp [3,3,4,4], dsize
   [8,8,16,16] (8, 8, 16, 16 directions, coarse → fine; the shared port
   :mod:`fusionbench.methods._transforms.nsst`, the same toolbox as CNP's).
2. Low band: choose-max of WSEML·WLE (``lowpass_fuse.m``; ``WSEML.m`` is CNP's INSML with the
   (1/16)[1 2 1; 2 4 2; 1 2 1] smoothing, ``WLE.m`` is CNP's), ties to A.
3. Each of the 48 directional bands (``highpass_fuse.m``): a PA-PCNN of 110 iterations on
   ``|c|`` of each image (:func:`pa_pcnn_firing_counts`), with its parameters set from that
   band (:func:`pa_pcnn_parameters`): σ = ``std2(|c|)``, S_max = ``max(|c|)``, S' =
   ``graythresh(|c|)`` (MATLAB's Otsu threshold, :func:`matlab_graythresh`); then A's coefficient
   where A's firing count ≥ B's, else B's.
4. Inverse NSST, ``uint8(F·255)`` (round half away from zero, saturate).

Input order and colour (the two official demos).  ``Script_gray.m`` fuses a grey pair with
the CT first (A = ``s01_CT``, B = ``s01_MRT2``): a grey ``b`` (CT, or IR in IR-VIS) goes
first here.  ``Script_color.m`` fuses the MRI (A) with the Y of the PET (B) in its own
analogue YUV (``ConvertRGBtoYUV.m``: Y = 0.299 R + 0.587 G + 0.114 B, U and V with the
coefficients −0.147/−0.289/0.436 and 0.615/−0.515/−0.100, on ``double(uint8)/255``, not
rounded), and returns ``uint8(255·YUV⁻¹(Y_F, U, V))`` with ``inv`` of that matrix (here its exact
inverse rounded once, the same on every CPU; Octave's ``inv`` differs by < 1e-16 and gives the same
images).  This method is registered with ``colour="own"`` and does exactly
that for a colour ``b``: the output is the official RGB image.

Fidelity (``tests/methods/test_nsst_papcnn.py``, ``docs/fidelity.md``): the official code was
run unchanged under GNU Octave 7.3 (``scripts/reference_runs/run_papcnn.m``, with a
``graythresh.m`` written from MATLAB's documented algorithm in place of Octave's); it
reproduces the repository's MATLAB result ``results/fused.tif`` bit for bit (checked once, when this
port was written; not pinned: that file is not among the shared assets), and this port
reproduces those Octave runs on every value of 63 cases (20 MRI-PET and 20 MRI-SPECT in colour,
20 MRI-CT, square crops of MRI-PET, MRI-CT and TNO; 9,428,032 values).

Speed: the PA-PCNN is a compiled per-band pass (numba, exact), the two images of a
direction on two threads; 96 maps of 110 iterations per pair: 0.66 s wall for a 256² pair,
4.8 s for a TNO pair (2-core machine, session 17; the official code under Octave: about 16 s).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from fusionbench.colour import is_colour
from fusionbench.method_registry import register_method

from ._matlab import float_to_uint8_image, rgb_to_yuv, to_uint8, yuv_to_rgb
from ._neural_p import wle_insml_rule
from ._planes import map_planes

CITATION = (
    "Yin M., Liu X., Liu Y., Chen X., Medical image fusion with parameter-adaptive pulse coupled neural "
    "network in nonsubsampled shearlet transform domain, IEEE Transactions on Instrumentation and "
    "Measurement 68(1), 49-64, 2019."
)

DCOMP = (3, 3, 4, 4)
DSIZE = (8, 8, 16, 16)
ITERATIONS = 110


# --------------------------------------------------------------------------- MATLAB scalar arithmetic
def _exp(x: float) -> float:
    """C ``exp`` (as MATLAB/Octave's scalar ``exp``), IEEE on overflow."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _log(x: float, log=math.log) -> float:
    """C ``log``/``log10`` with IEEE results at 0, ∞, NaN; NaN for negative x (MATLAB would go complex)."""
    if x > 0 and math.isfinite(x):
        return log(x)
    if x == 0:
        return -math.inf
    return math.inf if x == math.inf else math.nan


def octave_std(x: np.ndarray) -> float:
    """``std2(x)`` as Octave 7 computes it: ``sqrt(sumsq(x(:) − sum(x(:))/n)/(n − 1))``, every sum in order.

    ``x(:)`` is column-major; Octave's ``sum`` and ``sumsq`` add from the first element to the last
    (``np.cumsum`` adds in that order too).
    """
    v = np.asarray(x, dtype=np.float64).T.ravel()
    n = v.size
    if n < 2:
        return 0.0
    d = v - np.cumsum(v)[-1] / n
    return float(np.sqrt(np.cumsum(d * d)[-1] / (n - 1)))


def matlab_graythresh(x: np.ndarray) -> float:
    """MATLAB ``graythresh(x)`` for a double image: Otsu's threshold of the 256-bin histogram of ``im2uint8(x)``.

    MATLAB's algorithm (``otsuthresh``): p the normalised histogram, ω = cumsum(p), μ = cumsum(p·(1:256)),
    σ_b² = (μ_T·ω − μ)² / (ω·(1 − ω)); the level is ``(mean(find(σ_b² == max σ_b²)) − 1)/255``, or 0 when
    the maximum is not finite.  (Octave's own ``graythresh`` computes the class means separately; the
    level is the same up to rounding at ties.)
    """
    counts = np.bincount(to_uint8(np.asarray(x, dtype=np.float64) * 255.0).ravel(), minlength=256).astype(np.float64)
    p = counts / counts.sum()
    omega = np.cumsum(p)
    mu = np.cumsum(p * np.arange(1, 257, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma_b2 = (mu[-1] * omega - mu) ** 2 / (omega * (1.0 - omega))
    finite = sigma_b2[~np.isnan(sigma_b2)]
    if finite.size == 0 or not np.isfinite(maxval := finite.max()):
        return 0.0
    idx = np.flatnonzero(sigma_b2 == maxval) + 1
    return float((idx.sum() / idx.size - 1) / 255)


def pa_pcnn_parameters(magnitude: np.ndarray) -> tuple[float, float, float, float]:
    """The adaptive parameters of ``highpass_fuse.m`` for one band: ``(e^{−α_f}, λ, e^{−α_e}, V_E)``.

    With σ = ``std2``, S = max and S' = ``graythresh`` of ``|c|``:
    α_f = log10(1/σ), λ = (S/S' − 1)/6, V_E = e^{−α_f} + S/S',
    m = (1 − e^{−3α_f})/(1 − e^{−α_f}) + (S/S' − 1)·e^{−α_f}, α_e = ln(V_E/(S'·m)),
    in the official order of operations (float64 scalars; ``exp``/``log`` from the C library).
    """
    f64 = np.float64
    sigma = f64(octave_std(magnitude))
    s_max = f64(np.max(magnitude))
    s_thr = f64(matlab_graythresh(magnitude))
    with np.errstate(all="ignore"):
        alpha_f = f64(_log(float(f64(1.0) / sigma), math.log10))
        ratio = s_max / s_thr
        lam = (ratio - f64(1.0)) / f64(6)
        decay_f = f64(_exp(float(-alpha_f)))
        v_e = decay_f + ratio
        m = ((f64(1.0) - f64(_exp(float(f64(-3.0) * alpha_f)))) / (f64(1.0) - decay_f)
             + (ratio - f64(1.0)) * decay_f)
        alpha_e = f64(_log(float(v_e / (s_thr * m))))
        decay_e = f64(_exp(float(-alpha_e)))
    return float(decay_f), float(lam), float(decay_e), float(v_e)


@lru_cache(maxsize=None)
def _plane_kernel():
    """The compiled one-band PA-PCNN (numba; compiled on first use, cached on disk)."""
    from ._papcnn_kernels import pa_pcnn_plane

    return pa_pcnn_plane


def pa_pcnn_firing_counts(coefficients: np.ndarray, iterations: int = ITERATIONS) -> np.ndarray:
    """Firing counts T of ``PA_PCNN.m`` on one band (stimulus F = |c|, parameters from F).

    Per step, with K = conv2(Y, [0.5 1 0.5; 1 0 1; 0.5 1 0.5], 'same') of the previous firing map:
    U ← e^{−α_f}·U + F·(1 + λK);  Y = U > E;  E ← e^{−α_E}·E + V_E·Y;  T ← T + Y
    (U = Y = T = 0, E = 1 at the start), each in the official order of operations; K is exact.
    """
    mag = np.abs(np.asarray(coefficients, dtype=np.float64))
    if mag.ndim != 2:
        raise ValueError(f"expected one 2-D band, got shape {mag.shape}")
    counts = np.empty_like(mag)
    _plane_kernel()(np.ascontiguousarray(mag), int(iterations), *pa_pcnn_parameters(mag), counts)
    return counts


def highpass_rule(c1: np.ndarray, c2: np.ndarray, iterations: int = ITERATIONS) -> np.ndarray:
    """``highpass_fuse.m``: c1 where its PA-PCNN fires at least as often as c2's, else c2."""
    bands = (np.asarray(c1, dtype=np.float64), np.asarray(c2, dtype=np.float64))
    counts: list[np.ndarray | None] = [None, None]

    def run(i: int) -> None:
        counts[i] = pa_pcnn_firing_counts(bands[i], iterations)

    map_planes(run, 2)
    return np.where(counts[0] >= counts[1], bands[0], bands[1])


def lowpass_rule(low1: np.ndarray, low2: np.ndarray) -> np.ndarray:
    """``lowpass_fuse.m``: choose-max of WSEML·WLE (CNP's INSML smoothing), ties to ``low1``."""
    return wle_insml_rule(low1, low2, "cnp")


def fuse_nsst_papcnn(img1: np.ndarray, img2: np.ndarray, *, iterations: int = ITERATIONS) -> np.ndarray:
    """``fuse_NSST_PAPCNN(A, B)`` on float64 images in [0, 1]; returns the reconstructed double image."""
    from ._transforms.nsst import nsst_fuse

    # the band rule needs a whole band (its parameters are statistics of the band): context_rows=None
    return nsst_fuse(img1, img2, lowpass_rule, lambda b1, b2: highpass_rule(b1, b2, iterations), DCOMP, DSIZE,
                     "maxflat", context_rows=None)


@register_method(
    "nsst_papcnn",
    display_name="NSST-PAPCNN",
    family="pcnn",
    citation=CITATION,
    colour="own",
    deterministic=True,
    version="1",
    params={"iterations": ITERATIONS},
)
def nsst_papcnn(a: np.ndarray, b: np.ndarray, *, iterations: int = ITERATIONS) -> np.ndarray:
    """NSST-PAPCNN, the official ``Script_gray.m`` / ``Script_color.m`` arithmetic; returns uint8.

    ``a``: the MRI or visible image, ``b``: CT/IR (H×W) or PET/SPECT (H×W×3); floats in [0, 1] read as
    ``double(uint8)/255``.  Grey pair: ``fuse(b, a)`` as ``Script_gray.m`` (CT first), H×W out.  Colour
    ``b``: ``fuse(a, Y_b)`` in the official YUV as ``Script_color.m``, H×W×3 out with ``b``'s U and V.
    A colour visible ``a`` (not in the official demos) goes the same way with the roles kept:
    ``fuse(b, Y_a)`` (the grey image first, as in ``Script_gray.m``) and ``a``'s U and V; when both are
    colour, ``a`` enters as its Y and ``b``'s chroma is kept (the suite's colour rule).
    """
    first = float_to_uint8_image(a) / 255.0
    second = float_to_uint8_image(b) / 255.0
    if is_colour(second):
        yuv = rgb_to_yuv(second)
        anatomical = rgb_to_yuv(first)[..., 0] if is_colour(first) else first
        yuv[..., 0] = fuse_nsst_papcnn(anatomical, yuv[..., 0], iterations=iterations)
    elif is_colour(first):
        yuv = rgb_to_yuv(first)
        yuv[..., 0] = fuse_nsst_papcnn(second, yuv[..., 0], iterations=iterations)
    else:
        return to_uint8(fuse_nsst_papcnn(second, first, iterations=iterations) * 255.0)
    return to_uint8(yuv_to_rgb(yuv) * 255.0)
