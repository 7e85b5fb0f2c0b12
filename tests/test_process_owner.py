"""Recognising processes that ended without cleaning up (``fusionbench.process_owner``): a ``kill -9`` leaves a
``running`` run row and temporary folders; a later process on the machine tells them from live ones."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fusionbench.process_owner import current_owner, owner_gone, sweep_tempdirs, tagged_tempdir


def _ended_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(proc.stdout)


def test_this_process_is_not_gone() -> None:
    me = current_owner()
    assert me["pid"] == os.getpid() and me["started"] is not None
    assert owner_gone(me) is False


def test_an_ended_process_is_gone() -> None:
    owner = dict(current_owner(), pid=_ended_pid())
    assert owner_gone(owner) is True


def test_a_reused_pid_is_another_process() -> None:
    """A live pid whose start differs from the recorded one belongs to another process: the owner is gone.  On
    Linux the start is compared in clock ticks since boot; elsewhere (no ``start_ticks``) in seconds."""
    me = current_owner()
    if me["start_ticks"] is not None:
        assert owner_gone(dict(me, start_ticks=me["start_ticks"] + "0")) is True
    assert owner_gone(dict(me, start_ticks=None, started=me["started"] - 3600)) is True


def test_a_clock_step_does_not_kill_a_live_run() -> None:
    """psutil's start time in seconds moves when the clock is stepped; the ticks since boot do not."""
    me = current_owner()
    if me["start_ticks"] is None:
        pytest.skip("no /proc start ticks here")
    assert owner_gone(dict(me, started=me["started"] - 3600)) is False


def test_it_never_declares_gone_what_it_cannot_check() -> None:
    ended = _ended_pid()
    assert owner_gone(None) is False  # a row written before owners were recorded
    assert owner_gone(dict(current_owner(), hostname="another-host", pid=ended)) is False  # a shared disk
    assert owner_gone({"hostname": current_owner()["hostname"], "pid": "x"}) is False
    assert owner_gone(dict(current_owner(), started=None)) is False  # live pid, start time not recorded


def test_sweep_removes_only_the_folders_of_ended_processes(tmp_path, monkeypatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    mine = tagged_tempdir("fb-test-")
    assert mine.name.startswith(f"fb-test-{os.getpid()}-")
    stale = tmp_path / f"fb-test-{_ended_pid()}-abc"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "x.png").write_bytes(b"x")
    other_prefix = tmp_path / f"fb-other-{_ended_pid()}-abc"
    other_prefix.mkdir()
    a_file = tmp_path / f"fb-test-{_ended_pid()}-file"
    a_file.write_bytes(b"not a folder")

    assert sweep_tempdirs(["fb-test-"]) == [stale]
    assert not stale.exists()
    assert mine.is_dir() and other_prefix.is_dir() and a_file.is_file()
