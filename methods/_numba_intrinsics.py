"""LLVM intrinsics shared by the compiled float32 kernels (window attention, MATR's token blocks).

Used inside ``@njit`` functions only.  :func:`wide_vectors` changes no result across instruction sets: the
vector width only decides how many lanes run at once, each lane computing its own value (the kernels'
same-bits tests under SSE2, AVX2 and AVX-512 pin this).
"""
from __future__ import annotations

from numba import types
from numba.extending import intrinsic


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
