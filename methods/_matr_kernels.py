"""Compiled steps of MATR's inference path (float32, inference only): the token blocks, the gates, the context sums.

* :func:`token_blocks` — the **three pre-LN token blocks, fused**, in place on the rows of a channels-last
  16-channel map (issue 23, session 10).  MATR's tokens are 16 consecutive values of the NCHW memory (the
  official ``view`` without permute, :mod:`methods.matr`): token ``(c, y, s)`` sits at ``[y, 16s + k, c]``
  of the channels-last rows, so the 256 contiguous floats ``[y, 16s : 16s + 16, :]`` are a **tile of 16
  tokens held feature-major**: feature k of the 16 tokens is one 16-lane vector.  A tile goes through all
  three blocks in registers (no gather, scatter or intermediate blocks in memory, one call per band of rows):
  per block, LayerNorm (column statistics: ``mean = (Σ_k t_k)·(1/16)``, ``var = (Σ_k (t_k − mean)²)·(1/16)``,
  sums in k order, products rounded before the sum, ``u = (t − mean)·(1/√(var + ε))``; LayerNorm γ/β are
  folded into the next projection and a per-row constant by :mod:`methods.matr`), the full q·k·v projection
  (48 rows, as the official network's cost; q and k written to a scratch block and not used: with one token
  per window attention is ``proj(v)``), ``t += proj(v) + c₁``, LayerNorm, and for each hidden unit j
  ``g_j = GELU(fc1_j(u) + c₂_j)`` fed at once into the 16 sums ``t_i += W₂[i, j]·g_j`` (j ascending), then
  ``t += b₂``.  The q·k·v and fc1 sums are two chains of fused multiply-adds each (even k, odd k, ascending,
  from 0; fc1's even chain from c₂_j since session 11, one addition a hidden value fewer), added at the end;
  proj's and fc2's run in k (j) order from ``t_i``.  Two tiles go through the
  blocks together, so that every weight read (a broadcast from memory) feeds both tiles' chains; 4 q·k·v
  rows or 4 hidden units (16 chains), and 8 fc2 rows (16 sums, over the GELU outputs kept in a scratch
  block) at a time.  An odd last tile goes alone through the same operations, so a token's result does
  not depend on how the rows are cut into bands.  Against the former torch GEMMs (MKL's summation order) float32
  round-off only.  Written in LLVM IR on 16-lane vectors (as :mod:`methods.mopa._conv_kernels`): numba's
  loop vectoriser does not keep such tiles in registers (a numba-loop version took 121 ms a pass).
* The GELU is exact-erf, ``(x·½)·(1 + erf(x/√2))``, with ``erf(x) ≈ x·P(x²)/Q(x²)`` for |x| ≤ 4 (beyond,
  erf is ±1 in float32: x is clamped, and the result to [−1, 1]), P and Q of degree 5, fitted in session 8
  by iteratively reweighted least squares of ``x·P − erf·Q`` on 6,000 Chebyshev points of [0, 4]
  (``Q(0) = 1``): 2.4e−8 absolute error in exact arithmetic, ≤ 3.4e−7 evaluated in float32 (tested on a
  dense grid through :func:`erf_into`, which runs the same IR).  Ten fused multiply-adds and one division a
  value.  Since session 11 the GELU is computed as ``t + t·erf(x/√2)``, ``t = x·½`` (one fused multiply-add),
  with erf(x/√2) evaluated from x by the same rational with the scale folded into its coefficients (P_i·2^−i/√2,
  Q_i·2^−i, |x| clamped to 4√2): two vector operations fewer a hidden value (of ≈ 21), the token pass ≈ 5 %
  faster; within 8.9e−7 of the float64 GELU on [−7, 7] (before: 1.2e−6; torch's float32 GELU 1.2e−6).
  :func:`relu_token_blocks` is the same pass on a convolution band's output through its ReLU, written into
  the map's rows (the ReLU and the copy in the same pass); the output may hold other channels beside the 16
  it reads (session 11: the graph's three convolutions of ``x0`` with the same kernels run as one 16→48 one).
* :func:`row_bin_sums` — the per-row sums of the gated convolution's 3×3 context (float64);
  :func:`relu_rows_sums` — a convolution band's ReLU copied into its map and those sums, in one pass;
  :func:`relu_add_rows` — a band's ReLU added into a map, in one pass.
* :func:`bin_means` — the 3×3 context from those sums.
* :func:`gated_kernels` — the context-gated 3×3 kernels of one sample, BatchNorm folded, in float64 (one call
  between two band stages instead of ≈ 20 small torch operations).

Floating point: no ``fastmath``; multiply-adds are explicit IEEE fused multiply-adds (``llvm.fma``: the FMA
instruction, or the C library's ``fmaf`` where the CPU has none), never contractions left to the compiler;
each lane computes its own token.  So the results do not depend on the instruction set (SSE2, AVX2 or
AVX-512; tested in ``tests/methods/test_matr.py``).

Compiled on first use (this module is imported lazily by :mod:`methods._matr_bands`), cached on disk (every
kernel at module level); the kernels release the GIL, so MATR's band workers run them side by side.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._numba_intrinsics import fma16 as _fma16, splat as _splat, vec16 as _vec16, vload as _vload, vstore as _vstore
from ._numba_intrinsics import wide_vectors as _wide_vectors

_F = np.float32
_ZERO, _HALF, _ONE = _F(0.0), _F(0.5), _F(1.0)
_SQRT1_2, _ERF_LIMIT = _F(0.70710678118654752440), _F(4.0)
# erf(x) ≈ x·P(x²)/Q(x²) on |x| ≤ 4: the fit described in the module docstring (coefficients of z⁰ … z⁵)
_P0, _P1, _P2, _P3, _P4, _P5 = (_F(1.1283790615228582), _F(0.19436807457714356), _F(0.0532146241974004),
                                _F(0.003921344950800872), _F(0.00028589511615245483), _F(1.985685319141061e-06))
_Q1, _Q2, _Q3, _Q4, _Q5 = (_F(0.5055861288297117), _F(0.11569470939106068), _F(0.015280695840747316),
                           _F(0.0011958053696079199), _F(3.748051140738809e-05))
#: the same rational for erf(x·(1/√2)) from x: P_i·(1/√2)·2^−i, Q_i·2^−i (rounded to float32 from float64), |x| ≤ 4·√2
_P_SCALED = tuple(_F(float(c) * 0.70710678118654752440 / 2.0 ** i)
                  for i, c in enumerate((_P0, _P1, _P2, _P3, _P4, _P5)))
_Q_SCALED = tuple(_F(float(c) / 2.0 ** i) for i, c in enumerate((_ONE, _Q1, _Q2, _Q3, _Q4, _Q5)))
_ERF_LIMIT_SCALED = _F(4.0 * 1.41421356237309504880)
#: lanes of a vector: the tokens of a tile
LANES = 16
#: token size (features), q·k·v rows and MLP hidden units of MATR's token blocks
DIM, QKV, HIDDEN = 16, 48, 64
#: q·k·v rows and hidden units computed side by side (independent FMA chains)
QKV_ROWS, HIDDEN_UNITS = 4, 4
#: tiles that share each weight read, and fc2 output rows summed side by side (8 × 2 sums in registers)
TILES, OUTPUTS = 2, 8
#: the scratch block the token kernels need: per tile of a step, q·k·v then the GELU outputs
SCRATCH_SHAPE = (TILES, QKV + HIDDEN, LANES)


def _const(value: float) -> ir.Constant:
    """A 16-lane float32 constant."""
    return ir.Constant(_vec16(), [ir.Constant(ir.FloatType(), float(_F(value)))] * LANES)


class _Ops:
    """IR builders of the vector operations the kernels share (fused multiply-add, erf, GELU, LayerNorm)."""

    def __init__(self, builder: ir.IRBuilder) -> None:
        vec = _vec16()
        self.b = builder
        self._fma = _fma16(builder)
        self._sqrt = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec]),
                                                    f"llvm.sqrt.v{LANES}f32")
        self.zero, self.one, self.half = ir.Constant(vec, None), _const(1.0), _const(0.5)
        self.inv_d = _const(1.0 / DIM)

    def fma(self, a: ir.Value, x: ir.Value, c: ir.Value) -> ir.Value:
        """``a·x + c`` rounded once."""
        return self.b.call(self._fma, [a, x, c])

    def clamp(self, x: ir.Value, lo: ir.Value, hi: ir.Value) -> ir.Value:
        """``x if x < hi else hi``, then ``x if x > lo else lo`` (ordered comparisons)."""
        b = self.b
        x = b.select(b.fcmp_ordered("<", x, hi), x, hi)
        return b.select(b.fcmp_ordered(">", x, lo), x, lo)

    def erf(self, x: ir.Value, scaled: bool = False) -> ir.Value:
        """``x·P(x²)/Q(x²)`` with |x| clamped to 4 and the result to [−1, 1] (module docstring); ``scaled``:
        ``erf(x·(1/√2))`` with the argument's scale folded into the coefficients (:data:`_P_SCALED`,
        :data:`_Q_SCALED`, |x| clamped to 4·√2), one multiplication fewer."""
        b = self.b
        limit, pc, qc = (_ERF_LIMIT_SCALED, _P_SCALED, _Q_SCALED) if scaled else (
            _ERF_LIMIT, (_P0, _P1, _P2, _P3, _P4, _P5), (_ONE, _Q1, _Q2, _Q3, _Q4, _Q5))
        x = self.clamp(x, _const(-limit), _const(limit))
        z = b.fmul(x, x)
        p = self.fma(_const(pc[5]), z, _const(pc[4]))
        for coef in pc[3::-1]:
            p = self.fma(p, z, _const(coef))
        q = self.fma(_const(qc[5]), z, _const(qc[4]))
        for coef in qc[3::-1]:
            q = self.fma(q, z, _const(coef))
        return self.clamp(b.fdiv(b.fmul(x, p), q), _const(-1.0), self.one)  # float32 reaches 1 + 1 ulp near |x| = 4

    def gelu(self, x: ir.Value) -> ir.Value:
        """``t + t·erf(x·(1/√2))`` with ``t = x·½`` (one fused multiply-add), the scale folded into erf's
        coefficients: the exact-erf GELU ``(x·½)·(1 + erf(x/√2))`` in two operations fewer (session 11)."""
        t = self.b.fmul(x, self.half)
        return self.fma(t, self.erf(x, scaled=True), t)

    def dots(self, weight: Any, us: list, rows: int, init: list | None = None) -> list:
        """``[[Σ_k weight(r, k)·u[k] for u in us] for r < rows]`` (``weight`` gives splatted scalars, each read once for
        all the tiles ``us``): each sum as two chains of fused multiply-adds from 0 (the even chain from ``init[r]``
        if given: ``init[r] + Σ_k …``), over the even and the odd k in ascending order, added at the end; the chains
        interleaved, so that they overlap in the FMA units."""
        n = len(us)
        even = [[self.zero if init is None else init[r]] * n for r in range(rows)]
        odd = [[self.zero] * n for _ in range(rows)]
        for k in range(0, DIM, 2):
            for r in range(rows):
                we, wo = weight(r, k), weight(r, k + 1)
                for t, u in enumerate(us):
                    even[r][t] = self.fma(we, u[k], even[r][t])
                    odd[r][t] = self.fma(wo, u[k + 1], odd[r][t])
        return [[self.b.fadd(e, o) for e, o in zip(er, od)] for er, od in zip(even, odd)]

    def normalised(self, t: list, eps: ir.Value) -> list:
        """LayerNorm without its affine part of the tokens whose 16 features are the vectors ``t``."""
        b = self.b
        s = t[0]
        for tk in t[1:]:
            s = b.fadd(s, tk)
        mean = b.fmul(s, self.inv_d)
        centred = [b.fsub(tk, mean) for tk in t]
        q = b.fmul(centred[0], centred[0])
        for ck in centred[1:]:
            q = b.fadd(q, b.fmul(ck, ck))
        r = b.fdiv(self.one, b.call(self._sqrt, [b.fadd(b.fmul(q, self.inv_d), eps)]))
        return [b.fmul(ck, r) for ck in centred]


@intrinsic
def _token_tiles(typingctx, src, mem, wqkv, wp, c1, w1, c2, w2, b2, eps, qk, tiles, blocks, relu, stride, channel):
    """``tiles`` tiles of 256 floats from ``src``'s data (through a ReLU if ``relu`` ≠ 0) through ``blocks`` token
    blocks, into ``mem``'s data (:func:`token_blocks`, :func:`relu_token_blocks`).  In ``src`` a pixel's 16 values
    start at ``pixel·stride + channel`` (16, 0 for a 16-channel map)."""
    sig = types.void(src, mem, wqkv, wp, c1, w1, c2, w2, b2, eps, qk, tiles, blocks, relu, stride, channel)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        c = lambda v: ir.Constant(i64, v)
        vec = _vec16()
        ptr = vec.as_pointer()
        ops = _Ops(builder)
        src_d, mem_d, wqkv_d, wp_d, c1_d, w1_d, c2_d, w2_d, b2_d, _, qk_d = (
            context.make_array(aty)(context, builder, a).data if i != 9 else None
            for i, (aty, a) in enumerate(zip(signature.args[:11], args[:11])))
        eps = _splat(builder, args[9])
        relu = builder.icmp_signed("!=", args[13], c(0))
        scalar = lambda base, i: _splat(builder, builder.load(builder.gep(base, [i])))
        at = lambda base, i: builder.bitcast(builder.gep(base, [i]), ptr)
        scratch_rows = QKV + HIDDEN  # per tile: q·k·v, then the GELU outputs

        def tiles_step(first, count):
            """Tiles first … first + count − 1 through the blocks; each weight read once for the count tiles."""
            rows, work = [], []
            for t in range(count):
                offset = builder.mul(builder.add(first, c(t)), c(DIM * LANES))
                tile = builder.gep(mem_d, [offset])
                rows.append([at(tile, c(LANES * k)) for k in range(DIM)])
                pixel = builder.mul(builder.add(first, c(t)), c(LANES))  # the tile's first pixel
                source = builder.gep(src_d, [builder.add(builder.mul(pixel, args[14]), args[15])])
                for k in range(DIM):  # the tile from src (ReLU as torch's clamp_min(·, 0)), into mem
                    v = builder.load(at(source, builder.mul(c(k), args[14])), align=4)
                    v = builder.select(relu, builder.select(builder.fcmp_ordered("<", v, ops.zero), ops.zero, v), v)
                    builder.store(v, rows[t][k], align=4)
                work.append(builder.gep(qk_d, [c(t * scratch_rows * LANES)]))
            with cgutils.for_range(builder, args[12]) as block_loop:
                blk = block_loop.index
                # attention with one token per window: t += proj(v) + c1 (q and k computed, as in the official cost)
                us = [ops.normalised([builder.load(r, align=4) for r in rows[t]], eps) for t in range(count)]
                wq = builder.gep(wqkv_d, [builder.mul(blk, c(QKV * DIM))])
                with cgutils.for_range(builder, c(QKV // QKV_ROWS)) as row_loop:
                    i0 = builder.mul(row_loop.index, c(QKV_ROWS))
                    w = builder.gep(wq, [builder.mul(i0, c(DIM))])
                    acc = ops.dots(lambda r, k: scalar(w, c(r * DIM + k)), us, QKV_ROWS)
                    for r in range(QKV_ROWS):
                        for t in range(count):
                            builder.store(acc[r][t], at(work[t], builder.mul(builder.add(i0, c(r)), c(LANES))), align=4)
                wpb = builder.gep(wp_d, [builder.mul(blk, c(DIM * DIM))])
                c1b = builder.gep(c1_d, [builder.mul(blk, c(DIM))])
                for i in range(DIM):
                    a = [builder.load(rows[t][i], align=4) for t in range(count)]
                    for k in range(DIM):
                        wk = scalar(wpb, c(i * DIM + k))
                        for t in range(count):
                            v = builder.load(at(work[t], c(LANES * (2 * DIM + k))), align=4)
                            a[t] = ops.fma(wk, v, a[t])
                    for t in range(count):
                        builder.store(builder.fadd(a[t], scalar(c1b, c(i))), rows[t][i], align=4)
                # MLP: t += fc2(GELU(fc1(LN(t)) + c2)) + b2
                us = [ops.normalised([builder.load(r, align=4) for r in rows[t]], eps) for t in range(count)]
                w1b = builder.gep(w1_d, [builder.mul(blk, c(HIDDEN * DIM))])
                c2b = builder.gep(c2_d, [builder.mul(blk, c(HIDDEN))])
                w2b = builder.gep(w2_d, [builder.mul(blk, c(DIM * HIDDEN))])
                with cgutils.for_range(builder, c(HIDDEN // HIDDEN_UNITS)) as unit_loop:
                    j0 = builder.mul(unit_loop.index, c(HIDDEN_UNITS))
                    w = builder.gep(w1b, [builder.mul(j0, c(DIM))])
                    # fc1's even chain starts from its constant c2_j (one addition a value fewer: session 11)
                    acc = ops.dots(lambda r, k: scalar(w, c(r * DIM + k)), us, HIDDEN_UNITS,
                                   init=[scalar(c2b, builder.add(j0, c(r))) for r in range(HIDDEN_UNITS)])
                    for r in range(HIDDEN_UNITS):
                        j = builder.add(j0, c(r))
                        for t in range(count):
                            g = ops.gelu(acc[r][t])
                            builder.store(g, at(work[t], builder.mul(builder.add(j, c(QKV)), c(LANES))), align=4)
                b2b = builder.gep(b2_d, [builder.mul(blk, c(DIM))])
                for i0 in range(0, DIM, OUTPUTS):  # fc2: OUTPUTS rows × count tiles of sums, j ascending from t_i
                    with builder.goto_entry_block():
                        sums = [[builder.alloca(vec) for _ in range(count)] for _ in range(OUTPUTS)]
                    for i in range(OUTPUTS):
                        for t in range(count):
                            builder.store(builder.load(rows[t][i0 + i], align=4), sums[i][t])
                    with cgutils.for_range(builder, c(HIDDEN)) as j_loop:
                        j = j_loop.index
                        g = [builder.load(at(work[t], builder.mul(builder.add(j, c(QKV)), c(LANES))), align=4)
                             for t in range(count)]
                        for i in range(OUTPUTS):
                            wij = scalar(w2b, builder.add(j, c((i0 + i) * HIDDEN)))
                            for t in range(count):
                                builder.store(ops.fma(wij, g[t], builder.load(sums[i][t])), sums[i][t])
                    for i in range(OUTPUTS):
                        for t in range(count):
                            builder.store(builder.fadd(builder.load(sums[i][t]), scalar(b2b, c(i0 + i))),
                                          rows[t][i0 + i], align=4)

        pairs = builder.sdiv(args[11], c(TILES))
        with cgutils.for_range(builder, pairs) as pair_loop:
            tiles_step(builder.mul(pair_loop.index, c(TILES)), TILES)
        done = builder.mul(pairs, c(TILES))
        with cgutils.for_range(builder, builder.sub(args[11], done)) as rest_loop:
            tiles_step(builder.add(done, rest_loop.index), 1)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True)
def token_blocks(mem, wqkv, wp, c1, w1, c2, w2, b2, eps, qk):  # pragma: no cover - compiled
    """MATR's token blocks, in place, on the rows ``mem`` of a channels-last 16-channel map (module docstring).

    ``mem``: C-contiguous rows × W × 16 float32 with W a multiple of 16 (the tiles of 16 tokens);
    per block b (``wqkv.shape[0]`` blocks, in order), C-contiguous float32: ``wqkv[b]`` 48 × 16 (LayerNorm 1's
    γ folded in), ``wp[b]`` 16 × 16, ``c1[b]`` 16 (proj(v)'s constant: β through v and proj's bias),
    ``w1[b]`` 64 × 16 (γ₂ folded in), ``c2[b]`` 64 (fc1's constant), ``w2[b]`` 16 × 64, ``b2[b]`` 16 (fc2's
    bias); ``eps``: float32; ``qk``: a C-contiguous float32 scratch block of :data:`SCRATCH_SHAPE` (per tile of a
    step its q·k·v and its GELU outputs; q and k are written there and not read)."""
    _wide_vectors()
    if qk.size < TILES * (QKV + HIDDEN) * LANES:
        raise ValueError("token_blocks: the scratch block is smaller than SCRATCH_SHAPE")
    _token_tiles(mem, mem, wqkv, wp, c1, w1, c2, w2, b2, eps, qk, mem.size // (DIM * LANES), wqkv.shape[0], 0, DIM, 0)


@njit(cache=True, nogil=True)
def relu_token_blocks(src, channel, mem, wqkv, wp, c1, w1, c2, w2, b2, eps, qk):  # pragma: no cover - compiled
    """:func:`token_blocks` on ``ReLU(src)`` written into ``mem``: the ReLU and the copy into the map in the same pass.

    ``src``: a convolution band's output before its ReLU, C-contiguous rows × W × Cs float32 (the rows and width
    of ``mem``), of which channels ``channel … channel + 15`` are read (Cs = 48: three convolutions' outputs side by
    side, :mod:`methods.matr`, session 11)."""
    _wide_vectors()
    if qk.size < TILES * (QKV + HIDDEN) * LANES:
        raise ValueError("relu_token_blocks: the scratch block is smaller than SCRATCH_SHAPE")
    if src.shape[0] * src.shape[1] != mem.shape[0] * mem.shape[1] or channel < 0 or channel + DIM > src.shape[2]:
        raise ValueError("relu_token_blocks: src is not rows × W × (≥ channel + 16) of mem's rows and width")
    _token_tiles(src, mem, wqkv, wp, c1, w1, c2, w2, b2, eps, qk, mem.size // (DIM * LANES), wqkv.shape[0], 1,
                 src.shape[2], channel)


@intrinsic
def _relu_pixels(typingctx, src, dst, first, count, stride, channel, add):
    """``dst``'s pixels ``first … first + count − 1`` (16 floats each) = ReLU of the 16 values of ``src`` at
    ``pixel·stride + channel`` (as torch's ``clamp_min(·, 0)``: NaN kept), one 16-lane vector a pixel; with
    ``add`` ≠ 0, added to what ``dst`` holds (``dst + ReLU(src)``, one rounding, as torch's ``add_``)."""
    sig = types.void(src, dst, first, count, stride, channel, add)

    def codegen(context, builder, signature, args):
        ptr = _vec16().as_pointer()
        src_d, dst_d = (context.make_array(aty)(context, builder, a).data for aty, a in zip(signature.args[:2], args[:2]))
        zero = ir.Constant(_vec16(), None)
        add = builder.icmp_signed("!=", args[6], ir.Constant(ir.IntType(64), 0))
        with cgutils.for_range(builder, args[3]) as loop:
            pixel = builder.add(args[2], loop.index)
            at = builder.add(builder.mul(pixel, args[4]), args[5])
            v = _vload(builder, builder.gep(src_d, [at]))
            v = builder.select(builder.fcmp_ordered("<", v, zero), zero, v)
            target = builder.bitcast(builder.gep(dst_d, [builder.mul(pixel, ir.Constant(ir.IntType(64), LANES))]), ptr)
            with builder.if_then(add):
                builder.store(builder.fadd(builder.load(target, align=4), v), target, align=4)
            with builder.if_then(builder.not_(add)):
                builder.store(v, target, align=4)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True)
def relu_add_rows(src, channel, dst):  # pragma: no cover - compiled
    """``dst += ReLU(src[..., channel : channel + 16])`` in one pass (torch: an in-place ReLU, then ``add_``; the same
    bits): a band of b2 or b3 added into b1's map (session 11).  ``src``: C-contiguous rows × W × Cs float32
    (Cs ≥ channel + 16); ``dst``: C-contiguous rows × W × 16 float32."""
    rows, w, c = dst.shape
    if c != DIM or src.shape[0] != rows or src.shape[1] != w or channel < 0 or channel + DIM > src.shape[2]:
        raise ValueError("relu_add_rows: src is not rows × W × (≥ channel + 16) of dst's rows × W × 16")
    _relu_pixels(src, dst, 0, rows * w, src.shape[2], channel, 1)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _bin_sums_of_row(row, starts, ends, acc):  # pragma: no cover - compiled
    """``acc[j, c] = Σ_{x = starts[j]}^{ends[j] − 1} row[x, c]`` (``row``: W × C float32, ``acc``: bins × C
    float64), x ascending: one row of :func:`row_bin_sums`."""
    c = row.shape[1]
    for j in range(starts.shape[0]):
        a = acc[j]
        for ch in range(c):
            a[ch] = 0.0
        for x in range(starts[j], ends[j]):
            v = row[x]
            for ch in range(c):
                a[ch] += v[ch]


@njit(cache=True, nogil=True, error_model="numpy")
def relu_rows_sums(src, channel, dst, starts, ends, sums):  # pragma: no cover - compiled
    """``dst = ReLU(src[..., channel : channel + 16])`` and its :func:`row_bin_sums` into ``sums``, row by row (the
    row's sums taken while it is in the L1 cache): a convolution band into its map with the context sums the next
    gated convolution needs, one pass instead of torch's ReLU copy and a second one (session 11).

    ``src``: C-contiguous rows × W × Cs float32 (Cs ≥ channel + 16); ``dst``: C-contiguous rows × W × 16 float32;
    ``starts``, ``ends``, ``sums``: as :func:`row_bin_sums` (the same additions in the same order, so the same bits).
    """
    rows, w, c = dst.shape
    if c != DIM or src.shape[0] != rows or src.shape[1] != w or channel < 0 or channel + DIM > src.shape[2]:
        raise ValueError("relu_rows_sums: src is not rows × W × (≥ channel + 16) of dst's rows × W × 16")
    for r in range(rows):
        _relu_pixels(src, dst, r * w, w, src.shape[2], channel, 0)
        _bin_sums_of_row(dst[r], starts, ends, sums[r])


@intrinsic
def _unary_vectors(typingctx, x, out, n, which):
    """``out[:16n] = erf(x)`` (``which`` 0) or ``GELU(x)`` (1), 16 values at a time, through the IR of :class:`_Ops`."""
    sig = types.void(x, out, n, which)

    def codegen(context, builder, signature, args):
        xd, od = (context.make_array(aty)(context, builder, a).data for aty, a in zip(signature.args[:2], args[:2]))
        ops = _Ops(builder)
        gelu = builder.icmp_signed("!=", args[3], ir.Constant(ir.IntType(64), 0))
        with cgutils.for_range(builder, args[2]) as loop:
            i = builder.mul(loop.index, ir.Constant(ir.IntType(64), LANES))
            v = _vload(builder, builder.gep(xd, [i]))
            y = builder.select(gelu, ops.gelu(v), ops.erf(v))
            _vstore(builder, y, builder.gep(od, [i]))
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True)
def _unary_into(x, out, which):  # pragma: no cover - compiled
    n = x.shape[0] // LANES
    _unary_vectors(x, out, n, which)
    rest = x.shape[0] - n * LANES
    if rest:
        tail = np.zeros(LANES, np.float32)
        tail[:rest] = x[n * LANES:]
        done = np.empty(LANES, np.float32)
        _unary_vectors(tail, done, 1, which)
        out[n * LANES:] = done[:rest]


def erf_into(x: np.ndarray, out: np.ndarray) -> None:
    """``out = erf(x)`` (1-D C-contiguous float32) by the token kernel's erf, for the tests."""
    _unary_into(x, out, 0)


def gelu_into(x: np.ndarray, out: np.ndarray) -> None:
    """``out = GELU(x)`` (1-D C-contiguous float32) by the token kernel's GELU, for the tests."""
    _unary_into(x, out, 1)


@njit(cache=True, nogil=True, error_model="numpy")
def row_bin_sums(mem, starts, ends, out):  # pragma: no cover - compiled
    """``out[r, j, c] = Σ_{x = starts[j]}^{ends[j] − 1} mem[r, x, c]`` in float64, x ascending.

    ``mem``: rows of a channels-last map, C-contiguous rows × W × C float32; ``starts``, ``ends``: int64, the
    column bins of an adaptive average pooling; ``out``: rows × bins × C float64.  The per-row, per-bin sums
    of the gated convolution's 3×3 context (:class:`methods._matr_net.AdaptiveConv`),
    taken by the band worker that wrote the rows, while they are in its cache; additions only, in order, so
    the sums do not depend on the instruction set or on how the rows are cut into bands.
    """
    for r in range(mem.shape[0]):
        _bin_sums_of_row(mem[r], starts, ends, out[r])


@njit(cache=True, nogil=True, error_model="numpy")
def bin_means(sums, row_starts, row_ends, counts, out):  # pragma: no cover - compiled
    """``out[c, i·k + j] = float32((Σ_{r = row_starts[i]}^{row_ends[i] − 1} sums[r, j, c]) / counts[i, j])``: the k×k
    average pooling from the per-row sums of :func:`row_bin_sums` (rows added in order, in float64, divided and
    rounded once: numpy's ``sums[ys:ye].sum(0) / counts`` and ``astype(float32)``, the same bits), as the C × k²
    float32 context :func:`gated_kernels` reads; one call between two band phases (session 11).  ``row_starts``,
    ``row_ends``: int64 (k), ``counts``: float64 k × k, ``out``: float32 C × k²."""
    k = row_starts.shape[0]
    c = sums.shape[2]
    acc = np.empty(c)
    for i in range(k):
        for j in range(sums.shape[1]):
            for ch in range(c):
                acc[ch] = 0.0
            for r in range(row_starts[i], row_ends[i]):
                for ch in range(c):
                    acc[ch] += sums[r, j, ch]
            for ch in range(c):
                out[ch, i * k + j] = np.float32(acc[ch] / counts[i, j])


@njit(cache=True, nogil=True, error_model="numpy")
def gated_kernels(pooled, ce, s1, t1, gd, s2, t2, ci, s3, t3, gd2, weight, scale, out):  # pragma: no cover - compiled
    """The context-gated 3×3 kernels of one sample with BatchNorm folded: ``sigmoid(in + out) ⊙ W · s``, in float64.

    ``pooled``: cin × k² float32 (the k×k average-pooled context); float64: ``ce`` lat × k² (``ce``'s weight),
    ``s1, t1``, ``s2, t2`` (cin), ``s3, t3`` (cout): the eval BatchNorms ``ce_bn``, ``ci_bn2``, ``ci_bn`` as
    ``x·s + t``; ``gd``, ``gd2`` k² × lat; ``ci`` (cout / groups) × g; ``weight`` cout × cin × k²; ``scale``
    cout (the following BatchNorm2d's scale); ``out``: cout × cin × k² float32.  The same operations as
    ``AdaptiveConv.gated`` (:mod:`methods._matr_net`), every sum in index order, rounded to float32 once at the end:
    one call instead of ≈ 20 small torch operations between two band passes (issue 23, session 10).
    """
    cin, kk = pooled.shape
    lat = ce.shape[0]
    cout = weight.shape[0]
    g = ci.shape[1]
    per_group = ci.shape[0]
    ctx = np.empty((cin, lat))
    gin = np.empty((cin, kk))
    act = np.empty(lat)
    for c in range(cin):
        for m in range(lat):
            s = 0.0
            for q in range(kk):
                s += ce[m, q] * pooled[c, q]
            ctx[c, m] = s
        for m in range(lat):
            v = ctx[c, m] * s1[c] + t1[c]
            act[m] = v if v > 0.0 else 0.0
        for q in range(kk):
            s = 0.0
            for m in range(lat):
                s += gd[q, m] * act[m]
            gin[c, q] = s
    mixed = np.empty((cin, lat))
    for c in range(cin):
        for m in range(lat):
            v = ctx[c, m] * s2[c] + t2[c]
            mixed[c, m] = v if v > 0.0 else 0.0
    for o in range(cout):
        group, row = o // per_group, o % per_group
        for m in range(lat):
            s = 0.0
            for i in range(g):
                s += ci[row, i] * mixed[group * g + i, m]
            v = s * s3[o] + t3[o]
            act[m] = v if v > 0.0 else 0.0
        for q in range(kk):
            s = 0.0
            for m in range(lat):
                s += gd2[q, m] * act[m]
            for c in range(cin):
                gate = 1.0 / (1.0 + np.exp(-(gin[c, q] + s)))
                out[o, c, q] = gate * weight[o, c, q] * scale[o]
