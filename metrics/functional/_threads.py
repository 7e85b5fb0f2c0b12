"""How many threads the metrics may use (FFTs, compiled kernels, ``evaluate``'s preset pool).

The runner caps each worker process (``FUSIONBENCH_WORKER_THREADS``, set by
``fusionbench.executors``) so that N workers do not oversubscribe N cores;
outside a worker every core is available.

Two levels of parallelism, never both at once:

* ``fusionbench.metrics.evaluate`` runs its presets on a pool of
  :func:`metric_threads` threads (1 inside a worker capped to one thread: then
  nothing changes).  Each preset then runs *inside* the pool
  (:func:`inside_pool` is true): its FFTs use one thread and the FMI kernel
  its serial, GIL-free variant, so the pool's threads are the only ones.
* A lone ``compute`` (or a pool of one) may use every allowed thread inside a
  preset: ``scipy.fft`` ``workers`` = :func:`fft_workers`, the FMI kernel's
  row spans :func:`metric_threads` Python threads (at most ``NUMBA_NUM_THREADS``;
  ``_fmi_lanes.span_threads``).

The result of a metric never depends on the thread count or on which level is used.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

from fusionbench.config import worker_threads

_INSIDE_POOL: ContextVar[bool] = ContextVar("fusionbench_metrics_inside_pool", default=False)


def metric_threads() -> int:
    """Threads the metrics may use in all: the worker cap if set, else the number of cores."""
    return worker_threads() or os.cpu_count() or 1


def inside_pool() -> bool:
    """True while a preset runs on one of ``evaluate``'s pool threads (it must then stay single-threaded)."""
    return _INSIDE_POOL.get()


@contextmanager
def pool_task() -> Iterator[None]:
    """Mark the current context as one task of ``evaluate``'s pool (see :func:`inside_pool`)."""
    token = _INSIDE_POOL.set(True)
    try:
        yield
    finally:
        _INSIDE_POOL.reset(token)


def fft_workers() -> int:
    """Threads for ``scipy.fft`` calls: 1 inside ``evaluate``'s pool, else :func:`metric_threads`."""
    return 1 if inside_pool() else metric_threads()
