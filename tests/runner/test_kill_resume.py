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
