"""Phase-congruency metric Qp (Zhao, Laganière & Liu 2007), Liu toolbox as in MEFB ``metricsQp.m``.

Phase congruency follows Kovesi's ``phasecong3`` with the toolbox defaults
(4 scales, 6 orientations, minimum wavelength 3, multiplier 2.1,
σ_f/f = 0.55, dθ/σ = 1.2, k = 2, cut-off 0.5, g = 10); it returns the phase
congruency PC and the maximum and minimum moments M, m.  Qp is the product of
three masked local correlation scores (PC, M, m) between the fused features
and the sources' features (and their per-pixel maximum), with 11×11 Gaussian
windows ('same', zero padding) and feature threshold 0.1.

Vectorised: all 24 log-Gabor filters of one image are applied with one batched
inverse FFT per orientation, in single precision (the noise statistics and everything after
the filtering are float64); this changes Qp by ~3e-8 relative on the
reference triples.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft as sfft

from .._input import prepare, undefined
from ._filters import gaussian_1d, sep_same

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


def phase_congruency(im: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(PC, M, m): phase congruency and maximum/minimum moments (``myphasecong3.m``)."""
    rows, cols = im.shape
    bank, noise_const = _filters(rows, cols)
    # Single-precision FFT filtering (2-3x faster); the rest is float64.  Changes Qp by
    # ~3e-8 relative on the reference triples.
    spec = sfft.fft2(im).astype(np.complex64)
    total_energy = np.zeros((rows, cols))
    total_sum_an = np.zeros((rows, cols))
    covx2 = np.zeros((rows, cols))
    covy2 = np.zeros((rows, cols))
    covxy = np.zeros((rows, cols))
    for o in range(NORIENT):  # one orientation at a time (all scales batched) bounds memory
        angl = o * np.pi / NORIENT
        EO = sfft.ifft2(spec[None] * bank[o], axes=(-2, -1), overwrite_x=True)
        An = np.abs(EO).astype(np.float64)
        E, O = EO.real.astype(np.float64), EO.imag.astype(np.float64)
        sum_an = An.sum(axis=0)
        sum_e = E.sum(axis=0)
        sum_o = O.sum(axis=0)
        max_an = An.max(axis=0)
        xe = np.sqrt(sum_e ** 2 + sum_o ** 2) + EPS
        me, mo = sum_e / xe, sum_o / xe
        energy = (E * me + O * mo - np.abs(E * mo - O * me)).sum(axis=0)
        em_n, sum_an2, sum_aiaj = noise_const[o]
        mean_e2n = -np.median(An[0] ** 2) / np.log(0.5)
        noise_power = mean_e2n / em_n
        tau = np.sqrt((2 * noise_power * sum_an2 + 4 * noise_power * sum_aiaj) / 2)
        T = (tau * np.sqrt(np.pi / 2) + K_NOISE * np.sqrt((2 - np.pi / 2) * tau ** 2)) / 1.7
        energy = np.maximum(energy - T, 0.0)
        width = sum_an / (max_an + EPS) / NSCALE
        weight = 1.0 / (1 + np.exp((CUTOFF - width) * G_SHARP))
        total_sum_an += sum_an
        total_energy += weight * energy
        with np.errstate(divide="ignore", invalid="ignore"):
            pc_o = weight * energy / sum_an
        covx, covy = pc_o * np.cos(angl), pc_o * np.sin(angl)
        covx2 += covx ** 2
        covy2 += covy ** 2
        covxy += covx * covy
    pc = total_energy / (total_sum_an + EPS)
    covx2 /= NORIENT / 2
    covy2 /= NORIENT / 2
    covxy /= NORIENT
    denom = np.sqrt(covxy ** 2 + (covx2 - covy2) ** 2) + EPS
    M = (covy2 + covx2 + denom) / 2
    m = (covy2 + covx2 - denom) / 2
    return pc, M, m


def _masked_corr(x1, x2, xmax, xf, m1, m2, m3) -> float:
    g = gaussian_1d(11, 1.5)
    x1, x2, xmax = m1 * x1, m2 * x2, m3 * xmax
    S = sep_same(np.stack([x1, x2, xmax, xf, x1 * x1, x2 * x2, xmax * xmax, xf * xf, x1 * xf, x2 * xf, xmax * xf]),
                 g, mode="constant")
    mu1, mu2, mum, muf = S[0], S[1], S[2], S[3]
    s1, s2, sm, sf = S[4] - mu1 ** 2, S[5] - mu2 ** 2, S[6] - mum ** 2, S[7] - muf ** 2
    s1f, s2f, smf = S[8] - mu1 * muf, S[9] - mu2 * muf, S[10] - mum * muf
    C = 1e-4
    r1 = np.where(m1, (s1f + C) / (np.sqrt(np.abs(s1 * sf)) + C), 0.0)
    r2 = np.where(m2, (s2f + C) / (np.sqrt(np.abs(s2 * sf)) + C), 0.0)
    r3 = np.where(m3, (smf + C) / (np.sqrt(np.abs(sm * sf)) + C), 0.0)
    res = np.maximum(np.maximum(r1, r2), r3)
    return float(res.sum() / m3.sum())


def qp(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, threshold: float = 0.1,
       data_range: float | None = None) -> float:
    """Qp: product of the masked correlation scores of PC, M and m (range [0, 1] in practice)."""
    f, A, B = prepare(fused, a, b, data_range=data_range)
    pc1, M1, mm1 = phase_congruency(A)
    pc2, M2, mm2 = phase_congruency(B)
    pcf, Mf, mmf = phase_congruency(f)
    mask = pc1 > pc2
    pcmax = np.where(mask, pc1, pc2)
    Mmax = np.where(mask, M1, M2)
    mmax = np.where(mask, mm1, mm2)
    k1, k2, k3 = pc1 > threshold, pc2 > threshold, pcmax > threshold
    if not k3.any():
        return undefined("Qp is undefined: no phase-congruency feature above the threshold")
    with np.errstate(divide="ignore", invalid="ignore"):
        v = (_masked_corr(pc1, pc2, pcmax, pcf, k1, k2, k3) * _masked_corr(M1, M2, Mmax, Mf, k1, k2, k3)
             * _masked_corr(mm1, mm2, mmax, mmf, k1, k2, k3))
    return undefined("Qp is undefined on this input") if np.isnan(v) else float(v)
