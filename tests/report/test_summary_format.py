"""``summary.md`` prints tiny means and stds as the report's tables do (docs/reports.md): a non-zero value that
would print as zero in 3 significant digits, never ``0.0000 ± 0.0000``."""
from __future__ import annotations


def test_a_tiny_nonzero_mean_is_not_printed_as_zero(tmp_path) -> None:
    from fusionbench.store import ResultsStore
    from fusionbench.summary import summary_table
    from fusionbench.worker import TaskResult

    with ResultsStore(tmp_path / "r.sqlite") as store:
        for pair, nabf, en in (("p1", 1.8e-06, 1.0), ("p2", 2.2e-06, 2.0), ("p3", 2.6e-06, 6.0)):
            store.record_task(TaskResult("ds", pair, "average", "k1", "s" + pair, scores={"Nabf": nabf, "EN": en},
                                         seconds=0.1, path=f"/x/{pair}.png"), run_id=1)
        store.record_task(TaskResult("ds", "p1", "maximum", "k2", "sp1", scores={"Nabf": 0.0, "EN": 1.0},
                                     seconds=0.1, path="/x/m1.png"), run_id=1)
        text = summary_table(store, "ds", ["EN", "Nabf"], ["average", "maximum"])
    assert "| 3.0000 ± 2.6458 | 2.20e-06 ± 4.00e-07 |" in text, text  # the audit's o31: 0.0000 ± 0.0000
    # exactly zero stays 0; the std of one pair is undefined, "–" (session 37's audit: it printed "± 0.0000")
    assert "| 1.0000 ± –† | 0.0000 ± –† |" in text, text


def test_format_number_switches_to_exponent_only_where_four_decimals_print_zero() -> None:
    """The rule is "would print as zero" (below half a unit of the last decimal), not "below one unit": 7e-05 prints as
    0.0001 at 4 decimals, 4e-05 would print as 0.0000."""
    from fusionbench.summary import format_number

    assert format_number(7e-05, 4) == "0.0001" and format_number(-7e-05, 4) == "-0.0001"
    assert format_number(4e-05, 4) == "4.00e-05" and format_number(-4e-05, 4) == "-4.00e-05"
    assert format_number(7e-03, 2) == "0.01" and format_number(4e-03, 2) == "4.00e-03"
    assert format_number(0.0, 4) == "0.0000"


def test_non_finite_values_print_as_a_dash_not_nan() -> None:
    """NaN cells are "–" (the tables' missing-value mark), never ``nan``, also through frame_to_markdown, which the
    report's Markdown tables use; an infinite value is ``inf`` (a mean over PSNR of F = A = B; until session 37
    "–" too, as if there were no value)."""
    import numpy as np
    import pandas as pd

    from fusionbench.report.tables import frame_to_markdown
    from fusionbench.summary import format_number

    for value in (float("nan"), np.nan, None):
        assert format_number(value, 4) == "–", value
    assert (format_number(np.inf, 4), format_number(-np.inf, 2)) == ("inf", "-inf")
    text = frame_to_markdown(pd.DataFrame({"Method": ["A", "B"], "EN": [1.5, np.nan], "SD": [np.inf, 2.0]}))
    assert text.splitlines()[2:] == ["| A | 1.5000 | inf |", "| B | – | 2.0000 |"], text
    assert "nan" not in text


def test_dagger_counts_every_pair_scored_when_no_cell_covers_them_all(tmp_path) -> None:
    """average on p1, p2 and maximum on p2, p3: the dataset has 3 pairs scored, so both cells are means over fewer
    (not the largest cell count, 2, taken as the number of pairs: then no † at all)."""
    from fusionbench.store import ResultsStore
    from fusionbench.summary import summary_table
    from fusionbench.worker import TaskResult

    with ResultsStore(tmp_path / "r.sqlite") as store:
        for method, pairs in (("average", ("p1", "p2")), ("maximum", ("p2", "p3"))):
            for pair in pairs:
                store.record_task(TaskResult("ds", pair, method, "k" + method, "s" + pair, scores={"EN": 1.0},
                                             seconds=0.1, path=f"/x/{method}{pair}.png"), run_id=1)
        text = summary_table(store, "ds", ["EN"], ["average", "maximum"])
    assert "| 1.0000 ± 0.0000† |" in text, text
    assert "† Mean over fewer than the 3 pairs scored" in text, text
    assert "`average` EN: n = 2; `maximum` EN: n = 2" in text, text


def test_an_infinite_score_is_kept_and_its_mean_shown(tmp_path) -> None:
    """Session 37's audit: PSNR of F = A = B (``inf``, as documented) was stored as NULL, so the run's mean left
    that pair out and marked the cell "undefined on the others", where ``fusionbench score`` gave ``inf``.
    NaN (undefined) is still NULL."""
    from _db import rows

    from fusionbench.store import ResultsStore
    from fusionbench.summary import format_number, summary_table
    from fusionbench.worker import TaskResult

    with ResultsStore(tmp_path / "r.sqlite") as store:
        for pair, psnr in (("p1", float("inf")), ("p2", 15.0), ("p3", float("nan"))):
            store.record_task(TaskResult("ds", pair, "average", "k1", "s" + pair, scores={"PSNR": psnr},
                                         seconds=0.1, path=f"/x/{pair}.png"), run_id=1)
        text = summary_table(store, "ds", ["PSNR"], ["average"])
    assert rows(tmp_path / "r.sqlite", "SELECT pair, value FROM scores ORDER BY pair") == [
        ("p1", float("inf")), ("p2", 15.0), ("p3", None)]
    assert "| inf ± –† |" in text, text  # over p1 and p2 (p3 undefined)
    assert "inf: a mean over an infinite score (PSNR where F = A = B)" in text and "`average` PSNR." in text
    assert format_number(float("-inf"), 4) == "-inf" and format_number(float("nan"), 4) == "–"
