"""A third-party fusion method package: registers on import through its entry point."""
import os
import signal
import sys
import time

import numpy as np

from fusionbench import register_method

# a plugin that is slow to import (large dependencies): the import is not part of a pair's timeout
time.sleep(float(os.environ.get("DEMO_IMPORT_SECONDS", "0")))


@register_method("demo_min", display_name="Demo min", family="plugin", citation="fusionbench test plugin")
def demo_min(a, b):
    """Pixel-wise minimum."""
    return np.minimum(a, b)


@register_method("demo_slow", display_name="Demo slow", family="plugin", citation="fusionbench test plugin")
def demo_slow(a, b):
    """The mean, after sleeping DEMO_SLOW_SECONDS (default 0.3) — for kill/resume tests."""
    time.sleep(float(os.environ.get("DEMO_SLOW_SECONDS", "0.3")))
    return (a + b) / 2


@register_method("demo_nan", display_name="Demo NaN", family="plugin", citation="fusionbench test plugin")
def demo_nan(a, b):
    """Returns NaN everywhere: must be recorded as a failure."""
    return np.full_like(a, np.nan)


@register_method("demo_crash", display_name="Demo crash", family="plugin", citation="fusionbench test plugin")
def demo_crash(a, b):
    """Raises: must be recorded as a failure."""
    raise RuntimeError("demo method failure")


@register_method("demo_exit", display_name="Demo exit", family="plugin", citation="fusionbench test plugin")
def demo_exit(a, b):
    """Kills its own process (as a segfault or the out-of-memory killer would): a worker crash."""
    os._exit(3)


@register_method("demo_sysexit", display_name="Demo sys.exit", family="plugin", citation="fusionbench test plugin")
def demo_sysexit(a, b):
    """Calls ``sys.exit()``: must be recorded as a failure, not end the run."""
    sys.exit(2)


@register_method("demo_stuck", display_name="Demo stuck", family="plugin", citation="fusionbench test plugin")
def demo_stuck(a, b):
    """Stands for compiled code that never returns to Python: blocks SIGALRM and SIGINT (their Python
    handlers never run), then sleeps DEMO_SLOW_SECONDS (default 0.3)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGINT})
    time.sleep(float(os.environ.get("DEMO_SLOW_SECONDS", "0.3")))
    return (a + b) / 2


@register_method("demo_exit_late", display_name="Demo exit late", family="plugin",
                 citation="fusionbench test plugin")
def demo_exit_late(a, b):
    """Kills its own process after DEMO_EXIT_AFTER seconds (default 0.5): a crash while other results are
    being stored."""
    time.sleep(float(os.environ.get("DEMO_EXIT_AFTER", "0.5")))
    os._exit(3)



@register_method("demo_counted", display_name="Demo counted", family="plugin", citation="fusionbench test plugin")
class DemoCounted:
    """The maximum; each instance built appends a line to the file $DEMO_BUILD_LOG (if set): how often a
    process built the method (its cache of built methods dropped, say)."""

    def __init__(self) -> None:
        log = os.environ.get("DEMO_BUILD_LOG")
        if log:
            with open(log, "a") as f:
                f.write(f"{os.getpid()}\n")

    def __call__(self, a, b):
        return np.maximum(a, b)
