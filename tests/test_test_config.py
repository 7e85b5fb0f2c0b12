"""The default test run's pytest-xdist set-up keeps the numba cache warm-up first (docs/testing.md, rules 1 and 5)."""
from __future__ import annotations

import pytest


def _option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def test_workers_take_the_tests_in_collection_order(pytestconfig: pytest.Config) -> None:
    """``--dist load`` gives the first worker the first tests, the cache warm-up among them; ``loadfile`` and
    ``loadscope`` start with the largest files and ran it late (cold suite 8 min 37 s against 6 min 55 s)."""
    args = pytestconfig.getini("addopts")  # pyproject.toml's addopts, as pytest split them
    assert _option(args, "-n") == "auto" and _option(args, "--dist") == "load", args
    assert args[:2] == ["-m", "not slow"], args


def test_the_warm_up_test_is_collected_first(request: pytest.FixtureRequest) -> None:
    """``tests/conftest.py`` moves the warm-up to the front of the session's items (what ``--dist load`` hands out first)."""
    from conftest import CACHE_WARMING_TESTS

    items = request.session.items
    if len(items) < 2 or not any(f"{i.path.name}::{i.name}" in CACHE_WARMING_TESTS for i in items):
        pytest.skip("the warm-up test is not part of this run")
    assert f"{items[0].path.name}::{items[0].name}" in CACHE_WARMING_TESTS
