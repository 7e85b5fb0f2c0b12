"""asv suite: what a fresh install's first process pays to compile the project's numba kernels.

``track_cold_cpu_seconds`` starts a new interpreter with an empty numba cache folder
(``NUMBA_CACHE_DIR``) that scores one 64×72 triple with a metric group, or fuses one pair with a
method, and reports that process's CPU time (user + system: a loaded machine reads about the same as
an idle one).  ``track_warm_cpu_seconds`` runs the same again on the cache the first one left: the
price of every later process (imports and cache loads).  The ``imports`` case does nothing after
importing, the floor of both.

    asv run --python=same --set-commit-hash $(git rev-parse HEAD) --bench benchmark_compile

Why it exists: a kernel rewrite can make numba's passes, not the code it emits, slow. Session 8's
3×3 FMI kernel did: by session 14 FMI's cold compile took 125 s of CPU (the whole ``all`` group's
had taken 33 s in session 4), unnoticed until session 14 timed the test suite's warm-up;
docs/metrics.md ("Speed") and docs/testing.md have the figures.
Methods whose weights are not in the cache are left out (as in ``benchmark_methods``).

``FirstRun`` times a whole ``fusionbench run`` of those methods on the built-in pairs (two workers) on an empty
kernel cache and again on the cache it left.  Session 27, idle 2-core machine, the seven methods whose weights
were here: cold 112.4 s (221.5 s of CPU), warm 57.8 s (113.0 s), ratio 1.94; with the first-use hold switched
off (docs/runner.md, "First uses apart"), cold 140.3 s (276.5 s of CPU).
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile

from ._settings import OneShot

#: the registered methods with numba kernels (tests/methods/test_numba_cache.py holds the same list)
NUMBA_METHODS = ("legff", "mdl", "mlepf", "dtnp", "cnp", "nsst_papcnn", "swinfusion", "matr", "mopa", "sdnet")

_SCRIPT = """
import sys
import numpy as np
from fusionbench.api import fuse_arrays
from fusionbench.method_registry import create_method
from fusionbench.metrics import evaluate
kind, name = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)
a = rng.integers(0, 256, (64, 72), dtype=np.uint8)
b = rng.integers(0, 256, (64, 72, 3), dtype=np.uint8)
if kind == "metrics":
    evaluate(b[..., 1], a, b[..., 0], name)
elif kind == "method":
    fuse_arrays(create_method(name), a, b)
"""


def _cases() -> list[str]:
    from fusionbench.method_registry import create_method

    methods = [m for m in NUMBA_METHODS if create_method(m).unavailable_reason() is None]
    return ["imports", "metrics:paper", "metrics:FMI_*", "metrics:all", *(f"method:{m}" for m in methods)]


def cpu_seconds_of(case: str, cache_dir: str) -> float:
    """User + system CPU seconds of a new interpreter running ``case`` with numba's cache in ``cache_dir``."""
    kind, _, name = case.partition(":")
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, FUSIONBENCH_WORKER_THREADS="1")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", _SCRIPT, kind, name], env=env, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


class ColdCompile(OneShot):
    """One case per parameter: a metric group, a method, or the imports alone."""

    params = [_cases()]
    param_names = ["case"]
    timeout = 900
    unit = "seconds"

    def setup(self, case: str) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="fusionbench-cold-")

    def teardown(self, case: str) -> None:
        self._folder.cleanup()

    def track_cold_cpu_seconds(self, case: str) -> float:
        return cpu_seconds_of(case, self._folder.name)

    def track_warm_cpu_seconds(self, case: str) -> float:
        cpu_seconds_of(case, self._folder.name)  # fills the cache
        return cpu_seconds_of(case, self._folder.name)


def run_seconds(methods: list[str], cache_dir: str, out: str, workers: int = 2) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of ``fusionbench run`` with ``methods`` on the built-in pairs (the
    paper's metrics, ``workers`` processes, no report), numba's cache in ``cache_dir``."""
    import time

    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    args = [sys.executable, "-m", "fusionbench", "run", "--methods", ",".join(methods), "--workers", str(workers),
            "--no-report", "--quiet", "--out", out]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(args, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


class FirstRun(OneShot):
    """A researcher's first ``fusionbench run`` after installing: the methods with kernels on the built-in pairs,
    two workers, on an empty kernel cache (cold) and then on the cache it left (warm).  The runner keeps a method's
    first use apart on a cold cache (docs/runner.md, "First uses apart"), so that one worker compiles its kernels,
    not each; ``track_cold_over_warm`` is what the first run costs over a later one."""

    timeout = 1800
    unit = "seconds"

    def setup(self) -> None:
        from fusionbench.method_registry import create_method

        self._methods = [m for m in NUMBA_METHODS if create_method(m).unavailable_reason() is None]
        self._folder = tempfile.TemporaryDirectory(prefix="fusionbench-first-run-")

    def teardown(self) -> None:
        self._folder.cleanup()

    def _run(self, name: str) -> float:
        """Wall seconds of one run into ``<folder>/<name>``, numba's cache in ``<folder>/numba``."""
        return run_seconds(self._methods, os.path.join(self._folder.name, "numba"),
                           os.path.join(self._folder.name, name))[0]

    def track_cold_wall_seconds(self) -> float:
        return self._run("cold")

    def track_cold_over_warm(self) -> float:
        cold = self._run("cold")
        return cold / self._run("warm")

    track_cold_over_warm.unit = "ratio"
