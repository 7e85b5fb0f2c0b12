"""asv: SwinFusion inference time at 256² and peak memory at 1024² (issue 23).

Targets: a 256² pair fused in ≤ 1.74 s on 2 threads (the founding paper's figure), and a worker under
2 GB of resident memory while fusing a 1024² pair.

``time_forward``: the network's forward pass on a 256² pair (mirror-padded to 264², as at inference) with
1 or 2 torch threads, weights loaded outside the timing.  ``time_fuse``: the runner's whole path
(``fuse_arrays``: colour protocol, padding, network, quantisation) on one Harvard MRI-PET test pair (or a
built-in pair where the data are absent).  ``track_peak_rss_1024``: peak resident memory (MB) of a fresh
process fusing one 1024² pair (:func:`methods.swinfusion.peak_rss_mb`; includes the interpreter, torch and
the weights, as a runner worker).

    asv run --python=same --set-commit-hash $(git rev-parse HEAD) --bench benchmark_swinfusion
"""
from __future__ import annotations

from ._settings import OneShot


def _pair():
    """The first Harvard MRI-PET test pair (``$FUSIONBENCH_DATA_DIR`` or ``../shared/data``), else a built-in pair."""
    import os
    from pathlib import Path

    import fusionbench

    for root in (os.environ.get("FUSIONBENCH_DATA_DIR"), Path(__file__).resolve().parents[2] / "shared" / "data"):
        if root and Path(root, "harvard").is_dir():
            return fusionbench.create_dataset("harvard-mri-pet", data_dir=str(root)).select("test")[0]
    return fusionbench.create_dataset("builtin-mri-pet").pairs[0]


class SwinFusionInference:
    """Forward pass and whole fusion of one 256² pair, with 1 and 2 torch threads."""

    params = [[1, 2]]
    param_names = ["threads"]
    timeout = 600
    number = 1
    repeat = 5
    warmup_time = 0
    processes = 1

    def setup(self, threads: int) -> None:
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
        with torch.inference_mode():
            self.net(*self.inputs)                   # first call: order caches, allocator

    def teardown(self, threads: int) -> None:
        import torch

        torch.set_num_threads(self._threads)

    def time_forward(self, threads: int) -> None:
        import torch

        with torch.inference_mode():
            self.net(*self.inputs)

    def time_fuse(self, threads: int) -> None:
        from fusionbench.api import fuse_arrays

        fuse_arrays(self.method, self.a, self.b)


class SwinFusionMemory(OneShot):
    """Peak resident memory of a fresh process fusing one 1024² pair (target: under 2 GB)."""

    params = [[1, 2]]
    param_names = ["threads"]
    timeout = 900

    def track_peak_rss_1024(self, threads: int) -> float:
        from fusionbench.methods.swinfusion import peak_rss_mb

        return peak_rss_mb(1024, threads)

    track_peak_rss_1024.unit = "MB"
