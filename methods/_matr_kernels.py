"""Compiled element-wise steps of MATR's token blocks on feature-major tokens (float32, inference only).

MATR's inference path (:mod:`methods.matr`) runs its three pre-LN token blocks on a band of tokens held
**feature-major**: a ``d × n`` block (d = 16 features, one column per token).  The projections stay
torch GEMMs; what counts no FLOPs is done here, one pass per step:

* :func:`add_rows_and_normalise` — ``t += b`` (the per-row constant that the previous projection left
  out: its bias), then the LayerNorm statistics of every column and the normalised block
  ``u = (t − mean)·(1/√(var + ε))`` (biased variance, as ``torch.nn.LayerNorm``; γ and β are folded into
  the next projection by :mod:`methods.matr`).  In torch these were eight passes with temporaries:
  42–47 µs against 25 µs for a 16 × 4096 block, one thread (session 8).
* :func:`add_rows_and_gelu` — ``h = GELU(h + c)`` in place, the exact-erf GELU in torch's order,
  ``(x·½)·(1 + erf(x/√2))``.  torch's ``add_`` + ``gelu_`` took 1.35–1.8× as long on a 64 × 4096 block.

The erf (:func:`_erf`): ``erf(x) ≈ x·P(x²)/Q(x²)`` for |x| ≤ 4 (beyond, erf is ±1 in float32: x is
clamped, and the result to [−1, 1]), P and Q of degree 5, fitted for this module (session 8) by
iteratively reweighted least squares of ``x·P − erf·Q`` on 6,000 Chebyshev points of [0, 4]
(``Q(0) = 1``): 2.4e−8 absolute error in exact arithmetic, ≤ 3.4e−7 evaluated in float32 (tested on a
dense grid; torch's own vectorised erf, Abramowitz–Stegun 7.1.26 with an exponential, is within 1.5e−7
before rounding); the GELU is within 1.2e−6 of the float64 GELU on [−6, 6], as torch's float32 GELU
is.  A rational form needs no exponential: each value costs ten fused multiply-adds and one division.

Floating point: no ``fastmath``; the loops run over tokens (columns) innermost, so the compiler
vectorises across tokens while every column's sums are evaluated in the written order; multiply-adds
are explicit IEEE fused multiply-adds (``llvm.fma``, :func:`_fma`: the FMA instruction, or the C
library's ``fmaf`` where the CPU has none), never contractions left to the compiler.  So the results
do not depend on the instruction set (SSE2, AVX2 or AVX-512; tested in ``tests/methods/test_matr.py``).
The normalisation equals :func:`methods.matr._normalised` bit for bit on the 4096-token bands of a 256²
map (to ≤ 1 ulp where torch's reduction takes its remainder path, e.g. 1000 columns).

Compiled on first use (this module is imported lazily by :mod:`methods.matr`), cached on disk (every
kernel at module level); the kernels release the GIL, so MATR's band workers run them side by side.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._numba_intrinsics import fma_f32 as _fma, wide_vectors as _wide_vectors

_F = np.float32
_ZERO, _HALF, _ONE = _F(0.0), _F(0.5), _F(1.0)
_SQRT1_2, _ERF_LIMIT = _F(0.70710678118654752440), _F(4.0)
# erf(x) ≈ x·P(x²)/Q(x²) on |x| ≤ 4: the fit described in the module docstring (coefficients of z⁰ … z⁵)
_P0, _P1, _P2, _P3, _P4, _P5 = (_F(1.1283790615228582), _F(0.19436807457714356), _F(0.0532146241974004),
                                _F(0.003921344950800872), _F(0.00028589511615245483), _F(1.985685319141061e-06))
_Q1, _Q2, _Q3, _Q4, _Q5 = (_F(0.5055861288297117), _F(0.11569470939106068), _F(0.015280695840747316),
                           _F(0.0011958053696079199), _F(3.748051140738809e-05))
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


@njit(nogil=True, inline="always")
def _erf(x):  # pragma: no cover - compiled
    """erf(x) in float32: ``x·P(x²)/Q(x²)`` with |x| clamped to 4 and the result to [−1, 1] (module docstring)."""
    x = x if x < _ERF_LIMIT else _ERF_LIMIT
    x = x if x > -_ERF_LIMIT else -_ERF_LIMIT
    z = x * x
    p = _fma(_P5, z, _P4)
    p = _fma(p, z, _P3)
    p = _fma(p, z, _P2)
    p = _fma(p, z, _P1)
    p = _fma(p, z, _P0)
    q = _fma(_Q5, z, _Q4)
    q = _fma(q, z, _Q3)
    q = _fma(q, z, _Q2)
    q = _fma(q, z, _Q1)
    q = _fma(q, z, _ONE)
    y = (x * p) / q
    y = y if y < _ONE else _ONE  # the float32 evaluation reaches 1 + 1 ulp near |x| = 4
    return y if y > -_ONE else -_ONE


@njit(cache=True, nogil=True, error_model="numpy")
def erf_into(x, out):  # pragma: no cover - compiled
    """``out[i] = erf(x[i])`` (:func:`_erf`; 1-D float32), for the tests."""
    _wide_vectors()
    for i in range(x.shape[0]):
        out[i] = _erf(x[i])


@njit(cache=True, nogil=True, error_model="numpy")
def add_rows_and_gelu(h, bias):  # pragma: no cover - compiled
    """``h = GELU(h + bias[:, None])`` in place: ``(x·½)·(1 + erf(x/√2))``, x = h + bias (C-contiguous d × n
    float32, bias d float32)."""
    _wide_vectors()
    d, n = h.shape
    for k in range(d):
        b = bias[k]
        hk = h[k]
        for j in range(n):
            x = hk[j] + b
            hk[j] = (x * _HALF) * (_ONE + _erf(x * _SQRT1_2))


@njit(cache=True, nogil=True, error_model="numpy")
def row_bin_sums(mem, starts, ends, out):  # pragma: no cover - compiled
    """``out[r, j, c] = Σ_{x = starts[j]}^{ends[j] − 1} mem[r, x, c]`` in float64, x ascending.

    ``mem``: rows of a channels-last map, C-contiguous rows × W × C float32; ``starts``, ``ends``: int64, the
    column bins of an adaptive average pooling; ``out``: rows × bins × C float64.  The per-row, per-bin sums
    of the gated convolution's 3×3 context (:meth:`methods.matr.build_matr_network`'s ``AdaptiveConv``),
    taken by the band worker that wrote the rows, while they are in its cache; additions only, in order, so
    the sums do not depend on the instruction set or on how the rows are cut into bands.
    """
    rows, _, c = mem.shape
    for r in range(rows):
        for j in range(starts.shape[0]):
            acc = out[r, j]
            for ch in range(c):
                acc[ch] = 0.0
            for x in range(starts[j], ends[j]):
                v = mem[r, x]
                for ch in range(c):
                    acc[ch] += v[ch]
