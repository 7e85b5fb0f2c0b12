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

Large images (issue 23: a worker under 2 GB at 1024²).  Before a task on a pair of more than
:data:`LARGE_PIXELS` pixels (more than any TNO image), :func:`make_room` returns the free pages (there a
task takes seconds, a trim 10-80 ms: free pages of earlier tasks are not always reused), expects the task
to need up to :data:`TASK_BYTES_PER_PIXEL` per pixel on top of what the worker holds, and brings the
resident set under ``limit + PEAK_HEADROOM_MB − need`` (1,536 + 256 − 1,024 = 768 MiB before a 1024² task
by default).
Both bounds free memory in stages, cheapest first: return free pages (``malloc_trim``); drop the
transforms' filter-response cache (``methods/_transforms/_cache.py``, up to 384 MB, recomputed on demand:
after a 1024² run of every method it is ~360 of the ~950 MB a worker holds once trimmed); and, after a
task only, the built methods and decoded pairs.  At ordinary sizes :func:`make_room` does nothing.
Linux only (elsewhere the resident set is not read and nothing is done).
"""
from __future__ import annotations

import ctypes
import gc
import os
import sys
from functools import lru_cache
from typing import Callable

#: counts of what :func:`bound_memory` and :func:`make_room` did in this process (for tests and the run summary)
MEMORY_STATS = {"checks": 0, "trims": 0, "cache_drops": 0, "room_checks": 0, "transform_cache_drops": 0}

#: pairs above this many pixels get room made before their task (TNO's largest, 768×576, does not); CNN runs
#: its network in bands above it too (``methods/_row_bands.py``: ``BAND_PIXELS`` is this constant)
LARGE_PIXELS = 1 << 19
#: what a task is expected to need per pixel of its pair, bytes: the largest of the methods, SwinFusion, peaked
#: 0.98 GB above the worker's resident set at 1024² (session 8) and 1,094 MiB in a fresh process (session 31's
#: scale audit: 1.09 kB a pixel at 512² and 1024² alike); scoring comes after fusion, and ``--metrics standard``
#: needs 924 B a pixel at 1024².  Since session 9 SDNet, IFCNN and MoPA run large images in bands of rows (SDNet
#: 0.15 GB, MoPA ~0.3 GB above resident)
TASK_BYTES_PER_PIXEL = 1152
#: how far a task's expected peak may reach above the between-task limit, MiB
PEAK_HEADROOM_MB = 256
_TRANSFORM_CACHE = "fusionbench.methods._transforms._cache"


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


def drop_transform_cache() -> bool:
    """Drop the transforms' filter-response cache if it was imported and holds anything; ``True`` if it did."""
    cache = sys.modules.get(_TRANSFORM_CACHE)
    if cache is None or not cache.bytes_cached():
        return False
    cache.clear()
    MEMORY_STATS["transform_cache_drops"] += 1
    return True


def _trim_down_to(limit_mb: float) -> str:
    """Return free pages, then drop the transforms' cache if still above ``limit_mb``: ``"trim"`` (under it
    after the trim, or nothing more to drop) or ``"transforms"`` (the cache dropped, free pages returned)."""
    release_free_memory()
    MEMORY_STATS["trims"] += 1
    rss = resident_mb()
    if rss is None or rss <= limit_mb or not drop_transform_cache():
        return "trim"
    release_free_memory()
    return "transforms"


def bound_memory(limit_mb: float, drop_caches: Callable[[], None]) -> str:
    """Keep the resident set under ``limit_mb`` between tasks; returns what was done.

    ``"none"`` (under the limit, bound off, or unreadable), ``"trim"`` (free pages returned, now under the
    limit), ``"transforms"`` (the transforms' cache dropped too, now under) or ``"drop"`` (``drop_caches``
    was called and the free pages returned again).
    """
    MEMORY_STATS["checks"] += 1
    if limit_mb <= 0:
        return "none"
    rss = resident_mb()
    if rss is None or rss <= limit_mb:
        return "none"
    done = _trim_down_to(limit_mb)
    rss = resident_mb()
    if rss is None or rss <= limit_mb:
        return done
    drop_caches()
    release_free_memory(collect=True)
    MEMORY_STATS["cache_drops"] += 1
    return "drop"


def make_room(pixels: int, limit_mb: float) -> str:
    """Before a task on a pair of ``pixels`` pixels: above :data:`LARGE_PIXELS`, return free pages and, if the
    resident set plus the task's expected need (:data:`TASK_BYTES_PER_PIXEL` per pixel) still passes
    ``limit_mb + PEAK_HEADROOM_MB``, drop the transforms' cache; returns what was done (``"none"``: at or
    below :data:`LARGE_PIXELS` or bound off; ``"trim"``; ``"transforms"``).  Built methods and decoded pairs
    are kept: at 1024² they hold ~25 MB, and the task is about to use them.
    """
    if limit_mb <= 0 or pixels <= LARGE_PIXELS:
        return "none"
    MEMORY_STATS["room_checks"] += 1
    return _trim_down_to(limit_mb + PEAK_HEADROOM_MB - pixels * TASK_BYTES_PER_PIXEL / 2**20)
