"""The 16-lane IR builders of :mod:`methods._numba_intrinsics`, and that the compiled kernels use them.

The five kernel modules once each carried a copy of these builders (audit §1.3); the kernels' same-bits
tests (``*_does_not_depend_on_the_instruction_set``) pin what the IR computes, these pin what it is.
"""
from __future__ import annotations

import importlib
import inspect

import numpy as np
import pytest
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from fusionbench.methods import _numba_intrinsics as ni

#: the modules whose intrinsics are written on explicit 16-lane vectors
KERNEL_MODULES = ("fusionbench.methods._matr_kernels", "fusionbench.methods._window_attention",
                  "fusionbench.methods._window_attention_norm", "fusionbench.methods.mopa._conv_kernels",
                  "fusionbench.methods.mopa._detail_kernels")


def _ir_of(body) -> str:
    """The IR text of ``void f(float* p, float* q, float x)`` whose body ``body(builder, p, q, x)`` writes."""
    module = ir.Module("m")
    f32p = ir.FloatType().as_pointer()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [f32p, f32p, ir.FloatType()]), "f")
    builder = ir.IRBuilder(fn.append_basic_block())
    body(builder, *fn.args)
    builder.ret_void()
    return str(module)


def test_builders_emit_the_expected_instructions() -> None:
    def body(builder, p, q, x):
        fma = ni.fma16(builder)
        assert ni.fma16(builder) is fma  # declared once per module
        v = ni.vload(builder, p)
        ni.vstore(builder, builder.call(fma, [v, ni.splat(builder, x), v]), q)

    text = _ir_of(body)
    assert ni.vec16() == ir.VectorType(ir.FloatType(), 16)
    lines = [line.strip() for line in text.splitlines()]
    body_lines = lines[lines.index("{") + 2:lines.index("}")]
    opcodes = [line.split("=", 1)[-1].split()[0] for line in body_lines]
    # no arithmetic but the fused multiply-add; the load and the store at a float's alignment, not the vector's
    assert opcodes == ["bitcast", "load", "insertelement", "shufflevector", "call", "bitcast", "store", "ret"]
    load, insert, shuffle, call, store = (body_lines[i] for i in (1, 2, 3, 4, 6))
    assert "load <16 x float>," in load and load.endswith(", align 4")
    assert store.startswith("store <16 x float>") and store.endswith(", align 4")
    assert insert.count("float 0.0") == 16 and insert.endswith(", i32 0")
    assert shuffle.endswith("<16 x i32> <" + ", ".join(["i32 0"] * 16) + ">")
    assert '@"llvm.fma.v16f32"' in call
    assert [line for line in lines if line.startswith("declare")] == [
        'declare <16 x float> @"llvm.fma.v16f32"(<16 x float> %".1", <16 x float> %".2", <16 x float> %".3")']


@intrinsic
def _fma_rows(typingctx, a, c, s, out):
    """``out[:16] = fma(a[:16], s, c[:16])`` through the shared builders."""
    def codegen(context, builder, signature, args):
        a_, c_, s_, out_ = args
        data = [context.make_array(t)(context, builder, v).data for t, v in
                zip((signature.args[0], signature.args[1], signature.args[3]), (a_, c_, out_))]
        fma = ni.fma16(builder)
        ni.vstore(builder, builder.call(fma, [ni.vload(builder, data[0]), ni.splat(builder, s_),
                                              ni.vload(builder, data[1])]), data[2])
        return context.get_dummy_value()

    return types.void(a, c, s, out), codegen


@njit
def _fma_into(a, c, s, out):  # pragma: no cover - compiled
    _fma_rows(a, c, s, out)


def test_builders_compute_a_fused_multiply_add_per_lane() -> None:
    a = np.float32(1.0) + np.arange(16, dtype=np.float32) * np.float32(2.0 ** -23)  # 1 + k ulp
    c = np.full(16, -1.0, np.float32)
    out = np.empty(16, np.float32)
    _fma_into(a, c, np.float32(1.0) + np.float32(2.0 ** -23), out)
    # (1 + k·2⁻²³)(1 + 2⁻²³) − 1 = (k + 1)·2⁻²³ + k·2⁻⁴⁶, rounded once (a product rounded first would lose k·2⁻⁴⁶)
    exact = (np.arange(16) + 1) * 2.0 ** -23 + np.arange(16) * 2.0 ** -46
    np.testing.assert_array_equal(out, exact.astype(np.float32))
    assert (out != a * (np.float32(1.0) + np.float32(2.0 ** -23)) + c).any()


def test_kernel_modules_use_the_shared_builders() -> None:
    for name in KERNEL_MODULES:
        module = importlib.import_module(name)
        source = inspect.getsource(module)
        assert "llvm.fma.v16f32" not in source and "llvm.fma.v{" not in source, name
        assert "insert_element(ir.Constant(" not in source, name  # no splat of its own
        assert module._splat is ni.splat and module._vec16 is ni.vec16 and module._fma16 is ni.fma16, name


class _Codegen:
    def __init__(self, features: str | None, name: str | None):
        if features is not None:
            self._tm_features = features
        if name is not None:
            self._get_host_cpu_name = lambda: name


class _Context:
    def __init__(self, features: str | None, name: str | None):
        self._codegen = _Codegen(features, name)

    def codegen(self):
        return self._codegen


@pytest.mark.parametrize("features, name, registers", [
    ("+64bit,+avx,+avx2,+fma,+avx512f,+avx512bw", "skylake-avx512", (16, 32)),
    ("+64bit,+avx,+avx2,+fma,-avx512f,-avx512bw", "znver3", (8, 16)),
    ("+64bit,+sse2,-avx,-avx2", "x86-64", (4, 16)),
    ("", "haswell", (8, 16)),            # a same-bits stand-in: NUMBA_CPU_NAME with empty NUMBA_CPU_FEATURES
    ("", "skylake-avx512", (16, 32)),
    ("", "icelake-server", (16, 32)),
    ("", "x86-64", (4, 16)),
    ("", "nehalem", (4, 16)),
])
def test_the_target_registers_follow_numbas_features_or_cpu_name(features, name, registers):
    from fusionbench.methods._numba_intrinsics import block_vectors, target_vector_registers

    context = _Context(features, name)
    assert target_vector_registers(context) == registers
    # five accumulators and the input per vector: four vectors with AVX-512 (as tuned), one elsewhere
    assert block_vectors(context, 6, 4) == (4 if registers == (16, 32) else 1)
    assert block_vectors(context, 2, 4) == (4 if registers == (16, 32) else (3 if registers == (8, 16) else 1))


def test_a_numba_without_the_private_attributes_reads_the_host(monkeypatch):
    """Where numba's codegen lacks ``_tm_features`` / ``_get_host_cpu_name``, the host's features (or
    ``NUMBA_CPU_FEATURES``) decide, as numba itself would: never a silent fall back to the narrowest blocks."""
    import llvmlite.binding as ll
    from numba.core import config

    from fusionbench.methods._numba_intrinsics import target_vector_registers

    monkeypatch.setattr(config, "CPU_NAME", None)
    monkeypatch.setattr(config, "CPU_FEATURES", None)
    host = ll.get_host_cpu_features()
    expected = (16, 32) if host.get("avx512f") else ((8, 16) if host.get("avx") else (4, 16))
    assert target_vector_registers(_Context(None, None)) == expected
    monkeypatch.setattr(config, "CPU_FEATURES", "+avx,+avx2,-avx512f")
    assert target_vector_registers(_Context(None, None)) == (8, 16)
