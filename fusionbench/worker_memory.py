"""Bound the memory a long-lived worker process keeps between tasks.

A worker runs thousands of (method, pair) tasks.  Between them it keeps what makes the next task cheap
(built methods with their weights, decoded pairs) and, without asking for it, what glibc's allocator does
not hand back: the freed temporaries of every method it ran.  In the session-6 whole run (27 methods,
Harvard + TNO pairs) a worker grew to 2.6 GB that way, against issue 23's 2 GB per worker, although no
single method needs more than 1.5 GB even at 1024² (``docs/runner.md``).

After each task, :func:`bound_memory` reads the process's resident set; above the limit
(``$FUSIONBENCH_WORKER_MEMORY_MB``, default 1,536 MiB) it returns the allocator's free pages to the system
(``malloc_trim``, glibc; a few ms), and if that is not enough it drops the worker's caches of built methods
and decoded pairs, collects garbage and trims again (the caches refill on demand: weights are read again).
Below the limit it does nothing, so a worker that fits pays one ``/proc`` read per task (about 0.1 ms).
No ``gc.collect()`` on the first step: with torch and every method loaded it takes 0.1-0.7 s, more than
most tasks.  The limit sits well above what a worker holds right after a trim (1.1-1.2 GB after all
27 methods on TNO and Harvard pairs), so the trim is rare; a task's own peak comes on top of it.
Linux only (elsewhere the resident set is not read and nothing is done).
"""
from __future__ import annotations

import ctypes
import gc
import os
from functools import lru_cache
from typing import Callable

#: counts of what :func:`bound_memory` did in this process (for tests and the run summary)
MEMORY_STATS = {"checks": 0, "trims": 0, "cache_drops": 0}


def resident_mb() -> float | None:
    """This process's resident set in MiB (``/proc/self/statm``), or ``None`` where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@lru_cache(maxsize=None)
def _malloc_trim() -> Callable[[], None] | None:
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


def release_free_memory(collect: bool = False) -> None:
    """Hand the allocator's free pages back to the system (glibc ``malloc_trim(0)``), after a full garbage
    collection if ``collect``."""
    if collect:
        gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim()


def bound_memory(limit_mb: float, drop_caches: Callable[[], None]) -> str:
    """Keep the resident set under ``limit_mb`` between tasks; returns what was done.

    ``"none"`` (under the limit, bound off, or unreadable), ``"trim"`` (free pages returned, now under the
    limit) or ``"drop"`` (``drop_caches`` was called and the free pages returned again).
    """
    MEMORY_STATS["checks"] += 1
    if limit_mb <= 0:
        return "none"
    rss = resident_mb()
    if rss is None or rss <= limit_mb:
        return "none"
    release_free_memory()
    MEMORY_STATS["trims"] += 1
    rss = resident_mb()
    if rss is None or rss <= limit_mb:
        return "trim"
    drop_caches()
    release_free_memory(collect=True)
    MEMORY_STATS["cache_drops"] += 1
    return "drop"
