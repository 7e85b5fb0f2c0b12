"""Every compiled (numba) kernel is found again in numba's disk cache by a new process.

A worker process pays a kernel's compilation once per process unless numba's on-disk cache hits; a kernel
built as a closure over another compiled function misses it in every new process (numba keys the cache
on the pickled closure variables, and a dispatcher pickles differently in each process). In session 7
that cost a fresh worker 4-12 s of CPU per method (MDL, MLEPF, DTNP, CNP). Here first processes warm
the cache, and then one more, fusing and scoring with every method and metric, must compile nothing.

The warm-up runs in :data:`WARM_GROUPS` processes at the same time: with a cold cache (a fresh clone, as in
CI) it compiles every kernel of the project, some 200 s of CPU, and the two processes share a two-core
machine (measured under load: 577 s -> 463 s for this test, the FMI group being the longer one; a fresh
clone's CI run, idle, session 14: 118 s, then about 60 s once FMI's kernels compiled in a third of the time).
``tests/conftest.py`` runs this test first, so that the rest of the session finds the kernels in the
disk cache (docs/testing.md).
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile

import pytest

#: the registered methods with compiled kernels (the classical transforms are numpy/scipy)
NUMBA_METHODS = ("legff", "mdl", "mlepf", "dtnp", "cnp", "nsst_papcnn", "swinfusion", "matr", "mopa", "sdnet")

#: the FMI metrics: their kernels (``_fmi_kernel``, ``_fmi_lanes``) are the largest part of a cold compile
FMI_METRICS = "FMI_dct,FMI_edge,FMI_pixel,FMI_w"

#: the warm-up processes, run at the same time: (metric presets, methods); together every method of
#: :data:`NUMBA_METHODS` and every metric of ``"all"`` (checked below), in two halves of about equal cold
#: compile time (session 14, idle, one process each: FMI's four metrics 39.6 s and with ``mopa`` 59.6 s; the
#: other metrics with the other eight methods 50.5 s). FMI's lane kernels, once 125 s alone (two array types
#: and two row-index types each, and ~700 conditional expressions in one kernel), cannot be split further
#: without compiling them twice
WARM_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (FMI_METRICS, ("mopa",)),
    ("all:not_fmi", tuple(m for m in NUMBA_METHODS if m != "mopa")),
)

_SCRIPT = """
import json, sys
import numpy as np
from numba.core import event
recorder = event.RecordingListener()
event.register("numba:compile", recorder)
from fusionbench.api import fuse_arrays
from fusionbench.method_registry import create_method
from fusionbench.metrics import evaluate
from fusionbench.metric_registry import resolve_metrics
rng = np.random.default_rng(0)
a = rng.integers(0, 256, (64, 72), dtype=np.uint8)
b = rng.integers(0, 256, (64, 72, 3), dtype=np.uint8)
metrics, methods = sys.argv[1], sys.argv[2:]
if metrics == "all:not_fmi":
    metrics = [m for m in resolve_metrics("all") if not m.startswith("FMI_")]
fused = b  # what every method returns for this pair: a colour uint8 image (scored through its first channel)
for name in methods:
    fused = fuse_arrays(create_method(name), a, b)
evaluate(fused if fused.ndim == 2 else fused[..., 0], a, b[..., 0], metrics)
if "mlepf" in methods:
    # MLEPF's scale-by-scale MLMG runs only for structuring-element increments other than the official ones
    # (and in the tests): called directly, grouped and step by step
    from fusionbench.methods import mlepf
    steps = np.array([(1, 0), (3, 0), (3, 2), (3, 3)], dtype=np.int64)
    for grouped in (True, False):
        mlepf._mlmg_plane_kernel()(rng.random((9, 11)), steps, np.ones(4), grouped, np.zeros((9, 11)))
ours = ("fusionbench.", "methods.", "metrics.")  # numba's own overloads compile along with a missed kernel
compiled = sorted({f"{d.py_func.__module__}.{d.py_func.__qualname__}" for d in
                   (ev.data.get("dispatcher") for _, ev in recorder.buffer if ev.status == event.EventStatus.START)
                   if d is not None and d.py_func.__module__.startswith(ours)})
print(json.dumps(compiled))
"""


def _args(metrics: str, methods: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-c", _SCRIPT, metrics, *methods]


def _compiled(done: subprocess.CompletedProcess) -> list[str]:
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _env() -> dict[str, str]:
    """This process's environment (read at the call: ``weights_home`` sets ``FUSIONBENCH_HOME``), one worker thread."""
    return {**os.environ, "FUSIONBENCH_WORKER_THREADS": "1"}


def _warm_the_cache() -> set[str]:
    """Run :data:`WARM_GROUPS` at the same time (where the cache is cold, a fresh clone: every kernel compiles);
    the kernels they compiled (and saved)."""
    compiled: set[str] = set()
    with contextlib.ExitStack() as stack:
        logs = [(stack.enter_context(tempfile.TemporaryFile("w+")), stack.enter_context(tempfile.TemporaryFile("w+")))
                for _ in WARM_GROUPS]  # files, not pipes: a full pipe would stall one process until the other ends
        procs = [subprocess.Popen(_args(metrics, methods), stdout=out, stderr=err, text=True, env=_env())
                 for (metrics, methods), (out, err) in zip(WARM_GROUPS, logs)]
        try:
            for proc, (out, err) in zip(procs, logs):
                proc.wait(timeout=900)
                out.seek(0)
                err.seek(0)
                compiled.update(_compiled(subprocess.CompletedProcess(proc.args, proc.returncode, out.read(),
                                                                      err.read())))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    return compiled


def _compiled_in_a_new_process() -> list[str]:
    """What a new process fusing with every method of :data:`NUMBA_METHODS` and scoring ``"all"`` compiles."""
    return _compiled(subprocess.run(_args("all", NUMBA_METHODS), capture_output=True, text=True, timeout=900,
                                    env=_env()))


@pytest.mark.usefixtures("weights_home")  # the deep methods' weights, for the processes (FUSIONBENCH_HOME)
def test_a_second_process_compiles_no_kernel() -> None:
    warmed = _warm_the_cache()
    compiled = _compiled_in_a_new_process()
    # numba updates a kernel's cache index by read-modify-write, unlocked: two processes saving overloads of one
    # kernel at the same moment (the two warm-up groups, or the other test worker compiling it for other types on
    # a cold cache) can each drop the other's entry.  Such a kernel was compiled by the warm-up and is saved again
    # by the process above; a kernel that misses the cache in every new process (what this test guards) compiles
    # again in the next one, and one the warm-up never compiled fails at once.
    assert set(compiled) <= warmed, sorted(set(compiled) - warmed)
    if compiled:
        compiled = _compiled_in_a_new_process()
    assert compiled == []


def test_the_warm_up_groups_cover_every_method_and_metric() -> None:
    from fusionbench.metric_registry import resolve_metrics

    methods = [m for _, group in WARM_GROUPS for m in group]
    assert sorted(methods) == sorted(NUMBA_METHODS)
    fmi = FMI_METRICS.split(",")
    assert set(fmi) == {m for m in resolve_metrics("all") if m.startswith("FMI_")} and len(fmi) == 4
    assert [g for g, _ in WARM_GROUPS] == [FMI_METRICS, "all:not_fmi"]


def test_the_eigen_solver_kernel_has_the_solvers_constants() -> None:
    from fusionbench.methods import _small_eig, _small_eig_kernels

    assert (_small_eig_kernels.N, _small_eig_kernels.MAX_SWEEPS) == (_small_eig.N, _small_eig.MAX_SWEEPS)


def test_the_cold_compile_benchmark_covers_the_same_methods() -> None:
    """``benchmarks/benchmark_compile.py`` times the cold compile of the methods this module warms up."""
    import ast
    from pathlib import Path

    source = Path(__file__).resolve().parents[2] / "benchmarks" / "benchmark_compile.py"
    if not source.is_file():
        pytest.skip("benchmarks/ is not beside the tests (an installed package)")
    tree = ast.parse(source.read_text())
    values = [ast.literal_eval(node.value) for node in tree.body
              if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "NUMBA_METHODS" for t in node.targets)]
    assert values == [NUMBA_METHODS]
