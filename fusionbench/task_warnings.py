"""Warnings raised while a run's task fuses and scores a pair: collected with the task, reported by the client.

A worker (a pool process, a Dask thread, the inline runner) runs each task inside :func:`collecting`; every
warning the task raises there, in any thread that runs in the task's context (the metrics' preset pool copies it)
or in its sandbox child (:mod:`fusionbench.sandbox_child`, sent back with the image), becomes one line
``"Category: message"`` of the task's result (:attr:`fusionbench.worker.TaskResult.warnings`), each distinct line
once per task, instead of being printed by the worker over the client's progress bar.  The client's
:class:`WarningReport` turns them into one log line per method and distinct line, naming the first pair, and a
count per method at the run's end.

Conventions: warnings outside a task go where they went before (the hook passes them on to the
``warnings.showwarning`` it found); Python's filters still decide what is shown (an ``ignore`` stays ignored),
but a warning's once-per-location memory is reset at each task's start (:func:`_forget_shown`), so that a
later pair, or another method warning from the same line of code in the same process, is not silenced by an
earlier task's warning.
"""
from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterable, Iterator

#: the current task's warning lines (``None`` outside a task)
_LINES: ContextVar[list[str] | None] = ContextVar("fusionbench_task_warnings", default=None)
_INSTALL = threading.Lock()
_passed_on: Any = None  # the ``warnings.showwarning`` the hook found, for warnings outside a task


class _TaskBoundary(Warning):
    """Never raised: the category of the filter whose (re)addition resets the once-per-location memory."""


def warning_line(message: Warning | str, category: type[Warning]) -> str:
    """A warning as one task's line: ``"UserWarning: Level value of 3 is too high: ..."``."""
    return f"{category.__name__}: {message}"


def _hook(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
          line: str | None = None) -> None:
    """``warnings.showwarning`` while installed: into the current task's lines, else passed on."""
    lines = _LINES.get()
    if lines is None:
        _passed_on(message, category, filename, lineno, file, line)
        return
    text = warning_line(message, category)
    if text not in lines:
        lines.append(text)


def _install() -> None:
    """Make :func:`_hook` this process's ``warnings.showwarning`` (again, where something replaced it since)."""
    global _passed_on
    with _INSTALL:
        if warnings.showwarning is not _hook:
            _passed_on = warnings.showwarning
            warnings.showwarning = _hook


def _forget_shown() -> None:
    """Reset every module's once-per-location warning memory: adding a filter does (the filter itself, for a
    category nobody raises and appended once, changes nothing)."""
    warnings.filterwarnings("default", category=_TaskBoundary, append=True)


@contextmanager
def collecting() -> Iterator[list[str]]:
    """Within the block (this thread, and the tasks it hands a pool that copies its context), warnings become
    the yielded list's lines (:func:`warning_line`, each once) instead of being printed."""
    _install()
    _forget_shown()
    lines: list[str] = []
    token = _LINES.set(lines)
    try:
        yield lines
    finally:
        _LINES.reset(token)


def record(lines: Iterable[str]) -> None:
    """Add warning lines raised elsewhere for the current task (a sandbox child's); outside a task they are
    warned here as ``UserWarning`` s, so that none is lost."""
    current = _LINES.get()
    for text in lines:
        if current is None:
            warnings.warn(text, UserWarning, stacklevel=2)
        elif text not in current:
            current.append(text)


class WarningReport:
    """The client's side: one log line per (method, warning line) when first seen, naming the pair, and a count
    per method at the end (:meth:`counts`)."""

    def __init__(self) -> None:
        self._pairs: dict[tuple[str, str], int] = {}

    def lines(self, method: str, dataset: str, pair: str, warned: Iterable[str]) -> list[str]:
        """The log lines for one task's ``warned`` lines: those this method has not given before."""
        out = []
        for text in warned:
            key = (method, text)
            if key not in self._pairs:
                out.append(f"warning from {method} on {dataset}/{pair}: {text}")
            self._pairs[key] = self._pairs.get(key, 0) + 1
        return out

    def counts(self, run_id: int) -> list[str]:
        """The run's closing lines: for each warning a method gave on several pairs, on how many."""
        return [f"run {run_id}: {method} gave this warning on {n} pairs in all: {text}"
                for (method, text), n in self._pairs.items() if n > 1]
