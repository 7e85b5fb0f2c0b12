"""Run a compiled (numba) kernel under several instruction sets of this CPU, for the same-bits tests.

numba compiles for the CPU named by ``NUMBA_CPU_NAME`` **with the features ``NUMBA_CPU_FEATURES`` names**; where
that is unset it takes the *host's* features whatever CPU is named, so ``NUMBA_CPU_NAME=x86-64`` alone still
emitted AVX-512 and AVX2 instructions on this machine (a loop built so used ymm registers; with
``NUMBA_CPU_FEATURES=""`` only SSE2's xmm).  Each stand-in therefore sets both (:func:`stand_in_env`): the CPU's
own features and no others.  Until session 29 only the name was set, and the x86-64 and Haswell "stand-ins" ran
the host's instruction set (a review of session 29 found it; ``tests/methods/test_isa_stand_ins.py`` now checks
the instructions).

On an AVX-512 machine the same code is so compiled for plain x86-64 (SSE2, no FMA) and Haswell (AVX2, 256-bit),
each in its own process, and for the host itself (AVX-512), so a test can check that a kernel's results do not
depend on the SIMD width or on FMA instructions (the project's CPU-independence rule).

The host's process uses the session's numba cache (``$FUSIONBENCH_HOME/numba``, :mod:`tests.conftest`), where
the warm-up test has compiled the project's kernels for this CPU: it loads what the warm-up compiled instead of
compiling a third time.  Until session 27 the third process compiled for ``skylake-avx512`` in a cache of its
own; the host is an AVX-512 CPU too (:data:`needs_avx512`), and the one the suite's results are for.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable

import pytest

#: the instruction sets compared: SSE2 without FMA, AVX2, and this (AVX-512) CPU (:data:`HOST`)
CPUS = ("x86-64", "haswell", "host")
#: the entry of :data:`CPUS` that is this CPU: its process keeps the environment's ``NUMBA_CPU_NAME`` (none: the host)
#: and ``NUMBA_CACHE_DIR`` (the session's cache)
HOST = "host"

#: ``@pytest.mark.parametrize("stand_in", STAND_INS)``: a same-bits test compares the host with one stand-in CPU
#: per case, ``cpus=(stand_in, HOST)``.  The default run compares AVX2 (Haswell), the other instruction set of the
#: machines this suite runs on (the brief: AVX2 or AVX-512); SSE2 without FMA is the ``-m slow`` case.  Equal bits
#: are transitive, so the two cases together cover all three of :data:`CPUS`.  Each stand-in compiles its kernels
#: from nothing: until session 30 every default run compiled them for both, and the 10 default same-bits tests
#: took 254 s of CPU (180 s alone, one test process, warm host cache) of the suite's ~1,000.
STAND_INS = (pytest.param("haswell", id="avx2"), pytest.param("x86-64", id="sse2", marks=pytest.mark.slow))
#: :data:`STAND_INS` with the SSE2 case in the default run too: for the two kernels cheapest to build for SSE2
#: (MDL's small eigenvalue solver, SwinFusion's window LayerNorm; about 10 s together), so that the default run
#: still checks a build without FMA instructions (Haswell and the host both have FMA: the SSE2 case is the only
#: check that explicit fused multiply-adds, not LLVM's contraction, make the bits)
STAND_INS_WITH_SSE2 = (pytest.param("haswell", id="avx2"), pytest.param("x86-64", id="sse2"))


def has_avx512() -> bool:
    """Whether this CPU can run code compiled for every one of :data:`CPUS`."""
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


#: mark for the tests that need :func:`has_avx512`
needs_avx512 = pytest.mark.skipif(not has_avx512(), reason="needs an AVX-512 CPU to compare the instruction sets")


def stand_in_env(cpu: str, tmp_path: Path) -> dict[str, str]:
    """The environment additions of a process that compiles for ``cpu`` (a ``NUMBA_CPU_NAME``) and that CPU's
    features only (``NUMBA_CPU_FEATURES`` empty), with its stand-in cache (:func:`stand_in_cache`)."""
    return {"NUMBA_CPU_NAME": cpu, "NUMBA_CPU_FEATURES": "", "NUMBA_CACHE_DIR": str(stand_in_cache(cpu, tmp_path))}


def stand_in_cache(cpu: str, tmp_path: Path) -> Path:
    """The numba cache folder of the stand-in CPU ``cpu``: one per CPU name in this test process's base temporary
    folder (``tmp_path``'s parent: one per test process and session, never reused by a later session), so a
    kernel that several of the process's tests run under the same stand-in is compiled for it once.  Not shared
    between test processes: numba updates a cache index unlocked, and two processes compiling other signatures
    of one kernel at once could each drop the other's entry.  Until session 29 each test compiled its kernels
    again in cache folders of its own."""
    return tmp_path.parent / "numba-stand-ins" / cpu


def _host_env(tmp_path: Path) -> dict[str, str]:
    """The environment of the :data:`HOST` process: this one's, whose kernels the session's cache holds; but where
    ``NUMBA_CPU_NAME`` or ``NUMBA_CPU_FEATURES`` already names a CPU (the whole suite run under a stand-in,
    docs/cpu_independence.md), that CPU is not the host: the process compiles for ``skylake-avx512`` in that
    stand-in's cache folder (:func:`stand_in_cache`), as before session 27, so the comparison keeps an AVX-512
    build."""
    if os.environ.get("NUMBA_CPU_NAME") or os.environ.get("NUMBA_CPU_FEATURES"):
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_CPU_FEATURES"}
        return dict(env, **stand_in_env("skylake-avx512", tmp_path))
    return dict(os.environ)


def outputs_per_cpu(script: str, tmp_path: Path, suffix: str = ".npy", timeout: float = 300,
                    cpus: tuple[str, ...] = CPUS) -> dict[str, Path]:
    """Run ``script`` (which saves its results to ``sys.argv[1]``) once per CPU of ``cpus`` (names of
    :data:`CPUS`); the files.

    The processes run at the same time (each stand-in compiles its kernels alone, in its own cache folder; the
    host's loads them from the session's cache where it can): on a machine with two or more
    cores the test waits for the slowest compilation, not for the sum of the three.  A process that fails or outlives ``timeout`` raises as
    ``subprocess.run(..., check=True, timeout=timeout)`` would, and the others are stopped.
    """
    out = {cpu: tmp_path / f"{cpu}{suffix}" for cpu in cpus}
    procs: dict[str, subprocess.Popen] = {}
    try:
        for cpu in cpus:
            env = _host_env(tmp_path) if cpu == HOST else dict(os.environ, **stand_in_env(cpu, tmp_path))
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


def assert_same_bits_on_every_cpu(script: str, tmp_path: Path, cpus: tuple[str, ...] = CPUS) -> None:
    """Run ``script`` (which saves one array with ``np.save(sys.argv[1], ...)``) for every CPU of ``cpus``
    (:func:`outputs_per_cpu`) and assert that the arrays are equal bit for bit."""
    import numpy as np

    out = {cpu: np.load(path) for cpu, path in outputs_per_cpu(script, tmp_path, cpus=cpus).items()}
    first = cpus[0]
    for cpu in cpus[1:]:
        assert np.array_equal(out[first], out[cpu]), f"{cpu} gives other bits than {first}"


#: torch's libraries held to AVX2 or to SSE4 code on a newer CPU: MKL (``MKL_ENABLE_INSTRUCTIONS``), oneDNN
#: (``ONEDNN_MAX_CPU_ISA``; its SSE4 level is ``SSE41``) and ATen's own kernels (``ATEN_CPU_CAPABILITY``), with
#: numba compiling for a CPU of the same generation (docs/cpu_independence.md, "torch's kernels")
TORCH_STAND_INS: dict[str, dict[str, str]] = {
    "avx2": {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
             "NUMBA_CPU_NAME": "haswell"},
    "sse4": {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "ONEDNN_MAX_CPU_ISA": "SSE41", "ATEN_CPU_CAPABILITY": "default",
             "NUMBA_CPU_NAME": "nehalem"},
}
#: what ``torch.backends.cpu.get_cpu_capability()`` reports under each stand-in (the script checks it took)
TORCH_CAPABILITY = {"avx2": "AVX2", "sse4": "DEFAULT"}
#: ``@pytest.mark.parametrize("torch_stand_in", TORCH_STAND_IN_CASES)``, as :data:`STAND_INS`: AVX2 by default,
#: SSE4 under ``-m slow``
TORCH_STAND_IN_CASES = (pytest.param("avx2", id="avx2"), pytest.param("sse4", id="sse4", marks=pytest.mark.slow))


def stand_ins_run_the_host(names: Iterable[str]) -> bool:
    """Whether every stand-in of ``names`` (keys of :data:`TORCH_STAND_INS`; :data:`HOST` is not one) would run
    this CPU's own torch instruction set: on an AVX2 machine (the brief's other kind) the AVX2 stand-in runs the
    same ATen, MKL and oneDNN code as the host, so a test comparing the two, or repeating in a stand-in process
    what its in-process twin checks, checks nothing more (session 32: 20 s of the default run on such a host)."""
    import torch

    host = torch.backends.cpu.get_cpu_capability()
    stand_ins = [name for name in names if name != HOST]
    return bool(stand_ins) and all(TORCH_CAPABILITY[name] == host for name in stand_ins)


def run_under_torch_stand_ins(script: str, args: dict[str, list[str]], tmp_path: Path, timeout: float = 300,
                              **env: str) -> None:
    """Run ``python -c script *args[name]`` at once in one process per name: :data:`HOST` (this CPU, unchanged,
    with the session's numba cache) or a key of :data:`TORCH_STAND_INS` (each with its CPU's stand-in cache,
    :func:`stand_in_cache`); ``env`` added to each.  Skips on a CPU without AVX2 (nothing to stand in for), and
    where every stand-in asked for is the host's own instruction set (:func:`stand_ins_run_the_host`); fails with
    the stderr tail of any process that exits non-zero."""
    import torch

    if torch.backends.cpu.get_cpu_capability() == "DEFAULT":
        pytest.skip("the host has no AVX2 to stand in for")
    if stand_ins_run_the_host(args):
        pytest.skip(f"this CPU's own instruction set is {torch.backends.cpu.get_cpu_capability()}: the stand-in "
                    "would run the host's code (the in-process tests check it here); needs an AVX-512 CPU")
    procs: dict[str, subprocess.Popen] = {}
    try:
        for name, extra in args.items():
            numba_cpu = {} if name == HOST else stand_in_env(TORCH_STAND_INS[name]["NUMBA_CPU_NAME"], tmp_path)
            full = dict(os.environ, **numba_cpu, **env, **{k: v for k, v in TORCH_STAND_INS.get(name, {}).items()
                                                            if k != "NUMBA_CPU_NAME"})
            procs[name] = subprocess.Popen([sys.executable, "-c", script, *extra], env=full,
                                           stderr=subprocess.PIPE, text=True)
        for name, proc in procs.items():
            _, err = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, (name, err[-2000:])
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
