"""The machine a run records: the CPU's model and vector instruction sets (the float32 networks' outputs can
differ in a few pixels between CPUs, so a report must say which CPU made its deep-method numbers), and how the
report names it.  Until session 30 a run recorded ``processor`` (``x86_64``) only: an audit could not tell which
of the project's hosts had made the committed report."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from fusionbench.machine import SIMD_FLAGS, cpu_description, cpu_words, machine_info
from fusionbench.report.provenance import provenance_line

_XEON = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx avx2 avx512f avx512dq avx512bw avx512vl avx512_bf16 amx_tile amx_bf16

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: a second processor's block, not read
flags\t\t: sse2
"""


def test_the_first_processor_s_model_and_vector_flags_are_read() -> None:
    assert cpu_description(_XEON) == {
        "cpu_model": "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz",
        "cpu_flags": ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "amx_tile",
                      "amx_bf16"]}  # in SIMD_FLAGS' order; sse, avx512dq and the rest are not recorded
    assert cpu_description("processor : 0\nflags : sse2 avx2\n") == {"cpu_flags": ["avx2"]}
    assert cpu_description("") == {} and cpu_description("nothing: here\n") == {}


def test_the_processor_in_words() -> None:
    assert cpu_words(cpu_description(_XEON)) == "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz, AVX-512, AMX"
    assert cpu_words({"cpu_model": "AMD EPYC", "cpu_flags": ["sse4_2", "avx", "avx2", "fma"]}) == "AMD EPYC, AVX2"
    assert cpu_words({"processor": "x86_64", "cpu_flags": []}) == "x86_64, no AVX"
    # a run recorded before session 30: processor only
    assert cpu_words({"processor": "x86_64", "cpu_count": 2}) == "x86_64"
    assert cpu_words({}) == "?"


@pytest.mark.skipif("cpu_model" not in cpu_description(), reason="no model name in /proc/cpuinfo (not Linux x86)")
def test_a_run_records_this_cpu() -> None:
    info = machine_info()
    assert info["cpu_model"] and set(info["cpu_flags"]) <= set(SIMD_FLAGS)
    assert info == json.loads(json.dumps(info))  # stored as JSON in runs.machine
    assert {"platform", "processor", "cpu_count", "hostname"} <= set(info)


def test_the_provenance_line_names_the_cpu_of_new_runs_and_the_processor_of_old_ones() -> None:
    machines = [{"processor": "x86_64", "cpu_count": 2, "hostname": "vm", "platform": "Linux"},
                {"processor": "x86_64", "cpu_model": "AMD EPYC", "cpu_flags": ["avx2", "avx512f"], "cpu_count": 2,
                 "hostname": "vm", "platform": "Linux"}]
    runs = pd.DataFrame([{"run_id": i, "git_sha": "34a819d0", "config": json.dumps({"out": "/o"}),
                          "machine": json.dumps(m)} for i, m in enumerate(machines, start=1)])
    outputs = pd.DataFrame({"dataset": "ds", "pair": ["p0", "p1"], "method": ["dwt", "cnn"], "seconds": 0.01,
                            "run_id": [1, 2], "path": ["/o/fused/dwt/k/0.png", "/o/fused/cnn/k/1.png"]})
    line = provenance_line(outputs, runs, ["dwt", "cnn"], {"dwt": "DWT", "cnn": "CNN"})
    assert "machine: AMD EPYC, AVX-512, 2 CPUs, host vm (Linux); x86_64, 2 CPUs, host vm (Linux)" in line, line
    assert all(w in line for w in ("DWT: run 1", "CNN: run 2")), line


def test_the_report_says_which_methods_reproduce_only_on_a_cpu_like_the_run_s() -> None:
    from fusionbench.report.readme import reproducibility_note

    families = {"cnn": "deep", "mopa": "deep", "dwt": "multiscale"}
    old = json.dumps({"processor": "x86_64", "cpu_count": 2})
    new = json.dumps({"processor": "x86_64", "cpu_model": "AMD EPYC", "cpu_flags": ["avx2", "avx512f"]})
    note = reproducibility_note(["dwt", "cnn", "mopa"], families, pd.DataFrame({"machine": [old]}))
    assert note.startswith("Reproducing these numbers: `cnn`, `mopa` are float32 networks"), note
    assert "whose model was not recorded" in note and "`dwt`" not in note
    note = reproducibility_note(["cnn"], families, pd.DataFrame({"machine": [new]}))
    assert "only on a CPU like the run's (AMD EPYC, AVX-512);" in note, note
    note = reproducibility_note(["cnn"], families, pd.DataFrame({"machine": [old, new, "not json"]}))
    assert "(AMD EPYC, AVX-512; older runs: not recorded)" in note, note
    assert reproducibility_note(["dwt"], families, pd.DataFrame({"machine": [new]})) == ""
