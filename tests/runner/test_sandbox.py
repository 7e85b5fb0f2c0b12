"""The fusion child of a Dask worker thread (:mod:`fusionbench.sandbox`): one pair's reply is never read as
another's, and the child neither outlives its worker nor its time limit, nor keeps unbounded memory."""
from __future__ import annotations

import gc
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fusionbench import sandbox
from fusionbench.sandbox import Sandbox, SandboxError


def _fuse_three(box: Sandbox) -> list[object]:
    """``maximum`` of zeros with 100, 200 and 200: each pair's own image, or the exception it raised."""
    a = np.zeros((8, 8), np.uint8)
    out: list[object] = []
    for level in (100, 200, 200):
        try:
            fused, _ = box.fuse("maximum", "k", {}, a, np.full((8, 8), level, np.uint8), 60.0)
            out.append(int(fused[0, 0]))
        except BaseException as exc:  # noqa: BLE001 - the KeyboardInterrupt of the test below included
            out.append(type(exc).__name__)
    return out


def test_a_pipe_numbered_above_1024_is_waited_on(tmp_path) -> None:
    """A Dask worker with many sockets gives its child's pipe a descriptor ≥ 1024.  Before, ``select.select``
    raised ValueError there after the request was sent, the child was kept, and the next pair read the
    previous pair's image as its own: [ValueError, 100, ValueError] instead of [100, 200, 200]."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the descriptor limit ({hard}) is below 1200")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200) if soft != resource.RLIM_INFINITY else soft, hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    box = Sandbox()
    try:
        results = _fuse_three(box)
        assert box.proc is not None and box.proc.stdout.fileno() >= 1024
    finally:
        box.close()
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert results == [100, 200, 200]


def test_an_exchange_cut_short_closes_the_child(monkeypatch) -> None:
    """An interrupt (or any error) after the request was sent: the child, whose reply is still to come, is
    closed.  Before, only a closed pipe closed it, and the next pair got the interrupted pair's image."""
    real_recv, interrupted = sandbox._recv, []

    def recv_then_interrupt(stream):
        reply = real_recv(stream)
        if "fusing" in reply and not interrupted:  # Ctrl-C while the first pair is being fused
            interrupted.append(reply)
            raise KeyboardInterrupt
        return reply

    monkeypatch.setattr(sandbox, "_recv", recv_then_interrupt)
    box = Sandbox()
    try:
        assert _fuse_three(box) == ["KeyboardInterrupt", 200, 200]
    finally:
        box.close()


def test_a_reply_to_another_request_is_refused(monkeypatch) -> None:
    """Each reply repeats its request's id: a reply that does not is the pair's WorkerCrash, never its image."""
    real_recv = sandbox._recv

    def wrong_id(stream):
        number, status, payload = real_recv(stream)
        return (number + 1 if status == "ok" else number), status, payload

    monkeypatch.setattr(sandbox, "_recv", wrong_id)
    box = Sandbox()
    a = np.zeros((8, 8), np.uint8)
    try:
        with pytest.raises(SandboxError, match="answered request 2 instead of 1") as err:
            box.fuse("maximum", "k", {}, a, a, 60.0)
        assert err.value.error == "WorkerCrash" and box.proc is None
    finally:
        box.close()


def _gone(pid: int) -> bool:
    """Whether ``pid`` no longer runs (a zombie left to a PID 1 that does not reap counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.2)
    return _gone(pid)


_KILLED_WORKER = """
import os, sys, threading, time
import numpy as np
from fusionbench.sandbox import Sandbox

box = Sandbox()
a = np.zeros((16, 16), np.uint8)
threading.Thread(target=box.fuse, args=("demo_stuck", "k", {}, a, a, 600.0), daemon=True).start()
while box.proc is None:
    time.sleep(0.05)
print(box.proc.pid, flush=True)
time.sleep(2)  # the child is inside the method
os.kill(os.getpid(), 9)  # the Dask worker killed (its nanny's memory limit, kill -9)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_child_exits_when_its_worker_is_killed(tmp_path, plugin_env) -> None:
    """Before, a child busy in a method was re-parented to PID 1 and ran on (for ever, for a stuck method)."""
    errors = tmp_path / "stderr.txt"
    with open(errors, "w") as stderr:  # not a pipe: the child inherits the worker's stderr and may hold it open
        done = subprocess.run([sys.executable, "-c", _KILLED_WORKER], env=dict(plugin_env, DEMO_SLOW_SECONDS="600"),
                              stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == -signal.SIGKILL, errors.read_text()[-2000:]
    child = int(done.stdout.split()[0])
    try:
        assert _wait_gone(child, 30), "the fusion child outlived its worker"
    finally:
        if not _gone(child):
            os.kill(child, signal.SIGKILL)


def test_the_child_stops_itself_after_the_limit_and_the_grace(plugin_env, monkeypatch) -> None:
    """The child arms its own watchdog (timeout + ``FUSIONBENCH_KILL_GRACE_S``), as a pool worker does: here
    the parent never stops waiting (as when its thread is stuck), and the child ends itself, exit status 1.
    Before, a method stuck in compiled code ran for as long as the parent did not kill it."""
    monkeypatch.setenv("PYTHONPATH", plugin_env["PYTHONPATH"])
    monkeypatch.setenv("DEMO_SLOW_SECONDS", "600")
    monkeypatch.setenv("FUSIONBENCH_KILL_GRACE_S", "1")
    monkeypatch.setattr(sandbox, "_readable", lambda stream, timeout: True)  # the parent waits without a limit
    a = np.zeros((16, 16), np.uint8)
    box, outcome = Sandbox(), {}

    def work() -> None:
        try:
            box.fuse("demo_stuck", "k", {}, a, a, 1.0)
        except SandboxError as exc:
            outcome["error"] = (exc.error, exc.message)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(90)
    box.close()
    assert outcome.get("error") == ("WorkerCrash", "the fusion process died (exit code 1) while fusing this pair")


def test_a_sandbox_dropped_with_its_thread_kills_its_child() -> None:
    """A worker thread's sandbox is garbage-collected when the thread ends (and closed at interpreter exit):
    its child goes with it.  Before, the child stayed, waiting for requests."""
    box = Sandbox()
    a = np.zeros((8, 8), np.uint8)
    box.fuse("maximum", "k", {}, a, a, 60.0)
    proc = box.proc
    del box
    gc.collect()
    try:
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize(("limit_mb", "builds"), [("0", 1), ("1", 2)])
def test_the_child_bounds_the_memory_it_keeps(tmp_path, plugin_env, monkeypatch, limit_mb, builds) -> None:
    """After each pair the child bounds its memory as a worker does (``FUSIONBENCH_WORKER_MEMORY_MB``): over
    the limit it drops its built methods last, so a 1 MiB limit builds the method again for the second pair,
    and no limit (``0``) keeps it.  Before, the child never bounded anything: one build in both cases."""
    log = tmp_path / "builds.txt"
    monkeypatch.setenv("PYTHONPATH", plugin_env["PYTHONPATH"])
    monkeypatch.setenv("DEMO_BUILD_LOG", str(log))
    monkeypatch.setenv("FUSIONBENCH_WORKER_MEMORY_MB", limit_mb)
    a = np.zeros((8, 8), np.uint8)
    box = Sandbox()
    try:
        for level in (10, 20):
            fused, _ = box.fuse("demo_counted", "k", {}, a, np.full((8, 8), level, np.uint8), 60.0)
            assert fused[0, 0] == level
    finally:
        box.close()
    assert len(Path(log).read_text().splitlines()) == builds
