"""Dask runs: the same scores as the local pool, with workers that share no files with the client (issue 18)."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from fusionbench.runner import RunConfig, run

Q = "SELECT pair, method, metric, value FROM scores ORDER BY pair, method, metric"


def _rows(db: Path, q: str = Q) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(q).fetchall()
    finally:
        con.close()


def test_dask_cluster_matches_local_run(tmp_path, make_pairs) -> None:
    distributed = pytest.importorskip("dask.distributed")
    data = make_pairs(tmp_path / "data", 3)
    base = dict(methods=["average,dwt"], datasets=[f"folder:{data}"], metrics="EN,SD", quiet=True)
    run(RunConfig(out=str(tmp_path / "local"), workers=1, **base), log=lambda m: None)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", processes=True,
                                  dashboard_address=None) as cluster:
        summary = run(RunConfig(out=str(tmp_path / "dask"), scheduler=cluster.scheduler_address, **base),
                      log=lambda m: None)
        again = run(RunConfig(out=str(tmp_path / "dask"), scheduler=cluster.scheduler_address, **base),
                    log=lambda m: None)
    assert summary.completed == 6 and summary.failures == 0
    assert again.completed == 0 and again.skipped_done == 6  # resumes like the local pool: nothing to redo
    local = _rows(tmp_path / "local" / "results.sqlite")
    assert len(local) == 12 and local == _rows(tmp_path / "dask" / "results.sqlite")


def _isolating_plugin(hidden: Path, cwd: Path, home: Path):
    """A worker plugin (defined here so that cloudpickle ships it by value) that moves each worker into its own
    working directory and ``FUSIONBENCH_HOME`` and makes ``hidden`` unreadable there (open/stat refuse it)."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class Isolate(WorkerPlugin):
        name = "fusionbench-test-isolate"

        def setup(self, worker) -> None:
            import builtins
            import io
            import os as _os

            root = str(hidden)

            def _blocked(path) -> bool:
                try:
                    return _os.fspath(path).startswith(root) if not isinstance(path, int) else False
                except TypeError:
                    return False

            real_open, real_stat = builtins.open, _os.stat

            def guarded_open(file, *args, **kwargs):
                if _blocked(file):
                    raise PermissionError(13, "hidden from this worker", _os.fspath(file))
                return real_open(file, *args, **kwargs)

            def guarded_stat(path, *args, **kwargs):
                if _blocked(path):
                    raise PermissionError(13, "hidden from this worker", _os.fspath(path))
                return real_stat(path, *args, **kwargs)

            builtins.open = io.open = guarded_open
            _os.stat = guarded_stat
            cwd.mkdir(parents=True, exist_ok=True)
            _os.chdir(cwd)
            _os.environ["FUSIONBENCH_HOME"] = str(home)

    return Isolate()


def _probe(hidden: str) -> tuple[str, str, bool]:
    import os as _os

    try:
        open(_os.path.join(hidden, "a", "p000.png"), "rb").close()
        readable = True
    except PermissionError:
        readable = False
    return _os.getcwd(), _os.environ.get("FUSIONBENCH_HOME", ""), readable


@pytest.mark.usefixtures("weights_home")
def test_workers_sharing_no_files_get_bytes_and_weights(tmp_path, make_pairs) -> None:
    """Workers in another directory and FUSIONBENCH_HOME, unable to read the dataset folder: every task succeeds,
    sdnet's weights reach them verified, the fused PNGs land in the client's OUT, scores equal the local pool's."""
    distributed = pytest.importorskip("dask.distributed")
    from fusionbench.method_registry import create_method

    if create_method("sdnet").unavailable_reason():
        pytest.skip("sdnet weights not available on the client (../shared/official)")
    data = make_pairs(tmp_path / "data", 3, size=64)
    worker_home, worker_cwd = tmp_path / "worker_home", tmp_path / "worker_cwd"
    base = dict(methods=["average,dwt,sdnet"], datasets=[f"folder:{data}"], metrics="EN,SD,MI", quiet=True)
    run(RunConfig(out=str(tmp_path / "local"), workers=2, **base), log=lambda m: None)
    logs: list[str] = []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        client.register_plugin(_isolating_plugin(data, worker_cwd, worker_home))
        probes = client.run(_probe, str(data))
        assert all(cwd == str(worker_cwd) and home == str(worker_home) and not readable
                   for cwd, home, readable in probes.values()), probes
        summary = run(RunConfig(out=str(tmp_path / "dask"), scheduler=cluster.scheduler_address, **base),
                      log=logs.append)
    assert summary.completed == 9 and summary.failures == 0, logs
    local, dask = _rows(tmp_path / "local" / "results.sqlite"), _rows(tmp_path / "dask" / "results.sqlite")
    assert len(local) == 27 and local == dask
    paths = [Path(p) for (p,) in _rows(tmp_path / "dask" / "results.sqlite", "SELECT path FROM outputs")]
    assert len(paths) == 9 and all(p.is_file() and (tmp_path / "dask") in p.parents for p in paths)
    assert not any(worker_cwd.rglob("*.png"))  # workers wrote no fused image of their own
    assert any("sent" in line and "weights" in line for line in logs)
    from fusionbench.method_registry import method_info
    from fusionbench.weights import WEIGHTS

    for name in method_info("sdnet").weights:
        for wname in ([name] if name in WEIGHTS.names() else [n for n in WEIGHTS.names() if n.startswith(name + ".")]):
            wf = WEIGHTS.get(wname).info
            assert (worker_home / "weights" / wf.method_dir / wf.filename).is_file()


def test_install_refuses_bytes_that_are_not_the_pinned_file(tmp_path, monkeypatch) -> None:
    from fusionbench.executors import _install_weights, _missing_weights
    from fusionbench.weights import WEIGHTS, cached_path

    monkeypatch.setenv("FUSIONBENCH_HOME", str(tmp_path))
    name = sorted(WEIGHTS.names())[0]
    assert name in _missing_weights([name])
    reason = _install_weights(name, b"not the weights")
    assert reason is not None and "ChecksumError" in reason and "does not match the pinned" in reason
    assert not cached_path(name).exists() and not list(cached_path(name).parent.iterdir())  # no temporary left


@pytest.mark.slow  # ~30 s (a CLI process starting a LocalCluster); the sandbox itself is pinned in test_worker.py
def test_dask_timeout_kills_the_fusion_child(tmp_path, plugin_env, make_pairs) -> None:
    """`--scheduler local:1` with a per-pair timeout: a pair over the limit is a PairTimeout failure (Dask runs tasks
    in threads, where SIGALRM cannot reach); the other task runs normally."""
    import subprocess
    import sys

    pytest.importorskip("dask.distributed")
    data = make_pairs(tmp_path / "data", 1)
    env = dict(plugin_env, DEMO_SLOW_SECONDS="30")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "fusionbench", "run", "--methods", "demo_slow,average", "--datasets",
           f"folder:{data}", "--metrics", "EN", "--out", str(out), "--scheduler", "local:1", "--timeout", "3",
           "--quiet", "--no-report"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    failures = _rows(out / "results.sqlite", "SELECT method, error, message FROM failures ORDER BY pair")
    assert [f[:2] for f in failures] == [("demo_slow", "PairTimeout")]
    assert "per-pair timeout of 3 s" in failures[0][2]
    assert _rows(out / "results.sqlite", "SELECT COUNT(*) FROM scores WHERE method='average'") == [(1,)]
    assert os.path.isdir(out / "fused" / "average")


def test_tasks_restricted_to_workers_that_left_fail_instead_of_waiting(tmp_path, make_pairs, monkeypatch) -> None:
    """A method whose weights only some workers have runs on those alone (``allow_other_workers=False``).  When
    they have all left, its tasks fail with one line each and the other methods' tasks complete; before, its
    tasks waited in the scheduler for ever, and so did the run.  Here the worker "with the weights" is an
    address that is not in the cluster at all (as if it left right after the weights were checked)."""
    import threading

    pytest.importorskip("dask.distributed")
    from fusionbench import executors

    gone = "tcp://127.0.0.1:9"
    monkeypatch.setattr(executors, "prepare_weights", lambda client, tasks, log: ({"average": [gone]}, {}))
    data = make_pairs(tmp_path / "data", 2)
    logs: list[str] = []
    outcome: dict = {}

    def work() -> None:
        try:
            outcome["summary"] = run(RunConfig(methods=["average,dwt"], datasets=[f"folder:{data}"], metrics="EN",
                                               out=str(tmp_path / "out"), scheduler="local:1", quiet=True),
                                     log=logs.append)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(180)
    assert not thread.is_alive(), "the run waited for ever for workers that had left"
    assert "error" not in outcome, outcome.get("error")
    db = tmp_path / "out" / "results.sqlite"
    failures = _rows(db, "SELECT method, error, message FROM failures ORDER BY pair")
    assert [f[:2] for f in failures] == [("average", "WeightsUnavailable")] * 2
    assert all(gone in message and "left the cluster" in message for _, _, message in failures)
    assert _rows(db, "SELECT COUNT(*) FROM scores WHERE method = 'dwt'") == [(2,)]
    assert any("left the cluster" in line for line in logs)


def _start(cmd: list[str], env: dict, log: Path) -> "subprocess.Popen":
    import subprocess

    with open(log, "w") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)


def test_losing_the_scheduler_stops_the_run_in_one_error(tmp_path, plugin_env, make_pairs) -> None:
    """The scheduler is killed while tasks are in flight: the run stops with one error naming the scheduler,
    records no WorkerCrash and keeps the scores already stored.  Before, every task in flight was recorded as
    a WorkerCrash ("FutureCancelledError … cancelled") and the run then waited for ever."""
    import signal
    import subprocess
    import sys
    import time

    pytest.importorskip("dask.distributed")
    data = make_pairs(tmp_path / "data", 12)
    env = dict(plugin_env, DEMO_SLOW_SECONDS="0.5")
    address_file = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "distributed.cli"]
    scheduler = _start([*dask[:2], "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                        "--no-dashboard", "--scheduler-file", str(address_file)], env, tmp_path / "scheduler.log")
    worker = None
    try:
        import json

        # distributed writes its scheduler file in place (open, then json.dump): it exists, empty or half
        # written, a moment before it holds the address, so wait until it parses, not until it exists
        address, deadline = None, time.monotonic() + 60
        while address is None and time.monotonic() < deadline:
            try:
                address = json.loads(address_file.read_text())["address"]
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                time.sleep(0.2)
        assert address is not None, (tmp_path / "scheduler.log").read_text()[-2000:]
        worker = _start([*dask[:2], "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-dashboard",
                         "--no-nanny"], env, tmp_path / "worker.log")
        out = tmp_path / "out"
        client = subprocess.Popen([sys.executable, "-m", "fusionbench", "run", "--methods", "demo_slow", "--datasets",
                                   f"folder:{data}", "--metrics", "EN", "--out", str(out), "--scheduler", address,
                                   "--timeout", "0", "--quiet", "--no-report"],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and client.poll() is None:
                try:
                    if _rows(out / "results.sqlite", "SELECT COUNT(*) FROM scores")[0][0] >= 1:
                        break
                except sqlite3.Error:  # not created yet
                    pass
                time.sleep(0.2)
            scheduler.send_signal(signal.SIGKILL)
            _, err = client.communicate(timeout=120)
        finally:
            client.kill()
        assert client.returncode == 1, err[-2000:]
        assert f"lost the Dask scheduler at {address}" in err
        db = out / "results.sqlite"
        assert _rows(db, "SELECT COUNT(*) FROM failures") == [(0,)]
        assert _rows(db, "SELECT COUNT(*) FROM scores")[0][0] >= 1  # what was stored before stays
    finally:
        for proc in (scheduler, worker):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
