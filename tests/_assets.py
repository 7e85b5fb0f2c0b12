"""pytest plugin: the run fails at once when the shared test assets are missing (issue 14, point 7).

The calibration and fidelity tests read third-party assets (reference metric
values, official outputs, the Harvard and TNO images) from the shared folder:
``$FUSIONBENCH_SHARED``, by default ``../shared`` beside the checkout.  Without
it those tests would quietly skip (the 776 calibration cases collapsed into one
"empty parameter set") and a green run would carry no calibration or fidelity
evidence.  So a missing folder (or a missing part of it) stops the session
before collection with one line naming the path, unless
``FUSIONBENCH_ALLOW_MISSING_ASSETS=1`` says that skipping is intended; then the
tests that need an asset skip with the reason.

Registered by ``pytest_plugins`` in ``tests/conftest.py`` (``tests/`` is on ``sys.path``).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ALLOW_ENV = "FUSIONBENCH_ALLOW_MISSING_ASSETS"
# what the suite reads from the shared folder
REQUIRED = ("metrics_ref/reference_values.json", "data/harvard", "data/tno", "official", "official/octave_runs")
# 776 mapped calibration records today; fewer means the reference file or the label map broke
MIN_CALIBRATION_CASES = 700


def shared_root() -> Path:
    """The shared asset folder: ``$FUSIONBENCH_SHARED`` or ``../shared`` beside the checkout."""
    return Path(os.environ.get("FUSIONBENCH_SHARED", REPO.parent / "shared")).resolve()


def missing_allowed() -> bool:
    """True when ``FUSIONBENCH_ALLOW_MISSING_ASSETS=1`` (tests needing assets then skip)."""
    return os.environ.get(ALLOW_ENV, "").strip() == "1"


def missing_assets(root: Path | None = None) -> list[str]:
    """The required entries that are absent under ``root`` (all of them when ``root`` itself is absent)."""
    root = shared_root() if root is None else root
    if not root.is_dir():
        return [str(root)]
    return [str(root / rel) for rel in REQUIRED if not (root / rel).exists()]


def message(missing: list[str]) -> str:
    """The one-line error for a run without its assets."""
    return (f"shared test assets not found: {', '.join(missing)} (set FUSIONBENCH_SHARED to the shared folder, "
            f"or {ALLOW_ENV}=1 to skip the tests that need them)")


def pytest_configure(config: pytest.Config) -> None:
    missing = missing_assets()
    if missing and not missing_allowed():
        raise pytest.UsageError(message(missing))


def pytest_report_header(config: pytest.Config) -> str:
    missing = missing_assets()
    state = "present" if not missing else f"MISSING, tests needing them skip ({ALLOW_ENV}=1)"
    return f"fusionbench shared assets: {shared_root()} ({state})"
