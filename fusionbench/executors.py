"""Where the work runs: a local process pool (default) or a Dask cluster.

Both yield worker results as they complete; the caller (the client) is the
only writer of the results database.  The unit of work is one
:class:`fusionbench.worker.Task` (method, pair).
"""
from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Iterable, Iterator

from .worker import Task, run_task


def _crash_result(task: Task, message: str) -> dict[str, Any]:
    return {
        "dataset": task.dataset, "pair": task.pair, "method": task.method, "method_key": task.method_key,
        "pair_sha256": task.pair_sha256, "path": None, "seconds": None, "scores": {},
        "failures": [{"stage": "fuse", "metric": "", "error": "WorkerCrash", "message": message, "traceback": ""}],
    }


def run_inline(tasks: Iterable[Task]) -> Iterator[dict[str, Any]]:
    """Run tasks in this process (``--workers 0``; debugging)."""
    for task in tasks:
        yield run_task(task)


_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


def _init_worker(threads: int) -> None:
    """Cap each worker's BLAS/torch/numba threads so that N workers do not oversubscribe N cores."""
    for var in _THREAD_VARS:
        os.environ.setdefault(var, str(threads))
    os.environ["FUSIONBENCH_WORKER_THREADS"] = str(threads)


def run_local(tasks: Iterable[Task], workers: int | None = None) -> Iterator[dict[str, Any]]:
    """Run tasks on a pool of ``workers`` processes (default: one per core).

    At most ``2 × workers`` tasks are in flight.  Each worker gets
    ``cores // workers`` BLAS/OpenMP threads (``OMP_NUM_THREADS`` unless set).  A worker that dies (segfault,
    out of memory) fails the tasks that were in flight with ``WorkerCrash``;
    the pool is rebuilt and the run goes on.
    """
    workers = workers or os.cpu_count() or 1
    ctx = multiprocessing.get_context("spawn")
    queue = deque(tasks)
    threads = max(1, (os.cpu_count() or 1) // workers)
    make_pool = lambda: ProcessPoolExecutor(max_workers=workers, mp_context=ctx,  # noqa: E731
                                            initializer=_init_worker, initargs=(threads,))
    pool = make_pool()
    in_flight: dict[Future, Task] = {}
    try:
        while queue or in_flight:
            while queue and len(in_flight) < 2 * workers:
                task = queue.popleft()
                in_flight[pool.submit(run_task, task)] = task
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                task = in_flight.pop(fut)
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    broken = True
                    yield _crash_result(task, "the worker process died while fusing or scoring this pair")
                except Exception as exc:  # pickling and similar errors
                    yield _crash_result(task, f"{type(exc).__name__}: {exc}")
            if broken:
                for fut, task in list(in_flight.items()):
                    yield _crash_result(task, "the worker pool broke while this pair was in flight")
                in_flight.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = make_pool()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def run_dask(tasks: Iterable[Task], address: str) -> Iterator[dict[str, Any]]:
    """Run tasks on the Dask cluster at ``address`` (``tcp://HOST:PORT``)."""
    from dask.distributed import Client, as_completed

    task_list = list(tasks)
    with Client(address) as client:
        futures = {client.submit(run_task, t, pure=False): t for t in task_list}
        for fut in as_completed(futures):
            task = futures[fut]
            try:
                yield fut.result()
            except Exception as exc:
                yield _crash_result(task, f"dask task failed: {type(exc).__name__}: {exc}")
