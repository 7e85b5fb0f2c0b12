"""Metric versions: a preset whose values change is re-scored from the cached fused image, and no reader
mixes scores of two versions of one preset (the store, its export, the report)."""
from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from fusionbench.metric_registry import METRICS, register_metric
from fusionbench.report.data import ReportData
from fusionbench.runner import RunConfig, run
from fusionbench.store import ResultsStore

from _db import rows as _rows

NAME = "TEST_LEVEL"


def _register(version: str, offset: float) -> None:
    """``TEST_LEVEL`` = mean grey level of F + ``offset``, as preset version ``version``."""
    register_metric(NAME, lambda f, a=None, b=None: float(np.mean(f)) + offset, override=True,
                    needs_sources=False, version=version)


@pytest.fixture
def test_metric():
    _register("1", 0.0)
    yield
    METRICS.remove(NAME)


def _run(data, out, logs=None):
    return run(RunConfig(methods=["average"], datasets=[f"folder:{data}"], metrics=f"EN,{NAME}", out=str(out),
                         workers=0, quiet=True), log=(logs.append if logs is not None else lambda m: None))


def test_a_bumped_metric_is_rescored_without_fusing_again(tmp_path, make_pairs, test_metric) -> None:
    data, out = make_pairs(tmp_path / "data", 2), tmp_path / "out"
    assert _run(data, out).completed == 2
    db = out / "results.sqlite"
    fused = _rows(db, "SELECT pair, seconds, run_id, path FROM outputs ORDER BY pair")
    v1 = dict(_rows(db, f"SELECT pair, value FROM scores WHERE metric='{NAME}' ORDER BY pair"))
    assert _rows(db, f"SELECT DISTINCT metric_version FROM scores WHERE metric='{NAME}'") == [("1",)]

    _register("2", 1000.0)  # the preset's values change, and its version says so
    with ResultsStore(db) as store:
        current = store.scores_frame()
        assert NAME not in set(current["metric"]) and set(current["metric"]) == {"EN"}  # never mixed
        assert all(NAME not in metrics for metrics in store.done_index(f"folder:{data}").values())
        assert store.superseded() == 2
    second = _run(data, out)
    assert second.completed == 2 and second.skipped_done == 0
    assert _rows(db, "SELECT pair, seconds, run_id, path FROM outputs ORDER BY pair") == fused  # not fused again
    v2 = dict(_rows(db, f"SELECT pair, value FROM scores WHERE metric='{NAME}' ORDER BY pair"))
    assert v2 == pytest.approx({p: v + 1000.0 for p, v in v1.items()})
    assert _rows(db, f"SELECT DISTINCT metric_version FROM scores WHERE metric='{NAME}'") == [("2",)]
    assert _run(data, out).skipped_done == 2  # done now


def test_a_store_from_before_metric_versions_reads_its_scores_as_version_1(tmp_path, test_metric) -> None:
    db = tmp_path / "old.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript("""
        CREATE TABLE scores (dataset TEXT NOT NULL, pair TEXT NOT NULL, method TEXT NOT NULL, metric TEXT NOT NULL,
            value REAL, method_key TEXT NOT NULL, pair_sha256 TEXT NOT NULL, run_id INTEGER, created REAL NOT NULL,
            PRIMARY KEY (dataset, pair, method, metric, method_key));
        INSERT INTO scores VALUES ('d', 'p1', 'average', 'TEST_LEVEL', 12.5, 'k', 's', 1, 0.0);
    """)
    conn.commit()
    conn.close()
    with ResultsStore(db) as store:
        frame = store.scores_frame(history=True)
        assert frame[["metric", "value", "metric_version"]].values.tolist() == [[NAME, 12.5, "1"]]
        assert store.done_index("d") == {("p1", "average", "k", "s"): {NAME}}


def test_an_export_leaves_out_scores_of_an_older_metric_version(tmp_path, make_pairs, test_metric) -> None:
    data, out = make_pairs(tmp_path / "data", 2), tmp_path / "out"
    _run(data, out)
    export = ReportData.load(out).export(tmp_path / "export")
    assert (export / "metric_versions.csv").read_text().splitlines() == ["metric,version", "EN,1", f"{NAME},1"]
    assert set(ReportData.load(export).scores["metric"]) == {"EN", NAME}

    _register("2", 1000.0)
    stale = ReportData.load(export)
    assert set(stale.scores["metric"]) == {"EN"} and stale.stale_metrics == {NAME: ("1", "2")}
    logs: list[str] = []
    from fusionbench.report import build_report

    build_report(export, tmp_path / "report", metrics=f"EN,{NAME}", log=logs.append, quiet=True, profile=False)
    assert any(f"the {NAME} scores in" in line and "metric version 1, the registered preset is version 2" in line
               for line in logs)
