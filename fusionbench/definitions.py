"""Methods and metrics registered in the client process only, sent with the tasks to the processes that run them.

A method or metric registered while the user's code runs (in a script's ``if __name__ == "__main__":`` block, in
a notebook cell, in a module imported by the client only) is in the registry of that one process.  A pool worker
(a fresh ``spawn`` interpreter), a Dask worker or a sandbox's fusion child builds its methods by name from its
own registry, where that name is unknown: every pair failed with ``KeyError: unknown method``.

So the planner packs the registry entries of the run's *user* registrations (source ``user (<module>)``: not
built-in, not from an installed plugin) into each task (:func:`pack`), and the process that runs the task
registers those it lacks before it builds the method or scores (:func:`install`, once per process and blob).
Entries are pickled with ``cloudpickle``: by value for objects of ``__main__`` (a script, a notebook), by
reference for an importable module (the worker imports it: a local pool shares the client's ``sys.path``; a
Dask worker on another machine needs that module installed, and its task fails naming the missing module).
Built-in and plugin registrations are never sent: workers load them as the client does.
"""
from __future__ import annotations

import hashlib
import threading
from typing import Iterable

#: the blobs this process has installed (by sha256), so a worker unpickles each distinct blob once
_INSTALLED: set[str] = set()
_LOCK = threading.Lock()


class DefinitionError(ValueError):
    """A user registration that cannot be sent to the processes that run the tasks (one line naming it)."""


def _user_entries(method: str | None, metrics: Iterable[str]) -> list[tuple[str, object]]:
    from .method_registry import METHODS
    from .metric_registry import METRICS

    entries: list[tuple[str, object]] = []
    if method is not None:
        entry = METHODS.find(method)
        if entry is not None and entry.source.startswith("user"):
            entries.append(("method", entry))
    for name in metrics:
        entry = METRICS.find(name)
        if entry is not None and entry.source.startswith("user"):
            entries.append(("metric", entry))
    return entries


def pack(method: str | None, metrics: Iterable[str]) -> bytes | None:
    """The user registrations a task of ``method`` scored with ``metrics`` needs, as one blob; ``None`` when
    all of them are built-in or plugin registrations.  :class:`DefinitionError` naming the entry when it cannot
    be pickled (it holds a lock, an open file, a live model on a GPU ...)."""
    entries = _user_entries(method, metrics)
    if not entries:
        return None
    import cloudpickle

    try:
        return cloudpickle.dumps(entries)
    except Exception as exc:  # noqa: BLE001 - pickling can fail in many ways: each entry is tried to name it
        for kind, entry in entries:
            try:
                cloudpickle.dumps(entry)
            except Exception as one:  # noqa: BLE001
                raise DefinitionError(
                    f"{kind} {entry.name!r} ({entry.source}) cannot be sent to the worker processes: "  # type: ignore[attr-defined]
                    f"{type(one).__name__}: {one}; register it in an importable module, or run with --workers 0"
                ) from None
        raise DefinitionError(f"the run's user registrations cannot be sent to the worker processes: "
                              f"{type(exc).__name__}: {exc}") from None


def install(blob: bytes | None) -> None:
    """Register, in this process, the entries of ``blob`` (:func:`pack`) that its registries lack.

    A name this process already knows keeps its entry (a worker that imported the same module registered it
    itself).  Errors of unpickling propagate: the task fails with them (a module a remote worker lacks)."""
    if blob is None:
        return
    digest = hashlib.sha256(blob).hexdigest()
    with _LOCK:
        if digest in _INSTALLED:
            return
        import cloudpickle

        from .method_registry import METHODS
        from .metric_registry import METRICS

        for kind, entry in cloudpickle.loads(blob):
            (METHODS if kind == "method" else METRICS).adopt(entry)
        _INSTALLED.add(digest)
