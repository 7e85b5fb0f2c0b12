"""Methods and metrics registered in the client process only, sent with the tasks to the processes that run them.

A method or metric registered while the user's code runs (in a script's ``if __name__ == "__main__":`` block, in
a notebook cell, in a module imported by the client only) is in the registry of that one process.  A pool worker
(a fresh ``spawn`` interpreter), a Dask worker or a sandbox's fusion child builds its methods by name from its
own registry, where that name is unknown: every pair failed with ``KeyError: unknown method``.

So the planner packs the registry entries of the run's *user* registrations (source ``user (<module>)``: not
built-in, not from an installed plugin) into each task (:func:`pack`), and the process that runs the task
registers them before it builds the method or scores (:func:`install`, once per process and blob, found by the
blob's digest).  Entries are pickled with ``cloudpickle``: by value for objects of ``__main__`` (a script, a
notebook), by reference for an importable module (the worker imports it: a local pool and a sandbox child share
the client's ``sys.path``; a Dask worker on another machine needs that module installed, and its task fails
naming the missing module).  Built-in and plugin registrations are never sent: workers load them as the client
does.  A user registration received again in another version (a notebook cell run again on a long-lived Dask
cluster) replaces the worker's earlier one.  Every received entry, a user ``override=True`` of a built-in or
plugin name included, is in effect for the task that carries it (:func:`installed`; session 39: the workers kept
the built-in, so a notebook's override ran the built-in under the override's name).
"""
from __future__ import annotations

import hashlib
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

#: the (registry, entry) pairs of each blob this process has received, by digest: each distinct blob unpickled once
_INSTALLED: dict[str, list[tuple[object, object]]] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Definitions:
    """The user registrations one task needs: ``blob`` (cloudpickle) and its sha256 ``digest`` (computed once, by
    the client: a worker checks the digest, never hashes the blob)."""

    digest: str
    blob: bytes


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


def pack(method: str | None, metrics: Iterable[str], warn: Callable[[str], None] | None = None) -> Definitions | None:
    """The user registrations a task of ``method`` scored with ``metrics`` needs; ``None`` when all of them are
    built-in or plugin registrations.

    An entry that cannot be pickled (it holds a lock, an open file, a process handle) is left out, with one line
    to ``warn`` naming it: a worker that imports the registering module itself (a script registering at its top
    level, re-imported by ``spawn``) still has it; otherwise that method's pairs fail with "unknown method"."""
    import cloudpickle

    sendable = []
    for kind, entry in _user_entries(method, metrics):
        try:
            cloudpickle.dumps(entry)
        except Exception as exc:  # noqa: BLE001 - pickling can fail in many ways
            if warn is not None:
                warn(f"{kind} {entry.name!r} ({entry.source}) cannot be sent to the worker processes "  # type: ignore[attr-defined]
                     f"({type(exc).__name__}: {exc}); they have it only if they import its module themselves: "
                     "register it in an importable module, or run with --workers 0")
            continue
        sendable.append((kind, entry))
    if not sendable:
        return None
    blob = cloudpickle.dumps(sendable)
    return Definitions(hashlib.sha256(blob).hexdigest(), blob)


@contextmanager
def installed(definitions: Definitions | None) -> Iterator[None]:
    """Within the block (one task), the user registrations of ``definitions`` (:func:`pack`) are in effect.

    Each distinct blob is unpickled once (found by its digest).  Its entries are registered in this process, a
    user entry of the same name replaced (the client registered it again, in another version); and for the block
    each one is what the registries return (:func:`fusionbench.registry.task_entries`), an ``override=True`` of
    a built-in or plugin name included.  That lasts for this task only, in its context: a Dask worker's threads
    may run another run's tasks at the same time, with the built-in or another version (session 39: the workers
    kept the built-in, so a notebook's override ran the built-in under the override's name).  Errors of
    unpickling propagate: the task fails with them (a module a remote worker lacks)."""
    from .method_registry import METHODS
    from .metric_registry import METRICS
    from .registry import task_entries

    entries: list = []
    if definitions is not None:
        with _LOCK:
            entries = _INSTALLED.get(definitions.digest)  # type: ignore[assignment]
            if entries is None:
                if not definitions.blob:  # a digest alone names a blob this process should have had
                    raise RuntimeError(f"the user registrations {definitions.digest[:12]} were never received here")
                import cloudpickle

                entries = [((METHODS if kind == "method" else METRICS), entry)
                           for kind, entry in cloudpickle.loads(definitions.blob)]
                for registry, entry in entries:
                    registry.adopt(entry)  # a new name, for lookups outside a task (a sandbox child's)
                _INSTALLED[definitions.digest] = entries
    with task_entries(entries):
        yield
