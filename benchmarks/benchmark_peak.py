"""asv: this machine's convolution throughput, the yardstick of the deep methods' GFLOP/s.

``track_conv3x3_gflops_per_s`` is a plain 3×3 convolution (64→64 channels, one
256×256 map, float32, no bias, torch's thread count) timed best-of-5, FLOPs = 2×MAC
(:func:`fusionbench.profile.conv_peak_gflops_per_s`).  ``benchmark_methods`` tracks
each deep method's achieved GFLOP/s (``track_gflops_per_s``) and its fraction of this
peak measured in the same process (``track_fraction_of_conv_peak``: the median of three
interleaved rounds of a yardstick reading and the forward pass), so the ratio holds on any
machine.  ``time_conv3x3`` is the same convolution as an asv timing.
``DeepOneThread`` tracks the same GFLOP/s and fraction on **one** torch thread (peak and
method both on one thread), the setting of a runner worker (issue 23).
"""
from __future__ import annotations

from ._settings import _SwitchedSchedule


class ConvPeak:
    """A plain 3×3 convolution, 1×64×256×256 → 1×64×256×256."""

    params = [[64]]
    param_names = ["channels"]
    timeout = 300
    processes = 1

    def setup(self, channels: int) -> None:
        import torch

        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(1, channels, 256, 256, generator=g)
        self.w = torch.rand(channels, channels, 3, 3, generator=g)

    def time_conv3x3(self, channels: int) -> None:
        import torch
        import torch.nn.functional as F

        with torch.inference_mode():
            F.conv2d(self.x, self.w, padding=1)

    def track_conv3x3_gflops_per_s(self, channels: int) -> float:
        from fusionbench.profile import conv_peak_gflops_per_s

        return float(conv_peak_gflops_per_s((256, 256), channels))

    track_conv3x3_gflops_per_s.unit = "GFLOP/s"


def _deep_methods() -> list[str]:
    """The available registered torch methods (``$FUSIONBENCH_BENCH_METHODS`` patterns restrict them)."""
    import os

    from fusionbench.method_registry import create_method, list_methods

    patterns = os.environ.get("FUSIONBENCH_BENCH_METHODS", "*").split(",")
    names = list_methods([p.strip() for p in patterns if p.strip()])
    return [n for n in names
            if create_method(n).info.uses_torch and create_method(n).unavailable_reason() is None]


class DeepOneThread:
    """Each deep method's forward pass at 256² on **one** torch thread, as a runner worker pays it (issue 23).

    ``track_gflops_per_s_1thread``: counted FLOPs (:func:`fusionbench.profile.gflops`) over the best-of-3
    forward time; ``track_fraction_of_conv_peak_1thread``: the same over the plain 3×3 64→64 convolution
    timed on one thread in the same process just before, the median of three such interleaved rounds
    (:func:`fusionbench.profile.fraction_of_conv_peak`).  ``benchmark_methods`` tracks the same at
    torch's default thread count (Table 5).
    """

    params = [_deep_methods()]
    param_names = ["method"]
    timeout = 600
    processes = 1
    number = 1
    repeat = 1

    def setup(self, method: str) -> None:
        import torch

        from fusionbench.method_registry import create_method

        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)
        self.method = create_method(method)
        self.method.instance  # network built and weights loaded outside the timing

    def teardown(self, method: str) -> None:
        import torch

        torch.set_num_threads(self._threads)

    def track_gflops_per_s_1thread(self, method: str) -> float:
        from fusionbench import profile

        return float(profile.gflops_per_s(self.method, size=(256, 256)))

    track_gflops_per_s_1thread.unit = "GFLOP/s"

    def track_fraction_of_conv_peak_1thread(self, method: str) -> float:
        from fusionbench import profile

        return float(profile.fraction_of_conv_peak(self.method, size=(256, 256)))

    track_fraction_of_conv_peak_1thread.unit = "fraction"


class MatrMergeSchedule(_SwitchedSchedule):
    """MATR's 256² forward at torch's thread count with the graph's three convolutions of ``x0`` (the same gated
    kernels) run as one 16→48 convolution (its inference since session 11, ``methods/matr.py``,
    ``MERGE_RECOMPUTED``) or as three 16→16 ones: the fraction of the plain 3×3 64→64 convolution's GFLOP/s
    timed just before in the same process, so that an idle run says which is faster at two threads (issue 23).
    The two give the same fused map (bit-identical on this machine, session 11)."""

    params = [["merged 16->48", "three 16->16"]]
    param_names = ["phase 2"]
    method_name = "matr"

    def _switch(self) -> tuple[object, str]:
        from fusionbench.methods import _matr_net  # the switch's home since the network moved out of matr.py

        return _matr_net, "MERGE_RECOMPUTED"

    def _value(self, schedule: str) -> bool:
        return schedule.startswith("merged")
