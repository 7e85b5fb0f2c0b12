"""Input validation and the default input convention shared by every metric.

Convention (``metrics_conventions.md`` §6): metrics see 8-bit grey levels (or
BT.601 luma) as float64 in 0–255.  A uint8 array is taken as is, whatever
``data_range`` says (it is ignored for uint8: a uint8 0/1 mask passed with
``data_range=1`` is scored as grey levels 0 and 1, i.e. near-black); a float array
needs an explicit ``data_range`` (the value that maps to 255) and is quantised
with round-half-to-even and ``clip(0, 255)``, like ``fusionbench.colour.quantise``.
"""
from __future__ import annotations

import contextlib
import warnings
from contextvars import ContextVar
from typing import Iterator

import numpy as np


class UndefinedMetricWarning(RuntimeWarning):
    """A metric is mathematically undefined on this input; the value is NaN."""


#: true while ``evaluate(..., warn=False)`` scores (:func:`silenced`): :func:`undefined` then returns NaN without a
#: warning.  A context variable, so it reaches the preset pool's threads (each task runs in a copy of the caller's
#: context) and no other thread.  Until session 30 ``evaluate`` silenced with ``warnings.catch_warnings``, which
#: saves and restores the process-wide filter list: from several threads at once the warnings leaked through and an
#: ``ignore`` filter stayed behind for good (20 of 20 tries, a thread-safety audit), so a later ``warn=True`` call
#: showed nothing.
_SILENT: ContextVar[bool] = ContextVar("fusionbench_metrics_silent", default=False)


@contextlib.contextmanager
def silenced(silent: bool = True) -> Iterator[None]:
    """Within the block (in this thread, and in the tasks it hands the preset pool), :func:`undefined` warns only
    if ``silent`` is false."""
    token = _SILENT.set(silent)
    try:
        yield
    finally:
        _SILENT.reset(token)


def warn_undefined(reason: str, *, stacklevel: int = 2) -> None:
    """An ``UndefinedMetricWarning`` with ``reason``, unless :func:`silenced` (a value that is not NaN but still not
    a measurement, e.g. PSNR's infinity for F = A = B)."""
    if not _SILENT.get():
        warnings.warn(reason, UndefinedMetricWarning, stacklevel=stacklevel + 1)


def undefined(reason: str) -> float:
    """Warn with ``reason`` (unless :func:`silenced`) and return NaN (never raise on an undefined value).

    Public as ``fusionbench.metrics.undefined``: a plugin metric returns ``undefined("why")`` where its value is
    undefined, so that ``evaluate(..., warn=False)`` (the runner's scoring) silences it; an
    ``UndefinedMetricWarning`` it raises with ``warnings.warn`` itself shows as any other warning (since session
    30: silencing it took the process-wide warning filters, which are not thread-safe)."""
    if not _SILENT.get():
        warnings.warn(reason, UndefinedMetricWarning, stacklevel=3)
    return float("nan")


def as_grey(x: np.ndarray, name: str = "image", *, data_range: float | None = None) -> np.ndarray:
    """Validate one image and return it as float64 grey levels in 0–255.

    uint8 is returned as is: ``data_range`` is ignored for it (and for integer
    arrays within 0–255 when it is None), but must still be finite and > 0 where given.

    Raises ``ValueError`` for a colour array, a non-2-D array, a float array
    without ``data_range``, an integer array outside 0–255, values far outside
    [0, ``data_range``], or a float image within [0, 1] holding fractions with a
    ``data_range`` above 1.5 (a [0, 1] image given the 0–255 range).
    """
    if x is None:
        raise ValueError(f"{name} is required by this metric")
    x = np.asarray(x)
    if x.ndim == 3 and x.shape[-1] in (3, 4):
        raise ValueError(
            f"{name} is a colour array of shape {x.shape}; metrics need a 2-D grey image "
            "(convert with fusionbench.colour luma, BT.601, first)"
        )
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D grey image, got shape {x.shape}")
    y, scaled = dtype_levels(x, name, data_range, why=" so that it can be quantised to 8-bit grey levels")
    return np.clip(np.round(y), 0.0, 255.0) if scaled else y


def dtype_levels(x: np.ndarray, name: str, data_range: float | None, *, why: str = "") -> tuple[np.ndarray, bool]:
    """The dtype rules of every preset, grey or colour: ``(float64 levels, scaled)``.

    uint8, and integers within 0–255 without ``data_range``, are the levels as they are (``scaled`` False); an
    integer image with ``data_range`` (uint16 with 65535) or a float one (``data_range`` required) is
    :func:`float_levels` (``scaled`` True: not yet rounded or clipped).  A bad ``data_range`` is refused even where
    it is not used (uint8; session 38); boolean and other dtypes are refused.  ``why``: the end of the message for a
    float image without ``data_range``."""
    if data_range is not None:
        checked_data_range(data_range)
    # C order whatever the caller's layout: a Fortran-ordered image summed in another order gave CC another last
    # bit (session 38's metrics audit); row-major images are not copied
    x = np.ascontiguousarray(x)
    if x.dtype == np.uint8:
        return x.astype(np.float64), False
    if x.dtype == bool:
        raise ValueError(f"{name} is boolean; give uint8 grey levels")
    if np.issubdtype(x.dtype, np.integer):
        if data_range is None:
            if x.min() < 0 or x.max() > 255:
                raise ValueError(f"{name} has integer values outside 0-255; pass data_range")
            return x.astype(np.float64), False
    elif not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} has unsupported dtype {x.dtype}")
    if data_range is None:
        raise ValueError(f"{name} is a float array ({x.dtype}); pass data_range (e.g. 1.0 for [0,1] or 255.0){why}")
    return float_levels(x, name, data_range), True


def float_levels(x: np.ndarray, name: str, data_range: float) -> np.ndarray:
    """A float (or integer, with ``data_range``) image as float64 levels ``x · 255 / data_range``, not yet rounded or
    clipped; ``ValueError`` for NaN/inf, values far outside [0, ``data_range``] (``SATURATED``), or a float image
    within [0, 1] that holds fractions given a ``data_range`` above 1.5 (a [0, 1] image given the 0–255 range:
    scored that way it would be almost black, Qabf 0.07 instead of 0.44, SD 0.3 instead of 28; user reports
    such as SSyangguang/MDA#4).  Shared by the grey presets (:func:`as_grey`) and the colour one (ChromaErr)."""
    data_range = checked_data_range(data_range)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if (data_range > 1.5 and np.issubdtype(x.dtype, np.floating) and x.size and x.min() >= 0 and x.max() <= 1
            and not np.array_equal(x, np.round(x))):
        raise ValueError(f"{name} has float values all within [0, 1] but data_range = {data_range:g}; scored that "
                         "way it would be almost black (grey levels 0 and 1). Pass data_range=1.0 for [0, 1] images")
    y = np.asarray(x, dtype=np.float64) * (255.0 / data_range)
    if y.size and (y.min() < SATURATED[0] or y.max() > SATURATED[1]):
        raise ValueError(f"{name} has values in [{x.min():.4g}, {x.max():.4g}], far outside [0, data_range = "
                         f"{data_range:g}]: is data_range right? (values up to {SATURATED_SHARE:g} × the range "
                         "beyond either end are clipped, as uint8 saturates)")
    return y


#: How far beyond [0, data_range] a float or integer image may go and still be clipped (as uint8 saturates, and
#: as :data:`fusionbench.api.FLOAT_OUTPUT_RANGE` clips a method's output); further out it is on another scale.
SATURATED_SHARE = 0.5
SATURATED = (-255.0 * SATURATED_SHARE, 255.0 * (1 + SATURATED_SHARE))


def checked_data_range(data_range: float) -> float:
    """``data_range`` as a float, or ``ValueError`` unless it is finite and > 0."""
    try:
        value = float(data_range)
    except (TypeError, ValueError):
        raise ValueError(f"data_range must be a number, got {data_range!r}") from None
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"data_range must be finite and > 0, got {data_range!r}")
    return value


def prepare(fused: np.ndarray, a: np.ndarray | None = None, b: np.ndarray | None = None, *,
            data_range: float | None = None, need_sources: bool = True
            ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Validate a triple: same shapes, 2-D grey; returns float64 0–255 arrays.

    Inside ``evaluate`` the prepared arrays are shared by all presets (read-only).
    """
    from ._cache import cached

    return cached(("prepare", id(fused), id(a), id(b), data_range, need_sources),
                  lambda: _prepare(fused, a, b, data_range, need_sources), fused, a, b)


def _prepare(fused, a, b, data_range, need_sources):
    f = as_grey(fused, "fused", data_range=data_range)
    if min(f.shape) < 2:  # every preset, with or without sources (np.gradient, neighbour differences, windows)
        raise ValueError(f"images must be at least 2x2, got {f.shape}")
    if not need_sources:
        return _readonly(f, None, None)
    A = as_grey(a, "a", data_range=data_range)
    B = as_grey(b, "b", data_range=data_range)
    if not (A.shape == B.shape == f.shape):
        raise ValueError(f"shapes differ: fused {f.shape}, a {A.shape}, b {B.shape}")
    return _readonly(f, A, B)


def _readonly(*xs):
    for x in xs:
        if x is not None:
            x.setflags(write=False)
    return xs


def levels(x: np.ndarray) -> np.ndarray:
    """Integer grey levels (int64) of a prepared 0–255 float image."""
    return x.astype(np.int64)
