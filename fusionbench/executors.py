"""Where the work runs: this process, a local process pool (default) or a Dask cluster.

Each yields :class:`fusionbench.worker.TaskResult` objects as tasks complete;
the caller (the client) writes the fused PNGs into its cache and the results
into the store: it is the only writer of both.  The unit of work is one
:class:`fusionbench.worker.Task` (method, pair); tasks are started in the order
given (the runner sorts them slowest first).

The Dask executor assumes nothing shared with the workers but the installed
package: tasks carry the pair's bytes (or a remote fsspec URL), results carry the
PNG bytes, weights are checked on every worker before the first task and sent
from the client where missing (:func:`prepare_weights`), and each worker's
thread cap is set from its host's cores and the workers on that host
(:func:`set_thread_caps`).  See ``docs/cluster.md``.
"""
from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .config import WORKER_THREADS_ENV, numba_cache_is_empty, worker_threads, worker_threads_fixed
from .config import kill_grace_s as kill_grace
from .pages import small_pages_for_process
from .process_owner import sweep_tempdirs, tagged_tempdir
from .schedule import next_to_hand_out, warming_methods
from .worker import SCRATCH_PREFIX, Task, TaskResult, run_task

#: the pool's folder of watchdog stack dumps (one per pool, in the system's temp folder)
WATCHDOG_PREFIX = "fusionbench-watchdog-"
#: the temporary folders a local pool and its workers make; a new pool removes those whose process is gone
TEMP_PREFIXES = (WATCHDOG_PREFIX, SCRATCH_PREFIX)

Log = Callable[[str], None]
#: how long a Dask run waits for its first worker (and for a new one, when every worker has left)
WAIT_FOR_WORKERS_S = 300
#: how long a Dask run waits for a result before it checks its scheduler and the workers it restricts tasks to
DASK_POLL_S = 2.0


def run_inline(tasks: Iterable[Task]) -> Iterator[TaskResult]:
    """Run tasks in this process (``--workers 0``; debugging)."""
    for task in tasks:
        yield run_task(task)


_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


def _init_worker(threads: int, parent: int | None = None) -> None:
    """Cap each worker's BLAS/torch/numba threads so that N workers do not oversubscribe N cores (the variables,
    unless set in the client's environment, and the libraries the worker has already loaded:
    :func:`cap_loaded_libraries`), turn NumPy's huge-page advice off for the worker's life
    (:func:`fusionbench.pages.small_pages_for_process`), and, given the client's pid, exit when the client is
    gone (:func:`fusionbench.parent_watch.watch_parent`)."""
    for var in _THREAD_VARS:
        os.environ.setdefault(var, str(threads))
    os.environ[WORKER_THREADS_ENV] = str(threads)
    cap_loaded_libraries()
    small_pages_for_process()
    if parent is not None:
        from .parent_watch import watch_parent

        watch_parent(parent)


def cap_loaded_libraries() -> None:
    """Apply the thread variables to the libraries this process has already loaded, which read them only when
    they load: OpenBLAS, MKL and OpenMP get ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` and
    ``OMP_NUM_THREADS`` (threadpoolctl, if installed), numba ``NUMBA_NUM_THREADS`` (if imported).  A spawned
    pool worker has loaded NumPy's OpenBLAS before its initializer runs (unpickling the initializer imports
    this module): without this it ran one OpenBLAS thread per core, cores² threads on the machine."""
    import sys

    def cap(var: str) -> int | None:
        value = os.environ.get(var, "").strip()
        return int(value) if value.isdigit() and int(value) > 0 else None

    per_library = {api: n for api, var in (("openblas", "OPENBLAS_NUM_THREADS"), ("mkl", "MKL_NUM_THREADS"),
                                           ("openmp", "OMP_NUM_THREADS")) if (n := cap(var)) is not None}
    same = set(per_library.values())
    # one cap for all three (the usual case): every library gets it, BLIS and FlexiBLAS included
    limits: int | dict[str, int] = same.pop() if len(per_library) == 3 and len(same) == 1 else per_library
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=limits)
    except ImportError:  # optional: BLAS then keeps the worker's start-up setting
        pass
    numba_cap = cap("NUMBA_NUM_THREADS")
    if "numba" in sys.modules and numba_cap is not None:
        import numba

        capped = min(numba_cap, numba.config.NUMBA_NUM_THREADS)
        if getattr(sys.modules.get("numba.np.ufunc.parallel"), "_is_initialized", True):
            numba.set_num_threads(capped)  # its thread pool runs already
        else:  # not started (nothing here uses numba's parallel loops): capped without starting it
            numba.config.NUMBA_NUM_THREADS = capped


def _start_worker(reports: Any, init: Callable[..., None], *args: Any) -> None:
    """A pool worker's initializer: ``init(*args)`` (:func:`_init_worker`), then one report to the client on
    ``reports`` (a ``SimpleQueue``): ``""`` once the worker has started, else the one-line error that stopped
    it (re-raised: the worker then exits).  A pool that breaks before any worker reported its start could
    not start at all (:func:`_start_failure`)."""
    try:
        init(*args)
    except BaseException as exc:
        text = str(exc).splitlines()[0] if str(exc) else ""
        reports.put(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
        raise
    reports.put("")


def _start_failure(reports: Any) -> str | None:
    """Why the workers of a broken pool never started: the first error a worker reported
    (:func:`_start_worker`), ``""`` when none reported anything (it died before or inside its initializer
    without a word: an import error, a killed start-up), ``None`` when a worker started (the pool broke in
    a task).  Reads every report of the pool: call it once, when the pool has broken."""
    errors, started = [], False
    while not reports.empty():
        report = reports.get()
        if report:
            errors.append(report)
        else:
            started = True
    if errors:
        return errors[0]
    return None if started else ""


def _start_error(cause: str, how: str) -> RuntimeError:
    """The error that stops a run whose pool workers cannot start: ``cause`` from :func:`_start_failure`,
    ``how`` the workers ended (:func:`_how_workers_died`)."""
    why = cause or ("they died before reporting their start; their own error is printed above (a script that "
                    "calls fusionbench.runner.run needs `if __name__ == \"__main__\":`, since each spawned "
                    "worker imports it)")
    return RuntimeError(f"the local pool's worker processes could not start{f' ({how})' if how else ''}: {why}; "
                        "no task was run in them (run the same command again once this is fixed)")


def _run_guarded(task: Task, kill_after_s: float | None, marker: str | None = None) -> TaskResult:
    """:func:`run_task` in a pool worker, which exits (status 1) if the task's fusion is still running
    ``kill_after_s`` seconds after it started (its timeout plus the grace).  The watchdog
    (:func:`fusionbench.worker.watchdog`) is :func:`faulthandler.dump_traceback_later`, a C thread that does
    not need the interpreter, so it also stops a method stuck in compiled code; it is armed around the fusion
    only, never the decoding or the scoring.  It writes its stack dump into the file ``marker`` before the
    exit: a non-empty marker tells the client that the worker it saw die was stopped at the timeout, not
    crashed (:func:`_lost`); a task that returns leaves no marker."""
    if not kill_after_s or not task.timeout:
        return run_task(task)
    from .worker import watchdog

    with open(marker or os.devnull, "w") as dump, watchdog(kill_after_s - task.timeout, dump):
        try:
            return run_task(task)
        finally:
            if marker:
                dump.close()
                Path(marker).unlink(missing_ok=True)


def _stopped_at_timeout(task: Task, marker: Path | None) -> bool:
    """Whether the watchdog of :func:`_run_guarded` stopped the worker running ``task``: its marker holds the
    stack dump (a task that returns, or a worker that crashed, leaves none)."""
    return bool(task.timeout) and marker is not None and marker.is_file() and marker.stat().st_size > 0


def _lost(task: Task, marker: Path | None, how: str = "") -> TaskResult:
    """The result of a task whose worker died while it alone was in flight: its own timeout when the watchdog
    of :func:`_run_guarded` stopped it (:func:`_stopped_at_timeout`), else a crash (``how``: the worker's
    exit, :func:`_how_workers_died`)."""
    if _stopped_at_timeout(task, marker):
        return TaskResult.crashed(task, f"exceeded the per-pair timeout of {task.timeout:g} s in code that does "
                                        "not return to Python (e.g. a compiled loop); its worker was stopped",
                                  error="PairTimeout")
    return TaskResult.crashed(task, "the worker process died" + (f" ({how})" if how else "")
                              + " while fusing or scoring this pair")


def _how_workers_died(pool: ProcessPoolExecutor) -> str:
    """How the workers of a broken ``pool`` ended, other than by the SIGTERM the pool sends the survivors when
    it breaks: ``"killed by SIGSEGV"``, ``"exit status 7"`` (several joined by commas); ``""`` when unknown."""
    import signal

    # The pool's manager thread reaps the workers of a broken pool (it terminates and joins them).  Reading an
    # exit code while it does races with it: the second ``waitpid`` of one child fails, and ``exitcode`` stays
    # ``None`` for ever (about 1 in 20 crashes lost their exit status).  So wait for that thread first; the
    # per-process join is the fallback when it is stuck (a worker that ignores SIGTERM).
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is not None:
        manager.join(timeout=5.0)
    how = []
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.join(timeout=1.0)
        code = process.exitcode
        if code is None or code == -signal.SIGTERM:
            continue
        if code < 0:
            try:
                how.append(f"killed by {signal.Signals(-code).name}")
            except ValueError:
                how.append(f"killed by signal {-code}")
        else:
            how.append(f"exit status {code}")
    return ", ".join(dict.fromkeys(how))


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Shut ``pool`` down without waiting, terminating workers that are still busy (an interrupted run)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # shutdown forgets them
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.terminate()


def run_local(tasks: Iterable[Task], workers: int | None = None,
              kill_grace_s: float | None = None) -> Iterator[TaskResult]:
    """Run tasks on a pool of ``workers`` processes (default: one per core).

    At most ``2 × workers`` tasks are in flight.  Each worker gets ``cores // workers`` BLAS/OpenMP threads
    (``OMP_NUM_THREADS`` unless set; libraries it has already loaded included).  A task with a timeout is
    stopped by its worker's ``SIGALRM`` at the timeout, or, in code that does not return to Python, by the
    worker exiting ``kill_grace_s`` later (default ``$FUSIONBENCH_KILL_GRACE_S``, 30 s; :func:`_run_guarded`).
    When a worker dies (a crash, out of memory, such a stop), the pool is rebuilt; a task in flight that the
    watchdog stopped is recorded as its ``PairTimeout`` at once, and the other tasks that were in flight are
    run again one at a time (also one that was alone in flight: the worker that died may have been another,
    idle one): one that breaks the pool while it runs alone as such a suspect is recorded as a ``WorkerCrash`` (or its
    ``PairTimeout``), the others complete as if nothing had happened.  A pool whose workers could not start
    (their initializer failed, or they died before it ended) stops the run with one ``RuntimeError`` naming
    the cause (:func:`_start_failure`), blaming no task.  On an interrupt the busy workers are terminated.
    Tasks are handed out in the given order, except where numba's kernel cache is empty (the first run after an
    installation): then a method's first use is kept apart (:func:`schedule.next_to_hand_out`).
    """
    import shutil

    workers = workers or os.cpu_count() or 1
    kill_grace_s = kill_grace_s if kill_grace_s is not None else kill_grace()
    ctx = multiprocessing.get_context("spawn")
    queue = deque(tasks)
    suspects: deque[Task] = deque()  # in flight when the pool broke: re-run alone to find the culprit
    threads = max(1, (os.cpu_count() or 1) // workers)
    sweep_tempdirs(TEMP_PREFIXES)  # what earlier pools killed with -9 left (their atexit clean-up never ran)
    markers = tagged_tempdir(WATCHDOG_PREFIX)  # the watchdogs' stack dumps
    count = 0
    reports: Any = None  # the current pool's start reports (:func:`_start_worker`)

    def make_pool() -> ProcessPoolExecutor:
        nonlocal reports
        reports = ctx.SimpleQueue()
        return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_start_worker,
                                   initargs=(reports, _init_worker, threads, os.getpid()))

    def rebuild(broken_pool: ProcessPoolExecutor) -> tuple[ProcessPoolExecutor, str]:
        """A fresh pool for a broken one, and how the broken one's workers died; ``RuntimeError`` instead when
        none of them ever started (a new pool would fail the same way, and no task is to blame)."""
        how = _how_workers_died(broken_pool)
        broken_pool.shutdown(wait=False, cancel_futures=True)
        cause = _start_failure(reports)
        reports.close()
        if cause is not None:
            raise _start_error(cause, how)
        return make_pool(), how

    pool = make_pool()
    in_flight: dict[Future, tuple[Task, Path | None]] = {}

    def submit(task: Task) -> bool:
        """Put ``task`` in flight; ``False`` when the pool has broken meanwhile (a worker died after its
        result was collected): the caller puts the task back and the broken futures are collected below."""
        nonlocal count
        count += 1
        kill_after = _kill_after(task, kill_grace_s)
        marker = markers / f"{count}.dump" if kill_after else None
        try:
            fut = pool.submit(_run_guarded, task, kill_after, str(marker) if marker else None)
        except BrokenProcessPool:
            return False
        in_flight[fut] = (task, marker)
        return True

    alone: Task | None = None  # the suspect running alone: if the pool breaks now, it is the cause
    # first uses apart (:func:`schedule.next_to_hand_out`) where the kernel cache is empty, as after an installation
    hold_first_uses = numba_cache_is_empty()
    came_back: set[str] = set()  # methods with a fusing task come back (:func:`schedule.warming_methods`)
    try:
        while queue or suspects or in_flight:
            broken = False
            if suspects:
                if not in_flight:
                    if submit(suspects[0]):
                        alone = suspects.popleft()
                    else:
                        broken = True
            else:
                while queue and len(in_flight) < 2 * workers:
                    i = (next_to_hand_out(queue, warming_methods((t for t, _ in in_flight.values()), came_back))
                         if hold_first_uses else 0)
                    if not submit(queue[i]):
                        broken = True
                        break
                    del queue[i]
            if broken and not in_flight:  # nothing in flight to collect: a fresh pool for the next task
                pool, _ = rebuild(pool)
                continue
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            lost: list[tuple[Task, Path | None]] = []
            for fut in done:
                task, marker = in_flight.pop(fut)
                if task.given is None:
                    came_back.add(task.method)
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    lost.append((task, marker))
                except Exception as exc:  # pickling and similar errors
                    yield TaskResult.crashed(task, f"{type(exc).__name__}: {exc}")
            if lost or broken:
                for fut, (task, marker) in list(in_flight.items()):  # every other future of a broken pool fails
                    if fut.done() and not fut.cancelled() and fut.exception() is None:
                        if task.given is None:
                            came_back.add(task.method)
                        yield fut.result()  # except those that finished before the break: kept, not re-run
                    else:
                        lost.append((task, marker))
                in_flight.clear()
                pool, how = rebuild(pool)
                for task, marker in lost:
                    if task is alone:  # it ran alone: it broke the pool
                        yield _lost(task, marker, how)
                    elif _stopped_at_timeout(task, marker):  # its watchdog stopped it: no need to run it again
                        yield _lost(task, marker)
                    else:  # in flight when a worker died: maybe the cause, maybe a bystander (even when alone
                        suspects.append(task)  # in flight: an idle worker, or one whose task ended, can die too)
                alone = None
    except BaseException:  # an interrupt, the consumer stopped, workers that cannot start: none may outlive the run
        _stop_workers(pool)
        raise
    else:
        pool.shutdown(wait=False, cancel_futures=True)
    finally:
        shutil.rmtree(markers, ignore_errors=True)
        reports.close()


def _kill_after(task: Task, grace_s: float) -> float | None:
    """Seconds after which a pool worker running ``task`` stops itself (None: the task has no timeout)."""
    return task.timeout + grace_s if task.timeout else None


# --------------------------------------------------------------------------- Dask: functions run on workers
def _tune_malloc() -> bool:
    """On a worker started by a Dask nanny: undo the cost of its ``MALLOC_TRIM_THRESHOLD_`` (glibc only).

    Setting that variable switches off glibc's dynamic mmap threshold, so every numpy array over 128 kB is
    a fresh ``mmap`` with its page faults; scoring then ran 1.3-1.5x slower than in a local pool worker
    (``docs/cluster.md``).  A fixed 32 MiB mmap threshold and a 256 MiB trim threshold keep such arrays on
    the heap.  Returns whether it applied.
    """
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-1, 256 << 20) and libc.mallopt(-3, 32 << 20))  # M_TRIM_ / M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc
        return False


def _apply_thread_cap(threads: int) -> int:
    """On a worker: cap BLAS/OpenMP/numba/torch/FFT threads of what it runs next (fusion children included),
    and tune its allocator (:func:`_tune_malloc`) and NumPy's page advice (:func:`small_pages_for_process`)."""
    _tune_malloc()
    small_pages_for_process()
    if worker_threads_fixed():  # set by the worker's own options: keep its cap
        return worker_threads() or os.cpu_count() or 1  # what it runs with: its own cap, else every core
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    os.environ[WORKER_THREADS_ENV] = str(threads)
    cap_loaded_libraries()  # libraries already loaded in this worker read their variables at import
    return threads


def _missing_weights(names: list[str]) -> dict[str, str]:
    """On a worker: ``{weight name: why unusable}`` for each of ``names`` not verified in its cache."""
    from .weights import weights_path

    missing = {}
    for name in names:
        try:
            weights_path(name)
        except Exception as exc:  # noqa: BLE001 - missing, corrupted, unknown: all reported
            missing[name] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return missing


def _install_weights(name: str, data: bytes) -> str | None:
    """On a worker: put ``data`` in its cache as weights ``name`` if its sha256 is the pinned one; else the reason."""
    from .io import atomic_write
    from .weights import WEIGHTS, cached_path, verify_file

    target = cached_path(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_write(target) as tmp:  # removed again if the bytes are refused
            tmp.write_bytes(data)
            verify_file(tmp, WEIGHTS.get(name).info.sha256, fix="sent by the client")
        return None
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _fetch_weights(name: str) -> str | None:
    """On a worker: fetch weights ``name`` by the pinned download; ``None`` or the reason it failed."""
    from .weights import fetch_weights

    try:
        fetch_weights(name)
        return None
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


# --------------------------------------------------------------------------- Dask: client side
def set_thread_caps(client: Any) -> dict[str, int]:
    """Give each worker ``cores on its host // task threads on its host`` threads per task (as the local pool).

    A worker started with ``FUSIONBENCH_WORKER_THREADS_FIXED=1`` in its
    environment keeps its own ``FUSIONBENCH_WORKER_THREADS``.  Returns ``{worker: cap}``.
    """
    info = client.scheduler_info()["workers"]
    cores = client.run(os.cpu_count)
    per_host: dict[str, int] = {}
    for addr, w in info.items():
        per_host[w["host"]] = per_host.get(w["host"], 0) + int(w.get("nthreads", 1))
    caps = {}
    for addr, w in info.items():
        cap = max(1, int(cores.get(addr) or 1) // max(1, per_host[w["host"]]))
        caps[addr] = client.run(_apply_thread_cap, cap, workers=[addr])[addr]
    return caps


def _weights_of(tasks: list[Task]) -> dict[str, tuple[str, ...]]:
    """``{method: weight names}`` of the registered methods the tasks fuse with."""
    from .method_registry import METHODS

    out = {}
    for method in {t.method for t in tasks if t.given is None}:
        entry = METHODS.find(method)
        if entry is not None and entry.info.weights:
            out[method] = tuple(entry.info.weights)
    return out


def prepare_weights(client: Any, tasks: list[Task], log: Log) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Make the weights of the tasks' methods usable on every worker before the first task.

    Each worker is checked (file present and its sha256 the pinned one); a
    worker lacking a file gets it from the client (read from the client's
    verified cache, sent once per worker, verified there before it is moved
    into the worker's cache), else fetches it by the pinned download.  Returns
    ``(restrict, fail)``: ``restrict[method]`` lists the workers to use when some
    still lack the weights (one line logged per such worker), ``fail[method]``
    the one-line reason when no worker has them.
    """
    from .weights import weights_path

    needs = _weights_of(tasks)
    names = sorted({n for ns in needs.values() for n in ns})
    if not names:
        return {}, {}
    missing: dict[str, dict[str, str]] = client.run(_missing_weights, names)
    sent = 0
    for name in names:
        lacking = [addr for addr, miss in missing.items() if name in miss]
        if not lacking:
            continue
        try:
            data = weights_path(name).read_bytes()
        except Exception:  # noqa: BLE001 - the client lacks it too: workers fetch it themselves
            data = None
        errors = (client.run(_install_weights, name, data, workers=lacking) if data is not None
                  else {addr: "the client has no verified copy" for addr in lacking})
        sent += sum(len(data) for addr in lacking if errors.get(addr) is None) if data is not None else 0
        retry = [addr for addr in lacking if errors.get(addr)]
        if retry:
            fetched = client.run(_fetch_weights, name, workers=retry)
            for addr in retry:
                if fetched.get(addr):
                    missing[addr][name] = f"{errors[addr]}; pinned download failed: {fetched[addr]}"
                else:
                    missing[addr].pop(name, None)
        for addr in lacking:
            if errors.get(addr) is None:
                missing[addr].pop(name, None)
    if sent:
        size = f"{sent / 1e6:.1f} MB" if sent >= 1e6 else f"{sent / 1e3:.1f} kB"
        log(f"dask: sent {size} of weights to workers (sha256-verified there)")
    restrict: dict[str, list[str]] = {}
    fail: dict[str, str] = {}
    for method, wnames in needs.items():
        bad = {addr: "; ".join(f"{n}: {miss[n]}" for n in wnames if n in miss)
               for addr, miss in missing.items() if any(n in miss for n in wnames)}
        if not bad:
            continue
        good = sorted(set(missing) - set(bad))
        for addr, why in sorted(bad.items()):
            log(f"dask: worker {addr} lacks the weights of {method} ({why}); "
                + (f"its tasks run on the other {len(good)} worker(s)" if good else "its tasks fail"))
        if good:
            restrict[method] = good
        else:
            fail[method] = "weights missing on worker(s) " + "; ".join(f"{a} ({w})" for a, w in sorted(bad.items()))
    return restrict, fail


def local_cluster_size(scheduler: str) -> int | None:
    """N of a ``local:N`` scheduler (``local:`` is 1), ``None`` for an address; ``ValueError`` unless N is a whole
    number ≥ 1 (a cluster of 0 workers would leave every task waiting for ever)."""
    if not scheduler.startswith("local:"):
        return None
    text = scheduler.split(":", 1)[1] or "1"
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"scheduler {scheduler!r}: local:N needs a whole number of workers, not {text!r}") from None
    if n < 1:
        raise ValueError(f"scheduler {scheduler!r}: local:N needs at least 1 worker")
    return n


def _connect(stack: ExitStack, scheduler: str) -> Any:
    """A client for ``tcp://HOST:PORT`` (or any address Dask takes), or for a new ``local:N`` cluster."""
    from dask.distributed import Client, LocalCluster

    n = local_cluster_size(scheduler)
    if n is not None:
        import dask

        environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
                   if not k.startswith("MALLOC_")}  # see _tune_malloc
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
            cluster = stack.enter_context(LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                                       host="127.0.0.1", dashboard_address=None))
        return stack.enter_context(Client(cluster))
    return stack.enter_context(Client(scheduler))


def _scheduler_address(client: Any, scheduler: str) -> str:
    """The address of ``client``'s scheduler (``scheduler`` as given when it has none)."""
    return str(getattr(client.scheduler, "address", None) or scheduler)


def _lost_scheduler(client: Any, scheduler: str, unfinished: int) -> RuntimeError:
    """The error that ends a Dask run whose client lost its scheduler (``unfinished``: tasks in flight)."""
    address = _scheduler_address(client, scheduler)
    return RuntimeError(f"lost the Dask scheduler at {address} (client {client.status}); {unfinished} task(s) "
                        "in flight were not finished and nothing was recorded for them: the results stored so far "
                        "are kept, run the same command again to resume")


def _scheduler_lost(client: Any, exc: BaseException | None = None) -> bool:
    """Whether ``client`` has lost its scheduler: it is no longer running (it reconnects, or has closed), or
    ``exc`` is the cancellation Dask gives every future when the connection is lost."""
    return client.status != "running" or getattr(exc, "reason", None) == "scheduler-connection-lost"


def _stranded(client: Any, restrict: dict[str, list[str]]) -> dict[str, str]:
    """``{method: why}`` for each method whose tasks may run only on some workers (``restrict``) of which none
    is still in the cluster: its tasks would wait for them for ever."""
    alive = set(client.scheduler_info()["workers"])
    return {method: f"the worker(s) that have its weights ({', '.join(addrs)}) left the cluster, and the "
                    "other workers lack them"
            for method, addrs in restrict.items() if not alive.intersection(addrs)}


def run_dask(tasks: Iterable[Task], scheduler: str, *, log: Log | None = None) -> Iterator[TaskResult]:
    """Run tasks on the Dask cluster at ``scheduler`` (``tcp://HOST:PORT``, or ``local:N`` for a new
    LocalCluster of N single-thread worker processes).

    Tasks are submitted in the given order, at most ``2 × worker threads`` at a
    time (each carrying its images as bytes, read when submitted).  A task Dask
    cannot run (its worker died repeatedly, say) is a ``WorkerCrash`` failure.
    When the client loses its scheduler the run stops with one ``RuntimeError``
    ("lost the Dask scheduler at ADDRESS …"): the tasks in flight are not
    recorded, what was yielded before stays.  Whenever no result came for
    :data:`DASK_POLL_S` seconds the cluster is checked: the tasks of a method
    restricted to workers that have its weights fail (``WeightsUnavailable``)
    once all those workers have left, and a cluster left with no worker for
    :data:`WAIT_FOR_WORKERS_S` seconds stops the run.
    """
    from dask.distributed import wait as wait_for

    log = log or (lambda msg: None)
    task_list = list(tasks)
    if not task_list:  # nothing to do: no cluster to start or connect to
        return
    with ExitStack() as stack:
        client = _connect(stack, scheduler)
        try:
            client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)
        except TimeoutError:
            raise RuntimeError(f"no Dask worker joined the scheduler {scheduler} within {WAIT_FOR_WORKERS_S} s; "
                               "start workers with `dask worker ADDRESS --nthreads 1`") from None
        set_thread_caps(client)
        restrict, fail = prepare_weights(client, task_list, log)
        threads = sum(int(w.get("nthreads", 1)) for w in client.scheduler_info()["workers"].values())
        window = max(4, 2 * threads)
        queue = deque(task_list)
        in_flight: dict[Any, Task] = {}
        no_worker_since: float | None = None
        while queue or in_flight:
            while queue and len(in_flight) < window:
                task = queue.popleft()
                if task.method in fail and task.given is None:
                    yield TaskResult.crashed(task, fail[task.method], error="WeightsUnavailable")
                    continue
                in_flight[client.submit(run_task, task.portable(), pure=False, workers=restrict.get(task.method),
                                        allow_other_workers=False)] = task
            if not in_flight:
                continue
            try:
                wait_for(list(in_flight), timeout=DASK_POLL_S, return_when="FIRST_COMPLETED")
            except (TimeoutError, CancelledError):  # a cancelled future is handled with the others below
                pass
            done = [fut for fut in in_flight if fut.done()]
            if not done:  # nothing finished meanwhile: is the cluster still able to finish the tasks?
                if _scheduler_lost(client):
                    raise _lost_scheduler(client, scheduler, len(in_flight)) from None
                no_worker_since = _check_workers(client, scheduler, no_worker_since)
                for method, why in _stranded(client, restrict).items():
                    log(f"dask: {method}: {why}; its tasks fail")
                    del restrict[method]
                    fail[method] = why
                    for fut, task in list(in_flight.items()):
                        if task.method == method and task.given is None:
                            fut.cancel()
                            del in_flight[fut]
                            yield TaskResult.crashed(task, why, error="WeightsUnavailable")
                continue
            for fut in done:
                task = in_flight.pop(fut)
                if _scheduler_lost(client):  # its result cannot be fetched, nor the others finished
                    raise _lost_scheduler(client, scheduler, len(in_flight) + 1)
                try:
                    result = fut.result()
                except Exception as exc:  # noqa: BLE001 - KilledWorker, a lost connection, ...
                    if _scheduler_lost(client, exc):
                        raise _lost_scheduler(client, scheduler, len(in_flight) + 1) from None
                    result = TaskResult.crashed(task, f"dask could not run this task: {type(exc).__name__}: {exc}")
                fut.release()
                yield result


def _check_workers(client: Any, scheduler: str, since: float | None) -> float | None:
    """When the cluster has no worker: since when (``time.monotonic()``), or ``RuntimeError`` once that has
    lasted :data:`WAIT_FOR_WORKERS_S` seconds; ``None`` while it has workers."""
    import time

    if client.scheduler_info()["workers"]:
        return None
    now = time.monotonic()
    if since is not None and now - since > WAIT_FOR_WORKERS_S:
        raise RuntimeError(f"every Dask worker left the scheduler {_scheduler_address(client, scheduler)} and none "
                           f"joined within {WAIT_FOR_WORKERS_S} s; the results stored so far are kept, run the same "
                           "command again to resume")
    return since if since is not None else now
