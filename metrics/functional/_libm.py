"""Elementary functions with the same result on every x86-64 CPU (private helper).

numpy picks its ``exp``/``log``/``power``... loops at run time from the CPU's
instruction set: on AVX-512 machines they are numpy's own SIMD routines, on
AVX2 machines the C library's, and the two differ in the last bit for some
arguments.  That is harmless where a metric is well-conditioned, but a few
filter tables feed computations that amplify the last bit (Qcb's contrast
ratios in the black background of PET/SPECT slices, ``docs/cpu_independence.md``).
Those tables are computed here with the C library's scalar functions (Python's
``math`` module), which take the same path whatever numpy dispatches to.
Meant for small, cached tables (about 0.1 µs per element), not for image-sized
work on every call.
"""
from __future__ import annotations

import math

import numpy as np


def exp(x: np.ndarray) -> np.ndarray:
    """Element-wise ``exp`` (float64) by the C library, independent of numpy's SIMD dispatch."""
    x = np.asarray(x, dtype=np.float64)
    return np.fromiter(map(math.exp, x.ravel().tolist()), dtype=np.float64, count=x.size).reshape(x.shape)
