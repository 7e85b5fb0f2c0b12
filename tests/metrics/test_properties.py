"""Property tests for every registered preset: finite values, score ranges, symmetry, identities."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import fusionbench.metrics as M
from fusionbench.metric_registry import list_metrics, metric_info

from fusionbench.metrics.synthetic import structured_pair, triple

ALL = list_metrics()
NEEDS_LARGE = {"MS_SSIM"}  # undefined (NaN) at ≤ 160 px
# Nabf.tang: Tang's argument-order bug treats A as the fused image.
# Qc: the reference clips λ = σ_AF/(σ_AF+σ_BF) to 1 where λ > 1 but sets the score to 0 where
# λ < 0, so swapping A and B (λ → 1 − λ) changes the value wherever the covariances differ in sign.
ASYMMETRIC = {"Nabf.tang", "Qc", "Qc.mefb"}


def _score(name, f, a, b):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", M.UndefinedMetricWarning)
        return M.compute(name, f, a, b)


def test_the_full_set_is_registered() -> None:
    expected = {"AG", "EN", "SF", "SD", "CC", "MI", "SCD", "PSNR", "MSE", "RMSE", "Qabf", "Nabf", "SSIM",
                "MS_SSIM", "MEF_SSIM", "VIFF", "VIFp_sum", "FMI_pixel", "FMI_dct", "FMI_w", "FMI_edge", "Qcb",
                "Qcv", "Qc", "Qy", "Q_S", "Q_W", "Q_E", "NMI", "TE", "Qncie", "Qp", "CE", "EI"}
    assert expected <= set(ALL)
    assert {n for n in ALL if "all" in metric_info(n).groups} >= expected


@pytest.mark.parametrize("name", ALL)
def test_finite_and_in_range_on_random_images(name: str) -> None:
    r = np.random.default_rng(1)
    n = 176 if name.split(".")[0] in NEEDS_LARGE else 48
    f, a, b = (r.integers(0, 256, (n, n), dtype=np.uint8) for _ in range(3))
    v = _score(name, f, a, b)
    assert math.isfinite(v), f"{name} gave {v}"
    lo, hi = metric_info(name).score_range
    assert lo - 1e-9 <= v <= hi + 1e-9, f"{name}={v} outside {lo, hi}"


@pytest.mark.parametrize("rule", ["avg", "max"])
@pytest.mark.parametrize("name", ALL)
def test_in_range_on_structured_images(name: str, rule: str) -> None:
    n = 176 if name.split(".")[0] in NEEDS_LARGE else 64
    f, a, b = triple(n, 0, rule)
    v = _score(name, f, a, b)
    lo, hi = metric_info(name).score_range
    assert math.isfinite(v) and lo - 1e-9 <= v <= hi + 1e-9, f"{name}={v} outside {lo, hi}"


@pytest.mark.parametrize("name", [n for n in ALL if metric_info(n).needs_sources and n not in ASYMMETRIC])
def test_symmetric_in_the_sources(name: str) -> None:
    n = 176 if name.split(".")[0] in NEEDS_LARGE else 64
    f, a, b = triple(n, 2)
    assert _score(name, f, a, b) == pytest.approx(_score(name, f, b, a), rel=1e-9, abs=1e-12)


def test_tang_nabf_is_not_symmetric() -> None:
    f, a, b = triple(64, 2)
    assert _score("Nabf.tang", f, a, b) != pytest.approx(_score("Nabf.tang", f, b, a), rel=1e-6)


# value when F = A = B (a structured image).  Qp is not 1 there: the reference correlates masked
# source features with the unmasked fused features.
IDENTITY = {
    "CC": 1.0, "MSE": 0.0, "RMSE": 0.0, "CE": 0.0, "SSIM": 1.0, "MS_SSIM": 1.0, "MEF_SSIM": 1.0, "Qc": 1.0,
    "Qy": 1.0, "Q_S": 1.0, "Q_W": 1.0, "Q_E": 1.0, "VIFF": 1.0, "VIFp_sum": 2.0, "FMI_pixel": 1.0, "FMI_dct": 1.0,
    "FMI_w": 1.0, "FMI_edge": 1.0, "Nabf": 0.0, "Qcv": 0.0, "NMI": 2.0, "Qcb": 1.0,
    "PSNR": math.inf, "SCD": math.nan,
}


@pytest.mark.parametrize("name", sorted(IDENTITY))
def test_identity_f_equals_a_equals_b(name: str) -> None:
    n = 176 if name in NEEDS_LARGE else 64
    a, _ = structured_pair(n, 3)
    v = _score(name, a, a, a)
    want = IDENTITY[name]
    if math.isnan(want):
        assert math.isnan(v)
    else:
        assert v == pytest.approx(want, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("name", sorted(n for n in ALL if n.split(".")[0] in {"Qc", "Qcb", "Qcv"}))
def test_undefined_where_the_reference_is_nan_on_a_constant_fused_image(name: str) -> None:
    """VIFB and MEFB give NaN for Qcb and Qcv (Liu's normalize1 divides 0 by 0 on a constant,
    non-zero image) and for Qc (λ = 0/0 in every window) on a constant fused image
    (tests/metrics/nonsquare_reference.json, triple deg_constF_97x125)."""
    _, a, b = triple(64, 5)
    with pytest.warns(M.UndefinedMetricWarning):
        assert math.isnan(M.compute(name, np.full_like(a, 128), a, b))
    assert math.isfinite(_score(name, *triple(64, 5)))


def test_mi_identity_is_twice_the_entropy() -> None:
    a, _ = structured_pair(64, 3)
    assert M.compute("MI", a, a, a) == pytest.approx(2 * M.compute("EN", a, a, a), rel=1e-12)


def test_profiles_relate_as_documented() -> None:
    f, a, b = triple(64, 4)
    psnr = M.compute("PSNR", f, a, b)
    assert M.compute("PSNR.tang", f, a, b) == pytest.approx(psnr + 20 * np.log10(255), rel=1e-12)
    assert M.compute("MI.cddfuse", f, a, b) == pytest.approx(M.compute("MI", f, a, b) * np.log(2), rel=1e-12)
    assert M.compute("SSIM.vifb", f, a, b) == pytest.approx(2 * M.compute("SSIM", f, a, b), rel=1e-12)
    assert M.compute("MSE.tang", f, a, b) == pytest.approx(M.compute("MSE", f, a, b) / 255 ** 2, rel=1e-12)
    m, nn = f.shape
    assert M.compute("SF.vifb", f, a, b) < M.compute("SF", f, a, b)
    assert M.compute("AG.cddfuse", f, a, b) == pytest.approx(
        M.compute("AG", f, a, b) * (m - 1) * (nn - 1) / (m * nn), rel=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_no_negative_zero_on_degenerate_images(name: str) -> None:
    """A score of zero is +0.0: a CSV or table never shows ``-0.0`` (EN of a one-level image was
    ``-0.0`` from ``-sum(p·log p)``)."""
    _, a, b = triple(64, 5)
    zero, flat = np.zeros_like(a), np.full_like(a, 100)
    for f, x, y in ((zero, a, b), (a, a, b), (flat, flat, flat), (zero, zero, zero)):
        value = _score(name, f, x, y)
        assert not (value == 0 and math.copysign(1.0, value) < 0), (name, value)
