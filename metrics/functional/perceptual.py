"""Phase-congruency metric Qp (Zhao, Laganière & Liu 2007), Liu toolbox as in MEFB ``metricsQp.m``.

Phase congruency follows Kovesi's ``phasecong3`` with the toolbox defaults
(4 scales, 6 orientations, minimum wavelength 3, multiplier 2.1,
σ_f/f = 0.55, dθ/σ = 1.2, k = 2, cut-off 0.5, g = 10); it returns the phase
congruency PC and the maximum and minimum moments M, m.  Qp is the product of
three masked local correlation scores (PC, M, m) between the fused features
and the sources' features (and their per-pixel maximum), with 11×11 Gaussian
windows ('same', zero padding) and feature threshold 0.1.

Vectorised: the three images are filtered together, one orientation at a
time (all images × 4 scales in one batched inverse FFT, two FFT threads), in
single precision (the noise statistics and everything after the filtering are
float64); this changes Qp by ~3e-8 relative on the reference triples.  The
per-orientation energy, weight and covariance accumulation runs in compiled
kernels (``_pc_kernels``: one pass per orientation instead of ~20 numpy
passes, same operations in the same order), the noise median uses one
selection per image (the same order statistics as ``np.median``), and the 11
masked window moments are filtered by the compiled separable filter
(``_ssim_fast.sep_filter``, bit-for-bit ``correlate1d``); only the final sum
of the scores is sequential instead of pairwise, so Qp equals the plain numpy
formulation to ~1e-14 relative.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .._input import prepare, undefined
from ._filters import gaussian_1d
from ._options import number
from ._threads import fft_workers
# the compiled (numba) kernels are imported in the functions that run them: importing this module, as loading the
# metric registry does in every CLI command and worker, then imports no numba (tests/test_imports.py)

NSCALE, NORIENT = 4, 6
MIN_WAVELENGTH, MULT, SIGMA_ONF, DTHETA_ON_SIGMA, K_NOISE, CUTOFF, G_SHARP = 3, 2.1, 0.55, 1.2, 2.0, 0.5, 10
EPS = 1e-4


@lru_cache(maxsize=8)
def _filters(rows: int, cols: int):
    """Log-Gabor filter bank (NSCALE×NORIENT, rows, cols) and per-orientation noise constants."""
    def rng(n):
        return (np.arange(-(n - 1) / 2, (n - 1) / 2 + 1) / (n - 1)) if n % 2 else (np.arange(-n / 2, n / 2) / n)

    x, y = np.meshgrid(rng(cols), rng(rows))
    radius = np.sqrt(x * x + y * y)
    radius[rows // 2, cols // 2] = 1.0
    theta = np.arctan2(-y, x)
    radius = np.fft.ifftshift(radius)
    theta = np.fft.ifftshift(theta)
    sint, cost = np.sin(theta), np.cos(theta)
    # low-pass filter (radius .45, order 15)
    lx = (np.ones((rows, 1)) * np.arange(1, cols + 1) - (cols // 2 + 1)) / cols
    ly = (np.arange(1, rows + 1)[:, None] * np.ones((1, cols)) - (rows // 2 + 1)) / rows
    lp = np.fft.fftshift(1.0 / (1.0 + (np.sqrt(lx * lx + ly * ly) / 0.45) ** (2 * 15)))
    log_gabor = []
    for s in range(NSCALE):
        fo = 1.0 / (MIN_WAVELENGTH * MULT ** s)
        lg = np.exp(-(np.log(radius / fo)) ** 2 / (2 * np.log(SIGMA_ONF) ** 2)) * lp
        lg[0, 0] = 0.0
        log_gabor.append(lg)
    theta_sigma = np.pi / NORIENT / DTHETA_ON_SIGMA
    bank = np.empty((NORIENT, NSCALE, rows, cols))
    noise_const = []
    for o in range(NORIENT):
        angl = o * np.pi / NORIENT
        ds = sint * np.cos(angl) - cost * np.sin(angl)
        dc = cost * np.cos(angl) + sint * np.sin(angl)
        spread = np.exp(-np.abs(np.arctan2(ds, dc)) ** 2 / (2 * theta_sigma ** 2))
        for s in range(NSCALE):
            bank[o, s] = log_gabor[s] * spread
        em_n = float((bank[o, 0] ** 2).sum())
        ifft_f = np.real(np.fft.ifft2(bank[o], axes=(-2, -1))) * np.sqrt(rows * cols)
        sum_an2 = float((ifft_f ** 2).sum())
        sum_aiaj = sum(float((ifft_f[i] * ifft_f[j]).sum()) for i in range(NSCALE - 1) for j in range(i + 1, NSCALE))
        noise_const.append((em_n, sum_an2, sum_aiaj))
    bank32 = bank.astype(np.float32)  # the filtering itself runs in single precision (see phase_congruency)
    bank32.setflags(write=False)
    return bank32, noise_const


def _noise_thresholds(an0: np.ndarray, em_n: float, sum_an2: float, sum_aiaj: float) -> np.ndarray:
    """Kovesi's noise threshold T per image from the smallest-scale amplitudes ``an0`` (n, H, W) float32.

    The median of An² is taken from the middle order statistics of An (squaring
    a float32 in float64 is exact and monotonic), which is exactly ``np.median(An**2)``.
    """
    n = an0.shape[0]
    flat = an0.reshape(n, -1)
    size = flat.shape[1]
    half = size // 2
    if size % 2:
        mid = np.partition(flat, half, axis=1)[:, half].astype(np.float64)
        median = mid * mid
    else:
        # one selection and a max (numpy's multi-kth partition is ~10x slower)
        part = np.partition(flat, half, axis=1)
        hi = part[:, half].astype(np.float64)
        lo = part[:, :half].max(axis=1).astype(np.float64)
        median = (lo * lo + hi * hi) / 2
    mean_e2n = -median / np.log(0.5)
    noise_power = mean_e2n / em_n
    tau = np.sqrt((2 * noise_power * sum_an2 + 4 * noise_power * sum_aiaj) / 2)
    return (tau * np.sqrt(np.pi / 2) + K_NOISE * np.sqrt((2 - np.pi / 2) * tau ** 2)) / 1.7


def phase_congruency(im: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(PC, M, m): phase congruency and maximum/minimum moments (``myphasecong3.m``).

    ``im`` is one image (H, W) or a stack (n, H, W) filtered together.
    """
    from scipy import fft as sfft
    from ._pc_kernels import apply_bank, finish, orientation_accumulate, orientation_energy
    stack = np.asarray(im, dtype=np.float64)
    single = stack.ndim == 2
    if single:
        stack = stack[None]
    n, rows, cols = stack.shape
    bank, noise_const = _filters(rows, cols)
    # Single-precision FFT filtering (2-3x faster); the rest is float64.  Changes Qp by
    # ~3e-8 relative on the reference triples.
    workers = fft_workers()
    pc, M, m = np.empty((3, n, rows, cols))
    # Above _BAND_ABOVE pixels one image at a time (each image's filtering is independent; results
    # bit-identical to the batched form): the per-call buffers are a third as large and reused by
    # the next image.  Smaller stacks are filtered together (fewer, larger calls).
    k = 1 if rows * cols > _BAND_ABOVE else n
    spec = np.empty((k, rows, cols), dtype=np.complex64)
    product = np.empty((k, NSCALE, rows, cols), dtype=np.complex64)
    acc = np.empty((5, k, rows, cols))
    total_energy, total_sum_an, covx2, covy2, covxy = acc
    sum_an, energy, expo = np.empty((3, k, rows, cols))
    an0 = np.empty((k, rows, cols), dtype=np.float32)
    for i in range(0, n, k):
        spec[...] = sfft.fft2(stack[i:i + k], axes=(-2, -1), workers=workers)
        acc.fill(0.0)
        for o in range(NORIENT):  # one orientation at a time (all scales batched) bounds memory
            angl = o * np.pi / NORIENT
            apply_bank(spec.view(np.float32), bank[o], product.view(np.float32))  # = spec[:, None] * bank[o]
            EO = sfft.ifft2(product, axes=(-2, -1), overwrite_x=True, workers=workers)
            orientation_energy(EO.view(np.float32), EPS, CUTOFF, float(G_SHARP), an0, sum_an, energy, expo)
            T = _noise_thresholds(an0, *noise_const[o])
            np.exp(expo, out=expo)
            orientation_accumulate(sum_an, energy, expo, T, np.cos(angl), np.sin(angl),
                                   total_energy, total_sum_an, covx2, covy2, covxy)
        finish(total_energy, total_sum_an, covx2, covy2, covxy, float(NORIENT), EPS,
               pc[i:i + k], M[i:i + k], m[i:i + k])
    if single:
        return pc[0], M[0], m[0]
    return pc, M, m


#: rows per band of the masked correlation above ``_BAND_ABOVE`` pixels (its 2 × 11 band maps then stay
#: near 12 MiB each at 1024 columns, reused band after band instead of 2 × 88 MiB fresh maps at 1024²)
_BAND_ROWS = 128
_BAND_ABOVE = 1 << 18
_HALO = 5  # half the 11-tap window


def _band_buffers(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Flat scratch for the 11 window moments and their filtered maps, and the band height."""
    band = rows if rows * cols <= _BAND_ABOVE else _BAND_ROWS
    size = 11 * min(rows, band + 2 * _HALO) * cols
    return np.empty(size), np.empty(size), band


def _masked_corr(x1, x2, xmax, xf, m1, m2, m3, P: np.ndarray, S: np.ndarray, band: int) -> float:
    """Masked local correlation score of Qp (11×11 Gaussian σ=1.5, 'same', zero padding).

    In bands of ``band`` rows (plus 5 rows of context each side, the window's reach, so every kept
    output is bit-for-bit the whole image's): the 11 window moments are filtered together
    (``sep_filter``, into ``S``) and the per-pixel scores summed in one compiled pass
    (``masked_corr_sum``, row-major across the bands: the same sum as on the whole image).
    ``P`` and ``S`` are flat float64 scratch from ``_band_buffers``, overwritten.
    """
    from ._pc_kernels import masked_corr_sum
    from ._ssim_fast import sep_filter
    g = gaussian_1d(11, 1.5)
    rows, cols = xf.shape
    total = 0.0
    for i0 in range(0, rows, band):
        i1 = min(rows, i0 + band)
        lo, hi = max(0, i0 - _HALO), min(rows, i1 + _HALO)
        p = P[:11 * (hi - lo) * cols].reshape(11, hi - lo, cols)
        np.multiply(m1[lo:hi], x1[lo:hi], out=p[0])
        np.multiply(m2[lo:hi], x2[lo:hi], out=p[1])
        np.multiply(m3[lo:hi], xmax[lo:hi], out=p[2])
        p[3] = xf[lo:hi]
        for k, (u, v) in enumerate(((0, 0), (1, 1), (2, 2), (3, 3), (0, 3), (1, 3), (2, 3)), start=4):
            np.multiply(p[u], p[v], out=p[k])
        s = sep_filter(p, g, mode="constant", out=S[:p.size])
        total = masked_corr_sum(s, i0 - lo, m1[i0:i1], m2[i0:i1], m3[i0:i1], 1e-4, total)
    return float(total / m3.sum())


def qp(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, threshold: float = 0.1,
       data_range: float | None = None) -> float:
    """Qp: product of the masked correlation scores of PC, M and m (range [0, 1] in practice).

    ``threshold``: the phase congruency (in [0, 1]) a pixel needs to count; it must be in [0, 1)
    (``ValueError``: at 1 or above no pixel counts and Qp is undefined for every image).
    """
    threshold = number("qp", "threshold", threshold, low=0, high=1)
    f, A, B = prepare(fused, a, b, data_range=data_range)
    (pc1, pc2, pcf), (M1, M2, Mf), (mm1, mm2, mmf) = phase_congruency(np.stack([A, B, f]))
    mask = pc1 > pc2
    pcmax = np.where(mask, pc1, pc2)
    Mmax = np.where(mask, M1, M2)
    mmax = np.where(mask, mm1, mm2)
    k1, k2, k3 = pc1 > threshold, pc2 > threshold, pcmax > threshold
    if not k3.any():
        return undefined("Qp is undefined: no phase-congruency feature above the threshold")
    with np.errstate(divide="ignore", invalid="ignore"):
        P, S, band = _band_buffers(*pcf.shape)  # scratch shared by the three scores
        v = (_masked_corr(pc1, pc2, pcmax, pcf, k1, k2, k3, P, S, band)
             * _masked_corr(M1, M2, Mmax, Mf, k1, k2, k3, P, S, band)
             * _masked_corr(mm1, mm2, mmax, mmf, k1, k2, k3, P, S, band))
    return undefined("Qp is undefined on this input") if np.isnan(v) else float(v)
