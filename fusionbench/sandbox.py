"""A killable fusion child process: the per-pair timeout where ``SIGALRM`` cannot reach.

A Dask worker runs tasks in threads, and a Python thread cannot be interrupted
or killed.  So there each worker thread keeps one child process
(``python -m fusionbench.sandbox_child``, :mod:`fusionbench.sandbox_child`, started on first use with the worker's
environment, thread caps included) that builds and caches methods and fuses
pairs sent over its stdin/stdout as pickles.  When a pair exceeds its time limit
the child is killed (the pair fails with ``PairTimeout``) and the next pair
starts a fresh child; a child that dies (segfault, out of memory) fails that pair
with ``WorkerCrash`` and is restarted likewise.  ``subprocess`` is used rather
than ``multiprocessing`` because Dask's worker processes are daemonic and may not
have ``multiprocessing`` children.

Cost: one interpreter start per worker thread (about a second, not counted in
the pair's time limit), and a pickled copy of the two images and the result per
pair.  The limit runs from the moment the child says the fusion starts, after it
has looked the method up (importing the method registry and its plugins, not
counted), as the local pool's alarm is set after ``create_method``; a class
method is built (its weights loaded) at its first fusion, counted in both.
Methods registered at run time in the client (not importable by a fresh
interpreter) cannot run here; register them in a plugin package.

Each request carries an id that its replies repeat, and any exchange that does
not complete (a timeout, an interrupt, an error reading the pipe) closes the
child: a child is never asked for a second pair while a reply to the first may
still come.  The child looks after itself too: it exits when the process that
started it is gone (:func:`fusionbench.parent_watch.watch_parent`), stops
itself ``$FUSIONBENCH_KILL_GRACE_S`` after a pair's limit when its parent has
not killed it (a C watchdog, as a local pool worker's), and bounds the memory it
keeps between pairs as a worker does (:mod:`fusionbench.worker_memory`).  A
:class:`Sandbox` that is garbage-collected (its thread ended) or still open at
interpreter exit kills its child.
"""
from __future__ import annotations

import os
import pickle
import selectors
import struct
import subprocess
import sys
import threading
import weakref
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from .task_warnings import record

if TYPE_CHECKING:
    from .definitions import Definitions

_HEADER = struct.Struct("<Q")
#: not passed to the child: Dask's nanny sets MALLOC_TRIM_THRESHOLD_, which switches off glibc's dynamic mmap
#: threshold, so that every large numpy allocation is a fresh mmap (measured: 1.3-1.5x slower fusion + scoring)
_DROPPED_ENV = ("MALLOC_TRIM_THRESHOLD_",)


class PairTimeout(TimeoutError):
    """The method exceeded the per-pair time limit (here, or in the worker's own time limit)."""


class SandboxError(RuntimeError):
    """An exception raised in the fusion child: its type name, first line and traceback."""

    def __init__(self, error: str, message: str, remote_traceback: str = ""):
        super().__init__(message)
        self.error = error
        self.message = message
        self.remote_traceback = remote_traceback


def _send(stream: IO[bytes], obj: Any) -> None:
    blob = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(blob)) + blob)
    stream.flush()


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            raise EOFError("the fusion child closed its pipe")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _recv(stream: IO[bytes]) -> Any:
    (size,) = _HEADER.unpack(_read_exact(stream, _HEADER.size))
    return pickle.loads(_read_exact(stream, size))


def _unbuffered(stream: IO[bytes]) -> IO[bytes]:
    """The child's replies read without a buffer: a buffered read of the "fusing" message could take the
    result that follows it into the buffer, where the wait on the pipe cannot see it (the pair then
    "timed out" with its result already read)."""
    return getattr(stream, "raw", stream)


def _readable(stream: IO[bytes], timeout: float) -> bool:
    """Whether ``stream`` has data to read (or has reached its end) within ``timeout`` seconds.  A selector
    (epoll on Linux), not ``select.select``, which refuses a descriptor numbered 1024 or more: a Dask worker
    with many sockets and one child per thread reaches that."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        return bool(selector.select(timeout))


def _stop_child(proc: subprocess.Popen[bytes]) -> None:
    """Kill ``proc`` if it still runs, reap it and close its pipes (idempotent)."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            try:
                stream.close()
            except OSError:  # a request cut off half-written: its rest cannot be flushed to a dead child
                pass


def _exit_code(proc: subprocess.Popen[bytes]) -> int | None:
    """The exit status of a child whose pipe has closed (``None`` if it still runs a few seconds later)."""
    try:
        return proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return None


class Sandbox:
    """One fusion child process (not thread-safe: one per thread, see :func:`fuse_in_sandbox`)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self._requests = 0  # ids of the requests sent to children of this sandbox
        self._installed: set[str] = set()  # digests of the user registrations the running child has
        self._finalizer: weakref.finalize | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        """The running child, started if needed; returns once it has imported fusionbench (not timed).  The
        child is killed when this sandbox is closed, garbage-collected, or still open at interpreter exit."""
        if self.proc is None or self.proc.poll() is not None:
            self.close()  # a child that died between pairs: reaped, its pipes closed
            env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
            # $PYTHONPATH, then the parent's own import path (a user's module beside the script, which a method
            # sent by value refers to by reference: fusionbench.definitions), without the current folder
            paths = [*env.get("PYTHONPATH", "").split(os.pathsep), *(p for p in sys.path if os.path.isdir(p))]
            env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in paths if p))
            # -P: the current folder is not put on sys.path, so a source checkout there cannot shadow the
            # installed package (whose fusionbench.methods/metrics it lacks); the pid: the child's parent
            self.proc = subprocess.Popen([sys.executable, "-P", "-m", "fusionbench.sandbox_child", str(os.getpid())],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
            self._finalizer = weakref.finalize(self, _stop_child, self.proc)
            try:
                self._reply(0, None)  # "ready"
            except EOFError:
                code = _exit_code(self.proc)
                self.close()
                raise SandboxError("WorkerCrash", f"the fusion process failed to start (exit code {code})") from None
            except BaseException:
                self.close()
                raise
        return self.proc

    def close(self) -> None:
        """Kill the child if it still runs, reap it and close its pipes; the next pair starts a fresh one."""
        if self._finalizer is not None:
            self._finalizer()
        self.proc = self._finalizer = None
        self._installed.clear()

    def _reply(self, request: int, timeout: float | None) -> tuple[str, Any]:
        """The child's next reply to ``request``, ``(status, payload)``, waited for at most ``timeout`` seconds
        (``None``: no limit); ``PairTimeout`` when none came in time, ``EOFError`` when the child's pipe closed."""
        assert self.proc is not None and self.proc.stdout is not None
        if timeout is not None and not _readable(self.proc.stdout, timeout):
            raise PairTimeout(f"exceeded the per-pair timeout of {timeout:g} s (fusion process killed)")
        answered, status, payload = _recv(_unbuffered(self.proc.stdout))
        if answered != request:
            raise SandboxError("WorkerCrash", f"the fusion process answered request {answered} instead of {request}")
        return status, payload

    def fuse(self, method: str, key: str, overrides: dict[str, Any], a: np.ndarray, b: np.ndarray,
             timeout: float | None, definitions: Definitions | None = None) -> tuple[np.ndarray, float]:
        """Fuse in the child; raises ``PairTimeout``, :class:`SandboxError` (``WorkerCrash``: the child died) or
        whatever interrupted the exchange.  Any exchange that does not complete closes the child, so that a
        reply still to come can never be read as the next pair's."""
        proc = self._start()
        assert proc.stdin is not None
        self._requests += 1
        request = self._requests
        try:
            if definitions is not None and definitions.digest in self._installed:
                # the child has them: a blob is sent once per child, then its digest alone, by which the child puts
                # them in effect for this request (session 39's review: sent as nothing, a child whose method cache
                # was cleared built the built-in under a user override's name)
                from .definitions import Definitions

                definitions = Definitions(definitions.digest, b"")
            _send(proc.stdin, (request, method, key, overrides, definitions, a, b, timeout))
            status, payload = self._reply(request, None)  # "fusing" once the method is built (or its build's error)
            if status == "fusing":
                status, payload = self._reply(request, timeout)
        except (EOFError, BrokenPipeError):
            code = _exit_code(proc)
            self.close()
            raise SandboxError("WorkerCrash",
                               f"the fusion process died (exit code {code}) while fusing this pair") from None
        except BaseException:  # a timeout, an interrupt, an unreadable reply: the child may still answer
            self.close()
            raise
        *payload, warned = payload
        record(warned)  # the child's warnings, into this thread's task (:mod:`fusionbench.task_warnings`)
        if status == "ok":
            if definitions is not None:
                self._installed.add(definitions.digest)  # the child installed them before it built the method
            return payload[0], payload[1]
        raise SandboxError(*payload)


_LOCAL = threading.local()


def fuse_in_sandbox(method: str, key: str, overrides: dict[str, Any], a: np.ndarray, b: np.ndarray,
                    timeout: float | None, definitions: Definitions | None = None) -> tuple[np.ndarray, float]:
    """Fuse one pair in this thread's child process under ``timeout`` seconds; returns (image, seconds).
    ``definitions``: the user registrations the method needs (:mod:`fusionbench.definitions`)."""
    box = getattr(_LOCAL, "sandbox", None)
    if box is None:
        box = _LOCAL.sandbox = Sandbox()
    return box.fuse(method, key, overrides, a, b, timeout, definitions)
