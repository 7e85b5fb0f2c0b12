"""The paper's FLOP convention, calibrated on its own Table 5, and ``mopa``'s cost in both conventions.

Di et al. (2025) Table 5 gives "GFLOPs" (10⁹ FLOPs) per method without saying
how they were counted.  fusionbench counts FLOPs as 2 × multiply-accumulates
(:func:`fusionbench.profile.gflops`).  On the Table 5 rows of baselines that
fusionbench runs as whole-image networks, the paper's number is a fixed
multiple of our MAC count at 256²:

========  ===========  ==============  =====
method    paper GFLOPs  our GMAC (256²)  ratio
========  ===========  ==============  =====
SDNet     2.4587        1.8728           1.313
MATR      4.2215        3.1908           1.323
========  ===========  ==============  =====

so the paper's convention is ≈ ``fusionbench.profile.PAPER_FLOPS_PER_MAC`` = 1.318 "FLOPs" per
MAC (the mean; ``tests/methods/test_mopa.py`` re-measures both ratios).  The
other rows do not calibrate: CNN (Liu 2017, 2.0142 vs 20.4 GMAC here, ratio
0.10) is a patch classifier whose count depends on how its sliding window was
run, and SwinFusion (2.5414 vs 79.4 GMAC, ratio 0.03) cannot be a whole-image
count of the published network.
"""
from __future__ import annotations

from typing import Any

from fusionbench.profile import PAPER_FLOPS_PER_MAC  # paper "FLOPs" per MAC, defined beside gflops

__all__ = ["PAPER_FLOPS_PER_MAC", "PAPER_MOPA_GFLOPS", "PAPER_TABLE5_GFLOPS", "calibration", "cost"]

#: Table 5 of the paper (GFLOPs), the rows used for the calibration
PAPER_TABLE5_GFLOPS = {"sdnet": 2.4587, "matr": 4.2215}
#: the paper's Table 5 value for its own network
PAPER_MOPA_GFLOPS = 2.5314


def calibration(size: tuple[int, int] = (256, 256)) -> dict[str, float]:
    """Re-measure the ratio paper-GFLOPs / our GMAC for each calibration row (needs their weights)."""
    from fusionbench.profile import gflops

    return {name: paper / (gflops(name, size) / 2) for name, paper in PAPER_TABLE5_GFLOPS.items()}


def cost(method: Any, size: tuple[int, int] = (256, 256)) -> dict[str, float] | None:
    """FLOPs of one forward pass in both conventions (``{"gmac", "gflops_2mac", "gflops_paper"}``, as
    :func:`fusionbench.profile.gflops_conventions`).

    A registered ``mopa`` name (``"mopa"``, ``"mopa.no_mask"``, ``"mopa.width6"``, ...) is counted on its
    architecture (:func:`build_model` of its registered parameters, the decoupling network dropped, as
    :class:`MOPA` runs it), so the presets whose weights are not trained yet have their cost too: FLOPs do not
    depend on the weights' values. Any other method (or an instance) goes through
    :func:`~fusionbench.profile.gflops_conventions`, which loads it."""
    from fusionbench.method_registry import METHODS
    from fusionbench.profile import gflops_conventions

    from . import MOPA

    entry = METHODS.find(method) if isinstance(method, str) else None
    if entry is not None and entry.obj is MOPA:
        return _architecture_cost(entry.info.params, size)
    return gflops_conventions(method, size)


def _architecture_cost(params: dict[str, Any], size: tuple[int, int]) -> dict[str, float]:
    """:func:`cost` of the inference network of a ``mopa`` parameter dict, with untrained weights."""
    from fusionbench.profile import count_flops

    from . import MOPA, build_model

    net = build_model(params)
    net.decoupler = None
    gmac = count_flops(net.eval(), *MOPA.torch_inputs(tuple(size))) / 2e9
    return {"gmac": gmac, "gflops_2mac": 2 * gmac, "gflops_paper": gmac * PAPER_FLOPS_PER_MAC}
