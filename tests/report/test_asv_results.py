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


def test_table5_reads_only_the_table5_suite() -> None:
    """Other suites of benchmarks/benchmark_methods.py have benchmarks of the same names (one pair's time_fuse,
    time_fuse per image size, fraction of conv peak per thread schedule): Table 5 must not pick one of them,
    whatever the row order (before, the pivot's 'last' row won, and MethodSuite happened to sort last)."""
    import pandas as pd

    def row(suite: str, name: str, method: str, value: float) -> dict:
        return {"benchmark": f"benchmark_methods.{suite}.{name}", "name": name, "method": method, "value": value,
                "date": 1, "failed": False, "unit": "", "machine": "vm", "commit": "c", "env": "e", "cpu": "",
                "num_cpu": "", "python": ""}

    rows = [row("MethodSuite", "time_fuse", "average", 2.0), row("MethodSuite", "track_gflops", "average", np.nan),
            row("MethodRunPairSuite", "time_fuse", "average", 0.005),
            row("MethodScalingSuite", "time_fuse", "average", 9.0),
            row("MopaThreadSchedule", "track_fraction_of_conv_peak", "average", 0.5)]
    for order in (rows, rows[::-1]):
        costs = method_costs(pd.DataFrame(order)).set_index("method")
        assert costs.loc["average", "seconds_per_pair"] == pytest.approx(2.0 / 20)
        assert np.isnan(costs.loc["average", "fraction_of_conv_peak"])
