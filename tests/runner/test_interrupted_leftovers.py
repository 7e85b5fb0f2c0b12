"""What a killed or concurrent run leaves, and a full kernel-cache disk (session 32's chaos audit).

The audit killed 32 runs at random moments and resumed them: every result came back identical.  These are the
three things around the results that it found: hidden temporary files a writer killed before its rename left for
ever, a second run into the same OUT that said nothing, and a full ``$FUSIONBENCH_HOME`` blamed on the methods.
"""
from __future__ import annotations

import errno
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time

import pytest

from fusionbench.cli import main
from fusionbench.io import host_tag
from fusionbench.process_owner import UNTAGGED_MIN_AGE_S
from fusionbench.runner import RunConfig, run


def _ended_pid() -> int:
    """The pid of a process that has ended (and, this soon, is not reused)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


def _run(data, out, log=None):
    return run(RunConfig(methods=["average"], datasets=[f"folder:{data}"], metrics="EN", out=str(out), workers=0,
                         quiet=True), log=log or (lambda m: None))


def test_a_resume_removes_the_temporary_files_a_killed_writer_left(tmp_path, make_pairs) -> None:
    data = make_pairs(tmp_path / "data", 2)
    out = tmp_path / "out"
    _run(data, out)
    (key_dir,) = {p.parent for p in (out / "fused" / "average").rglob("*.png")}
    dead, here = _ended_pid(), host_tag()
    left = [key_dir / f".{'a' * 64}.png.{dead}@{here}.0123456789ab.tmp",
            out / f".summary.md.{dead}@{here}.0123456789ab.tmp"]
    alive = key_dir / f".{'b' * 64}.png.{os.getpid()}@{here}.0123456789ab.tmp"  # a live writer's: never touched
    elsewhere = key_dir / f".{'c' * 64}.png.{dead}@{'0' * 8 if here != '0' * 8 else '1' * 8}.0123456789ab.tmp"
    untagged_young = key_dir / f".{'d' * 64}.png.{dead}.0123456789ab.tmp"  # written before session 32, or by
    untagged_old = key_dir / f".{'e' * 64}.png.{dead}.0123456789ab.tmp"  # another host: judged by age alone
    for path in [*left, alive, elsewhere, untagged_young, untagged_old]:
        path.write_bytes(b"half a png")
    two_hours_ago = time.time() - 2 * UNTAGGED_MIN_AGE_S
    os.utime(untagged_old, (two_hours_ago, two_hours_ago))
    _run(data, out)
    assert not any(p.exists() for p in [*left, untagged_old])
    assert alive.exists() and untagged_young.exists()
    assert elsewhere.exists()  # another machine's writer (a shared disk): its pid says nothing here


def test_a_live_writer_elsewhere_on_a_shared_disk_keeps_its_file(tmp_path) -> None:
    """The review of session 32: a sweep judged a file by its pid alone, so a fetch on one machine deleted the
    download another machine was writing into a shared FUSIONBENCH_HOME, whose rename then failed."""
    from fusionbench.io import ATOMIC_TEMP_NAME, atomic_write
    from fusionbench.process_owner import sweep_stale

    target = tmp_path / "models.zip"
    with atomic_write(target) as tmp:
        assert f"@{host_tag()}." in tmp.name and ATOMIC_TEMP_NAME.fullmatch(tmp.name).group("host") == host_tag()
        tmp.write_bytes(b"partial")
        other = tmp.with_name(tmp.name.replace(f".{os.getpid()}@", f".{_ended_pid()}@").replace(
            f"@{host_tag()}.", "@" + ("0" * 8 if host_tag() != "0" * 8 else "1" * 8) + "."))
        other.write_bytes(b"another machine's download")
        assert sweep_stale(tmp_path, ATOMIC_TEMP_NAME) == []  # neither ours (alive) nor the other machine's
    assert target.read_bytes() == b"partial" and other.exists()


def test_a_fetch_removes_the_copy_a_killed_fetch_left(tmp_path, monkeypatch, official_dir) -> None:
    from fusionbench.weights import cached_path, fetch_weights

    monkeypatch.setenv("FUSIONBENCH_HOME", str(tmp_path / "home"))
    target = cached_path("mdl")
    target.parent.mkdir(parents=True)
    stale = target.parent / f".{target.name}.{_ended_pid()}@{host_tag()}.0123456789ab.tmp"
    stale.write_bytes(b"a full-size copy, once")
    fetch_weights("mdl", from_dir=official_dir)
    assert target.is_file() and not stale.exists()


def test_a_second_run_into_the_same_out_says_so(tmp_path, make_pairs) -> None:
    """Both runs fused every pair and stored correct rows, without a word; now the later one names the other."""
    from fusionbench.process_owner import _start_ticks, _start_time

    data = make_pairs(tmp_path / "data", 1)
    out = tmp_path / "out"
    _run(data, out)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        owner = {"hostname": platform.node(), "pid": sleeper.pid, "started": _start_time(sleeper.pid),
                 "start_ticks": _start_ticks(sleeper.pid)}
        with sqlite3.connect(out / "results.sqlite") as db:
            db.execute("INSERT INTO runs (started, command, config, versions, machine, owner) "
                       "VALUES (0, 'other', '{}', '{}', '{}', ?)", (json.dumps(owner),))
            other = db.execute("SELECT MAX(run_id) FROM runs").fetchone()[0]
        logs: list[str] = []
        _run(data, out, logs.append)
        assert [line for line in logs if "is running into" in line] == [
            f"run {other} (process {sleeper.pid}) is running into {out} too: pairs neither run has stored yet are "
            "fused by both (the results stay correct: the later rows replace the earlier); let one finish first"]
    finally:
        sleeper.kill()
        sleeper.wait()
    logs = []
    _run(data, out, logs.append)  # the other process has ended: its row is a killed run, and no line
    assert not any("is running into" in line for line in logs)
    with sqlite3.connect(out / "results.sqlite") as db:
        assert db.execute("SELECT status FROM runs WHERE run_id = ?", (other,)).fetchone() == ("killed",)


@pytest.mark.parametrize(("code", "refused"), [(errno.ENOSPC, True), (errno.EDQUOT, True), (errno.EACCES, False)])
def test_a_full_kernel_cache_disk_stops_the_run_in_one_line(tmp_path, make_pairs, monkeypatch, capsys, code,
                                                             refused) -> None:
    """A full ``$FUSIONBENCH_HOME`` failed the first pair of each method with kernels (``OSError: [Errno 28] No space
    left on device`` from inside numba, no path); now the run stops before it starts, naming the folder.  A
    read-only cache is not refused: numba then compiles without saving."""
    import tempfile

    from fusionbench import config

    folder = tmp_path / "kernels"
    folder.mkdir()
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(folder))
    real = tempfile.TemporaryFile

    def full(*args, **kwargs):
        if str(kwargs.get("dir")) == str(folder):
            raise OSError(code, os.strerror(code))
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", full)
    problem = config.numba_cache_space_problem()
    if not refused:
        assert problem is None
        return
    assert problem.startswith(f"numba's kernel cache {folder}: {os.strerror(code)}")
    data = make_pairs(tmp_path / "data", 1)
    command = ["run", "--methods", "average", "--datasets", f"folder:{data}", "--metrics", "EN", "--out",
               str(tmp_path / "out"), "--workers", "0", "--quiet", "--no-report"]
    assert main(command) == 1  # an empty cache (a first run): every kernel would fail to save
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"fusionbench: error: numba's kernel cache {folder}" in err
    assert not (tmp_path / "out").exists()  # refused before OUT is made
    (folder / "kernel.nbi").write_bytes(b"")  # a cache that holds kernels (a resume on a home at its quota)
    assert main(command) == 0
    err = capsys.readouterr().err
    assert f"warning: numba's kernel cache {folder}" in err and "kernels already cached load as usual" in err


def test_the_probe_passes_where_there_is_room(tmp_path, monkeypatch) -> None:
    from fusionbench import config

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "kernels"))
    assert config.numba_cache_space_problem() is None and not any((tmp_path / "kernels").iterdir())
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    assert config.numba_cache_space_problem() is None


@pytest.mark.parametrize("owner", ['{"hostname": "%s", "pid": null}', '{"hostname": "%s", "pid": "12x"}', '[1, 2]',
                                   'not json'])
def test_a_malformed_owner_record_is_no_live_run(tmp_path, owner) -> None:
    """A received store's ``runs.owner`` of this machine's name but no integer pid stopped the run (review)."""
    from fusionbench.store import ResultsStore

    with ResultsStore(tmp_path / "results.sqlite") as store:
        store.conn.execute("INSERT INTO runs (started, command, config, versions, machine, owner) "
                           "VALUES (0, 'x', '{}', '{}', '{}', ?)", (owner.replace("%s", platform.node()),))
        assert store.live_runs() == []
