"""Score one fused image against its two sources, as every scoring path of fusionbench does.

The one place that decides which images each metric preset reads: a preset that reads colour
(:func:`fusionbench.metric_registry.reads_colour`, ``MetricInfo.colour == "rgb"``: ``ChromaErr``) gets the
fused image and the sources as they are; every other preset gets the fused image's BT.601 luma and the sources'
lumas as uint8 (:func:`fusionbench.colour.luma_uint8`).  The luma presets are scored in one
:func:`fusionbench.metrics.evaluate` call (intermediates shared between presets); if that raises, each is scored
on its own so that only the failing presets are reported.  Used by the runner's workers
(:func:`fusionbench.worker.score`) and by ``fusionbench score`` (:func:`fusionbench.score_folder.evaluate_folder`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

__all__ = ["PairScores", "score_pair"]


@dataclass
class PairScores:
    """The values of the presets that could be scored, and the exception of each that could not."""

    values: dict[str, float] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)


def _reads_colour(name: str) -> bool:
    from fusionbench.metric_registry import reads_colour

    try:
        return reads_colour(name)
    except KeyError:  # not registered in this process: scored on the lumas, where its failure is reported
        return False


def score_pair(fused: np.ndarray, a: np.ndarray, b: np.ndarray, presets: Sequence[str], *,
               luma_a: np.ndarray | None = None, luma_b: np.ndarray | None = None) -> PairScores:
    """Score ``fused`` against ``a`` (MRI/visible) and ``b`` (PET/SPECT/CT/IR) with every preset of ``presets``.

    ``fused``, ``a`` and ``b`` are uint8 images, grey (H×W) or colour (H×W×3), of one size.  ``luma_a`` /
    ``luma_b``: the sources' uint8 lumas where the caller has them already (a runner worker keeps them per
    pair), else computed here.  Undefined values are NaN (their ``UndefinedMetricWarning`` silenced, as by
    ``evaluate``); a preset that raises (any ``Exception``, or ``SystemExit``) is in ``errors``, not ``values``.
    """
    from fusionbench.metrics._evaluate import compute, evaluate
    from fusionbench.metrics._input import silenced

    from .colour import luma_uint8

    scores = PairScores()

    def one(name: str, images: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        try:
            with silenced():  # a context variable, not the process-wide warning filters (threads share those)
                scores.values[name] = float(compute(name, *images))
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a metric's failure is reported, never raised
            scores.errors[name] = exc

    in_colour = [name for name in presets if _reads_colour(name)]
    on_luma = [name for name in presets if name not in in_colour]
    for name in in_colour:
        one(name, (fused, a, b))
    if not on_luma:
        return scores
    lumas = (luma_uint8(fused), luma_uint8(a) if luma_a is None else luma_a, luma_uint8(b) if luma_b is None else luma_b)
    try:
        scores.values.update({name: float(v) for name, v in evaluate(*lumas, on_luma).items()})
        return scores
    except (Exception, SystemExit):  # noqa: BLE001 - find which preset failed: each is scored alone below
        pass
    for name in on_luma:
        one(name, lumas)
    return scores
