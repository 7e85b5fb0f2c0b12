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
