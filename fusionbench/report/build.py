"""``fusionbench report``: results (+ profiles, asv results) → tables, statistics, claims check, figures, HTML.

Output layout under ``DIR``::

    README.md                 what is here and the command that made the results
    index.html                everything on one page (figures linked from figures/; --full embeds them)
    results/                  the current rows as gzip CSV (what a committed report carries instead of
                              results.sqlite; ``fusionbench report DIR`` reads it back) and profile.csv
    tables/<dataset>.{md,tex,csv}         Tables 1–3 style: the selected methods (default: the paper's ten)
    tables/<dataset>_others.{md,tex,csv}  every other method of the run (variants, extra baselines, external)
    tables/table4_ablation.{md,tex,csv}   Table 4 style (when two or more ablation presets, mopa.*_only or
                                          mopa.no_*, have results; else a note naming the missing ones)
    tables/table5_cost.{md,tex,csv}       Table 5 style (profile + the run's seconds, or asv)
    tables/claims.{md,csv}                the paper's claims beside the measurement, with verdicts
    tables/paper_vs_ours_*.{md,csv}       the paper's published numbers beside ours
    stats/<dataset>_ranks.csv, <dataset>_vs_<highlight>.csv, <dataset>_ci.csv
    figures/*.png             grids, masks, box plots, CD diagrams, ablation (PDF twins with --full)

See ``docs/reports.md``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from fusionbench.checkout import code_root
from fusionbench.metric_registry import resolve_metrics

from . import ablation as ablationmod, claims as claimsmod, figures, html as htmlmod, paper
from .context import Log, ReportContext, paper20_keys, write_file
from .data import EXPORT_DIR, ReportData, dataset_task, display_name, method_family
from .readme import figure_notes, readme_text, reproducibility_note
from .sections.fused_figures import mask_figure
from .sections.paper import beside_section, claims_section
from .sections.per_dataset import dataset_section
from .sections.skipped import note_scoreless, note_unrun, skipped_html
from .sections.table4 import ablation_section
from .sections.table5 import cost_section
from .selection import (ABLATION_PRESETS, Selection, ablation_flags, is_ablation_preset, match, natural_key, select,
                        split_patterns, unique_display_names)


def default_out(source: Path) -> Path:
    """Where a report goes without ``--out``: beside the store (``OUT/results.sqlite`` → ``OUT``), or the report
    folder a ``results/`` export belongs to (``REPORT/results`` → ``REPORT``, rebuilt in place).  An export folder
    of another name has no report folder of its own: ``ValueError`` asking for ``--out`` (before, both exports
    wrote one level too high, over the files of the folder above)."""
    if source.is_file() or source.resolve().name == EXPORT_DIR:  # resolve: `fusionbench report .` inside it
        return source.resolve().parent if not source.is_file() else source.parent
    raise ValueError(f"{source}: an export folder not named {EXPORT_DIR!r} inside a report folder; "
                     "say where the report goes with --out")


def build_report(results: str | Path, out_dir: str | Path | None = None, *, metrics: str = "paper",
                 run_benchmarks: bool = False, asv_results: str | Path | None = None, repo: str | Path | None = None,
                 data_dir: str | Path | None = None, quiet: bool = False, log: Log | None = None,
                 methods: str | None = None, order: str | None = None, highlight: str | None = None,
                 exclude_variants: bool = False, full: bool = False, mean_only: bool = False,
                 roi: tuple[int, int, int] | None = None, profile: bool = True) -> Path:
    """Build the whole report from ``results`` (an OUT folder, results.sqlite or a report's ``results/``).

    ``methods``/``order``/``highlight``/``exclude_variants`` choose the main methods
    (:mod:`fusionbench.report.selection`; default: the paper's ten when ``mopa`` was run);
    ``full`` writes 200 dpi figures with PDF twins and embeds them in the page;
    ``mean_only`` writes LaTeX tables without the std columns; ``roi`` = (row, col, size) places every zoom
    inset; ``profile`` False skips parameter/GFLOP profiling (Table 5 keeps the times).  ``repo``: the checkout
    ``run_benchmarks`` runs asv in (default: the checkout this code runs from,
    :func:`fusionbench.checkout.code_root`, else the current folder; before session 34 always the current
    folder, so a run started elsewhere skipped asv, or benchmarked and named another checkout).

    Figure text is drawn as it is, never as matplotlib mathtext: a display name or dataset title with two ``$``
    (``"costs $5 and $10"``, or a crafted one) made matplotlib's parser stop the whole report (session 31).
    """
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False}):
        return _build_report(results, out_dir, metrics=metrics, run_benchmarks=run_benchmarks,
                             asv_results=asv_results, repo=repo, data_dir=data_dir, quiet=quiet, log=log,
                             methods=methods, order=order, highlight=highlight, exclude_variants=exclude_variants,
                             full=full, mean_only=mean_only, roi=roi, profile=profile)


def _build_report(results: str | Path, out_dir: str | Path | None, *, metrics: str, run_benchmarks: bool,
                  asv_results: str | Path | None, repo: str | Path | None, data_dir: str | Path | None, quiet: bool,
                  log: Log | None, methods: str | None, order: str | None, highlight: str | None,
                  exclude_variants: bool, full: bool, mean_only: bool, roi: tuple[int, int, int] | None,
                  profile: bool) -> Path:
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
    out = Path(out_dir) if out_dir is not None else default_out(data.db)
    out.mkdir(parents=True, exist_ok=True)
    run = data.last_run()
    config = run.get("config", {}) if isinstance(run.get("config"), dict) else {}
    data_dir = data_dir or config.get("data_dir")
    split = config.get("split") or "all"
    for line in data.within_split(split, data_dir):  # the tables are over the split their label names
        log(f"report: {line}")
    available_metrics = set(data.scores["metric"])
    try:
        requested = resolve_metrics(metrics)
    except KeyError as exc:  # e.g. a plugin's metric, its plugin not installed here: name what the runs used
        plugins = recorded_plugins(data)
        if plugins:
            exc.add_note(f"the results' runs used {', '.join(plugins)}: a metric of a plugin not installed here is "
                         "unknown (install it to report its scores)")
        raise
    wanted = [m for m in requested if m in available_metrics]
    absent = [m for m in requested if m not in available_metrics]
    if not wanted and not any(dataset_task(d) == "IR-VIS" for d in data.datasets()):
        raise ValueError(f"{data.db}: none of the metrics {', '.join(requested)} was scored (the results have "
                         f"{', '.join(sorted(available_metrics))}); score them with `fusionbench run ... --metrics "
                         f"{','.join(requested)}` (the fused images are reused)")
    if absent:
        log(f"report: {', '.join(absent)} not scored in {data.db}: left out of the tables")
    all_methods = data.methods()
    names = unique_display_names(all_methods, {m: display_name(m, data.methods_meta) for m in all_methods})
    resolved = config.get("resolved_methods") or []  # what the last run was asked for
    known = set(all_methods) | set(resolved) | (
        set(data.skipped["method"]) if not data.skipped.empty else set())
    unmatched = [p for p in split_patterns(methods) if not match(known, [p])]
    if unmatched:  # not scored, not requested by a run, not skipped: a typo
        raise ValueError(f"--methods {', '.join(map(repr, unmatched))}: no method of the results matches (they "
                         f"have: {', '.join(sorted(all_methods, key=natural_key))})")
    sel = select(all_methods, methods=methods, order=order, highlight=highlight, exclude_variants=exclude_variants)
    groups = ablationmod.seed_groups(all_methods, sel.ablations)  # a preset's models over training seeds
    variants = {m: ablation_flags(m) for m in sel.ablations if groups[m]}
    presets = [m for m in variants if is_ablation_preset(m)]  # the full model (mopa) is not an ablation preset
    table4 = len(presets) >= 2
    if not table4:  # the presets' results are other methods of the run
        sel = sel.without_table4(all_methods)
    ctx = ReportContext(data, out, names, sel, data_dir, split, log, full, mean_only, roi)
    pairs20 = paper20_keys(data_dir)

    sections: list[tuple[str, ...]] = [("Methods shown", "")]  # written once Table 4 is decided (below)
    for dataset in data.datasets():
        sections.append(dataset_section(ctx, dataset, wanted))
    note_scoreless(ctx)  # a dataset without scores has no section, but its recorded skips are listed
    note_unrun(ctx, [m for m in resolved if m not in set(all_methods)])
    skipped = skipped_html(ctx)
    masks = mask_figure(ctx)

    ablation_means = None
    table4_note = ""
    if table4:
        section, ablation_means = ablation_section(ctx, variants, [m for m in paper.PAPER_COLUMNS if m in wanted]
                                                       or wanted, pairs20)
        sections.append(section)
    elif "mopa" in all_methods or variants:
        table4_note = table4_left_out_note(presets)
        sections.append(("Table 4 style: ablation", f"<p>{htmlmod.html.escape(table4_note)}</p>"))
    sections[0] = ("Methods shown", _selection_html(sel, names, table4_written=table4, left_out=bool(variants)))

    checkout = Path(repo) if repo is not None else (code_root() or Path("."))
    costs, time_label, section = cost_section(ctx, pairs20, run_benchmarks, asv_results, checkout, profile, run,
                                              data_dir)
    timing = costs.attrs.get("timing") if costs is not None else None
    sections.append(section)

    if "mopa" in all_methods:
        claims = claimsmod.claims_table(data.scores, ablation_means, costs, time_label, table4_note=table4_note,
                                        timing=timing)
        sections.insert(1, claims_section(ctx, claims))
    else:
        sections.insert(1, ("Claims check", "<p>The founding paper's network (<code>mopa</code>) is not in this run: "
                            "no claim of the paper to check. Run <code>--methods all</code> (or include "
                            "<code>mopa</code>) for the claims check.</p>", "claims"))
    sections.append(beside_section(ctx))
    if masks:
        sections.append(masks)
    sections.append(("Skipped methods and failures", skipped))

    if data.db.resolve() != (out / EXPORT_DIR).resolve():
        # the tables' unique display names; a method of the store without scores gets one unique among them all
        extra = [m for m in data.methods_meta if m not in names]
        export_names = {**unique_display_names([*all_methods, *extra], {
            m: display_name(m, data.methods_meta) for m in [*all_methods, *extra]}), **names}
        data.export(out / EXPORT_DIR, display_names=export_names)
    ctx.written += [p for p in (out / EXPORT_DIR).glob("*") if p.is_file() and p not in ctx.written]
    provenance = {k: run.get(k) for k in ("command", "git_sha", "versions", "machine", "config") if k in run}
    ctx.written.append(write_file(out / "index.html", htmlmod.page("fusionbench report", provenance, sections)))
    families = {m: (data.methods_meta.get(m) or {}).get("family") or method_family(m) for m in all_methods}
    asv_note = (f"Table 5's times come from asv's result file{'s' if len(ctx.asv_exported) > 1 else ''} "
                + ", ".join(f"`{p}`" for p in ctx.asv_exported) + " (with its machine.json and the benchmarks' "
                "metadata), exported with the results: `fusionbench report DIR` reads them when no `--asv-results` is "
                "given.") if ctx.asv_exported else ""
    notes = " ".join(n for n in (table4_note, asv_note, figure_notes(ctx),
                                 reproducibility_note(all_methods, families, data.runs)) if n)
    write_file(out / "README.md", readme_text(run, out, ctx.written, sel, data.runs, time_label, notes))
    if not quiet:
        log(f"report: {len(ctx.written)} files in {out} (open {out / 'index.html'})")
    return out


def recorded_plugins(data: ReportData) -> list[str]:
    """``plugin NAME VERSION`` of each plugin distribution the results' runs recorded (``runs.versions``), sorted."""
    if data.runs.empty or "versions" not in data.runs:
        return []
    found = set()
    for text in data.runs["versions"].dropna():
        try:
            versions = json.loads(text) if isinstance(text, str) else dict(text)
        except (ValueError, TypeError):
            continue
        found |= {f"{k} {v}" for k, v in versions.items() if isinstance(k, str) and k.startswith("plugin ")}
    return sorted(found)


def table4_left_out_note(presets: list[str]) -> str:
    """Why Table 4 is not in the report: fewer than two ablation presets have results; each Table 4 preset
    without results is named with the reason (the method's ``unavailable_reason()`` here, else "not in this
    run")."""
    from fusionbench.method_registry import create_method

    missing: dict[str, list[str]] = {}
    for m in ABLATION_PRESETS:
        if m in presets:
            continue
        try:
            reason = create_method(m).unavailable_reason()
        except Exception:  # noqa: BLE001 - not registered here
            reason = "not a registered method here"
        reason = _first_clause(reason) if reason else "not in this run"
        short = m.split(".", 1)[1]
        reason = reason.replace(f"weights of mopa preset '{short}' ({short}.pth)", "their weights (each its own .pth)")
        missing.setdefault(reason.replace(f"'{short}'", "'<preset>'").replace(f"{short}.pth", "<preset>.pth"),
                           []).append(m)  # one reason for several presets
    have = (f"only {', '.join(presets)} has results in this run (its results are in the other-methods tables)"
            if presets else "none has results in this run")
    why = "; ".join(f"{', '.join(ms)}: {reason}" for reason, ms in missing.items())
    return (f"Table 4 and Figs. 10-11 left out: they need two or more of the ablation presets "
            f"(mopa.*_only, mopa.no_*) and {have} (mopa.v1 and the other presets of the network are "
            f"full networks, not ablations: they are in the other-methods tables). No results for " + why + ".")


def _first_clause(text: str) -> str:
    """``text`` up to its first ``;`` outside brackets (a reason without the how-to-fix tail)."""
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if ch == ";" and depth == 0:
            return text[:i].strip()
    return text.strip().rstrip(".")


def _selection_html(sel: Selection, names: dict[str, str], *, table4_written: bool, left_out: bool = False) -> str:
    def listing(ms: list[str]) -> str:
        escape = htmlmod.html.escape  # a method name too: a plugin's or a received store's may hold markup
        return ", ".join(f"{escape(names.get(m, m))} (<code>{escape(m)}</code>)" for m in ms) or "none"

    hl = f" Highlighted: {htmlmod.html.escape(names.get(sel.highlight, sel.highlight))}." if sel.highlight else ""
    ablations = (listing(sel.ablations) if table4_written or not left_out else
                 "none (Table 4 left out: see its section)")
    return (f"<p>Main tables: {htmlmod.html.escape(sel.note)}: {listing(sel.main)}.{hl}</p>"
            f"<p>Ablation presets (own table): {ablations}.</p>"
            f"<p>Other methods of the run (own table per dataset): {listing(sel.others)}.</p>"
            "<p>Choose with <code>fusionbench report DIR --methods PATTERNS --order LIST --highlight NAME "
            "--exclude-variants</code>.</p>")
