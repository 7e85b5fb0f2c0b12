"""The compiled inference chunks of the Swin blocks: their kernel modules, operands and scratch.

:mod:`methods._swin_blocks` runs each block of the inference path chunk by chunk; where the compiled passes
apply (:mod:`methods._window_attention`, :mod:`methods._window_attention_norm`), a block call resolves their
operands once (:class:`_FusedOps`), a chunk reuses its thread's scratch (:func:`_scratch`), and a chunk runs
from its gather to the MLP's hidden layer in one call where torch's own ``sgemm_`` is found
(:func:`_one_call_gemm`).  The kernel modules import numba, so they are imported on first use.
"""
from __future__ import annotations

import threading

import numpy as np
import torch
from torch import nn


def _window_attention():
    """:mod:`methods._window_attention`, imported on first use (it imports numba)."""
    from . import _window_attention as module

    return module


def _window_norm():
    """:mod:`methods._window_attention_norm`, imported on first use (it imports numba)."""
    from . import _window_attention_norm as module

    return module


def _np(t: torch.Tensor):
    """The tensor's numpy view (detached: inference operands only)."""
    return t.detach().numpy()


def _bias_column(layer: nn.Linear) -> torch.Tensor:
    """``[W | b | 0 0 0]`` (out, 64) of a 60-input layer: its product with a padded normed row (…, 1, 0, 0, 0)
    is ``W·x + b`` with the bias added inside the GEMM (the last term of each dot product, as ``add_`` after it:
    the same bits measured), which spares a pass over the (T, 120) ``fc1`` output."""
    w = layer.weight.detach()
    return torch.cat([w, layer.bias.detach()[:, None], w.new_zeros(w.shape[0], _window_norm().PADDED - w.shape[1] - 1)], 1)


class _FusedOps:
    """The compiled passes of the fused inference chunks, with their operands resolved once per block call.

    A block call makes one of these (modules imported, γ/β/biases as numpy views, the kernel's scale), so that
    a chunk does only its arithmetic: the compiled norm pass and window kernel are called directly (their
    public wrappers check shapes and layouts on every call; here the token maps are checked once per block
    call, :meth:`check`, and every other operand is made by the chunk itself, C-contiguous float32).  Same
    calls, same bits.
    """

    def __init__(self, *maps: np.ndarray):
        norm, attention = _window_norm(), _window_attention()
        self._norm_kernel, self._attend_kernel = norm.norm_rows_kernel, attention.attend_kernel
        self.PADDED, self.NO_INDEX = norm.PADDED, norm._NO_INDEX
        self._log2e, self._head_dim = attention._LOG2E, attention.HEAD_DIM
        if not all(m.dtype == np.float32 and m.flags.c_contiguous and m.shape[-1] == norm.CHANNELS for m in maps):
            raise ValueError("fused chunks: C-contiguous float32 token maps of 60 channels expected")

    @staticmethod
    def norm_args(norm: nn.LayerNorm, bias: torch.Tensor) -> tuple:
        """``norm``'s γ, β (numpy views), ε as float32, and the residual ``bias`` (numpy view)."""
        return _np(norm.weight), _np(norm.bias), np.float32(norm.eps), _np(bias)

    def kernel_scale(self, scale: float) -> np.float32:
        """The window kernel's query scale (``scale·log₂e``, as :func:`methods._window_attention.attend_transposed`)."""
        return np.float32(scale * self._log2e)

    def norm(self, args: tuple, src: np.ndarray, index: np.ndarray, base: int, resid: np.ndarray,
             width: int) -> torch.Tensor:
        """LayerNorm (``args`` from :meth:`norm_args`) of rows ``src[index[base:base + T]]`` (``src[base:base + T]``
        when ``index`` is empty) as a new (T, ``width``) tensor, those rows plus the bias written into
        ``resid`` (T, C): one compiled pass (:func:`methods._window_attention_norm.norm_rows`, without its checks).
        ``width`` 64: the normed rows end in 1, 0, 0, 0 (for :func:`_bias_column`'s weights)."""
        gamma, beta, eps, bias = args
        xn = torch.empty(resid.shape[0], width)
        self._norm_kernel(src, index, base, resid, bias, xn.numpy(), gamma, beta, eps)
        return xn

    def attend(self, q: np.ndarray, qb: np.ndarray, qo: int, k: np.ndarray, kb: np.ndarray, ko: int, v: np.ndarray,
               vb: np.ndarray, vo: int, mask_t: np.ndarray, scale: np.float32) -> torch.Tensor:
        """:meth:`_WindowAttentionBase._kernel` without the wrapper's checks: the (T, C) attention of the
        channel-major products (rows from ``qo``/``ko``/``vo``, biases ``qb``/``kb``/``vb``) as a transposed view."""
        heads = mask_t.shape[0]
        out = torch.empty(heads * self._head_dim, q.shape[1])
        self._attend_kernel(q, qb, qo, k, kb, ko, v, vb, vo, mask_t, scale, heads, out.numpy())
        return out.t()


#: per thread, the scratch of the one-call chunks (:func:`_scratch`)
_SCRATCH = threading.local()


def _scratch(rows: int, channels: int, qkv_rows: int, hidden: int, streams: int = 1) -> list[tuple]:
    """This thread's scratch for the one-call chunks (:func:`methods._window_attention.self_chunk_kernel`,
    ``cross_chunk_kernel``), per stream, for at least ``rows`` tokens: numpy views of ``xn`` (rows, C), ``qkv``
    (qkv_rows·rows,), ``att`` (C·rows,), ``xp`` (rows, 64) and the hidden layer (rows, hidden), plus the hidden layer
    as a tensor.  Made on a thread's first chunk and kept for the thread instead of new tensors in every chunk; the
    self blocks use the cross blocks' first stream (≈ 8 MB per stream for 4,096 tokens: ≤ 16 MB per thread)."""
    key = (channels, qkv_rows, hidden)
    kept = _SCRATCH.__dict__.setdefault("buffers", {})
    found = kept.get(key)
    if found is None or found[0] < rows or len(found[1]) < streams:
        rows, streams = max(rows, found[0] if found else 0), max(streams, len(found[1]) if found else 0)
        padded = _window_norm().PADDED
        made = []
        with torch.inference_mode(False):      # kept across calls: no inference tensor (in place under no_grad too)
            for _ in range(streams):
                h = torch.empty(rows, hidden)
                made.append((torch.empty(rows, channels).numpy(), torch.empty(qkv_rows * rows).numpy(),
                             torch.empty(channels * rows).numpy(), torch.empty(rows, padded).numpy(), h.numpy(), h))
        found = kept[key] = (rows, made)
    return found[1]


def _one_call_gemm() -> int:
    """:func:`methods._window_attention.gemm_address`, or 0 while torch's float32 products may run in reduced
    precision (``torch.backends.mkldnn.matmul.fp32_precision`` other than ``"none"`` / ``"ieee"``, or a
    ``float32_matmul_precision`` below ``"highest"``: ``mm`` then goes through oneDNN's bf16 path, which the one-call
    chunks' ``sgemm_`` would not follow).  Checked per block call."""
    matmul = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)
    precision = getattr(matmul, "fp32_precision", None)
    if precision is not None:
        if precision not in ("none", "ieee"):
            return 0
    elif torch.get_float32_matmul_precision() != "highest":
        return 0
    return _window_attention().gemm_address()
