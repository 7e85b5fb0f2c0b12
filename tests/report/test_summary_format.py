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
    assert "| 1.0000 ± 0.0000† | 0.0000 ± 0.0000† |" in text, text  # exactly zero (and one pair's std) stay 0
