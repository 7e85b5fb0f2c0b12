"""The methods of the selection without results on a dataset, and why; the run's failures.

The reason is the store's ``skipped`` table where the run recorded one, else derived from the
method's task restriction (:func:`_derived_reason`).
"""
from __future__ import annotations

import pandas as pd

from .. import html as htmlmod
from ..context import ReportContext, write_file
from ..data import display_name


def note_skipped(ctx: ReportContext, dataset: str, task: str | None, shown: list[str], standin: dict[str, str],
                  ds_methods: list[str]) -> None:
    """Record each selected or ablation method without results on ``dataset``, with the run's reason or a derived one.
    """
    recorded = ctx.data.skipped
    covered = set(shown) | set(standin.values())
    for m in list(ctx.sel.main) + list(ctx.sel.ablations):
        if m in covered or m in ds_methods:
            continue
        reason = ""
        if not recorded.empty:
            hit = recorded[(recorded["dataset"] == dataset) & (recorded["method"] == m)]
            reason = "; ".join(dict.fromkeys(hit["reason"].astype(str))) if not hit.empty else ""
        if not reason:
            reason = _derived_reason(m, task)
        ctx.skipped_rows.append({"dataset": dataset, "method": ctx.names.get(m) or display_name(m), "name": m,
                                  "reason": reason})
    if not recorded.empty:
        for row in recorded[recorded["dataset"] == dataset].drop_duplicates(["method", "reason"]).itertuples():
            if not any(r["dataset"] == dataset and r["name"] == row.method for r in ctx.skipped_rows):
                ctx.skipped_rows.append({"dataset": dataset,
                                          "method": ctx.names.get(row.method) or display_name(row.method),
                                          "name": row.method, "reason": row.reason})


def note_unrun(ctx: ReportContext, methods: list[str]) -> None:
    """Methods the run resolved that have no results on any dataset (e.g. weights not available then)."""
    recorded = ctx.data.skipped
    for m in methods:
        hit = recorded[recorded["method"] == m] if not recorded.empty else recorded
        if not hit.empty:
            for row in hit.drop_duplicates(["dataset", "reason"]).itertuples():
                if not any(r["dataset"] == row.dataset and r["name"] == m for r in ctx.skipped_rows):
                    ctx.skipped_rows.append({"dataset": row.dataset, "method": ctx.names.get(m) or
                                              display_name(m), "name": m, "reason": row.reason})
            continue
        ctx.skipped_rows.append({"dataset": "every dataset", "method": display_name(m), "name": m,
                                  "reason": "requested by the run but no results in the store: not run (e.g. "
                                            "weights not available at run time; the store of that run did not "
                                            "record the reason)"})


def skipped_html(ctx: ReportContext) -> str:
    """The skipped methods (also ``tables/skipped.csv``) and the failures counted by dataset, method, stage and error.
    """
    body = []
    if ctx.skipped_rows:
        frame = pd.DataFrame(ctx.skipped_rows)[["dataset", "method", "name", "reason"]]
        ctx.written.append(write_file(ctx.out / "tables" / "skipped.csv", frame.to_csv(index=False)))
        body.append("<p>Every selected or ablation method without results on a dataset, and why (the store's "
                    "<code>skipped</code> table where the run recorded it, else the method's task "
                    "restriction):</p>" + htmlmod.table_html(frame))
    else:
        body.append("<p>No selected method was skipped on any dataset.</p>")
    failures = ctx.data.failures
    if not failures.empty:
        counts = failures.groupby(["dataset", "method", "stage", "error"]).size().reset_index(name="count")
        body.append("<h3>Failures</h3>" + htmlmod.table_html(counts))
    return "".join(body)


def _derived_reason(method: str, task: str | None) -> str:
    from fusionbench.method_registry import METHODS

    entry = METHODS.find(method)
    if entry is None:
        return "not a registered method here, and not in this run's results"
    tasks = tuple(entry.info.tasks or ())
    if tasks and task not in tasks:
        return f"applies to {', '.join(tasks)} only (dataset task: {task or 'not declared'})"
    return "no results for this dataset in the store (not run, or every pair failed: see Failures)"
