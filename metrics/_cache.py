"""A per-``evaluate`` cache of intermediate results shared between presets.

Inside ``fusionbench.metrics.evaluate`` several presets see the same triple:
VIFF and VIFp_sum share their Gaussian-scale-mixture window statistics, SSIM,
Q_S, Q_W and MS-SSIM their Gaussian window statistics, and so on.  The cache
lives only for one ``evaluate`` call (a context variable), keys include the
``id`` of the prepared arrays, and the cache keeps references to those arrays
so that the ids cannot be reused while it lives.  Outside ``evaluate`` nothing
is cached.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator

_CACHE: ContextVar[dict | None] = ContextVar("fusionbench_metrics_cache", default=None)


@contextmanager
def shared_cache() -> Iterator[dict]:
    """Enable the cache for the duration of the block."""
    store: dict = {}
    token = _CACHE.set(store)
    try:
        yield store
    finally:
        _CACHE.reset(token)
        store.clear()


def cached(key: tuple, compute: Callable[[], Any], *keep: Any) -> Any:
    """``compute()`` memoised under ``key`` while a ``shared_cache`` is active."""
    store = _CACHE.get()
    if store is None:
        return compute()
    if key not in store:
        store[key] = (compute(), keep)
    return store[key][0]
