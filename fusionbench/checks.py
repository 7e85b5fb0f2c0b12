"""Checks of numeric parameters shared by the metrics' options, the methods' and the trainers' parameters.

:func:`number` is the one rule: a real number (an integer where asked; never a bool or a string) in an interval,
else a ``ValueError`` naming the function, the parameter, the range and the value.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def number(func: str, param: str, value: Any, *, low: float, low_open: bool = False, high: float = np.inf,
           high_open: bool = True, integer: bool = False, excluded: tuple[float, ...] = ()) -> float | int:
    """``value`` as a Python ``float`` (``int`` with ``integer``) if it is a real number (an integer with ``integer``; never a bool or a string) in the interval
    from ``low`` to ``high`` (each end open or closed) and not one of ``excluded``, else ``ValueError`` naming the
    function, the parameter, the value and the range.

    The numeric options of the functional metrics (``fmi``'s window side, Tsallis' ``q``, Qp's threshold, …)
    went into the arithmetic unchecked until session 38: ``tsallis_entropy(q=1)`` divided by zero,
    ``mean_squared_error(scale=-1)`` equalled ``scale=1``, ``fmi(w=0)`` was 1.0 and ``fmi(w=2.5)`` a numba typing
    error.  A numpy scalar (``np.float32(1.0)``, ``np.int64(3)``) is accepted, and returned as the Python number
    of the same value, so that the arithmetic is float64 whatever type the caller gave.
    """
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.integer,
                                                                                        np.floating))
    if isinstance(value, (bool, np.bool_)) or not ok_type:
        raise ValueError(f"{func}: {param} must be {kind}, got {value!r}")
    lo_ok = value > low if low_open else value >= low
    hi_ok = value < high if high_open else value <= high
    finite = isinstance(value, (int, np.integer)) or bool(np.isfinite(value))  # (np.isfinite(2**70) raised TypeError)
    if not (lo_ok and hi_ok and finite) or value in excluded:
        lo = f"{'(' if low_open else '['}{low:g}"
        hi = "∞)" if high == np.inf else f"{high:g}{')' if high_open else ']'}"
        but = f", not {', '.join(f'{x:g}' for x in excluded)}" if excluded else ""
        raise ValueError(f"{func}: {param} must be {kind} in {lo}, {hi}{but}, got {value!r}")
    try:
        return int(value) if integer else float(value)
    except OverflowError:  # an integer beyond float64, in an open range
        raise ValueError(f"{func}: {param} must be {kind} float64 can hold, got {value!r}") from None
