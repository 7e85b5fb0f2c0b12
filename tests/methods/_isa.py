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
    """Run ``script`` (which saves its results to ``sys.argv[1]``) once per CPU of :data:`CPUS`; the files."""
    out = {}
    for cpu in CPUS:
        env = dict(os.environ, NUMBA_CPU_NAME=cpu, NUMBA_CACHE_DIR=str(tmp_path / cpu))
        path = tmp_path / f"{cpu}{suffix}"
        subprocess.run([sys.executable, "-c", script, str(path)], env=env, check=True, timeout=timeout)
        out[cpu] = path
    return out
