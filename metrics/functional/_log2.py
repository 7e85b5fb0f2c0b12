"""A branch-free ``log2`` for compiled kernels (private helper of ``_fmi_kernel``).

The FMI kernel takes ~60 base-2 logarithms per window position; as calls into
the C library they cannot be vectorised and were about a third of its time.
This inline version is plain IEEE arithmetic and bit operations (the
fdlibm/musl ``log`` reduction and polynomial, scaled by 1/ln 2), so LLVM
vectorises the loops that call it, and it gives the same bits on every CPU
(numba compiles without fast-math: no reassociation, no fused multiply-add).

Accuracy: within 2 ulp of ``math.log2`` for positive normal doubles (90 % of
results identical; ``tests/metrics/test_fmi_kernel.py`` sweeps the range),
exact at powers of two.  Defined for positive *normal* inputs only: callers
clamp with ``max(x, TINY)`` and select 0 for x = 0 themselves; a subnormal
input is read as ``TINY`` (log2 = −1022 instead of down to −1074, which
changes an entropy term ``p·log2 p`` by less than 3e-305).

Editing this file: numba's on-disk cache of a compiled function is keyed by that
function's own source file only, and ``_fmi_kernel``/``_fmi_lanes``/``_fmi_lanes3`` compile this
function into their kernels.  After a change here, touch those three files (or
delete their ``__pycache__`` entries), else they keep running the old code
(seen in session 7: a deliberately wrong ``log2`` left the FMI values unchanged
until the cache was bypassed).  The same holds for ``_fmi_kernel`` changes and
``_fmi_lanes``, which calls its ``windows_scalar``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

TINY = 2.2250738585072014e-308  # smallest positive normal double

_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_INV_LN2 = 1.4426950408889634
_TWO52_PLUS_BIAS = 4503599627370496.0 + 1023.0


@njit(cache=True, inline="always")
def log2(x):
    """log2(x) for a positive normal double ``x``, branch-free."""
    b = np.float64(x).view(np.int64)
    mant = b & 0x000FFFFFFFFFFFFF
    # write x = 2^e·m with m in [sqrt(2)/2, sqrt(2)): mantissas above sqrt(2) move down one binade
    up = mant > 0x6A09E667F3BCD
    e = (b >> 52) + (1 if up else 0)  # biased exponent
    m = np.int64(mant | (0x3FE0000000000000 if up else 0x3FF0000000000000)).view(np.float64)
    # the exponent as a double without an int64 -> double conversion (2^52 + e exactly, minus 2^52 + bias)
    ef = np.int64(0x4330000000000000 | e).view(np.float64) - _TWO52_PLUS_BIAS
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    hfsq = 0.5 * f * f
    return ef + (f - (hfsq - s * (hfsq + (t2 + t1)))) * _INV_LN2
