"""The fusion child of :mod:`fusionbench.sandbox` (``python -m fusionbench.sandbox_child PARENT_PID``).

It reads requests ``(id, method, key, overrides, definitions, a, b, timeout)`` as pickles on stdin and answers each with
``(id, "fusing", None)`` once the method is built, then ``(id, "ok", (image, seconds, warnings))`` or ``(id,
"error", (type, message, traceback, warnings))`` on the original stdout (``warnings``: the lines of
:func:`fusionbench.task_warnings.collecting`) (anything a method prints goes to stderr).  Methods are
built once and kept, as in a worker; room is made before a large pair and the memory kept is bounded after
each, as a worker does (:func:`fusionbench.worker.bound_worker_memory`).  The child exits when its parent is
gone (:func:`fusionbench.parent_watch.watch_parent`) and stops itself ``$FUSIONBENCH_KILL_GRACE_S`` after a
pair's limit (:func:`_watchdog`).  Kept apart from the parent's side so that :mod:`fusionbench.worker`, which
imports the sandbox, is imported by the child only.
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from contextlib import contextmanager
from typing import IO, Any, Iterator

from .sandbox import _recv, _send


@contextmanager
def _watchdog(timeout: float | None) -> Iterator[None]:
    """In the child, around a fusion with a limit: a C watchdog (:func:`faulthandler.dump_traceback_later`,
    ``exit=True``; it needs no interpreter, so it also stops a method stuck in compiled code) ends the child
    ``$FUSIONBENCH_KILL_GRACE_S`` after the limit, its stack dump on stderr.  The parent kills the child at the
    limit itself; this stops it where the parent no longer can (its thread is stuck, it was killed)."""
    if not timeout:
        yield
        return
    import faulthandler

    from .config import KILL_GRACE_S_DEFAULT, kill_grace_s

    try:
        grace = kill_grace_s()
    except ValueError:  # malformed in this worker's environment: the client refuses it in its own
        grace = KILL_GRACE_S_DEFAULT
    faulthandler.dump_traceback_later(timeout + grace, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def _fuse_request(request: tuple, replies: IO[bytes]) -> tuple[str, Any]:
    """In the child: fuse one request, after sending "fusing" once its method is built (the limit starts
    there); returns the final reply's ``(status, payload)``.  Methods are built once and kept, as in a
    worker (:func:`fusionbench.worker._method`), and room is made before a large pair as a worker does."""
    from .api import fuse_arrays
    from .definitions import installed
    from .worker import _make_room, _method

    from .task_warnings import collecting

    number, name, key, overrides, definitions, a, b, timeout = request
    with collecting() as warned:  # sent back with the reply, for the parent's task (never printed here)
        try:
            # a method the client registered at run time (:mod:`fusionbench.definitions`), an override of a
            # built-in included: in effect for this request (the blob once per child, then its digest)
            with installed(definitions):
                method = _method(name, key, overrides, definitions=definitions)  # imports are not timed
                _make_room(a.shape[0] * a.shape[1])
                _send(replies, (number, "fusing", None))
                start = time.perf_counter()
                with _watchdog(timeout):
                    fused = fuse_arrays(method, a, b)
            return "ok", (fused, time.perf_counter() - start, warned)
        except (Exception, SystemExit) as exc:  # reported to the parent, which records it as the pair's failure
            text = str(exc)
            return "error", (type(exc).__name__, text.splitlines()[0] if text else type(exc).__name__,
                             traceback.format_exc(), warned)


def _serve(parent: int | None = None) -> None:
    """The child's loop: requests on stdin, replies on the original stdout (method output goes to stderr).
    Given its parent's pid, it exits once that process is gone (:func:`fusionbench.parent_watch.watch_parent`)."""
    if parent is not None:
        from .parent_watch import watch_parent

        watch_parent(parent)
    from . import api  # noqa: F401 - imported before "ready": the child's start is not timed
    from .worker import bound_worker_memory

    requests = sys.stdin.buffer
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a method prints goes to stderr, never into the reply pipe
    sys.stdout = sys.stderr
    _send(replies, (0, "ready", None))
    while True:
        try:
            request = _recv(requests)
        except EOFError:
            return
        _send(replies, (request[0], *_fuse_request(request, replies)))
        bound_worker_memory()  # after each pair, as a worker does


if __name__ == "__main__":
    _serve(int(sys.argv[1]) if len(sys.argv) > 1 else None)
