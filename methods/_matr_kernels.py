"""Compiled LayerNorm of MATR's token blocks on feature-major tokens (float32, inference only).

MATR's inference path (:mod:`methods.matr`) runs its three pre-LN token blocks on a band of tokens held
**feature-major**: a ``d × n`` block (d = 16 features, one column per token).  The projections stay
torch GEMMs; the LayerNorm statistics, which count no FLOPs, are one compiled pass here
(:func:`add_rows_and_normalise`), which also adds the per-row constant that the previous projection
left out (its bias, folded here instead of a separate ``add_``).  In torch the same steps were eight
element-wise passes with their temporaries (sum, subtract, square, sum, add, rsqrt, multiply, and the
bias ``add_``): 42–47 µs against 25 µs for a 16 × 4096 block, one thread (session 8).

Floating point: no ``fastmath``, no fused multiply-adds; the loops run over tokens (columns)
innermost, so the compiler vectorises across tokens while every column's sums are evaluated in the
written order, as torch's column reductions do: the result equals :func:`methods.matr._normalised`
bit for bit on the 4096-token bands of a 256² map (to ≤ 1 ulp where torch's reduction takes its
remainder path, e.g. 1000 columns), and does not depend on the instruction set (SSE2, AVX2 or
AVX-512; both tested in ``tests/methods/test_matr.py``).

Not done here, measured: the exact-erf GELU written out in numba (Abramowitz–Stegun 7.1.26 with a
hand-written exponential, 512-bit vectors) took 109 µs on a 64 × 4096 block against 88 µs for torch's
vectorised ``gelu_`` plus 15 µs for the bias ``add_``, so torch keeps it.

Compiled on first use (this module is imported lazily by :mod:`methods.matr`), cached on disk (the
kernel at module level); it releases the GIL, so MATR's band workers run it side by side.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_F = np.float32
_ZERO, _ONE = _F(0.0), _F(1.0)
#: columns (tokens) per block of the kernel: the block's per-column statistics stay in the L1 cache
COLUMNS = 512


@njit(cache=True, nogil=True, error_model="numpy")
def add_rows_and_normalise(t, bias, out, eps):  # pragma: no cover - compiled
    """``t += bias[:, None]`` in place, then ``out`` = each column of ``t`` normalised (LayerNorm, no affine).

    ``t``, ``out``: C-contiguous d × n float32; ``bias``: d float32; ``eps``: float32.  Column statistics
    as :func:`methods.matr._normalised`: ``mean = (Σ_k t[k])·(1/d)``, ``var = (Σ_k (t[k] − mean)²)·(1/d)``,
    ``out = (t − mean)·(1/√(var + ε))``, sums over k in order; columns in blocks of :data:`COLUMNS`
    (row slices, so that the compiler vectorises the loops over columns).
    """
    d, n = t.shape
    inv_d = _ONE / _F(d)
    s = np.empty(COLUMNS, np.float32)
    q = np.empty(COLUMNS, np.float32)
    for j0 in range(0, n, COLUMNS):
        m = min(COLUMNS, n - j0)
        for j in range(m):
            s[j] = _ZERO
            q[j] = _ZERO
        for k in range(d):
            b = bias[k]
            tk = t[k, j0:j0 + m]
            for j in range(m):
                v = tk[j] + b
                tk[j] = v
                s[j] += v
        for j in range(m):
            s[j] = s[j] * inv_d
        for k in range(d):
            tk = t[k, j0:j0 + m]
            ok = out[k, j0:j0 + m]
            for j in range(m):
                c = tk[j] - s[j]
                ok[j] = c
                q[j] += c * c
        for j in range(m):
            q[j] = _ONE / np.sqrt(q[j] * inv_d + eps)
        for k in range(d):
            ok = out[k, j0:j0 + m]
            for j in range(m):
                ok[j] = ok[j] * q[j]
