"""The methods of the selection without results on a dataset, and why; the run's failures.

The reason is the store's ``skipped`` table where the run recorded one, else the store's ``failures`` where the
method ran and has no result, only failures (:func:`failed_reason`), else derived from the method's task restriction
(:func:`_derived_reason`).
"""
from __future__ import annotations

import pandas as pd

from .. import html as htmlmod
from ..context import ReportContext, write_file
from ..data import dataset_order, dataset_task, display_name


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
            reason = failed_reason(ctx.data.failures, m, dataset) or _derived_reason(m, task)
        ctx.skipped_rows.append({"dataset": dataset, "method": ctx.names.get(m) or display_name(m), "name": m,
                                  "reason": reason})
    if not recorded.empty:
        for row in recorded[recorded["dataset"] == dataset].drop_duplicates(["method", "reason"]).itertuples():
            if not any(r["dataset"] == dataset and r["name"] == row.method for r in ctx.skipped_rows):
                ctx.skipped_rows.append({"dataset": dataset,
                                          "method": ctx.names.get(row.method) or display_name(row.method),
                                          "name": row.method, "reason": row.reason})


def note_scoreless(ctx: ReportContext) -> None:
    """Record the selected and ablation methods on each dataset that has no score at all, with the run's reasons.

    A dataset without scores has no section (:func:`note_skipped` runs for the datasets shown), yet the run may
    have recorded why nothing ran there: ``no split 'paper20'`` on a dataset without that split, ``no image pairs
    in split 'X'`` on one whose split is empty, or failures only.  Those datasets are the ones named in the store's
    ``skipped`` or ``failures`` rows and not among :meth:`ReportData.datasets`, in that fixed order; each is noted
    as a shown dataset without shown methods (before session 37 their rows vanished, and the page said that no
    selected method was skipped)."""
    data = ctx.data
    shown = set(data.datasets())
    named: list[str] = []
    for frame in (data.skipped, data.failures):
        if not frame.empty and "dataset" in frame.columns:
            named += [d for d in frame["dataset"] if isinstance(d, str) and d]
    for dataset in dataset_order([d for d in dict.fromkeys(named) if d not in shown]):
        note_skipped(ctx, dataset, dataset_task(dataset), [], {}, [])


def note_unrun(ctx: ReportContext, methods: list[str]) -> None:
    """Methods without results on any dataset, and why: ``methods`` (those the run resolved), and any other method
    that has rows in the store's ``failures`` table only (it ran, in an earlier run, and has no result).

    The reason, per dataset: the store's ``skipped`` row where the run recorded one, else the failures
    (:func:`failed_reason`: it ran and has no result, with the failure types and counts), else "not run"
    (e.g. weights not available then, not recorded by the store of that run).
    """
    recorded, failures = ctx.data.skipped, ctx.data.failures
    scored = set(ctx.data.scores["method"])
    failed = [m for m in dict.fromkeys(failures["method"]) if isinstance(m, str) and m and m not in scored] \
        if not failures.empty else []  # no method: an input problem, not a method's failure
    for m in dict.fromkeys([*methods, *failed]):
        hit = recorded[recorded["method"] == m] if not recorded.empty else recorded
        rows = [(row.dataset, row.reason) for row in hit.drop_duplicates(["dataset", "reason"]).itertuples()]
        covered = {dataset for dataset, _ in rows}
        if m in failed:
            rows += [(dataset, failed_reason(failures, m, dataset)) for dataset
                     in dict.fromkeys(failures.loc[failures["method"] == m, "dataset"]) if dataset not in covered]
        if not rows:
            rows = [("every dataset", "requested by the run but no results in the store: not run (e.g. weights not "
                                      "available at run time; the store of that run did not record the reason)")]
        for dataset, reason in rows:
            if not any(r["dataset"] == dataset and r["name"] == m for r in ctx.skipped_rows):
                ctx.skipped_rows.append({"dataset": dataset, "name": m, "reason": reason,
                                          "method": ctx.names.get(m) or display_name(m, ctx.data.methods_meta)})


def failed_reason(failures: pd.DataFrame, method: str, dataset: str) -> str:
    """Why ``method`` has no results on ``dataset`` when it has ``failures`` rows there: ``ran, no result: 3 pairs
    failed (WorkerCrash 3 at fuse; see Failures)`` (pairs counted once per failure type and stage; a pair the run
    did not reach has no row, so not "every pair"); ``""`` where it has none."""
    if failures.empty:
        return ""
    rows = failures[(failures["method"] == method) & (failures["dataset"] == dataset)]
    if rows.empty:
        return ""
    pairs = int(rows["pair"].astype(str).nunique())
    kinds = rows.drop_duplicates(["pair", "stage", "error"]).groupby(["stage", "error"]).size() \
        .sort_values(ascending=False, kind="stable")
    words = ", ".join(f"{error} {n} at {stage}" for (stage, error), n in kinds.items())
    return f"ran, no result: {pairs} pair{'s' if pairs != 1 else ''} failed ({words}; see Failures)"


def skipped_html(ctx: ReportContext) -> str:
    """The skipped methods (also ``tables/skipped.csv``) and the failures counted by dataset, method, stage and error.
    """
    body = []
    if ctx.skipped_rows:
        frame = pd.DataFrame(ctx.skipped_rows)[["dataset", "method", "name", "reason"]]
        ctx.written.append(write_file(ctx.out / "tables" / "skipped.csv", frame.to_csv(index=False)))
        body.append("<p>Every selected or ablation method without results on a dataset, and why (the store's "
                    "<code>skipped</code> table where the run recorded it, else its failures where it ran and "
                    "has no result, else the method's task restriction):</p>" + htmlmod.table_html(frame))
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
