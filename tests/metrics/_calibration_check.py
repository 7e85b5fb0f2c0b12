"""The comparison both calibration tests make (square triples, non-square crops)."""
from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest

import fusionbench.metrics as M
from fusionbench.metrics import calibration as C


def assert_matches(case: C.Case, F: np.ndarray, A: np.ndarray, B: np.ndarray) -> None:
    """Our value of ``case.preset`` on (F, A, B) agrees with the reference (:func:`calibration.within_tolerance`,
    the relative tolerance and :func:`calibration.absolute_bound`): NaN (undefined) or infinite exactly where the
    reference is, with the warning.  Records the reference decides by round-off (``NOT_COMPARABLE``) skip."""
    if reason := C.NOT_COMPARABLE.get((case.preset, case.triple)):
        pytest.skip(f"not comparable: {reason}")
    with pytest.warns(M.UndefinedMetricWarning) if not math.isfinite(case.value) else contextlib.nullcontext():
        ours = M.compute(case.preset, F, A, B)
    bound = C.absolute_bound(case.preset, F, A, B)
    assert C.within_tolerance(ours, case.value, case.tol, bound), (
        f"{case.preset} vs {case.reference} '{case.label}' on {case.triple}: ours {ours!r}, "
        f"reference {case.value!r} (relative {case.tol:g}, absolute {bound:.3g})"
    )


#: The columns of ``scripts/calibration_summary.py``'s CSV that depend on the CPU only through our value's
#: round-off: ``ours`` and the differences computed from it.  docs/cpu_independence.md: CPU settings move no
#: preset's value by more than 1.1e-15 relative (tests/metrics/test_cpu_independence.py holds 1e-12); so ``ours``
#: is compared to 1e-12 relative, ``abs_diff``/``rel_diff`` (printed to 4 digits) to 1e-3 relative plus what
#: that change in ``ours`` can move them.  Every other column (reference, label, role, preset, triple, the
#: reference value, the tolerance with Qc's absolute bound, ok, note) must be equal.
CPU_ROUNDOFF = 1e-12


def assert_summary_equal(regenerated, committed) -> None:
    """Two calibration summary CSVs (paths) have the same rows, equal but for the CPU round-off above."""
    import csv

    with open(regenerated, newline="") as fh:
        new = list(csv.DictReader(fh))
    with open(committed, newline="") as fh:
        old = list(csv.DictReader(fh))
    assert len(new) == len(old), f"{committed}: {len(old)} rows, regenerated {len(new)}: stale, regenerate it"
    numeric = ("ours", "abs_diff", "rel_diff")
    diffs = []
    for i, (n, o) in enumerate(zip(new, old)):
        assert list(n) == list(o), f"columns differ: {list(n)} vs {list(o)}"
        for k in n:
            if k in numeric or n[k] == o[k]:
                continue
            diffs.append((i, k, o[k], n[k]))
        if n["ours"] == o["ours"]:
            if (n["abs_diff"], n["rel_diff"]) != (o["abs_diff"], o["rel_diff"]):
                diffs.append((i, "abs_diff/rel_diff", (o["abs_diff"], o["rel_diff"]), (n["abs_diff"], n["rel_diff"])))
            continue
        if not (n["ours"] and o["ours"]):
            diffs.append((i, "ours", o["ours"], n["ours"]))
            continue
        a, b = float(n["ours"]), float(o["ours"])
        if not (a == b or abs(a - b) <= CPU_ROUNDOFF * abs(b)):
            diffs.append((i, "ours", o["ours"], n["ours"]))
            continue
        slack = CPU_ROUNDOFF * abs(b)
        theirs = abs(float(o["reference_value"])) if o["reference_value"] else 0.0
        for k, extra in (("abs_diff", slack), ("rel_diff", slack / max(theirs, 1e-12))):
            if n[k] == o[k]:
                continue
            if not (n[k] and o[k]) or abs(float(n[k]) - float(o[k])) > 1e-3 * max(abs(float(n[k])),
                                                                                    abs(float(o[k]))) + extra:
                diffs.append((i, k, o[k], n[k]))
    assert not diffs, (f"{committed} is stale ({len(diffs)} differences; first: row, column, committed, "
                       f"regenerated): {diffs[:5]}; regenerate it with scripts/calibration_summary.py")
