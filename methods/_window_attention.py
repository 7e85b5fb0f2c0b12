"""Window attention of SwinFusion's inference path as one compiled kernel (head dimension 10, float32).

For every window of ``n`` tokens (``n`` = ws², 64 for 8×8 windows) and every head it computes

    O = softmax(scale·Q Kᵀ + M) V          (Q, K, V: n × 10; M: n × n additive bias + shift mask)

exactly as the official formulation (``(q·scale) @ kᵀ + bias + mask``, row softmax, ``@ v``), but with
the n × n scores of one window and head kept in the L1 cache and every loop vectorised over the
queries ``i`` (the compiler turns the innermost loop over ``i`` into SIMD instructions).  Tokens come
and go channel-major (``(channels, T)``: the projections write them so at no cost, and the output
projection reads the result transposed), so the queries of a head and the output are rows:

1. ``Sᵀ[j, i] = log₂e·Mᵀ[j, i] + Σ_d K[j, d]·(log₂e·scale·Q[i, d])`` — the scores in base-2 units
   (the softmax is unchanged: e^(s) = 2^(s·log₂e)), stored key-major, the mask and the ten terms of a
   score a chain of fused multiply-adds, the mask as its first addend; the column maximum
   ``m[i] = max_j Sᵀ[j, i]`` is kept on the way;
2. ``Pᵀ[j, i] = 2^(Sᵀ[j, i] − m[i])`` with :func:`_weight16` (below), and ``l[i] = Σ_j Pᵀ[j, i]``;
3. ``Oᵀ[d, i] = Σ_j Pᵀ[j, i]·V[j, d]`` in key order, then ``Oᵀ[d, i] / l[i]`` into the output.

Steps 1 and 3 are written as explicit 16-lane vectors in LLVM IR (session 9, ``_scores16`` — now
:func:`_scores32` — and :func:`_pv16`): per vector of 16 queries the ten query vectors (step 1) or the ten output sums (step 3)
stay in registers through the 64 keys, and every key or value comes from memory as an embedded broadcast
operand of the fused multiply-add (``vfmadd231ps m32{1to16}``: no shuffle instruction).  The keys and
values, plus their biases, are first copied into small (10, 64) tiles per window and head.  Sessions 7–8
let the compiler vectorise loops over the queries instead; it broadcast every key and value into a
register (20 shuffles per 80 multiply-adds) and kept the sums of step 3 in memory.  Every score and every
output is the same chain of fused multiply-adds in the same order as before: **the same bits** (checked on
random windows and on a 256² forward), the kernel 0.88–0.89× the time (one chunk, interleaved, loaded).

Session 11, three more passes written as explicit vectors, every operation unchanged (**the same bits** as
the session-10 kernel on random windows of every mask kind, unit and 8× scores, and on a 256² forward):
:func:`_scores32` takes 32 queries per pass (two independent multiply-add chains per key, the key value
broadcast once for both; one chunk 0.91–0.95× the time); :func:`_weights64` computes a window's and head's
weights key by key over all 64 queries with the four column maxima and sums in registers (the compiled loop
kept the sums in memory; a further ≈ 0.97×); :func:`_tiles` copies a head's ten q/k/v rows plus their biases
(and the query scale) into the tiles as vectors, where the compiled loops had done it one element at a time
(≈ 20 % of the kernel's time; 0.89×).  Together one chunk of 64 windows takes 0.785× the time of the
session-10 kernel (interleaved, best of 15 × 10 calls, loaded machine).  Tried and not kept: 32 queries per
``P·V`` pass (0.99×: no gain over 16), software prefetch of the next window's rows (1.01–1.03×, again),
the weights in eight calls of eight keys (smaller code; 0.98–0.99×, noise).

Floating point: float32 throughout, as the fused kernel it replaces.  No ``fastmath``: every sum is
evaluated in the written order, and the multiply-adds are explicit IEEE fused multiply-adds
(``llvm.fma``), never contractions left to the compiler, so the results do not depend
on the SIMD width (AVX2 or AVX-512) or on whether the CPU has FMA instructions (then ``fmaf`` of the C
library gives the same bits; tested).  Against ``scaled_dot_product_attention`` and the official
explicit formulation the outputs differ by float32 round-off (≤ 1e-6 on unit-variance inputs).

Scores more than :data:`CUT` (natural units) below their column's maximum get weight exactly 0: their
true weight, < e^−60 ≈ 1e−26 of the largest one, is far below float32 resolution of the sum ``l ≥ 1``, and it
keeps the products ``P·V`` out of the subnormal range (subnormal arithmetic was 5× slower).  Masked
pairs of the shifted windows (−100) are such scores.

The exponential: numba has no vectorisable ``exp`` here (no SVML), so :func:`_weight16` is written out:
x = n + r with n the nearest integer and |r| ≤ ½ (exact), the degree-6 polynomial of Cephes ``exp2f``
(S. L. Moshier, *Methods and Programs for Mathematical Functions*, 1989) for 2ʳ, and 2ⁿ put into the
exponent field.  Accuracy ≤ 2 ulp on [CUT·log₂e, 0] = [−86.6, 0], the only range whose weights are kept
(tested; measured 0.93 ulp).  Base 2 instead of e (session 8): the scale and the mask are multiplied by
log₂e once per call, and the per-score work loses the two-part ln 2 reduction and two operations of the
polynomial's evaluation (the kernel 1.05–1.09× faster, interleaved A/B; round-off only: max |Δ| against
a float64 reference unchanged).  Session 10: n is found by adding 1.5·2²³ (x + 1.5·2²³ is the integer
nearest to x, ties to even, in its low mantissa bits: one addition instead of ``⌊x + ½⌋``, whose rounding
instruction is two micro-operations, plus the conversion to an integer), and 2ⁿ is applied by adding
those bits, shifted to the exponent field, to the polynomial's bits (the same bits as the product by 2ⁿ,
the result being a normal number above the cut); the clamp at −126 is gone, as values below the cut are
replaced by 0 anyway.  From x to the unselected weight, 11 vector instructions per 16 weights instead of 14
(a maximum, an addition, a 2-micro-operation rounding, a conversion, an integer addition and a
multiplication became two additions and an integer addition; checked in the compiled loop); the same bits
as before except at ties (x + ½ an exact integer), round-off only; the kernel alone 0.95× the time.

The kernel is compiled by numba on first use (never at import) and cached on disk (the compiled
functions live at module level: closures over intrinsics missed the disk cache, 2.3 s of CPU per
process); it releases the GIL, so the chunk workers of :mod:`methods._swin_blocks` run it side by side.
This module imports numba: :mod:`methods._swin_fused` imports it only when the kernel is first used.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._numba_intrinsics import fma16 as _fma16, splat as _splat, vec16 as _vec16, vload as _vload, vstore as _vstore
from ._numba_intrinsics import wide_vectors as _wide_vectors
from ._window_attention_norm import norm_rows_kernel as _norm_rows

#: head dimension the kernel is written for (SwinFusion: 60 channels / 6 heads)
HEAD_DIM = 10
#: tokens per window the kernel is written for (8×8 windows); a compile-time constant, so that every
#: vectorised loop has a known trip count (no remainder loops)
WINDOW = 64
#: queries per vector of the explicit 16-lane passes (:func:`_scores16`, :func:`_pv16`)
LANES = 16
#: scores this far below their column's maximum get weight 0 (see the module docstring)
CUT = -60.0

_F = np.float32


def supported(n: int, head_dim: int) -> bool:
    """Whether the kernel handles windows of ``n`` tokens with heads of ``head_dim`` channels."""
    return head_dim == HEAD_DIM and n == WINDOW


_LOG2E = 1.4426950408889634                  # log₂e (float64; products rounded once to float32)
#: Cephes ``exp2f``: 2ʳ ≈ 1 + r·P(r) on |r| ≤ ½
_E0, _E1, _E2, _E3, _E4, _E5 = (_F(1.535336188319500e-4), _F(1.339887440266574e-3), _F(9.618437357674640e-3),
                                _F(5.550332471162809e-2), _F(2.402264791363012e-1), _F(6.931472028550421e-1))
_ROUND, _ONE = _F(1.5 * 2 ** 23), _F(1.0)   # x + 1.5·2²³ rounds x to an integer (|x| < 2²²)
_CUT2, _LOG2E_F = _F(CUT * _LOG2E), _F(_LOG2E)
_D, _N = HEAD_DIM, WINDOW


# --------------------------------------------------------------------------- explicit 16-lane passes (LLVM IR)
def _ptr2(context, builder, arrty, arr, row, col):
    """Pointer to element (row, col) of a C-contiguous 2-D float32 array (row stride from the array)."""
    ary = context.make_array(arrty)(context, builder, arr)
    stride = builder.sdiv(cgutils.unpack_tuple(builder, ary.strides, 2)[0], ir.Constant(ir.IntType(64), 4))
    return builder.gep(ary.data, [builder.add(builder.mul(row, stride), col)])


def _weight16(context, builder, x):
    """IR: the softmax weights 2ˣ of a 16-lane vector ``x`` (base-2 scores minus their column maximum), exactly 0
    below ``CUT·log₂e``.  ``t = x + 1.5·2²³`` holds the nearest integer k of x (ties to even) in its low mantissa
    bits; ``r = x − (t − 1.5·2²³)`` is exact, |r| ≤ ½; 2ʳ by the degree-6 Cephes ``exp2f`` polynomial (fused
    multiply-adds); then k is added to the result's exponent field (``bits(y) + (bits(t) << 23)``; the shift drops
    the constant's bits), the same bits as the product y·2ᵏ for every kept weight (a normal number: y ∈ [2^−½,
    2^½], k ≥ −87).  Eleven vector operations from x to the unselected weight."""
    fma = _fma16(builder)
    vi32 = ir.VectorType(ir.IntType(32), LANES)
    sp = lambda v: _splat(builder, ir.Constant(ir.FloatType(), float(v)))
    t = builder.fadd(x, sp(_ROUND))
    r = builder.fsub(x, builder.fsub(t, sp(_ROUND)))
    p = builder.call(fma, [sp(_E0), r, sp(_E1)])
    for e in (_E2, _E3, _E4, _E5):
        p = builder.call(fma, [p, r, sp(e)])
    y = builder.call(fma, [p, r, sp(_ONE)])
    w = builder.add(builder.bitcast(y, vi32), builder.shl(builder.bitcast(t, vi32), ir.Constant(vi32, [23] * LANES)))
    return builder.select(builder.fcmp_ordered(">=", x, sp(_CUT2)), builder.bitcast(w, _vec16()), ir.Constant(_vec16(), None))


@intrinsic
def _exp2_16(typingctx, x, out, i):
    """``out[i … i + 15]`` = :func:`_weight16` of ``x[i … i + 15]`` (1-D float32 arrays)."""
    sig = types.void(x, out, types.int64)

    def codegen(context, builder, signature, args):
        x_, out_, i = args
        xs, outs = (context.make_array(a)(context, builder, v) for a, v in zip(signature.args[:2], (x_, out_)))
        _vstore(builder, _weight16(context, builder, _vload(builder, builder.gep(xs.data, [i]))),
                builder.gep(outs.data, [i]))
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True)
def exp2_into(x, out):  # pragma: no cover - compiled
    """:func:`_weight16` over 1-D float32 arrays whose length is a multiple of 16 (tests: :func:`exp2_f32`)."""
    for i in range(0, x.shape[0], LANES):
        _exp2_16(x, out, i)


@intrinsic
def _tiles(typingctx, x, xb, xo, scale, scaled, w0, xt):
    """``xt[d, ·] = x[xo + d, w0 … w0 + 63] + xb[xo + d]`` for the ten rows d of a head, times ``scale`` if
    ``scaled`` (the queries), as 16-lane vectors (session 11: the compiled loops did this one element at a
    time, ≈ 20 % of the kernel; the same additions and multiplications, the same bits)."""
    sig = types.void(x, xb, types.int64, types.float32, types.boolean, types.int64, xt)

    def codegen(context, builder, signature, args):
        x_, xb_, xo, scale, scaled, w0, xt_ = args
        aty = signature.args
        i64 = ir.IntType(64)
        c = lambda v: ir.Constant(i64, v)
        biases = context.make_array(aty[1])(context, builder, xb_)
        factor = _splat(builder, scale)
        for d in range(_D):
            row = builder.add(xo, c(d))
            bias = _splat(builder, builder.load(builder.gep(biases.data, [row])))
            for b in range(_N // LANES):
                v = builder.fadd(_vload(builder, _ptr2(context, builder, aty[0], x_, row, builder.add(w0, c(LANES * b)))), bias)
                _vstore(builder, builder.select(scaled, builder.fmul(v, factor), v),
                        _ptr2(context, builder, aty[6], xt_, c(d), c(LANES * b)))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _scores32(typingctx, qt, kt, mh, st, m, col):
    """Queries ``col … col + 31`` (two vectors of 16): Sᵀ[j, ·] = M[j, ·] + Σ_d qt[d, ·]·kt[d, j] (ten fused
    multiply-adds in d order) for the 64 keys j, the twenty query vectors held in registers and every key value
    broadcast once for both; the column maxima into ``m[col …]``.  Two independent chains per key (session 11;
    one vector of 16 per pass before): the same operations per score, the same bits."""
    sig = types.void(qt, kt, mh, st, m, types.int64)

    def codegen(context, builder, signature, args):
        qt_, kt_, mh_, st_, m_, col = args
        aty = signature.args
        i64 = ir.IntType(64)
        c = lambda v: ir.Constant(i64, v)
        fma = _fma16(builder)
        cols = [col, builder.add(col, c(LANES))]
        q = [[_vload(builder, _ptr2(context, builder, aty[0], qt_, c(d), cc)) for d in range(_D)] for cc in cols]
        mx = [_splat(builder, ir.Constant(ir.FloatType(), float("-inf")))] * 2
        for j in range(_N):
            s = [_vload(builder, _ptr2(context, builder, aty[2], mh_, c(j), cc)) for cc in cols]
            for d in range(_D):
                kv = _splat(builder, builder.load(_ptr2(context, builder, aty[1], kt_, c(d), c(j))))
                s = [builder.call(fma, [q[b][d], kv, s[b]]) for b in range(2)]
            for b in range(2):
                _vstore(builder, s[b], _ptr2(context, builder, aty[3], st_, c(j), cols[b]))
                mx[b] = builder.select(builder.fcmp_ordered(">", s[b], mx[b]), s[b], mx[b])
        ary = context.make_array(aty[4])(context, builder, m_)
        for b in range(2):
            _vstore(builder, mx[b], builder.gep(ary.data, [cols[b]]))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _weights64(typingctx, st, m, inv):
    """All 64 queries of a window and head: Pᵀ[j, ·] = :func:`_weight16` (Sᵀ[j, ·] − m) in place, key by key, the
    four column maxima and the four column sums (in key order, from 0) held in registers; ``inv = 1 / sum``
    (session 11; a compiled loop with the sums in memory before: the same operations, the same bits)."""
    sig = types.void(st, m, inv)

    def codegen(context, builder, signature, args):
        st_, m_, inv_ = args
        aty = signature.args
        i64 = ir.IntType(64)
        c = lambda v: ir.Constant(i64, v)
        blocks = range(_N // LANES)
        mary, iary = (context.make_array(a)(context, builder, v) for a, v in zip(aty[1:], (m_, inv_)))
        mv = [_vload(builder, builder.gep(mary.data, [c(LANES * b)])) for b in blocks]
        acc = [ir.Constant(_vec16(), None)] * len(mv)
        for j in range(_N):
            for b in blocks:
                p = _ptr2(context, builder, aty[0], st_, c(j), c(LANES * b))
                w = _weight16(context, builder, builder.fsub(_vload(builder, p), mv[b]))
                _vstore(builder, w, p)
                acc[b] = builder.fadd(acc[b], w)
        one = _splat(builder, ir.Constant(ir.FloatType(), 1.0))
        for b in blocks:
            _vstore(builder, builder.fdiv(one, acc[b]), builder.gep(iary.data, [c(LANES * b)]))
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _pv16(typingctx, st, vt, inv, out, row, col, icol):
    """Queries ``icol … icol + 15``: Oᵀ[d, ·] = Σ_j Pᵀ[j, ·]·vt[d, j] (fused multiply-adds in key order, from 0),
    the ten sums held in registers and every value broadcast from memory; ``out[row + d, col …] = Oᵀ[d]·inv``."""
    sig = types.void(st, vt, inv, out, types.int64, types.int64, types.int64)

    def codegen(context, builder, signature, args):
        st_, vt_, inv_, out_, row, col, icol = args
        aty = signature.args
        i64 = ir.IntType(64)
        c = lambda v: ir.Constant(i64, v)
        fma = _fma16(builder)
        acc = [ir.Constant(_vec16(), None)] * _D
        for j in range(_N):
            p = _vload(builder, _ptr2(context, builder, aty[0], st_, c(j), icol))
            for d in range(_D):
                vv = builder.load(_ptr2(context, builder, aty[1], vt_, c(d), c(j)))
                acc[d] = builder.call(fma, [p, _splat(builder, vv), acc[d]])
        ary = context.make_array(aty[2])(context, builder, inv_)
        scale = _vload(builder, builder.gep(ary.data, [icol]))
        for d in range(_D):
            _vstore(builder, builder.fmul(acc[d], scale), _ptr2(context, builder, aty[3], out_, builder.add(row, c(d)), col))
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True, error_model="numpy")
def attend_kernel(q, qb, qo, k, kb, ko, v, vb, vo, mask_t, scale, heads, out):  # pragma: no cover - compiled
    """Attention of every window of 64 consecutive columns; head ``h`` reads rows ``xo + 10h …`` of ``x``, each
    row plus its bias ``xb[row]`` (the projection's bias, added here as a separate pass would: same values)."""
    _wide_vectors()
    mask2 = np.empty(mask_t.shape, np.float32)
    for h in range(mask_t.shape[0]):
        for j in range(_N):
            a_row, b_row = mask_t[h, j], mask2[h, j]
            for i in range(_N):
                b_row[i] = a_row[i] * _LOG2E_F
    qt = np.empty((_D, _N), np.float32)
    kt = np.empty((_D, _N), np.float32)
    vt = np.empty((_D, _N), np.float32)
    st = np.empty((_N, _N), np.float32)
    m = np.empty(_N, np.float32)
    inv = np.empty(_N, np.float32)
    for w0 in range(0, q.shape[1], _N):
        for h in range(heads):
            c = h * _D
            _tiles(q, qb, qo + c, scale, True, w0, qt)        # the head's rows plus their biases
            _tiles(k, kb, ko + c, scale, False, w0, kt)
            _tiles(v, vb, vo + c, scale, False, w0, vt)
            # 1. scores Sᵀ[j, i] in base-2 units (the mask, then ten multiply-adds in order), column maxima
            mh = mask2[h]
            for iv in range(0, _N, 2 * LANES):
                _scores32(qt, kt, mh, st, m, iv)
            # 2. weights Pᵀ = 2^(Sᵀ − m) in place, and 1 / their column sums
            _weights64(st, m, inv)
            # 3. Oᵀ = Σ_j Pᵀ[j]·V[j] in key order, divided by the sums, into the output
            for iv in range(0, _N, 16):
                _pv16(st, vt, inv, out, c, w0 + iv, iv)



# --------------------------------------------------------------------------- a whole block chunk in one call (session 13)
@intrinsic
def _sgemm(typingctx, fn, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """IR: the Fortran BLAS ``sgemm_(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)`` at address ``fn`` (the
    one torch's matrix products call, :func:`gemm_address`; column-major, 32-bit integers), on the data of the
    float32 arrays ``a``, ``b``, ``c``.  The address is an argument, not a constant, so the caller stays in the
    disk cache."""
    i64, f32 = types.int64, types.float32
    sig = types.void(i64, i64, i64, i64, i64, i64, f32, a, i64, b, i64, f32, c, i64)

    def codegen(context, builder, signature, args):
        fn_, ta_, tb_, m_, n_, k_, alpha_, a_, lda_, b_, ldb_, beta_, c_, ldc_ = args
        i8, i32, fp = ir.IntType(8), ir.IntType(32), ir.FloatType().as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i8.as_pointer()] * 2 + [i32.as_pointer()] * 3
                               + [fp, fp, i32.as_pointer(), fp, i32.as_pointer(), fp, fp, i32.as_pointer()])

        def slot(value, ty):
            ptr = cgutils.alloca_once(builder, ty)
            builder.store(builder.trunc(value, ty) if isinstance(ty, ir.IntType) else value, ptr)
            return ptr

        def data(index, value):
            return builder.bitcast(context.make_array(signature.args[index])(context, builder, value).data, fp)

        f = builder.inttoptr(fn_, fnty.as_pointer())
        builder.call(f, [slot(ta_, i8), slot(tb_, i8), slot(m_, i32), slot(n_, i32), slot(k_, i32),
                         slot(alpha_, ir.FloatType()), data(7, a_), slot(lda_, i32), data(9, b_), slot(ldb_, i32),
                         slot(beta_, ir.FloatType()), data(12, c_), slot(ldc_, i32)])
        return context.get_dummy_value()

    return sig, codegen


_T, _NT = 84, 78                                # 'T', 'N'
_ONE32, _ZERO32 = np.float32(1.0), np.float32(0.0)


#: the first operand row of the chunks' attention calls, an int64 as :func:`attend` passes it from Python: a literal
#: ``0`` would make numba compile ``attend_kernel`` a second time (5-7 s cold) for the ``Literal[int](0)`` type
_ROW0 = np.int64(0)


@njit(cache=True, nogil=True, error_model="numpy", boundscheck=False)
def self_chunk_kernel(gemm, src, index, start, end, x, g1, b1, e1, proj_b, qkv_w, qkv_b, mask_t, scale, heads,
                      proj_w, g2, b2, e2, fc2_b, w1c, xn, qkv, att, xp, hidden):  # pragma: no cover - compiled
    """A Swin block's chunk ``x[start:end]`` up to its MLP's hidden layer, in one call (no Python between the steps):
    gather + ``norm1`` + ``proj`` bias (:func:`methods._window_attention_norm.norm_rows_kernel`), the ``qkv`` product,
    :func:`attend_kernel`, ``proj`` accumulated into ``x``, ``norm2`` + ``fc2`` bias, the ``fc1`` product (bias
    column) into ``hidden[:T]``; the products are the ``sgemm_`` calls torch's ``mm`` / ``addmm_`` make for the same
    operands (``gemm``: :func:`gemm_address`).  ``xn``, ``qkv``, ``att``, ``xp``, ``hidden``: scratch of ≥ T rows."""
    _wide_vectors()
    t = end - start
    c = x.shape[1]
    rows, wide, width = qkv_w.shape[0], xp.shape[1], hidden.shape[1]
    resid, xn1, xp1, h = x[start:end], xn[:t], xp[:t], hidden[:t]
    _norm_rows(src, index, start, resid, proj_b, xn1, g1, b1, e1)
    q = qkv[:rows * t].reshape((rows, t))
    _sgemm(gemm, _T, _NT, t, rows, c, _ONE32, xn1, c, qkv_w, c, _ZERO32, q, t)       # q = W·xnᵀ
    a = att[:c * t].reshape((c, t))
    attend_kernel(q, qkv_b, _ROW0, q, qkv_b, c, q, qkv_b, 2 * c, mask_t, scale, heads, a)
    _sgemm(gemm, _T, _T, c, t, c, _ONE32, proj_w, c, a, t, _ONE32, resid, c)          # resid += aᵀ·Wᵀ
    _norm_rows(resid, np.empty(0, np.int64), 0, resid, fc2_b, xp1, g2, b2, e2)
    _sgemm(gemm, _T, _NT, width, t, wide, _ONE32, w1c, wide, xp1, wide, _ZERO32, h, width)  # h = xp·[W | b]ᵀ



@njit(cache=True, nogil=True, error_model="numpy", boundscheck=False)
def cross_chunk_kernel(gemm, src_x, src_y, index, start, end, x, y, g1x, b1x, e1x, proj_bx, g1y, b1y, e1y, proj_by,
                       w_x, wb_x, w_y, wb_y, mask_a, mask_b, scale_a, scale_b, heads, proj_wa, proj_wb,
                       g2x, b2x, e2x, fc2_bx, g2y, b2y, e2y, fc2_by, w1c_x, w1c_y,
                       xn, yn, sx, sy, att_a, att_b, xp, yp, hidden_x, hidden_y):  # pragma: no cover - compiled
    """A cross block's chunk on both streams up to the MLPs' hidden layers, in one call: per stream gather +
    ``norm1`` + ``proj`` bias, one product with the stacked (3C, C) weight (its q rows for its own attention, its k/v
    rows for the other one's), A's attention (q from x, k/v from y) and B's, each ``proj`` accumulated into its
    stream, ``norm2`` + ``fc2`` bias and the ``fc1`` product into ``hidden_*[:T]`` (see :func:`self_chunk_kernel`)."""
    _wide_vectors()
    t = end - start
    c = x.shape[1]
    rows, wide, width = w_x.shape[0], xp.shape[1], hidden_x.shape[1]
    rx, ry = x[start:end], y[start:end]
    xn1, yn1, xp1, yp1, hx, hy = xn[:t], yn[:t], xp[:t], yp[:t], hidden_x[:t], hidden_y[:t]
    _norm_rows(src_x, index, start, rx, proj_bx, xn1, g1x, b1x, e1x)
    _norm_rows(src_y, index, start, ry, proj_by, yn1, g1y, b1y, e1y)
    px, py = sx[:rows * t].reshape((rows, t)), sy[:rows * t].reshape((rows, t))
    _sgemm(gemm, _T, _NT, t, rows, c, _ONE32, xn1, c, w_x, c, _ZERO32, px, t)
    _sgemm(gemm, _T, _NT, t, rows, c, _ONE32, yn1, c, w_y, c, _ZERO32, py, t)
    a, b = att_a[:c * t].reshape((c, t)), att_b[:c * t].reshape((c, t))
    attend_kernel(px, wb_x, _ROW0, py, wb_y, c, py, wb_y, 2 * c, mask_a, scale_a, heads, a)
    attend_kernel(py, wb_y, _ROW0, px, wb_x, c, px, wb_x, 2 * c, mask_b, scale_b, heads, b)
    _sgemm(gemm, _T, _T, c, t, c, _ONE32, proj_wa, c, a, t, _ONE32, rx, c)
    _sgemm(gemm, _T, _T, c, t, c, _ONE32, proj_wb, c, b, t, _ONE32, ry, c)
    none = np.empty(0, np.int64)
    _norm_rows(rx, none, 0, rx, fc2_bx, xp1, g2x, b2x, e2x)
    _sgemm(gemm, _T, _NT, width, t, wide, _ONE32, w1c_x, wide, xp1, wide, _ZERO32, hx, width)
    _norm_rows(ry, none, 0, ry, fc2_by, yp1, g2y, b2y, e2y)
    _sgemm(gemm, _T, _NT, width, t, wide, _ONE32, w1c_y, wide, yp1, wide, _ZERO32, hy, width)


def exp2_f32(x: np.ndarray) -> np.ndarray:
    """The kernel's softmax weight 2ˣ (:func:`_weight16`) on a 1-D float32 array, 0 below ``CUT·log₂e`` (for
    tests; x ≤ 0)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    padded = np.zeros(-(-x.shape[0] // LANES) * LANES, np.float32)
    padded[:x.shape[0]] = x
    out = np.empty_like(padded)
    exp2_into(padded, out)
    return out[:x.shape[0]]


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
    if not (out.flags.c_contiguous and out.dtype == np.float32):
        raise ValueError("attend: out must be a C-contiguous float32 array")
    attend_kernel(q, q_bias, q_row, k, k_bias, k_row, v, v_bias, v_row, mask_t, np.float32(scale * _LOG2E),
                  mask_t.shape[0], out)
    return out


_GEMM: list[int] = []


def gemm_address() -> int:
    """Address of the ``sgemm_`` that torch's float32 matrix products call on this build (MKL inside
    ``libtorch_cpu``), or 0 where it is not found or does not give ``torch.mm``'s bits on a probe product (then
    the chunks keep their torch calls).  Looked up once per process."""
    if not _GEMM:
        _GEMM.append(_find_gemm())
    return _GEMM[0]


def _find_gemm() -> int:
    import ctypes
    import os

    import torch

    try:
        if not torch.backends.mkl.is_available():
            return 0
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        address = ctypes.cast(lib.sgemm_, ctypes.c_void_p).value or 0
    except (OSError, AttributeError):
        return 0
    if address:
        g = torch.Generator().manual_seed(13)
        w, x = torch.randn(180, 60, generator=g), torch.randn(128, 60, generator=g)
        out = np.zeros((180, 128), np.float32)
        _probe_gemm(address, x.numpy(), w.numpy(), out)
        if not np.array_equal(out, torch.mm(w, x.t()).numpy()):
            return 0
    return address


@njit(cache=True, nogil=True)
def _probe_gemm(gemm, x, w, out):  # pragma: no cover - compiled
    _sgemm(gemm, _T, _NT, x.shape[0], w.shape[0], x.shape[1], _ONE32, x, x.shape[1], w, w.shape[1], _ZERO32, out,
           x.shape[0])
