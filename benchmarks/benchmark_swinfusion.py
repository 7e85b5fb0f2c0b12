"""asv: SwinFusion inference time at 256² and peak memory at 1024² (issue 23).

Targets: a 256² pair fused in ≤ 1.74 s on 2 threads (the founding paper's figure), and a worker under
2 GB of resident memory while fusing a 1024² pair.

``time_forward``: the network's forward pass on a 256² pair (mirror-padded to 264², as at inference) with
1 or 2 torch threads, weights loaded outside the timing.  ``time_fuse``: the runner's whole path
(``fuse_arrays``: colour protocol, padding, network, quantisation) on one Harvard MRI-PET test pair (or a
built-in pair where the data are absent).  ``track_peak_rss_1024``: peak resident memory (MiB) of a fresh
process fusing one 1024² pair (:func:`methods.swinfusion.peak_rss_mb`; includes the interpreter, torch and
the weights, as a runner worker).  ``WindowAttention``: one chunk of 64 windows (6 heads, head dimension 10,
shifted-window mask) through the compiled kernel of the inference path and through
``scaled_dot_product_attention`` (its fallback), one thread; ``track_gflops_per_s`` counts the two products
(2·2·64·64·10 FLOPs per window and head), as ``fusionbench.profile`` does.  ``WindowNorm``: a block's second
LayerNorm on one chunk (4,096 tokens, in place, plus the ``fc2`` bias into the residual) through the compiled
pass of ``methods/_window_attention_norm.py`` and through torch (``LayerNorm`` + ``add_``), one thread.
``SwinFusionInference`` takes ``norms``: ``compiled`` (the inference path) or ``torch`` (``torch_norms()``, the
session-8 path), for before/after figures in one run.

    asv run --python=same --set-commit-hash $(git rev-parse HEAD) --bench benchmark_swinfusion
"""
from __future__ import annotations

from ._data import data_roots
from ._settings import OneShot


def _pair():
    """The first Harvard MRI-PET test pair (from the first of :func:`~._data.data_roots` with Harvard data), else a
    built-in pair."""
    import fusionbench

    for root in data_roots():
        if (root / "harvard").is_dir():
            return fusionbench.create_dataset("harvard-mri-pet", data_dir=str(root)).select("test")[0]
    return fusionbench.create_dataset("builtin-mri-pet").pairs[0]


class SwinFusionInference:
    """Forward pass and whole fusion of one 256² pair, with 1 and 2 torch threads."""

    params = [[1, 2], ["compiled", "torch"]]
    param_names = ["threads", "norms"]
    timeout = 600
    number = 1
    repeat = 5
    warmup_time = 0
    processes = 1

    def setup(self, threads: int, norms: str) -> None:
        import contextlib

        from fusionbench.methods import _swin_blocks as blocks

        self._norms = blocks.torch_norms if norms == "torch" else contextlib.nullcontext
        import torch

        from fusionbench.io import load_image
        from fusionbench.method_registry import create_method


        self._threads = torch.get_num_threads()
        torch.set_num_threads(threads)
        self.method = create_method("swinfusion")
        self.net = self.method.instance.network
        self.inputs = self.method.instance.torch_inputs(256)
        pair = _pair()
        self.a, self.b = load_image(pair.a_path), load_image(pair.b_path)
        with torch.inference_mode(), self._norms():
            self.net(*self.inputs)                   # first call: order caches, allocator, kernels

    def teardown(self, threads: int, norms: str) -> None:
        import torch

        torch.set_num_threads(self._threads)

    def time_forward(self, threads: int, norms: str) -> None:
        import torch

        with torch.inference_mode(), self._norms():
            self.net(*self.inputs)

    def time_fuse(self, threads: int, norms: str) -> None:
        from fusionbench.api import fuse_arrays

        with self._norms():
            fuse_arrays(self.method, self.a, self.b)


class SwinFusionMemory(OneShot):
    """Peak resident memory of a fresh process fusing one 1024² pair (target: under 2 GB)."""

    params = [[1, 2]]
    param_names = ["threads"]
    timeout = 900

    def track_peak_rss_1024(self, threads: int) -> float:
        from fusionbench.methods.swinfusion import peak_rss_mb

        return peak_rss_mb(1024, threads)

    track_peak_rss_1024.unit = "MiB"  # 2**20 bytes (peak_rss_mb)


class WindowAttention:
    """One chunk (64 windows of 8×8, 6 heads of 10 channels, corner-window mask) of window attention, 1 thread:
    the compiled kernel (``kernel``) against ``scaled_dot_product_attention`` (``sdpa``), same inputs."""

    params = [["kernel", "sdpa"]]
    param_names = ["attention"]
    number = 20
    repeat = 5
    processes = 1

    def setup(self, attention: str) -> None:
        import numpy as np
        import torch

        from fusionbench.methods import _swin_windows as windows
        from fusionbench.methods import _window_attention as wa

        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)
        rng = np.random.default_rng(0)
        table = torch.from_numpy(rng.standard_normal((225, 6)).astype(np.float32) * 0.5)
        bias = table[windows.relative_position_index(8).reshape(-1)].reshape(64, 64, 6).permute(2, 0, 1)
        mask = (bias + windows.kind_masks(8, 4)[3]).contiguous()
        qkv_t = rng.standard_normal((180, 64 * 64)).astype(np.float32)
        scale = 10 ** -0.5
        if attention == "kernel":
            mask_t = np.ascontiguousarray(mask.numpy().transpose(0, 2, 1))
            out = np.empty((60, 64 * 64), np.float32)
            bias = np.zeros(180, np.float32)
            self.call = lambda: wa.attend_transposed(qkv_t, 0, qkv_t, 60, qkv_t, 120, mask_t, scale, out, bias, bias, bias)
        else:
            q, k, v = torch.from_numpy(qkv_t.T.copy()).view(64, 64, 3, 6, 10).permute(2, 0, 3, 1, 4)
            m = mask[None]
            self.call = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=scale)
        self.call()                                     # first call: compilation / disk cache, allocator

    def teardown(self, attention: str) -> None:
        import torch

        torch.set_num_threads(self._threads)

    def time_chunk(self, attention: str) -> None:
        self.call()

    def track_gflops_per_s(self, attention: str) -> float:
        import time

        best = float("inf")
        for _ in range(20):
            start = time.perf_counter()
            self.call()
            best = min(best, time.perf_counter() - start)
        return 64 * 6 * 2 * 2 * 64 * 64 * 10 / best / 1e9

    track_gflops_per_s.unit = "GFLOP/s"


class WindowNorm:
    """A block's second LayerNorm on one chunk (4,096 tokens of 60 channels, in place) plus the ``fc2`` bias into the
    residual, 1 thread: the compiled pass (``compiled``) against ``LayerNorm`` + ``add_`` (``torch``)."""

    params = [["compiled", "torch"]]
    param_names = ["norm"]
    number = 20
    repeat = 5
    processes = 1

    def setup(self, norm: str) -> None:
        import numpy as np
        import torch

        from fusionbench.methods import _window_attention_norm as wn

        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)
        g = torch.Generator().manual_seed(0)
        t = torch.randn(4096, 60, generator=g) * 2 + 0.5
        ln = torch.nn.LayerNorm(60)
        bias = torch.randn(60, generator=g)
        if norm == "compiled":
            tn, xn = t.numpy(), np.empty((4096, 60), np.float32)
            w, b, c = ln.weight.detach().numpy(), ln.bias.detach().numpy(), bias.numpy()
            self.call = lambda: wn.norm_rows(tn, None, 0, tn, c, xn, w, b, ln.eps)
        else:
            def call():
                with torch.inference_mode():
                    out = ln(t)
                    t.add_(bias)
                return out
            self.call = call
        self.call()                                     # first call: compilation / disk cache, allocator

    def teardown(self, norm: str) -> None:
        import torch

        torch.set_num_threads(self._threads)

    def time_chunk(self, norm: str) -> None:
        self.call()
