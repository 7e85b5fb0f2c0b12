"""How many threads the metrics' FFTs may use.

The runner caps each worker process (``FUSIONBENCH_WORKER_THREADS``, set by
``fusionbench.executors``) so that N workers do not oversubscribe N cores;
outside a worker every core is available.  The result of a transform does not
depend on the thread count.  (The compiled FMI kernel follows
``NUMBA_NUM_THREADS``, which the executors cap the same way.)
"""
from __future__ import annotations

import os

from fusionbench.config import worker_threads


def fft_workers() -> int:
    """Threads for ``scipy.fft`` calls: the worker cap if set, else the number of cores."""
    return worker_threads() or os.cpu_count() or 1
