"""``evaluate``'s preset pool: independent presets of one triple on several threads.

The heavy presets spend their time in code that releases the GIL (numba kernels
compiled with ``nogil=True``, numpy, scipy's FFTs and filters), so two threads
keep two cores busy.  Each task runs in a copy of the caller's context (the
``evaluate`` cache and ``_threads.pool_task``, which makes the preset itself
single-threaded: no oversubscription).  The number of threads is
``_threads.metric_threads()``: every core outside the runner, the per-worker cap
(``FUSIONBENCH_WORKER_THREADS``) inside it, so a runner with two single-thread
workers on two cores runs each ``evaluate`` sequentially, as before.

Scheduling: longest first (the greedy LPT rule), using each preset's time at
the same image shape from the previous calls in this process (unknown presets
first, in the order given).  The order changes only the wall time, never a value.
"""
from __future__ import annotations

import contextvars
import threading
import time
from concurrent.futures import wait
from typing import Callable, Sequence

from fusionbench.thread_pools import thread_pool

from .functional._threads import metric_threads, pool_task

_LAST_TIME: dict[tuple[str, tuple], float] = {}  # (preset, shape) -> seconds of its last run here
#: the name of the preset pool's threads (a preset that calls ``evaluate`` again runs its presets in line)
POOL_NAME = "fusionbench-metrics"


def _timed(fn: Callable[[str], float], name: str, shape: tuple) -> float:
    with pool_task():
        t = time.perf_counter()
        v = fn(name)
        _LAST_TIME[(name, shape)] = time.perf_counter() - t
        return v


def run_presets(names: Sequence[str], fn: Callable[[str], float], shape: tuple) -> list[float]:
    """``[fn(name) for name in names]``, the calls spread over :func:`metric_threads` threads.

    Exceptions propagate from the first failing name in ``names`` order (after all calls ended).
    """
    threads = min(metric_threads(), len(names))
    if threads <= 1 or threading.current_thread().name.startswith(POOL_NAME):
        return [fn(name) for name in names]
    order = sorted(range(len(names)), key=lambda i: -_LAST_TIME.get((names[i], shape), float("inf")))
    pool = thread_pool(POOL_NAME, threads)
    futures = {i: pool.submit(contextvars.copy_context().run, _timed, fn, names[i], shape) for i in order}
    wait(futures.values())  # nothing keeps running once evaluate's cache is cleared
    return [futures[i].result() for i in range(len(names))]
