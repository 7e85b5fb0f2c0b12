"""LLVM intrinsics and IR helpers shared by the compiled float32 kernels (window attention, MATR's token
blocks, ``mopa``'s planar convolutions).

:func:`wide_vectors` is an intrinsic, used inside ``@njit`` functions only.  It changes no result across
instruction sets: the vector width only decides how many lanes run at once, each lane computing its own
value (the kernels' same-bits tests under SSE2, AVX2 and AVX-512 pin this).

The IR builders :func:`vec16`, :func:`splat`, :func:`vload`, :func:`vstore` and :func:`fma16` run at compile
time, inside the ``codegen`` of the kernels' intrinsics, on the explicit 16-lane float32 vectors those kernels
are written in (:mod:`methods._window_attention`, :mod:`methods._window_attention_norm`,
:mod:`methods._matr_kernels`, :mod:`methods.mopa._conv_kernels`, :mod:`methods.mopa._detail_kernels`).  They
emit no arithmetic of their own except the one fused multiply-add that :func:`fma16` declares.  Numba's disk
cache does not see edits to this module: after changing one of them, delete the kernels' cached ``.nbi`` /
``.nbc`` files.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: lanes of the float32 vectors the IR helpers build
VEC16_LANES = 16


@intrinsic
def wide_vectors(typingctx):
    """Lets LLVM vectorise the calling function with 512-bit registers where the CPU has them.

    LLVM's default for AVX-512 CPUs is 256-bit vectors (``prefer-vector-width``); loops over 64 lanes run
    ≈ 1.2× faster on 512-bit ones (the window-attention kernel).  Every lane computes its own value, so
    the vector width changes no result."""
    sig = types.none()

    def codegen(context, builder, signature, args):
        attributes = builder.function.attributes
        # string attributes: llvmlite's ``add`` knows only the enumerated ones
        set.add(attributes, '"prefer-vector-width"="512"')
        set.add(attributes, '"min-legal-vector-width"="512"')
        return context.get_dummy_value()

    return sig, codegen


# --------------------------------------------------------------------------- IR builders (compile time)
def vec16() -> ir.VectorType:
    """The IR type ``<16 x float>``: one 16-lane float32 vector."""
    return ir.VectorType(ir.FloatType(), VEC16_LANES)


def splat(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """The float32 scalar ``x`` in all 16 lanes: inserted into lane 0 of a zero vector, then shuffled with an
    all-zero mask (compiled to a broadcast)."""
    v = builder.insert_element(ir.Constant(vec16(), None), x, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(ir.IntType(32), VEC16_LANES), [0] * VEC16_LANES))


def vload(builder: ir.IRBuilder, p: ir.Value) -> ir.Value:
    """The 16 floats at the ``float*`` ``p`` as one vector (an unaligned load: ``align 4``, a float's alignment)."""
    return builder.load(builder.bitcast(p, vec16().as_pointer()), align=4)


def vstore(builder: ir.IRBuilder, v: ir.Value, p: ir.Value) -> None:
    """The vector ``v`` into the 16 floats at the ``float*`` ``p`` (unaligned: ``align 4``, as :func:`vload`)."""
    builder.store(v, builder.bitcast(p, vec16().as_pointer()), align=4)


def fma16(builder: ir.IRBuilder) -> ir.Function:
    """The ``llvm.fma.v16f32`` intrinsic, declared once in ``builder``'s module: ``builder.call(fma, [a, b, c])``
    is ``a·b + c`` in each lane, rounded once (IEEE fused multiply-add: the FMA instruction, or the C library's
    ``fmaf`` where the CPU has none; the same bits either way)."""
    vec = vec16()
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec, vec, vec]), "llvm.fma.v16f32")
