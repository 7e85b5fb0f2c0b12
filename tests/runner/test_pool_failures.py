"""A method that kills its worker, calls ``sys.exit()`` or never returns to Python fails alone, in one line,
and the run goes on (``fusionbench.executors.run_local``; the demo plugin of ``tests/plugin_dist``)."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ._fakes import fake_pool, fake_tasks


def _run(plugin_env: dict, tmp_path: Path, data: Path, methods: str, *extra: str, env: dict | None = None,
         timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "fusionbench", "run", "--methods", methods, "--datasets", f"folder:{data}",
           "--metrics", "EN", "--out", str(tmp_path / "out"), "--no-report", *extra]
    return subprocess.run(cmd, env=dict(plugin_env, **(env or {})), capture_output=True, text=True,
                          timeout=timeout, cwd=tmp_path)  # outside the checkout: the installed package


def _rows(tmp_path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(tmp_path / "out" / "results.sqlite") as con:
        return con.execute(sql).fetchall()


def test_a_crashing_method_fails_alone_and_its_neighbours_complete(tmp_path, plugin_env, make_pairs) -> None:
    """Before: every task in flight when ``demo_exit`` killed its worker was recorded as a WorkerCrash, so
    ``demo_slow`` lost pairs to it on every run.  Now those tasks run again one at a time."""
    data = make_pairs(tmp_path / "data", 3)
    done = _run(plugin_env, tmp_path, data, "demo_slow,demo_exit", "--workers", "2",
                env={"DEMO_SLOW_SECONDS": "0.5"})
    assert done.returncode == 0, done.stderr
    failures = _rows(tmp_path, "SELECT method, error FROM failures ORDER BY pair")
    assert failures == [("demo_exit", "WorkerCrash")] * 3
    assert _rows(tmp_path, "SELECT COUNT(*) FROM scores WHERE method = 'demo_slow'") == [(3,)]
    assert done.stdout.count("FAILED") + done.stderr.count("FAILED") == 3


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_method_calling_sys_exit_is_a_failure_not_the_end_of_the_run(tmp_path, plugin_env, make_pairs,
                                                                       workers) -> None:
    """Before: ``sys.exit()`` in a method ended the run with no message and no failure row (in a pool the
    worker's SystemExit was re-raised in the client), and every rerun ended the same way."""
    data = make_pairs(tmp_path / "data", 2)
    temp = tmp_path / "temp"  # the run's system temp folder, holding what two killed processes left
    ended = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                               text=True, check=True).stdout)
    left = [temp / f"fusionbench-watchdog-{ended}-a1", temp / f"fusionbench-worker-{ended}-b2"]
    for folder in left:
        folder.mkdir(parents=True)
    done = _run(plugin_env, tmp_path, data, "average,demo_sysexit", "--workers", workers, env={"TMPDIR": str(temp)})
    assert done.returncode == 0, done.stderr
    assert _rows(tmp_path, "SELECT method, error FROM failures") == [("demo_sysexit", "SystemExit")] * 2
    assert _rows(tmp_path, "SELECT COUNT(*) FROM scores WHERE method = 'average'") == [(2,)]
    if workers != "0":  # a pool sweeps the temporary folders of ended processes, and removes its own
        assert sorted(temp.iterdir()) == []


def test_a_method_that_never_returns_to_python_is_stopped_at_its_timeout(tmp_path, plugin_env, make_pairs) -> None:
    """``demo_stuck`` blocks the SIGALRM of the per-pair timeout, as compiled code that keeps the interpreter
    does in effect: its worker stops itself ``FUSIONBENCH_KILL_GRACE_S`` after the timeout, the task is a
    PairTimeout, and the other method's tasks complete.  Before, the run never ended."""
    data = make_pairs(tmp_path / "data", 2)
    start = time.monotonic()
    done = _run(plugin_env, tmp_path, data, "average,demo_stuck", "--workers", "1", "--timeout", "1",
                env={"DEMO_SLOW_SECONDS": "600", "FUSIONBENCH_KILL_GRACE_S": "1"})
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - start < 120
    failures = _rows(tmp_path, "SELECT method, error, message FROM failures")
    assert [(m, e) for m, e, _ in failures] == [("demo_stuck", "PairTimeout")] * 2
    assert all("per-pair timeout of 1 s" in message for _, _, message in failures)
    assert _rows(tmp_path, "SELECT COUNT(*) FROM scores WHERE method = 'average'") == [(2,)]


_SLOW_SCORING = """
import json, sys, time
import fusionbench.worker as worker
from fusionbench.executors import _run_guarded
from fusionbench.method_registry import create_method

real_score = worker.score
def slow_score(*args, **kwargs):  # scoring that outlasts the timeout plus the grace
    time.sleep(2.5)
    return real_score(*args, **kwargs)
worker.score = slow_score
data, marker = sys.argv[1], sys.argv[2]
task = worker.Task(dataset="d", pair="p000", pair_sha256="0" * 64, method="average",
                   method_key=create_method("average").cache_key(), metrics=("EN",),
                   a=worker.ImageSource.from_path(data + "/a/p000.png"),
                   b=worker.ImageSource.from_path(data + "/b/p000.png"), fused_path="unused.png", timeout=1.0)
result = _run_guarded(task, 1.0 + 0.5, marker)  # the client's kill_after: timeout + grace
print(json.dumps({"scores": result.scores, "failures": [f.error for f in result.failures]}))
"""


def test_the_watchdog_covers_the_fusion_not_the_scoring(tmp_path, make_pairs) -> None:
    """The C watchdog that stops a method stuck in compiled code is armed around the fusion only.  Before, it
    ran from the task's start, so a pair whose scoring took longer than the timeout plus the grace (a slow
    first call, 'all' metrics on a large pair) ended its worker and was recorded as a PairTimeout of a method
    that had finished in milliseconds (seen once in the suite under load: ``average`` timed out)."""
    import json

    data = make_pairs(tmp_path / "data", 1)
    done = subprocess.run([sys.executable, "-c", _SLOW_SCORING, str(data), str(tmp_path / "marker.dump")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]  # before: exit status 1, stopped by the watchdog
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["failures"] == [] and set(out["scores"]) == {"EN"}
    assert not (tmp_path / "marker.dump").exists()


@pytest.mark.usefixtures("sigint_delivered")
def test_an_interrupt_stops_a_worker_stuck_outside_python(tmp_path, plugin_env, make_pairs) -> None:
    """Ctrl-C (SIGINT to the client) while a worker runs code that ignores it: the client terminates its
    workers and exits.  Before, it said "interrupted" and then waited for the worker at exit."""
    data = make_pairs(tmp_path / "data", 1)
    cmd = [sys.executable, "-m", "fusionbench", "run", "--methods", "demo_stuck", "--datasets", f"folder:{data}",
           "--metrics", "EN", "--out", str(tmp_path / "out"), "--no-report", "--workers", "1"]
    proc = subprocess.Popen(cmd, env=dict(plugin_env, DEMO_SLOW_SECONDS="600"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    db = tmp_path / "out" / "results.sqlite"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not db.exists():  # the run has started and planned its task
        time.sleep(0.2)
    time.sleep(3)  # the worker has started and is inside the method
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode != 0 and "interrupted" in err


def test_the_kill_grace_is_read_from_the_environment(monkeypatch) -> None:
    from fusionbench.config import KILL_GRACE_S_DEFAULT, kill_grace_s

    monkeypatch.delenv("FUSIONBENCH_KILL_GRACE_S", raising=False)
    assert kill_grace_s() == KILL_GRACE_S_DEFAULT == 30.0
    monkeypatch.setenv("FUSIONBENCH_KILL_GRACE_S", "2.5")
    assert kill_grace_s() == 2.5
    for bad in ("0", "-1", "nan", "inf", "soon"):
        monkeypatch.setenv("FUSIONBENCH_KILL_GRACE_S", bad)
        with pytest.raises(ValueError, match="FUSIONBENCH_KILL_GRACE_S must be a positive number"):
            kill_grace_s()


_SLOW_CONSUMER = """
import sys, time
import fusionbench.runner as runner
store = runner.write_output
def slow(*args, **kwargs):
    time.sleep(1.0)  # the client stores a result while a worker dies: the pool is broken at the next submit
    return store(*args, **kwargs)
runner.write_output = slow
if __name__ == "__main__":  # spawned workers import this module too
    summary = runner.run(runner.RunConfig(methods=["demo_slow", "demo_exit_late"], datasets=["folder:" + sys.argv[1]],
                                          metrics="EN", workers=2, out=sys.argv[2], quiet=True))
    print("completed", summary.completed, "failures", summary.failures)
"""


def test_a_worker_dying_while_a_result_is_stored_does_not_end_the_run(tmp_path, plugin_env, make_pairs) -> None:
    """Before, the next ``pool.submit`` raised BrokenProcessPool out of the run (recorded as interrupted)."""
    data = make_pairs(tmp_path / "data", 4)
    script = tmp_path / "slow_consumer.py"
    script.write_text(_SLOW_CONSUMER)
    done = subprocess.run([sys.executable, str(script), str(data), str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=240, cwd=tmp_path,
                          env=dict(plugin_env, DEMO_SLOW_SECONDS="0.2", DEMO_EXIT_AFTER="0.6"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert _rows(tmp_path, "SELECT method, error FROM failures") == [("demo_exit_late", "WorkerCrash")] * 4
    assert _rows(tmp_path, "SELECT COUNT(*) FROM scores WHERE method = 'demo_slow'") == [(4,)]


def test_an_instant_crash_is_a_crash_not_a_timeout(tmp_path, plugin_env, make_pairs) -> None:
    """The watchdog's stack dump, not the time since the task was queued, tells a timeout from a crash: before,
    ``demo_exit`` under ``--timeout 0.3`` was a PairTimeout (pool start-up counted as its run time)."""
    data = make_pairs(tmp_path / "data", 1)
    done = _run(plugin_env, tmp_path, data, "demo_exit", "--workers", "1", "--timeout", "0.3")
    assert done.returncode == 0, done.stderr
    assert _rows(tmp_path, "SELECT error FROM failures") == [("WorkerCrash",)]
    # the message says how the worker ended (``os._exit(3)``); before, only that it died
    assert _rows(tmp_path, "SELECT message FROM failures") == [
        ("the worker process died (exit status 3) while fusing or scoring this pair",)]


def test_a_crash_keeps_its_exit_status_while_the_pool_reaps_its_worker() -> None:
    """The broken pool's manager thread reaps (``waitpid``) its dead worker and, preempted, only then records the
    exit status.  Reading ``exitcode`` in that window failed (the second ``waitpid`` gets ECHILD), and the crash
    lost "(exit status 3)" about 1 time in 20; :func:`_how_workers_died` now waits for the manager thread."""
    import multiprocessing
    import threading
    from types import SimpleNamespace

    from fusionbench.executors import _how_workers_died

    worker = multiprocessing.get_context("spawn").Process(target=os._exit, args=(3,))
    worker.start()
    os.waitid(os.P_PID, worker.pid, os.WEXITED | os.WNOWAIT)  # it has exited (not reaped): no timing below

    reaped = threading.Event()

    def manager() -> None:  # reaps the child, then is slow to record what it found, as a preempted thread is
        _, status = os.waitpid(worker.pid, 0)
        reaped.set()
        time.sleep(0.3)
        worker._popen.returncode = os.waitstatus_to_exitcode(status)

    thread = threading.Thread(target=manager)
    thread.start()
    assert reaped.wait(timeout=60)  # the manager is in its window: the child is reaped, its status not recorded
    pool = SimpleNamespace(_processes={worker.pid: worker}, _executor_manager_thread=thread)
    assert _how_workers_died(pool) == "exit status 3"


def test_a_bad_kill_grace_is_refused_before_any_run_row(tmp_path, make_pairs, monkeypatch) -> None:
    from fusionbench.runner import RunConfig, run

    data = make_pairs(tmp_path / "data", 1)
    monkeypatch.setenv("FUSIONBENCH_KILL_GRACE_S", "soon")
    with pytest.raises(ValueError, match="FUSIONBENCH_KILL_GRACE_S must be a positive number"):
        run(RunConfig(methods=["average"], datasets=[f"folder:{data}"], metrics="EN", out=str(tmp_path / "out"),
                      workers=1, quiet=True), log=lambda m: None)
    assert not (tmp_path / "out" / "results.sqlite").exists()


def test_a_result_finished_before_the_pool_broke_is_kept_not_rerun(monkeypatch, tmp_path) -> None:
    """Two tasks in flight: 'ok' has finished, 'crash' breaks the pool, and one wait() reports only the broken
    future.  The finished result is yielded once and 'ok' is never submitted again; 'crash', the one task lost,
    runs again alone in a fresh pool (a bystander would complete there), breaks it again and is a WorkerCrash."""
    from concurrent.futures.process import BrokenProcessPool

    from fusionbench import executors
    from fusionbench.worker import TaskResult

    submitted: list[str] = []

    def outcome(task, marker, n_pools):
        return BrokenProcessPool("worker died") if task.method == "crash" else TaskResult.of(task, scores={"EN": 1.0})

    def fake_wait(fs, return_when=None):
        broken = {f for f in fs if f.exception() is not None}
        done = broken or set(fs)
        return done, set(fs) - done

    monkeypatch.setattr(executors, "ProcessPoolExecutor", fake_pool(outcome, submitted, []))
    monkeypatch.setattr(executors, "wait", fake_wait)
    results = list(executors.run_local(fake_tasks(tmp_path, ["crash", "ok"]), workers=2, kill_grace_s=1.0))
    assert submitted == ["crash", "ok", "crash"]
    assert sorted((r.method, bool(r.failures)) for r in results) == [("crash", True), ("ok", False)]


def test_a_task_alone_in_flight_when_another_worker_dies_is_not_blamed(monkeypatch, tmp_path) -> None:
    """The first pool breaks under 'bystander', the only task in flight, because some other worker died (idle,
    or after its result was collected).  Before, a task lost alone was a WorkerCrash at once; now it runs again
    alone in a fresh pool and completes (the flaky-test audit of session 26)."""
    from concurrent.futures.process import BrokenProcessPool

    from fusionbench import executors
    from fusionbench.worker import TaskResult

    submitted: list[str] = []

    def outcome(task, marker, n_pools):
        return BrokenProcessPool("a worker died") if n_pools == 1 else TaskResult.of(task, scores={"EN": 1.0})

    monkeypatch.setattr(executors, "ProcessPoolExecutor", fake_pool(outcome, submitted, []))
    results = list(executors.run_local(fake_tasks(tmp_path, ["bystander"]), workers=2, kill_grace_s=1.0))
    assert submitted == ["bystander", "bystander"]
    assert [(r.method, r.failures) for r in results] == [("bystander", [])]


def test_a_task_its_watchdog_stopped_is_a_timeout_without_a_rerun(monkeypatch, tmp_path) -> None:
    """The pool breaks with two tasks in flight; the watchdog of 'stuck' wrote its stack dump into its marker.
    'stuck' is recorded as its PairTimeout at once and only 'ok' is run again alone.  Before, both were
    suspects: 'stuck' ran again alone, costing its timeout plus the grace a second time, the queue paused."""
    from concurrent.futures.process import BrokenProcessPool

    from fusionbench import executors
    from fusionbench.worker import TaskResult

    submitted: list[str] = []

    def outcome(task, marker, n_pools):
        if n_pools == 1:  # the first pool breaks under both tasks, the watchdog having stopped 'stuck'
            if task.method == "stuck":
                Path(marker).write_text("Thread 0x1 (most recent call first): ...")
            return BrokenProcessPool("worker died")
        return TaskResult.of(task, scores={"EN": 1.0})

    monkeypatch.setattr(executors, "ProcessPoolExecutor", fake_pool(outcome, submitted, []))
    results = list(executors.run_local(fake_tasks(tmp_path, ["stuck", "ok"], timeout=1.0), workers=2,
                                       kill_grace_s=1.0))
    assert submitted == ["stuck", "ok", "ok"]
    assert sorted((r.method, [f.error for f in r.failures]) for r in results) == [("ok", []),
                                                                                  ("stuck", ["PairTimeout"])]


def _never_starts(monkeypatch, how: str) -> None:
    """Make the pool's workers fail at start: ``"raises"``, its initializer raises (a shared library missing);
    ``"silent"``, it dies in its start-up without reporting anything (the initializer itself replaced)."""
    import functools

    from fusionbench import executors

    if how == "raises":  # run in the worker as os.open(path, threads, pid): FileNotFoundError naming the path
        monkeypatch.setattr(executors, "_init_worker", functools.partial(os.open, "/nonexistent/libfusion-gone.so"))
    else:  # os.abort(reports, init, threads, pid) raises TypeError before any report
        monkeypatch.setattr(executors, "_start_worker", os.abort)


@pytest.mark.parametrize(("how", "message"), [
    ("raises", "could not start.*FileNotFoundError.*libfusion-gone.so"),
    ("silent", "could not start.*died before reporting their start.*__main__"),
])
def test_workers_that_cannot_start_stop_the_run_in_one_error(monkeypatch, tmp_path, how, message) -> None:
    """Before, each task was recorded as a WorkerCrash ("the worker process died (exit status 0)") with a
    fresh pool started per task, and the run ended "done" with every task failed."""
    from concurrent.futures import ProcessPoolExecutor

    from fusionbench import executors

    pools: list[object] = []

    class CountedPool(ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(self)
            super().__init__(*args, **kwargs)

    _never_starts(monkeypatch, how)
    monkeypatch.setattr(executors, "ProcessPoolExecutor", CountedPool)
    results = []
    with pytest.raises(RuntimeError, match=message):
        for result in executors.run_local(fake_tasks(tmp_path, ["average"] * 3), workers=1, kill_grace_s=1.0):
            results.append(result)
    assert results == [] and len(pools) == 1


def test_a_pool_worker_caps_the_blas_it_has_already_loaded(monkeypatch) -> None:
    """A spawned worker has loaded NumPy's OpenBLAS before its initializer sets ``OPENBLAS_NUM_THREADS`` (the
    initializer's module imports NumPy): the initializer also caps the loaded libraries (threadpoolctl), as a
    Dask worker's cap does.  Before, each of N workers ran one OpenBLAS thread per core."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from fusionbench import executors

    threadpoolctl = pytest.importorskip("threadpoolctl")
    for var in executors._THREAD_VARS:
        monkeypatch.delenv(var, raising=False)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=executors._init_worker,
                             initargs=(1,)) as pool:
        info = pool.submit(threadpoolctl.threadpool_info).result(timeout=120)
    if not any(lib["user_api"] == "blas" for lib in info):
        pytest.skip("no BLAS library that threadpoolctl knows is loaded with NumPy here")
    assert {(lib["internal_api"], lib["num_threads"]) for lib in info} == {(lib["internal_api"], 1) for lib in info}
