"""A run without the shared assets fails with one clear line instead of skipping (issue 14, point 7).

Each case runs pytest in a subprocess (collection only, so it is quick) with
``FUSIONBENCH_SHARED`` pointing at a folder that is absent or incomplete.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from _assets import ALLOW_ENV, MIN_CALIBRATION_CASES, REQUIRED, missing_assets, shared_root

REPO = Path(__file__).resolve().parents[1]


def _pytest(shared: Path, allow: bool, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["FUSIONBENCH_SHARED"] = str(shared)
    env.pop(ALLOW_ENV, None)
    if allow:
        env[ALLOW_ENV] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_missing_shared_folder_fails_the_run(tmp_path: Path) -> None:
    absent = tmp_path / "no_such_shared"
    r = _pytest(absent, False, "tests/metrics/test_calibration.py")
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "shared test assets not found" in out and str(absent) in out and ALLOW_ENV in out, out
    assert "test_matches_reference" not in out  # nothing collected


def test_incomplete_shared_folder_names_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "data" / "harvard").mkdir(parents=True)
    assert missing_assets(tmp_path) == [str(tmp_path / rel) for rel in REQUIRED if rel != "data/harvard"]
    r = _pytest(tmp_path, False, "tests/metrics/test_calibration.py")
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert str(tmp_path / "metrics_ref" / "reference_values.json") in out, out


def test_allowed_missing_assets_skip_with_a_reason(tmp_path: Path) -> None:
    absent = tmp_path / "no_such_shared"
    r = _pytest(absent, True, "tests/metrics/test_calibration.py")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    # one explicit, named skip parameter instead of an empty parameter set
    assert "test_matches_reference[no-reference-values]" in out, out
    assert "empty parameter set" not in out


def test_present_assets_collect_every_calibration_case() -> None:
    """With the real folder the calibration test has every mapped record (776 today)."""
    import json

    from fusionbench.metrics import calibration as C

    assert not missing_assets(), f"run needs the shared assets: {missing_assets()}"
    ref = json.loads((shared_root() / "metrics_ref" / "reference_values.json").read_text())
    assert len(C.cases(ref)) >= MIN_CALIBRATION_CASES
