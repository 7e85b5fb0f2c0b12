"""Tables in the style of the paper's Tables 1–5: Markdown, LaTeX (booktabs) and CSV.

Cells are ``mean ± std`` (std with ddof=1) over the pairs of a dataset (or the
mean alone, ``mean_only``); per column the best mean is bold and the second
underlined, following each metric's direction (↑ higher is better, ↓ lower);
ties share a place.  Every table carries a footnote with the conventions it was
computed under, and a 95 % bootstrap CI per cell (CSV, HTML) that resamples the
dataset's subject/series groups where it declares them.  A cell whose mean is over
fewer pairs than the table's (the metric undefined on some pairs, e.g. SCD where a
difference image is constant, or the method failed on them) is marked † and the
footnote lists it with its n (:meth:`MetricTable.short_cells`).

LaTeX: each ``.tex`` is a ``table`` float that compiles with pdflatex inside a
plain ``article`` with no error and no overfull box.  Numbers are right-aligned
with a fixed number of decimals per column (so the decimal points line up; the
mean and the std are separate columns joined by ``±``), text is escaped to
ASCII, and the tabular is wrapped in ``adjustbox`` (``max width=\\linewidth``:
shrunk only when wider than the text).  The first line names the packages
needed beyond ``booktabs``: ``% packages: booktabs, adjustbox``.
"""
from __future__ import annotations

import re

import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from fusionbench.summary import format_number, infinite_note, markdown_text, missing_value_notes

from .ablation import ablation_table  # noqa: F401  (Table 4 over seeds lives in .ablation; its name stays here)
from .data import display_name, higher_is_better, metric_arrow, metric_convention, rankable
from .stats import group_bootstrap_ci

LATEX_PACKAGES = ("booktabs", "adjustbox")
LATEX_HEADER = "% packages: " + ", ".join(LATEX_PACKAGES)


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
    names: dict[str, str] = field(default_factory=dict)  # unique display names
    highlight: str | None = None
    pairs: int = 0  # the pairs the table is over (a cell's n may be fewer: see short_cells)
    rows: pd.DataFrame | None = None  # score rows per cell, NaN values included (None: not known)
    weights: dict[str, str] = field(default_factory=dict)  # where each method's weights come from (provenance)

    def name(self, method: str) -> str:
        """The unique display name of ``method`` in this table, else its registered display name."""
        return self.names.get(method) or display_name(method)

    def short_cells(self) -> dict[tuple[str, str], int]:
        """``{(method, metric): n}`` of the cells with a mean over fewer than :attr:`pairs` pairs."""
        out: dict[tuple[str, str], int] = {}
        for method in self.methods:
            for metric in self.metrics:
                n = self.n.loc[method, metric]
                if not np.isnan(self.mean.loc[method, metric]) and n < self.pairs:  # inf too: a value
                    out[(method, metric)] = int(n)
        return out

    def empty_cells(self) -> dict[tuple[str, str], bool]:
        """``{(method, metric): undefined}`` of the cells with no value (shown –): ``True`` where every score of
        the cell is NaN (the metric undefined on every pair: CC or SCD of a constant image, ...), ``False`` where
        the cell has no score at all (not computed for that method, or its scoring failed)."""
        out = {}
        for m in self.methods:
            for k in self.metrics:
                if np.isnan(self.mean.loc[m, k]):  # an infinite mean is a value (PSNR of F = A = B), shown inf
                    out[(m, k)] = bool(self.rows is not None and self.rows.loc[m, k] > 0)
        return out

    def short_note(self) -> str:
        """The footnote sentences for :meth:`short_cells` (†), :meth:`empty_cells` (–) and the infinite means;
        empty when there are none."""
        empty = self.empty_cells()
        infinite = [f"{self.name(m)} {k}" for m in self.methods for k in self.metrics
                    if np.isinf(self.mean.loc[m, k])]
        return " ".join(missing_value_notes(
            f"the table's {self.pairs} pairs",
            [f"{self.name(m)} {k}: n = {n}" for (m, k), n in self.short_cells().items()],
            [f"{self.name(m)} {k}" for (m, k), undefined in empty.items() if undefined],
            [f"{self.name(m)} {k}" for (m, k), undefined in empty.items() if not undefined])
            + ([infinite_note(infinite)] if infinite else []))

    def arrows(self) -> dict[str, str]:
        """``↑`` (higher is better), ``↓`` (lower is better) or ``·`` (not rankable) per metric, for headers."""
        return {m: metric_arrow(m) for m in self.metrics}

    def placements(self) -> dict[tuple[str, str], str]:
        """``{(method, metric): 'best'|'second'}`` by each metric's direction.

        Means are compared as the tables show them (:func:`shown_value` at :func:`column_digits`), so values that
        print alike share a place; a column with fewer than two methods has no places.  An infinite mean (PSNR
        of F = A = B) takes its place like any value: best where the metric prefers it (until session 37 it had
        none, and the largest finite mean beside it was marked best).
        """
        out: dict[tuple[str, str], str] = {}
        for metric in self.metrics:
            col = self.mean[metric]
            col = col[~np.isnan(col.to_numpy(dtype=float))]
            if len(col) < 2 or not rankable(metric):
                continue
            digits = column_digits(col)
            col = col.map(lambda v: shown_value(v, digits))
            values = sorted(set(col), reverse=higher_is_better(metric))
            for method, value in col.items():
                if value == values[0]:
                    out[(method, metric)] = "best"
                elif len(values) > 1 and value == values[1]:
                    out[(method, metric)] = "second"
        return out


def build_table(scores: pd.DataFrame, dataset: str, methods: list[str], metrics: list[str], *, title: str,
                footnote: str = "", bootstrap: bool = True, groups: Mapping[str, str] | None = None,
                names: Mapping[str, str] | None = None, highlight: str | None = None) -> MetricTable:
    """Mean, std, n and 95 % CI per method × metric; ``groups`` ``{pair: group}`` makes the CI a group bootstrap."""
    df = scores[(scores["dataset"] == dataset) & scores["method"].isin(methods) & scores["metric"].isin(metrics)]
    grouped = df.groupby(["method", "metric"])["value"]
    frame = lambda s: s.unstack("metric").reindex(index=methods, columns=metrics)  # noqa: E731
    mean, std, n = frame(grouped.mean()), frame(grouped.std(ddof=1)), frame(grouped.count())
    rows = frame(grouped.size()).fillna(0)
    low = pd.DataFrame(np.nan, index=methods, columns=metrics)
    high = low.copy()
    if bootstrap:
        for (method, metric), part in df.groupby(["method", "metric"]):
            labels = part["pair"].map(groups).to_numpy() if groups else None
            if labels is not None and pd.isna(labels).any():
                labels = None  # a pair without a group: groups unknown for this cell
            lo, hi = group_bootstrap_ci(part["value"].to_numpy(), labels)
            low.loc[method, metric], high.loc[method, metric] = lo, hi
    present = [m for m in methods if m in mean.index and mean.loc[m].notna().any()]
    return MetricTable(title, present, metrics, mean.loc[present], std.loc[present], n.loc[present],
                       low.loc[present], high.loc[present], footnote, dict(names or {}), highlight,
                       int(df["pair"].nunique()), rows.loc[present])


def shown_value(value: float, digits: int) -> float:
    """The number a reader sees for ``value`` printed by :func:`format_number` at ``digits`` decimals."""
    return float(format_number(value, digits))


def latex_number(value: float, digits: int) -> str:
    """:func:`format_number` for LaTeX: ``$\\infty$`` / ``$-\\infty$`` for an infinite value."""
    if np.isinf(value):
        return r"$\infty$" if value > 0 else r"$-\infty$"
    return format_number(value, digits)


def column_digits(values: pd.Series | np.ndarray, most: int = 4) -> int:
    """Decimals for a column: 4 below 10, 3 below 100, else 2 (fixed per column, so decimal points align)."""
    values = np.abs(np.asarray(values, dtype=float))
    values = values[np.isfinite(values)]
    top = values.max() if values.size else 0.0
    return most if top < 10 else (max(most - 1, 0) if top < 100 else max(most - 2, 0))


def _cells(table: MetricTable, method: str, decimals: Mapping[str, int], mark: Callable[[str, str], str],
           places: dict[tuple[str, str], str], mean_only: bool = False) -> list[str]:
    out = []
    for metric in table.metrics:
        mean, std = table.mean.loc[method, metric], table.std.loc[method, metric]
        if np.isnan(mean):  # no value; an infinite mean prints inf (session 37: "–", as if there were none)
            out.append("–")
            continue
        digits = decimals[metric]
        text = format_number(mean, digits) if mean_only else \
            f"{format_number(mean, digits)} ± {format_number(std, digits)}"  # one pair: no std, "± –"
        out.append(mark(text, places.get((method, metric), "")))
    return out


def to_markdown(table: MetricTable, digits: int = 4, mean_only: bool = False) -> str:
    """The table as Markdown: ``mean ± std`` (or the mean alone) per cell, to :func:`column_digits` decimals
    (``digits`` below 10, fewer above, as in LaTeX), best bold, second underlined, † on cells over fewer pairs,
    then the footnote."""
    arrows = table.arrows()
    mark = lambda t, p: f"**{t}**" if p == "best" else (f"<u>{t}</u>" if p == "second" else t)  # noqa: E731
    lines = [f"**{markdown_text(table.title)}**", "",
             "| Method | " + " | ".join(f"{m} {arrows[m]}" for m in table.metrics) + " |",
             "|---|" + "---:|" * len(table.metrics)]
    places = table.placements()
    short = table.short_cells()
    decimals = {m: column_digits(table.mean[m], digits) for m in table.metrics}
    for method in table.methods:
        cells = _cells(table, method, decimals, mark, places, mean_only)
        cells = [c + ("†" if (method, k) in short else "") for c, k in zip(cells, table.metrics)]
        name = markdown_text(table.name(method), cell=True)
        lines.append(f"| {'**' + name + '**' if method == table.highlight else name} | " + " | ".join(cells) + " |")
    note = " ".join(t for t in (table.footnote, table.short_note()) if t)
    if note:
        lines += ["", f"<sub>{markdown_text(note)}</sub>"]
    return "\n".join(lines) + "\n"


_LATEX = (("\\", r"\textbackslash{}"), ("{", r"\{"), ("}", r"\}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"),
          ("_", r"\_"), ("#", r"\#"), ("^", r"\^{}"), ("~", r"\~{}"),
          ("±", r"$\pm$"), ("↑", r"$\uparrow$"), ("↓", r"$\downarrow$"), ("×", r"$\times$"), ("²", r"$^2$"),
          ("³", r"$^3$"), ("⁻¹", r"$^{-1}$"), ("✓", r"$\surd$"), ("✗", r"$\times$"), ("≤", r"$\le$"),
          ("≥", r"$\ge$"), ("–", "--"), ("—", "---"), ("·", r"$\cdot$"), ("→", r"$\rightarrow$"),
          ("≈", r"$\approx$"), ("µ", r"$\mu$"), ("°", r"$^\circ$"), ("’", "'"), ("‘", "`"), ("“", "``"),
          ("”", "''"), ("…", r"\dots{}"), ("−", "-"), ("√", r"$\surd$"), ("<", r"\textless{}"),
          (">", r"\textgreater{}"), ("|", r"\textbar{}"), ("†", r"$^\dagger$"), ("≠", r"$\neq$"), ("∞", r"$\infty$"),
          ("≡", r"$\equiv$"), ("∼", r"$\sim$"), ("÷", r"$\div$"))


#: Greek letters (U+0391-U+03A9, U+03B1-U+03C9) as LaTeX math: by LaTeX's names, which are not always Unicode's
#: (λ is ``GREEK SMALL LETTER LAMDA`` and ς ``FINAL SIGMA``; ο and the capitals without a macro are Latin letters).
#: Until session 32 the letter was written as ``\`` and its Unicode name, and every table scored with Qc (its
#: convention says λ) stopped pdflatex at ``\lamda``.
_GREEK_SMALL = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi o pi rho varsigma sigma "
                "tau upsilon phi chi psi omega").split()
_GREEK_CAPITAL = "A B Gamma Delta E Z H Theta I K Lambda M N Xi O Pi P - Sigma T Upsilon Phi X Psi Omega".split()
_GREEK_LATEX = {**{chr(0x3B1 + i): rf"$\{n}$" if len(n) > 1 else f"${n}$" for i, n in enumerate(_GREEK_SMALL)},
                **{chr(0x391 + i): rf"$\{n}$" if len(n) > 1 else rf"$\mathrm{{{n}}}$"
                   for i, n in enumerate(_GREEK_CAPITAL) if n != "-"},
                # the glyphs as Unicode draws them: ε and φ are LaTeX's \varepsilon and \varphi, its \epsilon and
                # \phi are Unicode's ϵ and ϕ; and the other symbol variants
                "ε": r"$\varepsilon$", "φ": r"$\varphi$", "ϵ": r"$\epsilon$", "ϕ": r"$\phi$", "ϑ": r"$\vartheta$",
                "ϖ": r"$\varpi$", "ϱ": r"$\varrho$"}
#: :data:`_LATEX` as a mapping (its one-character keys also escape the ASCII parts of a decomposed character)
_LATEX_MAP = dict(_LATEX)


def _non_ascii_to_latex(ch: str) -> str:
    """One non-ASCII character outside :data:`_LATEX` as ASCII LaTeX: a Greek letter by :data:`_GREEK_LATEX`,
    else its compatibility decomposition's Greek and ASCII parts (ά → α, µ → μ, é → e, ﬁ → fi), else ``?`` (also
    for a symbol whose decomposition carries a mark: ≮ is not <)."""
    if ch in _GREEK_LATEX:
        return _GREEK_LATEX[ch]
    decomposed = unicodedata.normalize("NFKD", ch)
    if not decomposed[0].isalpha() and any(unicodedata.combining(c) for c in decomposed):
        return "?"  # a symbol with a mark (≮ is < and a stroke): dropping the mark would say the opposite
    parts = [_GREEK_LATEX.get(c) or ("/" if c == "\u2044" else _LATEX_MAP.get(c, c) if ord(c) < 128 else "")
             for c in decomposed]
    # ½ → 1/2 (its decomposition's fraction slash); a fullwidth or small form of a LaTeX special (＼ ｛ ＆ ﹪) is
    # escaped like the special itself: passed through, `＼input｛/etc/passwd｝` compiled as \input{/etc/passwd}
    return "".join(parts) or "?"


#: combining marks written as a math accent on the letter before them (x̅, m̃ in the PSNR presets' conventions);
#: other marks are dropped, the letter kept
_COMBINING_LATEX = {"\u0304": r"\bar", "\u0305": r"\bar", "\u0303": r"\tilde", "\u0302": r"\hat", "\u0307": r"\dot"}


def _accented(previous: str, mark: str) -> str | None:
    """``previous`` (one ASCII letter, or a Greek letter as ``$\\name$``) under the combining ``mark``, or ``None``."""
    accent = _COMBINING_LATEX.get(mark)
    if accent is None:
        return None
    if len(previous) == 1 and previous.isascii() and previous.isalpha():
        return rf"${accent}{{{previous}}}$"
    if re.fullmatch(r"\$(\\[A-Za-z]+|[A-Za-z]|\\mathrm\{[A-Z]\})\$", previous):
        return rf"${accent}{{{previous[1:-1]}}}$"
    return None


def latex_escape(text: str) -> str:
    """Escape LaTeX specials and write every non-ASCII character as ASCII LaTeX (Greek letters by LaTeX's names)."""
    out = []
    table = _LATEX_MAP
    i = 0
    while i < len(text):
        two = text[i:i + 2]
        if two in table:
            out.append(table[two])
            i += 2
            continue
        ch = text[i]
        i += 1
        if ch in table:
            out.append(table[ch])
        elif ord(ch) < 128:
            out.append(ch)
        elif unicodedata.combining(ch):
            accented = _accented(out[-1], ch) if out else None
            if accented is not None:
                out[-1] = accented
        else:
            out.append(_non_ascii_to_latex(ch))
    return "".join(out)


def latex_label(label: str) -> str:
    """``label`` as a ``\\label`` key: every character but ASCII letters, digits and ``: . _ -`` becomes ``-``.
    A label is not escaped text: a dataset name's ``}`` and TeX's ``^^5c`` (a backslash) in it ran
    ``\\input{/etc/passwd}`` when the table compiled (an untrusted-input audit, session 31)."""
    return re.sub(r"[^A-Za-z0-9:._-]", "-", label)


def _latex_float(caption: str, label: str, colspec: str, header: list[str], rows: list[str], note: str = "",
                 wide: bool = False) -> str:
    env = "table*" if wide else "table"
    lines = [LATEX_HEADER, rf"\begin{{{env}}}[t]", r"\centering", r"\small",
             rf"\caption{{{latex_escape(caption)}}}" + (rf"\label{{{latex_label(label)}}}" if label else ""),
             r"\begin{adjustbox}{max width=\linewidth}", rf"\begin{{tabular}}{{{colspec}}}", r"\toprule"]
    lines += header + [r"\midrule"] + rows + [r"\bottomrule", r"\end{tabular}", r"\end{adjustbox}"]
    if note:
        lines.append(r"\par\smallskip{\raggedright\footnotesize " + latex_escape(note) + r"\par}")
    lines.append(rf"\end{{{env}}}")
    return "\n".join(lines) + "\n"


def to_latex(table: MetricTable, digits: int = 4, label: str = "", mean_only: bool = False) -> str:
    """The table as a booktabs float (see the module docstring); ``mean_only`` drops the std columns."""
    arrows = table.arrows()
    places = table.placements()
    decimals = {m: column_digits(table.mean[m], digits) for m in table.metrics}

    def mark(text: str, place: str) -> str:
        return rf"\textbf{{{text}}}" if place == "best" else (rf"\underline{{{text}}}" if place == "second" else text)

    if mean_only:
        colspec = "l" + "r" * len(table.metrics)
        header = ["Method & " + " & ".join(latex_escape(f"{m} {arrows[m]}") for m in table.metrics) + r" \\"]
    else:
        colspec = "l" + r"r@{\,$\pm$\,}r" * len(table.metrics)
        header = ["Method & " + " & ".join(rf"\multicolumn{{2}}{{c}}{{{latex_escape(f'{m} {arrows[m]}')}}}"
                                          for m in table.metrics) + r" \\"]
    rows = []
    short = table.short_cells()
    for method in table.methods:
        cells = []
        for metric in table.metrics:
            mean, std = table.mean.loc[method, metric], table.std.loc[method, metric]
            place = places.get((method, metric), "")
            d = decimals[metric]
            if np.isnan(mean):
                cells.append("--" if mean_only else r"\multicolumn{2}{c}{--}")
                continue
            cells.append(mark(latex_number(mean, d), place) + (r"$^\dagger$" if (method, metric) in short else ""))
            if not mean_only:
                cells.append(mark(format_number(std, d) if np.isfinite(std) else "--", place))  # one pair: no std
        name = latex_escape(table.name(method))
        rows.append((rf"\textbf{{{name}}}" if method == table.highlight else name) + " & " + " & ".join(cells)
                    + r" \\")
    note = table.footnote.replace("Mean ± std (ddof=1) over pairs", "Mean over pairs") if mean_only else table.footnote
    note = " ".join(t for t in (note, table.short_note()) if t)
    return _latex_float(table.title, label, colspec, header, rows, note)


def to_csv(table: MetricTable) -> str:
    """The table as CSV, one row per (method, metric): direction, mean, std, n, 95 % bootstrap CI, place, and
    where the method's weights come from (``weights``: empty for a method without learned weights)."""
    rows = []
    places = table.placements()
    for method in table.methods:
        for metric in table.metrics:
            rows.append({
                "method": method, "display_name": table.name(method), "metric": metric,
                "higher_is_better": higher_is_better(metric), "mean": table.mean.loc[method, metric],
                "std": table.std.loc[method, metric], "n": table.n.loc[method, metric],
                "ci95_low": table.ci_low.loc[method, metric], "ci95_high": table.ci_high.loc[method, metric],
                "place": places.get((method, metric), ""), "weights": table.weights.get(method, ""),
            })
    return pd.DataFrame(rows).to_csv(index=False)


def _colour_exception(metrics: list[str]) -> str:
    """``"; ChromaErr on the images in colour"`` for the presets among ``metrics`` that read colour, else ``""``."""
    from fusionbench.metric_registry import METRICS

    colour = [m for m in metrics if m in METRICS and METRICS.get(m).info.colour == "rgb"]
    return f"; {', '.join(colour)} on the images in colour (RGB), not luma" if colour else ""


def convention_footnote(metrics: list[str], split: str, extra: str = "") -> str:
    """The footnote every table carries: colour, split, and each metric's convention."""
    parts = [
        "Mean ± std (ddof=1) over pairs; best bold, second underlined; ↑ higher is better, ↓ lower"
        + ("; · no direction (not ranked)" if any(not rankable(m) for m in metrics) else "") + ".",
        "Scores on uint8 grey: the fused image's BT.601 full-range luma (0.299 R + 0.587 G + 0.114 B of the image "
        "in [0, 1] (uint8 ÷ 255 in float32), in float64 kept as float32; ×255, rounded half to even, clipped) against the MRI/visible "
        "luma and the PET/SPECT BT.601 luma (or CT/IR)" + _colour_exception(metrics) + ".",
        f"Split: {split}.",
    ]
    conv = [metric_convention(m) for m in metrics]
    conv = [c for c in conv if c]
    if conv:
        parts.append("Conventions: " + "; ".join(conv) + ".")
    if extra:
        parts.append(extra)
    return " ".join(parts)


def ablation_to_latex(table: pd.DataFrame, caption: str, label: str = "tab:ablation") -> str:
    """Table 4 style LaTeX: centred ✓/✗ component columns (and ``Seeds``), then mean ± sd per metric
    (decimal-aligned; :func:`fusionbench.report.ablation.ablation_table` says over what the sd is)."""
    metrics = table.attrs.get("metrics") or [c for c in table.columns if f"{c} std" in table.columns]
    flags = [c for c in table.columns if c != "Variant" and c not in metrics and not c.endswith(" std")]
    decimals = {m: column_digits(table[m]) for m in metrics}
    colspec = "l" + "c" * len(flags) + r"r@{\,$\pm$\,}r" * len(metrics)
    arrows = {m: "↑" if higher_is_better(m) else "↓" for m in metrics}
    header = ["Variant & " + " & ".join(latex_escape(f) for f in flags) + " & "
              + " & ".join(rf"\multicolumn{{2}}{{c}}{{{latex_escape(f'{m} {arrows[m]}')}}}" for m in metrics)
              + r" \\"]
    rows = []
    for _, row in table.iterrows():
        cells = [latex_escape(str(row["Variant"]))] + [latex_escape(str(row[f])) for f in flags]
        for m in metrics:
            if np.isfinite(row[m]):
                std = row[f"{m} std"]
                cells += [format_number(row[m], decimals[m]), format_number(std, decimals[m]) if np.isfinite(std) else "--"]
            else:
                cells.append(r"\multicolumn{2}{c}{--}")
        rows.append(" & ".join(cells) + r" \\")
    return _latex_float(caption, label, colspec, header, rows)


def frame_to_markdown(frame: pd.DataFrame, digits: int = 4, column_digits: Mapping[str, int] | None = None) -> str:
    """A plain DataFrame as a Markdown table (numbers with ``digits`` decimals, ``column_digits[column]`` where
    given, right-aligned)."""
    column_digits = dict(column_digits or {})
    cols = list(frame.columns)

    def numeric(c: str) -> bool:  # numbers, possibly with n/a or – placeholders
        values = [v for v in frame[c] if not (isinstance(v, str) and v in ("n/a", "–", "--", ""))]
        return bool(values) and all(isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_))
                                    for v in values)

    lines = ["| " + " | ".join(markdown_text(c, cell=True) for c in cols) + " |",
             "|" + "".join("---:|" if numeric(c) else "---|" for c in cols)]
    for _, row in frame.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            if isinstance(v, (float, np.floating)):
                cells.append(format_number(float(v), column_digits.get(c, digits)))
            else:
                cells.append(markdown_text(str(v), cell=True))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def frame_to_latex(frame: pd.DataFrame, caption: str, digits: int = 4, label: str = "", note: str = "",
                   formats: Mapping[str, Callable[[object], str]] | None = None) -> str:
    """A plain DataFrame as a booktabs float: text columns left, numeric columns right-aligned with fixed
    decimals per column (``formats[column](value)`` overrides a column's formatting)."""
    formats = dict(formats or {})
    cols = list(frame.columns)

    def is_numeric(c: str) -> bool:
        values = [v for v in frame[c] if not (isinstance(v, str) and v in ("n/a", "–", "--", ""))]
        return bool(values) and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                                    for v in values)

    numeric = {c: c in formats or is_numeric(c) for c in cols}
    decimals = {c: column_digits([v for v in frame[c] if isinstance(v, (int, float, np.number))], digits)
                for c in cols if numeric[c]}
    colspec = "".join("r" if numeric[c] else "l" for c in cols)
    header = [" & ".join(latex_escape(str(c)) for c in cols) + r" \\"]
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            if c in formats:
                cells.append(latex_escape(formats[c](v)))
            elif isinstance(v, (float, np.floating)):
                cells.append("--" if not np.isfinite(v) else format_number(float(v), decimals.get(c, digits)))
            else:
                cells.append(latex_escape(str(v)))
        rows.append(" & ".join(cells) + r" \\")
    return _latex_float(caption, label, colspec, header, rows, note)
