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
# Child interpreters started by tests (python -c/-m) must import the installed package, not the source
# checkout that is their working folder (it lacks fusionbench.methods/metrics): no cwd on their sys.path.
os.environ["PYTHONSAFEPATH"] = "1"
# Importing fusionbench sets NUMBA_CACHE_DIR from FUSIONBENCH_HOME (fusionbench.config.use_numba_cache_home) here,
# in the process that starts the test processes (pytest-xdist): they and their children inherit one kernel cache
# for the whole session, whatever FUSIONBENCH_HOME a fixture sets later.
import fusionbench  # noqa: E402,F401
pytest_plugins = ["_assets"]  # tests/ is on sys.path (rootdir-less test layout); a missing ../shared fails the run (FUSIONBENCH_ALLOW_MISSING_ASSETS=1 skips)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``../shared`` folder (data, official outputs, metric references)."""
    if not SHARED.is_dir():
        pytest.skip(f"shared assets not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def metrics_ref(shared_dir: Path) -> tuple[Path, dict]:
    """``(folder, parsed reference_values.json)`` of ``../shared/metrics_ref`` (the calibration tests)."""
    from fusionbench.metrics import calibration

    path = shared_dir / "metrics_ref"
    if not (path / "reference_values.json").is_file():
        pytest.skip("metrics_ref/reference_values.json not found")
    return path, calibration.load_reference(path)


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


@pytest.fixture(scope="session")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment in which the tiny plugin distribution of ``tests/plugin_dist`` is installed.

    It is a real distribution installed by pip (into a throwaway ``--target``
    folder put on ``PYTHONPATH``), so its entry points are discovered exactly
    as a third-party package's would be.
    """
    import subprocess
    import sys

    import shutil

    target = tmp_path_factory.mktemp("plugin_site")
    # built from a copy, so that setuptools' build/ and *.egg-info do not land in the checkout
    source = shutil.copytree(REPO / "tests" / "plugin_dist", tmp_path_factory.mktemp("plugin_src") / "dist",
                             ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target",
         str(target), str(source)],
        check=True, capture_output=True, text=True,
    )
    env = dict(os.environ)
    # no empty entry: an empty PYTHONPATH entry means the working folder, where a checkout would shadow the install
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(target), env.get("PYTHONPATH", "")) if p)
    return env


@pytest.fixture(scope="session")
def make_pairs():
    """Factory fixture: ``make_pairs(root, n, size=48, colour=True, seed=0)`` writes a folder dataset."""
    return _make_pairs


def _make_pairs(root: Path, n: int, size: int = 48, colour: bool = True, seed: int = 0) -> Path:
    """Write ``n`` random pairs into ``root/a`` and ``root/b`` (a folder dataset)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    (root / "a").mkdir(parents=True, exist_ok=True)
    (root / "b").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        a = rng.integers(0, 256, (size, size), dtype=np.uint8)
        b = rng.integers(0, 256, (size, size, 3) if colour else (size, size), dtype=np.uint8)
        Image.fromarray(a).save(root / "a" / f"p{i:03d}.png")
        Image.fromarray(b).save(root / "b" / f"p{i:03d}.png")
    return root


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test: the shared 2-core machine is oversubscribed, and results must not
    depend on the thread count (use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def sigint_delivered():
    """Ctrl-C (SIGINT) raises ``KeyboardInterrupt`` in this test process and reaches the processes it starts.

    A job that a non-interactive shell starts in the background (``pytest ... &`` in a script) inherits SIGINT
    *ignored*, and Python then leaves it ignored, in the test processes and in every child: a test that sends
    SIGINT would see nothing happen.  This puts Python's own handler back for the test (a child started meanwhile
    inherits the default action, and its Python installs the same handler), then restores what was there."""
    import signal

    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


#: run first: it compiles every numba kernel of the project into numba's disk cache, in parallel processes
#: (tests/methods/test_numba_cache.py), so that with a cold cache (a fresh clone, as in CI) the later tests
#: and the processes they start load the kernels instead of each compiling them again (docs/testing.md).
#: Under pytest-xdist's ``--dist load`` the first worker's first run of tests starts with it (``--dist loadfile``
#: would not keep this: it hands out the files with the most tests first).
CACHE_WARMING_TESTS = ("test_numba_cache.py::test_a_second_process_compiles_no_kernel",)


#: test files that compile none of the project's numba kernels, in their process or in the ones they start (each
#: run alone with an empty cache left the cache folder empty, session 27), and that spend much of their time
#: waiting on other processes: the second test process runs them first, while the warm-up compiles (some 150 s
#: wall on two cores), instead of compiling the warm-up's kernels a second time for the methods' tests that would
#: otherwise come first (``test_mopa.py``'s first test took 33.7 s so, against 0.3 s on a warm cache)
COLD_CACHE_SAFE = ("tests/data/", "tests/train/", "tests/runner/test_pool_failures.py",
                   "tests/runner/test_kill_resume.py", "tests/runner/test_sandbox.py", "tests/runner/test_worker.py")


def first_chunk(n_items: int, n_workers: int, max_chunk: int | None = None) -> int:
    """How many consecutive tests pytest-xdist's ``--dist load`` hands each worker at the start (its
    ``LoadScheduling.schedule``: a quarter of a worker's share, at least 2): the second worker starts at this index.
    ``tests/test_test_config.py`` checks it against the installed pytest-xdist."""
    chunk = (n_items // n_workers) // 4
    if max_chunk is not None:
        chunk = min(chunk, max_chunk)
    return max(chunk, 2)


def _is_cold_cache_safe(item: pytest.Item) -> bool:
    path = item.path.relative_to(REPO).as_posix() if item.path.is_relative_to(REPO) else ""
    return path.startswith(COLD_CACHE_SAFE)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """pytest-xdist's hook, in the process that starts the test processes: tell each its distribution mode (in a
    test process ``--dist`` reads ``no``)."""
    node.workerinput["dist"] = node.config.getoption("dist")


@pytest.hookimpl(trylast=True)  # after ``-m 'not slow'`` has deselected: the positions are those of the run's tests
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Move :data:`CACHE_WARMING_TESTS` to the front and, in a run of two or more test processes, the
    :data:`COLD_CACHE_SAFE` tests to where the second process's first tests are (:func:`first_chunk`); the rest keep
    their order (no test depends on it; every test process orders the same collection the same way, as
    pytest-xdist requires)."""
    first = [item for item in items if f"{item.path.name}::{item.name}" in CACHE_WARMING_TESTS]
    if not first:
        return
    rest = [item for item in items if item not in first]
    workerinput = getattr(config, "workerinput", {})
    if workerinput.get("workercount", 1) > 1 and workerinput.get("dist") == "load":
        safe = [item for item in rest if _is_cold_cache_safe(item)]
        others = [item for item in rest if not _is_cold_cache_safe(item)]
        at = first_chunk(len(items), workerinput["workercount"], config.getoption("maxschedchunk", None)) - len(first)
        rest = others[:at] + safe + others[at:]
    items[:] = first + rest


@pytest.fixture
def pool_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ``max_workers`` of every ``concurrent.futures.ThreadPoolExecutor`` created during the test (the methods'
    parallel loops import it where they run it), to check that a loop uses the thread count it should."""
    import concurrent.futures

    sizes: list[int] = []
    real = concurrent.futures.ThreadPoolExecutor

    class Recording(real):  # type: ignore[misc,valid-type]
        def __init__(self, max_workers=None, *args, **kwargs):  # noqa: ANN001
            sizes.append(max_workers)
            super().__init__(max_workers, *args, **kwargs)

    monkeypatch.setattr(concurrent.futures, "ThreadPoolExecutor", Recording)
    return sizes
