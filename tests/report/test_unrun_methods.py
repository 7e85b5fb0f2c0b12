"""``tables/skipped.csv`` tells a method that never ran from one that ran and has no result, only failures (the store's
``failures`` table): the audit found both reported as "not run"."""
from __future__ import annotations

import pandas as pd

from fusionbench.method_registry import METHODS, register_method
from fusionbench.runner import RunConfig, run


def test_a_method_that_failed_on_every_pair_is_not_reported_as_not_run(tmp_path, make_pairs) -> None:
    from fusionbench.report import build_report

    @register_method("test_always_raises")
    def always_raises(a, b):
        raise RuntimeError("broken on purpose")

    @register_method("test_always_raises_too")
    def always_raises_too(a, b):
        raise ValueError("broken on purpose")

    data = make_pairs(tmp_path / "data", 3, size=32)
    out = str(tmp_path / "out")
    try:
        run(RunConfig(methods=["average,test_always_raises,test_always_raises_too"], datasets=[f"folder:{data}"],
                      metrics="EN", out=out, workers=0, quiet=True), log=lambda m: None)
        # the last run re-runs only one of them: the other is still a method that ran and failed everywhere
        run(RunConfig(methods=["test_always_raises"], datasets=[f"folder:{data}"], metrics="EN", out=out, workers=0,
                      quiet=True), log=lambda m: None)
        build_report(out, tmp_path / "report", metrics="EN", quiet=True, log=lambda m: None, profile=False)
    finally:
        METHODS.remove("test_always_raises")
        METHODS.remove("test_always_raises_too")
    skipped = pd.read_csv(tmp_path / "report" / "tables" / "skipped.csv").set_index("name")
    for name, error in (("test_always_raises", "RuntimeError"), ("test_always_raises_too", "ValueError")):
        reason = skipped.loc[name, "reason"]
        assert "not run" not in reason, reason
        assert reason.startswith("ran, no result: 3 pairs failed") and f"{error} 3" in reason, reason
        assert skipped.loc[name, "dataset"] == f"folder:{data}"


def test_a_method_that_failed_on_every_pair_of_one_dataset_says_so_there() -> None:
    """A selected method with results elsewhere but only failures on this dataset: the reason counts them (before:
    "not run, or every pair failed")."""
    from types import SimpleNamespace

    from fusionbench.report.sections.skipped import note_skipped

    failures = pd.DataFrame([("ds2", p, "maximum", "fuse", "", e, "x") for p, e in
                             (("p0", "PairTimeout"), ("p1", "PairTimeout"), ("p2", "WorkerCrash"))],
                            columns=["dataset", "pair", "method", "stage", "metric", "error", "message"])
    ctx = SimpleNamespace(data=SimpleNamespace(skipped=pd.DataFrame(columns=["dataset", "method", "reason"]),
                                               failures=failures),
                          sel=SimpleNamespace(main=["average", "maximum"], ablations=[]), names={}, skipped_rows=[])
    note_skipped(ctx, "ds2", None, ["average"], {}, ["average"])
    (row,) = ctx.skipped_rows
    assert row["name"] == "maximum" and row["reason"] == (
        "ran, no result: 3 pairs failed (PairTimeout 2 at fuse, WorkerCrash 1 at fuse; see Failures)")


def _unrun_rows(out) -> list[dict]:
    """The rows :func:`note_unrun` adds for the store in ``out`` (the run resolved no method without scores)."""
    from types import SimpleNamespace

    from fusionbench.report.data import ReportData
    from fusionbench.report.sections.skipped import note_unrun

    ctx = SimpleNamespace(data=ReportData.load(out), names={}, skipped_rows=[])
    note_unrun(ctx, [])
    return ctx.skipped_rows


def test_a_method_with_some_results_and_some_failures_is_not_listed_as_without_results(tmp_path, make_pairs) -> None:
    """A method that failed on one pair of three has results: skipped.csv must not say "ran, no result" for it."""
    calls = []

    @register_method("test_fails_once")
    def fails_once(a, b):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("broken on one pair")
        return a

    data = make_pairs(tmp_path / "data", 3, size=32)
    out = tmp_path / "out"
    try:
        summary = run(RunConfig(methods=["average,test_fails_once"], datasets=[f"folder:{data}"], metrics="EN",
                                out=str(out), workers=0, quiet=True), log=lambda m: None)
    finally:
        METHODS.remove("test_fails_once")
    assert summary.failures == 1 and len(calls) == 3
    assert _unrun_rows(out) == []


def test_an_input_problem_is_not_listed_as_a_method_without_results(tmp_path, make_pairs) -> None:
    """A file with no partner is a ``failures`` row with no method (an input problem): it must not become a nameless
    "ran, no result: 1 pair failed (InputError ...)" row of skipped.csv."""
    from PIL import Image

    from fusionbench.report.data import ReportData

    data = make_pairs(tmp_path / "data", 2, size=32)
    Image.new("L", (32, 32)).save(data / "a" / "lonely.png")
    out = tmp_path / "out"
    run(RunConfig(methods=["average"], datasets=[f"folder:{data}"], metrics="EN", out=str(out), workers=0,
                  quiet=True), log=lambda m: None)
    failures = ReportData.load(out).failures
    assert list(failures["error"]) == ["InputError"] and list(failures["method"]) == [""]  # what the run recorded
    assert _unrun_rows(out) == []


def test_a_method_failing_every_metric_counts_its_pairs_once() -> None:
    """A method whose scoring fails fails once per metric per pair: 3 pairs scored on EN and SD are 3 pairs failed
    (ScoreError 3), not 6."""
    from fusionbench.report.sections.skipped import failed_reason

    failures = pd.DataFrame([("ds", p, "maximum", "score", metric, "ScoreError", "x") for p in ("p0", "p1", "p2")
                             for metric in ("EN", "SD")],
                            columns=["dataset", "pair", "method", "stage", "metric", "error", "message"])
    assert failed_reason(failures, "maximum", "ds") == \
        "ran, no result: 3 pairs failed (ScoreError 3 at score; see Failures)"
    one = failures[failures["pair"] == "p0"]
    assert failed_reason(one, "maximum", "ds") == "ran, no result: 1 pair failed (ScoreError 1 at score; see Failures)"
    assert failed_reason(failures, "maximum", "other") == "" and failed_reason(failures, "average", "ds") == ""
