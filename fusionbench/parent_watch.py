"""A child process that ends with its parent: pool workers and sandbox fusion children.

A process that the client started and that waits on a pipe the client holds (a local pool worker holds both
ends of its own call pipe) never learns that the client died of a ``kill -9``: it would wait for work for
ever, holding its memory.  :func:`watch_parent` starts a daemon thread that polls the parent's pid and exits
the process once the parent is gone (on Linux the orphan is re-parented, so ``os.getppid()`` changes).
"""
from __future__ import annotations

import os
import threading
import time

#: how often a watched child checks that the process that started it is still its parent
PARENT_POLL_S = 1.0


def exit_when_orphaned(parent: int) -> None:
    """Exit this process (status 1) once ``parent`` is no longer its parent process."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def watch_parent(parent: int) -> threading.Thread:
    """Start (and return) the daemon thread that runs :func:`exit_when_orphaned` for ``parent``."""
    thread = threading.Thread(target=exit_when_orphaned, args=(parent,), name="fusionbench-orphan-check",
                              daemon=True)
    thread.start()
    return thread
