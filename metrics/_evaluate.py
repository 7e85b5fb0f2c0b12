"""``compute`` (one preset) and ``evaluate`` (several, sharing intermediates): the entry points of
``fusionbench.metrics``, which re-exports both.  In a module of their own so that the core's scoring
(:mod:`fusionbench.scoring`) reaches them without importing the package's folder scoring back."""
from __future__ import annotations

from typing import Iterable

import numpy as np

from fusionbench.metric_registry import create_metric, resolve_metrics
from fusionbench.pages import small_pages

from ._cache import shared_cache
from ._input import silenced
from ._pool import run_presets

__all__ = ["compute", "evaluate"]


def compute(preset: str, fused: np.ndarray, a: np.ndarray | None = None, b: np.ndarray | None = None, *,
            data_range: float | None = None) -> float:
    """Score one fused image with one preset (``KeyError`` with suggestions if unknown)."""
    fn = create_metric(preset)
    if data_range is None:
        return float(fn(fused, a, b))
    return float(fn(fused, a, b, data_range=data_range))


def evaluate(fused: np.ndarray, a: np.ndarray, b: np.ndarray, presets: str | Iterable[str] = "paper", *,
             data_range: float | None = None, warn: bool = False) -> dict[str, float]:
    """Score one fused image with several presets (a group name, comma list or list).

    ``UndefinedMetricWarning`` is silenced unless ``warn=True`` (the value is NaN either way); no other
    warning is (before, ``warn=False`` silenced every ``RuntimeWarning``, e.g. numpy's overflow or
    invalid-value warnings of a plugin metric).
    The presets run on a pool of ``functional._threads.metric_threads()`` threads (one
    inside a runner worker capped to one thread); the values do not depend on it.  NumPy's
    huge-page advice is off meanwhile (``fusionbench.pages.small_pages``: how pages are backed, never a
    value; far fewer compaction stalls at 1024²).  An error is raised for the first failing
    preset in ``presets`` order.
    """
    names = resolve_metrics(presets)
    # only UndefinedMetricWarning is silenced (other warnings still show), through a context variable: never the
    # process-wide warning filters, which other threads share (metrics._input.silenced)
    with small_pages(), shared_cache(), silenced(not warn):
        values = run_presets(names, lambda name: compute(name, fused, a, b, data_range=data_range),
                             np.shape(fused))
    return dict(zip(names, values))
