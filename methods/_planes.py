"""Running a compiled one-map kernel over a stack of maps, one map per thread.

The numba kernels of CNP, DTNP and MLEPF (``nogil=True``) each process one 2-D
map; a stack of maps (decomposition bands, colour planes) is split over
``workers`` threads: the worker cap the runner sets (``FUSIONBENCH_WORKER_THREADS``),
else 2.  Every map is computed by the same kernel whatever the thread count, so the
result does not depend on it.
"""
from __future__ import annotations

from typing import Any, Callable

from fusionbench.config import worker_threads


def method_threads(workers: int | None = None) -> int:
    """The threads a method's own parallel loop may use: ``workers`` if given, else the worker cap the runner
    sets, else 2 (CNP, DTNP, MLEPF through :func:`map_planes`; MDL's bands)."""
    return workers or worker_threads() or 2


def map_planes(run: Callable[[int], Any], n: int, workers: int | None = None) -> None:
    """Call ``run(i)`` for ``i`` in ``range(n)``, on up to ``workers`` threads when ``n > 1``."""
    workers = method_threads(workers)
    if workers > 1 and n > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(workers, n)) as pool:
            list(pool.map(run, range(n)))
    else:
        for i in range(n):
            run(i)
