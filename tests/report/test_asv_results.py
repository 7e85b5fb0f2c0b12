"""The asv-results parser on a real results file (made by `asv run --python=same --set-commit-hash`
of benchmarks/benchmark_methods.py for average, dwt and ifcnn on this project's CI-class machine)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fusionbench.report.asv_results import method_costs, read_results

DATA = Path(__file__).parent / "data" / "asv_results"


def test_reads_every_parametrised_value() -> None:
    frame = read_results(DATA)
    assert set(frame["name"]) == {"time_fuse", "track_gflops", "track_params"}
    assert set(frame["method"]) == {"average", "dwt", "ifcnn"}
    assert frame[frame["name"] == "time_fuse"]["unit"].eq("seconds").all()
    raw = json.loads(next(DATA.glob("*/*-existing-*.json")).read_text())
    columns = raw["result_columns"]
    row = dict(zip(columns, raw["results"]["benchmark_methods.MethodSuite.time_fuse"]))
    expected = dict(zip([eval(p) for p in row["params"][0]], row["result"]))
    got = frame[frame["name"] == "time_fuse"].set_index("method")["value"].to_dict()
    assert got == pytest.approx(expected)


def test_table5_columns() -> None:
    costs = method_costs(read_results(DATA)).set_index("method")
    assert costs.loc["ifcnn", "params"] == 83587  # IFCNN's inference modules
    assert costs.loc["ifcnn", "gflops"] == pytest.approx(16.99, abs=0.01)
    assert np.isnan(costs.loc["dwt", "gflops"]) and np.isnan(costs.loc["average", "params"])
    assert 0 < costs.loc["average", "seconds_per_pair"] < costs.loc["ifcnn", "seconds_per_pair"]


def test_stale_benchmark_versions_are_dropped(tmp_path) -> None:
    import shutil

    shutil.copytree(DATA, tmp_path / "r")
    meta_path = tmp_path / "r" / "benchmarks.json"
    meta = json.loads(meta_path.read_text())
    meta["benchmark_methods.MethodSuite.time_fuse"]["version"] = "changed"
    meta_path.write_text(json.dumps(meta))
    assert "time_fuse" not in set(read_results(tmp_path / "r")["name"])
