"""The Swin blocks of SwinFusion (:mod:`methods._swin_net`): window attention, the (cross) Swin
transformer blocks and their groups, with the inference path that runs them chunk by chunk.

Attention is computed by ``torch.nn.functional.scaled_dot_product_attention``
(a fused kernel: the B·nW·heads×64×64 score tensors are never materialised); the inference chunks
instead call the compiled window kernel of :mod:`methods._window_attention` (head dimension 10, 8×8
windows, float32 on the CPU; 1.5× faster than the fused kernel on these tiny products), with SDPA kept
as the fallback and behind :func:`sdpa_attention`.  The
windows are cut in four groups — interior, last window row, last window column,
corner — each a contiguous batch that shares one (heads, 64, 64) additive mask
(relative-position bias + the shifted-window mask of its kind; the mask of a
window depends only on whether it is in the last row/column, not on the image
size), so there is no per-window Python work and no per-window mask tensor.  In
training the qkv/q/kv and output projections act on the whole token map (one GEMM each); in
inference (no autograd, eval mode) each block runs chunk by chunk over :data:`CHUNK_WINDOWS` whole
windows of one group (norm, projections, attention, MLP, residuals), so its intermediates stay in
the L2 cache, GELU and the residual adds are in place, and the groups are never concatenated
(same numbers: max |Δ| 0 measured on a 256² pair; 26 % less CPU time on one thread).  With N > 1
torch threads the chunks are shared out to N single-threaded Python threads (:func:`methods._band_workers.band_workers`)
instead of splitting every small operation N ways; with exactly 2, the two modality streams (extraction,
the intra-domain groups of the fusion stages) run side by side, one whole stream per core (:func:`methods._band_workers.both`).
The inference forward (:meth:`SwinFusionNet._forward_lean`) holds at most two token maps per stream: each
block's chunks gather their own tokens from the previous block's map into the other map (no whole-map
gather), the streams pass between Swin groups in the next group's window order (image order only where a
convolution needs it), the LayerNorms between stages run in place on cache-sized runs of tokens, and the
residual projections are accumulated by the GEMM (``addmm_``).  Peak resident memory fusing a 1024² pair:
3.4 → 1.5 GB; outputs equal to round-off (max |Δ| 7.8e-7 on a 256² pair).  On the kernel's path the chunks'
LayerNorms run in one compiled pass each (:mod:`methods._window_attention_norm`), fused with the gather before
the first norm, the ``proj`` / ``fc2`` biases added into the residual, and a bias column that lets ``fc1``'s GEMM
add its bias (session 9: ≈ 11 % less CPU per forward; :func:`torch_norms` switches back to torch's LayerNorm).
A block call resolves the fused chunks' operands once (:class:`_FusedOps`) and the chunks call the compiled
passes directly, without their wrappers' per-call checks (session 10: same bits, ≈ 5 % less CPU per forward).
Where torch's own ``sgemm_`` is found (MKL builds; :func:`methods._window_attention.gemm_address`), a chunk runs
from its gather to the MLP's hidden layer in one compiled, GIL-free call (``self_chunk_kernel`` /
``cross_chunk_kernel``: the norm passes, the window kernel, and the products as the same ``sgemm_`` calls that
``mm`` / ``addmm_`` make), then torch's GELU and the ``fc2`` product; the intermediates live in per-thread scratch
(:func:`_scratch`).  Session 13: same bits, the two chunk workers no longer queue for the GIL between a dozen small
calls per chunk (2 threads ≈ 0.89× the wall time, 1 thread ≈ 0.96× the CPU).
:func:`reference_attention` switches back to the official formulation (explicit
``(q·scale)@kᵀ + bias + mask``, softmax, ``@v`` on every window): the same
numbers up to float32 round-off (max |Δ| ~1e-6 on the fused map), kept for the
tests and the speed benchmark.  ``fusionbench.profile`` counts the fused kernel's
FLOPs as the two matrix products (same count as the explicit path).

Torch is imported at module level: this private module is imported lazily by
:mod:`methods.swinfusion` (``methods/__init__`` skips ``_`` modules).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._band_workers import run_spans, workers
from ._row_bands import even_bands
from ._swin_fused import _FusedOps, _bias_column, _np, _one_call_gemm, _scratch, _window_attention, _window_norm
from ._swin_windows import (Order, gather_index, kind_masks, relative_position_index, shift_mask, window_order,
                            window_partition, window_merge)

__all__ = ["SwinTransformerBlock", "CrossSwinTransformerBlock", "BasicLayer", "reference_attention",
           "sdpa_attention", "torch_norms", "reference_mode", "DERIVED_BUFFERS"]

#: suffixes of the persistent buffers that are pure functions of the configuration
DERIVED_BUFFERS = ("relative_position_index", "attn_mask")

_REFERENCE = False
#: whether the inference path's chunks use the compiled window kernel where it applies (:func:`sdpa_attention`)
_KERNEL = True
#: whether the kernel path's chunks also run their LayerNorms + residual biases in one compiled pass
#: (:mod:`methods._window_attention_norm`; :func:`torch_norms` switches back to torch's ``LayerNorm``)
_FUSED_NORMS = True

#: windows per chunk of the inference path: 64 windows of 8×8 = 4096 tokens, whose largest intermediate
#: (the 4096×180 ``qkv`` block, 2.9 MB) stays in a 4 MB L2 cache through the whole block
CHUNK_WINDOWS = 64


def _fused_norms(kernel_path: bool, channels: int, *norms: nn.LayerNorm) -> bool:
    """Whether the chunks run their LayerNorms (and the residual biases) in the compiled pass of
    :mod:`methods._window_attention_norm`: on the window kernel's path (float32 on the CPU, no dispatch mode,
    not :func:`sdpa_attention`), 60 channels, affine norms; else torch's ``LayerNorm`` (the session-8 code)."""
    return (kernel_path and _FUSED_NORMS and _window_norm().supported(channels)
            and all(n.elementwise_affine and n.weight is not None and n.bias is not None for n in norms))


def _fused_rows(t: torch.Tensor, fns: list[tuple[nn.Module, ...]]) -> bool:
    """Whether :func:`token_rows` runs its LayerNorms in the compiled pass (as :func:`_fused_norms`: float32 on the
    CPU, no dispatch mode, not :func:`sdpa_attention` / :func:`torch_norms`; every ``fn`` an affine 60-channel
    ``LayerNorm``)."""
    return (_KERNEL and _FUSED_NORMS and t.dtype == torch.float32 and t.device.type == "cpu"
            and torch._C._len_torch_dispatch_stack() == 0
            and all(type(fn) is nn.LayerNorm and fn.weight is not None and fn.bias is not None
                    and tuple(fn.normalized_shape) == (t.shape[-1],) for f in fns for fn in f)
            and _window_norm().supported(t.shape[-1]))



@contextlib.contextmanager
def sdpa_attention() -> Iterator[None]:
    """Within the block, the inference path's chunks use ``scaled_dot_product_attention`` instead of the
    compiled window kernel (:mod:`methods._window_attention`): the session-6 code, for comparisons."""
    global _KERNEL
    old, _KERNEL = _KERNEL, False
    try:
        yield
    finally:
        _KERNEL = old


@contextlib.contextmanager
def torch_norms() -> Iterator[None]:
    """Within the block, the inference chunks use torch's ``LayerNorm`` and bias adds instead of the compiled
    norm pass (:mod:`methods._window_attention_norm`): the session-8 code, for comparisons."""
    global _FUSED_NORMS
    old, _FUSED_NORMS = _FUSED_NORMS, False
    try:
        yield
    finally:
        _FUSED_NORMS = old


def reference_mode() -> bool:
    """Whether :func:`reference_attention` is in force (read by the network's forward)."""
    return _REFERENCE


@contextlib.contextmanager
def reference_attention() -> Iterator[None]:
    """Within the block, every Swin block uses the official explicit-matmul attention (slow, exact layout)."""
    global _REFERENCE
    old, _REFERENCE = _REFERENCE, True
    try:
        yield
    finally:
        _REFERENCE = old



class DropPath(nn.Module):
    """Stochastic depth per sample (training only), surviving paths rescaled by 1/keep."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


def _drop_path(p: float) -> nn.Module:
    return DropPath(p) if p > 0 else nn.Identity()


class Linear(nn.Linear):
    """``nn.Linear`` computed as a matrix product followed by an in-place bias add.

    ``addmm`` first copies the broadcast bias into its output on one thread, which
    costs about as much as the thin (K = 60) product itself on the 70k-token maps
    here; ``mm`` then ``add_`` gives the same values (max |Δ| 0 measured on the
    fused map) about 6 % faster end to end.  Parameter names are ``nn.Linear``'s.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _REFERENCE or self.bias is None:
            return F.linear(x, self.weight, self.bias)
        return F.linear(x, self.weight).add_(self.bias)

    def channel_major(self, x: torch.Tensor) -> torch.Tensor:
        """Inference: the layer's product on 2-D ``x`` (T, in) transposed and **without the bias**, as a contiguous
        (out, T) tensor ``W·xᵀ`` (the window kernel's layout; the kernel adds the bias as it reads a row, which
        spares a pass over the product).  Round-off only against ``(self(x) - bias).t()``."""
        return torch.mm(self.weight, x.t())

    def accumulate_(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Inference residual ``t += self(x)`` in place on 2-D ``t``: bias added, then the product accumulated by
        the GEMM itself (``addmm_``, β = 1), so the layer's output is never written and re-read (≈ 15 % of a
        residual projection on a 4096-token chunk).  Same terms summed in another order: round-off only.
        (``fusionbench.profile`` counts the in-place ``addmm_`` like ``addmm``.)"""
        if self.bias is not None:
            t.add_(self.bias)
        return t.addmm_(x, self.weight.t())


class Mlp(nn.Module):
    """Linear → GELU → Linear (``fc1`` / ``fc2``)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


# --------------------------------------------------------------------------- attention
class _WindowAttentionBase(nn.Module):
    """Relative-position-biased multi-head attention inside ws×ws windows."""

    def __init__(self, dim: int, ws: int, heads: int):
        super().__init__()
        self.dim, self.ws, self.heads = dim, ws, heads
        self.scale = (dim // heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, heads))
        self.register_buffer("relative_position_index", relative_position_index(ws))
        self.proj = Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def bias(self) -> torch.Tensor:
        """(heads, ws², ws²) relative-position bias."""
        n = self.ws * self.ws
        table = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        return table.reshape(n, n, -1).permute(2, 0, 1)

    def _sdpa(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # q, k, v: (B_, heads, N, C/heads); mask (1, heads, N, N) → (B_, N, C) before ``proj``
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        return out.transpose(1, 2).reshape(q.shape[0], q.shape[2], self.dim)

    def kernel_masks(self, masks: list[torch.Tensor], x: torch.Tensor) -> list | None:
        """The groups' (1, heads, N, N) masks transposed for the window kernel (``[h, j, i]``, numpy float32),
        or None where the inference chunks keep ``scaled_dot_product_attention``: :func:`sdpa_attention`, not
        float32 on the CPU, a head dimension or window the kernel is not made for, or inside a dispatch mode
        (a FLOP counter sees only torch operations)."""
        n = masks[0].shape[-1]
        if (not _KERNEL or x.dtype != torch.float32 or x.device.type != "cpu"
                or torch._C._len_torch_dispatch_stack() > 0 or not _window_attention().supported(n, self.dim // self.heads)):
            return None
        return [m[0].detach().transpose(1, 2).contiguous().numpy() for m in masks]

    def _kernel(self, q: torch.Tensor, q_layer: Linear, q_row: int, k: torch.Tensor, k_layer: Linear, k_row: int,
                v: torch.Tensor, v_layer: Linear, v_row: int, mask_t) -> torch.Tensor:
        """(T, C) attention of whole windows by the compiled window kernel, from channel-major (·, T) contiguous
        products without their bias (:meth:`Linear.channel_major`; the kernel adds each ``*_layer``'s bias as it
        reads them); the result is a transposed view of a (C, T) tensor."""
        out = torch.empty(self.dim, q.shape[1])
        _window_attention().attend_transposed(q.numpy(), q_row, k.numpy(), k_row, v.numpy(), v_row, mask_t,
                                              self.scale, out.numpy(), q_layer.bias.detach().numpy(),
                                              k_layer.bias.detach().numpy(), v_layer.bias.detach().numpy())
        return out.t()

    def _split(self, t: torch.Tensor, n: int) -> torch.Tensor:
        # (B_, N, n·C) → (n, B_, heads, N, C/heads)
        b_, tokens, _ = t.shape
        return t.reshape(b_, tokens, n, self.heads, self.dim // self.heads).permute(2, 0, 3, 1, 4)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b_, _, n, _ = q.shape
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        attn = (q * self.scale) @ k.transpose(-2, -1) + bias.reshape(n, n, -1).permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = (attn.view(b_ // nw, nw, self.heads, n, n) + mask[None, :, None]).view(b_, self.heads, n, n)
        out = attn.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b_, n, self.dim))


class WindowAttention(_WindowAttentionBase):
    """Self-attention: ``qkv`` projects the tokens to queries, keys and values."""

    def __init__(self, dim: int, ws: int, heads: int):
        super().__init__(dim, ws, heads)
        self.qkv = Linear(dim, 3 * dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = self._split(self.qkv(x), 3)
        return self._attend(q, k, v, mask)

    def attend_windows(self, qkv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Fused attention on projected windows ``qkv`` (B_, N, 3C); returns (B_, N, C) before ``proj``."""
        q, k, v = self._split(qkv, 3)
        return self._sdpa(q, k, v, mask)


class CrossWindowAttention(_WindowAttentionBase):
    """Cross-attention: queries from ``x`` (``q``), keys and values from ``y`` (``kv``)."""

    def __init__(self, dim: int, ws: int, heads: int):
        super().__init__(dim, ws, heads)
        self.q = Linear(dim, dim)
        self.kv = Linear(dim, 2 * dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        q = self._split(self.q(x), 1)[0]
        k, v = self._split(self.kv(y), 2)
        return self._attend(q, k, v, mask)

    def attend_windows(self, q: torch.Tensor, kv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Fused attention on projected windows ``q`` (B_, N, C), ``kv`` (B_, N, 2C); (B_, N, C) before ``proj``."""
        k, v = self._split(kv, 2)
        return self._sdpa(self._split(q, 1)[0], k, v, mask)



#: tokens per chunk of the row-wise inference passes (final gathers, norms): as many as a window chunk
CHUNK_ROWS = 4096


def _gather(out: torch.Tensor, src: torch.Tensor, index: torch.Tensor | None, start: int, end: int) -> None:
    """``out = src[index[start:end]]`` (``src[start:end]`` when ``index`` is None), written into ``out``."""
    if index is None:
        out.copy_(src[start:end])
    else:
        torch.index_select(src, 0, index[start:end], out=out)


def token_rows(dst: list[torch.Tensor], fns: list[tuple[nn.Module, ...]], src: list[torch.Tensor] | None = None,
          index: torch.Tensor | None = None) -> None:
    """Inference, in place and chunk by chunk: ``dst[k] = fns[k](src[k][:, index])`` (or of ``src[k]``, ``dst[k]``).

    ``dst``/``src``: per stream (B, HW, C) contiguous token maps; ``fns[k]``: token-wise modules
    (LayerNorms) applied in order.  Every token is computed alone, so doing it on cache-sized runs of rows
    gives the whole-map numbers without a full-map temporary; the runs go to the chunk workers.
    """
    if _fused_rows(dst[0], fns):
        args = [[(_np(fn.weight), _np(fn.bias), fn.eps) for fn in f] for f in fns]
        maps = [[_np(m) for m in (src if src is not None else dst)[k]] for k in range(len(dst))]
        order = None if src is None or index is None else _np(index)

        def chunk_fused(span: tuple[int, int, int, int]) -> None:
            # the first norm reads the (gathered) rows and writes the output rows, the others run in place
            k, i, start, end = span
            out = _np(dst[k][i, start:end])
            from_rows, rows_index, base = maps[k][i], order, start
            for gamma, beta, eps in args[k]:
                _window_norm().norm_rows(from_rows, rows_index, base, None, None, out, gamma, beta, eps)
                from_rows, rows_index, base = out, None, 0
            if not args[k] and src is not None:
                _gather(dst[k][i, start:end], src[k][i], index, start, end)

        b, n = dst[0].shape[:2]
        cuts = even_bands(0, n, CHUNK_ROWS, multiple_of=workers())
        run_spans(chunk_fused, [(k, i, s, e) for k in range(len(dst)) for i in range(b) for s, e in cuts])
        return

    def chunk(span: tuple[int, int, int, int]) -> None:
        k, i, start, end = span
        t = dst[k][i, start:end]
        if src is not None and index is None:
            t.copy_(src[k][i, start:end])
        elif src is not None:
            torch.index_select(src[k][i], 0, index[start:end], out=t)
        for fn in fns[k]:
            t.copy_(fn(t))

    b, n = dst[0].shape[:2]
    cuts = even_bands(0, n, CHUNK_ROWS, multiple_of=workers())
    run_spans(chunk, [(k, i, s, e) for k in range(len(dst)) for i in range(b) for s, e in cuts])


# --------------------------------------------------------------------------- blocks
class _ShiftedWindows(nn.Module):
    """Cyclic shift / window partition bookkeeping shared by the two block kinds.

    ``attn_mask`` is a persistent buffer built for ``input_resolution`` (the
    official ``img_size`` 128) as in the official code; other sizes compute
    their mask on the fly (cached per size).
    """

    def __init__(self, input_resolution: tuple[int, int], ws: int, shift: int):
        super().__init__()
        self.input_resolution = tuple(input_resolution)
        if min(self.input_resolution) <= ws:
            ws, shift = min(self.input_resolution), 0
        self.ws, self.shift = ws, shift
        mask = shift_mask(*self.input_resolution, ws, shift) if shift > 0 else None
        self.register_buffer("attn_mask", mask)
        self._masks: dict[tuple[int, int, str], torch.Tensor] = {}

    def _mask(self, h: int, w: int, device: torch.device) -> torch.Tensor | None:
        if self.shift == 0:
            return None
        if (h, w) == self.input_resolution:
            return self.attn_mask
        key = (h, w, str(device))
        if key not in self._masks:
            self._masks[key] = shift_mask(h, w, self.ws, self.shift).to(device)
        return self._masks[key]

    def _to_windows(self, t: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, _, c = t.shape
        t = t.view(b, h, w, c)
        if self.shift:
            t = torch.roll(t, shifts=(-self.shift, -self.shift), dims=(1, 2))
        return window_partition(t, self.ws)

    def _from_windows(self, win: torch.Tensor, h: int, w: int) -> torch.Tensor:
        t = window_merge(win, self.ws, h, w)
        if self.shift:
            t = torch.roll(t, shifts=(self.shift, self.shift), dims=(1, 2))
        return t.reshape(t.shape[0], h * w, -1)

    # ---- fast path: tokens gathered in window order once, four contiguous window groups, fused attention
    def _order(self, h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
        """Token permutation into window order, its inverse, and the window count of each group.

        Window order = the (cyclically shifted) map cut into ws×ws windows, grouped
        as interior windows, last window row, last window column, corner (one group
        of every window when unshifted); inside a window, tokens row-major.  Cached per
        (size, window, shift, device) for all blocks together (:func:`window_order`).
        """
        return window_order(h, w, self.ws, self.shift, str(device))

    def _spans(self, counts: list[int]) -> list[tuple[int, int, int]]:
        """``(group, first token, end token)`` of chunks of at most :data:`CHUNK_WINDOWS` whole windows of one group
        (their number a multiple of the chunk workers, :func:`methods._row_bands.even_bands`)."""
        n, spans, start, threads = self.ws * self.ws, [], 0, workers()
        for g, c in enumerate(counts):
            cuts = even_bands(0, c, CHUNK_WINDOWS, multiple_of=threads)
            spans += [(g, start + s * n, start + e * n) for s, e in cuts]
            start += c * n
        return spans

    def _chunked(self, inplace: bool) -> bool:
        """Whether the in-place, chunk-by-chunk inference path applies (no autograd, no stochastic depth)."""
        return inplace and not _REFERENCE and not self.training and not torch.is_grad_enabled()

    def _group_masks(self, bias: torch.Tensor) -> list[torch.Tensor]:
        """(1, heads, N, N) additive masks of the window groups (bias + shifted-window mask of the kind)."""
        if not self.shift:
            return [bias.unsqueeze(0)]
        kinds = kind_masks(self.ws, self.shift).to(bias)
        return [(bias + kinds[i]).unsqueeze(0) for i in (0, 2, 1, 3)]

    def _chunk_masks(self, name: str, x: torch.Tensor) -> tuple[list[torch.Tensor] | None, list | None]:
        """Inference chunks: attention ``name``'s group masks (:meth:`_group_masks`) and their window-kernel form
        (:meth:`_WindowAttentionBase.kernel_masks`; then the torch masks are None, the kernel path does not use them),
        kept on the block between calls while its bias table is the same tensor, unchanged (its storage and version
        counter; ``load_state_dict`` and optimisers bump the counter) and the path is the same (dtype, device,
        inference mode, :func:`sdpa_attention`, a dispatch mode).  Making them costs ≈ 0.3 ms per attention and
        call (the bias gather, the kind masks, the transposes): ≈ 9 ms per 256² forward, serial before every
        chunked block.  Kept: ≤ 0.4 MB per attention (≈ 6 MB per network).  Same values."""
        attn = getattr(self, name)
        table = attn.relative_position_bias_table
        key = (table.data_ptr(), table._version, x.dtype, str(x.device), torch.is_inference_mode_enabled(), _KERNEL,
               torch._C._len_torch_dispatch_stack() > 0)
        kept = self.__dict__.setdefault("_kept_masks", {})
        found = kept.get(name)
        if found is not None and found[0] == key:
            return found[1]
        masks = self._group_masks(attn.bias())
        kmasks = attn.kernel_masks(masks, x)
        kept[name] = (key, (masks if kmasks is None else None, kmasks))
        return kept[name][1]

    def _windows(self, t: torch.Tensor, counts: list[int]) -> list[torch.Tensor]:
        """(B, HW, X) in window order → per group (B·n_g, N, X)."""
        b, n = t.shape[0], self.ws * self.ws
        out, start = [], 0
        for c in counts:
            out.append(t[:, start:start + c * n].reshape(b * c, n, t.shape[-1]))
            start += c * n
        return out

    @staticmethod
    def _unwindows(groups: list[torch.Tensor], b: int) -> torch.Tensor:
        """Inverse of :meth:`_windows`: per group (B·n_g, N, X) → (B, HW, X) in window order."""
        parts = [g.reshape(b, -1, g.shape[-1]) for g in groups]
        return parts[0] if len(parts) == 1 else torch.cat(parts, 1)


class SwinTransformerBlock(_ShiftedWindows):
    """Pre-LN (S)W-MSA + MLP with residuals: ``norm1``, ``attn``, ``norm2``, ``mlp``."""

    def __init__(self, dim: int, input_resolution: tuple[int, int], heads: int, ws: int, shift: int,
                 mlp_ratio: float, drop_path: float):
        super().__init__(input_resolution, ws, shift)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, self.ws, heads)
        self.drop_path = _drop_path(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        h, w = size
        if _REFERENCE:
            win = self.attn(self._to_windows(self.norm1(x), h, w), self._mask(h, w, x.device))
            x = x + self.drop_path(self._from_windows(win, h, w))
            return x + self.drop_path(self.mlp(self.norm2(x)))
        perm, inv, counts = self._order(h, w, x.device)
        return self.forward_windowed(x.index_select(1, perm), counts, inplace=True).index_select(1, inv)

    def forward_windowed(self, x: torch.Tensor, counts: list[int], inplace: bool = False) -> torch.Tensor:
        """The block on tokens already in its window order (:meth:`_order`); returns them in that order.

        ``inplace=True`` lets inference (no autograd, eval mode) overwrite ``x`` chunk by chunk
        (:meth:`_forward_chunks`); the caller must own ``x``.
        """
        if self._chunked(inplace):
            return self._forward_chunks(x, counts)
        qkv = self._windows(self.attn.qkv(self.norm1(x)), counts)
        att = [self.attn.attend_windows(g, m) for g, m in zip(qkv, self._group_masks(self.attn.bias()))]
        x = x + self.drop_path(self.attn.proj(self._unwindows(att, x.shape[0])))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def _forward_chunks(self, x: torch.Tensor, counts: list[int], src: list[torch.Tensor] | None = None,
                        index: torch.Tensor | None = None) -> torch.Tensor:
        """Inference: the whole block on :data:`CHUNK_WINDOWS` windows at a time, residuals added into ``x``.

        Same operations as :meth:`forward_windowed` in the same order; every token's result depends only on
        its own window, so a chunk of whole windows of one group can go through norm, projections, attention,
        MLP and both residuals while its intermediates stay in cache (no full-map temporaries, no concatenation
        of the groups, GELU and residual adds in place).  Equal to round-off (GEMMs of other heights).
        With ``src = [map]`` and ``index``, each chunk first gathers its tokens ``map[:, index]`` into ``x``
        (the block's window order reached inside the chunk, by the chunk's worker).
        """
        n, c = self.ws * self.ws, x.shape[-1]
        attn, mlp = self.attn, self.mlp
        masks, kmasks = self._chunk_masks("attn", x)
        fused = _fused_norms(kmasks is not None, c, self.norm1, self.norm2)
        if fused:
            rows = [_np(m) for m in (src[0] if src is not None else x)]
            ops = _FusedOps(*rows, *(_np(m) for m in x))
            n1, n2 = ops.norm_args(self.norm1, attn.proj.bias), ops.norm_args(self.norm2, mlp.fc2.bias)
            qkv_w, qkv_b = attn.qkv.weight.detach(), _np(attn.qkv.bias)
            proj_wt, fc2_wt, w1t = attn.proj.weight.detach().t(), mlp.fc2.weight.detach().t(), _bias_column(mlp.fc1).t()
            order = ops.NO_INDEX if src is None or index is None else _np(index)
            scale = ops.kernel_scale(attn.scale)

        gemm = _one_call_gemm() if fused else 0
        if gemm:
            kernel, xmaps = _window_attention().self_chunk_kernel, [_np(m) for m in x]
            g1, b1, e1, proj_b = n1
            g2, b2, e2, fc2_b = n2
            qkv_wn, proj_wn, w1c = _np(qkv_w), _np(attn.proj.weight), _np(w1t.t())
            sizes = (max(e - s for _, s, e in self._spans(counts)), c, qkv_wn.shape[0], w1c.shape[0])

        def chunk_one_call(span: tuple[int, int, int, int]) -> None:
            # everything up to the hidden layer in one compiled call (the same operations as chunk_fused), then
            # torch's GELU and the fc2 product
            i, g, start, end = span
            (xn, qkv, att, xp, hidden, h) = _scratch(*sizes)[0]
            kernel(gemm, rows[i], order, start, end, xmaps[i], g1, b1, e1, proj_b, qkv_wn, qkv_b, kmasks[g], scale,
                   kmasks[g].shape[0], proj_wn, g2, b2, e2, fc2_b, w1c, xn, qkv, att, xp, hidden)
            x[i, start:end].addmm_(torch.ops.aten.gelu_(h[:end - start]), fc2_wt)

        def chunk_fused(span: tuple[int, int, int, int]) -> None:
            # gather + norm1 + proj bias in one pass, norm2 + fc2 bias in one pass (in place)
            i, g, start, end = span
            t = x[i, start:end]
            tn = t.numpy()
            xn = ops.norm(n1, rows[i], order, start, tn, c)
            q = torch.mm(qkv_w, xn.t()).numpy()
            t.addmm_(ops.attend(q, qkv_b, 0, q, qkv_b, c, q, qkv_b, 2 * c, kmasks[g], scale), proj_wt)
            xn = ops.norm(n2, tn, ops.NO_INDEX, 0, tn, ops.PADDED)
            t.addmm_(torch.ops.aten.gelu_(torch.mm(xn, w1t)), fc2_wt)

        def chunk(span: tuple[int, int, int, int]) -> None:
            i, g, start, end = span
            t = x[i, start:end]
            if src is not None:
                _gather(t, src[0][i], index, start, end)
            if kmasks is not None:
                qkv = attn.qkv.channel_major(self.norm1(t))
                att = attn._kernel(qkv, attn.qkv, 0, qkv, attn.qkv, c, qkv, attn.qkv, 2 * c, kmasks[g])
            else:
                att = attn.attend_windows(attn.qkv(self.norm1(t)).view(-1, n, 3 * c), masks[g]).view(-1, c)
            attn.proj.accumulate_(t, att)
            mlp.fc2.accumulate_(t, torch.ops.aten.gelu_(mlp.fc1(self.norm2(t))))

        # per batch item (HW, C), contiguous, cut into chunks
        body = (chunk_one_call if gemm else chunk_fused) if fused else chunk
        run_spans(body, [(i, *span) for i in range(x.shape[0]) for span in self._spans(counts)])
        return x


class CrossSwinTransformerBlock(_ShiftedWindows):
    """Two streams; A attends to B (``attn_A``) and B to A (``attn_B``), each with its own norms, MLP, residual."""

    def __init__(self, dim: int, input_resolution: tuple[int, int], heads: int, ws: int, shift: int,
                 mlp_ratio: float, drop_path: float):
        super().__init__(input_resolution, ws, shift)
        hidden = int(dim * mlp_ratio)
        self.norm1_A = nn.LayerNorm(dim)
        self.norm1_B = nn.LayerNorm(dim)
        self.attn_A = CrossWindowAttention(dim, self.ws, heads)
        self.attn_B = CrossWindowAttention(dim, self.ws, heads)
        self.drop_path_A = _drop_path(drop_path)
        self.drop_path_B = _drop_path(drop_path)
        self.norm2_A = nn.LayerNorm(dim)
        self.norm2_B = nn.LayerNorm(dim)
        self.mlp_A = Mlp(dim, hidden)
        self.mlp_B = Mlp(dim, hidden)

    def forward(self, x: torch.Tensor, y: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = size
        if _REFERENCE:
            mask = self._mask(h, w, x.device)
            xw = self._to_windows(self.norm1_A(x), h, w)
            yw = self._to_windows(self.norm1_B(y), h, w)
            x = x + self.drop_path_A(self._from_windows(self.attn_A(xw, yw, mask), h, w))
            y = y + self.drop_path_B(self._from_windows(self.attn_B(yw, xw, mask), h, w))
            x = x + self.drop_path_A(self.mlp_A(self.norm2_A(x)))
            y = y + self.drop_path_B(self.mlp_B(self.norm2_B(y)))
            return x, y
        perm, inv, counts = self._order(h, w, x.device)
        x, y = self.forward_windowed(x.index_select(1, perm), y.index_select(1, perm), counts, inplace=True)
        return x.index_select(1, inv), y.index_select(1, inv)

    def forward_windowed(self, x: torch.Tensor, y: torch.Tensor, counts: list[int],
                         inplace: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The block on both streams already in its window order (:meth:`_order`); returns them in that order.

        ``inplace=True``: as :meth:`SwinTransformerBlock.forward_windowed` (inference overwrites ``x``, ``y``).
        """
        if self._chunked(inplace):
            return self._forward_chunks(x, y, counts)
        b = x.shape[0]
        xn, yn = self.norm1_A(x), self.norm1_B(y)
        # A queries B (q from x, k/v from y) and B queries A (q from y, k/v from x)
        att_a = [self.attn_A.attend_windows(q, kv, m) for q, kv, m in zip(
            self._windows(self.attn_A.q(xn), counts), self._windows(self.attn_A.kv(yn), counts),
            self._group_masks(self.attn_A.bias()))]
        att_b = [self.attn_B.attend_windows(q, kv, m) for q, kv, m in zip(
            self._windows(self.attn_B.q(yn), counts), self._windows(self.attn_B.kv(xn), counts),
            self._group_masks(self.attn_B.bias()))]
        x = x + self.drop_path_A(self.attn_A.proj(self._unwindows(att_a, b)))
        y = y + self.drop_path_B(self.attn_B.proj(self._unwindows(att_b, b)))
        x = x + self.drop_path_A(self.mlp_A(self.norm2_A(x)))
        y = y + self.drop_path_B(self.mlp_B(self.norm2_B(y)))
        return x, y

    def _forward_chunks(self, x: torch.Tensor, y: torch.Tensor, counts: list[int],
                        src: list[torch.Tensor] | None = None,
                        index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference, chunk by chunk in place (see :meth:`SwinTransformerBlock._forward_chunks`, also for
        ``src = [map_x, map_y]`` and ``index``): both attentions of a chunk read its normed tokens before
        either residual is added."""
        n, c = self.ws * self.ws, x.shape[-1]
        (masks_a, kmasks_a), (masks_b, kmasks_b) = self._chunk_masks("attn_A", x), self._chunk_masks("attn_B", x)

        def attend(attn: CrossWindowAttention, xn: torch.Tensor, yn: torch.Tensor, g: int, masks: list[torch.Tensor],
                   kmasks: list | None) -> torch.Tensor:
            if kmasks is not None:
                kv = attn.kv.channel_major(yn)
                return attn._kernel(attn.q.channel_major(xn), attn.q, 0, kv, attn.kv, 0, kv, attn.kv, c, kmasks[g])
            return attn.attend_windows(attn.q(xn).view(-1, n, c), attn.kv(yn).view(-1, n, 2 * c), masks[g]).view(-1, c)

        def chunk(span: tuple[int, int, int, int]) -> None:
            i, g, start, end = span
            tx, ty = x[i, start:end], y[i, start:end]
            if src is not None:
                _gather(tx, src[0][i], index, start, end)
                _gather(ty, src[1][i], index, start, end)
            xn, yn = self.norm1_A(tx), self.norm1_B(ty)
            att_a = attend(self.attn_A, xn, yn, g, masks_a, kmasks_a)
            att_b = attend(self.attn_B, yn, xn, g, masks_b, kmasks_b)
            self.attn_A.proj.accumulate_(tx, att_a)
            self.attn_B.proj.accumulate_(ty, att_b)
            self.mlp_A.fc2.accumulate_(tx, torch.ops.aten.gelu_(self.mlp_A.fc1(self.norm2_A(tx))))
            self.mlp_B.fc2.accumulate_(ty, torch.ops.aten.gelu_(self.mlp_B.fc1(self.norm2_B(ty))))

        fused = _fused_norms(kmasks_a is not None and kmasks_b is not None, c, self.norm1_A, self.norm1_B,
                             self.norm2_A, self.norm2_B)
        if fused:
            rows_x = [_np(m) for m in (src[0] if src is not None else x)]
            rows_y = [_np(m) for m in (src[1] if src is not None else y)]
            ops = _FusedOps(*rows_x, *rows_y, *(_np(m) for m in x), *(_np(m) for m in y))
            n1a, n1b = ops.norm_args(self.norm1_A, self.attn_A.proj.bias), ops.norm_args(self.norm1_B, self.attn_B.proj.bias)
            n2a, n2b = ops.norm_args(self.norm2_A, self.mlp_A.fc2.bias), ops.norm_args(self.norm2_B, self.mlp_B.fc2.bias)
            order = ops.NO_INDEX if src is None or index is None else _np(index)
            # per attention: q weight, its bias, kv weight, its bias, proj weight transposed, kernel scale
            layers = [(a.q.weight.detach(), _np(a.q.bias), a.kv.weight.detach(), _np(a.kv.bias),
                       a.proj.weight.detach().t(), ops.kernel_scale(a.scale)) for a in (self.attn_A, self.attn_B)]
            # per stream, the products that read its normed tokens stacked into one (180, 60) weight: A's q and B's
            # k/v for x, B's q and A's k/v for y (one GEMM instead of two; every row the same dot products, the
            # same bits), with the biases stacked alike (the kernel reads row r's bias at r)
            (qa, qab, kva, kvab, _, _), (qb, qbb, kvb, kvbb, _, _) = layers
            stacked = [(torch.cat([qa, kvb]), np.concatenate([qab, kvbb])), (torch.cat([qb, kva]), np.concatenate([qbb, kvab]))]
            mlps = [(n2a, _bias_column(self.mlp_A.fc1).t(), self.mlp_A.fc2.weight.detach().t()),
                    (n2b, _bias_column(self.mlp_B.fc1).t(), self.mlp_B.fc2.weight.detach().t())]

        def cross(layer: tuple, sq: np.ndarray, sqb: np.ndarray, skv: np.ndarray, skvb: np.ndarray, mask_t) -> torch.Tensor:
            # q: rows 0 … c − 1 of the querying stream's stacked product; k, v: rows c … 3c − 1 of the other's
            return ops.attend(sq, sqb, 0, skv, skvb, c, skv, skvb, 2 * c, mask_t, layer[5])

        gemm = _one_call_gemm() if fused else 0
        if gemm:
            kernel = _window_attention().cross_chunk_kernel
            xmaps, ymaps = [_np(m) for m in x], [_np(m) for m in y]
            (w_x, wb_x), (w_y, wb_y) = [(_np(w), b) for w, b in stacked]
            w1c_x, w1c_y = (_np(w1t.t()) for _, w1t, _ in mlps)
            sizes = (max(e - s for _, s, e in self._spans(counts)), c, w_x.shape[0], w1c_x.shape[0], 2)
            per_call = (*n1a, *n1b, w_x, wb_x, w_y, wb_y)
            after = (_np(self.attn_A.proj.weight), _np(self.attn_B.proj.weight), *n2a, *n2b, w1c_x, w1c_y)

        def chunk_one_call(span: tuple[int, int, int, int]) -> None:
            # everything up to the hidden layers in one compiled call (the same operations as chunk_fused), then
            # torch's GELU and the fc2 products
            i, g, start, end = span
            (xn, sx, att_a, xp, hx, tx), (yn, sy, att_b, yp, hy, ty) = _scratch(*sizes)[:2]
            kernel(gemm, rows_x[i], rows_y[i], order, start, end, xmaps[i], ymaps[i], *per_call, kmasks_a[g],
                   kmasks_b[g], layers[0][5], layers[1][5], kmasks_a[g].shape[0], *after, xn, yn, sx, sy, att_a, att_b,
                   xp, yp, hx, hy)
            t = end - start
            x[i, start:end].addmm_(torch.ops.aten.gelu_(tx[:t]), mlps[0][2])
            y[i, start:end].addmm_(torch.ops.aten.gelu_(ty[:t]), mlps[1][2])

        def chunk_fused(span: tuple[int, int, int, int]) -> None:
            # per stream: gather + norm1 + proj bias in one pass, norm2 + fc2 bias in one pass (in place)
            i, g, start, end = span
            tx, ty = x[i, start:end], y[i, start:end]
            txn, tyn = tx.numpy(), ty.numpy()
            xn = ops.norm(n1a, rows_x[i], order, start, txn, c)
            yn = ops.norm(n1b, rows_y[i], order, start, tyn, c)
            sx, sy = torch.mm(stacked[0][0], xn.t()).numpy(), torch.mm(stacked[1][0], yn.t()).numpy()
            att_a = cross(layers[0], sx, stacked[0][1], sy, stacked[1][1], kmasks_a[g])
            att_b = cross(layers[1], sy, stacked[1][1], sx, stacked[0][1], kmasks_b[g])
            tx.addmm_(att_a, layers[0][4])
            ty.addmm_(att_b, layers[1][4])
            for t, tn, (n2, w1t, fc2_wt) in ((tx, txn, mlps[0]), (ty, tyn, mlps[1])):
                xn = ops.norm(n2, tn, ops.NO_INDEX, 0, tn, ops.PADDED)
                t.addmm_(torch.ops.aten.gelu_(torch.mm(xn, w1t)), fc2_wt)

        spans = self._spans(counts)
        body = (chunk_one_call if gemm else chunk_fused) if fused else chunk
        run_spans(body, [(i, *span) for i in range(x.shape[0]) for span in spans])
        return x, y


class BasicLayer(nn.Module):
    """``blocks``: ``depth`` Swin blocks, even ones unshifted, odd ones shifted by ws // 2."""

    def __init__(self, block: type, dim: int, input_resolution: tuple[int, int], depth: int, heads: int,
                 ws: int, mlp_ratio: float, drop_path: list[float]):
        super().__init__()
        self.blocks = nn.ModuleList(
            block(dim, input_resolution, heads, ws, 0 if i % 2 == 0 else ws // 2, mlp_ratio, drop_path[i])
            for i in range(depth))

    def forward(self, *streams_and_size, consume: bool = False, epilogue: list[tuple[nn.Module, ...]] | None = None,
                order_in: Order = None, order_out: Order = None):
        """``blocks`` on the streams (B, HW, C), then ``epilogue[k]`` (token-wise modules, in order) on stream ``k``.

        Inference only (:meth:`_forward_lean`): ``consume=True`` hands the caller's stream tensors over (they
        are overwritten), and the streams may come and go in a window order (``order_in``/``order_out``,
        see :data:`Order`) instead of image order.
        """
        *streams, size = streams_and_size
        if self.blocks[0]._chunked(True):
            streams = self._forward_lean(list(streams), size, consume, epilogue, order_in, order_out)
            return tuple(streams) if len(streams) > 1 else streams[0]
        if order_in is not None or order_out is not None:
            raise ValueError("window-ordered streams are for inference only (eval mode, no autograd)")
        if _REFERENCE:
            for blk in self.blocks:
                out = blk(*streams, size)
                streams = out if isinstance(out, tuple) else (out,)
        else:
            # tokens go from one block's window order to the next one's in a single gather
            h, w = size
            back = None
            for blk in self.blocks:
                perm, inv, counts = blk._order(h, w, streams[0].device)
                index = perm if back is None else back[perm]
                out = blk.forward_windowed(*(s.index_select(1, index) for s in streams), counts, inplace=True)
                streams, back = (out if isinstance(out, tuple) else (out,)), inv
            streams = tuple(s.index_select(1, back) for s in streams)
        if epilogue:
            streams = tuple(_apply(fns, s) for fns, s in zip(epilogue, streams))
        return tuple(streams) if len(streams) > 1 else streams[0]

    @property
    def first_order(self) -> Order:
        """The window order of the first block (where :meth:`_forward_lean` can start in place)."""
        return (self.blocks[0].ws, self.blocks[0].shift)

    def handover(self, order_in: Order, nxt: Order) -> Order:
        """The order in which :meth:`_forward_lean`, given streams in ``order_in`` (handed over), should hand them to
        a consumer that works in ``nxt``: the last block's own window order when the result then lies in the
        caller's tensors (an even number of gathers between the blocks' maps, see :meth:`_forward_lean`), so the
        whole-map gather at the end is left out and the consumer gathers from there inside its own first pass
        (a Swin group's first norm pass, as between any two blocks); else ``nxt`` (the final gather goes into
        the caller's map, as before; holding a third map instead would raise the 1024² peak by a map)."""
        order, gathers = order_in, 0
        for blk in self.blocks:
            key = (blk.ws, blk.shift)
            gathers, order = gathers + (key != order), key
        return order if len(self.blocks) and gathers % 2 == 0 else nxt

    def _forward_lean(self, streams: list[torch.Tensor], size: tuple[int, int], consume: bool,
                      epilogue: list[tuple[nn.Module, ...]] | None, order_in: Order,
                      order_out: Order) -> list[torch.Tensor]:
        """Inference in two token maps per stream: each block's chunks gather their tokens from the other map.

        Block ``k`` reads the map written by block ``k − 1`` through the composed index between their window
        orders (:func:`gather_index`) chunk by chunk into its own map and computes there in place; the maps
        alternate, so a stream never holds more than two maps (the caller's, when ``consume``, is one of
        them), the gathers run on the chunk workers, and each chunk is computed while its gathered tokens are
        in cache.  A handed-over stream already in the first block's order is computed in place; the last
        pass gathers into ``order_out`` and applies ``epilogue`` on the way.  With an even depth, a stream
        handed over in :attr:`first_order` comes back in the caller's own tensor.  Same numbers as the
        whole-map gathers (a gather is a copy).
        """
        h, w = size
        dev = streams[0].device
        device = str(dev)
        src = [s.contiguous() for s in streams]
        src_owned = consume or any(a is not b for a, b in zip(src, streams))
        del streams
        spare, order = None, order_in

        def take_spare() -> list[torch.Tensor]:
            return spare if spare is not None else [torch.empty(t.shape, dtype=t.dtype, device=dev) for t in src]

        for blk in self.blocks:
            counts = blk._order(h, w, dev)[2]
            key = (blk.ws, blk.shift)
            index = gather_index(h, w, order, key, device)
            if index is None and src_owned:
                blk._forward_chunks(*src, counts)
            else:
                dst = take_spare()
                blk._forward_chunks(*dst, counts, src=src, index=index)
                spare, src, src_owned = (src if src_owned else None), dst, True
            order = key
        fns = epilogue or [()] * len(src)
        index = gather_index(h, w, order, order_out, device)
        if index is None:
            if any(fns):
                token_rows(src, fns)
            return src
        dst = take_spare()
        token_rows(dst, fns, src=src, index=index)
        return dst


def _apply(fns: tuple[nn.Module, ...], t: torch.Tensor) -> torch.Tensor:
    for fn in fns:
        t = fn(t)
    return t
