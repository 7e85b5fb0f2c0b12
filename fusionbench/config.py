"""Paths and environment: the one place that reads fusionbench's environment variables.

* ``FUSIONBENCH_HOME`` — the cache root (default ``~/.cache/fusionbench``): downloaded
  datasets under ``data/``, third-party weights under ``weights/``.
* ``FUSIONBENCH_WORKER_THREADS`` — the per-worker thread cap the runner sets in each
  worker process (so that N workers do not oversubscribe N cores); unset outside a worker.
* ``FUSIONBENCH_WORKER_THREADS_FIXED`` — set (non-empty) in a Dask worker's environment by whoever starts
  it: the worker keeps its own ``FUSIONBENCH_WORKER_THREADS`` instead of the cap the client computes.

Every function reads the environment when called (tests and workers change it at run time).
"""
from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "FUSIONBENCH_HOME"
WORKER_THREADS_ENV = "FUSIONBENCH_WORKER_THREADS"
WORKER_THREADS_FIXED_ENV = "FUSIONBENCH_WORKER_THREADS_FIXED"


def home() -> Path:
    """``$FUSIONBENCH_HOME`` or ``~/.cache/fusionbench``."""
    return Path(os.environ.get(HOME_ENV, Path.home() / ".cache" / "fusionbench")).expanduser()


def data_dir() -> Path:
    """Where ``fusionbench fetch`` puts datasets and released datasets are read by default."""
    return home() / "data"


def weights_dir() -> Path:
    """The third-party weights cache, ``<home>/weights/<method_dir>/<file>``."""
    return home() / "weights"


def worker_threads() -> int | None:
    """The per-worker thread cap set by the runner, or ``None`` outside a capped worker."""
    cap = os.environ.get(WORKER_THREADS_ENV, "")
    return int(cap) if cap.isdigit() and int(cap) > 0 else None


def worker_threads_fixed() -> bool:
    """Whether this worker's thread cap was fixed by its own start-up options (``$FUSIONBENCH_WORKER_THREADS_FIXED``)."""
    return bool(os.environ.get(WORKER_THREADS_FIXED_ENV))
