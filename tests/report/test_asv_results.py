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


def _suite_row(name: str, method: str, value: float, commit: str, date: int) -> dict:
    return {"benchmark": f"benchmark_methods.MethodSuite.{name}", "name": name, "method": method, "value": value,
            "date": date, "failed": False, "unit": "", "machine": "vm", "commit": commit, "env": "e", "cpu": "EPYC",
            "num_cpu": "2", "python": ""}


def test_what_was_measured_with_a_time_comes_from_its_run() -> None:
    """Two asv runs of two commits in one folder.  Before, each benchmark's newest result was taken on its own: a
    later commit's ``asv run -b time_fuse`` (on built-in pairs, without the pairs benchmark) kept the earlier
    run's "timed on the paper's 20 pairs" and its GFLOP/s beside the new time."""
    import pandas as pd

    older = [_suite_row("time_fuse", "mdl", 40.0, "aaaa", 1), _suite_row("track_paper20_pairs", "mdl", 20, "aaaa", 1),
             _suite_row("track_gflops_per_s", "mdl", 3.0, "aaaa", 1), _suite_row("track_gflops", "mdl", 6.0, "aaaa", 1),
             _suite_row("track_params", "mdl", 0.0, "aaaa", 1)]
    newer_time = [_suite_row("time_fuse", "mdl", 10.0, "bbbb", 2)]
    for rows in (older + newer_time, newer_time + older):
        costs = method_costs(pd.DataFrame(rows)).set_index("method")
        assert costs.loc["mdl", "seconds_per_pair"] == pytest.approx(0.5) and costs.loc["mdl", "commit"] == "bbbb"
        assert np.isnan(costs.loc["mdl", "paper20_pairs"]) and np.isnan(costs.loc["mdl", "gflops_per_s"])
        assert costs.loc["mdl", "gflops"] == 6.0  # a count of the code, not a measurement: the newest one
    # a later run of the pairs benchmark alone (0: built-in pairs) does not relabel the earlier time
    newer_pairs = [_suite_row("track_paper20_pairs", "mdl", 0, "cccc", 3)]
    costs = method_costs(pd.DataFrame(older + newer_pairs)).set_index("method")
    assert costs.loc["mdl", "paper20_pairs"] == 20 and costs.loc["mdl", "commit"] == "aaaa"
    assert costs.loc["mdl", "seconds_per_pair"] == pytest.approx(2.0) and costs.loc["mdl", "gflops_per_s"] == 3.0


def test_result_files_with_missing_keys_still_pair_a_time_with_its_values() -> None:
    """A row without an env (or without the column) is one file's with the others: NaN is not a new file."""
    import pandas as pd

    rows = [_suite_row("time_fuse", "mdl", 10.0, "aaaa", 1), _suite_row("track_gflops_per_s", "mdl", 3.0, "aaaa", 1),
            _suite_row("track_paper20_pairs", "mdl", 20, "aaaa", 1)]
    for frame in (pd.DataFrame(rows).assign(env=None), pd.DataFrame(rows).assign(env=np.nan),
                  pd.DataFrame(rows).drop(columns=["env"])):
        costs = method_costs(frame).set_index("method")
        assert costs.loc["mdl", "seconds_per_pair"] == pytest.approx(0.5)
        assert costs.loc["mdl", "gflops_per_s"] == 3.0 and costs.loc["mdl", "paper20_pairs"] == 20


def test_two_machines_on_one_commit_take_the_later_run() -> None:
    """asv's ``date`` is the commit's: on one commit the benchmark's ``started_at`` tells the newer run."""
    import pandas as pd

    def on(machine: str, started: int, seconds: float, pairs: int) -> list[dict]:
        return [dict(_suite_row("time_fuse", "mdl", seconds, "aaaa", 1), machine=machine, started_at=started),
                dict(_suite_row("track_paper20_pairs", "mdl", pairs, "aaaa", 1), machine=machine, started_at=started)]

    rows = on("late", 2_000, 10.0, 0) + on("early", 1_000, 40.0, 20)
    for order in (rows, rows[::-1]):
        costs = method_costs(pd.DataFrame(order)).set_index("method")
        assert costs.loc["mdl", "machine"] == "late" and costs.loc["mdl", "paper20_pairs"] == 0
        assert costs.loc["mdl", "seconds_per_pair"] == pytest.approx(0.5)


def test_a_result_without_a_date_is_not_the_newest() -> None:
    import pandas as pd

    from fusionbench.report.asv_results import latest_per_benchmark

    rows = [_suite_row("time_fuse", "mdl", 10.0, "aaaa", 5), _suite_row("time_fuse", "mdl", 40.0, "bbbb", None)]
    for order in (rows, rows[::-1]):
        assert latest_per_benchmark(pd.DataFrame(order))["commit"].tolist() == ["aaaa"]
