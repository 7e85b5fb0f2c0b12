"""Calibration on non-square, odd-sized triples (``nonsquare_reference.json``).

The shared reference values (``test_calibration.py``) are all for square
triples (128², 256²), where a row/column mix-up cannot show: a normalisation by
M·(N−1) instead of (M−1)·N, a block grid or a frequency grid built on the wrong
axis, a transposed filter.  ``nonsquare_reference.json`` holds the values the
reference implementations themselves give (VIFB, MEFB and Tang under GNU
Octave, CDDFuse's Evaluator in Python; run by ``scripts/reference_runs/``) on
five crops of the shared triples: 97×125, 128×83, 201×237, 225×170 and 41×57
(below MEF-SSIM's 44 px, where MEFB and Tang return -Inf as "undefined" and
fusionbench NaN: ``calibration.UNDEFINED_AS_MINUS_INF``), and the 97×125 crop
made degenerate: F constant grey 128 (Qc, Qcb and Qcv undefined on both sides),
F = B, A = B, and F = A = B (PSNR infinite on both sides).  Each record is held
to the same tolerance as the square calibration (``calibration.tolerance`` and
``calibration.absolute_bound``).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from fusionbench.metric_registry import list_metrics
from fusionbench.metrics import calibration as C

from ._calibration_check import assert_matches, assert_summary_equal

DATA = json.loads((Path(__file__).with_name("nonsquare_reference.json")).read_text())
CASES = C.cases(DATA)
CROPS = {t["id"]: t for t in DATA["triples"]}


def test_the_crops_are_non_square_and_off_the_block_grids() -> None:
    for crop in DATA["triples"]:
        h, w = (hi - lo for lo, hi in (crop["rows"], crop["cols"]))
        assert h != w, crop["id"]
        assert h % 16 or w % 16, f"{crop['id']}: both sides multiples of 16"


def test_every_reference_and_crop_is_covered() -> None:
    assert len(CASES) >= 500  # 533 today; fewer means the file or the label map broke
    assert {c.reference for c in CASES} == set(C.TARGETS)
    assert {c.triple for c in CASES} == set(CROPS)
    missing = sorted({c.preset for c in CASES} - set(list_metrics()))
    assert not missing, f"presets missing for non-square records: {missing}"
    # a reference may fail only on a degenerate fused image (MEFB's NMI, Qncie and TE index a
    # histogram with the NaN of their 0/0 stretch of a constant image)
    failed = [r for r in DATA["records"] if r.get("error") and "fused" not in CROPS[r["triple"]]]
    assert not failed, f"reference runs that errored: {failed[:3]}"


@pytest.mark.calibration
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.preset}-{c.triple}")
def test_matches_reference_on_non_square_crops(case: C.Case, metrics_ref) -> None:
    ref_dir, shared = metrics_ref
    crop = CROPS[case.triple]
    F, A, B = C.crop_triple_images(ref_dir, shared, crop)
    assert F.shape == tuple(hi - lo for lo, hi in (crop["rows"], crop["cols"]))
    assert_matches(case, F, A, B)


def test_agreement_rule() -> None:
    """``within_tolerance``: equal values (infinities too), both undefined, or within max(rel, absolute)."""
    inf, nan = math.inf, math.nan
    assert C.within_tolerance(inf, inf, 1e-6) and C.within_tolerance(nan, nan, 1e-6)
    assert not C.within_tolerance(nan, 1.0, 1.0) and not C.within_tolerance(1.0, nan, 1.0)
    assert not C.within_tolerance(inf, -inf, 1e-6)
    assert C.within_tolerance(1.0 + 5e-7, 1.0, 1e-6) and not C.within_tolerance(1.0 + 2e-6, 1.0, 1e-6)
    assert C.within_tolerance(0.51, 0.5, 1e-3, abs_bound=0.02) and not C.within_tolerance(0.53, 0.5, 1e-3, 0.02)
    # no absolute floor: a tiny reference value (Nabf's 7.3e-11 on syn_s2_avg_41x57) is held to ``rel`` too
    assert C.within_tolerance(7.3e-11 * (1 + 5e-10), 7.3e-11, 1e-9) and not C.within_tolerance(7.3e-11 * 1.01, 7.3e-11, 1e-9)
    assert C.within_tolerance(0.0, 0.0, 1e-9) and not C.within_tolerance(1e-300, 0.0, 1e-9)


def test_summary_script_lists_every_record(tmp_path, metrics_ref) -> None:
    """``scripts/calibration_summary.py --nonsquare`` (docs/calibration_summary_nonsquare.csv): one row per
    record, every compared target within tolerance, the not-comparable and errored records noted, and the
    committed file equal to it (``_calibration_check.assert_summary_equal``)."""
    import csv
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "scripts" / "calibration_summary.py"
    spec = importlib.util.spec_from_file_location("calibration_summary", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "summary.csv"
    assert module.main(["--nonsquare", "--ref", str(metrics_ref[0]), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(DATA["records"])
    assert sum(r["ok"] == "True" for r in rows) == len(CASES) - len(
        [c for c in CASES if (c.preset, c.triple) in C.NOT_COMPARABLE])
    assert all(r["note"] for r in rows if not r["ok"])
    # and docs/calibration_summary_nonsquare.csv is this file (not stale), but for CPU round-off in ours
    assert_summary_equal(out, Path(__file__).resolve().parents[2] / "docs" / "calibration_summary_nonsquare.csv")
