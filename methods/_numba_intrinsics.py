"""LLVM intrinsics shared by the compiled float32 kernels (window attention, MATR's token blocks).

Both are used inside ``@njit`` functions only.  Neither changes a result across instruction sets: the fused
multiply-add rounds once on every x86-64 CPU (``llvm.fma`` is computed exactly, in software where the CPU
has no FMA unit), and the vector width only decides how many lanes run at once, each lane computing its
own value (the kernels' same-bits tests under SSE2, AVX2 and AVX-512 pin this).
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def fma_f32(typingctx, a, b, c):
    """IEEE fused multiply-add ``a·b + c`` in float32 (one rounding), vectorisable."""
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context, builder, signature, args):
        ft = ir.FloatType()
        fn = builder.module.declare_intrinsic("llvm.fma", [ft], ir.FunctionType(ft, [ft, ft, ft]))
        return builder.call(fn, args)

    return sig, codegen


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
