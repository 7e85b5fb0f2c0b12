"""Band workers: torch's N intra-op threads become N single-threaded Python threads that run whole bands.

Used by the inference paths of SwinFusion (:mod:`methods._swin_blocks`: chunks of windows), MATR
(:mod:`methods._matr_net`: bands of rows) and mopa (:mod:`methods.mopa._banded`: bands of rows).  Their bands
(spans) are independent, so instead of splitting every small operation N ways inside torch (an OpenMP
barrier per operation; libgomp's idle threads then busy-wait and, on a loaded machine, a descheduled thread
stalls every barrier), N Python threads each run whole spans with torch on one thread; torch releases the GIL
inside its operations, so the threads run on N cores.

Conventions:

* :func:`band_workers` (a context manager around a whole inference pass) turns torch's N threads into N
  workers for the calling thread: torch is set to 1 thread inside and restored afterwards.  It does nothing
  with one torch thread, with autograd enabled (training keeps torch's own threading), or under a torch
  dispatch mode such as ``torch.utils.flop_counter.FlopCounterMode`` (the mode is thread-local: it would miss
  the workers' operations).
* :func:`workers` is the calling thread's worker count (1 outside :func:`band_workers` and on every worker
  thread: spans never nest onto the pool).
* :func:`run_spans` calls ``fn(span)`` once for every span.  With one worker, in order on the calling thread.
  Otherwise either each span is a task of a shared pool of N threads (any thread takes the next span), or,
  with ``contiguous=True``, the spans are cut into N runs of consecutive spans, the first run on the calling
  thread and each other on its own thread of a pool of N − 1 (a worker then writes the same rows in every
  stage and finds them in its cache in the next one).  Each worker runs its spans in their order.  The
  caller's inference / no-grad mode (thread-local in torch) is carried to the workers.  Every span's task is
  finished before :func:`run_spans` returns or raises (the first exception in span order is raised).
* :func:`both` runs two independent calls side by side when there are exactly two workers (SwinFusion's
  two modality streams), and :func:`all_cores` gives a single large operation all N cores.

Results do not depend on the number of workers as long as ``fn`` writes disjoint outputs per span (each
caller's tests pin 1 vs 2 threads).  Pools are created on first use and kept for the process, one per size
(:func:`fusionbench.thread_pools.thread_pool`, which a forked child does not inherit: there it makes its own).

Imported lazily by the methods (it imports torch, no numba).
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import threading
from typing import Callable, Iterator, Sequence, TypeVar

import torch

from fusionbench.thread_pools import thread_pool

__all__ = ["band_workers", "workers", "run_spans", "both", "all_cores", "pool"]

S = TypeVar("S")
T = TypeVar("T")
U = TypeVar("U")

#: per calling thread, how many threads share out the spans (set by :func:`band_workers`)
_STATE = threading.local()
#: the name of the band workers' pools (one per size)
POOL_NAME = "band-workers"


@contextlib.contextmanager
def band_workers() -> Iterator[None]:
    """Within the block, torch's N intra-op threads become N band workers for the calling thread.

    Only for inference (autograd disabled) with N > 1 outside a torch dispatch mode; otherwise nothing
    changes.  Torch runs on one thread inside the block; its thread count is restored afterwards.
    """
    n = torch.get_num_threads()
    if n <= 1 or torch.is_grad_enabled() or torch._C._len_torch_dispatch_stack() > 0:
        yield
        return
    old = workers()
    torch.set_num_threads(1)
    _STATE.workers = n
    try:
        yield
    finally:
        _STATE.workers = old
        torch.set_num_threads(n)


def workers() -> int:
    """Threads sharing out the spans for the calling thread (1: :func:`run_spans` runs them in order)."""
    return getattr(_STATE, "workers", 1)


def pool(threads: int) -> concurrent.futures.ThreadPoolExecutor:
    """The process's pool of ``threads`` threads (created on first use).

    Tasks are taken in the order they were submitted, each by a thread that is idle; with two workers and
    ``contiguous=True`` there is a single pool thread, always the same."""
    return thread_pool(POOL_NAME, threads)


def _carrying_mode(fn: Callable[[T], U]) -> Callable[[T], U]:
    """``fn`` wrapped to run in the caller's inference or no-grad mode (torch's modes are thread-local)."""
    inference = torch.is_inference_mode_enabled()

    def task(arg: T) -> U:
        with torch.inference_mode() if inference else torch.no_grad():
            return fn(arg)

    return task


def _finish(futures: list[concurrent.futures.Future]) -> None:
    """Wait for every future, then raise the first exception among them (in their order), if any."""
    concurrent.futures.wait(futures)
    for future in futures:
        future.result()


def run_spans(fn: Callable[[S], object], spans: Sequence[S], *, contiguous: bool = False) -> None:
    """``fn(span)`` for every span: on the :func:`band_workers` threads when there are several, else in order.

    ``contiguous=False``: every span is one task of the pool of N threads.  ``contiguous=True``: the spans cut
    into ``min(N, len(spans))`` runs of consecutive spans (``spans[round(i·L/n):round((i+1)·L/n)]``), the first
    run on the calling thread, each other one a task of the pool of n − 1 threads.  Returns (or raises the first
    exception) once every span has run.
    """
    n = min(workers(), len(spans))
    if n <= 1:
        for span in spans:
            fn(span)
        return
    if not contiguous:
        task = _carrying_mode(fn)
        shared = pool(workers())
        _finish([shared.submit(task, span) for span in spans])
        return

    def run(bands: Sequence[S]) -> None:
        for span in bands:
            fn(span)

    runs = [spans[round(i * len(spans) / n):round((i + 1) * len(spans) / n)] for i in range(n)]
    task = _carrying_mode(run)
    extra = pool(n - 1)
    futures = [extra.submit(task, bands) for bands in runs[1:]]
    try:
        run(runs[0])
    finally:
        concurrent.futures.wait(futures)  # every worker done before returning or raising
    _finish(futures)


def both(first: Callable[[], T], second: Callable[[], U]) -> tuple[T, U]:
    """``(first(), second())``; with exactly two workers the two run at once, one per core.

    ``first`` runs on a pool thread and ``second`` on the calling thread, each with one worker (spans in order
    inside either).  Both finish before this returns or raises."""
    if workers() != 2:
        return first(), second()
    future = pool(2).submit(_carrying_mode(lambda _: first()), None)
    _STATE.workers = 1
    try:
        out = second()
    finally:
        _STATE.workers = 2
        concurrent.futures.wait([future])
    return future.result(), out


@contextlib.contextmanager
def all_cores() -> Iterator[None]:
    """Within the block, a single large operation (a convolution between banded stages) uses every worker's core.

    With N workers torch gets its N threads back inside the block (one again afterwards); a convolution's output
    does not depend on the thread count (measured bit-identical for SwinFusion's).  Nothing changes with one worker.
    """
    n = workers()
    if n <= 1:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(1)
