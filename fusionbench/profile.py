"""Parameters and FLOPs of the torch methods (the runtime/FLOPs/params table).

Convention shared by every deep method (a class registered with ``uses_torch=True``):

* the instance exposes ``self.network``: the inference ``torch.nn.Module`` with its
  weights loaded, or a list/tuple of modules (e.g. an encoder and a decoder);
* it defines ``torch_inputs(size=(H, W)) -> tuple[torch.Tensor, ...]``: the tensors of
  **one forward pass** that fuses one pair of H×W sources (both sources, in the
  layout the network takes: one 1×2×H×W tensor, or two 1×C×H×W tensors, ...);
* the pass is ``network(*inputs)`` for a single module.  An instance whose pass is
  not a single module call (a list of modules, or extra steps in torch) defines
  ``torch_forward(*inputs)`` instead, which is then used.

:func:`params` is the sum of ``numel()`` over the parameters of those modules (each
tensor counted once; buffers such as BatchNorm statistics excluded; only inference
modules: no loss networks).  :func:`gflops` runs that one pass at ``size`` under
``torch.utils.flop_counter.FlopCounterMode`` inside ``torch.inference_mode()`` and
returns GFLOPs with **FLOPs = 2 × multiply-accumulates** (the counter's convention:
``mm``/``conv`` count 2·M·N·K; fused attention (``scaled_dot_product_attention``, the CPU
flash kernel included) counts its two matrix products, as an explicit ``q@kᵀ``/``@v`` would;
element-wise ops, norms, activations, pooling count 0; work done outside torch, e.g.
NumPy pre/post-processing, is not counted).  Both return
``None`` for methods that do not use torch.  ``tests/test_profile.py`` pins the
convention (a bias-free 3×3 conv 1→8 on 1×1×32×32 = 147,456 FLOPs).
"""
from __future__ import annotations

import statistics
from typing import Any, Iterable

from .method_registry import FusionMethod, create_method


def _resolve(method: str | FusionMethod) -> FusionMethod:
    return create_method(method) if isinstance(method, str) else method


def _torch_instance(method: str | FusionMethod) -> Any | None:
    m = _resolve(method)
    if not m.info.uses_torch:
        return None
    if not m.is_class:
        raise TypeError(f"{m.name}: a torch method must be a registered class exposing `network` for profiling")
    inst = m.instance
    if not hasattr(inst, "network"):
        raise TypeError(f"{m.name}: instance has no `network` attribute (see fusionbench.profile)")
    return inst


def _modules(network: Any) -> list[Any]:
    if isinstance(network, (list, tuple)):
        return list(network)
    return [network]


def count_parameters(modules: Iterable[Any]) -> int:
    """Sum of ``numel()`` over the parameters of ``modules`` (shared tensors counted once)."""
    seen: dict[int, int] = {}
    for module in modules:
        for p in module.parameters():
            seen[id(p)] = p.numel()
    return int(sum(seen.values()))


def params(method: str | FusionMethod) -> int | None:
    """Number of parameters of the method's inference network(s); ``None`` for non-torch methods."""
    inst = _torch_instance(method)
    if inst is None:
        return None
    return count_parameters(_modules(inst.network))


def _cpu_sdpa_flops(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, out_shape: Any = None,
                    **kwargs: Any) -> int:
    """FLOPs of the CPU flash-attention kernel: its two matrix products (torch's counter lacks this op)."""
    from torch.utils.flop_counter import sdpa_flop_count

    def four_d(shape: Any) -> tuple[int, ...]:
        *lead, h, n, d = shape
        b = 1
        for x in lead:
            b *= int(x)
        return (b, int(h), int(n), int(d))

    return sdpa_flop_count(four_d(query_shape), four_d(key_shape), four_d(value_shape))


def _addmm_inplace_flops(self_shape: Any, a_shape: Any, b_shape: Any, *args: Any, out_shape: Any = None,
                         **kwargs: Any) -> int:
    """FLOPs of the in-place ``addmm_`` (``t += a @ b``): its matrix product, as for ``addmm`` (torch's counter
    lacks the in-place op)."""
    from torch.utils.flop_counter import mm_flop

    return mm_flop(a_shape, b_shape)


def _extra_flop_formulas() -> dict[Any, Any]:
    import torch

    formulas: dict[Any, Any] = {torch.ops.aten.addmm_: _addmm_inplace_flops}
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is not None:
        formulas[op] = _cpu_sdpa_flops
    return formulas


def count_flops(fn: Any, *inputs: Any) -> int:
    """FLOPs (2×MAC) of ``fn(*inputs)`` counted by ``FlopCounterMode`` under ``inference_mode``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False, custom_mapping=_extra_flop_formulas())
    with torch.inference_mode(), counter:
        fn(*inputs)
    return int(counter.get_total_flops())


def gflops(method: str | FusionMethod, size: tuple[int, int] = (256, 256)) -> float | None:
    """GFLOPs (FLOPs = 2×MAC) of one forward pass fusing two H×W sources; ``None`` for non-torch methods."""
    inst = _torch_instance(method)
    if inst is None:
        return None
    return count_flops(_forward_of(inst), *inst.torch_inputs(tuple(size))) / 1e9


#: "FLOPs" per multiply-accumulate in the founding paper's Table 5 (Di et al. 2025), calibrated on its rows of
#: baselines run whole-image here: SDNet 2.4587 / 1.8728 GMAC = 1.313, MATR 4.2215 / 3.1908 GMAC = 1.323
#: (mean; ``methods/mopa/flops.py`` documents it, ``tests/methods/test_mopa.py`` re-measures both ratios)
PAPER_FLOPS_PER_MAC = 1.318


def gflops_conventions(method: str | FusionMethod, size: tuple[int, int] = (256, 256)) -> dict[str, float] | None:
    """One forward pass in both conventions: ``{"gmac", "gflops_2mac", "gflops_paper"}`` (``None``: not torch).

    ``gflops_2mac`` is :func:`gflops`; ``gflops_paper`` is GMAC × :data:`PAPER_FLOPS_PER_MAC`, comparable
    with the paper's Table 5 (``mopa``: 2.352 at 256² against the paper's 2.531).
    """
    g = gflops(method, size)
    if g is None:
        return None
    return {"gmac": g / 2, "gflops_2mac": g, "gflops_paper": g / 2 * PAPER_FLOPS_PER_MAC}


# --------------------------------------------------------------------------- throughput (issue 23)
def _forward_of(inst: Any) -> Any:
    """The callable one forward pass goes through: ``inst.torch_forward`` or the single module of ``inst.network``."""
    forward = getattr(inst, "torch_forward", None)
    if forward is None:
        modules = _modules(inst.network)
        if len(modules) != 1:
            raise TypeError("an instance with several modules in `network` must define torch_forward(*inputs)")
        forward = modules[0]
    return forward


def _best_seconds(fn: Any, *inputs: Any, repeat: int) -> float:
    import time

    import torch

    with torch.inference_mode():
        fn(*inputs)  # warm-up: lazy allocations, per-size caches, oneDNN primitive creation
        best = float("inf")
        for _ in range(max(1, repeat)):
            start = time.perf_counter()
            fn(*inputs)
            best = min(best, time.perf_counter() - start)
    return best


def forward_seconds(method: str | FusionMethod, size: tuple[int, int] = (256, 256), repeat: int = 3) -> float | None:
    """Best-of-``repeat`` wall time of the one forward pass that :func:`gflops` counts; ``None`` for non-torch methods.

    Run inside the method's own ``inference()`` context where it has one (its thread setting).
    """
    inst = _torch_instance(method)
    if inst is None:
        return None
    inputs = inst.torch_inputs(tuple(size))
    context = getattr(inst, "inference", None)
    if context is None:
        return _best_seconds(_forward_of(inst), *inputs, repeat=repeat)
    with context():
        return _best_seconds(_forward_of(inst), *inputs, repeat=repeat)


def gflops_per_s(method: str | FusionMethod, size: tuple[int, int] = (256, 256), repeat: int = 3) -> float | None:
    """Achieved GFLOP/s of the method's forward pass at ``size`` (:func:`gflops` / :func:`forward_seconds`)."""
    g = gflops(method, size)
    if g is None:
        return None
    return g / forward_seconds(method, size, repeat)


def conv_peak_gflops_per_s(size: tuple[int, int] = (256, 256), channels: int = 64, repeat: int = 5) -> float:
    """GFLOP/s of a plain 3×3 convolution on this machine: the reference the deep methods are compared with.

    ``torch.nn.functional.conv2d`` of a 1×C×H×W float32 input with a C×C×3×3 kernel,
    no bias, padding 1 (default layout, torch's current thread count); FLOPs =
    2·C²·9·H·W (the convention of :func:`count_flops`); best of ``repeat``.
    """
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, channels, *size, generator=g)
    w = torch.rand(channels, channels, 3, 3, generator=g)
    seconds = _best_seconds(lambda t: F.conv2d(t, w, padding=1), x, repeat=repeat)
    return 2.0 * channels * channels * 9 * size[0] * size[1] / seconds / 1e9


def fraction_of_conv_peak(method: str | FusionMethod, size: tuple[int, int] = (256, 256), rounds: int = 3,
                          repeat: int = 3) -> float | None:
    """The method's achieved GFLOP/s over the conv peak, as the median of ``rounds`` interleaved rounds.

    Each round reads :func:`conv_peak_gflops_per_s` and right after it times the method's forward pass
    (:func:`forward_seconds`, best of ``repeat``); the round's fraction is :func:`gflops` / seconds / peak.
    On a shared machine both readings move by ±20–30 % from minute to minute: a fraction from one
    reading of each can fall either side of a target that the method meets in most minutes, while the
    median of per-round fractions follows what the two readings share (issue 23, sessions 12–13:
    ``docs/fidelity.md``).  ``None`` for non-torch methods.
    """
    flops = gflops(method, size)
    if flops is None:
        return None
    fractions = []
    for _ in range(max(1, rounds)):
        peak = conv_peak_gflops_per_s()
        fractions.append(flops / forward_seconds(method, size, repeat) / peak)
    return float(statistics.median(fractions))
