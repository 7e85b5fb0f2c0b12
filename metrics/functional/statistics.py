"""Statistical and error metrics: SD, CC, SCD, MSE, RMSE, PSNR.

Default conventions follow ``metrics_conventions.md`` §6 (0–255 float64,
means over the two sources).  Options reproduce VIFB/MEFB, Tang and CDDFuse.
"""
from __future__ import annotations

import numpy as np

from .._input import prepare, undefined, warn_undefined
from ._options import float_dtype, number, option


def standard_deviation(fused: np.ndarray, a: np.ndarray | None = None, b: np.ndarray | None = None, *,
                       dtype: str = "float64", data_range: float | None = None) -> float:
    """SD: population standard deviation (ddof=0) of the fused grey levels (0–255).

    Identical in every reference.  ``dtype='float32'`` imitates CDDFuse's arithmetic;
    ``dtype`` is float64 or float32 (any numpy spelling), anything else raises ``ValueError``.
    """
    dt = float_dtype("standard_deviation", dtype)
    f, _, _ = prepare(fused, data_range=data_range, need_sources=False)
    return float(f.astype(dt).std())


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation over all pixels; NaN if either image is constant."""
    xc, yc = x - x.mean(), y - y.mean()
    den = np.sqrt((xc * xc).sum() * (yc * yc).sum())
    if den == 0:
        return float("nan")
    return float((xc * yc).sum() / den)


def correlation_coefficient(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *,
                            data_range: float | None = None) -> float:
    """CC: (r(A,F) + r(B,F)) / 2, Pearson correlation (Tang, CDDFuse, cslib).

    NaN with a warning when an image is constant.
    """
    f, A, B = prepare(fused, a, b, data_range=data_range)
    v = (_corr(A, f) + _corr(B, f)) / 2.0
    return undefined("CC is undefined: an image is constant") if np.isnan(v) else v


def sum_of_correlation_differences(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *,
                                   data_range: float | None = None) -> float:
    """SCD (Aslantas & Bendes 2015): r(F−B, A) + r(F−A, B).

    NaN with a warning when a difference image or a source is constant (e.g.
    F equals a source), as Tang and CDDFuse do (they return NaN silently).
    """
    f, A, B = prepare(fused, a, b, data_range=data_range)
    v = _corr(f - B, A) + _corr(f - A, B)
    return undefined("SCD is undefined: F - A, F - B or a source is constant") if np.isnan(v) else v


def _mse_pair(x: np.ndarray, f: np.ndarray) -> float:
    d = x - f
    return float((d * d).mean())


def mean_squared_error(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, scale: float = 255.0,
                       data_range: float | None = None) -> float:
    """MSE: (MSE(A,F) + MSE(B,F)) / 2 on grey levels 0–``scale``.

    ``scale=255`` is the default (CDDFuse); ``scale=1`` is Tang's [0, 1] MSE; ``scale`` must be finite and > 0
    (``ValueError``).
    """
    scale = number("mean_squared_error", "scale", scale, low=0, low_open=True)
    f, A, B = prepare(fused, a, b, data_range=data_range)
    k = scale / 255.0
    return (_mse_pair(A * k, f * k) + _mse_pair(B * k, f * k)) / 2.0


def _vifb_pseudo_rmse(f: np.ndarray, A: np.ndarray, B: np.ndarray) -> float:
    """VIFB/MEFB helper: mean over sources of √Σ(X−F)² / (MN) = RMSE/√(MN) (size-dependent bug)."""
    mn = f.size
    return (np.sqrt(((A - f) ** 2).sum()) / mn + np.sqrt(((B - f) ** 2).sum()) / mn) / 2.0


def root_mean_squared_error(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, variant: str = "standard",
                            data_range: float | None = None) -> float:
    """RMSE: √MSE̅ with MSE̅ = (MSE(A,F) + MSE(B,F))/2 on 0–255 (default).

    ``variant='vifb'`` reproduces VIFB/MEFB: mean over sources of √SSE/(MN),
    i.e. RMSE/√(MN), which depends on the image size (flagged as a bug).
    Any other ``variant`` raises ``ValueError``.
    """
    option("root_mean_squared_error", "variant", variant, ("standard", "vifb"))
    f, A, B = prepare(fused, a, b, data_range=data_range)
    if variant == "vifb":
        return float(_vifb_pseudo_rmse(f, A, B))
    return float(np.sqrt((_mse_pair(A, f) + _mse_pair(B, f)) / 2.0))


def peak_signal_to_noise_ratio(fused: np.ndarray, a: np.ndarray, b: np.ndarray, *, variant: str = "standard",
                               data_range: float | None = None) -> float:
    """PSNR in dB.

    ``standard`` (default, cslib): 10·log10(255² / MSE̅), MSE̅ the mean of the two MSEs.
    ``vifb``: 20·log10(255 / √m̃), m̃ = VIFB's √SSE/(MN) helper used as if it were the MSE
    (≈ 53 dB for an average; bug).
    ``tang``: MSE̅ on [0,1] with peak 255, i.e. standard + 20·log10(255) = +48.13 dB (bug).
    ``cddfuse``: 10·log10(max(F)² / MSE̅) (peak = max of the fused image).
    Infinite (with a warning) when F equals both sources.  Any other ``variant`` (e.g. ``'Tang'``)
    raises ``ValueError``.
    """
    option("peak_signal_to_noise_ratio", "variant", variant, ("standard", "vifb", "tang", "cddfuse"))
    f, A, B = prepare(fused, a, b, data_range=data_range)
    if variant == "vifb":
        m = _vifb_pseudo_rmse(f, A, B)
        num, den = 255.0, np.sqrt(m)
        power = 20.0
    else:
        num = float(f.max()) ** 2 if variant == "cddfuse" else 255.0 ** 2
        den = (_mse_pair(A, f) + _mse_pair(B, f)) / 2.0
        power = 10.0
    if den == 0:
        warn_undefined("PSNR is infinite: the fused image equals both sources")
        return float("inf")
    if num == 0:
        return undefined("PSNR (cddfuse) is undefined: the fused image is all zero")
    v = power * np.log10(num / den)
    if variant == "tang":
        v += 20.0 * np.log10(255.0)
    return float(v)
