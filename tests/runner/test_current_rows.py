"""Issue 14.1: readers use each method's current key and each pair's current file; older rows stay as history."""
from __future__ import annotations

import sqlite3

import numpy as np
from PIL import Image

from fusionbench.method_registry import METHODS, register_method
from fusionbench.runner import RunConfig, run
from fusionbench.store import ResultsStore


def _register(version: str) -> None:
    @register_method("test_versioned", version=version, override=True)
    def versioned(a, b):
        return np.maximum(a, b) if version == "1" else (a + b) / 2


def test_bumped_version_supersedes_old_rows(tmp_path, make_pairs) -> None:
    data = make_pairs(tmp_path / "data", 3)
    cfg = RunConfig(methods=["test_versioned,average"], datasets=[f"folder:{data}"], metrics="EN,SD",
                    out=str(tmp_path / "out"), workers=0, quiet=True)
    try:
        _register("1")
        run(cfg, log=lambda m: None)
        _register("2")
        logs: list[str] = []
        second = run(cfg, log=logs.append)
    finally:
        METHODS.remove("test_versioned")
    assert second.completed == 3 and second.skipped_done == 3  # only the bumped method runs again
    assert second.superseded == 6  # 3 pairs x 2 metrics of version 1
    assert any("6 older score rows" in line and "superseded" in line for line in logs)

    db = tmp_path / "out" / "results.sqlite"
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM scores WHERE method='test_versioned'").fetchone()[0] == 12  # history kept
    con.close()
    with ResultsStore(db) as store:
        current = store.scores_frame()
        everything = store.scores_frame(current_only=False)
        outputs = store.outputs_frame()
    ours = current[current["method"] == "test_versioned"]
    assert len(ours) == 6 and len(everything[everything["method"] == "test_versioned"]) == 12
    assert len(outputs[outputs["method"] == "test_versioned"]) == 3
    # the current rows are version 2's (the mean, as `average`), not version 1's maximum
    mine = ours.set_index(["pair", "metric"])["value"].sort_index()
    avg = current[current["method"] == "average"].set_index(["pair", "metric"])["value"].sort_index()
    assert np.allclose(mine.to_numpy(), avg.to_numpy())
    # the summary's n is the number of pairs, not pairs x versions
    summary = (tmp_path / "out" / "summary.md").read_text()
    row = next(line for line in summary.splitlines() if "`test_versioned`" in line)
    assert row.split("|")[2].strip() == "3"


def test_a_changed_pair_file_makes_other_methods_rows_history(tmp_path, make_pairs) -> None:
    data = make_pairs(tmp_path / "data", 2)
    base = dict(datasets=[f"folder:{data}"], metrics="EN", out=str(tmp_path / "out"), workers=0, quiet=True)
    run(RunConfig(methods=["average,maximum"], **base), log=lambda m: None)
    rng = np.random.default_rng(7)
    Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)).save(data / "a" / "p000.png")
    again = run(RunConfig(methods=["average"], **base), log=lambda m: None)
    assert again.completed == 1  # the changed pair is fused again; p001 is done
    with ResultsStore(tmp_path / "out" / "results.sqlite") as store:
        df = store.scores_frame()
        assert set(zip(df["pair"], df["method"])) == {("p000", "average"), ("p001", "average"), ("p001", "maximum")}
        assert store.superseded() == 1  # maximum on the old p000


def test_a_fixed_input_problem_is_no_longer_a_failure(tmp_path, make_pairs) -> None:
    data = make_pairs(tmp_path / "data", 2)
    partner = (data / "b" / "p001.png").read_bytes()
    (data / "b" / "p001.png").unlink()  # p001 has no partner: an input problem of the dataset
    base = dict(methods=["average"], datasets=[f"folder:{data}"], metrics="EN", out=str(tmp_path / "out"),
                workers=0, quiet=True)
    run(RunConfig(**base), log=lambda m: None)
    with ResultsStore(tmp_path / "out" / "results.sqlite") as store:
        assert list(store.failures_frame()["error"]) == ["InputError"]
    (data / "b" / "p001.png").write_bytes(partner)
    again = run(RunConfig(**base), log=lambda m: None)
    assert again.completed == 1
    with ResultsStore(tmp_path / "out" / "results.sqlite") as store:
        assert store.failures_frame().empty and len(store.scores_frame()) == 2
