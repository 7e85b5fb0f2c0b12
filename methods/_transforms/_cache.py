"""One memory-bounded cache for the transforms' per-size filter responses.

The NSST shearing filter banks, the NSCT directional-filter responses and the à-trous filter
spectra depend only on the filter setting and the image size, so they are computed once and
reused across pairs.  At 256² all of them together take ~150 MB; at 1024² one level of
``nsst.liu`` alone takes 134 MB, so an unbounded (or count-bounded) cache would keep well over
1 GB alive in a worker that met a few large pairs.  This cache evicts the least recently used
entries once the arrays it holds exceed :data:`MAX_BYTES` (an entry larger than that is
returned but not kept).  Cached arrays are read-only.

Within a :func:`one_pass` block (``nsst_fuse`` / ``nsct_fuse``: one fusion), an entry used in
the block is never evicted to make room for another: a new entry that fits only by evicting
such entries is returned but not kept.  Plain LRU fails for a fusion whose responses exceed the
cache (``nsct.liu`` at 1024²: ~600 MB): each pair requests the same entries in the same order,
so every entry is evicted just before it is needed again and nothing is ever reused.  With the
rule, the entries kept by one pair stay for the next (most of the working set within
``MAX_BYTES``), and entries of earlier fusions (other sizes, other methods) are still evicted
least recently used first.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import contextmanager
from functools import wraps
from typing import Callable, Iterator, TypeVar

import numpy as np

MAX_BYTES = 384 * 2**20
"""Total size of the cached arrays (all cached functions together)."""

_F = TypeVar("_F", bound=Callable[..., np.ndarray])
_G = TypeVar("_G", bound=Callable)
_entries: OrderedDict[tuple, np.ndarray] = OrderedDict()
_used: dict[tuple, int] = {}  # key -> pass number of its last use
_lock = threading.Lock()
_total = 0
_passes = 0  # passes started so far
_active: set[int] = set()  # numbers of the passes under way (several threads may fuse at once)


def bytes_cached() -> int:
    """Bytes currently held by the cache."""
    return _total


def clear() -> None:
    """Drop every cached array."""
    global _total
    with _lock:
        _entries.clear()
        _used.clear()
        _total = 0


@contextmanager
def one_pass() -> Iterator[None]:
    """Mark one fusion: entries used inside are not evicted for other entries until it ends (module docstring)."""
    global _passes
    with _lock:
        _passes += 1
        number = _passes
        _active.add(number)
    try:
        yield
    finally:
        with _lock:
            _active.discard(number)


def in_one_pass(fn: _G) -> _G:
    """Run every call of ``fn`` inside :func:`one_pass`."""

    @wraps(fn)
    def wrapped(*args, **kwargs):
        with one_pass():
            return fn(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def would_keep(nbytes: int) -> bool:
    """Whether an entry of ``nbytes`` made now would be kept (the rule of :func:`bounded_cache`'s admission).

    Lets a caller that can use its result piece by piece (``nsct_fuse``'s directional banks) make it
    one piece at a time instead of building an array the cache would drop at once.
    """
    with _lock:
        if nbytes > MAX_BYTES:
            return False
        need = _total + nbytes - MAX_BYTES
        if need <= 0:
            return True
        protected_from = min(_active) if _active else _passes + 1
        return sum(v.nbytes for k, v in _entries.items() if _used[k] < protected_from) >= need


def _admit(key: tuple, value: np.ndarray) -> None:
    """Keep ``value`` if it fits after evicting unprotected entries, least recently used first (lock held)."""
    global _total
    need = _total + value.nbytes - MAX_BYTES
    if need > 0:
        protected_from = min(_active) if _active else _passes + 1
        victims, freed = [], 0
        for old_key, old in _entries.items():
            if _used[old_key] >= protected_from:
                continue
            victims.append(old_key)
            freed += old.nbytes
            if freed >= need:
                break
        if freed < need:
            return
        for old_key in victims:
            _total -= _entries.pop(old_key).nbytes
            del _used[old_key]
    _entries[key] = value
    _used[key] = _passes
    _total += value.nbytes


def bounded_cache(fn: _F) -> _F:
    """Memoise ``fn`` (hashable positional arguments, ndarray result) in the shared byte-bounded LRU."""

    def peek(*args) -> np.ndarray | None:
        """The cached result for ``args`` (counted as a use), or ``None``; never computes it."""
        key = (fn.__qualname__,) + args
        with _lock:
            hit = _entries.get(key)
            if hit is not None:
                _entries.move_to_end(key)
                _used[key] = _passes
            return hit

    @wraps(fn)
    def cached(*args):
        hit = peek(*args)
        if hit is not None:
            return hit
        key = (fn.__qualname__,) + args
        value = fn(*args)
        value.setflags(write=False)
        if value.nbytes <= MAX_BYTES:
            with _lock:
                if key not in _entries:
                    _admit(key, value)
        return value

    cached.cache_clear = clear  # type: ignore[attr-defined]
    cached.peek = peek  # type: ignore[attr-defined]
    return cached  # type: ignore[return-value]
