"""Tables in the style of the paper's Tables 1–5: Markdown, LaTeX (booktabs) and CSV.

Cells are ``mean ± std`` (std with ddof=1) over the pairs of a dataset; per
column the best mean is bold and the second underlined, following each
metric's direction (↑ higher is better, ↓ lower).  Every table carries a
footnote with the conventions it was computed under.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .data import display_name, higher_is_better, metric_convention
from .stats import bootstrap_ci


@dataclass
class MetricTable:
    """Methods × metrics statistics of one dataset."""

    title: str
    methods: list[str]
    metrics: list[str]
    mean: pd.DataFrame
    std: pd.DataFrame
    n: pd.DataFrame
    ci_low: pd.DataFrame
    ci_high: pd.DataFrame
    footnote: str = ""

    def arrows(self) -> dict[str, str]:
        return {m: "↑" if higher_is_better(m) else "↓" for m in self.metrics}

    def placements(self) -> dict[tuple[str, str], str]:
        """``{(method, metric): 'best'|'second'}`` by each metric's direction (ties share a place)."""
        out: dict[tuple[str, str], str] = {}
        for metric in self.metrics:
            col = self.mean[metric].dropna()
            if col.empty:
                continue
            values = sorted(set(col.round(12)), reverse=higher_is_better(metric))
            for method, value in col.round(12).items():
                if value == values[0]:
                    out[(method, metric)] = "best"
                elif len(values) > 1 and value == values[1]:
                    out[(method, metric)] = "second"
        return out


def build_table(scores: pd.DataFrame, dataset: str, methods: list[str], metrics: list[str], *, title: str,
                footnote: str = "", bootstrap: bool = True) -> MetricTable:
    df = scores[(scores["dataset"] == dataset) & scores["method"].isin(methods) & scores["metric"].isin(metrics)]
    grouped = df.groupby(["method", "metric"])["value"]
    frame = lambda s: s.unstack("metric").reindex(index=methods, columns=metrics)  # noqa: E731
    mean, std, n = frame(grouped.mean()), frame(grouped.std(ddof=1)), frame(grouped.count())
    low = pd.DataFrame(np.nan, index=methods, columns=metrics)
    high = low.copy()
    if bootstrap:
        for (method, metric), values in grouped:
            lo, hi = bootstrap_ci(values.to_numpy())
            low.loc[method, metric], high.loc[method, metric] = lo, hi
    present = [m for m in methods if m in mean.index and mean.loc[m].notna().any()]
    return MetricTable(title, present, metrics, mean.loc[present], std.loc[present], n.loc[present],
                       low.loc[present], high.loc[present], footnote)


def _fmt(value: float, digits: int) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _cells(table: MetricTable, method: str, digits: int, mark: Callable[[str, str], str],
           places: dict[tuple[str, str], str]) -> list[str]:
    out = []
    for metric in table.metrics:
        mean, std = table.mean.loc[method, metric], table.std.loc[method, metric]
        if not np.isfinite(mean):
            out.append("–")
            continue
        text = f"{_fmt(mean, digits)} ± {_fmt(std if np.isfinite(std) else 0.0, digits)}"
        out.append(mark(text, places.get((method, metric), "")))
    return out


def to_markdown(table: MetricTable, digits: int = 4) -> str:
    arrows = table.arrows()
    mark = lambda t, p: f"**{t}**" if p == "best" else (f"<u>{t}</u>" if p == "second" else t)  # noqa: E731
    lines = [f"**{table.title}**", "",
             "| Method | " + " | ".join(f"{m} {arrows[m]}" for m in table.metrics) + " |",
             "|---|" + "---:|" * len(table.metrics)]
    places = table.placements()
    for method in table.methods:
        cells = _cells(table, method, digits, mark, places)
        lines.append(f"| {display_name(method)} | " + " | ".join(cells) + " |")
    if table.footnote:
        lines += ["", f"<sub>{table.footnote}</sub>"]
    return "\n".join(lines) + "\n"


def _latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("±", r"$\pm$"), ("↑", r"$\uparrow$"), ("↓", r"$\downarrow$"), ("×", r"$\times$"),
                 ("²", r"$^2$"), ("✓", r"\checkmark{}"), ("✗", r"$\times$"), ("≤", r"$\le$"), ("≥", r"$\ge$"),
                 ("α", r"$\alpha$"), ("β", r"$\beta$"), ("–", "--"), ("—", "---"), ("·", r"$\cdot$"),
                 ("→", r"$\rightarrow$"), ("≈", r"$\approx$")):
        text = text.replace(a, b)
    return text


def to_latex(table: MetricTable, digits: int = 4, label: str = "") -> str:
    arrows = table.arrows()

    def mark(text: str, place: str) -> str:
        text = text.replace(" ± ", r" $\pm$ ")
        return rf"\textbf{{{text}}}" if place == "best" else (rf"\underline{{{text}}}" if place == "second" else text)

    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             rf"\caption{{{_latex_escape(table.title)}}}" + (rf"\label{{{label}}}" if label else ""),
             r"\begin{tabular}{l" + "r" * len(table.metrics) + "}", r"\toprule",
             "Method & " + " & ".join(_latex_escape(f"{m} {arrows[m]}") for m in table.metrics) + r" \\",
             r"\midrule"]
    places = table.placements()
    for method in table.methods:
        cells = _cells(table, method, digits, mark, places)
        lines.append(_latex_escape(display_name(method)) + " & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.footnote:
        lines.append(r"\par\smallskip\footnotesize " + _latex_escape(table.footnote))
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_csv(table: MetricTable) -> str:
    rows = []
    places = table.placements()
    for method in table.methods:
        for metric in table.metrics:
            rows.append({
                "method": method, "display_name": display_name(method), "metric": metric,
                "higher_is_better": higher_is_better(metric), "mean": table.mean.loc[method, metric],
                "std": table.std.loc[method, metric], "n": table.n.loc[method, metric],
                "ci95_low": table.ci_low.loc[method, metric], "ci95_high": table.ci_high.loc[method, metric],
                "place": places.get((method, metric), ""),
            })
    return pd.DataFrame(rows).to_csv(index=False)


def convention_footnote(metrics: list[str], split: str, extra: str = "") -> str:
    """The footnote every table carries: colour, split, and each metric's convention."""
    parts = [
        "Mean ± std (ddof=1) over pairs; best bold, second underlined; ↑ higher is better, ↓ lower.",
        "Scores on uint8 grey: the fused image's BT.601 full-range luma (round, clip) against the MRI/visible "
        "and the PET/SPECT BT.601 luma (or CT/IR).",
        f"Split: {split}.",
    ]
    conv = [metric_convention(m) for m in metrics]
    conv = [c for c in conv if c]
    if conv:
        parts.append("Conventions: " + "; ".join(conv) + ".")
    if extra:
        parts.append(extra)
    return " ".join(parts)


def ablation_table(scores: pd.DataFrame, variants: dict[str, dict[str, bool]], metrics: list[str],
                   pairs: list[tuple[str, str]] | None = None) -> pd.DataFrame:
    """Table 4 style: component flags (✓/✗) and metric means over ``pairs`` (``(dataset, pair)``)."""
    df = scores[scores["method"].isin(variants) & scores["metric"].isin(metrics)]
    if pairs is not None:
        keys = set(pairs)
        df = df[[(d, p) in keys for d, p in zip(df["dataset"], df["pair"])]]
    means = df.groupby(["method", "metric"])["value"].mean().unstack("metric")
    components = list(dict.fromkeys(c for flags in variants.values() for c in flags))  # registration order
    rows = []
    for method, flags in variants.items():
        row = {"variant": method, "display_name": display_name(method)}
        row.update({c.capitalize(): "✓" if flags.get(c) else "✗" for c in components})
        for metric in metrics:
            row[metric] = means.loc[method, metric] if method in means.index and metric in means.columns else np.nan
        row["n_pairs"] = int(df[df["method"] == method]["pair"].nunique())
        rows.append(row)
    return pd.DataFrame(rows)


def frame_to_markdown(frame: pd.DataFrame, digits: int = 4) -> str:
    """A plain DataFrame as a Markdown table (numbers with ``digits`` decimals)."""
    cols = list(frame.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            if isinstance(v, (float, np.floating)):
                cells.append(_fmt(float(v), digits))
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def frame_to_latex(frame: pd.DataFrame, caption: str, digits: int = 4) -> str:
    cols = list(frame.columns)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{_latex_escape(caption)}}}",
             r"\begin{tabular}{" + "l" * len(cols) + "}", r"\toprule",
             " & ".join(_latex_escape(str(c)) for c in cols) + r" \\", r"\midrule"]
    for _, row in frame.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            cells.append(_fmt(float(v), digits) if isinstance(v, (float, np.floating)) else _latex_escape(str(v)))
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"
