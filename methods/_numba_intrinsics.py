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


# --------------------------------------------------------------------------- the target's vector registers
#: CPU names (``NUMBA_CPU_NAME``) whose default features include AVX-512, for a target given by name with no
#: feature string (the same-bits tests' stand-ins); any other named target is read as AVX2 (or SSE2 for the
#: ``x86-64`` baseline).  A wrong guess costs speed only: the block sizes below change no result
_AVX512_CPU_NAMES = ("avx512", "cannonlake", "icelake", "cascadelake", "cooperlake", "tigerlake", "rocketlake",
                     "sapphirerapids", "emeraldrapids", "graniterapids", "diamondrapids", "znver4", "znver5",
                     "knl", "knm", "x86-64-v4")
#: CPU names without AVX (SSE only): 4 float32 lanes per register
_SSE_CPU_NAMES = ("", "generic", "x86-64", "x86-64-v2", "core2", "penryn", "nehalem", "westmere", "bonnell",
                  "silvermont", "goldmont", "goldmont-plus", "tremont", "btver1", "k8", "amdfam10")


def _target_features(codegen) -> tuple[str, str]:
    """``(feature string, CPU name)`` numba compiles for: its codegen's (private) ``_tm_features`` and
    ``_get_host_cpu_name()``, else what numba derives them from (``NUMBA_CPU_FEATURES`` / ``NUMBA_CPU_NAME``, or
    the host's through llvmlite), so that a numba without those attributes still gets the host's blocks."""
    from numba.core import config

    features = getattr(codegen, "_tm_features", None)
    name_of = getattr(codegen, "_get_host_cpu_name", None)
    name = name_of() if callable(name_of) else None
    if features is None or name is None:
        import llvmlite.binding as ll

        if name is None:
            name = config.CPU_NAME or ll.get_host_cpu_name()
        if features is None:
            features = (config.CPU_FEATURES if config.CPU_FEATURES is not None
                        else "" if config.CPU_NAME else ll.get_host_cpu_features().flatten())
    return features or "", (name or "").lower()


def target_vector_registers(context) -> tuple[int, int]:
    """``(float32 lanes per vector register, vector registers)`` of the CPU numba compiles for (at compile time,
    in an intrinsic's ``codegen``): ``(16, 32)`` with AVX-512, ``(8, 16)`` with AVX or AVX2, ``(4, 16)``
    otherwise (x86-64's SSE2 baseline).  Read from numba's target-machine features (the host's, or
    ``NUMBA_CPU_FEATURES``), or from ``NUMBA_CPU_NAME`` where the features are given empty."""
    codegen = context.codegen()
    features, name = _target_features(codegen)
    enabled = {f[1:] for f in features.split(",") if f.startswith("+")}
    if not features:
        if any(n in name for n in _AVX512_CPU_NAMES):
            enabled = {"avx512f", "avx"}
        elif name not in _SSE_CPU_NAMES:
            enabled = {"avx"}
    if "avx512f" in enabled:
        return 16, 32
    return (8, 16) if "avx" in enabled else (4, 16)


def block_vectors(context, live_per_vector: int, most: int) -> int:
    """How many 16-lane vectors of output columns a block should hold for the compile target: ``most`` with
    AVX-512 (32 registers of 16 lanes: the blocks these kernels were tuned with), else the most that keep
    ``live_per_vector`` live 16-lane values per vector of the block (its accumulators and its input), plus one
    broadcast weight, in the target's registers (at least 1).  AVX2 holds a 16-lane value in two of its 16
    registers, so a block of four vectors of five accumulators (40 registers) spilled to the stack in every
    multiply-add: ``mopa`` ran 3.7× slower against the conv yardstick on an AVX2 host than on an AVX-512 one.
    The block changes which columns share a loop iteration, never a sum's order: the same bits either way."""
    lanes, registers = target_vector_registers(context)
    if lanes == VEC16_LANES:
        return most
    per_value = VEC16_LANES // lanes
    return max(1, min(most, (registers - 1) // (per_value * live_per_vector)))
