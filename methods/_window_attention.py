"""Window attention of SwinFusion's inference path as one compiled kernel (head dimension 10, float32).

For every window of ``n`` tokens (``n`` = ws², 64 for 8×8 windows) and every head it computes

    O = softmax(scale·Q Kᵀ + M) V          (Q, K, V: n × 10; M: n × n additive bias + shift mask)

exactly as the official formulation (``(q·scale) @ kᵀ + bias + mask``, row softmax, ``@ v``), but with
the n × n scores of one window and head kept in the L1 cache and every loop vectorised over the
queries ``i`` (the compiler turns the innermost loop over ``i`` into SIMD instructions).  Tokens come
and go channel-major (``(channels, T)``: the projections write them so at no cost, and the output
projection reads the result transposed), so the queries of a head and the output are rows:

1. ``Sᵀ[j, i] = log₂e·Mᵀ[j, i] + Σ_d K[j, d]·(log₂e·scale·Q[i, d])`` — the scores in base-2 units
   (the softmax is unchanged: e^(s) = 2^(s·log₂e)), stored key-major, so the mask and the ten terms
   of a score are a chain of fused multiply-adds on whole vectors of queries, the mask as its first
   addend; the column maximum ``m[i] = max_j Sᵀ[j, i]`` is kept on the way;
2. ``Pᵀ[j, i] = 2^(Sᵀ[j, i] − m[i])`` with :func:`_exp2` (below), and ``l[i] = Σ_j Pᵀ[j, i]``;
3. ``Oᵀ[d, i] = Σ_j Pᵀ[j, i]·V[j, d]``, four keys × five output rows per pass (twenty values of V held
   in registers, each row of Pᵀ loaded twice per window and head instead of ten times: the pass was
   bound by loads, 1.2× slower than the same number of multiply-adds in step 1), then
   ``Oᵀ[d, i] / l[i]`` into the output.  Every ``Oᵀ[d, i]`` is the same chain of multiply-adds in key
   order as with eight keys per pass and one row (same bits, measured).

Floating point: float32 throughout, as the fused kernel it replaces.  No ``fastmath``: every sum is
evaluated in the written order, and the multiply-adds are explicit IEEE fused multiply-adds
(``llvm.fma``, :func:`_fma`), never contractions left to the compiler, so the results do not depend
on the SIMD width (AVX2 or AVX-512) or on whether the CPU has FMA instructions (then ``fmaf`` of the C
library gives the same bits; tested).  Against ``scaled_dot_product_attention`` and the official
explicit formulation the outputs differ by float32 round-off (≤ 1e-6 on unit-variance inputs).

Scores more than :data:`CUT` (natural units) below their column's maximum get weight exactly 0: their
true weight, < e^−60 ≈ 1e−26 of the largest one, is far below float32 resolution of the sum ``l ≥ 1``, and it
keeps the products ``P·V`` out of the subnormal range (subnormal arithmetic was 5× slower).  Masked
pairs of the shifted windows (−100) are such scores.

The exponential: numba has no vectorisable ``exp`` here (no SVML), so :func:`_exp2` is written out:
x = n + r with n the nearest integer and |r| ≤ ½ (exact), the degree-6 polynomial of Cephes ``exp2f``
(S. L. Moshier, *Methods and Programs for Mathematical Functions*, 1989) for 2ʳ, and 2ⁿ built in the
exponent bits.  Accuracy ≤ 2 ulp on [−126, 0] (tested; measured 0.93 ulp).  Base 2 instead of e
(session 8): the scale and the mask are multiplied by log₂e once per call, and the per-score work
loses the two-part ln 2 reduction and two operations of the polynomial's evaluation (the kernel
1.05–1.09× faster, interleaved A/B; round-off only: max |Δ| against a float64 reference unchanged).

The kernel is compiled by numba on first use (never at import) and cached on disk (the compiled
functions live at module level: closures over intrinsics missed the disk cache, 2.3 s of CPU per
process); it releases the GIL, so the chunk workers of :mod:`methods._swin_blocks` run it side by side.
This module imports numba: :mod:`methods._swin_blocks` imports it only when the kernel is first used.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from ._numba_intrinsics import fma_f32 as _fma, wide_vectors as _wide_vectors

#: head dimension the kernel is written for (SwinFusion: 60 channels / 6 heads)
HEAD_DIM = 10
#: tokens per window the kernel is written for (8×8 windows); a compile-time constant, so that every
#: vectorised loop has a known trip count (no remainder loops)
WINDOW = 64
#: keys per pass of the ``P·V`` product
KEY_BLOCK = 4
#: output rows (channels of a head) per pass of the ``P·V`` product; divides :data:`HEAD_DIM`
OUT_BLOCK = 5
#: scores this far below their column's maximum get weight 0 (see the module docstring)
CUT = -60.0

_F = np.float32


def supported(n: int, head_dim: int) -> bool:
    """Whether the kernel handles windows of ``n`` tokens with heads of ``head_dim`` channels."""
    return head_dim == HEAD_DIM and n == WINDOW


@intrinsic
def _f32_from_bits(typingctx, x):
    """The float32 whose bit pattern is the int32 ``x``."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


_LOG2E = 1.4426950408889634                  # log₂e (float64; products rounded once to float32)
#: Cephes ``exp2f``: 2ʳ ≈ 1 + r·P(r) on |r| ≤ ½
_E0, _E1, _E2, _E3, _E4, _E5 = (_F(1.535336188319500e-4), _F(1.339887440266574e-3), _F(9.618437357674640e-3),
                                _F(5.550332471162809e-2), _F(2.402264791363012e-1), _F(6.931472028550421e-1))
_LOWEST, _HALF, _ONE, _ZERO, _NEG_INF = _F(-126.0), _F(0.5), _F(1.0), _F(0.0), _F(-np.inf)
_CUT2, _LOG2E_F = _F(CUT * _LOG2E), _F(_LOG2E)
_BIAS_EXP, _MANT_BITS = np.int32(127), np.int32(23)
_D, _KB, _DB, _N = HEAD_DIM, KEY_BLOCK, OUT_BLOCK, WINDOW


@njit(nogil=True, inline="always")
def _exp2(x):  # pragma: no cover - compiled
    """2ˣ in float32 for x ≤ 0 (x < −126 is taken as −126: 2⁻¹²⁶, the smallest normal number)."""
    x = x if x > _LOWEST else _LOWEST
    k = np.floor(x + _HALF)                             # nearest integer (x + ½ is exact here or rounds to it)
    r = x - k                                           # exact, |r| ≤ ½
    p = _fma(_E0, r, _E1)
    p = _fma(p, r, _E2)
    p = _fma(p, r, _E3)
    p = _fma(p, r, _E4)
    p = _fma(p, r, _E5)
    y = _fma(p, r, _ONE)
    return y * _f32_from_bits((np.int32(k) + _BIAS_EXP) << _MANT_BITS)


@njit(cache=True, nogil=True)
def exp2_into(x, out):  # pragma: no cover - compiled
    for i in range(x.shape[0]):
        out[i] = _exp2(x[i])


@njit(cache=True, nogil=True, error_model="numpy")
def attend_kernel(q, qb, qo, k, kb, ko, v, vb, vo, mask_t, scale, heads, out):  # pragma: no cover - compiled
    """Attention of every window of 64 consecutive columns; head ``h`` reads rows ``xo + 10h …`` of ``x``, each
    row plus its bias ``xb[row]`` (the projection's bias, added here as a separate pass would: same values)."""
    _wide_vectors()
    mask2 = np.empty(mask_t.shape, np.float32)              # the mask in base-2 units (once per call)
    for h in range(mask_t.shape[0]):
        for j in range(_N):
            a_row, b_row = mask_t[h, j], mask2[h, j]
            for i in range(_N):
                b_row[i] = a_row[i] * _LOG2E_F
    qt = np.empty((_D, _N), np.float32)
    st = np.empty((_N, _N), np.float32)
    m = np.empty(_N, np.float32)
    inv = np.empty(_N, np.float32)
    ot = np.empty((_D, _N), np.float32)
    for w0 in range(0, q.shape[1], _N):
        for h in range(heads):
            c = h * _D
            for d in range(_D):
                q_row, qt_row, bq = q[qo + c + d], qt[d], qb[qo + c + d]
                for i in range(_N):
                    qt_row[i] = (q_row[w0 + i] + bq) * scale
            # 1. scores Sᵀ[j, i] in base-2 units (the mask, then ten multiply-adds in order) and their column maxima
            mh = mask2[h]
            for i in range(_N):
                m[i] = _NEG_INF
            q0, q1, q2, q3, q4 = qt[0], qt[1], qt[2], qt[3], qt[4]
            q5, q6, q7, q8, q9 = qt[5], qt[6], qt[7], qt[8], qt[9]
            e = ko + c
            c0, c1, c2, c3, c4 = kb[e], kb[e + 1], kb[e + 2], kb[e + 3], kb[e + 4]
            c5, c6, c7, c8, c9 = kb[e + 5], kb[e + 6], kb[e + 7], kb[e + 8], kb[e + 9]
            for j in range(0, _N, 2):                         # two keys per pass: the queries loaded once
                ja, jb = w0 + j, w0 + j + 1
                s_row, t_row, m_row, n_row = st[j], st[j + 1], mh[j], mh[j + 1]
                k0, k1, k2, k3, k4 = k[e, ja] + c0, k[e + 1, ja] + c1, k[e + 2, ja] + c2, k[e + 3, ja] + c3, k[e + 4, ja] + c4
                k5, k6, k7, k8, k9 = k[e + 5, ja] + c5, k[e + 6, ja] + c6, k[e + 7, ja] + c7, k[e + 8, ja] + c8, k[e + 9, ja] + c9
                l0, l1, l2, l3, l4 = k[e, jb] + c0, k[e + 1, jb] + c1, k[e + 2, jb] + c2, k[e + 3, jb] + c3, k[e + 4, jb] + c4
                l5, l6, l7, l8, l9 = k[e + 5, jb] + c5, k[e + 6, jb] + c6, k[e + 7, jb] + c7, k[e + 8, jb] + c8, k[e + 9, jb] + c9
                for i in range(_N):
                    a0, a1, a2, a3, a4 = q0[i], q1[i], q2[i], q3[i], q4[i]
                    a5, a6, a7, a8, a9 = q5[i], q6[i], q7[i], q8[i], q9[i]
                    s = _fma(a0, k0, m_row[i])
                    s = _fma(a1, k1, s)
                    s = _fma(a2, k2, s)
                    s = _fma(a3, k3, s)
                    s = _fma(a4, k4, s)
                    s = _fma(a5, k5, s)
                    s = _fma(a6, k6, s)
                    s = _fma(a7, k7, s)
                    s = _fma(a8, k8, s)
                    s = _fma(a9, k9, s)
                    u = _fma(a0, l0, n_row[i])
                    u = _fma(a1, l1, u)
                    u = _fma(a2, l2, u)
                    u = _fma(a3, l3, u)
                    u = _fma(a4, l4, u)
                    u = _fma(a5, l5, u)
                    u = _fma(a6, l6, u)
                    u = _fma(a7, l7, u)
                    u = _fma(a8, l8, u)
                    u = _fma(a9, l9, u)
                    s_row[i] = s
                    t_row[i] = u
                    mx = m[i]
                    mx = s if s > mx else mx
                    m[i] = u if u > mx else mx
            # 2. weights Pᵀ = 2^(Sᵀ − m) in place, and their column sums
            for i in range(_N):
                inv[i] = _ZERO
            for j in range(_N):
                s_row = st[j]
                for i in range(_N):
                    x = s_row[i] - m[i]
                    p = _exp2(x)
                    p = p if x >= _CUT2 else _ZERO
                    s_row[i] = p
                    inv[i] += p
            for i in range(_N):
                inv[i] = _ONE / inv[i]
            # 3. Oᵀ = Σ_j Pᵀ[j]·V[j], four keys × five output rows per pass (in key order), then Oᵀ / l into the output
            for d in range(_D):
                for i in range(_N):
                    ot[d, i] = _ZERO
            for j in range(0, _N, _KB):
                p0r, p1r, p2r, p3r = st[j], st[j + 1], st[j + 2], st[j + 3]
                ja = w0 + j
                for dg in range(0, _D, _DB):                  # five output rows per pass: Pᵀ rows loaded twice
                    e0, e1, e2, e3, e4 = vo + c + dg, vo + c + dg + 1, vo + c + dg + 2, vo + c + dg + 3, vo + c + dg + 4
                    r0, r1, r2, r3, r4 = v[e0], v[e1], v[e2], v[e3], v[e4]
                    b0, b1, b2, b3, b4 = vb[e0], vb[e1], vb[e2], vb[e3], vb[e4]
                    v00, v01, v02, v03 = r0[ja] + b0, r0[ja + 1] + b0, r0[ja + 2] + b0, r0[ja + 3] + b0
                    v10, v11, v12, v13 = r1[ja] + b1, r1[ja + 1] + b1, r1[ja + 2] + b1, r1[ja + 3] + b1
                    v20, v21, v22, v23 = r2[ja] + b2, r2[ja + 1] + b2, r2[ja + 2] + b2, r2[ja + 3] + b2
                    v30, v31, v32, v33 = r3[ja] + b3, r3[ja + 1] + b3, r3[ja + 2] + b3, r3[ja + 3] + b3
                    v40, v41, v42, v43 = r4[ja] + b4, r4[ja + 1] + b4, r4[ja + 2] + b4, r4[ja + 3] + b4
                    o0, o1, o2, o3, o4 = ot[dg], ot[dg + 1], ot[dg + 2], ot[dg + 3], ot[dg + 4]
                    for i in range(_N):
                        p0, p1, p2, p3 = p0r[i], p1r[i], p2r[i], p3r[i]
                        o0[i] = _fma(p3, v03, _fma(p2, v02, _fma(p1, v01, _fma(p0, v00, o0[i]))))
                        o1[i] = _fma(p3, v13, _fma(p2, v12, _fma(p1, v11, _fma(p0, v10, o1[i]))))
                        o2[i] = _fma(p3, v23, _fma(p2, v22, _fma(p1, v21, _fma(p0, v20, o2[i]))))
                        o3[i] = _fma(p3, v33, _fma(p2, v32, _fma(p1, v31, _fma(p0, v30, o3[i]))))
                        o4[i] = _fma(p3, v43, _fma(p2, v42, _fma(p1, v41, _fma(p0, v40, o4[i]))))
            for d in range(_D):
                o_row, out_row = ot[d], out[c + d]
                for i in range(_N):
                    out_row[w0 + i] = o_row[i] * inv[i]


def exp2_f32(x: np.ndarray) -> np.ndarray:
    """The kernel's 2ˣ on a 1-D float32 array (for tests; x ≤ 0, see :func:`_exp2`)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty_like(x)
    exp2_into(x, out)
    return out


def attend(q: np.ndarray, q_row: int, k: np.ndarray, k_row: int, v: np.ndarray, v_row: int,
           mask: np.ndarray, scale: float, out: np.ndarray, q_bias: np.ndarray | None = None,
           k_bias: np.ndarray | None = None, v_bias: np.ndarray | None = None) -> np.ndarray:
    """Attention of every window of 64 consecutive tokens, written into ``out`` (heads·10, T).

    Channel-major operands: ``q``, ``k``, ``v`` C-contiguous float32 (·, T) (T a multiple of 64; they may be
    the same array), head ``h``'s queries in rows ``q_row + 10h … + 9`` (likewise keys and values), each row
    ``r`` plus ``q_bias[r]`` (``k_bias``, ``v_bias``; float32, one per row; none: 0) before use;
    ``mask``: (heads, 64, 64) float32 additive mask ``M[h, i, j]`` (query i, key j: bias + shift mask), the
    same for every window; ``scale`` multiplies the queries.  Returns ``out``.
    """
    n = mask.shape[1]
    if not supported(n, HEAD_DIM) or q.shape[1] % n:
        raise ValueError(f"windows of {n} tokens and {q.shape[1]} tokens: not supported by the kernel")
    mask_t = np.ascontiguousarray(np.swapaxes(mask, 1, 2), dtype=np.float32)
    biases = [np.zeros(x.shape[0], np.float32) if b is None else b for x, b in ((q, q_bias), (k, k_bias), (v, v_bias))]
    return attend_transposed(q, q_row, k, k_row, v, v_row, mask_t, scale, out, *biases)


def attend_transposed(q: np.ndarray, q_row: int, k: np.ndarray, k_row: int, v: np.ndarray, v_row: int,
                      mask_t: np.ndarray, scale: float, out: np.ndarray, q_bias: np.ndarray, k_bias: np.ndarray,
                      v_bias: np.ndarray) -> np.ndarray:
    """:func:`attend` with the mask already transposed and contiguous (``mask_t[h, j, i] = M[h, i, j]``) and
    every bias given."""
    attend_kernel(q, q_bias, q_row, k, k_bias, k_row, v, v_bias, v_row, mask_t, np.float32(scale * _LOG2E),
                  mask_t.shape[0], out)
    return out
