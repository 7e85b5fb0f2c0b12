"""Shared test fixtures.

Tests read third-party assets from ``../shared`` (beside the checkout; override
with ``FUSIONBENCH_SHARED``) and never copy them into the project.  Tests that
need an asset that is absent are skipped with the reason.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FUSIONBENCH_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``../shared`` folder (data, official outputs, metric references)."""
    if not SHARED.is_dir():
        pytest.skip(f"shared assets not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def official_dir(shared_dir: Path) -> Path:
    return shared_dir / "official"


@pytest.fixture(scope="session")
def weights_home(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    """A ``FUSIONBENCH_HOME`` whose weights cache is filled from ``../shared/official``.

    Uses the real ``fetch_weights(name, from_dir=...)`` path with sha256 checks,
    as CI and offline users do.  Session-wide: set for every test that asks.
    """
    home = tmp_path_factory.mktemp("fusionbench_home")
    old = os.environ.get("FUSIONBENCH_HOME")
    os.environ["FUSIONBENCH_HOME"] = str(home)
    from fusionbench.weights import all_weight_names, fetch_weights

    for name in all_weight_names():
        try:
            fetch_weights(name, from_dir=shared_dir / "official")
        except FileNotFoundError:
            pass
    yield home
    if old is None:
        os.environ.pop("FUSIONBENCH_HOME", None)
    else:
        os.environ["FUSIONBENCH_HOME"] = old
