"""The Markdown summary ``run`` writes: mean ± std per method × metric, per dataset.

The full report (tables in Markdown/LaTeX/CSV, statistics, figures, HTML) is
``fusionbench report``; this summary is the quick look printed after a run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from .metric_registry import METRICS
from .method_registry import METHODS
from .store import ResultsStore


def format_number(value: float, digits: int) -> str:
    """``value`` to ``digits`` decimals; a non-zero value that would print as zero in 3 significant digits
    (``2.80e-08``), so that a column of tiny values (Nabf, ...) is not a column of ``0.0000``; ``–`` if NaN,
    ``inf``/``-inf`` if infinite.
    Shared by ``summary.md`` and the report's tables (:mod:`fusionbench.report.tables`)."""
    if value is None or np.isnan(value):
        return "–"
    if np.isinf(value):  # a mean over an infinite score (PSNR of F = A = B)
        return "inf" if value > 0 else "-inf"
    if value != 0 and abs(value) < 0.5 * 10.0 ** -digits:
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def markdown_text(text: str, *, cell: bool = False) -> str:
    """``text`` (a name or title from a store, a plugin or a ``dataset.json``) as plain Markdown: ``<`` as
    ``&lt;`` (no raw HTML), ``&`` as ``&amp;``, line breaks as spaces and, in a table ``cell``, ``|`` as ``\\|``:
    a display name with ``|`` or a newline broke the table's rows, and one with HTML was rendered (session 31)."""
    text = " ".join(str(text).replace("&", "&amp;").replace("<", "&lt;").splitlines())
    return text.replace("|", "\\|") if cell else text


def summary_table(store: ResultsStore, dataset: str, metrics: list[str], methods: list[str],
                  pairs: set[str] | None = None) -> str:
    """One Markdown table (methods × metrics) of mean ± std over the dataset's scored pairs (current rows only:
    each method's current version, each pair's current file; older rows are the store's history), at 4 decimals
    (a non-zero value that would print as zero in 3 significant digits, as in the report: :func:`format_number`).
    ``pairs``: only these pair ids (the run's split as listed now)."""
    df = store.scores_frame([dataset])
    df = df[df["method"].isin(methods) & df["metric"].isin(metrics)]
    if pairs is not None:
        df = df[df["pair"].astype(str).isin(pairs)]
    if df.empty:
        return "_no scores_\n"
    stats = df.groupby(["method", "metric"])["value"].agg(["mean", "std", "count"])
    pairs = int(df["pair"].nunique())
    short: list[str] = []
    undefined: list[str] = []  # every score NaN
    unscored: list[str] = []  # no score row at all
    infinite: list[str] = []  # a mean over an infinite score
    known = store.method_metadata()
    arrows = {m: ("↑" if METRICS.get(m).info.higher_is_better else "↓") for m in metrics}
    head = "| method | n | " + " | ".join(f"{m} {arrows[m]}" for m in metrics) + " |"
    lines = [head, "|---|---:|" + "---:|" * len(metrics)]
    for method in methods:
        if method not in stats.index.get_level_values(0):
            continue
        cells = []
        n = 0
        for metric in metrics:
            row = stats.loc[(method, metric)] if (method, metric) in stats.index else None
            count = int(row["count"]) if row is not None else 0
            if count > 0:
                n = max(n, count)
                # the std of one pair (ddof=1) is undefined: "± –" (it printed "± 0.0000" before session 37)
                cells.append(f"{format_number(row['mean'], 4)} ± {format_number(row['std'], 4)}"
                             + ("†" if count < pairs else ""))
                if count < pairs:
                    short.append(f"`{method}` {metric}: n = {count}")
                if np.isinf(row["mean"]):
                    infinite.append(f"`{method}` {metric}")
            else:
                cells.append("–")
                (undefined if row is not None else unscored).append(f"`{method}` {metric}")
        display = known[method]["display_name"] if method in known else METHODS.get(method).info.display_name
        lines.append(f"| {markdown_text(display, cell=True)} (`{method}`) | {n} | " + " | ".join(cells) + " |")
    for note in missing_value_notes(f"the {pairs} pairs scored", short, undefined, unscored) \
            + ([infinite_note(infinite)] if infinite else []):
        lines += ["", note]
    return "\n".join(lines) + "\n"


def missing_value_notes(pairs: str, short: list[str], undefined: list[str], unscored: list[str]) -> list[str]:
    """The footnote sentences of a methods × metrics table for its cells over fewer than ``pairs`` (†, each
    with its n), its cells whose every score is NaN and those with no score at all (–); shared by
    ``summary.md`` and the report's tables (:meth:`fusionbench.report.tables.MetricTable.short_note`)."""
    notes = []
    if short:
        notes.append(f"† Mean over fewer than {pairs} (the metric undefined on the others, or the method failed on "
                     f"them): {'; '.join(short)}.")
    for cells, why in ((undefined, "the metric is undefined on every pair"),
                       (unscored, "not scored (not computed for this method, or its scoring failed)")):
        if cells:
            notes.append(f"– No value, {why}: {'; '.join(cells)}.")
    return notes


def infinite_note(cells: list[str]) -> str:
    """The footnote sentence for cells whose mean is infinite; shared by ``summary.md`` and the report's tables."""
    return (f"inf: a mean over an infinite score (PSNR where F = A = B), whose std and 95 % CI are undefined "
            f"(± –, n/a): {'; '.join(cells)}.")


def write_summary(store: ResultsStore, path: Path, *, metrics: list[str], datasets: Iterable[str],
                  methods: list[str], pairs: dict[str, set[str]] | None = None) -> Path:
    """Write the per-dataset Markdown summary and return its path. ``pairs``: each dataset's pair ids in the run's
    split as the run listed them; the summary is over those (session 39's CLI audit: a store holding a run of
    another split, or pairs since removed from a folder, pooled them in)."""
    parts = ["# fusionbench run summary\n",
             "Mean ± standard deviation (ddof=1) over the pairs of each dataset; scores on the fused BT.601 luma "
             "quantised to uint8 (see docs/conventions.md). Failures are in the `failures` table of results.sqlite.\n"]
    for dataset in datasets:
        parts.append(f"\n## {dataset}\n\n" + summary_table(store, dataset, metrics, methods,
                                                            (pairs or {}).get(dataset)))
    failures = store.failures_frame()  # current failures only, like the scores
    if not failures.empty:
        counts = failures.groupby(["method", "stage"]).size()
        parts.append("\n## Failures\n\n| method | stage | count |\n|---|---|---:|\n")
        parts += [f"| {m or '(input)'} | {s} | {c} |\n" for (m, s), c in counts.items()]
    path.write_text("".join(parts))
    return path
