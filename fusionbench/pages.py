"""Small pages for NumPy's arrays while ``evaluate`` runs and in runner workers (a speed setting; values never change).

NumPy asks the kernel for transparent huge pages (``madvise(MADV_HUGEPAGE)``) on every array of
4 MiB or more.  Where the kernel's THP ``defrag`` setting is ``madvise`` (the default of many
distributions, this machine's too), a fault in such an array compacts memory synchronously when no
free 2 MiB page is at hand; in a long-lived process whose memory is fragmented this costs ms per MiB.
At 1024² the metrics allocate a few hundred MB of fresh maps per ``evaluate`` call (FFT spectra,
filtered moments), and measured on the ``all`` group (one thread, idle machine, session 9) the system
time of 6 + 3 + 2 calls at 256²/512²/1024² fell from 15.5 s to 1.6 s with the advice off, and the
1024²/256² cost per pixel from 1.19-1.46 (erratic) to 1.12-1.14 (docs/metrics.md).

:func:`small_pages` turns NumPy's advice off for its duration and restores the previous setting on
the last exit (nesting and concurrent ``evaluate`` calls in several threads are counted under a
lock).  :func:`small_pages_for_process` turns it off for a runner worker's whole life (its fusions allocate
the same kind of maps: a first 1024² ``nsct.liu`` fusion took 9.25 s with the advice and 2.17 s without,
9.6 against 0.9 s of system time, idle, session 9).  Both change how pages are backed, never a value.
``FUSIONBENCH_HUGEPAGES=1`` leaves NumPy's setting alone.  Without NumPy's private switch (``numpy._core.multiarray._set_madvise_hugepage``,
NumPy ≥ 1.20) it does nothing.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from .config import hugepages


def _switch() -> Callable[[bool], bool] | None:
    for name in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            module = __import__(name, fromlist=["_set_madvise_hugepage"])
        except ImportError:
            continue
        fn = getattr(module, "_set_madvise_hugepage", None)
        if fn is not None:
            return fn
    return None


_SET = _switch()
_LOCK = threading.Lock()
_state = {"depth": 0, "saved": True}


@contextmanager
def small_pages() -> Iterator[None]:
    """NumPy's huge-page advice off inside the block (see the module docstring)."""
    if _SET is None or hugepages():
        yield
        return
    with _LOCK:
        if _state["depth"] == 0:
            _state["saved"] = _SET(False)
        _state["depth"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _state["depth"] -= 1
            if _state["depth"] == 0:
                _SET(_state["saved"])


def small_pages_for_process() -> bool:
    """Turn NumPy's huge-page advice off for the rest of this process (a runner worker; see the module
    docstring).  Returns whether it was turned off (not without NumPy's switch or with ``FUSIONBENCH_HUGEPAGES=1``)."""
    if _SET is None or hugepages():
        return False
    with _LOCK:
        if _state["depth"] == 0:
            _SET(False)
        else:  # inside small_pages(): its last exit restores this, not the setting it saved
            _state["saved"] = False
    return True
