"""fusionbench: a benchmark suite for multimodal medical *image* fusion.

(Not to be confused with PyPI's ``fusion-bench``, which is about model merging.)

Public API::

    fusionbench.fuse(method, a, b, **overrides)          # one pair, as the runner saves it
    fusionbench.register_method / create_method / list_methods
    fusionbench.register_metric / create_metric / list_metrics
    fusionbench.register_dataset / create_dataset / list_datasets
    fusionbench.metrics.evaluate(fused, a, b, "paper")   # subpackages load on first attribute access

``fusionbench.methods`` and ``fusionbench.metrics`` (the built-in methods and metrics, from the
repository's ``methods/`` and ``metrics/`` folders, installed under these names by ``setup.py``)
are imported lazily, on first access, so ``import fusionbench`` stays light and never imports torch.
A checkout is used through an install (``pip install -e .``); nothing here touches ``sys.path``.
"""
from __future__ import annotations

import importlib as _importlib
from importlib import metadata as _metadata
from typing import Any as _Any

from .config import use_numba_cache_home as _use_numba_cache_home

_use_numba_cache_home()  # before any kernel is defined (the methods and metrics are imported later, lazily)

from .api import fuse, score, scoring_view  # noqa: E402
from .data import create_dataset, dataset_info, list_datasets, register_dataset  # noqa: E402
from .method_registry import create_method, list_methods, method_info, register_method  # noqa: E402
from .metric_registry import create_metric, list_metrics, metric_info, register_metric, resolve_metrics  # noqa: E402

try:
    __version__ = _metadata.version("fusionbench")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

#: subpackages and modules reachable as attributes after ``import fusionbench`` (imported on first access)
_LAZY_SUBMODULES = ("methods", "metrics", "data", "io", "colour", "config", "runner", "report", "weights", "train",
                    "profile", "store")


def __getattr__(name: str) -> _Any:
    """Import ``fusionbench.<name>`` on first attribute access (PEP 562) for the subpackages above."""
    if name in _LAZY_SUBMODULES:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))


__all__ = [
    "__version__",
    "create_dataset",
    "create_method",
    "create_metric",
    "dataset_info",
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
    "score",
    "scoring_view",
]
