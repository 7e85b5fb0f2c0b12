"""Table 5 style: parameters, GFLOPs and time per method, and the paper's Table 5 beside it.

Times are the run's own fusion seconds, or asv's ``time_fuse`` where asv results are given
(:func:`run_asv` runs the suite first with ``--bench``).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from fusionbench.checkout import short_form
from fusionbench.external import RESULTS_PREFIX
from fusionbench.summary import markdown_text

from .. import cost as costmod, html as htmlmod, paper
from ..asv_results import (EXPORT_ASV_DIR, TABLE5_SUITE, export_result_files, method_costs, read_results,
                           used_result_files)
from ..context import Log, ReportContext, write_file
from ..data import EXPORT_DIR
from ...machine import cpu_words
from ..provenance import origin_words, output_origins, provenance_line
from ..tables import format_number, frame_to_latex, frame_to_markdown


def run_asv(methods: list[str], repo: Path, log: Log, data_dir: str | Path | None = None) -> str | None:
    """Run the asv Table 5 suite for ``methods`` in the existing environment (results saved with the commit).

    Returns the commit the results are saved under, or ``None`` when asv did not run or failed (then Table 5
    must not read ``.asv/results``: what is there is of other commits).  ``data_dir`` (the run's
    ``--data-dir``) is where the benchmarks look for the paper's 20 Harvard pairs
    (``$FUSIONBENCH_DATA_DIR``); without it they look beside the checkout, else use built-in pairs."""
    if not (repo / "asv.conf.json").is_file():
        log(f"benchmarks skipped: no asv.conf.json in {repo} (run from a checkout)")
        return None
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        log(f"benchmarks skipped: git did not run ({exc}); Table 5 times come from the run instead")
        return None
    if sha.returncode != 0:
        log("benchmarks skipped: not a git checkout")
        return None
    from fusionbench.checkout import code_dirty

    if code_dirty(repo):  # asv keys its results on a commit; the run record says -dirty, asv cannot
        log(f"asv: {repo} has uncommitted changes to fusionbench's code; its results are saved under HEAD "
            f"{sha.stdout.strip()[:7]} all the same")
    env = dict(os.environ, FUSIONBENCH_BENCH_METHODS=",".join(methods))
    if data_dir is not None:
        env["FUSIONBENCH_DATA_DIR"] = str(Path(data_dir).resolve())
    asv = [sys.executable, "-m", "asv"]
    subprocess.run(asv + ["machine", "--yes"], cwd=repo, env=env, capture_output=True)
    log(f"running asv {TABLE5_SUITE} for {len(methods)} methods (this takes a while; --no-bench skips it)")
    done = subprocess.run(asv + ["run", "--python=same", "--set-commit-hash", sha.stdout.strip(),
                                 "--bench", f"^{re.escape(TABLE5_SUITE)}\\.", "--show-stderr"], cwd=repo, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:  # asv writes its errors to stdout
        tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
        log(f"asv failed (exit {done.returncode}): {tail[0]}; Table 5 times come from the run instead")
        return None
    return sha.stdout.strip()


def run_workers(config: dict[str, Any], machine: dict[str, Any]) -> str:
    """How a run's tasks were spread, for the Table 5 caption: ``"2 workers (one per core)"`` for the default
    (``--workers`` not given; it said ``"? workers"``), ``"3 workers"``, ``"no worker process (inline)"``
    (``--workers 0``), or the Dask scheduler."""
    if config.get("scheduler"):
        return f"Dask scheduler {config['scheduler']}"
    workers = config.get("workers")
    if workers is None:
        cores = machine.get("cpu_count")
        return f"{cores} workers (one per core)" if cores else "one worker per core"
    return "no worker process (inline)" if workers == 0 else f"{workers} worker{'s' if workers != 1 else ''}"


def _remove_stale_asv_export(folder: Path, log: Log) -> None:
    """Remove the asv results an earlier build exported to ``folder`` (``results/asv``) when this build's Table 5
    does not take asv's times, and say so in one line: left there, a rebuild from the export would read them and
    time Table 5 with asv, not as this report does."""
    shutil.rmtree(folder)
    log(f"report: removed {folder}, the asv results an earlier build exported: this report's Table 5 takes the "
        "run's own times, and a rebuild from the export would read them instead (--bench or --asv-results DIR "
        "times Table 5 with asv)")


def cost_section(ctx: ReportContext, pairs20: list[tuple[str, str]], run_benchmarks: bool,
                 asv_results: str | Path | None, repo: Path, profile: bool,
                 run: dict, data_dir: str | Path | None = None) -> tuple[pd.DataFrame, str, tuple[str, str]]:
    """``(cost table, time label, (title, html))``: Table 5 of the main methods and the paper's Table 5 beside it."""
    main = list(ctx.sel.main)
    asv_costs = None
    commit = None
    if run_benchmarks:
        commit = run_asv(main, repo, ctx.log, data_dir)
        if commit is not None:
            asv_results = asv_results or repo / ".asv" / "results"
    exported = ctx.data.db / EXPORT_ASV_DIR if ctx.data.db.is_dir() else None
    if not asv_results and not run_benchmarks and exported is not None and exported.is_dir():
        asv_results = exported  # a rebuild from an export: the asv results its Table 5 used, exported with it
        ctx.log(f"report: Table 5 takes asv's times from {exported} (exported with the results; --asv-results "
                "chooses another folder)")
    raw = pd.DataFrame()
    if asv_results and Path(asv_results).is_dir():
        raw = read_results(asv_results)
        if commit is not None and not raw.empty:  # this run's results, not older commits' left in .asv
            raw = raw[raw["commit"] == commit]
        asv_costs = method_costs(raw) if not raw.empty else None
        if asv_costs is not None and asv_costs.empty:
            asv_costs = None
    seconds, over = costmod.run_seconds(ctx.data.outputs, main, pairs20)
    cache = ctx.out / EXPORT_DIR / "profile.csv"
    source = ctx.data.db / "profile.csv" if ctx.data.db.is_dir() else None
    if source is not None and source.is_file() and not cache.is_file():
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(source.read_text())  # a rebuild elsewhere reuses the source report's profiles
    external = {m for m, meta in ctx.data.methods_meta.items()
                if str(meta.get("source", "")).startswith(RESULTS_PREFIX)}
    profiles = costmod.profile_methods(main, cache, ctx.log, external=external) if profile else \
        pd.DataFrame(columns=costmod.PROFILE_COLUMNS)
    table = costmod.cost_table(main, ctx.names, profiles, seconds, asv_costs)
    timed, _ = costmod.timed_outputs(ctx.data.outputs, main, pairs20)
    keys = {(d, str(p)) for d, p in zip(timed["dataset"], timed["pair"])} if not timed.empty else set()
    origins = output_origins(ctx.data.outputs, ctx.data.runs, main, keys)
    stats = timed.groupby("method")["seconds"].agg(["mean", "median", "count"]) if not timed.empty else None
    # per method: mean and median seconds over the same pairs, and the runs that can have timed them
    timing = {m: {"mean": float(stats.loc[m, "mean"]), "median": float(stats.loc[m, "median"]),
                  "n": int(stats.loc[m, "count"]), "runs": tuple(origins.get(m, {}).get("runs", ())),
                  "origin": origin_words(origins.get(m))}
              for m in main if stats is not None and m in stats.index}
    timed_by_asv = table.attrs.get("time_from_asv") or []
    export_to = ctx.out / EXPORT_DIR / EXPORT_ASV_DIR
    asv_files = used_result_files(asv_results, raw, timed_by_asv) if timed_by_asv else []
    if asv_files:  # the export carries them, so that `fusionbench report DIR` rebuilds this Table 5
        ctx.written += export_result_files(asv_results, asv_files, export_to)
        ctx.asv_exported = [f"{EXPORT_DIR}/{EXPORT_ASV_DIR}/{p.parent.name}/{p.name}" for p in asv_files]
    elif export_to.is_dir():  # times not from asv now: an earlier build's asv files would mislead a rebuild
        _remove_stale_asv_export(export_to, ctx.log)
    table.attrs["timing"] = None if timed_by_asv else timing  # the claims row's mean/median of the run's times
    machine = run.get("machine", {}) if isinstance(run.get("machine"), dict) else {}
    workers = run_workers(run.get("config") if isinstance(run.get("config"), dict) else {}, machine)
    import torch

    if timed_by_asv:  # asv results timing none of the methods shown get the run's label (before: "asv time_fuse")
        fallback = table.attrs.get("time_from_run") or []
        time_label = (f"time: asv time_fuse / 20 pairs, {asv_pairs_words(asv_costs, timed_by_asv, ctx.names)}, "
                      f"{asv_where_words(asv_costs, timed_by_asv, ctx.names)}")
        if fallback:  # per method: asv had no time for these
            time_label += (f"; for {', '.join(ctx.names.get(m, m) for m in fallback)} (no asv time) the mean fusion "
                           f"wall time per pair measured by the run itself over {over} ({RUN_TIME_WARMUP})")
    else:
        time_label = (f"time: mean fusion wall time per pair measured by the run itself over {over} "
                      f"(machine {cpu_words(machine) if machine.get('processor') or machine.get('cpu_model') else machine.get('platform') or 'unknown'}, "
                      f"{machine.get('cpu_count', '?')} CPUs, {workers}; "
                      f"other load on the machine not controlled; {RUN_TIME_WARMUP})")
    exported_words = (f" Times from asv: its result file{'s' if len(ctx.asv_exported) > 1 else ''} "
                      f"{', '.join(ctx.asv_exported)} {'are' if len(ctx.asv_exported) > 1 else 'is'} exported with "
                      "the results, and `fusionbench report DIR` rebuilds these times from it." if ctx.asv_exported else "")
    caption = (f"Table 5 style: {time_label}; GFLOPs = 10^9 FLOPs with FLOPs = 2 x MAC counted by torch "
               f"{torch.__version__} FlopCounterMode for one forward pass on both sources at 256x256; Params (M) = "
               "parameters of the inference modules in millions; n/a: not a torch method. "
               + costmod.throughput_caption(table) + exported_words + " "
               + _times_provenance(ctx, timed_by_asv, asv_costs,
                                   provenance_line(_provenance_rows(timed, ctx.data.outputs), ctx.data.runs, main,
                                                   ctx.names)))
    notes = [f"{ctx.names.get(r.method, r.method)}: {r.note}" for r in profiles.itertuples()
             if isinstance(r.note, str) and r.note.startswith("not profiled")]
    shown = table.drop(columns=["method"])
    ctx.written += [
        write_file(ctx.out / "tables" / "table5_cost.md", f"**{markdown_text(caption)}**\n\n"
                   + frame_to_markdown(shown, column_digits=table5_digits(shown))
                   + ("\n" + markdown_text("; ".join(notes)) + "\n" if notes else "")),
        write_file(ctx.out / "tables" / "table5_cost.tex", frame_to_latex(
            shown, caption, label="tab:cost",
            formats={c: _places(d) for c, d in table5_digits(shown).items()})),
        write_file(ctx.out / "tables" / "table5_cost.csv", table.to_csv(index=False))]
    beside = paper.beside_table5(table)
    ctx.written += [write_file(ctx.out / "tables" / "paper_vs_ours_table5.md",
                                "**Table 5: the paper's time and GFLOPs beside ours**\n\n"
                                + frame_to_markdown(beside, column_digits=table5_digits(beside))
                                + f"\n<sub>Paper: {markdown_text(paper.TABLE5_NOTE)} Ours: {markdown_text(caption)} "
                                f"{markdown_text(paper.TABLE5_MISSING)}</sub>\n"),
                     write_file(ctx.out / "tables" / "paper_vs_ours_table5.csv", beside.to_csv(index=False))]
    body = (f'<p class="foot">{htmlmod.html.escape(caption)}</p>'
            + htmlmod.table_html(shown, column_digits=table5_digits(shown))
            + (f'<p class="foot">{htmlmod.html.escape("; ".join(notes))}</p>' if notes else "")
            + "<h3>The paper's Table 5 beside ours</h3>"
            + htmlmod.table_html(beside, column_digits=table5_digits(beside))
            + f'<p class="foot">{htmlmod.html.escape("Paper: " + paper.TABLE5_NOTE)}</p>')
    return table, time_label, ("Table 5 style: cost", body)


#: what ``track_paper20_pairs`` (:func:`fusionbench.report.asv_results.method_costs`) says of asv's 20 timed pairs
ASV_PAIRS_WORDS = {20.0: "the paper's 20 Harvard pairs",
                   0.0: "built-in pairs (asv found no folder holding the paper's 20 Harvard pairs)",
                   None: "pairs not recorded (no track_paper20_pairs result: asv results from before session 34, "
                         "or that benchmark failed)"}


def asv_pairs_words(asv_costs: pd.DataFrame, methods: list[str], names: dict[str, str]) -> str:
    """Which pairs asv's ``time_fuse`` fused for ``methods``, for Table 5's caption: one phrase of
    :data:`ASV_PAIRS_WORDS` when all agree, else each phrase with the methods it is about (before session 34 the
    caption said "20 pairs" whether they were the paper's or built-in ones)."""
    counts = asv_costs.set_index("method").get("paper20_pairs", pd.Series(dtype=float))
    phrases = {}
    for m in methods:
        value = float(counts.get(m, np.nan))
        phrases[m] = ASV_PAIRS_WORDS[value if value in ASV_PAIRS_WORDS else None]
    return _per_method_words(phrases, names, ASV_PAIRS_WORDS[None])


def asv_where_words(asv_costs: pd.DataFrame, methods: list[str], names: dict[str, str]) -> str:
    """Where asv timed ``methods``, for Table 5's caption: ``at commit 0945e6d on AMD EPYC (2 CPU threads)``, or,
    where the newest results of the methods come from several commits or machines of one results folder, each
    phrase with the methods it is about (before session 35 the caption named the CPU of the folder's first result
    alone, and no commit)."""
    rows = asv_costs.set_index("method")
    phrases = {}
    for m in methods:
        row = rows.loc[m] if m in rows.index else {}
        commit = short_form(str(row.get("commit", "") or ""))
        cpu = str(row.get("cpu", "") or "") or f"asv machine {row.get('machine') or 'unknown'}"
        threads = str(row.get("num_cpu", "") or "?")
        phrases[m] = (f"at commit {commit} " if commit else "at an unrecorded commit ") + f"on {cpu} ({threads} CPU threads)"
    return _per_method_words(phrases, names, "at an unrecorded commit on an unrecorded machine")


def _per_method_words(phrases: dict[str, str], names: dict[str, str], default: str) -> str:
    """One caption phrase where every method's is the same (``default`` for no method), else each phrase with the
    display names of the methods it is about: ``"A for X, Y; B for Z"``."""
    groups: dict[str, list[str]] = {}
    for m, phrase in phrases.items():
        groups.setdefault(phrase, []).append(names.get(m, m))
    if len(groups) <= 1:
        return next(iter(groups), default)
    return "; ".join(f"{phrase} for {', '.join(shown)}" for phrase, shown in groups.items())


def _times_provenance(ctx: ReportContext, timed_by_asv: list[str], asv_costs: pd.DataFrame | None,
                      line: str) -> str:
    """Table 5's provenance line: the run's (``line``: the runs, commits and machine of the fused outputs), and,
    where the times are asv's, first where they come from: ``Provenance: times of LEGFF, ... from asv (at commit
    0945e6d on AMD EPYC (2 CPU threads); result file results/asv/...), not from the run's fusion; fused outputs
    ...`` (before session 37 the line named only the run beside asv's times of another commit)."""
    if not timed_by_asv or asv_costs is None:
        return line
    files = f"; result file {', '.join(ctx.asv_exported)}" if ctx.asv_exported else ""
    who = ", ".join(ctx.names.get(m, m) for m in timed_by_asv)
    rest = line.removeprefix("Provenance: ")
    return (f"Provenance: times of {who} from asv ({asv_where_words(asv_costs, timed_by_asv, ctx.names)}{files}), "
            f"not from the run's fusion" + (f"; {rest}" if rest else "."))


def _provenance_rows(timed: pd.DataFrame, outputs: pd.DataFrame) -> pd.DataFrame:
    """The output rows Table 5's provenance line is about: the timed ones, and every output of a method that has
    none timed (a scored folder of fused images has no fusion time; before, it read "outputs not recorded")."""
    if timed.empty or outputs.empty:
        return timed if not timed.empty else outputs
    untimed = outputs[~outputs["method"].isin(set(timed["method"]))]
    return pd.concat([timed, untimed], ignore_index=True)


#: What a run's own fusion times include that asv's (timed after a warm-up call) do not.
RUN_TIME_WARMUP = ("no warm-up: the first call of a method in each worker process also pays its one-off costs "
                   "(lazy weight loading, first-call kernel set-up), and the mean includes it")


#: Decimals of Table 5's columns, the same in Markdown, LaTeX and HTML (before session 33 the LaTeX printed 3
#: where the others printed 4, and GFLOP/s had 4 decimals, 7 significant digits of a throughput that moves by
#: tens of percent between runs): times and exact counts to 4, throughput to 1, its fraction of the peak to 2.
#: A column of the paper-beside-ours table takes the digits of the column its name starts with.
TABLE5_DIGITS = {"Time/s": 4, "GFLOPs": 4, "GFLOP/s": 1, "Fraction of conv peak": 2, "Params (M)": 4}


def table5_digits(frame: pd.DataFrame) -> dict[str, int]:
    """:data:`TABLE5_DIGITS` for the columns of ``frame`` (Table 5, or the paper's Table 5 beside ours)."""
    return {c: next(d for prefix, d in TABLE5_DIGITS.items() if str(c).startswith(prefix))
            for c in frame.columns if any(str(c).startswith(prefix) for prefix in TABLE5_DIGITS)}


def _places(digits: int) -> Callable[[object], str]:
    """A LaTeX cell formatter: ``digits`` decimals (:func:`format_number`), ``n/a`` where the value is not
    finite; text kept as it is."""
    def cell(value: object) -> str:
        if isinstance(value, str):
            return value
        return format_number(float(value), digits) if np.isfinite(value) else "n/a"
    return cell
