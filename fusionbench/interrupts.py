"""Ctrl-C and SIGTERM, for the commands and the training loop.

* :class:`Terminated`: SIGTERM (``kill``, ``timeout``, a batch scheduler) raised as Ctrl-C is, so every
  command keeps what it committed and exits 128 + 15 (Ctrl-C: 130);
* :func:`sigterm_as_interrupt`: the handler that raises it, installed by ``fusionbench`` around a command;
* :class:`StopRequest`: inside a training loop, the first Ctrl-C or SIGTERM only asks the loop to stop at the
  end of the step in flight, where it writes a checkpoint and then raises the interrupt (a batch scheduler's
  SIGTERM before its SIGKILL, or a Ctrl-C, costs no steps); a second one interrupts at once.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any, Iterator


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``, a batch scheduler), handled as Ctrl-C is: the run keeps what it committed
    and records its status as ``interrupted``."""


def _in_forked_child(pid: int, signum: int) -> bool:
    """Whether this handler runs in a child forked after it was installed (``pid``: the installer); such a
    child gets the default action of ``signum`` (it dies of it, as it would have without the handler)."""
    if os.getpid() == pid:
        return False
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return True


def _write_stderr(text: str) -> None:
    """Write ``text`` to file descriptor 2 directly (safe in a signal handler; nothing if it cannot)."""
    try:
        os.write(2, text.encode(errors="replace"))
    except OSError:
        pass


def _restore(signum: int, previous: Any) -> None:
    """Put back the handler that ``signal.signal`` returned (``None``: not installed from Python; the default)."""
    signal.signal(signum, previous if previous is not None else signal.SIG_DFL)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM raises :class:`Terminated` in this process's main thread.

    Only here: pool workers are spawned (new interpreters, default handlers), and a forked child that
    inherited the handler dies of SIGTERM as before; the pool's own interrupt handling stops the workers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pid = os.getpid()

    def handler(signum: int, frame: object) -> None:
        if not _in_forked_child(pid, signum):
            raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        _restore(signal.SIGTERM, previous)


class StopRequest:
    """The first Ctrl-C (SIGINT) or SIGTERM while a training loop runs, noted instead of raised.

    Use as a context manager around the loop; at the end of each step the loop reads :attr:`requested`, and
    when it is set writes a checkpoint and calls :meth:`raise_interrupt` (``KeyboardInterrupt`` for Ctrl-C,
    :class:`Terminated` for SIGTERM; the command then prints how to resume and exits 130 or 143).  A request
    that came after the loop's last check is raised when the block ends.  A second signal restores the
    previous handlers and interrupts at once, as without this (the last checkpoint is kept, since checkpoints
    are written whole).  A signal this process ignores (``SIG_IGN``: a job started in the background by a
    non-interactive shell ignores Ctrl-C) stays ignored.  Outside the main thread it does nothing.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, what: str = "train") -> None:
        self.what = what
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return self.signum is not None

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            pid = os.getpid()

            def handler(signum: int, frame: object) -> None:
                if _in_forked_child(pid, signum):
                    return
                if self.signum is None:
                    self.signum = signum
                    # os.write, not print: a handler that prints while the loop is printing to the same
                    # buffered stream raises "reentrant call" (and a blocked stderr would block it anyway)
                    _write_stderr(f"\n{self.what}: stopping at the end of this step, after writing a checkpoint "
                                  "(interrupt again to stop at once)\n")
                    return
                self._restore_all()
                self.raise_interrupt(signum)

            for signum in self.SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, handler)
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self._restore_all()
        if exc_type is None and self.signum is not None:  # came after the loop's last look: honoured here
            self.raise_interrupt()

    def _restore_all(self) -> None:
        while self._previous:
            signum, previous = self._previous.popitem()
            _restore(signum, previous)

    def raise_interrupt(self, signum: int | None = None) -> None:
        """Raise the interrupt the (first) signal stands for: :class:`Terminated` for SIGTERM, else
        ``KeyboardInterrupt``."""
        signum = self.signum if signum is None else signum
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
