"""A run killed with SIGKILL loses nothing committed and completes on restart, without duplicates."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time


def _count(db, sql="SELECT COUNT(*) FROM scores"):
    try:
        con = sqlite3.connect(db, timeout=5)
        try:
            return con.execute(sql).fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def test_sigkill_then_resume(tmp_path, plugin_env, make_pairs) -> None:
    n_pairs = 12
    data = make_pairs(tmp_path / "data", n_pairs)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "fusionbench", "run", "--methods", "demo_slow", "--datasets", f"folder:{data}",
           "--metrics", "EN,SD", "--out", str(out), "--workers", "1", "--quiet", "--no-report"]
    env = dict(plugin_env, DEMO_SLOW_SECONDS="0.4")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            cwd=tmp_path)  # outside the checkout, so the installed package is imported
    db = out / "results.sqlite"
    deadline = time.time() + 120
    while time.time() < deadline and _count(db) < 6:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the client and its workers, mid-run
    proc.wait(timeout=30)
    before = _count(db)
    assert 6 <= before < 2 * n_pairs, "the kill should land mid-run"
    assert _count(db, "SELECT COUNT(*) FROM runs WHERE status='running'") == 1

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _count(db) == 2 * n_pairs
    assert _count(db, "SELECT COUNT(*) FROM (SELECT DISTINCT dataset, pair, method, metric FROM scores)") == 2 * n_pairs
    assert f"{before // 2} already done" in done.stdout or f"{before // 2} already" in done.stderr + done.stdout
    assert _count(db, "SELECT COUNT(*) FROM failures") == 0
    con = sqlite3.connect(db)  # the resumed run saw that the killed run's process is gone, and says so
    assert con.execute("SELECT status FROM runs ORDER BY run_id").fetchall() == [("killed",), ("done",)]
    con.close()


def _children(pid: int) -> list[int]:
    """Pids of the pool workers (``multiprocessing`` spawn children) whose parent is ``pid``."""
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry.name}/stat").read()
            cmdline = open(f"/proc/{entry.name}/cmdline", "rb").read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"spawn_main" in cmdline:
            out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_pool_workers_exit_when_the_client_is_killed(tmp_path, plugin_env, make_pairs) -> None:
    """``kill -9`` of the client alone (not its process group) leaves no pool worker behind: each notices
    that its parent is gone and exits (they waited on their own call pipe for ever, holding their memory)."""
    data = make_pairs(tmp_path / "data", 4)
    cmd = [sys.executable, "-m", "fusionbench", "run", "--methods", "demo_slow", "--datasets", f"folder:{data}",
           "--metrics", "EN", "--out", str(tmp_path / "out"), "--workers", "2", "--quiet", "--no-report"]
    proc = subprocess.Popen(cmd, env=dict(plugin_env, DEMO_SLOW_SECONDS="60"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, cwd=tmp_path)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(_children(proc.pid)) < 2:
            time.sleep(0.2)
        workers = _children(proc.pid)
        assert len(workers) == 2, "the pool's two workers should have started"
        time.sleep(2)  # let them take their tasks
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.time() + 30
        while time.time() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.2)
        assert not any(_alive(w) for w in workers), "pool workers outlived their client"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
