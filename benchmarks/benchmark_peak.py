"""asv: this machine's convolution throughput, the yardstick of the deep methods' GFLOP/s.

``track_conv3x3_gflops_per_s`` is a plain 3×3 convolution (64→64 channels, one
256×256 map, float32, no bias, torch's thread count) timed best-of-5, FLOPs = 2×MAC
(:func:`fusionbench.profile.conv_peak_gflops_per_s`).  ``benchmark_methods`` tracks
each deep method's achieved GFLOP/s (``track_gflops_per_s``) and its fraction of this
peak measured in the same process (``track_fraction_of_conv_peak``), so the ratio holds
on any machine.  ``time_conv3x3`` is the same convolution as an asv timing.
"""
from __future__ import annotations


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
