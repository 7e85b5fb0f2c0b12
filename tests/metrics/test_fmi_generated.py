"""FMI's 3×3 kernels (``metrics/functional/_fmi_lanes3.py``) are exactly what ``scripts/gen_fmi_lanes3.py`` writes.

The module is ~1,400 unrolled lines whose order of operations is FMI's arithmetic (pinned bit for bit by
``test_fmi_kernel.py`` and ``test_cpu_independence.py``); it is changed through its generator only.  A hand
edit of the module, or a generator change without regenerating it, fails here.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gen_fmi_lanes3.py"
MODULE = REPO / "metrics" / "functional" / "_fmi_lanes3.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_fmi_lanes3", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_module_is_the_generators_output() -> None:
    generated = _generator().generate().encode("utf-8")
    assert MODULE.read_bytes() == generated, (
        "metrics/functional/_fmi_lanes3.py is generated: edit scripts/gen_fmi_lanes3.py and run "
        "`python scripts/gen_fmi_lanes3.py`, never the module")


def test_the_lanes_kernel_runs_the_generated_kernels() -> None:
    from fusionbench.metrics.functional import _fmi_lanes, _fmi_lanes3

    # the installed module is the committed one (an editable install reads it in place, a wheel has a copy)
    assert Path(_fmi_lanes3.__file__).read_bytes() == MODULE.read_bytes()
    for name in ("_side3_lanes", "_pair3_lanes", "_select", "LANES", "P3_ROWS", "S3_ROWS"):
        assert getattr(_fmi_lanes, name) is getattr(_fmi_lanes3, name), name
