"""The results store where it cannot be written: readers still read it, and every error names the store."""
from __future__ import annotations

import sqlite3

import pytest

from fusionbench import store as store_module
from fusionbench.report.data import ReportData
from fusionbench.runner import RunConfig, dry_run, run
from fusionbench.store import ResultsStore, StoreError


def _read_only_folder(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make sqlite behave as for a WAL store in a folder nobody may write (``chattr +i``; root ignores
    permissions): ``mode=ro`` cannot create the ``-shm`` index, ``immutable=1`` reads the file alone."""
    tried: list[str] = []
    real = store_module._backup

    def backup(uri: str, target: sqlite3.Connection) -> None:
        tried.append(uri.split("?")[1])
        if "immutable=1" not in uri:
            raise sqlite3.OperationalError("unable to open database file")
        real(uri, target)

    monkeypatch.setattr(store_module, "_backup", backup)
    return tried


def test_dry_run_and_report_read_a_store_they_cannot_write(tmp_path, make_pairs, monkeypatch) -> None:
    data = make_pairs(tmp_path / "data", 2)
    cfg = RunConfig(methods=["average"], datasets=[f"folder:{data}"], metrics="EN", out=str(tmp_path / "out"),
                    workers=0, quiet=True)
    run(cfg, log=lambda m: None)
    tried = _read_only_folder(monkeypatch)
    plan, _ = dry_run(cfg, log=lambda m: None)
    assert plan.already_done == 2 and not plan.tasks
    assert tried == ["mode=ro", "mode=ro&immutable=1"]
    report = ReportData.load(tmp_path / "out")
    assert len(report.scores) == 2
    # commits left in a -wal file would be missed by immutable=1: refused, naming the store and the file
    (tmp_path / "out" / "results.sqlite-wal").write_bytes(b"x" * 64)
    with pytest.raises(StoreError, match=r"cannot read .*results\.sqlite: unable to open database file .*-wal"):
        dry_run(cfg, log=lambda m: None)


def test_a_store_that_cannot_be_opened_for_writing_is_named(tmp_path) -> None:
    (tmp_path / "results.sqlite").mkdir()  # sqlite cannot open a folder: "unable to open database file"
    with pytest.raises(StoreError) as info:
        ResultsStore(tmp_path / "results.sqlite")
    assert str(info.value).startswith(f"cannot open {tmp_path / 'results.sqlite'} for writing: ")


def test_reading_a_store_leaves_no_wal_files_beside_it(tmp_path, make_pairs) -> None:
    """Session 38: ``fusionbench report`` (a ``mode=ro`` read of a WAL store) left ``results.sqlite-wal`` and
    ``-shm`` beside the store, which sqlite deletes only when the last connection can write. The reader now tidies
    what it made, as sqlite's last writer would; and never under a connection still open (a run writing)."""
    data = make_pairs(tmp_path / "data", 2)
    run(RunConfig(methods=["average"], datasets=[f"folder:{data}"], metrics="EN", out=str(tmp_path / "out"),
                  workers=0, quiet=True), log=lambda m: None)
    db = tmp_path / "out" / "results.sqlite"
    side = [tmp_path / "out" / f"results.sqlite{s}" for s in ("-wal", "-shm")]
    assert not any(p.exists() for p in side)
    ResultsStore.snapshot(db).close()
    assert len(ReportData.load(tmp_path / "out").scores) == 2
    assert not any(p.exists() for p in side)
    with ResultsStore(db) as writer:  # open elsewhere: its files stay, and it goes on writing
        writer.conn.execute("SELECT 1 FROM sqlite_master").fetchall()
        assert all(p.exists() for p in side)
        ResultsStore.snapshot(db).close()
        assert all(p.exists() for p in side)
        writer.conn.execute("CREATE TABLE scratch (x)")
        writer.conn.commit()
    assert not any(p.exists() for p in side)


def test_a_cache_that_cannot_take_new_images_is_refused_before_any_task(tmp_path, make_pairs, monkeypatch) -> None:
    """Session 39's CLI audit: a read-only ``--cache`` was found at the first new image, and the run stopped there
    (``failed: OSError``, that task's scores dropped). It is still read where it holds every output (a resume),
    and refused in one line, before any task, where the plan has new images for it."""
    import pathlib

    data = make_pairs(tmp_path / "data", 2)
    cache = tmp_path / "cache"
    common = dict(datasets=[f"folder:{data}"], metrics="EN", cache=str(cache), workers=0, quiet=True, summary=False)
    run(RunConfig(methods=["average"], out=str(tmp_path / "one"), **common), log=lambda m: None)
    real_touch = pathlib.Path.touch

    def read_only(self, *args, **kwargs):  # a read-only mount (root ignores permissions)
        if cache in self.parents:
            raise PermissionError(30, "Read-only file system")
        return real_touch(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "touch", read_only)
    from fusionbench import io as fb_io

    real_write = fb_io.atomic_write

    def no_write(path, *args, **kwargs):  # nor can the run write an image there
        if cache in pathlib.Path(path).parents:
            raise PermissionError(30, "Read-only file system")
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(fb_io, "atomic_write", no_write)
    done = run(RunConfig(methods=["average"], out=str(tmp_path / "two"), **common), log=lambda m: None)
    assert done.failures == 0 and done.completed == 2  # every image cached: scored from the read-only cache
    with pytest.raises(ValueError, match=rf"--cache {cache}: cannot write there \(Read-only file system\)"):
        run(RunConfig(methods=["average", "maximum"], out=str(tmp_path / "three"), **common), log=lambda m: None)
    with ResultsStore(tmp_path / "three" / "results.sqlite") as store:
        assert store.scores_frame().empty and list(store.runs_frame()["status"]) == ["failed before any task"]
