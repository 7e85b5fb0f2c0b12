"""Reading asv result files into a tidy table, without depending on asv internals.

Layout (asv ``api_version`` 2, see ``../shared/notes/anchors.md`` C.2):
``results_dir/<machine>/<commit[:8]>-<env>.json`` with ``result_columns`` and
``results[benchmark] = row``; ``results_dir/benchmarks.json`` holds each
benchmark's ``params``, ``unit`` and ``version``.  A parametrised result is a
flat list in ``itertools.product(*params)`` order; ``null`` = failed, NaN =
skipped.  Rows whose version no longer matches ``benchmarks.json`` are dropped,
as asv itself does.
"""
from __future__ import annotations

import ast
import itertools
import json
import math
from pathlib import Path

import pandas as pd


def _unrepr(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def read_results(results_dir: str | Path) -> pd.DataFrame:
    """All asv results under ``results_dir`` as rows: machine, commit, date (asv's: the commit's date),
    started_at (when the benchmark ran, ms since the epoch), env, benchmark, params, value, unit."""
    results_dir = Path(results_dir)
    meta_path = results_dir / "benchmarks.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    rows = []
    for path in sorted(results_dir.glob("*/*.json")):
        if path.name == "machine.json":
            continue
        data = json.loads(path.read_text())
        columns = data.get("result_columns", [])
        machine_params = data.get("params", {})
        for bench, row in data.get("results", {}).items():
            record = dict(zip(columns, row))
            info = meta.get(bench, {})
            if info and record.get("version") is not None and info.get("version") != record.get("version"):
                continue
            params = record.get("params") or []
            values = record.get("result")
            if not isinstance(values, list):
                values = [values]
            combos = list(itertools.product(*params)) if params else [()]
            names = info.get("param_names", [f"param{i}" for i in range(len(params))])
            for combo, value in zip(combos, values):
                rows.append({
                    "machine": path.parent.name,
                    "commit": data.get("commit_hash"),
                    "date": data.get("date"),
                    "started_at": record.get("started_at"),
                    "env": data.get("env_name"),
                    "benchmark": bench,
                    "name": bench.rsplit(".", 1)[-1],
                    **{n: _unrepr(v) for n, v in zip(names, combo)},
                    "value": math.nan if value is None else float(value),
                    "failed": value is None,
                    "unit": info.get("unit", ""),
                    "cpu": machine_params.get("cpu", ""),
                    "num_cpu": machine_params.get("num_cpu", ""),
                    "python": data.get("python", machine_params.get("python", "")),
                })
    return pd.DataFrame(rows)


def latest_per_benchmark(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep the newest result of each (benchmark, params) combination: the latest commit date (asv's ``date``),
    then the latest ``started_at`` (two machines or environments on one commit), then the later row; a missing
    date or start counts as the oldest."""
    if frame.empty:
        return frame
    keys = [c for c in frame.columns if c not in {"machine", "commit", "date", "started_at", "env", "value",
                                                   "failed", "unit", "cpu", "num_cpu", "python"}]
    order = [c for c in ("date", "started_at") if c in frame.columns]
    return frame.sort_values(order, kind="stable", na_position="first").groupby(keys, dropna=False).tail(1)


#: where an asv time was measured: the columns of :func:`method_costs` that say so
TIMED_AT = ("commit", "machine", "cpu", "num_cpu")

#: the asv suite whose benchmarks Table 5 reads (``benchmarks/benchmark_methods.py``)
TABLE5_SUITE = "benchmark_methods.MethodSuite"


#: the keys of one asv result file (``<machine>/<commit[:8]>-<env>.json``).  asv keeps one file per commit, machine
#: and environment: a later ``asv run`` of some benchmarks on the same three updates theirs in the file and keeps
#: the others' older results there
RESULT_FILE = ("machine", "commit", "env")

#: Table 5's benchmarks that describe a measurement (the pairs ``time_fuse`` timed; the rates, measured beside it):
#: a method takes them from its ``time_fuse``'s result file only.  The counts (``track_gflops``, ``track_params``)
#: depend on the code alone, and are taken from their own newest results.
MEASURED_WITH_THE_TIME = ("time_fuse", "track_gflops_per_s", "track_fraction_of_conv_peak", "track_paper20_pairs")


def _file_keys(frame: pd.DataFrame) -> pd.Series:
    """Each row's :data:`RESULT_FILE` as one text key (a missing column or value reads as empty text)."""
    keys = frame.reindex(columns=list(RESULT_FILE)).astype(object).where(lambda f: f.notna(), "").astype(str)
    return pd.Series(["\x1f".join(row) for row in keys.itertuples(index=False)], index=frame.index, dtype=object)


def _with_the_time(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (one row per benchmark and method, the newest) with each method's :data:`MEASURED_WITH_THE_TIME`
    rows taken from the result file of its newest ``time_fuse`` (absent there: dropped, so NaN in the table)."""
    newest = latest_per_benchmark(frame)
    times = newest[newest["name"] == "time_fuse"].drop_duplicates("method", keep="last")
    if times.empty:
        return newest
    file_of_time = dict(zip(times["method"], _file_keys(times)))
    timed = list(file_of_time)
    coupled_rows = frame["name"].isin(MEASURED_WITH_THE_TIME) & frame["method"].isin(timed)
    measured = frame[coupled_rows]
    same_file = _file_keys(measured).to_numpy() == measured["method"].map(file_of_time).to_numpy()
    coupled = latest_per_benchmark(measured[same_file])
    rest = newest[~(newest["name"].isin(MEASURED_WITH_THE_TIME) & newest["method"].isin(timed))]
    return pd.concat([rest, coupled], ignore_index=True)


def method_costs(frame: pd.DataFrame, n_pairs: int = 20) -> pd.DataFrame:
    """Table 5 columns per method: seconds per pair (``time_fuse`` / n_pairs), GFLOPs, parameters, achieved
    GFLOP/s and fraction of conv peak (``track_gflops_per_s``, ``track_fraction_of_conv_peak``), and how many of
    the timed pairs were the paper's 20 Harvard pairs (``track_paper20_pairs``: 20, or 0 for built-in pairs);
    NaN where a benchmark is absent (``paper20_pairs`` in results from before session 34).  Then where the time
    was measured (:data:`TIMED_AT`: the ``commit``, asv ``machine``, ``cpu`` and ``num_cpu`` of its ``time_fuse``
    result; empty text where it has none).

    A results folder can hold several commits and machines.  Each method's time is its newest ``time_fuse``, and
    what was measured with it (:data:`MEASURED_WITH_THE_TIME`: the pairs timed, the rates) comes from the same
    result file, never from another commit's, machine's or environment's (before session 36 each benchmark's
    newest was taken on its own); the counts are each benchmark's newest.  Within one file asv replaces only the
    benchmarks a later run on the same commit ran, so rerun the whole suite there (``fusionbench report --bench``
    does).  Two methods' times may come from different runs: the caption says so."""
    if frame.empty or "method" not in frame.columns:
        return pd.DataFrame(columns=["method", "seconds_per_pair", "gflops", "params", "gflops_per_s",
                                     "fraction_of_conv_peak", "paper20_pairs", *TIMED_AT])
    # only the Table 5 suite: other suites of the module (one pair, image sizes, growth) have benchmarks of the
    # same names (time_fuse, track_fraction_of_conv_peak) with other meanings, and must not be pivoted in
    frame = _with_the_time(frame[frame["benchmark"].str.startswith(TABLE5_SUITE + ".")])
    pivot = frame.pivot_table(index="method", columns="name", values="value", aggfunc="last")
    out = pd.DataFrame(index=pivot.index)
    out["seconds_per_pair"] = pivot.get("time_fuse", pd.Series(dtype=float)) / n_pairs
    out["gflops"] = pivot.get("track_gflops", pd.Series(dtype=float))
    out["params"] = pivot.get("track_params", pd.Series(dtype=float))
    out["gflops_per_s"] = pivot.get("track_gflops_per_s", pd.Series(dtype=float))
    out["fraction_of_conv_peak"] = pivot.get("track_fraction_of_conv_peak", pd.Series(dtype=float))
    out["paper20_pairs"] = pivot.get("track_paper20_pairs", pd.Series(dtype=float))
    times = frame[frame["name"] == "time_fuse"].drop_duplicates("method", keep="last").set_index("method")
    for column in TIMED_AT:
        where = times[column] if column in times.columns else pd.Series(dtype=object)
        out[column] = [str(where.get(m, "")) if pd.notna(where.get(m, "")) else "" for m in out.index]
    return out.reset_index()


#: where a report's ``results/`` export keeps the asv result files its Table 5 used (asv's own layout), and where a
#: rebuild from that export reads them when no ``--asv-results`` is given
EXPORT_ASV_DIR = "asv"


def used_result_files(results_dir: str | Path, raw: pd.DataFrame, methods: list[str]) -> list[Path]:
    """The result files of ``results_dir`` that :func:`method_costs` takes ``methods``' Table 5 values from:
    ``<machine>/<commit[:8]>-<env>.json`` of each row it keeps (a method's ``time_fuse`` and what was measured with
    it, and the counts' newest), found by the machine folder, ``commit_hash`` and ``env_name`` in each file.
    ``raw`` is the :func:`read_results` frame Table 5 read (after any filter on the commit)."""
    results_dir = Path(results_dir)
    if raw.empty or "method" not in raw.columns:
        return []
    suite = raw[raw["benchmark"].str.startswith(TABLE5_SUITE + ".") & raw["method"].isin(list(methods))]
    if suite.empty:
        return []
    wanted = set(_file_keys(_with_the_time(suite)))
    found = []
    for path in sorted(results_dir.glob("*/*.json")):
        if path.name == "machine.json":
            continue
        data = json.loads(path.read_text())
        key = "\x1f".join(str(v) if v is not None else "" for v in
                          (path.parent.name, data.get("commit_hash"), data.get("env_name")))
        if key in wanted:
            found.append(path)
    return found


def export_result_files(results_dir: str | Path, files: list[Path], dest: str | Path) -> list[Path]:
    """Copy ``files`` (result files of ``results_dir``) into ``dest`` in asv's layout, with their machines'
    ``machine.json`` and a ``benchmarks.json`` holding only the benchmarks those files have (what
    :func:`read_results` needs to name their parameters and check their versions; the whole file is about 90 kB).
    ``dest`` is replaced; it may be ``results_dir`` itself (a report rebuilt in place): everything is read before
    anything is written.  Returns the files written."""
    results_dir, dest = Path(results_dir), Path(dest)
    contents: dict[str, str] = {}
    benches: set[str] = set()
    for path in files:
        text = path.read_text()
        contents[f"{path.parent.name}/{path.name}"] = text
        benches |= set(json.loads(text).get("results", {}))
        machine = path.parent / "machine.json"
        if machine.is_file():
            contents[f"{path.parent.name}/machine.json"] = machine.read_text()
    meta_path = results_dir / "benchmarks.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        kept = {k: v for k, v in meta.items() if k in benches or k == "version"}
        contents["benchmarks.json"] = json.dumps(kept, indent=4, sort_keys=True) + "\n"
    import shutil

    if dest.exists():
        shutil.rmtree(dest)
    written = []
    for rel, text in sorted(contents.items()):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(target)
    return written
