"""Image-fusion metrics (installed as ``fusionbench.metrics``).

* ``fusionbench.metrics.functional``: the functional core, one module per family.
* ``fusionbench.metrics.presets``: named presets (default conventions and the
  ``.vifb``/``.mefb``/``.tang``/``.cddfuse`` compatibility profiles), registered
  in the core registry on import.
* ``compute(preset, fused, a, b)`` and ``evaluate(fused, a, b, presets)`` are the
  entry points the runner uses; ``evaluate_folder(fused_dir, a_dir, b_dir, presets)``
  scores a folder of fused images (:mod:`fusionbench.score_folder`).

Inputs are 2-D uint8 arrays (grey or BT.601 luma), or float arrays with an
explicit ``data_range``.  Undefined values are NaN with an
``UndefinedMetricWarning``; bad inputs raise ``ValueError``.
"""
from __future__ import annotations

import warnings
from typing import Iterable

import numpy as np

from fusionbench.metric_registry import create_metric, resolve_metrics
from fusionbench.score_folder import evaluate_folder

from . import functional
from ._cache import shared_cache
from ._pool import run_presets
from ._input import UndefinedMetricWarning
from fusionbench.pages import small_pages
from .presets import PRESETS

__all__ = ["compute", "evaluate", "evaluate_folder", "functional", "PRESETS", "UndefinedMetricWarning"]


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
    with small_pages(), shared_cache(), warnings.catch_warnings():
        if not warn:
            warnings.simplefilter("ignore", UndefinedMetricWarning)  # only this: other warnings still show
        values = run_presets(names, lambda name: compute(name, fused, a, b, data_range=data_range),
                             np.shape(fused))
    return dict(zip(names, values))
