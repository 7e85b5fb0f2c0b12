"""Calibration against the reference implementations (``../shared/metrics_ref``).

One test per mapped record of ``reference_values.json`` (issue 4's label → preset
table, ``fusionbench.metrics.calibration``).  Relative tolerances per preset
(``calibration.tolerance``): 3 × the worst relative difference measured against
the preset's reference over every square and non-square record, rounded up to two
digits (``calibration.MEASURED``: CDDFuse's float32 values, 1.9e-7 to 1.9e-6; Qp.mefb
1.7e-7; the Octave-reference FMI_edge 8.7e-4 and FMI_w 3.2e-4), and 1e-9 for every
preset that reproduces its reference to round-off (``calibration.ROUNDOFF``: all
the others, ≤ 6.6e-11 measured).  The Harvard triples (black background) have
documented known deviations (``calibration.KNOWN_DEVIATIONS``): Qcb 2.2e-4 (its
CSF FFT's round-off), VIFp_sum 1.3e-8 (our mean-centring) and FMI_w.tang 3e-2
(MATLAB's 102-tap dmey filter).  ``test_calibration_power.py`` holds these to the
measurements and checks that wrong conventions fail them.

A NaN reference (SCD when F equals a source) must give NaN here too.

Qc is also allowed an absolute bound computed from the triple
(``calibration.absolute_bound``): the share of windows where an exactly flat
source or F leaves its weight σ_AF/(σ_AF+σ_BF) to floating-point round-off (about
3 × the measured worst, 0.344 × the share); on triples without such windows
(Harvard) it is held to 1e-9 relative.

cslib, not a calibration target, is asserted for the default presets no target
computes: Q_S, Q_W and MS_SSIM (``calibration.CSLIB_CROSS_CHECKS``).
"""
from __future__ import annotations

import json

import pytest

from fusionbench.metrics import calibration as C
from _assets import MIN_CALIBRATION_CASES as MIN_CASES, message, missing_allowed, shared_root

from ._calibration_check import assert_matches

_REF = shared_root() / "metrics_ref" / "reference_values.json"


def _params() -> list:
    """One parameter per mapped record.  Without the reference file this is an error at collection
    (never an empty, silently skipped parameter set), or, with ``FUSIONBENCH_ALLOW_MISSING_ASSETS=1``,
    one parameter that skips with the reason."""
    if not _REF.is_file():
        if not missing_allowed():
            raise pytest.UsageError(message([str(_REF)]))
        return [pytest.param(None, id="no-reference-values", marks=pytest.mark.skip(reason=f"{_REF} not found"))]
    cases = C.cases(json.loads(_REF.read_text()))
    if len(cases) < MIN_CASES:
        raise AssertionError(f"{_REF} maps to only {len(cases)} calibration cases (expected at least {MIN_CASES})")
    return [pytest.param(c, id=f"{c.preset}-{c.triple}") for c in cases]


_PARAMS = _params()
_CASES = [p.values[0] for p in _PARAMS if p.values[0] is not None]
_CROSS_CHECKS = C.cross_check_cases(json.loads(_REF.read_text())) if _REF.is_file() else []


@pytest.mark.calibration
@pytest.mark.parametrize("case", _PARAMS)
def test_matches_reference(case: C.Case, metrics_ref) -> None:
    ref_dir, data = metrics_ref
    assert_matches(case, *C.triple_images(ref_dir, data, case.triple))


def test_every_target_record_is_mapped() -> None:
    """Every record of the four target references maps to a registered preset."""
    if not _CASES:
        pytest.skip("reference values not found")
    from fusionbench.metric_registry import list_metrics

    missing = sorted({c.preset for c in _CASES} - set(list_metrics()))
    assert not missing, f"presets missing for calibration records: {missing}"


@pytest.mark.calibration
@pytest.mark.parametrize("case", _CROSS_CHECKS, ids=lambda c: f"{c.preset}-cslib-{c.triple}")
def test_matches_cslib_cross_check(case: C.Case, metrics_ref) -> None:
    """Q_S, Q_W and MS_SSIM, default presets that no calibration target computes, against cslib's port
    (``calibration.CSLIB_CROSS_CHECKS``: 3 × the measured worst; cslib computes in float32).  Before, the
    cslib rows of docs/calibration_summary.csv were listed but never asserted."""
    ref_dir, data = metrics_ref
    assert_matches(case, *C.triple_images(ref_dir, data, case.triple))


def test_every_cslib_cross_check_has_records() -> None:
    if not _CASES:
        pytest.skip("reference values not found")
    counts = {label: sum(c.label == label for c in _CROSS_CHECKS) for label in C.CSLIB_CROSS_CHECKS}
    assert counts == {"q_s_metric": 12, "q_w_metric": 12, "ms_ssim_metric": 2}, counts


def test_committed_summary_is_current(tmp_path, metrics_ref) -> None:
    """``scripts/calibration_summary.py`` regenerates docs/calibration_summary.csv (square triples) equal to the
    committed file: the tolerance tables (``test_calibration_power.py``) are checked against that file, so a stale
    one would hide a change.  ``ours`` and the differences may differ by CPU round-off only
    (``_calibration_check.assert_summary_equal``, 1e-12 relative; docs/cpu_independence.md measured 1.1e-15)."""
    import importlib.util
    from pathlib import Path

    from ._calibration_check import assert_summary_equal

    repo = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("calibration_summary", repo / "scripts" / "calibration_summary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "summary.csv"
    assert module.main(["--ref", str(metrics_ref[0]), "--out", str(out)]) == 0
    assert_summary_equal(out, repo / "docs" / "calibration_summary.csv")
