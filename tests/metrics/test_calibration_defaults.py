"""Direct calibration of the default presets that no calibration target maps to: MI, SSIM, PSNR, NMI, RMSE.

Each reproduces reference records through a documented transform (``calibration.DEFAULT_CHECKS``): MI = Tang's
MI where no image holds both grey levels 254 and 255 (``calibration.tang_mi_comparable``), and CDDFuse's and
VIFB's MI ÷ ln 2 (nats → bits); SSIM = VIFB's Ssim ÷ 2 (VIFB sums over the sources); PSNR = cslib's
``psnr_metric`` (float32) and Tang's PSNR − 20·log₁₀ 255 (Tang's MSE is on [0, 1]); NMI = MEFB's NMI; RMSE =
255·√(Tang's MSE) and √(CDDFuse's MSE).  No reference reports our RMSE itself (cslib's ``rmse_metric`` is the
mean of the two per-source RMSEs; VIFB's ``Rmse`` is √SSE/(MN)).  Until 2026-12-06 these presets were tied to the
references only through their calibrated profiles (``test_properties.py``, code against code), RMSE and NMI
not at all.

Tolerances as in the calibration: ``MARGIN`` (3) × the measured worst, rounded up, never below ``ROUNDOFF``
(1e-9).  ``test_default_check_table_is_the_measurement`` recomputes the worst and holds the table to it;
``test_a_wrong_convention_fails`` checks that each comparison can fail.
"""
from __future__ import annotations

import json
import math
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

import fusionbench.metrics as M
from fusionbench.metrics import calibration as C
from _assets import shared_root

from ._calibration_check import assert_matches

_REF = shared_root() / "metrics_ref" / "reference_values.json"
NONSQUARE = json.loads(Path(__file__).with_name("nonsquare_reference.json").read_text())
CROPS = {t["id"]: t for t in NONSQUARE["triples"]}
_SQUARE = C.default_check_cases(json.loads(_REF.read_text())["records"]) if _REF.is_file() else []
_CROPS = C.default_check_cases(NONSQUARE["records"])
_ALL = [(c, False) for c in _SQUARE] + [(c, True) for c in _CROPS]


def _images(metrics_ref, case: C.Case, crop: bool):
    ref_dir, data = metrics_ref
    return C.crop_triple_images(ref_dir, data, CROPS[case.triple]) if crop else C.triple_images(ref_dir, data,
                                                                                                 case.triple)


def _is_tang_mi(case: C.Case) -> bool:
    return case.preset == "MI" and case.reference == "tang"


def test_every_default_check_has_records() -> None:
    if not _SQUARE:
        pytest.skip("reference values not found")
    counts = defaultdict(int)
    for c in _SQUARE + _CROPS:
        counts[c.preset, c.reference, c.label] += 1
    expected = {(p, r, lab) for p, checks in C.DEFAULT_CHECKS.items() for r, lab, _, _ in checks}
    assert set(counts) == expected, set(counts) ^ expected
    assert all(n >= 12 for n in counts.values()), counts  # cslib (square only): 12; the others 12 + 8 or 9


@pytest.mark.calibration
@pytest.mark.parametrize(("case", "crop"), _ALL, ids=[f"{c.preset}-{c.reference}-{c.triple}" for c, _ in _ALL])
def test_default_matches_reference(case: C.Case, crop: bool, metrics_ref) -> None:
    F, A, B = _images(metrics_ref, case, crop)
    if _is_tang_mi(case) and not C.tang_mi_comparable(F, A, B):
        pytest.skip("an image holds both grey levels 254 and 255: Tang merges them (MI.tang reproduces it)")
    assert_matches(case, F, A, B)


def _compute(name_or_fn, F, A, B) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", M.UndefinedMetricWarning)
        return name_or_fn(F, A, B) if callable(name_or_fn) else M.compute(name_or_fn, F, A, B)


@pytest.mark.calibration
def test_default_check_table_is_the_measurement(metrics_ref) -> None:
    """``DEFAULT_CHECKS``' worsts are the measured ones (within 1 %), their tolerances about 3× that; where the table
    says round-off (None) the worst is ≤ ROUNDOFF / MARGIN."""
    worst: dict[tuple[str, str, str], float] = defaultdict(float)
    for case, crop in _ALL:
        F, A, B = _images(metrics_ref, case, crop)
        if _is_tang_mi(case) and not C.tang_mi_comparable(F, A, B):
            continue
        rel = C.relative_difference(_compute(case.preset, F, A, B), case.value)
        worst[case.preset, case.reference, case.label] = max(worst[case.preset, case.reference, case.label], rel)
    for preset, checks in C.DEFAULT_CHECKS.items():
        for ref, label, _, table in checks:
            w = worst[preset, ref, label]
            tols = {c.tol for c, _ in _ALL if (c.preset, c.reference, c.label) == (preset, ref, label)}
            (tol,) = tols
            if table is None:
                assert tol == C.ROUNDOFF and w <= C.ROUNDOFF / C.MARGIN, f"{preset} vs {ref} {label}: measured {w:.3g}"
            else:
                assert table / 1.01 <= w <= table * 1.01, f"DEFAULT_CHECKS[{preset}] {ref} {label} = {table:g}, measured {w:.4g}"
                assert 2.9 * w <= tol <= 3.5 * w, f"{preset} vs {ref} {label}: tolerance {tol:g} for a measured {w:.3g}"


@pytest.mark.calibration
def test_mi_differs_from_tang_exactly_where_254_and_255_both_occur(metrics_ref) -> None:
    """docs/metrics.md: default MI = Tang's unless an image holds both 254 and 255 (then MI.tang reproduces it)."""
    both = []
    for case, crop in _ALL:
        if not _is_tang_mi(case):
            continue
        F, A, B = _images(metrics_ref, case, crop)
        if C.tang_mi_comparable(F, A, B):
            continue
        both.append(case.triple)
        assert not C.within_tolerance(_compute("MI", F, A, B), case.value, case.tol), case.triple
        assert C.within_tolerance(_compute("MI.tang", F, A, B), case.value, C.tolerance("MI.tang")), case.triple
    assert len(both) >= 3, both  # the four syn_s0 triples: B holds both levels


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def _nmi_sqrt(F, A, B) -> float:
    """NMI with the other common normalisation: Σ_X MI(X,F)/√(H_X·H_F) (not MEFB's 2·MI/(H_X+H_F))."""
    total = 0.0
    for X in (A, B):
        j = np.histogram2d(X.ravel(), F.ravel(), bins=256, range=[[0, 256], [0, 256]])[0] / F.size
        hx, hf, hxf = _entropy(j.sum(1)), _entropy(j.sum(0)), _entropy(j.ravel())
        total += (hx + hf - hxf) / math.sqrt(hx * hf)
    return total


def _rmse_cslib(F, A, B) -> float:
    """cslib's ``rmse_metric`` formula on 0–255: (√MSE_AF + √MSE_BF)/2."""
    f = F.astype(np.float64)
    return float(np.mean([math.sqrt(((X.astype(np.float64) - f) ** 2).mean()) for X in (A, B)]))


# (preset, reference, label) -> (the wrong convention, a variant of ours) for each DEFAULT_CHECKS comparison
WRONG = {
    ("MI", "tang", "MI"): ("nats (MI.cddfuse)", "MI.cddfuse"),
    ("MI", "cddfuse", "MI"): ("nats: CDDFuse's value without the ÷ ln 2 (MI.cddfuse)", "MI.cddfuse"),
    ("MI", "vifb", "Mutinf"): ("averaged over the sources instead of summed", lambda F, A, B: M.compute("MI", F, A, B) / 2),
    ("SSIM", "vifb", "Ssim"): ("L = 1, replicate padding (SSIM.tang)", "SSIM.tang"),
    ("PSNR", "cslib", "psnr_metric"): ("peak max(F) (PSNR.cddfuse)", "PSNR.cddfuse"),
    ("PSNR", "tang", "PSNR"): ("VIFB's √SSE/(MN) (PSNR.vifb)", "PSNR.vifb"),
    ("NMI", "mefb", "NMI"): ("Σ MI/√(H_X·H_F)", _nmi_sqrt),
    ("RMSE", "tang", "MSE"): ("cslib's mean of the per-source RMSEs", _rmse_cslib),
    ("RMSE", "cddfuse", "MSE"): ("cslib's mean of the per-source RMSEs", _rmse_cslib),
}


@pytest.mark.calibration
@pytest.mark.parametrize("key", sorted(WRONG), ids=["-".join(k) for k in sorted(WRONG)])
def test_a_wrong_convention_fails(key, metrics_ref) -> None:
    """Each comparison tells a wrong convention apart: the variant fails at least 3 of its records."""
    name, variant = WRONG[key]
    failed = total = 0
    for case, crop in _ALL:
        if (case.preset, case.reference, case.label) != key:
            continue
        F, A, B = _images(metrics_ref, case, crop)
        if _is_tang_mi(case) and not C.tang_mi_comparable(F, A, B):
            continue
        total += 1
        failed += not C.within_tolerance(_compute(variant, F, A, B), case.value, case.tol)
    assert total >= 8 and failed >= 3, f"{key} with {name}: {total - failed} of {total} records pass"


def test_every_default_check_has_a_wrong_convention() -> None:
    assert set(WRONG) == {(p, r, lab) for p, checks in C.DEFAULT_CHECKS.items() for r, lab, _, _ in checks}
