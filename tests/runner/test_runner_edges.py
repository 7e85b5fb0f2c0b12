"""The runner's edges: a cached image that does not decode, the executor closed on an error, the run's status,
the store opened beside another creator, a damaged store, write errors that name their file, a dataset named
twice."""
from __future__ import annotations

import sqlite3
import struct
import time
import zlib
from pathlib import Path

import pytest
from _db import rows

from fusionbench import runner as runner_module
from fusionbench.method_registry import create_method
from fusionbench.runner import RunConfig, dry_run, run
from fusionbench.store import ResultsStore, StoreError


def _run(data: Path, out: Path, logs: list[str] | None = None, **config) -> object:
    config = {"methods": ["average"], "datasets": [f"folder:{data}"], "metrics": "EN", "out": str(out),
              "workers": 0, "quiet": True, **config}
    return run(RunConfig(**config), log=(logs.append if logs is not None else lambda m: None))


def _runs(out: Path) -> list[tuple]:
    return rows(out / "results.sqlite", "SELECT run_id, status FROM runs ORDER BY run_id")


def _garble_idat(path: Path) -> None:
    """Replace the PNG's image data by bytes that do not inflate, with valid chunk checksums: the header check
    (PIL ``verify``) passes, decoding fails."""
    data = path.read_bytes()
    out, pos = [data[:8]], 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IDAT":
            body = bytes(len(body))  # zeros: not a deflate stream
        out.append(struct.pack(">I4s", len(body), kind) + body + struct.pack(">I", zlib.crc32(kind + body)))
        pos += 12 + length
    path.write_bytes(b"".join(out))


def test_a_cached_image_that_does_not_decode_is_fused_again(tmp_path, make_pairs) -> None:
    """It passed the planner's header check, failed to decode in the worker, and was recorded as the method's
    'fuse' failure on every run, never replaced."""
    from fusionbench.io import image_size, load_image

    data = make_pairs(tmp_path / "data", 2)
    out = tmp_path / "out"
    _run(data, out)
    cached = sorted((out / "fused").rglob("*.png"))
    _garble_idat(cached[0])
    image_size(cached[0])  # still passes the planner's check
    with pytest.raises(Exception):
        load_image(cached[0])
    logs: list[str] = []
    summary = _run(data, out, logs, metrics="EN,SD")  # SD is new: both pairs are scored again
    assert summary.failures == 0, logs
    assert any(f"cached fused image {cached[0]} is unreadable" in line and "fusing the pair again" in line
               for line in logs), logs
    load_image(cached[0])  # replaced by the new fusion


def test_the_executor_is_closed_when_the_client_fails(tmp_path, make_pairs, monkeypatch) -> None:
    """An error while a result is stored left the executor's generator (and a pool's workers) to the garbage
    collector: a caller keeping the exception, as a notebook does, kept the workers."""
    closed = []

    from fusionbench.worker import run_task

    def executor(tasks, config, log):
        try:
            for task in tasks:
                yield run_task(task)
        finally:
            closed.append(True)

    monkeypatch.setattr(runner_module, "_execute", executor)
    calls = []

    def failing_write(result, task):
        calls.append(task)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(runner_module, "write_output", failing_write)
    data = make_pairs(tmp_path / "data", 3)
    with pytest.raises(OSError) as kept:
        _run(data, tmp_path / "out", quiet=False)  # the progress bar's loop did not pass a close on
    assert closed == [True] and kept.value is not None
    assert _runs(tmp_path / "out") == [(1, "failed: OSError")]  # not 'interrupted': that is Ctrl-C or SIGTERM


def test_a_full_disk_names_the_fused_image(tmp_path, make_pairs, monkeypatch) -> None:
    from fusionbench import io

    def full(path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io, "atomic_write", full)
    data = make_pairs(tmp_path / "data", 1)
    with pytest.raises(OSError, match="cannot write the fused image") as info:
        _run(data, tmp_path / "out")
    assert info.value.filename.startswith(str(tmp_path / "out" / "fused"))


#: Run in a lean interpreter (only the store imported), so that its forks are cheap: forking a test worker that
#: holds torch made the same trials take 45 s instead of 4.
_OPENERS = """
import multiprocessing, os, sys
from fusionbench.store import ResultsStore

def open_store(path, errors):
    try:
        ResultsStore(path).close()
    except Exception as exc:
        errors.put(str(exc))

if __name__ == "__main__":
    ctx = multiprocessing.get_context("fork")
    errors = ctx.Queue()
    for trial in range(int(sys.argv[2])):
        path = os.path.join(sys.argv[1], str(trial), "results.sqlite")
        openers = [ctx.Process(target=open_store, args=(path, errors)) for _ in range(12)]
        for proc in openers:
            proc.start()
        for proc in openers:
            proc.join()
            assert proc.exitcode == 0
    found = []
    while not errors.empty():
        found.append(errors.get())
    print(len(found), found[:1])
"""


def test_runs_creating_one_new_store_together_all_open_it(tmp_path) -> None:
    """``PRAGMA journal_mode=WAL`` on a store another process is creating answered "database is locked" at once,
    without the busy timeout (6 openers of one new store, 150 times: 31 failures before, 0 since). Here 12 openers,
    100 times: this test failed 5 of 5 runs on the old code."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _OPENERS, str(tmp_path), "100"], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split(maxsplit=1)[0] == "0", done.stdout


def test_a_damaged_store_is_refused_when_opened_naming_it(tmp_path, make_pairs) -> None:
    """Damage past the first pages opened fine and failed at the first write, after a result was computed,
    with sqlite's bare "database disk image is malformed"."""
    data = make_pairs(tmp_path / "data", 12)
    out = tmp_path / "out"
    _run(data, out, metrics="standard")
    db = out / "results.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = con.execute("PRAGMA page_size").fetchone()[0]
        pages = con.execute("PRAGMA page_count").fetchone()[0]
    assert pages > 4
    with open(db, "r+b") as fh:
        fh.seek(page * (pages - 2))
        fh.write(b"\xff" * page)
    with pytest.raises(StoreError, match=f"cannot open {db} for writing: database disk image is malformed"):
        ResultsStore(db)


def _foreign_db(path: Path, sql: str) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as con:
        con.executescript(sql)
    con.close()
    return path.read_bytes()


@pytest.mark.parametrize("sql, reason", [
    ("CREATE TABLE scores (a, b); INSERT INTO scores VALUES (1, 2);",
     "its table scores lacks fusionbench's columns created, dataset, method"),
    ("CREATE TABLE patients (name, dob); INSERT INTO patients VALUES ('x', 1);",
     "it holds tables fusionbench does not create: patients"),
    ("PRAGMA application_id = 7; CREATE TABLE runs (x);", "its application id is 0x00000007"),
])
def test_another_programs_database_in_out_is_refused_and_left_as_it_is(tmp_path, make_pairs, sql, reason) -> None:
    """Session 37's audit: ``--out`` at a folder whose ``results.sqlite`` was another program's got fusionbench's
    seven tables added before the run failed on ``no such column: dataset`` (a database without a ``scores``
    table was adopted silently); ``--dry-run`` and ``report`` said only ``no such column: dataset``."""
    from fusionbench.report import build_report

    data = make_pairs(tmp_path / "data", 1)
    out = tmp_path / "out"
    db = out / "results.sqlite"
    before = _foreign_db(db, sql)
    with pytest.raises(StoreError, match=f"cannot open {db} for writing: not a fusionbench results store "
                                         rf"\({reason}"):
        _run(data, out)
    with pytest.raises(StoreError, match=f"cannot read {db}: not a fusionbench results store \\({reason}"):
        dry_run(RunConfig(methods=["average"], datasets=[f"folder:{data}"], metrics="EN", out=str(out)),
                log=lambda m: None)
    with pytest.raises(StoreError, match=f"cannot read {db}: not a fusionbench results store"):
        build_report(out, tmp_path / "report", quiet=True, log=lambda m: None, profile=False)
    with pytest.raises(StoreError, match="not a fusionbench results store"):
        ResultsStore(db)
    assert db.read_bytes() == before and sorted(p.name for p in out.iterdir()) == ["results.sqlite"]


def test_a_store_is_stamped_and_an_unstamped_one_of_fusionbench_is_still_opened(tmp_path, make_pairs) -> None:
    """A store written before session 37 has no application id: its tables make it a store, and the next run
    that writes stamps it."""
    from fusionbench.store import APPLICATION_ID

    data = make_pairs(tmp_path / "data", 2)
    out = tmp_path / "out"
    _run(data, out)
    db = out / "results.sqlite"
    assert rows(db, "PRAGMA application_id") == [(APPLICATION_ID,)]
    with sqlite3.connect(db) as con:
        con.execute("PRAGMA application_id = 0")
        con.execute("ALTER TABLE scores DROP COLUMN metric_version")  # an older store: _migrate adds it back
        con.execute("DROP TABLE method_weights")  # a table added since
    con.close()
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE my_notes (pair, note)")  # the owner's own table beside fusionbench's
    con.close()
    summary = _run(data, out, metrics="EN,SD")
    assert summary.failures == 0 and summary.planned == 2
    assert rows(db, "PRAGMA application_id") == [(APPLICATION_ID,)]
    assert rows(db, "SELECT COUNT(*) FROM scores WHERE metric = 'SD'") == [(2,)]


def test_a_write_the_store_refuses_names_the_store(tmp_path) -> None:
    store = ResultsStore(tmp_path / "results.sqlite")
    store.conn.execute("PRAGMA query_only = 1")  # as a read-only file does (root ignores file modes)
    with pytest.raises(StoreError, match=f"cannot write {tmp_path / 'results.sqlite'}: attempt to write a readonly"):
        store.start_run("test", {}, {}, None, {})
    store.close()


def test_a_dataset_named_twice_runs_once(tmp_path, make_pairs) -> None:
    data = make_pairs(tmp_path / "data", 3)
    summary = _run(data, tmp_path / "out", datasets=[f"folder:{data}", f"folder:{data}"])
    assert summary.planned == 3 and summary.completed == 3


def _two_timed_pairs(method: str, data):
    """``run_task`` of registered ``method`` on pairs p000 then p001 of the folder pairs ``data`` (EN, a 0.5 s
    timeout), each with the worker's caches dropped first; ``method`` is unregistered afterwards."""
    from fusionbench.method_registry import METHODS
    from fusionbench.worker import ImageSource, Task, drop_caches, run_task

    def task(pid: str) -> Task:
        return Task(dataset="d", pair=pid, pair_sha256=f"sha-{pid}", method=method,
                    method_key=create_method(method).cache_key(), metrics=("EN",),
                    a=ImageSource.from_path(data / "a" / f"{pid}.png"),
                    b=ImageSource.from_path(data / "b" / f"{pid}.png"), fused_path="unused.png", timeout=0.5)

    try:
        drop_caches()
        return run_task(task("p000")), run_task(task("p001"))
    finally:
        METHODS.remove(method)
        drop_caches()


def test_a_method_stopped_at_its_timeout_is_built_again_for_the_next_pair(tmp_path, make_pairs) -> None:
    """A PairTimeout can stop a method anywhere in its call, its own state half-changed; the worker kept the
    instance and used it for the next pair."""
    from fusionbench.method_registry import register_method

    built = []

    @register_method("test_edges_stateful", display_name="stateful", family="plugin", citation="test")
    class Stateful:
        def __init__(self) -> None:
            built.append(self)
            self.busy = False

        def __call__(self, a, b):
            if self.busy:
                raise RuntimeError("state left half-changed by the interrupted call")
            self.busy = True
            if len(built) == 1:
                time.sleep(5)  # the first instance's call is stopped by the 0.5 s timeout
            self.busy = False
            return (a + b) / 2

    first, second = _two_timed_pairs("test_edges_stateful", make_pairs(tmp_path / "data", 2, colour=False))
    assert [f.error for f in first.failures] == ["PairTimeout"]
    assert not second.failures and len(built) == 2


def test_a_timeout_that_compiled_code_reports_as_another_error_is_a_timeout(tmp_path, make_pairs) -> None:
    """The timer can fire in a Python callback of compiled code (numba's ``_numba_unpickle``), which then raises
    ``SystemError: ... returned a result with an exception set`` from the PairTimeout: that pair is a PairTimeout,
    and the method is built again for the next pair (session 37: a SystemError, and the instance kept)."""
    from fusionbench.method_registry import register_method
    from fusionbench.worker import PairTimeout

    built = []

    @register_method("test_edges_callback", display_name="callback", family="plugin", citation="test")
    class Callback:
        def __init__(self) -> None:
            built.append(self)

        def __call__(self, a, b):
            if len(built) == 1:
                try:
                    time.sleep(5)  # stopped by the 0.5 s timeout, as if inside a callback of compiled code
                except PairTimeout as exc:
                    raise SystemError("CPUDispatcher(...) returned a result with an exception set") from exc
            return (a + b) / 2

    first, second = _two_timed_pairs("test_edges_callback", make_pairs(tmp_path / "data", 2, colour=False))
    assert [(f.error, f.message) for f in first.failures] == [
        ("PairTimeout", "exceeded the per-pair timeout of 0.5 s")]
    assert not second.failures and len(built) == 2


def test_one_folder_typed_two_ways_is_one_dataset_and_resumes(tmp_path, make_pairs, monkeypatch) -> None:
    """Session 28: ``folder:ds`` then ``folder:ds/`` fused everything again under a second dataset name, and
    ``folder:ds,folder:ds/`` planned every pair twice."""
    make_pairs(tmp_path / "ds", 3)
    monkeypatch.chdir(tmp_path)
    common = dict(methods=["average"], metrics="EN", out=str(tmp_path / "out"), workers=0, quiet=True)
    first = run(RunConfig(datasets=["folder:ds"], **common), log=lambda m: None)
    again = run(RunConfig(datasets=["folder:ds/", f"folder:{tmp_path / 'ds'}"], **common), log=lambda m: None)
    assert (first.completed, again.planned, again.completed, again.skipped_done) == (3, 3, 0, 3)


def test_a_store_of_a_relative_folder_name_is_adopted(tmp_path, make_pairs, monkeypatch) -> None:
    """A store written before session 28 names a folder dataset as typed (``folder:ds``): the next run adopts its
    rows under the absolute name instead of fusing everything again beside them (the review of session 28)."""
    make_pairs(tmp_path / "ds", 3)
    monkeypatch.chdir(tmp_path)
    common = dict(methods=["average"], metrics="EN", out=str(tmp_path / "out"), workers=0, quiet=True)
    run(RunConfig(datasets=["folder:ds"], **common), log=lambda m: None)
    store = tmp_path / "out" / "results.sqlite"
    con = sqlite3.connect(store)
    for table in ("outputs", "scores", "failures", "skipped"):
        con.execute(f"UPDATE {table} SET dataset='folder:ds'")  # as the code before session 28 wrote it
    con.commit()
    con.close()
    lines: list[str] = []
    again = run(RunConfig(datasets=["folder:ds"], **common), log=lines.append)
    assert (again.planned, again.completed, again.skipped_done) == (3, 0, 3)
    assert any("folder:ds: its rows in the store are now those of" in line for line in lines)
    names = {n for (n,) in rows(store, "SELECT DISTINCT dataset FROM scores")}
    assert names == {f"folder:{(tmp_path / 'ds').resolve()}"}


#: the store's tables with a ``dataset`` column (spelled out: the tests check ResultsStore.DATASET_TABLES)
DATASET_TABLES = ("outputs", "scores", "failures", "skipped")


def _rows_renamed(store: Path, old: str, also: str | None = None) -> None:
    """Give every row of the store's four dataset tables the dataset name ``old``, as the code before session 28
    wrote it; with ``also``, a copy of every row under that second name too (one folder typed two ways)."""
    con = sqlite3.connect(store)
    for table in DATASET_TABLES:
        if also is not None:
            columns = [c[1] for c in con.execute(f"PRAGMA table_info({table})")]
            values = ", ".join("?" if c == "dataset" else c for c in columns)
            con.execute(f"INSERT INTO {table} SELECT {values} FROM {table}", (also,))
            con.execute(f"UPDATE {table} SET dataset=? WHERE dataset!=?", (old, also))
        else:
            con.execute(f"UPDATE {table} SET dataset=?", (old,))
    con.commit()
    con.close()


def _datasets_by_table(store: Path) -> dict[str, set[str]]:
    return {t: {n for (n,) in rows(store, f"SELECT DISTINCT dataset FROM {t}")} for t in DATASET_TABLES}


def test_a_store_of_both_old_spellings_of_a_folder_is_adopted_in_every_table(tmp_path, make_pairs,
                                                                              monkeypatch) -> None:
    """Before session 28 one folder could be stored as both ``folder:ds`` and ``folder:ds/``: adopting the second
    spelling hit the keys of the first (UNIQUE constraint failed: every later run stopped), and rows left under an
    old name, or in failures and skipped, were a second dataset in every report."""
    from fusionbench.method_registry import METHODS, register_method

    data = make_pairs(tmp_path / "ds", 3)
    (data / "a" / "lonely.png").write_bytes((data / "a" / "p000.png").read_bytes())  # an input problem: failures
    monkeypatch.chdir(tmp_path)

    @register_method("test_edges_ct_only", tasks=("MRI-CT",))  # not run on a folder without a task: skipped
    def ct_only(a, b):
        return a

    common = dict(methods=["average", "test_edges_ct_only"], metrics="EN", out=str(tmp_path / "out"), workers=0,
                  quiet=True)
    store = tmp_path / "out" / "results.sqlite"
    lines: list[str] = []
    try:
        run(RunConfig(datasets=["folder:ds"], **common), log=lambda m: None)
        _rows_renamed(store, "folder:ds", also="folder:ds/")
        assert _datasets_by_table(store) == dict.fromkeys(DATASET_TABLES, {"folder:ds", "folder:ds/"})
        again = run(RunConfig(datasets=["folder:ds"], **common), log=lines.append)
    finally:
        METHODS.remove("test_edges_ct_only")
    assert (again.planned, again.completed, again.skipped_done) == (3, 0, 3)
    for old in ("folder:ds", "folder:ds/"):
        assert any(line.startswith(f"{old}: its rows in the store are now those of") for line in lines), old
    name = f"folder:{(tmp_path / 'ds').resolve()}"
    assert _datasets_by_table(store) == dict.fromkeys(DATASET_TABLES, {name})
    assert rows(store, "SELECT COUNT(*) FROM scores") == [(3,)]


@pytest.mark.parametrize("spelling", ["absolute/", "symlink"])
def test_a_store_of_an_absolute_or_symlinked_folder_name_is_adopted(tmp_path, make_pairs, spelling) -> None:
    """Before session 28 an absolute path typed with a trailing ``/``, or through a symlink, was a dataset name of
    its own: the next run must adopt its rows, not fuse the folder again beside them."""
    data = make_pairs(tmp_path / "ds", 2)
    (tmp_path / "link").symlink_to(data, target_is_directory=True)
    old = f"folder:{data}/" if spelling == "absolute/" else f"folder:{tmp_path / 'link'}"
    store = tmp_path / "out" / "results.sqlite"
    _run(data, tmp_path / "out")
    _rows_renamed(store, old)
    lines: list[str] = []
    again = _run(data, tmp_path / "out", lines)
    assert (again.planned, again.completed, again.skipped_done) == (2, 0, 2)
    assert any(line.startswith(f"{old}: its rows in the store are now those of") for line in lines)
    assert {n for (n,) in rows(store, "SELECT DISTINCT dataset FROM scores")} == {f"folder:{data.resolve()}"}
