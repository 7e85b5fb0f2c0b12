"""Run a compiled (numba) kernel under several instruction sets of this CPU, for the same-bits tests.

numba compiles for the CPU named by ``NUMBA_CPU_NAME``; on an AVX-512 machine the same code can be
compiled for plain x86-64 (SSE2, no FMA), Haswell (AVX2, 256-bit) and Skylake-AVX512 (512-bit), each in
its own process with its own cache folder, so a test can check that a kernel's results do not depend
on the SIMD width or on FMA instructions (the project's CPU-independence rule).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

#: the instruction sets compared: SSE2 without FMA, AVX2, AVX-512
CPUS = ("x86-64", "haswell", "skylake-avx512")


def has_avx512() -> bool:
    """Whether this CPU can run code compiled for every one of :data:`CPUS`."""
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


#: mark for the tests that need :func:`has_avx512`
needs_avx512 = pytest.mark.skipif(not has_avx512(), reason="needs an AVX-512 CPU to compare the instruction sets")


def outputs_per_cpu(script: str, tmp_path: Path, suffix: str = ".npy", timeout: float = 300) -> dict[str, Path]:
    """Run ``script`` (which saves its results to ``sys.argv[1]``) once per CPU of :data:`CPUS`; the files.

    The three processes run at the same time (each compiles its kernels alone, in its own cache folder, so
    they share nothing): on a machine with two or more cores the test waits for the slowest compilation,
    not for the sum of the three.  A process that fails or outlives ``timeout`` raises as
    ``subprocess.run(..., check=True, timeout=timeout)`` would, and the others are stopped.
    """
    out = {cpu: tmp_path / f"{cpu}{suffix}" for cpu in CPUS}
    procs: dict[str, subprocess.Popen] = {}
    try:
        for cpu in CPUS:
            env = dict(os.environ, NUMBA_CPU_NAME=cpu, NUMBA_CACHE_DIR=str(tmp_path / cpu))
            args = [sys.executable, "-c", script, str(out[cpu])]
            procs[cpu] = subprocess.Popen(args, env=env)
        deadline = time.monotonic() + timeout
        for cpu, proc in procs.items():
            try:
                code = proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                raise subprocess.TimeoutExpired(proc.args, timeout) from None
            if code != 0:
                raise subprocess.CalledProcessError(code, proc.args)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return out
