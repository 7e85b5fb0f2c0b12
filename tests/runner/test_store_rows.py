"""The results store keeps the current state of each (dataset, pair, method): a later success clears the
failure it replaces, the latest skip reason wins, non-finite scores are NULL; the summary shows mean ± std."""
from __future__ import annotations

import sqlite3


def _result(pair: str, method: str, scores: dict, failures=None, key: str = "k1", sha: str = "s"):
    from fusionbench.worker import TaskResult

    return TaskResult("ds", pair, method, key, sha + pair, scores=scores, failures=list(failures or []),
                      seconds=0.1, path=f"/x/{pair}.png")


def test_summary_cell_is_mean_and_sample_std(tmp_path) -> None:
    from fusionbench.store import ResultsStore
    from fusionbench.summary import summary_table

    with ResultsStore(tmp_path / "r.sqlite") as store:
        for pair, v in (("p1", 1.0), ("p2", 2.0), ("p3", 6.0)):
            store.record_task(_result(pair, "average", {"EN": v}), run_id=1)
        text = summary_table(store, "ds", ["EN"], ["average"])
    assert "| 3.0000 ± 2.6458 |" in text, text


def test_a_fuse_failure_is_cleared_when_the_pair_later_fuses(tmp_path) -> None:
    from fusionbench.store import ResultsStore
    from fusionbench.worker import Failure

    with ResultsStore(tmp_path / "r.sqlite") as store:
        store.record_methods(1, [("m", "k1", {})])  # what a run records first: the method's current key
        store.record_task(_result("p1", "m", {}, [Failure("fuse", "PairTimeout", "slow")]), run_id=1)
        assert len(store.failures_frame()) == 1
        store.record_task(_result("p1", "m", {"EN": 5.0}), run_id=2)
        assert store.failures_frame().empty


def test_a_score_failure_is_cleared_when_the_metric_later_scores(tmp_path) -> None:
    from fusionbench.store import ResultsStore
    from fusionbench.worker import Failure

    with ResultsStore(tmp_path / "r.sqlite") as store:
        store.record_task(_result("p1", "m", {"EN": 5.0}, [Failure("score", "ValueError", "x", metric="SD")]), 1)
        store.record_task(_result("p1", "m", {"SD": 3.0}), run_id=2)
        assert store.failures_frame().empty


def test_skipped_frame_gives_the_latest_runs_reason(tmp_path) -> None:
    from fusionbench.store import ResultsStore

    with ResultsStore(tmp_path / "r.sqlite") as store:
        store.record_skipped(1, [("ds", "m", "unavailable: old reason")])
        store.record_skipped(2, [("ds", "m", "unavailable: new reason")])
        assert store.skipped_frame()["reason"].tolist() == ["unavailable: new reason"]


def test_an_infinite_score_is_kept_and_nan_is_null(tmp_path) -> None:
    """PSNR is +inf when F equals both sources: the store keeps it (until session 37 NULL, so a run's mean left the
    pair out, where ``fusionbench score`` gave inf); NaN, a metric undefined on the pair, is NULL."""
    from fusionbench.store import ResultsStore

    db = tmp_path / "r.sqlite"
    with ResultsStore(db) as store:
        store.record_task(_result("p1", "m", {"PSNR": float("inf"), "EN": 5.0, "SCD": float("nan")}), run_id=1)
        frame = store.scores_frame().set_index("metric")["value"]
        assert frame["PSNR"] == float("inf") and frame["EN"] == 5.0 and frame.isna()["SCD"]
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT metric, value FROM scores ORDER BY metric").fetchall() == [
            ("EN", 5.0), ("PSNR", float("inf")), ("SCD", None)]
    finally:
        con.close()


def _start_run_and_die(db) -> None:
    """A process that starts a run in ``db`` and ends without closing it (as under ``kill -9``)."""
    import subprocess
    import sys

    code = ("import os, sys; from fusionbench.store import ResultsStore\n"
            "s = ResultsStore(sys.argv[1]); s.start_run('fusionbench run', {}, {}, None, {})\n"
            "os._exit(9)")
    assert subprocess.run([sys.executable, "-c", code, str(db)]).returncode == 9


def test_a_run_whose_process_died_reads_killed_and_the_next_run_marks_it(tmp_path) -> None:
    from fusionbench.store import KILLED, ResultsStore

    db = tmp_path / "r.sqlite"
    _start_run_and_die(db)
    with ResultsStore.snapshot(db) as snap:  # a read (a report) says so, writing nothing
        assert snap.runs_frame()["status"].tolist() == [KILLED]
    con = sqlite3.connect(db)
    assert con.execute("SELECT status FROM runs").fetchall() == [("running",)]
    con.close()
    with ResultsStore(db) as store:
        live = store.start_run("fusionbench run", {}, {}, None, {})
        assert store.runs_frame()["status"].tolist() == [KILLED, "running"]  # the live run stays running
        store.finish_run(live)
    con = sqlite3.connect(db)
    assert con.execute("SELECT status FROM runs ORDER BY run_id").fetchall() == [(KILLED,), ("done",)]
    con.close()


def test_a_store_from_before_run_owners_opens_and_keeps_its_running_rows(tmp_path) -> None:
    """An older store (``runs`` without ``owner``) gains the column; its ``running`` rows cannot be judged and
    stay as they are."""
    from fusionbench.store import ResultsStore

    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE runs (run_id INTEGER PRIMARY KEY AUTOINCREMENT, started REAL NOT NULL, finished REAL,"
                " status TEXT NOT NULL DEFAULT 'running', command TEXT NOT NULL, config TEXT NOT NULL,"
                " versions TEXT NOT NULL, git_sha TEXT, machine TEXT NOT NULL)")
    con.execute("INSERT INTO runs (started, command, config, versions, machine) VALUES (0, 'c', '{}', '{}', '{}')")
    con.commit()
    con.close()
    with ResultsStore(db) as store:
        store.start_run("fusionbench run", {}, {}, None, {})
        frame = store.runs_frame()
    assert frame["status"].tolist() == ["running", "running"]
    assert frame["owner"].isna().tolist() == [True, False]


def test_rename_dataset_moves_every_table_and_keeps_the_newer_row_of_a_key(tmp_path) -> None:
    """Adopting an old folder name: rows of the old name in any of the four tables were left behind (a second
    dataset in reports), and a key the new name already had stopped the rename with a UNIQUE constraint."""
    from dataclasses import replace

    from fusionbench.store import ResultsStore

    old, new = "folder:ds", "folder:/data/ds"
    with ResultsStore(tmp_path / "r.sqlite") as store:
        for pair, value in (("p1", 1.0), ("p2", 2.0)):
            store.record_task(replace(_result(pair, "m", {"EN": value}), dataset=old), run_id=1)
        store.record_failure(old, "lonely", "", stage="fuse", error="InputError", message="lonely.png: no partner")
        store.record_skipped(1, [(old, "ct_only", "restricted to task MRI-CT")])
        store.record_skipped(1, [("only-skipped", "m", "unavailable: no weights")])
        store.record_task(replace(_result("p1", "m", {"EN": 9.0}), dataset=new), run_id=2)  # newer, same key
        assert store.dataset_names() == [new, old, "only-skipped"]  # each once, from all four tables
        store.rename_dataset(old, new)
        left = {t: store.conn.execute(f"SELECT COUNT(*) FROM {t} WHERE dataset=?", (old,)).fetchone()[0]
                for t in ("outputs", "scores", "failures", "skipped")}
        assert set(left.values()) == {0}
        assert store.dataset_names() == [new, "only-skipped"]
        scores = store.scores_frame([new])
        assert dict(zip(scores["pair"], scores["value"])) == {"p1": 9.0, "p2": 2.0}
        assert store.outputs_frame([new])["pair"].tolist().count("p1") == 1
        assert store.failures_frame([new])["pair"].tolist() == ["lonely"]
        assert store.skipped_frame([new])["method"].tolist() == ["ct_only"]


def test_scoring_cached_images_keeps_their_fusion_time_however_out_is_spelled(tmp_path, make_pairs,
                                                                              monkeypatch) -> None:
    """Session 39's CLI audit: adding a metric with ``--out`` spelled another way (absolute instead of relative, or
    from another folder) replaced every output row (path text differed): fusion times gone, the scoring run named
    as the fusing one, Table 5 empty. The same image keeps its row; only its path is updated."""
    from fusionbench.runner import RunConfig, run
    from fusionbench.store import ResultsStore

    data = make_pairs(tmp_path / "data", 2)
    monkeypatch.chdir(tmp_path)
    common = dict(methods=["average"], datasets=[f"folder:{data}"], workers=0, quiet=True, summary=False)
    run(RunConfig(metrics="EN", out="out", **common), log=lambda m: None)
    with ResultsStore(tmp_path / "out" / "results.sqlite") as store:
        before = store.outputs_frame()[["pair", "seconds", "run_id"]].sort_values("pair").reset_index(drop=True)
    assert before["seconds"].notna().all() and set(before["run_id"]) == {1}
    run(RunConfig(metrics="EN,SD", out=str(tmp_path / "out"), **common), log=lambda m: None)
    with ResultsStore(tmp_path / "out" / "results.sqlite") as store:
        after = store.outputs_frame().sort_values("pair").reset_index(drop=True)
        assert set(store.scores_frame()["metric"]) == {"EN", "SD"}
    assert after[["pair", "seconds", "run_id"]].equals(before)
    assert all(p.startswith(str(tmp_path)) for p in after["path"])  # where the cache is now found
