"""``fusionbench report``: results (+ profiles, asv results) → tables, statistics, claims check, figures, HTML.

Output layout under ``DIR``::

    README.md                 what is here and the command that made the results
    index.html                everything on one page (figures linked from figures/; --full embeds them)
    results/                  the current rows as gzip CSV (what a committed report carries instead of
                              results.sqlite; ``fusionbench report DIR`` reads it back) and profile.csv
    tables/<dataset>.{md,tex,csv}         Tables 1–3 style: the selected methods (default: the paper's ten)
    tables/<dataset>_others.{md,tex,csv}  every other method of the run (variants, extra baselines, external)
    tables/table4_ablation.{md,tex,csv}   Table 4 style (when two or more ablation presets were run)
    tables/table5_cost.{md,tex,csv}       Table 5 style (profile + the run's seconds, or asv)
    tables/claims.{md,csv}                the paper's claims beside the measurement, with verdicts
    tables/paper_vs_ours_*.{md,csv}       the paper's published numbers beside ours
    stats/<dataset>_ranks.csv, <dataset>_vs_<highlight>.csv, <dataset>_ci.csv
    figures/*.png             grids, masks, box plots, CD diagrams, ablation (PDF twins with --full)

See ``docs/reports.md``.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from fusionbench.metric_registry import resolve_metrics

from . import ablation as ablationmod, claims as claimsmod, cost as costmod, figures, html as htmlmod, paper
from .asv_results import method_costs, read_results
from .data import (EXPORT_DIR, ReportData, dataset_groups, dataset_task, dataset_title, display_name,
                   higher_is_better)
from .selection import Selection, ablation_flags, select, unique_display_names
from .stats import complete_blocks, group_bootstrap_ci, rank_test, versus_reference
from .tables import (ablation_table, ablation_to_latex, build_table, convention_footnote, frame_to_latex,
                     frame_to_markdown, to_csv, to_latex, to_markdown)

Log = Callable[[str], None]

# The metric set IR-VIS papers report (SeAFusion, CDDFuse, ...): VIF is the pixel-domain VIF summed over
# both sources (CDDFuse's evaluator), registered here as VIFp_sum.
IRVIS_METRICS = ("EN", "SD", "SF", "AG", "MI", "VIFp_sum", "Qabf", "SSIM", "SCD", "CC")
MAX_GRID_METHODS = 10


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _stem(dataset: str) -> str:
    return dataset.replace(":", "_").replace("/", "_").replace("\\", "_")


def run_asv(methods: list[str], repo: Path, log: Log) -> bool:
    """Run the asv Table 5 suite for ``methods`` in the existing environment (results saved with the commit)."""
    if not (repo / "asv.conf.json").is_file():
        log(f"benchmarks skipped: no asv.conf.json in {repo} (run from a checkout)")
        return False
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    if sha.returncode != 0:
        log("benchmarks skipped: not a git checkout")
        return False
    env = dict(os.environ, FUSIONBENCH_BENCH_METHODS=",".join(methods))
    asv = [sys.executable, "-m", "asv"]
    subprocess.run(asv + ["machine", "--yes"], cwd=repo, env=env, capture_output=True)
    log(f"running asv benchmark_methods for {len(methods)} methods (this takes a while; --no-bench skips it)")
    done = subprocess.run(asv + ["run", "--python=same", "--set-commit-hash", sha.stdout.strip(),
                                 "--bench", "benchmark_methods", "--show-stderr"], cwd=repo, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        log(f"asv failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    return done.returncode == 0


def build_report(results: str | Path, out_dir: str | Path | None = None, *, metrics: str = "paper",
                 run_benchmarks: bool = False, asv_results: str | Path | None = None, repo: str | Path = ".",
                 data_dir: str | Path | None = None, quiet: bool = False, log: Log | None = None,
                 methods: str | None = None, order: str | None = None, highlight: str | None = None,
                 exclude_variants: bool = False, full: bool = False, mean_only: bool = False,
                 roi: tuple[int, int, int] | None = None, profile: bool = True) -> Path:
    """Build the whole report from ``results`` (an OUT folder, results.sqlite or a report's ``results/``).

    ``methods``/``order``/``highlight``/``exclude_variants`` choose the main methods
    (:mod:`fusionbench.report.selection`; default: the paper's ten when ``mopa`` was run);
    ``full`` writes 200 dpi figures with PDF twins and embeds them in the page;
    ``mean_only`` writes LaTeX tables without the std columns; ``roi`` = (row, col, size) places every zoom
    inset; ``profile`` False skips parameter/GFLOP profiling (Table 5 keeps the times).
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    figures.set_resolution(full)
    data = ReportData.load(results)
    for metric, (old, new) in data.stale_metrics.items():
        log(f"report: the {metric} scores in {data.db} are of metric version {old}, the registered preset is "
            f"version {new}: left out (re-run the results with `fusionbench run` to score them again)")
    if data.scores.empty:
        why = ("all of its scores are of older metric versions (above)" if data.stale_metrics else
               "every (method, pair) of its runs was skipped or failed (the run's 'not run' and FAILED lines say "
               "why; also its failures and skipped tables)")
        raise ValueError(f"{data.db}: no scores to report: {why}")
    out = Path(out_dir) if out_dir is not None else (data.db.parent.parent if data.db.name == EXPORT_DIR
                                                     else data.db.parent)
    out.mkdir(parents=True, exist_ok=True)
    run = data.last_run()
    config = run.get("config", {}) if isinstance(run.get("config"), dict) else {}
    data_dir = data_dir or config.get("data_dir")
    split = config.get("split") or "all"
    available_metrics = set(data.scores["metric"])
    wanted = [m for m in resolve_metrics(metrics) if m in available_metrics]
    all_methods = data.methods()
    names = unique_display_names(all_methods, {m: display_name(m, data.methods_meta) for m in all_methods})
    sel = select(all_methods, methods=methods, order=order, highlight=highlight, exclude_variants=exclude_variants)
    ctx = _Context(data, out, names, sel, data_dir, split, log, full, mean_only, roi)
    pairs20 = _paper20_keys(data_dir)

    sections: list[tuple[str, ...]] = [("Methods shown", _selection_html(sel, names))]
    for dataset in data.datasets():
        sections.append(ctx.dataset_section(dataset, wanted))
    resolved = config.get("resolved_methods") or []
    ctx.note_unrun([m for m in resolved if m not in set(all_methods)])
    skipped = ctx.skipped_html()
    masks = ctx.mask_figure()

    ablation_means = None
    groups = ablationmod.seed_groups(all_methods, sel.ablations)  # a preset's models over training seeds
    variants = {m: ablation_flags(m) for m in sel.ablations if groups[m]}
    if len(variants) >= 2:
        section, ablation_means = ctx.ablation_section(variants, [m for m in paper.PAPER_COLUMNS if m in wanted]
                                                       or wanted, pairs20)
        sections.append(section)
    elif variants:
        sections.append(("Table 4 style: ablation", "<p>Only one ablation variant in this run "
                         f"({', '.join(names[m] for m in variants)}): Table 4 and Fig. 10 left out (nothing to "
                         "compare). Run <code>--methods 'mopa*'</code> for the ablation presets.</p>"))

    costs, time_label, section = ctx.cost_section(pairs20, run_benchmarks, asv_results, Path(repo), profile, run)
    sections.append(section)

    if "mopa" in all_methods:
        claims = claimsmod.claims_table(data.scores, ablation_means, costs, time_label)
        sections.insert(1, ctx.claims_section(claims))
    else:
        sections.insert(1, ("Claims check", "<p>The founding paper's network (<code>mopa</code>) is not in this run: "
                            "no claim of the paper to check. Run <code>--methods all</code> (or include "
                            "<code>mopa</code>) for the claims check.</p>", "claims"))
    sections.append(ctx.beside_section())
    if masks:
        sections.append(masks)
    sections.append(("Skipped methods and failures", skipped))

    if data.db.resolve() != (out / EXPORT_DIR).resolve():
        data.export(out / EXPORT_DIR)
    ctx.written += [p for p in (out / EXPORT_DIR).glob("*") if p.is_file()]
    provenance = {k: run.get(k) for k in ("command", "git_sha", "versions", "machine", "config") if k in run}
    ctx.written.append(_write(out / "index.html", htmlmod.page("fusionbench report", provenance, sections)))
    _write(out / "README.md", _readme(run, out, ctx.written, sel, data.runs, time_label, _figure_notes(ctx, repo)))
    if not quiet:
        log(f"report: {len(ctx.written)} files in {out} (open {out / 'index.html'})")
    return out


def _selection_html(sel: Selection, names: dict[str, str]) -> str:
    def listing(ms: list[str]) -> str:
        return ", ".join(f"{htmlmod.html.escape(names.get(m, m))} (<code>{m}</code>)" for m in ms) or "none"

    hl = f" Highlighted: {htmlmod.html.escape(names.get(sel.highlight, sel.highlight))}." if sel.highlight else ""
    return (f"<p>Main tables: {htmlmod.html.escape(sel.note)}: {listing(sel.main)}.{hl}</p>"
            f"<p>Ablation presets (own table): {listing(sel.ablations)}.</p>"
            f"<p>Other methods of the run (own table per dataset): {listing(sel.others)}.</p>"
            "<p>Choose with <code>fusionbench report DIR --methods PATTERNS --order LIST --highlight NAME "
            "--exclude-variants</code>.</p>")


class _Context:
    """State shared by the sections of one report."""

    def __init__(self, data: ReportData, out: Path, names: dict[str, str], sel: Selection, data_dir, split: str,
                 log: Log, full: bool, mean_only: bool, roi) -> None:
        self.data, self.out, self.names, self.sel = data, out, names, sel
        self.data_dir, self.split, self.log, self.full, self.mean_only, self.roi = (data_dir, split, log, full,
                                                                                   mean_only, roi)
        self.written: list[Path] = []
        self.skipped_rows: list[dict] = []
        self.figure_pairs: dict[str, tuple] = {}  # dataset → (title, pair, task) for the masks figure
        self.refused: set[str] = set()  # methods re-run for the figures (fused-image cache gone)
        self.missing: dict[str, str] = {}  # methods left out of the figures, and why

    # ------------------------------------------------------------------ helpers
    def img(self, path: Path, caption: str) -> str:
        return htmlmod.image_html(path, caption, self.out, embed=self.full) if path.is_file() else ""

    def write_table(self, stem: Path, table, label: str) -> None:
        self.written += [_write(stem.with_suffix(".md"), to_markdown(table)),
                         _write(stem.with_suffix(".tex"), to_latex(table, label=label, mean_only=self.mean_only)),
                         _write(stem.with_suffix(".csv"), to_csv(table))]

    # ------------------------------------------------------------------ per dataset
    def dataset_section(self, dataset: str, wanted: list[str]) -> tuple[str, str]:
        data, out, names, sel = self.data, self.out, self.names, self.sel
        title = dataset_title(dataset)
        task = dataset_task(dataset)
        stem = _stem(dataset)
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
        self._note_skipped(dataset, task, shown, standin, ds_methods)
        groups = dataset_groups(dataset, self.data_dir)
        n_pairs = int(ds_scores["pair"].nunique())
        standin_note = "; ".join(f"{names[s]} stands in for {names.get(m, m)} on {task}" for s, m in standin.items())
        footnote = convention_footnote(metrics, self.split, extra=(
            f"95 % CIs (HTML, CSV): bootstrap, {groups.describe()}." + (f" {standin_note}." if standin_note else "")))
        table = build_table(data.scores, dataset, shown, metrics, title=f"{title}: {len(shown)} methods, "
                            f"{n_pairs} pairs", footnote=footnote, groups=groups.by_pair or None, names=names,
                            highlight=sel.highlight)
        self.write_table(out / "tables" / stem, table, f"tab:{stem}")
        body += [f"<p>{n_pairs} pairs; {htmlmod.html.escape(groups.describe())}.</p>",
                 _html_metric_table(table), _html_foot(footnote, table.short_note())]
        body.append("<h3>Means with 95 % bootstrap confidence intervals</h3>" + _html_ci_table(table))
        self.written.append(_write(out / "stats" / f"{stem}_ci.csv", to_csv(table)))

        body += self._statistics(dataset, title, stem, ds_scores, shown, metrics)
        others = [m for m in ds_methods if m not in shown and m not in sel.ablations]
        if others:
            other_table = build_table(data.scores, dataset, others, metrics, title=f"{title}: other methods of the "
                                      "run", footnote=footnote, groups=groups.by_pair or None, names=names,
                                      bootstrap=False)
            self.write_table(out / "tables" / f"{stem}_others", other_table, f"tab:{stem}-others")
            body.append("<h3>Other methods of the run (variants, presets, extra baselines)</h3>"
                        + _html_metric_table(other_table) + _html_foot(other_table.short_note()))
        self.written += figures.box_plots(data.scores, dataset, metrics, shown, out / "figures" / f"box_{stem}",
                                          names, title=f"Per-pair scores, {title}")
        body.append(self.img(out / "figures" / f"box_{stem}.png",
                             f"Per-pair scores of each method on {title} (box: quartiles; whiskers 1.5 IQR)."))
        body.append(self._grid(dataset, title, task, shown))
        return (title, "".join(body))

    def _statistics(self, dataset: str, title: str, stem: str, ds_scores: pd.DataFrame, shown: list[str],
                    metrics: list[str]) -> list[str]:
        out, names, hl = self.out, self.names, self.sel.highlight
        rank_rows, versus_rows, body, cds = [], [], [], []
        for metric in metrics:
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
                self.written += figures.cd_diagram(test, title, out / "figures" / f"cd_{stem}_{metric}", names, hl)
                cds.append(metric)
        if rank_rows:
            ranks = pd.DataFrame(rank_rows)
            self.written.append(_write(out / "stats" / f"{stem}_ranks.csv", ranks.to_csv(index=False)))
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
            self.written.append(_write(out / "stats" / f"{stem}_vs_{hl}.csv", vs.to_csv(index=False)))
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
            body.append(self.img(out / "figures" / f"cd_{stem}_{metric}.png",
                                 f"Critical-difference diagram, {metric}, {title}: mean ranks of the selected methods "
                                 "(1 = best); methods joined by a red bar are not significantly different "
                                 "(Nemenyi, alpha = 0.05)."))
        return body

    def _note_skipped(self, dataset: str, task: str | None, shown: list[str], standin: dict[str, str],
                      ds_methods: list[str]) -> None:
        recorded = self.data.skipped
        covered = set(shown) | set(standin.values())
        for m in list(self.sel.main) + list(self.sel.ablations):
            if m in covered or m in ds_methods:
                continue
            reason = ""
            if not recorded.empty:
                hit = recorded[(recorded["dataset"] == dataset) & (recorded["method"] == m)]
                reason = "; ".join(dict.fromkeys(hit["reason"].astype(str))) if not hit.empty else ""
            if not reason:
                reason = _derived_reason(m, task)
            self.skipped_rows.append({"dataset": dataset, "method": self.names.get(m) or display_name(m), "name": m,
                                      "reason": reason})
        if not recorded.empty:
            for row in recorded[recorded["dataset"] == dataset].drop_duplicates(["method", "reason"]).itertuples():
                if not any(r["dataset"] == dataset and r["name"] == row.method for r in self.skipped_rows):
                    self.skipped_rows.append({"dataset": dataset,
                                              "method": self.names.get(row.method) or display_name(row.method),
                                              "name": row.method, "reason": row.reason})

    def note_unrun(self, methods: list[str]) -> None:
        """Methods the run resolved that have no results on any dataset (e.g. weights not available then)."""
        recorded = self.data.skipped
        for m in methods:
            hit = recorded[recorded["method"] == m] if not recorded.empty else recorded
            if not hit.empty:
                for row in hit.drop_duplicates(["dataset", "reason"]).itertuples():
                    if not any(r["dataset"] == row.dataset and r["name"] == m for r in self.skipped_rows):
                        self.skipped_rows.append({"dataset": row.dataset, "method": self.names.get(m) or
                                                  display_name(m), "name": m, "reason": row.reason})
                continue
            self.skipped_rows.append({"dataset": "every dataset", "method": display_name(m), "name": m,
                                      "reason": "requested by the run but no results in the store: not run (e.g. "
                                                "weights not available at run time; the store of that run did not "
                                                "record the reason)"})

    def skipped_html(self) -> str:
        body = []
        if self.skipped_rows:
            frame = pd.DataFrame(self.skipped_rows)[["dataset", "method", "name", "reason"]]
            self.written.append(_write(self.out / "tables" / "skipped.csv", frame.to_csv(index=False)))
            body.append("<p>Every selected or ablation method without results on a dataset, and why (the store's "
                        "<code>skipped</code> table where the run recorded it, else the method's task "
                        "restriction):</p>" + htmlmod.table_html(frame))
        else:
            body.append("<p>No selected method was skipped on any dataset.</p>")
        failures = self.data.failures
        if not failures.empty:
            counts = failures.groupby(["dataset", "method", "stage", "error"]).size().reset_index(name="count")
            body.append("<h3>Failures</h3>" + htmlmod.table_html(counts))
        return "".join(body)

    # ------------------------------------------------------------------ figures of outputs
    def _output(self, dataset: str, pair, method: str) -> Path | None:
        """The stored fused image, or (the cache being gone) the method re-run on this pair for the figure."""
        outs = self.data.outputs
        row = outs[(outs["dataset"] == dataset) & (outs["pair"].astype(str) == str(pair.id))
                   & (outs["method"] == method)] if not outs.empty else outs
        if not row.empty and Path(str(row["path"].iloc[0])).is_file():
            return Path(str(row["path"].iloc[0]))
        if method not in set(self.data.scores.loc[self.data.scores["dataset"] == dataset, "method"]):
            return None
        from .cost import _version

        target = (Path(tempfile.gettempdir()) / "fusionbench-report-fused" / method / f"v{_version(method)}"
                  / f"{_stem(dataset)}_{pair.id}_{(pair.sha256 or '')[:16]}.png")
        if target.is_file():
            self.refused.add(method)
            return target
        try:
            from PIL import Image

            from fusionbench.api import fuse

            image = fuse(method, pair.a_path, pair.b_path)
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(target)
            self.refused.add(method)
            return target
        except Exception as exc:  # noqa: BLE001 - the figure leaves the method out, and says so in the log
            self.log(f"figure: {method} on {dataset}/{pair.id} not available ({type(exc).__name__}: {exc})")
            self.missing[method] = (str(exc).splitlines()[0].split(" (")[0] if str(exc) else type(exc).__name__)
            return None

    def _figure_pair(self, dataset: str):
        from fusionbench.data import create_dataset

        try:
            ds = create_dataset(dataset, data_dir=self.data_dir)
        except Exception as exc:  # noqa: BLE001 - sources not available here: tables still build
            self.log(f"figures for {dataset} skipped: {exc}")
            return None
        scored = self.data.scores[self.data.scores["dataset"] == dataset]
        counts = scored.groupby("pair")["method"].nunique()
        keys = {k for d, k in _paper20_keys(self.data_dir) if d == dataset}
        candidates = [p for p in ds.pairs if str(p.id) in counts.index]
        if not candidates:
            return None
        preferred = [p for p in candidates if str(p.id) in keys] or candidates
        best = max(counts[[str(p.id) for p in preferred]])
        return next(p for p in preferred if counts[str(p.id)] == best)

    def _grid(self, dataset: str, title: str, task: str | None, shown: list[str]) -> str:
        pair = self._figure_pair(dataset)
        if pair is None:
            return ""
        self.figure_pairs[dataset] = (title, pair, task or pair.task or "")
        paths = {}
        for m in shown[:MAX_GRID_METHODS]:
            path = self._output(dataset, pair, m)
            if path is not None:
                paths[m] = path
        if not paths:
            return ""
        stem = self.out / "figures" / f"grid_{_stem(dataset)}_{pair.id}"
        written, where = figures.qualitative_grid(pair.a_path, pair.b_path, paths, f"{title}, pair {pair.id}", stem,
                                                  task=task or pair.task or "", names=self.names, roi=self.roi)
        self.written += written
        left = [self.names.get(m, m) for m in shown[MAX_GRID_METHODS:]] + \
               [self.names.get(m, m) for m in shown[:MAX_GRID_METHODS] if m not in paths]
        caption = (f"{title}, pair {pair.id}: the two sources (a, b) and the fused images of {len(paths)} methods; "
                   f"the yellow box, enlarged in each panel's corner, is placed on {where}."
                   + (f" Not shown: {', '.join(left)}." if left else ""))
        return self.img(stem.with_suffix(".png"), caption)

    def mask_figure(self) -> tuple[str, str] | None:
        rows = [(title, pair.a_path, pair.b_path, task) for title, pair, task in self.figure_pairs.values()]
        if not rows:
            return None
        stem = self.out / "figures" / "masks"
        self.written += figures.mask_figure(rows, "Fig. 2 style: sources and their Otsu binary masks", stem)
        ids = "; ".join(f"{title}: pair {pair.id}" for title, pair, _ in self.figure_pairs.values())
        return ("Fig. 2 style: binary masks", self.img(stem.with_suffix(".png"),
                f"Each row: source A, its Otsu mask (threshold_otsu on the BT.601 luma), source B, its mask ({ids})."))

    # ------------------------------------------------------------------ ablation
    def ablation_section(self, variants: dict[str, dict[str, bool]], metrics: list[str],
                         pairs20: list[tuple[str, str]]) -> tuple[tuple[str, str], pd.DataFrame]:
        """Table 4 over training seeds and the per-component verdicts (:mod:`fusionbench.report.ablation`)."""
        data, out, names = self.data, self.out, self.names
        present = {(d, str(p)) for d, p in zip(data.scores["dataset"], data.scores["pair"])}
        pairs = [k for k in pairs20 if k in present] or None
        seeds = ablationmod.seed_groups(data.scores["method"].unique(), variants)
        table = ablation_table(data.scores, variants, metrics, pairs, names, seeds=seeds)
        over = ("the paper's 20 pairs (10 MRI-PET + 10 MRI-SPECT test pairs, split v1)" if pairs
                else "every scored pair (the paper's 20 pairs are not in this run)")
        n, k = table.attrs["n_pairs"], table.attrs["n_seeds"]
        multi = [m for m in variants if k[m] >= 2]
        spread = ("± is the sd over training seeds of the per-seed means (rows with Seeds ≥ 2)" if multi else "")
        if len(multi) < len(variants):
            spread += ("; " if spread else "") + "± is the sd over pairs where Seeds = 1 (one trained model: no seed spread)"
        caption = (f"Table 4 style ablation: per variant the mean over {over} of each trained model (seed), then the "
                   f"mean over its seeds; {spread}. Pairs: " + ", ".join(f"{names[m]} {n[m]}" for m in variants) + ".")
        md = ablationmod.ablation_display(table)
        self.written += [_write(out / "tables" / "table4_ablation.md", f"**{caption}**\n\n" + frame_to_markdown(md)),
                         _write(out / "tables" / "table4_ablation.tex", ablation_to_latex(table, caption)),
                         _write(out / "tables" / "table4_ablation.csv", table.to_csv(index=False))]
        df = data.scores[data.scores["method"].isin(variants) & data.scores["metric"].isin(metrics)]
        if pairs:
            keys = set(pairs)
            df = df[[(d, str(p)) in keys for d, p in zip(df["dataset"], df["pair"])]]
        ci = {(m, metric): group_bootstrap_ci(part["value"].to_numpy(), None)
              for (m, metric), part in df.groupby(["method", "metric"]) if k.get(m, 0) < 2}
        for m in multi:  # several seeds: the bar's interval is mean ± sd over seeds
            row = table.iloc[list(variants).index(m)]
            ci.update({(m, metric): (row[metric] - row[f"{metric} std"], row[metric] + row[f"{metric} std"])
                       for metric in metrics})
        self.written += figures.ablation_bars(table, metrics, out / "figures" / "ablation_bars", ci,
                                              title="Fig. 10 style: ablation means",
                                              points=table.attrs["seed_means"] if multi else None)
        means = table.set_index(pd.Index(list(variants)))[metrics]
        bars = ("± sd over training seeds with each seed's mean as a dot where a variant has several seeds, "
                "95 % bootstrap CIs over pairs where it has one" if multi else
                "95 % bootstrap CIs (over pairs; one training seed per variant, so no seed spread)")
        body = [htmlmod.table_html(md), f'<p class="foot">{htmlmod.html.escape(caption)}</p>',
                self.img(out / "figures" / "ablation_bars.png",
                         f"Fig. 10 style: mean of each metric per ablation variant over {over}, with {bars}, and the "
                         "value on each bar. Each panel's y axis spans the values and does not start at 0.")]
        verdicts = ablationmod.component_table(data.scores, metrics, pairs, seeds=seeds)
        if not verdicts.empty:
            n_seeds = sorted(set(verdicts["n_seeds"]))
            vcap = (f"Per component: full model (mopa) minus the model without it (mopa.no_<component>) over {over}, "
                    "each pair's value averaged over the seeds both have (n_seeds "
                    + "/".join(map(str, n_seeds)) + "); two-sided Wilcoxon signed-rank over pairs, Holm-corrected over "
                    f"the {len(verdicts)} component × metric tests; seed_diffs: each seed's mean difference; all_seeds: "
                    "whether every seed's own difference has the same sign (with 3 seeds a weak guard: a component "
                    "without effect passes it with probability 1/4). Verdict: helps / hurts (full model better / worse in the metric's direction) when "
                    "p_holm < 0.05 and, with two or more seeds, every seed agrees; otherwise no evidence"
                    + (". With one seed a verdict cannot separate the component from the training seed." if 1 in n_seeds
                       else "."))
            shown = ablationmod.component_display(verdicts)
            self.written += [_write(out / "tables" / "table4_components.md", f"**{vcap}**\n\n" + frame_to_markdown(shown)),
                             _write(out / "tables" / "table4_components.csv", verdicts.to_csv(index=False))]
            body += ["<h3>Does each component help?</h3>", htmlmod.table_html(shown),
                     f'<p class="foot">{htmlmod.html.escape(vcap)}</p>']
        rows = []
        for dataset, (title, pair, task) in self.figure_pairs.items():
            outputs = {m: p for m in variants if (p := self._output(dataset, pair, m)) is not None}
            if len(outputs) > 1:
                rows.append((f"{title}\npair {pair.id}", pair.a_path, pair.b_path, task, outputs))
        if rows:
            stem = out / "figures" / "ablation_outputs"
            self.written += figures.ablation_outputs(rows, "Fig. 11 style: outputs of the ablation variants", stem,
                                                     names)
            body.append(self.img(stem.with_suffix(".png"),
                                 "Fig. 11 style: per row one pair (dataset and pair id at the left): the two sources "
                                 "and each ablation variant's fused image."))
        return ("Table 4 style: ablation", "".join(body)), means

    # ------------------------------------------------------------------ Table 5
    def cost_section(self, pairs20, run_benchmarks: bool, asv_results, repo: Path, profile: bool, run: dict):
        main = list(self.sel.main)
        asv_costs = None
        if run_benchmarks:
            run_asv(main, repo, self.log)
            asv_results = asv_results or repo / ".asv" / "results"
        if asv_results and Path(asv_results).is_dir():
            raw = read_results(asv_results)
            asv_costs = method_costs(raw) if not raw.empty else None
            if asv_costs is not None and asv_costs.empty:
                asv_costs = None
        seconds, over = costmod.run_seconds(self.data.outputs, main, pairs20)
        cache = self.out / EXPORT_DIR / "profile.csv"
        source = self.data.db / "profile.csv" if self.data.db.is_dir() else None
        if source is not None and source.is_file() and not cache.is_file():
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(source.read_text())  # a rebuild elsewhere reuses the source report's profiles
        profiles = costmod.profile_methods(main, cache, self.log) if profile else \
            pd.DataFrame(columns=costmod.PROFILE_COLUMNS)
        table = costmod.cost_table(main, self.names, profiles, seconds, asv_costs)
        machine = run.get("machine", {}) if isinstance(run.get("machine"), dict) else {}
        workers = (run.get("config") or {}).get("workers") if isinstance(run.get("config"), dict) else None
        import torch

        if asv_costs is not None:
            time_label = (f"time: asv time_fuse / 20 pairs on {raw['cpu'].iloc[0] or platform.processor()} "
                          f"({raw['num_cpu'].iloc[0]} CPU threads)")
        else:
            time_label = (f"time: mean fusion wall time per pair measured by the run itself over {over} "
                          f"(machine {machine.get('processor') or machine.get('platform') or 'unknown'}, "
                          f"{machine.get('cpu_count', '?')} CPUs, {workers if workers is not None else '?'} workers; "
                          "other load on the machine not controlled)")
        caption = (f"Table 5 style: {time_label}; GFLOPs = 10^9 FLOPs with FLOPs = 2 x MAC counted by torch "
                   f"{torch.__version__} FlopCounterMode for one forward pass on both sources at 256x256; Params (M) = "
                   "parameters of the inference modules in millions; n/a: not a torch method. "
                   + costmod.throughput_caption(table))
        notes = [f"{self.names.get(r.method, r.method)}: {r.note}" for r in profiles.itertuples()
                 if isinstance(r.note, str) and r.note.startswith("not profiled")]
        shown = table.drop(columns=["method"])
        self.written += [
            _write(self.out / "tables" / "table5_cost.md", f"**{caption}**\n\n" + frame_to_markdown(shown)
                   + ("\n" + "; ".join(notes) + "\n" if notes else "")),
            _write(self.out / "tables" / "table5_cost.tex", frame_to_latex(
                shown, caption, label="tab:cost", formats={"Params (M)": _params_fmt, "GFLOPs": _gflops_fmt,
                                                           "GFLOP/s": _gflops_fmt,
                                                           "Fraction of conv peak": _gflops_fmt})),
            _write(self.out / "tables" / "table5_cost.csv", table.to_csv(index=False))]
        beside = paper.beside_table5(table)
        self.written += [_write(self.out / "tables" / "paper_vs_ours_table5.md", frame_to_markdown(beside)),
                         _write(self.out / "tables" / "paper_vs_ours_table5.csv", beside.to_csv(index=False))]
        body = (f'<p class="foot">{htmlmod.html.escape(caption)}</p>' + htmlmod.table_html(shown)
                + (f'<p class="foot">{htmlmod.html.escape("; ".join(notes))}</p>' if notes else "")
                + "<h3>The paper's Table 5 beside ours</h3>" + htmlmod.table_html(beside))
        return table, time_label, ("Table 5 style: cost", body)

    # ------------------------------------------------------------------ claims, paper
    def claims_section(self, claims: pd.DataFrame) -> tuple[str, str, str]:
        state = claimsmod.training_state()
        state += (" These are the weights committed now; the scores come from the weights the run used: a run "
                  "after a weights change re-fuses `mopa` (its method key includes the weights) and the report "
                  "then reads only those rows.")
        md = ("# The founding paper's claims against this run\n\n"
              f"Training state of the `mopa` weights used: {state}\n\n" + frame_to_markdown(claims))
        self.written += [_write(self.out / "tables" / "claims.md", md),
                         _write(self.out / "tables" / "claims.csv", claims.to_csv(index=False))]
        classes = {(i, "verdict"): ("better" if v == "holds" else "worse" if v == "does not hold" else "")
                   for i, v in enumerate(claims["verdict"])}
        counts = claims["verdict"].map(lambda v: v.split(":")[0]).value_counts().to_dict()
        summary = ", ".join(f"{k}: {v}" for k, v in counts.items())
        return ("Claims check", f"<p><b>Training state of the <code>mopa</code> weights used:</b> "
                f"{htmlmod.html.escape(state)}</p><p>{len(claims)} claims; {htmlmod.html.escape(summary)}.</p>"
                + htmlmod.table_html(claims, classes, table_id="claims-table"), "claims")

    def beside_section(self) -> tuple[str, str]:
        beside_html = [f'<p class="foot">{htmlmod.html.escape(paper.NOTE)}</p>']
        for key in paper.PAPER_TABLES:
            frame = paper.beside_table(self.data.scores, key)
            self.written += [_write(self.out / "tables" / f"paper_vs_ours_{key}.md",
                                    f"**{paper.PAPER_TABLES[key][0]} — paper beside our mean over "
                                    f"{paper.PAPER_TABLES[key][1]} ({self.split})**\n\n" + frame_to_markdown(frame)
                                    + f"\n<sub>{paper.NOTE}</sub>\n"),
                             _write(self.out / "tables" / f"paper_vs_ours_{key}.csv", frame.to_csv(index=False))]
            beside_html.append(f"<h3>{htmlmod.html.escape(paper.PAPER_TABLES[key][0])}</h3>"
                               + htmlmod.table_html(frame))
        return ("The paper beside us", "".join(beside_html))


def _params_fmt(value) -> str:
    return value if isinstance(value, str) else (f"{value:.3f}" if np.isfinite(value) else "n/a")


def _gflops_fmt(value) -> str:
    return value if isinstance(value, str) else (f"{value:.3f}" if np.isfinite(value) else "n/a")


def _derived_reason(method: str, task: str | None) -> str:
    from fusionbench.method_registry import METHODS

    try:
        tasks = tuple(METHODS.get(method).info.tasks or ())
    except KeyError:
        return "not a registered method here, and not in this run's results"
    if tasks and task not in tasks:
        return f"applies to {', '.join(tasks)} only (dataset task: {task or 'not declared'})"
    return "no results for this dataset in the store (not run, or every pair failed: see Failures)"


def _html_foot(*notes: str) -> str:
    """The notes (the empty ones left out) as one footnote paragraph, or nothing."""
    text = " ".join(n for n in notes if n)
    return f'<p class="foot">{htmlmod.html.escape(text)}</p>' if text else ""


def _html_metric_table(table) -> str:
    places = table.placements()
    rows, classes, hl = [], {}, set()
    for i, method in enumerate(table.methods):
        row = {"Method": table.name(method)}
        if method == table.highlight:
            hl.add(i)
        for metric in table.metrics:
            mean, std = table.mean.loc[method, metric], table.std.loc[method, metric]
            col = f"{metric} {'↑' if higher_is_better(metric) else '↓'}"
            row[col] = mean
            row[f"{metric} std"] = std
            place = places.get((method, metric), "")
            if place:
                classes[(i, col)] = place
        rows.append(row)
    return htmlmod.table_html(pd.DataFrame(rows), classes, highlight_rows=hl)


def _html_ci_table(table) -> str:
    rows, hl = [], set()
    for i, method in enumerate(table.methods):
        if method == table.highlight:
            hl.add(i)
        row = {"Method": table.name(method)}
        for metric in table.metrics:
            mean, lo, hi = table.mean.loc[method, metric], table.ci_low.loc[method, metric], \
                table.ci_high.loc[method, metric]
            d = 4 if abs(mean) < 10 else 2
            row[metric] = "–" if not np.isfinite(mean) else (
                f"{mean:.{d}f} [{lo:.{d}f}, {hi:.{d}f}]" if np.isfinite(lo) else f"{mean:.{d}f} [n/a]")
        rows.append(row)
    return htmlmod.table_html(pd.DataFrame(rows), highlight_rows=hl) + (
        '<p class="foot">[low, high]: 95 % percentile bootstrap CI of the mean (2,000 resamples); n/a: a single '
        "group, so no between-group spread can be estimated.</p>")


def _paper20_keys(data_dir) -> list[tuple[str, str]]:
    if not data_dir:
        return []
    try:
        from fusionbench.data import paper20_pairs

        return [(p.dataset, str(p.id)) for p in paper20_pairs(data_dir)]
    except Exception:  # noqa: BLE001 - data folder without the Harvard manifests' pairs
        return []


def _figure_notes(ctx: "_Context", repo: str | Path) -> str:
    """Where this report was built from, and which fused images its figures had to re-make or leave out."""
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True)
    parts = [f"This report was built by fusionbench {_version()}"
             + (f" at commit `{sha.stdout.strip()}`" if sha.returncode == 0 and sha.stdout.strip() else "") + "."]
    if ctx.refused:
        parts.append("The run's fused-image cache was not available, so the figures' fused images of "
                     + ", ".join(f"`{m}`" for m in sorted(ctx.refused)) + " were re-made for the figure pairs only "
                     "with the methods as registered now.")
    if ctx.missing:
        parts.append("Left out of the figures: " + "; ".join(f"`{m}` ({why})" for m, why in sorted(ctx.missing.items()))
                     + ".")
    return " ".join(parts)


def _version() -> str:
    try:
        from fusionbench import __version__

        return str(__version__)
    except ImportError:  # pragma: no cover
        return "?"


def _readme(run: dict, out: Path, written: list[Path], sel: Selection, runs: pd.DataFrame, time_label: str,
            notes: str = "") -> str:
    files = sorted({str(p.relative_to(out)) for p in written if p.is_relative_to(out)})
    cmd = run.get("command", "(unknown)")
    machine = run.get("machine", {})
    versions = run.get("versions", {})
    all_runs = runs[["command", "status"]].to_dict("records") if not runs.empty and "command" in runs else []
    history = ""
    if len(all_runs) > 1:
        history = ("Every invocation recorded in the results (a run resumes the previous ones; finished "
                   "(method, pair) units are skipped):\n\n" + "".join(
                       f"{i}. `{r['command']}` — {r['status']}\n" for i, r in enumerate(all_runs, 1)) + "\n")
    return ("# fusionbench report\n\n"
            f"Results made by:\n\n```bash\n{cmd}\n```\n\n" + history +
            f"Run {run.get('run_id')}, commit `{run.get('git_sha') or 'unknown'}`, machine "
            f"`{json.dumps(machine)}`, versions `{json.dumps(versions)}`.\n\n"
            f"Methods in the main tables: {sel.note}: {', '.join(f'`{m}`' for m in sel.main)}"
            + (f" (highlighted: `{sel.highlight}`)" if sel.highlight else "") + ".\n\n"
            f"Table 5 {time_label}.\n\n"
            + (notes + "\n\n" if notes else "") +
            "The results are in `results/` (current rows only, gzip CSV); `fusionbench report DIR` rebuilds this "
            "folder from them, and `fusionbench report DIR --out FULL --full` writes a full-resolution copy "
            "(200 dpi figures with PDF twins, embedded in a single-file page).\n\n"
            "Open `index.html` for everything on one page. Files:\n\n" + "".join(f"- `{f}`\n" for f in files))
