"""The default test run's pytest-xdist set-up keeps the numba cache warm-up first (docs/testing.md, rules 1 and 5)."""
from __future__ import annotations

from types import SimpleNamespace

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


def _reordered_after_conftest(config: pytest.Config) -> bool:
    """``--lf``, ``--ff`` and ``--nf`` reorder (or drop) the tests after ``tests/conftest.py`` has: its order is not
    the run's then."""
    return any(config.getoption(name, False) for name in ("lf", "failedfirst", "newfirst"))


def test_the_warm_up_test_is_collected_first(request: pytest.FixtureRequest) -> None:
    """``tests/conftest.py`` moves the warm-up to the front of the session's items (what ``--dist load`` hands out first)."""
    from conftest import CACHE_WARMING_TESTS

    if _reordered_after_conftest(request.config):
        pytest.skip("--lf/--ff/--nf reorder the tests after tests/conftest.py")
    items = request.session.items
    if len(items) < 2 or not any(f"{i.path.name}::{i.name}" in CACHE_WARMING_TESTS for i in items):
        pytest.skip("the warm-up test is not part of this run")
    assert f"{items[0].path.name}::{items[0].name}" in CACHE_WARMING_TESTS


class _StubConfig:
    """What pytest-xdist's ``LoadScheduling`` reads of a config: the worker specs and ``--maxschedchunk``."""

    def __init__(self, workers: int) -> None:
        self.values = {"tx": [f"{workers}*popen"], "maxschedchunk": None}

    def getvalue(self, name: str):
        return self.values[name]

    getoption = getvalue


class _StubNode:
    """A worker as the scheduler sees it: an id, and the test indices it is sent."""

    def __init__(self, index: int) -> None:
        self.gateway = SimpleNamespace(id=f"gw{index}")
        self.sent: list[int] = []

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.extend(indices)

    def shutdown(self) -> None:
        pass


@pytest.mark.parametrize("n_items, workers", [(4070, 2), (4070, 4), (300, 2), (9, 2)])
def test_first_chunk_is_where_the_installed_xdist_starts_each_worker(n_items: int, workers: int) -> None:
    """``tests/conftest.py`` puts the cold-cache-safe tests at the second worker's first test; this asks the
    installed pytest-xdist's scheduler where that is."""
    from xdist.scheduler.load import LoadScheduling

    from conftest import first_chunk

    scheduler = LoadScheduling(_StubConfig(workers))
    nodes = [_StubNode(i) for i in range(workers)]
    collection = [f"t{i}" for i in range(n_items)]
    for node in nodes:
        scheduler.add_node(node)
    for node in nodes:
        scheduler.add_node_collection(node, collection)
    scheduler.schedule()
    assert [node.sent[0] for node in nodes] == [k * first_chunk(n_items, workers) for k in range(workers)]


def test_the_second_worker_starts_with_the_cold_cache_safe_tests(request: pytest.FixtureRequest) -> None:
    """In a run of two or more test processes, the second one's first tests are those of ``COLD_CACHE_SAFE``."""
    from conftest import CACHE_WARMING_TESTS, _is_cold_cache_safe, first_chunk

    config = request.config
    workerinput = getattr(config, "workerinput", {})
    workers = workerinput.get("workercount", 1)
    items = request.session.items
    if _reordered_after_conftest(config):
        pytest.skip("--lf/--ff/--nf reorder the tests after tests/conftest.py")
    if workers < 2 or workerinput.get("dist") != "load" or not any(f"{i.path.name}::{i.name}" in CACHE_WARMING_TESTS for i in items):
        pytest.skip("not a run of several test processes with the warm-up test")
    at = first_chunk(len(items), workers, config.getoption("maxschedchunk", None))
    safe = [i for i, item in enumerate(items) if _is_cold_cache_safe(item)]
    if not safe:
        pytest.skip("no cold-cache-safe test in this run")
    assert safe == list(range(min(at, len(items) - len(safe)), min(at, len(items) - len(safe)) + len(safe)))
