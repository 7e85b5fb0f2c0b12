"""Every compiled (numba) kernel is found again in numba's disk cache by a new process.

A worker process pays a kernel's compilation once per process unless numba's on-disk cache hits; a kernel
built as a closure over another compiled function misses it in every new process (numba keys the cache
on the pickled closure variables, and a dispatcher pickles differently in each process). In session 7
that cost a fresh worker 4-12 s of CPU per method (MDL, MLEPF, DTNP, CNP). Here a first process warms
the cache, and a second one, fusing and scoring the same way, must compile nothing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

#: the registered methods with compiled kernels (the classical transforms are numpy/scipy)
NUMBA_METHODS = ("legff", "mdl", "mlepf", "dtnp", "cnp", "swinfusion", "matr", "mopa")

_SCRIPT = """
import json, sys
import numpy as np
from numba.core import event
recorder = event.RecordingListener()
event.register("numba:compile", recorder)
from fusionbench.api import fuse_arrays
from fusionbench.method_registry import create_method
from fusionbench.metrics import evaluate
rng = np.random.default_rng(0)
a = rng.integers(0, 256, (64, 72), dtype=np.uint8)
b = rng.integers(0, 256, (64, 72, 3), dtype=np.uint8)
for name in sys.argv[1:]:
    fused = fuse_arrays(create_method(name), a, b)
evaluate(fused if fused.ndim == 2 else fused[..., 0], a, b[..., 0], "all")
if "mlepf" in sys.argv[1:]:
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


def _compiled_in_a_new_process() -> list[str]:
    done = subprocess.run([sys.executable, "-c", _SCRIPT, *NUMBA_METHODS], capture_output=True, text=True,
                          timeout=900, env={**os.environ, "FUSIONBENCH_WORKER_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_second_process_compiles_no_kernel() -> None:
    _compiled_in_a_new_process()  # warms the cache where it is cold (a fresh clone: every kernel compiles)
    assert _compiled_in_a_new_process() == []


def test_the_eigen_solver_kernel_has_the_solvers_constants() -> None:
    from fusionbench.methods import _small_eig, _small_eig_kernels

    assert (_small_eig_kernels.N, _small_eig_kernels.MAX_SWEEPS) == (_small_eig.N, _small_eig.MAX_SWEEPS)
