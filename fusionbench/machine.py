"""The machine a run used, as recorded with the run (``runs.machine`` in the results store) and printed in the
report's captions and provenance lines.

The processor's model and vector instruction sets are recorded because they decide which code numba, oneDNN,
MKL and OpenBLAS run: the float32 networks' fused images can differ by one grey level on a few pixels from one
CPU to another (docs/cpu_independence.md), so a run's deep-method numbers are reproducible bit for bit only on a
CPU like the one recorded.  Runs recorded before session 30 have the platform, ``processor`` (``x86_64``), the
core count and the host name only.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

#: the CPU features recorded with a run (``/proc/cpuinfo`` flags): the vector instruction sets that decide which
#: code numba, oneDNN, MKL and OpenBLAS run, hence the last bits of the float32 networks' outputs
#: (docs/cpu_independence.md)
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
              "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


def cpu_description(cpuinfo: str | None = None) -> dict[str, Any]:
    """``{"cpu_model": ..., "cpu_flags": [...]}`` from ``/proc/cpuinfo`` (``cpuinfo``: its text, for tests): the
    first processor's model name and which of :data:`SIMD_FLAGS` it has; ``{}`` where there is no such file
    (not Linux) or it names neither."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return {}
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor's block only
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    out: dict[str, Any] = {}
    if fields.get("model name"):
        out["cpu_model"] = fields["model name"]
    if "flags" in fields:
        have = set(fields["flags"].split())
        out["cpu_flags"] = [flag for flag in SIMD_FLAGS if flag in have]
    return out


def machine_info() -> dict[str, Any]:
    """The machine a run used (stored with the run, printed in table captions): the platform, the processor
    (with its model and vector instruction sets where ``/proc/cpuinfo`` says them, :func:`cpu_description`: the
    float32 networks' outputs can differ in a few pixels between CPUs), the cores and the host name."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        **cpu_description(),
        "cpu_count": os.cpu_count(),
        "hostname": platform.node(),
    }


#: the widest vector instruction set among a run's recorded ``cpu_flags`` (:func:`cpu_description`)
_WIDEST_SIMD = (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sse4_2", "SSE4.2"))


def cpu_words(machine: dict) -> str:
    """A run's processor in words: its model (else ``processor``, as runs recorded before session 30 only have)
    and, where recorded, its widest vector instruction set and AMX ("AMD EPYC, AVX-512")."""
    words = str(machine.get("cpu_model") or machine.get("processor") or "?")
    flags = machine.get("cpu_flags")
    if isinstance(flags, list):
        widest = next((name for flag, name in _WIDEST_SIMD if flag in flags), "no AVX")
        words += f", {widest}" + (", AMX" if "amx_tile" in flags else "")
    return words


def host_words(machine: dict) -> str:
    """A run's machine in words, as captions print it: :func:`cpu_words`, its cores and its host name
    ("AMD EPYC, AVX-512, 2 CPUs, host vm")."""
    return f"{cpu_words(machine)}, {machine.get('cpu_count') or '?'} CPUs, host {machine.get('hostname') or '?'}"
