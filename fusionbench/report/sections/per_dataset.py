"""Tables 1–3 style for one dataset, with its statistics and per-pair figures.

The main table (the selected methods), the table of the run's other methods, 95 % bootstrap
intervals, Friedman/Nemenyi ranks and the highlighted method against each other method (Wilcoxon,
Holm), box plots, CD diagrams and the qualitative grid (:mod:`.fused_figures`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import figures, html as htmlmod
from ..context import ReportContext, file_stem, write_file
from ..data import (dataset_groups, dataset_task, dataset_title, display_name, higher_is_better, metric_arrow,
                    rankable)
from ..stats import MIN_CI_UNITS, complete_blocks, rank_test, versus_reference
from ..tables import build_table, column_digits, convention_footnote, format_number, to_csv
from ..provenance import provenance_line, weights_notes
from ..selection import TASK_PRESETS
from .fused_figures import fused_grid
from .skipped import note_skipped

# The metric set IR-VIS papers report (SeAFusion, CDDFuse, ...): VIF is the pixel-domain VIF summed over
# both sources (CDDFuse's evaluator), registered here as VIFp_sum.
IRVIS_METRICS = ("EN", "SD", "SF", "AG", "MI", "VIFp_sum", "Qabf", "SSIM", "SCD", "CC")


def dataset_section(ctx: ReportContext, dataset: str, wanted: list[str]) -> tuple[str, str]:
    """``(title, html)`` of one dataset: its main and other-methods tables (files under ``tables/``), CIs, statistics,
    box plots and grid.
    """
    data, out, names, sel = ctx.data, ctx.out, ctx.names, ctx.sel
    title = dataset_title(dataset)
    task = dataset_task(dataset)
    stem = file_stem(dataset)
    ds_scores = data.scores[data.scores["dataset"] == dataset]
    ds_methods = data.methods(dataset)
    body: list[str] = []
    metrics = wanted
    if task == "IR-VIS":
        have = set(ds_scores["metric"])
        metrics = [m for m in IRVIS_METRICS if m in have]
        missing = [m for m in IRVIS_METRICS if m not in have]
        body.append("<p>IR-VIS metric set (EN, SD, SF, AG, MI, VIF = VIFp_sum, Qabf, SSIM, SCD, CC)"
                    + (f"; not computed in this run: {', '.join(missing)} (run with <code>--metrics "
                       f"{','.join(IRVIS_METRICS)}</code>)" if missing else "") + ".</p>")
    shown, standin = sel.for_dataset(ds_methods, task)
    note_skipped(ctx, dataset, task, shown, standin, ds_methods)
    manifest = dataset_groups(dataset, ctx.data_dir)
    # the groups of the pairs the main table's methods scored: those its bootstrap resamples, and what the
    # footnote, the page and too_few count (not every group of the manifest)
    groups = manifest.of_pairs(ds_scores.loc[ds_scores["method"].isin(shown), "pair"].unique())
    n_pairs = int(ds_scores["pair"].nunique())
    footnote = convention_footnote(metrics, ctx.split_of(dataset), extra=groups.ci_sentence() + _standin_sentence(standin, names, task))
    weights, weights_line = weights_notes(shown, names, task=task, meta=data.methods_meta)
    table = build_table(data.scores, dataset, shown, metrics, title=f"{title}: {_count(len(shown), 'method')}, "
                        f"{_count(n_pairs, 'pair')}", footnote=_join(footnote, weights_line,
                                                           _provenance(ctx, dataset, shown)),
                        groups=groups.by_pair or None, names=names, highlight=sel.highlight)
    table.weights = weights
    ctx.write_table(out / "tables" / stem, table, f"tab:{stem}")
    body += [f"<p>{_count(n_pairs, 'pair')}; {htmlmod.html.escape(groups.describe())}.</p>",
             _html_metric_table(table), _html_foot(table.footnote, table.short_note())]
    if groups.too_few:  # a table of n/a would say nothing: say why there is none
        body.append(f"<h3>No 95 % confidence intervals</h3><p>{htmlmod.html.escape(groups.describe())}.</p>")
    else:
        body.append("<h3>Means with 95 % bootstrap confidence intervals</h3>" + _html_ci_table(table))
    ctx.written.append(write_file(out / "stats" / f"{stem}_ci.csv", to_csv(table)))

    body += _statistics(ctx, dataset, title, stem, ds_scores, shown, metrics)
    others = [m for m in ds_methods if m not in shown and not sel.in_table4(m)]  # seed models are Table 4's too
    if others:
        other_weights, other_line = weights_notes(others, names, task=task, meta=data.methods_meta)
        # this table's own stand-ins (a task preset among its rows), and no CI sentence: it has no CIs
        other_standin = {p: base for base, p in TASK_PRESETS.get(task or "", {}).items() if p in others}
        other_foot = convention_footnote(metrics, ctx.split_of(dataset), extra=_standin_sentence(other_standin, names, task).strip())
        other_table = build_table(data.scores, dataset, others, metrics, title=f"{title}: other methods of the "
                                  "run", footnote=_join(other_foot, other_line, _provenance(ctx, dataset, others)),
                                  groups=manifest.by_pair or None, names=names, bootstrap=False)
        other_table.weights = other_weights
        ctx.write_table(out / "tables" / f"{stem}_others", other_table, f"tab:{stem}-others")
        body.append("<h3>Other methods of the run (variants, presets, extra baselines)</h3>"
                    + _html_metric_table(other_table)
                    + _html_foot(other_line, _provenance(ctx, dataset, others), other_table.short_note()))
    ctx.written += figures.box_plots(data.scores, dataset, metrics, shown, out / "figures" / f"box_{stem}",
                                      names, title=f"Per-pair scores, {title}")
    not_drawn = figures.not_drawn_note(figures.infinite_scores(data.scores, dataset, metrics, shown), names)
    body.append(ctx.img(out / "figures" / f"box_{stem}.png",
                         _join(f"Per-pair scores of each method on {title} (box: quartiles; whiskers 1.5 IQR).",
                               not_drawn)))
    body.append(fused_grid(ctx, dataset, title, task, shown))
    return (title, "".join(body))


def _standin_sentence(standin: dict[str, str], names: dict[str, str], task: str | None) -> str:
    """`` X stands in for Y on TASK.`` for each task preset a table shows in its base method's place (or ``""``)."""
    said = "; ".join(f"{names.get(s) or display_name(s)} stands in for {names.get(m) or display_name(m)} on {task}"
                     for s, m in standin.items())
    return f" {said}." if said else ""


def _statistics(ctx: ReportContext, dataset: str, title: str, stem: str, ds_scores: pd.DataFrame, shown: list[str],
                metrics: list[str]) -> list[str]:
    """Mean ranks (Friedman, Nemenyi CD), the highlighted method against each other (Wilcoxon, Holm) and CD diagrams,
    as HTML parts.
    """
    out, names, hl = ctx.out, ctx.names, ctx.sel.highlight
    rank_rows, versus_rows, body, cds = [], [], [], []
    for metric in metrics:
        if not rankable(metric):  # best at a value inside its range (Q_SF.liu): no ranks, no verdicts
            continue
        subset = ds_scores[ds_scores["method"].isin(shown)]
        test = rank_test(subset, metric, higher_is_better(metric), pairwise=False)
        if test is None:
            continue
        for method, rank in test.ranks.items():
            rank_rows.append({"metric": metric, "method": method, "display_name": names.get(method, method),
                              "mean_rank": rank, "n_pairs": test.n_pairs, "friedman_chi2": test.friedman_stat,
                              "friedman_p": test.friedman_p, "nemenyi_cd": test.cd})
        if hl and hl in test.methods:
            vs = versus_reference(complete_blocks(subset, metric), hl, higher_is_better(metric))
            if not vs.empty:
                versus_rows.append(vs.assign(metric=metric))
        if len(test.methods) >= 3:
            ctx.written += figures.cd_diagram(test, title, out / "figures" / f"cd_{stem}_{metric}", names, hl)
            cds.append(metric)
    if rank_rows:
        ranks = pd.DataFrame(rank_rows)
        ctx.written.append(write_file(out / "stats" / f"{stem}_ranks.csv", ranks.to_csv(index=False)))
        pivot = ranks.pivot_table(index="display_name", columns="metric", values="mean_rank", sort=False)
        pivot = pivot[[m for m in metrics if m in pivot.columns]].reset_index().rename(
            columns={"display_name": "Method"})
        cd = ranks.groupby("metric")[["friedman_p", "nemenyi_cd", "n_pairs"]].first()
        body.append(f"<h3>Mean ranks over the {len(shown)} selected methods (Friedman test; Nemenyi CD at "
                    "&alpha; = 0.05)</h3>" + htmlmod.table_html(pivot, digits=2)
                    + htmlmod.table_html(cd.reset_index().rename(columns={"metric": "Metric"})))
    if versus_rows:
        vs = pd.concat(versus_rows, ignore_index=True)
        vs.insert(1, "display_name", vs["method"].map(names))
        ctx.written.append(write_file(out / "stats" / f"{stem}_vs_{hl}.csv", vs.to_csv(index=False)))
        show = vs[["metric", "display_name", "n_pairs", "median_diff", "rank_biserial", "p", "p_holm", "verdict"]]
        show = show.rename(columns={"display_name": "versus", "median_diff": f"median diff ({names[hl]} - other)",
                                    "rank_biserial": "rank-biserial r", "p_holm": "p (Holm)"})
        classes = {(i, "verdict"): v for i, v in enumerate(show["verdict"]) if v in ("better", "worse")}
        body.append(f"<h3>{htmlmod.html.escape(names[hl])} against each other method (Wilcoxon signed-rank, "
                    "two-sided, Holm-corrected over the comparisons of each metric)</h3>"
                    "<p class=\"foot\">median diff: median of the paired differences in the metric's units; "
                    "rank-biserial r = (R+ - R-)/(R+ + R-), positive when the highlighted method scores higher; "
                    "verdict applies the metric's direction at &alpha; = 0.05 after Holm.</p>"
                    + htmlmod.table_html(show, classes))
    for metric in cds:
        body.append(ctx.img(out / "figures" / f"cd_{stem}_{metric}.png",
                             f"Critical-difference diagram, {metric}, {title}: mean ranks of the selected methods "
                             "(1 = best); methods joined by a red bar are not significantly different "
                             "(Nemenyi, alpha = 0.05)."))
    return body


def _count(n: int, noun: str) -> str:
    """``1 method``, ``2 methods``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _provenance(ctx: ReportContext, dataset: str, methods: list[str]) -> str:
    """The table's provenance line: the runs and commits its rows' outputs come from, the machine, the split."""
    outputs = ctx.data.outputs
    if not outputs.empty:
        outputs = outputs[outputs["dataset"] == dataset]
    return provenance_line(outputs, ctx.data.runs, methods, ctx.names)


def _html_foot(*notes: str) -> str:
    """The notes (the empty ones left out) as one footnote paragraph, or nothing."""
    text = " ".join(n for n in notes if n)
    return f'<p class="foot">{htmlmod.html.escape(text)}</p>' if text else ""


def _html_metric_table(table) -> str:
    """The metric table as HTML: mean and std columns per metric, printed at the Markdown/LaTeX decimals of their
    column (:func:`fusionbench.report.tables.column_digits`), so that the best/second marks (compared as printed)
    match what the page shows."""
    places = table.placements()
    decimals: dict[str, int] = {}
    rows, classes, hl = [], {}, set()
    for i, method in enumerate(table.methods):
        row = {"Method": table.name(method)}
        if method == table.highlight:
            hl.add(i)
        for metric in table.metrics:
            mean, std = table.mean.loc[method, metric], table.std.loc[method, metric]
            col = f"{metric} {metric_arrow(metric)}"
            row[col] = mean
            row[f"{metric} std"] = std
            decimals[col] = decimals[f"{metric} std"] = column_digits(table.mean[metric])
            place = places.get((method, metric), "")
            if place:
                classes[(i, col)] = place
        rows.append(row)
    return htmlmod.table_html(pd.DataFrame(rows), classes, highlight_rows=hl, column_digits=decimals)


def _html_ci_table(table) -> str:
    """The means with their bootstrap CIs, each metric at the main table's decimals (:func:`column_digits` of
    its means: 4 below 10, 3 below 100, else 2; before session 33 this table printed 2 where the main one
    printed 3)."""
    rows, hl = [], set()
    decimals = {metric: column_digits(table.mean[metric]) for metric in table.metrics}
    for i, method in enumerate(table.methods):
        if method == table.highlight:
            hl.add(i)
        row = {"Method": table.name(method)}
        for metric in table.metrics:
            mean, lo, hi = table.mean.loc[method, metric], table.ci_low.loc[method, metric], \
                table.ci_high.loc[method, metric]
            d = decimals[metric]
            row[metric] = "–" if np.isnan(mean) else (
                f"{format_number(mean, d)} [{format_number(lo, d)}, {format_number(hi, d)}]" if np.isfinite(lo)
                else f"{format_number(mean, d)} [n/a]")
        rows.append(row)
    return htmlmod.table_html(pd.DataFrame(rows), highlight_rows=hl) + (
        '<p class="foot">[low, high]: 95 % percentile bootstrap CI of the mean (2,000 resamples); n/a: fewer than '
        f"{MIN_CI_UNITS} groups (series or subjects), too few to resample (with 3, the interval would be just the "
        "range of the group means).</p>")
