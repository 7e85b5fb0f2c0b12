"""The detail module's depthwise-separable conv blocks as one compiled pass on planar rows (issue 23, session 11).

A DSCB of ``mopa``'s detail module (§1.3.2) is a depthwise 3×3 conv, a pointwise (1×1) conv and an LReLU;
each of its three paths adds the path's input ``h`` to its last block's output (the skips spanning 1, 2 and 3
blocks).  oneDNN runs the depthwise and the pointwise conv as two passes over the 15-channel map (≈ 1 ms per
block at 256², one thread, session 10).  :func:`dscb` (and :func:`dscb_skip`, with the skip's sum) does the
block in one pass over **planar** maps (:mod:`methods.mopa._conv_kernels`'s conventions; blocks of two 16-lane
vectors with AVX-512, one elsewhere: :func:`methods._numba_intrinsics.block_vectors`): for a 16-lane
vector of output columns of one row, the ``C`` depthwise sums (bias first, then the nine taps in the order
(kernel row, kernel column)) are held in registers, then every output channel's pointwise sum (bias first,
then the input channels in order), then ``y > 0 ? y : slope·y``, then ``+ skip`` (the graph's
``h + path(h)``: one float32 addition).  No intermediate map is written.

Conventions: ``inp`` is (C, rows + 2, ≥ Wv + 2) with the zero padding in it (output pixel (y, x) reads
``inp[c, y + dy, x + dx]``); the kernel writes ``out[o, oy + y, ox + x]`` for the ``rows`` output rows and the
columns ``x < width``, the lanes up to the next multiple of 16 (``Wv``) set to 0 (the next block's right-hand
zero padding); ``skip`` is read at the same indices as ``out``.  Weights are torch's, flattened: depthwise
(C, 1, 3, 3), pointwise (C, C, 1, 1).

Floating point as :mod:`methods.mopa._conv_kernels`: explicit IEEE fused multiply-adds on 16-lane vectors in
the written order, no ``fastmath``: the same bits under SSE2, AVX2 and AVX-512 (tested); float32 round-off
against torch's convolutions (another summation order).  Compiled on first use (imported lazily), cached on
disk; they release the GIL.
"""
from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .._numba_intrinsics import fma16 as _fma16, splat as _splat, vec16 as _vec16, vload as _vload, vstore as _vstore
from .._numba_intrinsics import block_vectors as _block_vectors, wide_vectors as _wide_vectors
from ._conv_kernels import LANES, _Planar, _clear_tail

#: channels of the compiled block (``mopa``'s registered width: 3 × 5)
CHANNELS = 15
#: 16-lane vectors of output columns per block with AVX-512 (one on AVX2 and SSE2:
#: :func:`methods._numba_intrinsics.block_vectors`)
NV = 2


def _make_dscb(ch: int, skip: bool):
    """An intrinsic ``dscb(inp, dw_weight, dw_bias, pw_weight, pw_bias, slope, out[, skip], rows, width, oy, ox)``."""

    def codegen(context, builder, signature, args):
        if skip:
            inp_, dww_, dwb_, pww_, pwb_, slope_, out_, skip_, rows_, width_, oy_, ox_ = args
        else:
            inp_, dww_, dwb_, pww_, pwb_, slope_, out_, rows_, width_, oy_, ox_ = args
        aty = signature.args
        i64 = ir.IntType(64)
        c = lambda v: ir.Constant(i64, v)
        vec = _vec16()
        fma = _fma16(builder)
        src = _Planar(context, builder, aty[0], inp_)
        dst = _Planar(context, builder, aty[6], out_)
        add = _Planar(context, builder, aty[7], skip_) if skip else None
        data = [context.make_array(aty[i])(context, builder, a).data for i, a in ((1, dww_), (2, dwb_), (3, pww_),
                                                                                  (4, pwb_))]
        scalar = lambda d, i: builder.load(builder.gep(data[d], [c(i)]))
        vslope = _splat(builder, slope_)
        zero = ir.Constant(vec, None)
        vecs = builder.sdiv(builder.add(width_, c(LANES - 1)), c(LANES))
        most = _block_vectors(context, ch + 1, NV)  # the ch depthwise sums and the input, per vector
        pairs = builder.sdiv(vecs, c(most))

        def block(y, oyy, x0, nv):
            depth = []
            for ci in range(ch):
                a = [_splat(builder, scalar(1, ci)) for _ in range(nv)]
                for dy in range(3):
                    for dx in range(3):
                        wv = _splat(builder, scalar(0, ci * 9 + dy * 3 + dx))
                        for j in range(nv):
                            v = _vload(builder, src.ptr(c(ci), builder.add(y, c(dy)),
                                                        builder.add(x0, c(dx + LANES * j))))
                            a[j] = builder.call(fma, [v, wv, a[j]])
                depth.append(a)
            for o in range(ch):
                b0 = _splat(builder, scalar(3, o))
                a = [b0] * nv
                for ci in range(ch):
                    wv = _splat(builder, scalar(2, o * ch + ci))
                    for j in range(nv):
                        a[j] = builder.call(fma, [depth[ci][j], wv, a[j]])
                for j in range(nv):
                    col = builder.add(builder.add(x0, ox_), c(LANES * j))
                    r = builder.select(builder.fcmp_ordered(">", a[j], zero), a[j], builder.fmul(a[j], vslope))
                    if skip:
                        r = builder.fadd(r, _vload(builder, add.ptr(c(o), oyy, col)))
                    _vstore(builder, r, dst.ptr(c(o), oyy, col))

        with cgutils.for_range(builder, rows_) as row:
            y = row.index
            oyy = builder.add(y, oy_)
            with cgutils.for_range(builder, pairs) as blk:
                block(y, oyy, builder.mul(blk.index, c(LANES * most)), most)
            rest = builder.sub(vecs, builder.mul(pairs, c(most)))
            for nv in range(1, most):
                with builder.if_then(builder.icmp_signed("==", rest, c(nv))):
                    block(y, oyy, builder.mul(pairs, c(LANES * most)), nv)
        return context.get_dummy_value()

    if skip:
        @intrinsic
        def block(typingctx, inp, dww, dwb, pww, pwb, slope, out, skip_map, rows, width, oy, ox):
            return types.void(inp, dww, dwb, pww, pwb, slope, out, skip_map, rows, width, oy, ox), codegen
    else:
        @intrinsic
        def block(typingctx, inp, dww, dwb, pww, pwb, slope, out, rows, width, oy, ox):
            return types.void(inp, dww, dwb, pww, pwb, slope, out, rows, width, oy, ox), codegen
    return block


_dscb = _make_dscb(CHANNELS, False)
_dscb_skip = _make_dscb(CHANNELS, True)


@njit(cache=True, nogil=True)
def dscb(inp, dw_weight, dw_bias, pw_weight, pw_bias, slope, out, rows, width, oy, ox):  # pragma: no cover
    """``leaky_relu(pointwise(depthwise(inp)), slope)`` → ``out`` (the module docstring)."""
    _wide_vectors()
    _dscb(inp, dw_weight, dw_bias, pw_weight, pw_bias, slope, out, rows, width, oy, ox)
    _clear_tail(out, CHANNELS, rows, width, oy, ox)


@njit(cache=True, nogil=True)
def dscb_skip(inp, dw_weight, dw_bias, pw_weight, pw_bias, slope, out, skip, rows, width, oy, ox):  # pragma: no cover
    """``leaky_relu(pointwise(depthwise(inp)), slope) + skip`` → ``out`` (the module docstring)."""
    _wide_vectors()
    _dscb_skip(inp, dw_weight, dw_bias, pw_weight, pw_bias, slope, out, skip, rows, width, oy, ox)
    _clear_tail(out, CHANNELS, rows, width, oy, ox)
