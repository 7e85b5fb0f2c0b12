"""Validation of the functional metrics' options (private): enumerated values (:func:`option`) and numbers
(:func:`number`).

Every option of a public function in ``fusionbench.metrics.functional`` that takes one of a fixed set of values
(a string such as ``variant``, ``kind``, ``normalise``, ``feature``, or a flag) is checked by :func:`option`
before any work: an unknown value raises ``ValueError`` naming the function, the parameter, the value given
and the accepted values.  Before (session 37 audit F6) an unknown value silently meant the default
(``ssim(variant='VIFB')`` was 'standard', ``mutual_information(base=math.e)`` gave bits).

The accepted values are compared exactly (``==``, a string only with a string): no case folding, no
abbreviations.  A flag accepts ``True`` and ``False`` (and what compares equal to them: ``0``, ``1``,
``numpy.bool_``), not ``None`` or a string.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from fusionbench.checks import number  # noqa: F401  (the metrics' options are checked by the one rule)

FLAG = (False, True)


def option(func: str, param: str, value: Any, accepted: tuple, shown: str | None = None) -> Any:
    """``value`` if it is one of ``accepted`` (the accepted entry it equals), else ``ValueError``.

    ``shown``: how the accepted values are listed in the message (default: their reprs).
    """
    for ok in accepted:
        if isinstance(value, str) != isinstance(ok, str):
            continue
        try:
            if bool(value == ok):
                return ok
        except (TypeError, ValueError):  # an array or an object that does not compare to a scalar
            continue
    if shown is None:
        shown = ", ".join(repr(ok) for ok in accepted)
    raise ValueError(f"{func}: unknown {param} {value!r} (accepted: {shown})")


#: the arithmetic of the ``dtype`` options (CDDFuse's float32 numpy, or float64)
FLOAT_DTYPES = ("float64", "float32")


def float_dtype(func: str, value: Any) -> np.dtype:
    """The numpy dtype of a ``dtype`` option: float64 or float32, in any numpy spelling (``'float32'``,
    ``np.float32``, ``'f4'``); anything else (``'float16'``, ``'int8'``, ``None``) raises ``ValueError``."""
    try:
        dt = None if value is None else np.dtype(value)
    except (TypeError, ValueError):
        dt = None
    if dt is None or dt.name not in FLOAT_DTYPES:
        raise ValueError(f"{func}: unknown dtype {value!r} (accepted: 'float64', 'float32')")
    return dt


