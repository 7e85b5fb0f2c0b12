"""``fusionbench report``: results store (+ asv results) → tables, statistics, figures, HTML.

Output layout under ``DIR``::

    README.md                 what is here and the command that made the results
    index.html                everything on one self-contained page
    tables/<dataset>.{md,tex,csv}       Tables 1–3 style (methods × metrics, mean ± std)
    tables/table4_ablation.{md,tex,csv} Table 4 style (if mopa variants were run)
    tables/table5_cost.{md,tex,csv}     Table 5 style (asv: time per pair, GFLOPs, params)
    tables/paper_vs_ours_*.{md,csv}     the paper's published numbers beside ours
    stats/<dataset>_ranks.csv, stats/<dataset>_wilcoxon_holm.csv, stats/<dataset>_ci.csv
    figures/*.png|pdf         qualitative grids, masks, box plots, CD diagrams, ablation
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from fusionbench.metric_registry import resolve_metrics

from . import figures, html as htmlmod, paper
from .asv_results import method_costs, read_results
from .data import DATASET_TITLES, ReportData, display_name, higher_is_better, method_order
from .stats import rank_test
from .tables import (ablation_table, build_table, convention_footnote, frame_to_latex, frame_to_markdown,
                     to_csv, to_latex, to_markdown)

Log = Callable[[str], None]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _ablation_variants(methods: list[str]) -> dict[str, dict[str, bool]]:
    """Methods whose parameters carry ``use_<component>`` switches (the paper network's presets)."""
    from fusionbench.method_registry import METHODS

    out = {}
    for m in methods:
        try:
            params = METHODS.get(m).info.params
        except KeyError:
            continue
        flags = {k[4:]: bool(v) for k, v in params.items() if k.startswith("use_") and isinstance(v, bool)}
        if flags:
            out[m] = flags
    order = ["mopa.mask_only", "mopa.attention_only", "mopa.contrast_only", "mopa.decouple_only", "mopa"]
    return dict(sorted(out.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0])))


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


def table5(costs: pd.DataFrame, methods: list[str], asv_meta: dict) -> tuple[pd.DataFrame, str]:
    rows = []
    by = costs.set_index("method") if not costs.empty else pd.DataFrame()
    for m in method_order(methods):
        have = m in by.index
        rows.append({
            "Method": display_name(m),
            "Time/s per pair": float(by.loc[m, "seconds_per_pair"]) if have else np.nan,
            "GFLOPs": by.loc[m, "gflops"] if have and np.isfinite(by.loc[m, "gflops"]) else "n/a",
            "Params": (f"{int(by.loc[m, 'params']):,}" if have and np.isfinite(by.loc[m, "params"]) else "n/a"),
        })
    import torch  # the version is part of the caption

    caption = (f"Table 5 style: mean wall time per pair over 20 pairs (asv time_fuse / 20, number = repeat = 1, "
               f"includes the colour protocol and quantisation; weights loaded in setup), GFLOPs = 10^9 FLOPs with "
               f"FLOPs = 2×MAC counted by torch {torch.__version__} FlopCounterMode on both sources at 256×256, "
               f"parameters of the inference modules; non-torch methods: n/a. Machine: "
               f"{asv_meta.get('cpu') or platform.processor() or platform.machine()}, "
               f"{asv_meta.get('num_cpu') or os.cpu_count()} CPU threads, torch threads = "
               f"{torch.get_num_threads()}. Pairs: {asv_meta.get('pairs', 'paper20 (10 MRI-PET + 10 MRI-SPECT test pairs, split v1)')}.")
    return pd.DataFrame(rows), caption


def build_report(results: str | Path, out_dir: str | Path | None = None, *, metrics: str = "paper",
                 run_benchmarks: bool = False, asv_results: str | Path | None = None, repo: str | Path = ".",
                 data_dir: str | Path | None = None, quiet: bool = False, log: Log | None = None) -> Path:
    """Build the whole report from ``results`` (an OUT folder or results.sqlite) into ``out_dir``."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    data = ReportData.load(results)
    out = Path(out_dir) if out_dir is not None else data.db.parent
    run = data.last_run()
    config = run.get("config", {}) if isinstance(run.get("config"), dict) else {}
    data_dir = data_dir or config.get("data_dir")
    split = config.get("split") or "all"
    wanted = [m for m in resolve_metrics(metrics) if m in set(data.scores["metric"])]
    sections: list[tuple[str, str]] = []
    written: list[Path] = []
    all_methods = data.methods()

    # ---- Tables 1-3 style, statistics, box plots, CD diagrams, qualitative grids
    for dataset in data.datasets():
        title = DATASET_TITLES.get(dataset, dataset)
        methods = data.methods(dataset)
        footnote = convention_footnote(wanted, split)
        table = build_table(data.scores, dataset, methods, wanted, title=f"{title}: {len(methods)} methods",
                            footnote=footnote)
        stem = out / "tables" / dataset.replace(":", "_").replace("/", "_")
        written += [_write(stem.with_suffix(".md"), to_markdown(table)),
                    _write(stem.with_suffix(".tex"), to_latex(table, label=f"tab:{dataset}")),
                    _write(stem.with_suffix(".csv"), to_csv(table))]
        n_pairs = int(data.scores[data.scores["dataset"] == dataset]["pair"].nunique())
        body = [f"<p>{n_pairs} pairs.</p>", _html_metric_table(table), f'<p class="foot">{footnote}</p>']

        rank_rows, pair_rows = [], []
        ds_scores = data.scores[data.scores["dataset"] == dataset]
        for metric in wanted:
            test = rank_test(ds_scores[ds_scores["method"].isin(methods)], metric, higher_is_better(metric))
            if test is None:
                continue
            for method, rank in test.ranks.items():
                rank_rows.append({"metric": metric, "method": method, "mean_rank": rank, "n_pairs": test.n_pairs,
                                  "friedman_chi2": test.friedman_stat, "friedman_p": test.friedman_p,
                                  "nemenyi_cd": test.cd})
            if not test.wilcoxon_holm.empty:
                pair_rows.append(test.wilcoxon_holm.assign(metric=metric))
            if len(test.methods) >= 3:
                written += figures.cd_diagram(test, title, out / "figures" / f"cd_{stem.name}_{metric}")
        if rank_rows:
            ranks = pd.DataFrame(rank_rows)
            written.append(_write(out / "stats" / f"{stem.name}_ranks.csv", ranks.to_csv(index=False)))
            body.append("<h3>Mean ranks (Friedman test, Nemenyi CD at α = 0.05)</h3>")
            body.append(htmlmod.table_html(ranks.assign(method=ranks["method"].map(display_name))))
        if pair_rows:
            pairs_frame = pd.concat(pair_rows, ignore_index=True)
            written.append(_write(out / "stats" / f"{stem.name}_wilcoxon_holm.csv", pairs_frame.to_csv(index=False)))
        written.append(_write(out / "stats" / f"{stem.name}_ci.csv", to_csv(table)))
        written += figures.box_plots(data.scores, dataset, wanted, methods, out / "figures" / f"box_{stem.name}")
        body.append(htmlmod.image_html(out / "figures" / f"box_{stem.name}.png", f"Per-pair scores, {title}"))
        for metric in wanted[:3]:
            png = out / "figures" / f"cd_{stem.name}_{metric}.png"
            if png.is_file():
                body.append(htmlmod.image_html(png, f"Critical-difference diagram, {metric}, {title}"))
        grid = _qualitative(data, dataset, methods, data_dir, out, title, log)
        for png in (p for p in grid if p.suffix == ".png"):
            body.append(htmlmod.image_html(png, png.stem.replace("_", " ")))
        written += grid
        sections.append((title, "".join(body)))

    # ---- Table 4 style ablation over the paper's 20 pairs
    variants = _ablation_variants(all_methods)
    if variants:
        pairs20 = _paper20_keys(data_dir)
        ablation = ablation_table(data.scores, variants, wanted, pairs20 or None)
        written += [_write(out / "tables" / "table4_ablation.md",
                           "**Table 4 style: ablation** — metric means over "
                           + ("the paper's 20 pairs (10 MRI-PET + 10 MRI-SPECT test pairs, split v1)" if pairs20
                              else "every scored pair (the 20-pair set was not available)") + "\n\n"
                           + frame_to_markdown(ablation)),
                    _write(out / "tables" / "table4_ablation.tex", frame_to_latex(ablation, "Ablation (Table 4 style)")),
                    _write(out / "tables" / "table4_ablation.csv", ablation.to_csv(index=False))]
        written += figures.ablation_bars(ablation, wanted, out / "figures" / "ablation_bars")
        sections.append(("Table 4 style: ablation", htmlmod.table_html(ablation)
                         + htmlmod.image_html(out / "figures" / "ablation_bars.png", "Ablation means (Fig. 10 style)")
                         + (f"<p>Pairs: {', '.join(f'{d}/{p}' for d, p in pairs20)}</p>" if pairs20 else "")))

    # ---- Table 5 style cost, from asv results
    repo = Path(repo)
    if run_benchmarks:
        run_asv(all_methods, repo, log)
    asv_dir = Path(asv_results) if asv_results else repo / ".asv" / "results"
    costs = method_costs(read_results(asv_dir)) if asv_dir.is_dir() else pd.DataFrame()
    if not costs.empty:
        asv_copy = out / "asv"
        if asv_copy.resolve() != asv_dir.resolve():
            shutil.copytree(asv_dir, asv_copy, dirs_exist_ok=True)
        raw = read_results(asv_dir)
        meta = {"cpu": raw["cpu"].iloc[0] if not raw.empty else "", "num_cpu": raw["num_cpu"].iloc[0] if not raw.empty else ""}
        t5, caption = table5(costs, all_methods, meta)
        written += [_write(out / "tables" / "table5_cost.md", f"**{caption}**\n\n" + frame_to_markdown(t5)),
                    _write(out / "tables" / "table5_cost.tex", frame_to_latex(t5, caption)),
                    _write(out / "tables" / "table5_cost.csv", t5.to_csv(index=False))]
        sections.append(("Table 5 style: cost", f'<p class="foot">{caption}</p>' + htmlmod.table_html(t5)))
        beside5 = paper.beside_table5(costs)
        written += [_write(out / "tables" / "paper_vs_ours_table5.md", frame_to_markdown(beside5)),
                    _write(out / "tables" / "paper_vs_ours_table5.csv", beside5.to_csv(index=False))]
    else:
        log(f"no asv results in {asv_dir}: Table 5 omitted (run `fusionbench report --bench` in a checkout)")

    # ---- the paper beside us
    beside_html = [f'<p class="foot">{paper.NOTE}</p>']
    for key in paper.PAPER_TABLES:
        frame = paper.beside_table(data.scores, key)
        written += [_write(out / "tables" / f"paper_vs_ours_{key}.md",
                           f"**{paper.PAPER_TABLES[key][0]} — paper beside our mean over "
                           f"{paper.PAPER_TABLES[key][1]} ({split})**\n\n" + frame_to_markdown(frame)
                           + f"\n<sub>{paper.NOTE}</sub>\n"),
                    _write(out / "tables" / f"paper_vs_ours_{key}.csv", frame.to_csv(index=False))]
        beside_html.append(f"<h3>{paper.PAPER_TABLES[key][0]}</h3>" + htmlmod.table_html(frame))
    sections.append(("The paper beside us", "".join(beside_html)))

    if not data.failures.empty:
        counts = data.failures.groupby(["method", "stage", "error"]).size().reset_index(name="count")
        sections.append(("Failures", htmlmod.table_html(counts)))

    provenance = {k: run.get(k) for k in ("command", "git_sha", "versions", "machine", "config") if k in run}
    written.append(_write(out / "index.html", htmlmod.page("fusionbench report", provenance, sections)))
    _write(out / "README.md", _readme(run, out, written, table5_from=asv_dir if not costs.empty else None,
                                      all_runs=data.runs[["command", "status"]].to_dict("records")))
    if not quiet:
        log(f"report: {len(written)} files in {out} (open {out / 'index.html'})")
    return out


def _html_metric_table(table) -> str:
    places = table.placements()
    rows, classes = [], {}
    for i, method in enumerate(table.methods):
        row = {"Method": display_name(method)}
        for metric in table.metrics:
            mean, std = table.mean.loc[method, metric], table.std.loc[method, metric]
            col = f"{metric} {'↑' if higher_is_better(metric) else '↓'}"
            row[col] = mean
            row[f"{metric} std"] = std
            place = places.get((method, metric), "")
            if place:
                classes[(i, col)] = place
        rows.append(row)
    return htmlmod.table_html(pd.DataFrame(rows), classes)


def _paper20_keys(data_dir) -> list[tuple[str, str]]:
    if not data_dir:
        return []
    try:
        from fusionbench.data import paper20_pairs

        return [(p.dataset, p.id) for p in paper20_pairs(data_dir)]
    except (FileNotFoundError, KeyError):
        return []


def _qualitative(data: ReportData, dataset: str, methods: list[str], data_dir, out: Path, title: str,
                 log: Log) -> list[Path]:
    """Fig. 7–9 style grid and Fig. 2 style masks for one representative pair of ``dataset``."""
    from fusionbench.data import create_dataset

    try:
        ds = create_dataset(dataset, data_dir=data_dir)
    except Exception as exc:  # sources not available here: tables still build
        log(f"figures for {dataset} skipped: {exc}")
        return []
    outs = data.outputs[data.outputs["dataset"] == dataset]
    keys = [k for _, k in _paper20_keys(data_dir) if (outs["pair"] == k).any()] if data_dir else []
    candidates = keys or sorted(outs["pair"].unique())
    if not candidates:
        return []
    pair_id = max(candidates, key=lambda k: outs[outs["pair"] == k]["method"].nunique())
    pair = next((p for p in ds.pairs if p.id == pair_id), None)
    if pair is None:
        return []
    paths = {}
    for m in methods:
        row = outs[(outs["pair"] == pair_id) & (outs["method"] == m)]
        if not row.empty and Path(row["path"].iloc[0]).is_file():
            paths[m] = Path(row["path"].iloc[0])
    stem = dataset.replace(":", "_").replace("/", "_")
    written = figures.qualitative_grid(pair.a_path, pair.b_path, paths, f"{title}, pair {pair_id}",
                                       out / "figures" / f"grid_{stem}_{pair_id}", task=pair.task)
    written += figures.mask_figure(pair.a_path, pair.b_path, f"Otsu masks, {title}, pair {pair_id}",
                                   out / "figures" / f"masks_{stem}_{pair_id}")
    ablation = {m: p for m, p in paths.items() if m.startswith("mopa")}
    if len(ablation) > 1:
        written += figures.qualitative_grid(pair.a_path, pair.b_path, ablation, f"Ablation outputs, {title}",
                                            out / "figures" / f"ablation_outputs_{stem}_{pair_id}", task=pair.task)
    return written


def _readme(run: dict, out: Path, written: list[Path], table5_from: Path | None = None,
            all_runs: list[dict] | None = None) -> str:
    all_runs = all_runs or []
    files = sorted({str(p.relative_to(out)) for p in written if p.is_relative_to(out)})
    cmd = run.get("command", "(unknown)")
    machine = run.get("machine", {})
    versions = run.get("versions", {})
    bench = ("Table 5 (time, GFLOPs, parameters) comes from the asv results in `asv/` (copied from "
             f"`{table5_from}`), made by `asv run --python=same --set-commit-hash $(git rev-parse HEAD) "
             "--bench benchmark_methods` (or `fusionbench report --bench`).\n\n") if table5_from else ""
    history = ""
    if len(all_runs) > 1:
        history = ("Every invocation recorded in `results.sqlite` (a run resumes the previous ones; finished "
                   "(method, pair) units are skipped):\n\n" + "".join(
                       f"{i}. `{r['command']}` — {r['status']}\n" for i, r in enumerate(all_runs, 1)) + "\n")
    return ("# fusionbench report\n\n"
            f"Results made by:\n\n```bash\n{cmd}\n```\n\n" + history + bench +
            f"Run {run.get('run_id')}, commit `{run.get('git_sha') or 'unknown'}`, machine "
            f"`{json.dumps(machine)}`, versions `{json.dumps(versions)}`.\n\n"
            "Open `index.html` for everything on one page. Files:\n\n" + "".join(f"- `{f}`\n" for f in files))
