"""A per-``evaluate`` cache of intermediate results shared between presets.

Inside ``fusionbench.metrics.evaluate`` several presets see the same triple:
VIFF and VIFp_sum share their Gaussian-scale-mixture window statistics, SSIM,
Q_S, Q_W and MS-SSIM their Gaussian window statistics, and so on.  The cache
lives only for one ``evaluate`` call (a context variable, which ``evaluate``
hands to its pool threads), keys include the ``id`` of the prepared arrays,
and the cache keeps references to those arrays so that the ids cannot be
reused while it lives.  Outside ``evaluate`` nothing is cached.

Presets run concurrently on ``evaluate``'s thread pool, so each key has its own
lock: a value is computed once, and a thread that needs it while another
computes it waits.  Entries nest in one direction only (window statistics are
built from window moments, never the reverse), so the locks cannot deadlock.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator

_CACHE: ContextVar[dict | None] = ContextVar("fusionbench_metrics_cache", default=None)
_LOCKS_KEY = object()  # the store's own entry: its lock table and the lock guarding that table


@contextmanager
def shared_cache() -> Iterator[dict]:
    """Enable the cache for the duration of the block."""
    store: dict = {_LOCKS_KEY: ({}, threading.Lock())}
    token = _CACHE.set(store)
    try:
        yield store
    finally:
        _CACHE.reset(token)
        store.clear()


def cached(key: tuple, compute: Callable[[], Any], *keep: Any) -> Any:
    """``compute()`` memoised under ``key`` while a ``shared_cache`` is active (computed once, thread-safe)."""
    store = _CACHE.get()
    if store is None:
        return compute()
    hit = store.get(key)
    if hit is not None:
        return hit[0]
    locks, guard = store[_LOCKS_KEY]
    with guard:
        lock = locks.setdefault(key, threading.Lock())
    with lock:
        if key not in store:
            store[key] = (compute(), keep)
        return store[key][0]
