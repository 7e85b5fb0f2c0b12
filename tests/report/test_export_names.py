"""The export's ``methods.csv`` gives each method the unique display name the tables use, and keeps the name the
run recorded in ``recorded_display_name`` (session 37 audit, finding 5: ``swinfusion`` and ``swinfusion.ct`` were
both "SwinFusion" there, "SwinFusion (ct)" in the tables)."""
from __future__ import annotations

import sqlite3

import pandas as pd

from fusionbench.runner import RunConfig, run


def test_the_export_uses_the_tables_unique_display_names(tmp_path, make_pairs) -> None:
    from fusionbench.report import build_report

    data = make_pairs(tmp_path / "data", 3, size=32)
    out = tmp_path / "out"
    run(RunConfig(methods=["average,maximum"], datasets=[f"folder:{data}"], metrics="EN", out=str(out), workers=0,
                  quiet=True), log=lambda m: None)
    with sqlite3.connect(out / "results.sqlite") as conn:  # two methods recorded under one display name
        conn.execute("UPDATE methods SET display_name = 'Average'")
    report = tmp_path / "report"
    build_report(out, report, metrics="EN", quiet=True, log=lambda m: None, profile=False)

    (table,) = [p for p in (report / "tables").glob("folder*.csv")]
    shown = dict(zip(*pd.read_csv(table)[["method", "display_name"]].drop_duplicates().to_dict("list").values()))
    assert shown == {"average": "Average", "maximum": "Average [maximum]"}, shown
    methods = pd.read_csv(report / "results" / "methods.csv").set_index("method")
    assert methods["display_name"].to_dict() == shown
    assert methods["display_name"].is_unique
    assert methods["recorded_display_name"].to_dict() == {"average": "Average", "maximum": "Average"}

    rebuilt = tmp_path / "rebuilt"  # read back: the same names, and the recorded one kept
    build_report(report / "results", rebuilt, metrics="EN", quiet=True, log=lambda m: None, profile=False)
    again = pd.read_csv(rebuilt / "results" / "methods.csv").set_index("method")
    assert again["display_name"].to_dict() == shown
    assert again["recorded_display_name"].to_dict() == {"average": "Average", "maximum": "Average"}
    assert pd.read_csv(next((rebuilt / "tables").glob("folder*.csv")))["display_name"].drop_duplicates().tolist() \
        == list(shown.values())
