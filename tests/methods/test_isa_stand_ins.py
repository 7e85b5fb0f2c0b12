"""The instruction-set stand-ins of the same-bits tests (``tests/methods/_isa.py``) compile what they name.

numba takes the host's CPU features unless ``NUMBA_CPU_FEATURES`` is set, whatever ``NUMBA_CPU_NAME`` says: until
session 29 the x86-64 and Haswell stand-ins set only the name, and their kernels used this machine's AVX and AVX-512
registers, so the tests compared the host's instruction set with itself.  Here a vectorisable loop is compiled in each
stand-in's environment and its machine code is read.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ._isa import HOST, TORCH_STAND_INS, needs_avx512, stand_in_env, stand_ins_run_the_host

_PROBE = """
import numpy as np, numba
@numba.njit(cache=False)
def axpy(a, b, out):
    for i in range(a.shape[0]):
        out[i] = a[i] * b[i] + 1.0
x = np.ones(4096)
axpy(x, x, np.empty_like(x))
asm = next(iter(axpy.inspect_asm().values()))
print(" ".join(r for r in ("xmm", "ymm", "zmm") if r in asm))
"""


def _registers(env: dict[str, str]) -> set[str]:
    done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(done.stdout.split())


@needs_avx512
@pytest.mark.parametrize(("cpu", "widest"), [("x86-64", "xmm"), ("haswell", "ymm"),
                                             (TORCH_STAND_INS["sse4"]["NUMBA_CPU_NAME"], "xmm")])
def test_a_stand_in_compiles_for_its_own_cpu_only(cpu, widest, tmp_path) -> None:
    host_only = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")}
    assert _registers(host_only) & {"ymm", "zmm"}  # the host's build is wider than SSE: the probe can tell
    wider = {"xmm": {"ymm", "zmm"}, "ymm": {"zmm"}}[widest]
    got = _registers(dict(host_only, **stand_in_env(cpu, tmp_path)))
    assert widest in got and not got & wider, (cpu, got)


@pytest.mark.parametrize(("host", "names", "redundant"), [
    ("AVX2", ["avx2"], True), ("AVX2", [HOST, "avx2"], True), ("AVX2", [HOST, "sse4"], False),
    ("AVX2", ["avx2", "sse4"], False), ("AVX2", [HOST], False), ("AVX512", [HOST, "avx2"], False),
    ("AVX512", ["avx2"], False)])
def test_a_torch_stand_in_of_the_hosts_own_instruction_set_is_known(host, names, redundant, monkeypatch) -> None:
    # on an AVX2 machine the AVX2 stand-in runs the host's code: its tests skip there (session 32), and only there
    import torch

    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: host)
    assert stand_ins_run_the_host(names) is redundant
