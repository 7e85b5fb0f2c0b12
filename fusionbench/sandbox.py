"""A killable fusion child process: the per-pair timeout where ``SIGALRM`` cannot reach.

A Dask worker runs tasks in threads, and a Python thread cannot be interrupted
or killed.  So there each worker thread keeps one child process
(``python -m fusionbench.sandbox``, started on first use with the worker's
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
"""
from __future__ import annotations

import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
import traceback
from typing import IO, Any

import numpy as np

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
    result that follows it into the buffer, where the ``select`` on the pipe cannot see it (the pair then
    "timed out" with its result already read)."""
    return getattr(stream, "raw", stream)


class Sandbox:
    """One fusion child process (not thread-safe: one per thread, see :func:`fuse_in_sandbox`)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        """The running child, started if needed; returns once it has imported fusionbench (not timed)."""
        if self.proc is None or self.proc.poll() is not None:
            env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
            # -P: the current folder is not put on sys.path, so a source checkout there cannot shadow the
            # installed package (whose fusionbench.methods/metrics it lacks)
            self.proc = subprocess.Popen([sys.executable, "-P", "-m", "fusionbench.sandbox"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, env=env)
            assert self.proc.stdout is not None
            try:
                _recv(_unbuffered(self.proc.stdout))  # ("ready", None)
            except EOFError:
                code = self.proc.wait()
                self.close()
                raise SandboxError("WorkerCrash", f"the fusion process failed to start (exit code {code})") from None
        return self.proc

    def close(self) -> None:
        """Kill the child if it still runs, reap it and close its pipes; the next pair starts a fresh one."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream is not None:
                    stream.close()
            self.proc = None

    def fuse(self, method: str, key: str, overrides: dict[str, Any], a: np.ndarray, b: np.ndarray,
             timeout: float | None) -> tuple[np.ndarray, float]:
        """Fuse in the child; raises ``PairTimeout``, :class:`SandboxError` or ``RuntimeError`` (child died)."""

        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            _send(proc.stdin, (method, key, overrides, a, b))
            replies = _unbuffered(proc.stdout)
            status, payload = _recv(replies)  # "fusing" once the method is built (or its build's error)
            if status == "fusing":
                ready, _, _ = select.select([proc.stdout], [], [], timeout)
                if not ready:
                    self.close()
                    raise PairTimeout(f"exceeded the per-pair timeout of {timeout:g} s (fusion process killed)")
                status, payload = _recv(replies)
        except (EOFError, BrokenPipeError):
            code = proc.wait()
            self.close()
            raise SandboxError("WorkerCrash", f"the fusion process died (exit code {code}) while fusing this pair")
        if status == "ok":
            return payload
        raise SandboxError(*payload)


_LOCAL = threading.local()


def fuse_in_sandbox(method: str, key: str, overrides: dict[str, Any], a: np.ndarray, b: np.ndarray,
                    timeout: float | None) -> tuple[np.ndarray, float]:
    """Fuse one pair in this thread's child process under ``timeout`` seconds; returns (image, seconds)."""
    box = getattr(_LOCAL, "sandbox", None)
    if box is None:
        box = _LOCAL.sandbox = Sandbox()
    return box.fuse(method, key, overrides, a, b, timeout)


def _serve() -> None:
    """The child's loop: requests on stdin, replies on the original stdout (method output goes to stderr)."""
    from .api import fuse_arrays
    from .method_registry import create_method

    requests = sys.stdin.buffer
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a method prints goes to stderr, never into the reply pipe
    sys.stdout = sys.stderr
    methods: dict[tuple[str, str], Any] = {}
    _send(replies, ("ready", None))
    while True:
        try:
            name, key, overrides, a, b = _recv(requests)
        except EOFError:
            return
        try:
            method = methods.get((name, key))
            if method is None:  # the registry and plugin imports are not timed: the limit starts below
                method = methods[(name, key)] = create_method(name, **overrides)
            _send(replies, ("fusing", None))
            start = time.perf_counter()
            fused = fuse_arrays(method, a, b)
            reply: tuple[str, Any] = ("ok", (fused, time.perf_counter() - start))
        except (Exception, SystemExit) as exc:  # reported to the parent, which records it as the pair's failure
            text = str(exc)
            reply = ("error", (type(exc).__name__, text.splitlines()[0] if text else type(exc).__name__,
                               traceback.format_exc()))
        _send(replies, reply)


if __name__ == "__main__":
    _serve()
