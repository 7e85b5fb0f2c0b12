"""Metric values do not depend on the CPU's instruction set (issue 14, point 3).

numpy chooses its SIMD loops at run time; ``NPY_DISABLE_CPU_FEATURES`` makes it
take the paths of a CPU without AVX-512 (an AVX2 machine) or without AVX2.  A
subprocess computes the presets that used to be sensitive (Qcb: 1e-2 relative
between AVX-512 and AVX2 on Harvard MRI-PET slices with black backgrounds) and
the filter-based ones on Harvard triples, and they must equal this process's
values: bit for bit for Qcb, to 1e-12 relative for every preset
(``docs/cpu_independence.md`` has the measured table, from
``scripts/cpu_consistency.py``).  On a CPU that lacks the disabled features
the comparison is trivially true for them; the AVX2-less setting still
exercises numpy's dispatch on AVX2 machines.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fusionbench.metrics as M
from fusionbench.metrics import calibration as C

PRESETS = ["Qcb", "Qcb.mefb", "Qcv", "VIFp_sum", "VIFF", "SSIM", "Q_S", "MEF_SSIM", "Qc", "Qy", "Qp", "FMI_w", "EN", "MI"]
BIT_EXACT = ["Qcb", "Qcb.mefb"]
TRIPLES = ["harvard_petmri_25066_avg", "harvard_petmri_25066_max", "syn_s0_128_noisy"]
REL = 1e-12  # measured worst 1.1e-15 (scripts/cpu_consistency.py); the bound is 1e-9


def _dispatchable() -> set[str]:
    from numpy._core._multiarray_umath import __cpu_features__

    return {k for k, v in __cpu_features__.items() if v}


def _values(ref_dir) -> dict[str, list[str]]:
    ref = C.load_reference(ref_dir)
    out = {}
    for p in PRESETS:
        vals = []
        for t in TRIPLES:
            F, A, B = C.triple_images(ref_dir, ref, t)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                vals.append(float(M.compute(p, F, A, B)).hex())
        out[p] = vals
    return out


_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[2])
from pathlib import Path
import test_cpu_independence as T
print(json.dumps(T._values(Path(sys.argv[1]))))
"""


@pytest.mark.parametrize("disable", [
    ("X86_V4", "AVX512_ICL", "AVX512_SPR"),  # an AVX2 (x86-64-v3) machine
    ("X86_V3", "X86_V4", "AVX512_ICL", "AVX512_SPR"),  # an x86-64-v2 machine
], ids=["avx2", "sse4"])
def test_values_do_not_depend_on_numpy_simd_paths(shared_dir, tmp_path, disable) -> None:
    ref_dir = shared_dir / "metrics_ref"
    have = _dispatchable()
    env = dict(os.environ)
    env["NPY_DISABLE_CPU_FEATURES"] = " ".join(f for f in disable if f in have)
    if not env["NPY_DISABLE_CPU_FEATURES"]:
        pytest.skip(f"this CPU has none of {disable}: nothing to disable")
    # run from an empty folder: the child imports fusionbench exactly as this process does
    r = subprocess.run([sys.executable, "-c", _CHILD, str(ref_dir), os.path.dirname(__file__)], env=env,
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    theirs = json.loads(r.stdout.strip().splitlines()[-1])
    ours = _values(ref_dir)
    for p in PRESETS:
        a = np.array([float.fromhex(v) for v in ours[p]])
        b = np.array([float.fromhex(v) for v in theirs[p]])
        if p in BIT_EXACT:
            assert ours[p] == theirs[p], f"{p}: {a} here, {b} with {env['NPY_DISABLE_CPU_FEATURES']} disabled"
        np.testing.assert_allclose(b, a, rtol=REL, atol=0, err_msg=f"{p} on {TRIPLES}")
