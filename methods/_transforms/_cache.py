"""One memory-bounded cache for the transforms' per-size filter responses.

The NSST shearing filter banks, the NSCT directional-filter responses and the à-trous filter
spectra depend only on the filter setting and the image size, so they are computed once and
reused across pairs.  At 256² all of them together take ~150 MB; at 1024² one level of
``nsst.liu`` alone takes 134 MB, so an unbounded (or count-bounded) cache would keep well over
1 GB alive in a worker that met a few large pairs.  This cache evicts the least recently used
entries once the arrays it holds exceed :data:`MAX_BYTES` (an entry larger than that is
returned but not kept).  Cached arrays are read-only.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from functools import wraps
from typing import Callable, TypeVar

import numpy as np

MAX_BYTES = 384 * 2**20
"""Total size of the cached arrays (all cached functions together)."""

_F = TypeVar("_F", bound=Callable[..., np.ndarray])
_entries: OrderedDict[tuple, np.ndarray] = OrderedDict()
_lock = threading.Lock()
_total = 0


def bytes_cached() -> int:
    """Bytes currently held by the cache."""
    return _total


def clear() -> None:
    """Drop every cached array."""
    global _total
    with _lock:
        _entries.clear()
        _total = 0


def bounded_cache(fn: _F) -> _F:
    """Memoise ``fn`` (hashable positional arguments, ndarray result) in the shared byte-bounded LRU."""

    @wraps(fn)
    def cached(*args):
        global _total
        key = (fn.__qualname__,) + args
        with _lock:
            hit = _entries.get(key)
            if hit is not None:
                _entries.move_to_end(key)
                return hit
        value = fn(*args)
        value.setflags(write=False)
        if value.nbytes <= MAX_BYTES:
            with _lock:
                if key not in _entries:
                    _entries[key] = value
                    _total += value.nbytes
                while _total > MAX_BYTES:
                    _, old = _entries.popitem(last=False)
                    _total -= old.nbytes
        return value

    cached.cache_clear = clear  # type: ignore[attr-defined]
    return cached  # type: ignore[return-value]
