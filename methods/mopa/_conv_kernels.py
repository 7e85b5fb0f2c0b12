"""Direct convolutions of ``mopa``'s narrow layers on planar rows (issue 23, session 10; float32, inference).

oneDNN vectorises a convolution over blocks of 16 output channels, so ``mopa``'s layers with 1–6 output
channels waste most of every vector (the feature paths' 2→5 and 5→5 3×3 convolutions at 30–47 GFLOP/s,
the multiscale 15→3 and 15→6 ones at 17–67, the 5→1 and 2→1 ones at 9–10; 256², one thread, against the
3×3 64→64 yardstick's ≈ 190).  Here a layer runs on **planar** maps (C × rows × columns, zero-padded) vectorised
along the columns instead: for a block of up to 64 output columns of one row (four 16-lane vectors with AVX-512;
one on AVX2, whose 16 registers hold half as many lanes: :func:`methods._numba_intrinsics.block_vectors`, the
same bits; three for the single-output layers) the ``Cout`` output channels are accumulated in registers
(``Cout`` × the block's vectors), every input vector is loaded
once per tap and feeds ``Cout`` fused multiply-adds, every weight is broadcast from memory; bias first,
then the taps in the order (input channel, kernel row, kernel column), then the activation
``y > 0 ? y : slope·y`` (``slope = 1``: none) in the epilogue.  A row's tail is one block of fewer vectors
than the block (none with blocks of one).

Conventions: ``inp`` is (Cin, rows + k − 1, ≥ Wv + k − 1) with the layer's zero padding already in it
(output pixel (y, x) reads ``inp[ci, y + dy, x + dx]``); the kernel writes ``out[co, oy + y, ox + x]`` for
the ``rows`` output rows and the columns ``x < width``, and the lanes up to the next multiple of 16
(``Wv``) are written too, then set back to 0 (they are the next layer's right-hand zero padding).
``weight`` is torch's (Cout, Cin, k, k) flattened, ``bias`` (Cout,).

Floating point: every multiply-add is an explicit IEEE fused multiply-add (``llvm.fma`` on 16-lane
vectors; in software where the CPU has none), in the written order; no ``fastmath``: the same bits under
SSE2, AVX2 and AVX-512 (tested).  Against ``torch.nn.functional.conv2d`` float32 round-off (another
summation order).  Written as explicit 16-lane vectors in LLVM IR (as :mod:`methods._window_attention`'s
passes): a block's accumulators are values for the register allocator, whatever the target's vector width.
The taps run as a loop over (input channel, kernel row), a kernel row's columns written out: fully written
out, the 15→6 7×7 block took 166 s of CPU to compile and ran slower (4.1 against 3.0 ms at 256²); the
summation order, and so every bit, is the same.  One compiled function per layer
shape (:data:`KERNELS`), at module level, compiled on first use and cached on disk; they release the GIL.
"""
from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .._numba_intrinsics import fma16 as _fma16, splat as _splat, vec16 as _vec16, vload as _vload, vstore as _vstore
from .._numba_intrinsics import block_vectors as _block_vectors, wide_vectors as _wide_vectors

#: lanes of one vector
LANES = 16
#: vectors per block of output columns with AVX-512 (fewer where the target has fewer or narrower registers:
#: :func:`methods._numba_intrinsics.block_vectors`)
BLOCK = 4


class _Planar:
    """Pointer arithmetic on a C-contiguous 3-D float32 numba array (element strides)."""

    def __init__(self, context, builder, arrty, value):
        ary = context.make_array(arrty)(context, builder, value)
        s0, s1, _ = cgutils.unpack_tuple(builder, ary.strides, 3)
        four = ir.Constant(ir.IntType(64), 4)
        self.builder, self.data = builder, ary.data
        self.s0, self.s1 = builder.sdiv(s0, four), builder.sdiv(s1, four)

    def ptr(self, c, y, x):
        b = self.builder
        return b.gep(self.data, [b.add(b.add(b.mul(c, self.s0), b.mul(y, self.s1)), x)])


def _make_conv(cin: int, cout: int, k: int, group: int | None = None, residual: bool = False):
    """An intrinsic ``conv(inp, weight, bias, slope, out, rows, width, oy, ox)`` for one layer shape.

    ``group``: output channels accumulated together (all ``cout`` by default); a wider layer runs its outputs
    in groups of ``group``, each group a pass over the taps for the same block of columns (the accumulators of
    one group stay in registers), every output's sum in the same order.  ``residual``: the intrinsic takes an
    extra planar ``res`` after ``out`` and adds ``res[co, oy + y, ox + x]`` to the sum before the activation
    (the graph's ``conv(x) + res``; ``res`` may be ``out`` itself)."""
    group = cout if group is None else group

    def codegen(context, builder, signature, args):
        if residual:
            inp_, w_, b_, slope_, out_, res_, rows_, width_, oy_, ox_ = args
        else:
            inp_, w_, b_, slope_, out_, rows_, width_, oy_, ox_ = args
        aty = signature.args
        i64 = ir.IntType(64)
        c = lambda v: ir.Constant(i64, v)
        vec = _vec16()
        fma = _fma16(builder)
        src = _Planar(context, builder, aty[0], inp_)
        dst = _Planar(context, builder, aty[4], out_)
        add = _Planar(context, builder, aty[5], res_) if residual else None
        wdata = context.make_array(aty[1])(context, builder, w_).data
        bdata = context.make_array(aty[2])(context, builder, b_).data
        bias = [builder.load(builder.gep(bdata, [c(o)])) for o in range(cout)]
        vslope = _splat(builder, slope_)
        zero = ir.Constant(vec, None)

        def block(y, x0, nv):
            # the accumulators live in a stack slot that LLVM promotes to registers; the taps run as a loop
            # over (input channel, kernel row) with the kernel row's k columns unrolled (a fully unrolled
            # 15→6 7×7 block took minutes to compile), in the same order as written out
            oyy = builder.add(y, oy_)
            for g0 in range(0, cout, group):
                outs = range(g0, min(cout, g0 + group))
                slots = cgutils.alloca_once(builder, vec, size=len(outs) * nv)
                slot = lambda o, j: builder.gep(slots, [c((o - g0) * nv + j)])
                for o in outs:
                    for j in range(nv):
                        builder.store(_splat(builder, bias[o]), slot(o, j))
                with cgutils.for_range(builder, c(cin * k)) as tap:
                    t = tap.index
                    ci, yy = builder.sdiv(t, c(k)), builder.add(y, builder.srem(t, c(k)))
                    first = builder.mul(t, c(k))  # weight index of (output 0, ci, kernel row, column 0)
                    acc = {o: [builder.load(slot(o, j)) for j in range(nv)] for o in outs}
                    for dx in range(k):
                        xx = builder.add(x0, c(dx))
                        v = [_vload(builder, src.ptr(ci, yy, builder.add(xx, c(LANES * j)))) for j in range(nv)]
                        for o in outs:
                            wv = builder.load(builder.gep(wdata, [builder.add(first, c(o * cin * k * k + dx))]))
                            ws = _splat(builder, wv)
                            for j in range(nv):
                                acc[o][j] = builder.call(fma, [v[j], ws, acc[o][j]])
                    for o in outs:
                        for j in range(nv):
                            builder.store(acc[o][j], slot(o, j))
                for o in outs:
                    for j in range(nv):
                        a = builder.load(slot(o, j))
                        col = builder.add(builder.add(x0, ox_), c(LANES * j))
                        if residual:
                            a = builder.fadd(a, _vload(builder, add.ptr(c(o), oyy, col)))
                        a = builder.select(builder.fcmp_ordered(">", a, zero), a, builder.fmul(a, vslope))
                        _vstore(builder, a, dst.ptr(c(o), oyy, col))

        most = _block_vectors(context, group + 1, BLOCK)  # a group's accumulators and the input, per vector
        span = c(LANES * most)
        vecs = builder.sdiv(builder.add(width_, c(LANES - 1)), c(LANES))
        full = builder.sdiv(vecs, c(most))
        tail = builder.sub(vecs, builder.mul(full, c(most)))
        with cgutils.for_range(builder, rows_) as row:
            y = row.index
            with cgutils.for_range(builder, full) as blk:
                block(y, builder.mul(blk.index, span), most)
            x0 = builder.mul(full, span)
            for nv in range(1, most):
                with builder.if_then(builder.icmp_signed("==", tail, c(nv))):
                    block(y, x0, nv)
        return context.get_dummy_value()

    if residual:
        @intrinsic
        def conv(typingctx, inp, weight, bias, slope, out, res, rows, width, oy, ox):
            return types.void(inp, weight, bias, slope, out, res, rows, width, oy, ox), codegen
    else:
        @intrinsic
        def conv(typingctx, inp, weight, bias, slope, out, rows, width, oy, ox):
            return types.void(inp, weight, bias, slope, out, rows, width, oy, ox), codegen

    return conv


@njit(nogil=True, inline="always")
def _clear_tail(out, cout, rows, width, oy, ox):  # pragma: no cover - compiled
    """Zero the lanes written past ``width`` (up to the next multiple of 16) in every output row."""
    end = ox + ((width + LANES - 1) // LANES) * LANES
    for o in range(cout):
        for y in range(rows):
            row = out[o, oy + y]
            for x in range(ox + width, end):
                row[x] = 0.0


_conv_1_5_3 = _make_conv(1, 5, 3)
_conv_2_5_3 = _make_conv(2, 5, 3)
_conv_5_5_3 = _make_conv(5, 5, 3)


@njit(cache=True, nogil=True)
def conv_1_5_3(inp, weight, bias, slope, out, rows, width, oy, ox):  # pragma: no cover - compiled
    """1→5 3×3 conv + bias + LReLU(``slope``) on planar (C, rows, cols) float32 maps (feature path, no mask)."""
    _wide_vectors()
    _conv_1_5_3(inp, weight, bias, slope, out, rows, width, oy, ox)
    _clear_tail(out, 5, rows, width, oy, ox)


@njit(cache=True, nogil=True)
def conv_2_5_3(inp, weight, bias, slope, out, rows, width, oy, ox):  # pragma: no cover - compiled
    """2→5 3×3 conv + bias + LReLU(``slope``) on planar (C, rows, cols) float32 maps (feature path, first layer)."""
    _wide_vectors()
    _conv_2_5_3(inp, weight, bias, slope, out, rows, width, oy, ox)
    _clear_tail(out, 5, rows, width, oy, ox)


@njit(cache=True, nogil=True)
def conv_5_5_3(inp, weight, bias, slope, out, rows, width, oy, ox):  # pragma: no cover - compiled
    """5→5 3×3 conv + bias + LReLU(``slope``) on planar (C, rows, cols) float32 maps (feature path, later layers)."""
    _wide_vectors()
    _conv_5_5_3(inp, weight, bias, slope, out, rows, width, oy, ox)
    _clear_tail(out, 5, rows, width, oy, ox)


_conv_15_5_3 = _make_conv(15, 5, 3)
_conv_5_1_3 = _make_conv(5, 1, 3)
_conv_2_1_7 = _make_conv(2, 1, 7)


@njit(cache=True, nogil=True)
def conv_15_5_3(inp, weight, bias, slope, out, rows, width, oy, ox):  # pragma: no cover - compiled
    """15→5 3×3 conv + bias + LReLU(``slope``) on planar (C, rows, cols) float32 maps (head, first layer)."""
    _wide_vectors()
    _conv_15_5_3(inp, weight, bias, slope, out, rows, width, oy, ox)
    _clear_tail(out, 5, rows, width, oy, ox)


@njit(cache=True, nogil=True)
def conv_5_1_3(inp, weight, bias, slope, out, rows, width, oy, ox):  # pragma: no cover - compiled
    """5→1 3×3 conv + bias + LReLU(``slope``) on planar (C, rows, cols) float32 maps (head, last conv)."""
    _wide_vectors()
    _conv_5_1_3(inp, weight, bias, slope, out, rows, width, oy, ox)
    _clear_tail(out, 1, rows, width, oy, ox)


@njit(cache=True, nogil=True)
def conv_2_1_7(inp, weight, bias, slope, out, rows, width, oy, ox):  # pragma: no cover - compiled
    """2→1 7×7 conv + bias + LReLU(``slope``) on planar (C, rows, cols) float32 maps (spatial attention)."""
    _wide_vectors()
    _conv_2_1_7(inp, weight, bias, slope, out, rows, width, oy, ox)
    _clear_tail(out, 1, rows, width, oy, ox)


_conv_15_3_1 = _make_conv(15, 3, 1)


@njit(cache=True, nogil=True)
def conv_15_3_1(inp, weight, bias, slope, out, rows, width, oy, ox):  # pragma: no cover - compiled
    """15→3 1×1 conv + bias + LReLU(``slope``) on planar (C, rows, cols) float32 maps (CEM multiscale 1×1)."""
    _wide_vectors()
    _conv_15_3_1(inp, weight, bias, slope, out, rows, width, oy, ox)
    _clear_tail(out, 3, rows, width, oy, ox)


_conv_15_3_3 = _make_conv(15, 3, 3)


@njit(cache=True, nogil=True)
def conv_15_3_3(inp, weight, bias, slope, out, rows, width, oy, ox):  # pragma: no cover - compiled
    """15→3 3×3 conv + bias + LReLU(``slope``) on planar (C, rows, cols) float32 maps (CEM multiscale 3×3)."""
    _wide_vectors()
    _conv_15_3_3(inp, weight, bias, slope, out, rows, width, oy, ox)
    _clear_tail(out, 3, rows, width, oy, ox)


_conv_15_3_5 = _make_conv(15, 3, 5)


@njit(cache=True, nogil=True)
def conv_15_3_5(inp, weight, bias, slope, out, rows, width, oy, ox):  # pragma: no cover - compiled
    """15→3 5×5 conv + bias + LReLU(``slope``) on planar (C, rows, cols) float32 maps (CEM multiscale 5×5)."""
    _wide_vectors()
    _conv_15_3_5(inp, weight, bias, slope, out, rows, width, oy, ox)
    _clear_tail(out, 3, rows, width, oy, ox)


_conv_15_6_7 = _make_conv(15, 6, 7)


@njit(cache=True, nogil=True)
def conv_15_6_7(inp, weight, bias, slope, out, rows, width, oy, ox):  # pragma: no cover - compiled
    """15→6 7×7 conv + bias + LReLU(``slope``) on planar (C, rows, cols) float32 maps (CEM multiscale 7×7)."""
    _wide_vectors()
    _conv_15_6_7(inp, weight, bias, slope, out, rows, width, oy, ox)
    _clear_tail(out, 6, rows, width, oy, ox)


_conv_15_15_3 = _make_conv(15, 15, 3, 5)  # three groups of 5 outputs (20 accumulators: 1.7 against oneDNN's 1.9 ms)


@njit(cache=True, nogil=True)
def conv_15_15_3(inp, weight, bias, slope, out, rows, width, oy, ox):  # pragma: no cover - compiled
    """15→15 3×3 conv + bias + LReLU(``slope``) on planar (C, rows, cols) float32 maps (CEM residual, DPM head)."""
    _wide_vectors()
    _conv_15_15_3(inp, weight, bias, slope, out, rows, width, oy, ox)
    _clear_tail(out, 15, rows, width, oy, ox)


_conv_30_15_3 = _make_conv(30, 15, 3, 5)


@njit(cache=True, nogil=True)
def conv_30_15_3(inp, weight, bias, slope, out, rows, width, oy, ox):  # pragma: no cover - compiled
    """30→15 3×3 conv + bias + LReLU(``slope``) on planar (C, rows, cols) float32 maps (attention combine)."""
    _wide_vectors()
    _conv_30_15_3(inp, weight, bias, slope, out, rows, width, oy, ox)
    _clear_tail(out, 15, rows, width, oy, ox)


_conv_45_15_3_res = _make_conv(45, 15, 3, 5, residual=True)


@njit(cache=True, nogil=True)
def conv_45_15_3_res(inp, weight, bias, slope, out, res, rows, width, oy, ox):  # pragma: no cover - compiled
    """The 45→15 3×3 conv with ``res`` added before the activation (``res`` may be ``out``)."""
    _wide_vectors()
    _conv_45_15_3_res(inp, weight, bias, slope, out, res, rows, width, oy, ox)
    _clear_tail(out, 15, rows, width, oy, ox)


_conv_15_15_3_res = _make_conv(15, 15, 3, 5, residual=True)


@njit(cache=True, nogil=True)
def conv_15_15_3_res(inp, weight, bias, slope, out, res, rows, width, oy, ox):  # pragma: no cover - compiled
    """The 15→15 3×3 conv with ``res`` added before the activation (the contrast module's residual flow)."""
    _wide_vectors()
    _conv_15_15_3_res(inp, weight, bias, slope, out, res, rows, width, oy, ox)
    _clear_tail(out, 15, rows, width, oy, ox)


#: (Cin, Cout, k) → the compiled layer
KERNELS = {(1, 5, 3): conv_1_5_3, (2, 5, 3): conv_2_5_3, (5, 5, 3): conv_5_5_3, (15, 5, 3): conv_15_5_3,
           (5, 1, 3): conv_5_1_3, (2, 1, 7): conv_2_1_7, (15, 3, 1): conv_15_3_1, (15, 3, 3): conv_15_3_3,
           (15, 3, 5): conv_15_3_5, (15, 6, 7): conv_15_6_7, (15, 15, 3): conv_15_15_3,
           (30, 15, 3): conv_30_15_3}
#: (Cin, Cout, k) → the compiled layer that adds a residual map (an extra ``res`` argument after ``out``)
RESIDUAL_KERNELS = {(45, 15, 3): conv_45_15_3_res, (15, 15, 3): conv_15_15_3_res}


@njit(cache=True, nogil=True)
def to_planar(src, dst, oy, ox):  # pragma: no cover - compiled
    """``dst[c, oy + y, ox + x] = src[y, x, c]`` for an (H, W, C) float32 map ``src`` (a channels-last view)."""
    h, w, ch = src.shape
    for y in range(h):
        row = src[y]
        for c in range(ch):
            out = dst[c, oy + y]
            for x in range(w):
                out[ox + x] = row[x, c]


@njit(cache=True, nogil=True)
def to_channels_last(src, oy, ox, dst, c0):  # pragma: no cover - compiled
    """``dst[y, x, c0 + c] = src[c, oy + y, ox + x]`` for ``dst`` (H, W, ≥ c0 + C) float32 (a channels-last view)."""
    h, w, _ = dst.shape
    ch = src.shape[0]
    for y in range(h):
        row = dst[y]
        for c in range(ch):
            inp = src[c, oy + y]
            for x in range(w):
                row[x, c0 + c] = inp[ox + x]


@njit(cache=True, nogil=True)
def to_planar_scaled(src, scale, dst, oy, ox):  # pragma: no cover - compiled
    """``dst[c, oy + y, ox + x] = src[y, x, c] · scale[c]`` (one float32 product, as ``x * w`` in torch)."""
    h, w, ch = src.shape
    for y in range(h):
        row = src[y]
        for c in range(ch):
            out = dst[c, oy + y]
            g = scale[c]
            for x in range(w):
                out[ox + x] = row[x, c] * g
