"""Human-visual-system metrics: VIFp_sum, VIFF, Qcb, Qcv.

Sources: Sheikh & Bovik's pixel-domain VIF as used by Tang (``vifp_mscale.m``)
and CDDFuse (``Evaluator.VIFF``); Han, Cai, Cao & Xu 2013 VIFF (MEFB
``metricsVIF.m``); Chen & Blum and Chen & Varshney from Liu's toolbox
(VIFB/MEFB ``metricsQcb.m``/``metricsQcv.m``).  Vectorised: the VIF window
statistics use the compiled separable filter (``_ssim_fast``) and a compiled
per-pixel kernel (``_vif_kernels``); the HVS filters use FFTs.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .._input import prepare, undefined
from . import _libm
from ._filters import gaussian_1d
from ._options import FLAG, option
from ._threads import fft_workers
from .gradient import _sobel
from .information import stretch
# the compiled (numba) kernels are imported in the functions that run them: importing this module, as loading the
# metric registry does in every CLI command and worker, then imports no numba (tests/test_imports.py)


def _gsm_stats(A: np.ndarray, B: np.ndarray, dist: np.ndarray):
    """4-scale Gaussian scale-mixture model statistics of the references A and B against ``dist``.

    Scale s uses an N×N Gaussian window, N = 2^(5−s)+1, σ = N/5, 'valid'
    filtering and 2× decimation before scales 2–4, exactly as ``vifp_mscale.m``.
    The per-pixel model terms (gain, residual variance, the reference's masked
    assignments and the log10 information terms) are evaluated by the compiled
    kernels of ``_vif_kernels`` (``gsm_log_args``, ``viff_log_args``); the window
    statistics do not depend on σ_n², so VIFp_sum and VIFF share them.
    Returns (σ_ref², σ_dist², σ_ref,dist) per scale; cached within ``evaluate``.
    """
    from .._cache import cached

    return cached(("gsm", id(A), id(B), id(dist)), lambda: _gsm_stats_compute(np.stack([A, B]), dist), A, B, dist)


def _sep_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``_filters.sep_valid`` by the compiled separable filter (the same sums in the same order)."""
    from ._ssim_fast import sep_filter
    return sep_filter(x, g, valid=True)


def _gsm_stats_compute(refs: np.ndarray, dist: np.ndarray):
    """Per scale: Gaussian-window (σ_ref², σ_dist², σ_ref,dist) of ``refs`` (k, H, W) against ``dist``.

    'valid' separable filtering as ``filter2`` in ``vifp_mscale.m``, by the
    compiled separable filter (``_ssim_fast.sep_filter``, bit-for-bit
    ``ndimage``; direct filtering costs the same per pixel at every size and is
    ~3x faster than the FFT filtering used before at 256², values moved by
    ~1e-15 relative).  The images are centred on their means first.  The
    statistics are shift-invariant in exact arithmetic, but not in floating
    point: in a region of grey level 0 (the Harvard images' black background)
    the uncentred window moments are exactly 0, the centred ones (at a level of
    about −mean) are the round-off of E[x²] − μ², which moves some windows
    across the model's 1e-10 thresholds.  That centring is the whole cause of
    the 1.0e-9 to 4.0e-9 relative deviation of VIFp_sum from Tang and CDDFuse on
    the Harvard triples and crops (a port of ``vifp_mscale.m`` without it agrees
    to ≤ 3.3e-14, with it to the same 1e-9; synthetic triples, without a level-0
    region, agree to 1.6e-14).  Kept, because the committed report's VIFp_sum
    values were computed with it (docs/metrics.md).  Maps are filtered one at a time so that no temporary is
    larger than a few image planes (large short-lived arrays cost page faults).
    """
    stack = np.concatenate([refs, dist[None]])
    stack -= stack.mean(axis=(-2, -1), keepdims=True)
    k = refs.shape[0]
    out = []
    filt = _sep_valid
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        g = gaussian_1d(n, n / 5.0)
        if scale > 1:  # = sep_valid_decimate(stack, g), bit for bit (the compiled filter, every sample)
            stack = np.ascontiguousarray(filt(stack, g)[..., ::2, ::2])
        mu = filt(stack, g)
        d, mu_d = stack[k], mu[k]
        shape = mu_d.shape
        s11 = np.empty((k,) + shape)
        s12 = np.empty((k,) + shape)
        for i in range(k):
            r, mu_r = stack[i], mu[i]
            np.subtract(filt(r * r, g), mu_r * mu_r, out=s11[i])
            np.subtract(filt(r * d, g), mu_r * mu_d, out=s12[i])
        s22 = np.subtract(filt(d * d, g), mu_d * mu_d)
        out.append((s11, s22, s12))
    return out


def vifp_sum(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, data_range: float | None = None) -> float:
    """VIFp_sum: VIFp(A,F) + VIFp(B,F), Sheikh–Bovik pixel-domain VIF (σ_n² = 2), summed.

    The "VIF" of Tang's tables and the "VIFF" of CDDFuse's code (not Han's VIFF).
    Range [0, 2] in practice (can exceed 1 per source for contrast-enhanced F).
    A source with no variance at any scale gives 1 for its term (as CDDFuse does for NaN).
    """
    from ._vif_kernels import gsm_log_args
    f, A, B = prepare(fused, a, b, data_range=data_range)
    if min(f.shape) < 41:
        return undefined("VIF needs images of at least 41x41 pixels")
    num = np.zeros(2)
    den = np.zeros(2)
    for s11, s22, s12 in _gsm_stats(A, B, f):
        n_, d_ = np.empty_like(s11), np.empty_like(s11)
        gsm_log_args(s11, s22, s12, 2.0, n_, d_)
        num += np.log10(n_, out=n_).sum(axis=(1, 2))
        den += np.log10(d_, out=d_).sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        v = num / den
    v = np.where(np.isnan(v), 1.0, v)
    return float(v.sum())


VIFF_WEIGHTS = np.array([1.0, 0.0, 0.15, 1.0]) / 2.15


def viff(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, data_range: float | None = None) -> float:
    """VIFF (Han, Cai, Cao & Xu 2013), MEFB ``metricsVIF.m``.

    4-scale GSM with σ_n² = 0.005·255²; at each position the source with the
    smaller gain g is kept; per scale Σ(VID + C)/Σ(VIND + C), C = 1e-7;
    scale weights (1, 0, 0.15, 1)/2.15.
    Not symmetric in A and B: where the gains tie (in practice both 0: F flat in the
    window or anti-correlated with both sources) B's terms are kept, as MEFB does, and
    B's variance enters the denominator (relative effect of a swap: 0 to 1e-2 measured,
    docs/metrics.md "Source order").
    """
    from ._vif_kernels import viff_log_args
    f, A, B = prepare(fused, a, b, data_range=data_range)
    if min(f.shape) < 41:
        return undefined("VIFF needs images of at least 41x41 pixels")
    C = 1e-7
    scores = []
    for s11, s22, s12 in _gsm_stats(A, B, f):
        z, m = np.empty_like(s22), np.empty_like(s22)
        viff_log_args(s11, s22, s12, 0.005 * 255 * 255, z, m)
        z = np.log10(z, out=z)
        m = np.log10(m, out=m)
        scores.append((z + C).sum() / (m + C).sum())
    return float(np.dot(scores, VIFF_WEIGHTS))


def _freqspace(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB ``freqspace(shape, 'meshgrid')``: (u, v), u along columns."""
    f1 = (np.arange(shape[0]) - np.floor(shape[0] / 2)) * (2.0 / shape[0])
    f2 = (np.arange(shape[1]) - np.floor(shape[1] / 2)) * (2.0 / shape[1])
    u, v = np.meshgrid(f2, f1)
    return u, v


@lru_cache(maxsize=8)
def _qcb_csf(shape: tuple[int, int]) -> np.ndarray:
    """Qcb's CSF exp(−(r/f0)²) − a·exp(−(r/f1)²) on ``freqspace`` with r scaled by size/30, ``ifftshift``-ed."""
    hang, lie = shape
    u, v = _freqspace(shape)
    r = np.sqrt((lie / 30.0 * u) ** 2 + (hang / 30.0 * v) ** 2)
    # exp by the C library: numpy's SIMD exp differs in the last bit between CPUs, and Qcb's contrast
    # ratios amplify that in black backgrounds (docs/cpu_independence.md)
    Sd = np.fft.ifftshift(_libm.exp(-(r / 15.3870) ** 2) - 0.7622 * _libm.exp(-(r / 1.3456) ** 2))
    Sd.setflags(write=False)
    return Sd


@lru_cache(maxsize=8)
def _qcv_csf(shape: tuple[int, int]) -> np.ndarray:
    """Qcv's Mannos–Sakrison-type CSF on ``freqspace`` with r scaled by size/8, ``ifftshift``-ed."""
    hang, lie = shape
    u, v = _freqspace(shape)
    r = np.sqrt((lie / 8.0 * u) ** 2 + (hang / 8.0 * v) ** 2)
    theta = np.fft.ifftshift(2.6 * (0.0192 + 0.144 * r) * np.exp(-((0.144 * r) ** 1.1)))
    theta.setflags(write=False)
    return theta


@lru_cache(maxsize=4)
def _gauss_kernel_31(sigma: float) -> np.ndarray:
    """1-D factor of the unnormalised 31×31 Gaussian exp(−r²/2σ²)/(2πσ²) of Liu's Qcb (scale folded in).

    ``exp`` by the C library (``_libm``), so the taps are the same on every CPU.
    """
    t = np.arange(-15, 16, dtype=np.float64)
    g = _libm.exp(-(t * t) / (2 * sigma * sigma)) / np.sqrt(2 * np.pi * sigma * sigma)
    g.setflags(write=False)
    return g


def _normalize1(x: np.ndarray) -> np.ndarray:
    """Liu's ``normalize1``: min-max stretch to 0–255 with MATLAB rounding (all-zero image kept)."""
    if x.max() == 0 and x.min() == 0:
        return x
    return stretch(x).astype(np.float64)


def _normalize1_undefined(*images: np.ndarray) -> bool:
    """True when Liu's ``normalize1`` divides 0 by 0: an image that is constant and not all zero.

    The reference then carries NaN into Qcb and Qcv (VIFB and MEFB give NaN for a
    constant fused image of grey 128); ``stretch`` alone would map it to zeros.
    """
    return any(x.max() == x.min() != 0 for x in images)


#: Qcb filters in bands of this many rows above ``_QCB_BAND_ABOVE`` pixels (``_QCB_HALO``: the 31-tap reach)
_QCB_BAND_ROWS = 128
_QCB_BAND_ABOVE = 1 << 18
_QCB_HALO = 15


def qcb(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, unit_scale_first: bool = False,
        data_range: float | None = None) -> float:
    """Qcb (Chen & Blum 2009), Liu toolbox as in VIFB.

    Images min-max stretched to 0–255; CSF filter exp(−(r/f0)²) − a·exp(−(r/f1)²)
    (f0=15.3870, f1=1.3456, a=0.7622) in the frequency domain with r scaled by
    size/30; local contrast G_σ=2 * I / G_σ=4 * I − 1 (31×31, 'same', zero padding,
    direct separable filtering as the reference's conv2); masking
    C³/(C²+1e-4); saliency-weighted mean of the contrast preservation.
    ``unit_scale_first=True`` reproduces MEFB, which calls ``im2double`` on uint8
    first (so the stretch rounds from [0,1] values; ±1e-4 differences).
    """
    from scipy import fft as sfft
    from ._ssim_fast import sep_filter
    option("qcb", "unit_scale_first", unit_scale_first, FLAG)
    f, A, B = prepare(fused, a, b, data_range=data_range)
    if _normalize1_undefined(f, A, B):
        return undefined("Qcb is undefined for a constant, non-zero image (Liu's normalize1 divides 0 by 0)")
    if unit_scale_first:
        f, A, B = f / 255.0, A / 255.0, B / 255.0
    imgs = [_normalize1(x) for x in (A, B, f)]
    # CSF in the frequency domain (circular, as the reference's fft2/ifft2); the result is
    # complex (round-off imaginary parts, as in the reference).  Its real and imaginary
    # planes, for the three images, are then filtered by the two 31x31 Gaussians directly
    # ('same', zero padding: the reference's conv2), by the compiled separable filter.
    # Direct filtering keeps round-off relative to the local values: in black backgrounds
    # the local means are ~1e-13 and an FFT filter's round-off (relative to the image
    # maximum) would decide the contrast there (docs/cpu_independence.md).
    h, w = f.shape
    planes = np.empty((6, h, w))
    for i, x in enumerate(imgs):
        y = sfft.ifft2(sfft.fft2(x, workers=fft_workers()) * _qcb_csf(f.shape), workers=fft_workers(), overwrite_x=True)
        planes[2 * i] = y.real
        planes[2 * i + 1] = y.imag
    # The two filterings and the contrast run in bands of rows (15 rows of context each side, the
    # window's reach: every kept value is bit-for-bit the whole image's) above _QCB_BAND_ABOVE pixels,
    # so the filtered maps stay small (12 planes of 128 rows at 1024², not 2 × 48 MiB fresh maps).
    band = h if h * w <= _QCB_BAND_ABOVE else _QCB_BAND_ROWS
    Cp = np.empty((3, h, w))
    g2 = np.empty((min(h, band), w), dtype=np.complex128)
    g4 = np.empty((min(h, band), w), dtype=np.complex128)
    for r0 in range(0, h, band):
        r1 = min(h, r0 + band)
        lo, hi = max(0, r0 - _QCB_HALO), min(h, r1 + _QCB_HALO)
        s2 = sep_filter(planes[:, lo:hi], _gauss_kernel_31(2.0), mode="constant")[:, r0 - lo:r1 - lo]
        s4 = sep_filter(planes[:, lo:hi], _gauss_kernel_31(4.0), mode="constant")[:, r0 - lo:r1 - lo]
        # the complex planes are assembled from their real and imaginary parts (the reference's
        # re + 1j·im differs only in the signs of zero parts, which the division and the modulus
        # below do not see: |c| is the same bits); one image at a time keeps the temporaries small
        b2, b4 = g2[:r1 - r0], g4[:r1 - r0]
        for i in range(3):
            b2.real, b2.imag = s2[2 * i], s2[2 * i + 1]
            b4.real, b4.imag = s4[2 * i], s4[2 * i + 1]
            with np.errstate(divide="ignore", invalid="ignore"):
                b2 /= b4
            b2 -= 1
            c = np.abs(b2)
            c2 = c * c
            Cp[i, r0:r1] = c2 * c / (c2 + 1e-4)
    c1, c2, cf = Cp
    with np.errstate(divide="ignore", invalid="ignore"):
        q1 = np.where(c1 < cf, c1 / cf, cf / c1)
        q2 = np.where(c2 < cf, c2 / cf, cf / c2)
        s1, s2_ = c1 * c1, c2 * c2
        den = s1 + s2_
        q = (s1 / den) * q1 + (s2_ / den) * q2
    v = float(q.mean())
    return undefined("Qcb is undefined on this input (zero contrast)") if np.isnan(v) else v


def _blocks(x: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad to a multiple of ``size`` and view as (by, bx, size, size) blocks (``blkproc``)."""
    h, w = x.shape
    H, W = -(-h // size) * size, -(-w // size) * size
    y = np.zeros((H, W), dtype=x.dtype)
    y[:h, :w] = x
    return y.reshape(H // size, size, W // size, size).swapaxes(1, 2)


def qcv(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, data_range: float | None = None) -> float:
    """Qcv (Chen & Varshney 2007), Liu toolbox as in VIFB/MEFB.  Lower is better.

    Images stretched to 0–255; Sobel magnitudes; 16×16 blocks with saliency
    Σg⁵; the differences A−F and B−F filtered by a Mannos–Sakrison-type CSF
    (r scaled by size/8) and their block mean squares; Q = Σ(λ_A D_A + λ_B D_B) / Σ(λ_A + λ_B).
    The frequency-filtered differences are complex where the CSF is not
    Hermitian-symmetric (even sizes); as in the reference the complex squares
    are averaged and the real part is returned.
    """
    from scipy import fft as sfft
    f, A, B = prepare(fused, a, b, data_range=data_range)
    if _normalize1_undefined(f, A, B):
        return undefined("Qcv is undefined for a constant, non-zero image (Liu's normalize1 divides 0 by 0)")
    A, B, f = (_normalize1(x) for x in (A, B, f))
    # Sobel [[-1,0,1],[-2,0,2],[-1,0,1]] and its transpose, zero padding (``_sobel``: exact on the stretched levels)
    gx, gy = _sobel(np.stack([A, B]), "constant")
    mag = np.sqrt(gx * gx + gy * gy)
    lam1 = (_blocks(mag[0], 16) ** 5).sum(axis=(2, 3))
    lam2 = (_blocks(mag[1], 16) ** 5).sum(axis=(2, 3))
    # one difference at a time, filtered in place (the same transforms and products as the
    # batched form, bit for bit; a third of the fresh memory at 1024²)
    D = []
    for x in (A - f, B - f):
        y = sfft.fft2(x, workers=fft_workers())
        y *= _qcv_csf(f.shape)
        y = sfft.ifft2(y, workers=fft_workers(), overwrite_x=True)
        D.append((_blocks(y, 16) ** 2).mean(axis=(2, 3)))
    den = (lam1 + lam2).sum()
    if den == 0:
        return undefined("Qcv is undefined: both sources are constant")
    q = (lam1 * D[0] + lam2 * D[1]).sum() / den
    return float(np.real(q))
