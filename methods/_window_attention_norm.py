"""SwinFusion's LayerNorms of the inference chunks as one compiled pass per chunk (60 channels, float32).

Each Swin block of the inference path (:mod:`methods._swin_blocks`) runs, on a chunk of whole windows,
``t = gather(map)``, ``xn = norm1(t)`` … ``t += proj_bias + proj(att)``, then ``xn2 = norm2(t)`` …
``t += fc2_bias + fc2(h)``.  ``torch.nn.LayerNorm`` on 4,096 × 60 tokens costs ≈ 170 µs on one thread (its
per-row moments run 48 channels in vectors and the last 12 one by one, with a division each), plus a
pass for the bias and one for the gather.  :func:`norm_rows` does, per token and in one pass:

    xn[t]    = (x − μ)·r·γ + β        with x = src[index[base + t]] (or src[base + t]),
    resid[t] = x + bias               (``resid`` may be ``src`` itself: the LN2 case, in place),

μ = Σx / 60, σ² = Σ(x − μ)² / 60, r = 1 / √(σ² + ε) (two passes over the row, as numerically safe as
torch's moments; against a float64 LayerNorm the same error, ≈ 1e-6 on unit-scale tokens).  The bias
row is the one that the following projection (``proj`` / ``fc2``) would add to ``t`` before its GEMM
accumulates into it, so ``resid`` holds the same bits as ``t.add_(bias)`` did.

The sixty channels are four 16-lane vectors written in LLVM IR (numba does not vectorise these short
reductions by itself: a plain loop compiled to scalar code and was slower than torch): channels 0–15,
16–31, 32–47 and 44–59 shifted down by four lanes with zeros after channel 59, so no load leaves the row.
Sums go in a fixed order — the four vectors added pairwise, then a halving tree of shuffles — and every
operation is an IEEE float32 operation of one lane (``(x − μ)·r`` then a fused multiply-add with γ, β), so
the bits do not depend on the SIMD width or on FMA hardware (the tests compile it for SSE2, AVX2 and
AVX-512).  Measured (one thread, loaded machine): 57 µs against 235 µs for ``LayerNorm`` + ``add_`` in place on
4,096 tokens; with the gather of a block's first chunk 240 µs against 360–410 µs (random rows).

Compiled on first use (never at import) and cached on disk; the kernel lives at module level so a new
process finds it in numba's cache.  This module imports numba: :mod:`methods._swin_fused` imports it only
when a chunk first uses it.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from ._numba_intrinsics import fma16 as _fma16, splat as _splat, vec16 as _vec16

#: channels per token the kernel is written for (SwinFusion's embedding)
CHANNELS = 60
_LANES = 16
#: first channel of each 16-lane vector of a row; the last one overlaps the third by four lanes
_OFFSETS = (0, 16, 32, CHANNELS - _LANES)
#: width of the padded ``xn`` rows (:func:`norm_rows` with a bias column): 60 channels, then 1, 0, 0, 0
PADDED = 64
_F = np.float32
_ONE = _F(1.0)
_C_F = _F(CHANNELS)


def supported(channels: int) -> bool:
    """Whether :func:`norm_rows` handles tokens of ``channels`` channels."""
    return channels == CHANNELS


# --------------------------------------------------------------------------- LLVM IR helpers (compile time)
def _row_pointers(context, builder, arrty, arr, start):
    """Pointers to the four 16-lane vectors of the 60 floats at element ``start`` of a C-contiguous array."""
    ary = context.make_array(arrty)(context, builder, arr)
    base = builder.gep(ary.data, [start])
    return [builder.bitcast(builder.gep(base, [ir.Constant(start.type, off)]), _vec16().as_pointer())
            for off in _OFFSETS]


def _row_start(builder, row):
    return builder.mul(row, ir.Constant(row.type, CHANNELS))


def _shift_tail(builder, v):
    """Channels 44–59 → lanes 0–11 hold channels 48–59, lanes 12–15 zero."""
    idx = ir.Constant(ir.VectorType(ir.IntType(32), _LANES), list(range(4, 16)) + [16] * 4)
    return builder.shuffle_vector(v, ir.Constant(_vec16(), None), idx)


def _sum_of(builder, vs):
    """(v0 + v1) + (v2 + v3), then a halving tree of the 16 lanes: one float32, in this order."""
    v = builder.fadd(builder.fadd(vs[0], vs[1]), builder.fadd(vs[2], vs[3]))
    for width in (8, 4, 2, 1):
        lo = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(ir.IntType(32), width), list(range(width))))
        hi = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(ir.IntType(32), width),
                                                      list(range(width, 2 * width))))
        v = builder.fadd(lo, hi)
    return builder.extract_element(v, ir.Constant(ir.IntType(32), 0))


# --------------------------------------------------------------------------- intrinsics (used inside @njit only)
@intrinsic
def _row_sum(typingctx, arr, row):
    """Σ of the 60 channels of row ``row`` of a C-contiguous (n, 60) float32 array (fixed order)."""
    sig = types.float32(arr, types.int64)

    def codegen(context, builder, signature, args):
        ps = _row_pointers(context, builder, signature.args[0], args[0], _row_start(builder, args[1]))
        vs = [builder.load(p, align=4) for p in ps]
        vs[3] = _shift_tail(builder, vs[3])
        return _sum_of(builder, vs)

    return sig, codegen


@intrinsic
def _row_sq_dev(typingctx, arr, row, mu):
    """Σ (x − μ)² over the 60 channels of row ``row`` (fixed order)."""
    sig = types.float32(arr, types.int64, types.float32)

    def codegen(context, builder, signature, args):
        ps = _row_pointers(context, builder, signature.args[0], args[0], _row_start(builder, args[1]))
        m = _splat(builder, args[2])
        d = [builder.fsub(builder.load(p, align=4), m) for p in ps]
        d[3] = _shift_tail(builder, d[3])
        return _sum_of(builder, [builder.fmul(x, x) for x in d])

    return sig, codegen


def _padded_row_pointers(context, builder, arrty, arr, t):
    """Pointers to the four 16-lane vectors of row ``t`` of a C-contiguous (T, 64) array (offsets 0, 16, 32, 48)."""
    ary = context.make_array(arrty)(context, builder, arr)
    base = builder.gep(ary.data, [builder.mul(t, ir.Constant(t.type, PADDED))])
    return [builder.bitcast(builder.gep(base, [ir.Constant(t.type, off)]), _vec16().as_pointer())
            for off in (0, 16, 32, 48)]


def _norm_and_add(context, builder, signature, args, with_resid: bool, padded: bool = False):
    """``xn[t] = fma((src[s] − μ)·r, γ, β)`` and (``with_resid``) ``resid[t] = src[s] + bias`` on the 60
    channels: every load before the first store, so ``xn`` and ``resid`` may be the row read (in place).
    ``padded``: ``xn`` rows are 64 wide and get 1, 0, 0, 0 after the 60 channels (a bias column for the next
    product)."""
    src_, s_, resid_, bias_, xn_, t_, mu_, rstd_, g_, b_ = args
    aty = signature.args
    zero = ir.Constant(ir.IntType(64), 0)
    ps = _row_pointers(context, builder, aty[0], src_, _row_start(builder, s_))
    pg = _row_pointers(context, builder, aty[8], g_, zero)
    pb = _row_pointers(context, builder, aty[9], b_, zero)
    vec = _vec16()
    fma = _fma16(builder)
    m, r = _splat(builder, mu_), _splat(builder, rstd_)
    xs = [builder.load(p, align=4) for p in ps]
    normed = [builder.call(fma, [builder.fmul(builder.fsub(x, m), r), builder.load(g, align=4), builder.load(b, align=4)])
              for x, g, b in zip(xs, pg, pb)]
    if padded:
        ones = ir.Constant(vec, [1.0] + [0.0] * (_LANES - 1))
        idx = ir.Constant(ir.VectorType(ir.IntType(32), _LANES), list(range(4, 16)) + [16, 17, 18, 19])
        normed[3] = builder.shuffle_vector(normed[3], ones, idx)           # channels 48–59, then 1, 0, 0, 0
        stores = list(zip(normed, _padded_row_pointers(context, builder, aty[4], xn_, t_)))
    else:
        stores = list(zip(normed, _row_pointers(context, builder, aty[4], xn_, _row_start(builder, t_))))
    if with_resid:
        pc = _row_pointers(context, builder, aty[3], bias_, zero)
        stores += [(builder.fadd(x, builder.load(c, align=4)), p)
                   for x, c, p in zip(xs, pc, _row_pointers(context, builder, aty[2], resid_, _row_start(builder, t_)))]
    for value, p in stores:
        builder.store(value, p, align=4)
    return context.get_dummy_value()


@intrinsic
def _norm_add_row(typingctx, src, s, resid, bias, xn, t, mu, rstd, gamma, beta):
    """``xn[t]`` = the normed row ``src[s]``, ``resid[t] = src[s] + bias`` (see :func:`_norm_and_add`)."""
    sig = types.void(src, types.int64, resid, bias, xn, types.int64, types.float32, types.float32, gamma, beta)
    return sig, lambda context, builder, signature, args: _norm_and_add(context, builder, signature, args, True)


@intrinsic
def _norm_add_row_padded(typingctx, src, s, resid, bias, xn, t, mu, rstd, gamma, beta):
    """:func:`_norm_add_row` with 64-wide ``xn`` rows ending in 1, 0, 0, 0 (see :func:`_norm_and_add`)."""
    sig = types.void(src, types.int64, resid, bias, xn, types.int64, types.float32, types.float32, gamma, beta)
    return sig, lambda context, builder, signature, args: _norm_and_add(context, builder, signature, args, True, True)


@intrinsic
def _norm_row(typingctx, src, s, resid, bias, xn, t, mu, rstd, gamma, beta):
    """``xn[t]`` = the normed row ``src[s]`` only (``resid``, ``bias`` unused)."""
    sig = types.void(src, types.int64, resid, bias, xn, types.int64, types.float32, types.float32, gamma, beta)
    return sig, lambda context, builder, signature, args: _norm_and_add(context, builder, signature, args, False)


# --------------------------------------------------------------------------- kernel
@njit(cache=True, nogil=True, error_model="numpy", boundscheck=False)
def norm_rows_kernel(src, index, base, resid, bias, xn, gamma, beta, eps):  # pragma: no cover - compiled
    """Per token ``t`` of ``xn``: row ``s = index[base + t]`` (``base + t`` when ``index`` is empty) of ``src``;
    ``xn[t]`` = its LayerNorm and ``resid[t]`` = row + ``bias`` (unless ``resid`` is empty); each row is loaded
    whole before either is written, so both may be the rows read (in place)."""
    gathered = index.shape[0] > 0
    has_resid = resid.shape[0] > 0
    padded = has_resid and xn.shape[1] == PADDED
    for t in range(xn.shape[0]):
        s = index[base + t] if gathered else base + t
        mu = _row_sum(src, s) / _C_F
        var = _row_sq_dev(src, s, mu) / _C_F
        rstd = _ONE / np.sqrt(var + eps)
        if padded:
            _norm_add_row_padded(src, s, resid, bias, xn, t, mu, rstd, gamma, beta)
        elif has_resid:
            _norm_add_row(src, s, resid, bias, xn, t, mu, rstd, gamma, beta)
        else:
            _norm_row(src, s, resid, bias, xn, t, mu, rstd, gamma, beta)


_NO_INDEX = np.empty(0, np.int64)


_NO_ROWS = np.empty((0, CHANNELS), np.float32)


def norm_rows(src: np.ndarray, index: np.ndarray | None, base: int, resid: np.ndarray | None, bias: np.ndarray | None,
              xn: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm of gathered rows into ``xn`` and the rows plus ``bias`` into ``resid``; returns ``xn``.

    ``src``: C-contiguous float32 (n, 60) token map; rows ``index[base:base + T]`` (int64; ``None``: rows
    ``base … base + T − 1``) for ``xn``, ``resid``: C-contiguous float32 (T, 60) (either may be the same
    memory as those rows of ``src``, in place; ``resid=None``: only the norm); ``bias``, ``gamma``, ``beta``:
    float32 (60,); ``eps`` as in ``torch.nn.LayerNorm``.  With ``resid`` given, ``xn`` may instead be (T, 64):
    each row then ends in 1, 0, 0, 0, so that a product with ``[W | b | 0 0 0]`` adds the bias ``b`` in the GEMM.
    """
    if resid is None:
        resid, bias = _NO_ROWS, gamma
        if xn.shape[-1] != CHANNELS:
            raise ValueError("norm_rows: 64-wide xn rows need resid")
    elif bias is None:
        raise ValueError("norm_rows: resid needs bias (the residual rows are the source rows plus bias)")
    elif resid.shape != xn.shape[:-1] + (CHANNELS,) or xn.shape[-1] not in (CHANNELS, PADDED):
        raise ValueError("norm_rows: resid must be (T, 60) and xn (T, 60) or (T, 64)")
    arrays = (src, resid, xn, bias, gamma, beta)
    if (src.shape[-1] != CHANNELS or not all(a.dtype == np.float32 and a.flags.c_contiguous for a in arrays)
            or not bias.shape == gamma.shape == beta.shape == (CHANNELS,)):
        raise ValueError("norm_rows: C-contiguous float32 rows of 60 channels expected")
    n = xn.shape[0]
    limit = (index.shape[0] if index is not None else src.shape[0])
    if base < 0 or base + n > limit:
        raise ValueError(f"norm_rows: rows {base}..{base + n} outside 0..{limit}")
    norm_rows_kernel(src, _NO_INDEX if index is None else index, base, resid, bias, xn, gamma, beta, np.float32(eps))
    return xn
