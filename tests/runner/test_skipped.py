"""Issue 14.4: every (method, dataset) the runner does not run is printed and recorded with its reason."""
from __future__ import annotations

import json
import sqlite3

from fusionbench.cli import main
from fusionbench.method_registry import METHODS, register_method
from fusionbench.runner import RunConfig, run


def _skipped(db):
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT dataset, method, reason FROM skipped ORDER BY method").fetchall()
    finally:
        con.close()


def test_cli_task_restricted_method_on_a_folder_without_task(tmp_path, make_pairs, capsys) -> None:
    data = make_pairs(tmp_path / "data", 2)
    out = tmp_path / "out"
    assert main(["run", "--methods", "swinfusion,average", "--datasets", f"folder:{data}", "--metrics", "EN",
                 "--out", str(out), "--workers", "0", "--quiet", "--no-report"]) == 0
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if line.startswith("not run:"))
    assert "swinfusion on folder:" in line and "restricted to task MRI-PET, MRI-SPECT" in line
    assert "dataset.json" in line  # says how to declare the folder's task
    (row,) = _skipped(out / "results.sqlite")
    assert row[1] == "swinfusion" and "restricted to task" in row[2]
    con = sqlite3.connect(out / "results.sqlite")
    assert con.execute("SELECT COUNT(*) FROM scores WHERE method='average'").fetchone()[0] == 2
    con.close()


def test_a_folder_declaring_its_task_runs_nothing_silently(tmp_path, make_pairs) -> None:
    @register_method("test_ct_only", tasks=("MRI-CT",))
    def ct_only(a, b):
        return a

    try:
        data = make_pairs(tmp_path / "data", 2)
        (data / "dataset.json").write_text(json.dumps({"task": "MRI-PET"}))
        logs: list[str] = []
        summary = run(RunConfig(methods=["test_ct_only"], datasets=[f"folder:{data}"], metrics="EN",
                                out=str(tmp_path / "out"), workers=0, quiet=True), log=logs.append)
    finally:
        METHODS.remove("test_ct_only")
    assert summary.completed == 0 and summary.skipped == 1
    assert any("test_ct_only on folder:" in line and "the pairs have task MRI-PET" in line for line in logs)
    (row,) = _skipped(tmp_path / "out" / "results.sqlite")
    assert row[1] == "test_ct_only" and "restricted to task MRI-CT" in row[2]


def test_unavailable_weights_and_missing_split_are_recorded(tmp_path, make_pairs, shared_dir) -> None:
    class NeedsFile:
        @staticmethod
        def unavailable_reason():
            return "weights not in cache (test): run `fusionbench fetch weights test`"

        def __call__(self, a, b):
            return a

    register_method("test_unavailable")(NeedsFile)
    try:
        data = make_pairs(tmp_path / "data", 2)
        logs: list[str] = []
        run(RunConfig(methods=["test_unavailable,average"], datasets=[f"folder:{data}"], metrics="EN",
                      out=str(tmp_path / "out"), workers=0, quiet=True), log=logs.append)
        rows = _skipped(tmp_path / "out" / "results.sqlite")
        assert [r[1] for r in rows] == ["test_unavailable"] and rows[0][2].startswith("unavailable: weights not")
        assert any(line.startswith("not run: test_unavailable on folder:") for line in logs)
        logs.clear()
        run(RunConfig(methods=["test_unavailable,average"], datasets=[f"folder:{data}", "harvard-mri-pet"],
                      split="paper20", data_dir=str(shared_dir / "data"), metrics="EN", out=str(tmp_path / "out2"),
                      workers=0, quiet=True), log=logs.append)
    finally:
        METHODS.remove("test_unavailable")
    rows = [r for r in _skipped(tmp_path / "out2" / "results.sqlite") if r[0].startswith("folder:")]
    assert sorted(r[1] for r in rows) == ["average", "test_unavailable"]
    assert all(r[2].startswith("no split 'paper20'") for r in rows)
    assert any("no split 'paper20'" in line for line in logs)


def test_skipped_frame_forgets_a_skip_once_the_method_ran(tmp_path, make_pairs, shared_dir) -> None:
    from fusionbench.store import ResultsStore

    data = make_pairs(tmp_path / "data", 1)
    out = tmp_path / "out"
    run(RunConfig(methods=["average"], datasets=[f"folder:{data}", "harvard-mri-pet"], split="paper20",
                  data_dir=str(shared_dir / "data"), metrics="EN", out=str(out), workers=0, quiet=True),
        log=lambda m: None)
    with ResultsStore(out / "results.sqlite") as store:
        assert list(store.skipped_frame()["method"]) == ["average"]
    run(RunConfig(methods=["average"], datasets=[f"folder:{data}"], split="all", metrics="EN", out=str(out),
                  workers=0, quiet=True), log=lambda m: None)
    with ResultsStore(out / "results.sqlite") as store:
        assert store.skipped_frame().empty
        assert len(store.skipped_frame(current_only=False)) == 1


def _mixed_task_run(tmp_path, make_pairs, monkeypatch, runs: int) -> tuple[list, list]:
    """``runs`` runs of an MRI-PET-only method on a folder of one MRI-PET and one MRI-CT pair (each pair's task set
    where the runner builds the dataset): it is scored on one pair and skipped on the other, in the same run.
    Returns the skipped table's rows and ``skipped_frame()``'s (dataset, method, reason) rows."""
    import dataclasses

    from fusionbench import runner
    from fusionbench.store import ResultsStore

    real = runner.create_dataset

    def mixed(name, **kwargs):
        dataset = real(name, **kwargs)
        dataset.pairs = [dataclasses.replace(p, task=t) for p, t in zip(dataset.pairs, ("MRI-PET", "MRI-CT"))]
        return dataset

    monkeypatch.setattr(runner, "create_dataset", mixed)
    data = make_pairs(tmp_path / "data", 2, size=32)
    out = tmp_path / "out"
    register_method("test_pet_only", tasks=("MRI-PET",))(lambda a, b: a)
    try:
        for _ in range(runs):
            run(RunConfig(methods=["test_pet_only"], datasets=[f"folder:{data}"], metrics="EN", out=str(out),
                          workers=0, quiet=True), log=lambda m: None)
    finally:
        METHODS.remove("test_pet_only")
    con = sqlite3.connect(out / "results.sqlite")
    try:
        assert con.execute("SELECT pair, run_id FROM scores WHERE method='test_pet_only'").fetchall() == [("p000", 1)]
    finally:
        con.close()
    with ResultsStore(out / "results.sqlite") as store:
        frame = store.skipped_frame()
    return _skipped(out / "results.sqlite"), list(frame.itertuples(index=False, name=None))


def test_a_partial_task_skip_is_current_after_a_later_run_that_scored_nothing_new(tmp_path, make_pairs,
                                                                                   monkeypatch) -> None:
    """A re-run that finds the MRI-PET pair done still skips the MRI-CT pair: its row is the latest and no later run
    scored the method there, so the skip (with its "1 of 2 pairs") is current."""
    rows, current = _mixed_task_run(tmp_path, make_pairs, monkeypatch, runs=2)
    row = rows[-1]
    assert rows == [row, row] and row[1] == "test_pet_only" and row[2].endswith("the pairs have task MRI-CT (1 of 2 pairs)"), row
    assert current == [row]


def test_a_partial_task_skip_is_current_after_the_run_that_scored_the_other_pairs(tmp_path, make_pairs,
                                                                                  monkeypatch) -> None:
    """The run that skipped test_pet_only on the MRI-CT pair also scored it on the MRI-PET pair: scores of the same
    run are not "from a later run" (docs/runner.md), so the skip row stays current (until session 29 it was hidden
    after this run and shown again after a re-run that changed nothing, the test above)."""
    rows, current = _mixed_task_run(tmp_path, make_pairs, monkeypatch, runs=1)
    (row,) = rows
    assert row[1] == "test_pet_only" and row[2].endswith("(1 of 2 pairs)"), row
    assert current == [row]
