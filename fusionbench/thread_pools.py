"""The process's named thread pools, shared by the metrics and the methods and safe across ``fork``.

:func:`thread_pool` keeps one :class:`~concurrent.futures.ThreadPoolExecutor` per ``(name, size)`` for the life
of the process, created on first use.  Users: ``fusionbench.metrics.evaluate``'s preset pool, the FMI kernel's
row spans (:mod:`fusionbench.metrics.functional._fmi_lanes`) and the band workers of SwinFusion, MATR, SDNet and
mopa (:mod:`fusionbench.methods._band_workers`).

A child forked from a process that had used a pool inherits the pool object but not its threads: tasks
submitted there would wait for ever.  The cache is therefore emptied in every forked child
(``os.register_at_fork``), which makes its own pools on first use.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["thread_pool"]

_POOLS: dict[tuple[str, int], ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _forget_pools() -> None:
    """In a forked child the parent's pool threads do not exist (nor does a lock's holder): start afresh."""
    global _POOLS_LOCK
    _POOLS.clear()
    _POOLS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_pools)


def thread_pool(name: str, threads: int) -> ThreadPoolExecutor:
    """The process's pool of ``threads`` threads named ``name`` (created on first use and kept; a forked child
    makes its own).  Tasks are taken in the order they were submitted, each by an idle thread."""
    with _POOLS_LOCK:
        found = _POOLS.get((name, threads))
        if found is None:
            found = _POOLS[(name, threads)] = ThreadPoolExecutor(threads, thread_name_prefix=name)
        return found
