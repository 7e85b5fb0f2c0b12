"""fusionbench: a benchmark suite for multimodal medical *image* fusion.

(Not to be confused with PyPI's ``fusion-bench``, which is about model merging.)

Public API::

    fusionbench.fuse(method, a, b, **overrides)          # one pair, as the runner saves it
    fusionbench.register_method / create_method / list_methods
    fusionbench.register_metric / create_metric / list_metrics
    fusionbench.register_dataset / create_dataset / list_datasets
"""
from __future__ import annotations

from importlib import metadata as _metadata
from pathlib import Path as _Path

# In a source checkout, ``methods/`` and ``metrics/`` sit beside this package and are installed as
# ``fusionbench.methods`` / ``fusionbench.metrics``.  When the source tree itself is imported (e.g.
# ``python -m fusionbench`` run from the checkout's root), let the package find them there too.
_ROOT = _Path(__file__).resolve().parent.parent
if (_ROOT / "setup.py").is_file() and (_ROOT / "methods" / "__init__.py").is_file():
    __path__.append(str(_ROOT))  # type: ignore[name-defined]  # noqa: F821

from .api import fuse, scoring_view
from .data import create_dataset, list_datasets, register_dataset
from .method_registry import create_method, list_methods, method_info, register_method
from .metric_registry import create_metric, list_metrics, metric_info, register_metric, resolve_metrics

try:
    __version__ = _metadata.version("fusionbench")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = [
    "__version__",
    "create_dataset",
    "create_method",
    "create_metric",
    "fuse",
    "list_datasets",
    "list_methods",
    "list_metrics",
    "method_info",
    "metric_info",
    "register_dataset",
    "register_method",
    "register_metric",
    "resolve_metrics",
    "scoring_view",
]
