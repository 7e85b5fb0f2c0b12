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
``UndefinedMetricWarning`` (``undefined(reason)``, which a plugin metric calls too, so that
``evaluate(..., warn=False)`` silences it); bad inputs raise ``ValueError``.
"""
from __future__ import annotations

from fusionbench.score_folder import evaluate_folder

from . import functional
from ._evaluate import compute, evaluate
from ._input import UndefinedMetricWarning, undefined
from .presets import PRESETS

__all__ = ["compute", "evaluate", "evaluate_folder", "functional", "PRESETS", "UndefinedMetricWarning", "undefined"]
