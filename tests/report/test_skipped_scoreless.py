"""Skips the run recorded on a dataset without a single score appear in ``tables/skipped.csv`` and on the page
(session 37 audit, finding 1: ``--datasets harvard-mri-spect,tno --split paper20`` recorded 4 rows "no split
'paper20'" on TNO, and the report wrote no ``skipped.csv`` and said "No selected method was skipped")."""
from __future__ import annotations

import pandas as pd

from fusionbench.runner import RunConfig, run
from fusionbench.store import ResultsStore


def test_skips_on_a_dataset_without_scores_are_reported(tmp_path, make_pairs) -> None:
    from fusionbench.report import build_report

    data = make_pairs(tmp_path / "data", 3, size=32)
    out = tmp_path / "out"
    run(RunConfig(methods=["average,maximum"], datasets=[f"folder:{data}"], metrics="EN", out=str(out), workers=0,
                  quiet=True), log=lambda m: None)
    # what the runner records for a dataset without the split, and (since 41a509d) for a split without pairs
    no_split, no_pairs = "folder:/nowhere/tno", "folder:/nowhere/empty"
    rows = [(no_split, m, "no split 'paper20' (has: train, test)") for m in ("average", "maximum")]
    rows += [(no_pairs, m, "no image pairs in split 'paper20'") for m in ("average", "maximum")]
    with ResultsStore(out / "results.sqlite") as store:
        store.record_skipped(1, rows)
    report = tmp_path / "report"
    build_report(out, report, metrics="EN", quiet=True, log=lambda m: None, profile=False)

    skipped = pd.read_csv(report / "tables" / "skipped.csv")
    got = {(r.dataset, r.name, r.reason) for r in skipped.itertuples()}
    assert got == set(rows), got
    assert set(skipped["method"]) == {"Average", "Maximum"}  # display names, as everywhere
    page = (report / "index.html").read_text()
    assert "No selected method was skipped" not in page
    assert "no split &#x27;paper20&#x27;" in page or "no split 'paper20'" in page
    assert "no image pairs in split" in page


def test_a_report_without_skips_still_says_so(tmp_path, make_pairs) -> None:
    """The other side: nothing recorded, nothing listed (the fix must not invent rows)."""
    from fusionbench.report import build_report

    data = make_pairs(tmp_path / "data", 3, size=32)
    out = tmp_path / "out"
    run(RunConfig(methods=["average,maximum"], datasets=[f"folder:{data}"], metrics="EN", out=str(out), workers=0,
                  quiet=True), log=lambda m: None)
    report = tmp_path / "report"
    build_report(out, report, metrics="EN", quiet=True, log=lambda m: None, profile=False)
    assert not (report / "tables" / "skipped.csv").exists()
    assert "No selected method was skipped on any dataset." in (report / "index.html").read_text()
