"""Table 5 in every report: parameters and GFLOPs from :mod:`fusionbench.profile`, time per pair from the
run's own measured fusion seconds, or asv's figures when ``--bench`` ran (or an asv results folder is given).

* **Parameters, GFLOPs**: :func:`fusionbench.profile.params` / :func:`~fusionbench.profile.gflops`
  (FLOPs = 2 × MAC, one forward pass on both sources at 256×256; non-torch
  methods: n/a).  Profiles are cached in ``results/profile.csv`` beside the
  export, keyed by method and registered version, so a regeneration does not
  profile again.
* **Achieved GFLOP/s** (torch methods): GFLOPs over the best wall time of that same forward pass (of 3 calls, of 15 under 0.1 s),
  and that over a plain 3×3 convolution's GFLOP/s (the machine's conv peak,
  :func:`fusionbench.profile.conv_peak_gflops_per_s`, read right before each forward; the best reading
  divides every method timed in that build) measured in the same process: asv's
  ``track_gflops_per_s`` / ``track_fraction_of_conv_peak`` when asv results are given, else measured by
  :func:`profile_methods` (``forward_s`` and ``conv_peak`` columns of the cache, with the torch thread
  count in ``threads``); ``attrs['throughput_source']`` says which.
* **Time per pair**: the mean of the store's ``outputs.seconds`` (the worker's
  wall time of one fusion, colour protocol included, weights already loaded)
  over the paper's 20 pairs where the run has them, else over every pair of the
  run's Harvard MRI-PET/MRI-SPECT datasets, else every pair; labelled as a run
  measurement with its machine and worker count (other work on the machine is
  not controlled, unlike asv's), and with the pairs counted from the rows (``10 of
  the paper's 20 pairs: MRI-PET only (...)`` where only some were run; the methods
  timed on fewer of them named).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from .data import dataset_task

Log = Callable[[str], None]
PROFILE_COLUMNS = ["method", "version", "params", "gflops", "note", "forward_s", "conv_peak", "threads",
                   "measured", "commit", "machine"]
#: the columns that say when and where ``forward_s`` and ``conv_peak`` were measured (empty in older caches)
WHEN_COLUMNS = ("measured", "commit", "machine")


def _where_measured() -> dict[str, str]:
    """``measured`` (UTC date and time), ``commit`` (fusionbench's own short commit,
    :func:`fusionbench.checkout.short_commit`, or ``unknown``) and ``machine`` (processor, CPUs, host) of a
    throughput measurement made now."""
    import datetime

    from fusionbench.checkout import short_commit

    commit = short_commit() or "unknown"
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    from fusionbench.machine import host_words, machine_info

    machine = host_words(machine_info())
    return {"measured": now, "commit": commit, "machine": machine}


def _version(method: str) -> str:
    from fusionbench.method_registry import METHODS

    entry = METHODS.find(method)
    return "" if entry is None else str(entry.info.version)


def _finite(value: object) -> bool:
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    return bool(np.isfinite(number))


def profile_methods(methods: list[str], cache: Path | None = None, log: Log | None = None,
                    throughput: bool = True, external: set[str] | frozenset[str] = frozenset()) -> pd.DataFrame:
    """:data:`PROFILE_COLUMNS` for ``methods``; cached rows of the same version are reused.

    ``external``: methods whose rows are scored folders of fused images (``NAME=results:PATH``), and a method
    not registered here (a plugin not installed): both get a note instead of a profile, never cached.

    ``throughput``: also time each torch method's forward pass (``forward_s``, best of 3 at 256², of 15 under
    0.1 s; torch's current thread count in ``threads``) and the machine's conv peak (``conv_peak``, GFLOP/s:
    read right before each forward, the best reading for every row timed in this call); a cached row without
    them (an older cache) gets them measured now.
    """
    import torch

    from fusionbench import profile

    log = log or (lambda msg: None)
    cached = pd.read_csv(cache, dtype={c: str for c in ("version", *WHEN_COLUMNS)}, keep_default_na=False,
                         na_values=[""]) \
        if cache is not None and cache.is_file() else pd.DataFrame(columns=PROFILE_COLUMNS)
    rows = []
    peak: list[float] = []
    timed: list[int] = []
    from fusionbench.method_registry import METHODS

    for m in methods:
        if m in external or m not in METHODS:
            rows.append({**{c: np.nan for c in PROFILE_COLUMNS}, "method": m, "version": "", "note": (
                "not profiled: external results (a folder of fused images)" if m in external else
                "not profiled: not a method registered here (a plugin not installed?)")})
            continue
        hit = cached[(cached["method"] == m) & (cached["version"].astype(str) == _version(m))]
        if not hit.empty:
            row = {c: hit.iloc[0].get(c, np.nan) for c in PROFILE_COLUMNS}
        else:
            row = {"method": m, "version": _version(m), "params": np.nan, "gflops": np.nan, "note": "",
                   "forward_s": np.nan, "conv_peak": np.nan, "threads": np.nan, "measured": np.nan,
                   "commit": np.nan, "machine": np.nan}
            try:
                p = profile.params(m)
                if p is None:
                    row["note"] = "not a torch method"
                else:
                    row["params"] = float(p)
                    row["gflops"] = float(profile.gflops(m))
            except Exception as exc:  # noqa: BLE001 - e.g. weights not available here: said in the table
                first = str(exc).splitlines()[0][:120] if str(exc) else ""
                row["note"] = f"not profiled: {type(exc).__name__}: {first}"
                log(f"Table 5: {m}: {row['note']}")
        if throughput and _finite(row["gflops"]) and not _finite(row.get("forward_s")):
            try:
                # a fresh yardstick reading right before each forward: one best-of-5 reading moves by ±30 % on
                # a small machine, so every row timed here is divided by the best of all of them (below)
                peak.append(profile.conv_peak_gflops_per_s((256, 256)))
                row["forward_s"] = _forward_seconds(m)
                row["threads"] = float(torch.get_num_threads())
                row.update(_where_measured())
                timed.append(len(rows))
            except Exception as exc:  # noqa: BLE001 - the GFLOP/s column stays empty for this method
                log(f"Table 5: {m}: forward pass not timed: {type(exc).__name__}: {exc}")
        rows.append(row)
    for i in timed:
        rows[i]["conv_peak"] = max(peak)
    frame = pd.DataFrame(rows, columns=PROFILE_COLUMNS)
    frame.attrs["timed_now"] = [rows[i]["method"] for i in timed]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        keep = cached[~cached["method"].isin(frame["method"])] if not cached.empty else cached
        profiled = frame[frame["version"].astype(str) != ""]
        pd.concat([keep, profiled], ignore_index=True).to_csv(cache, index=False)
    return frame


#: forward passes shorter than this are timed :data:`SHORT_FORWARD_REPEAT` more times (their best of 3 is noisy)
SHORT_FORWARD_S = 0.1
SHORT_FORWARD_REPEAT = 12


def _forward_seconds(method: str) -> float:
    """Best wall time of the method's 256² forward pass: of 3 calls, or of 15 when it takes under 0.1 s (a
    20 ms forward's best of 3 moved by ±30 % on the 2-core machine; the extra calls cost under 1.2 s)."""
    from fusionbench import profile

    best = float(profile.forward_seconds(method, (256, 256)))
    if best < SHORT_FORWARD_S:
        best = min(best, float(profile.forward_seconds(method, (256, 256), repeat=SHORT_FORWARD_REPEAT)))
    return best


def run_seconds(outputs: pd.DataFrame, methods: list[str], pairs20: list[tuple[str, str]]) -> tuple[pd.Series, str]:
    """Mean fusion seconds per pair of each method, and which pairs they are over."""
    chosen, over = timed_outputs(outputs, methods, pairs20)
    return chosen.groupby("method")["seconds"].mean(), over


def timed_outputs(outputs: pd.DataFrame, methods: list[str],
                  pairs20: list[tuple[str, str]]) -> tuple[pd.DataFrame, str]:
    """The output rows :func:`run_seconds` averages (the paper's 20 pairs where present, else the MRI-PET and
    MRI-SPECT pairs, else all), and which pairs they are, counted from those rows (:func:`paper_pairs_words`)."""
    df = outputs.dropna(subset=["seconds"]) if "seconds" in outputs.columns else outputs
    df = df[df["method"].isin(methods)]
    keys = set(pairs20)
    chosen = df[[(d, str(p)) in keys for d, p in zip(df["dataset"], df["pair"])]] if keys else df.iloc[:0]
    if not chosen.empty:
        return chosen, paper_pairs_words(set(zip(chosen["dataset"], chosen["pair"])), pairs20, _fewer_words(chosen))
    chosen = df[df["dataset"].isin(["harvard-mri-pet", "harvard-mri-spect"])]
    if chosen.empty:
        return df, f"every pair of the run ({_pair_count(df)} pairs{_fewer_words(df)})"
    tasks = " and ".join(_task(d) for d in ("harvard-mri-pet", "harvard-mri-spect") if d in set(chosen["dataset"]))
    return chosen, f"every {tasks} pair of the run ({_pair_count(chosen)} pairs{_fewer_words(chosen)})"


def _task(dataset: str) -> str:
    """``MRI-PET`` for ``harvard-mri-pet``: the task the dataset declares, else its name."""
    return dataset_task(dataset) or dataset


def _pair_count(rows: pd.DataFrame) -> int:
    return len(set(zip(rows["dataset"], rows["pair"].astype(str))))


def paper_pairs_words(have: set[tuple[str, str]], pairs20: list[tuple[str, str]], extra: str = "") -> str:
    """Which of the paper's pairs ``pairs20`` the ``(dataset, pair)`` keys ``have`` cover, counted: ``the paper's 20
    pairs (10 MRI-PET + 10 MRI-SPECT test pairs, split v1)`` when all of them, else e.g. ``10 of the paper's 20
    pairs: MRI-PET only (10 of its 10 MRI-PET test pairs, split v1)``; ``extra`` goes inside the parentheses."""
    have = {(d, str(p)) for d, p in have} & set(pairs20)
    total: dict[str, int] = {}
    for dataset, _ in pairs20:
        total[dataset] = total.get(dataset, 0) + 1
    count = {d: sum(1 for key in have if key[0] == d) for d in total}
    if all(count[d] == total[d] for d in total):
        return (f"the paper's {len(pairs20)} pairs (" + " + ".join(f"{n} {_task(d)}" for d, n in total.items())
                + f" test pairs, split v1{extra})")
    run = [d for d in total if count[d]]
    if not run:
        return f"none of the paper's {len(pairs20)} pairs"
    only = f": {_task(run[0])} only" if len(run) == 1 else ""
    return (f"{len(have)} of the paper's {len(pairs20)} pairs{only} ("
            + " + ".join(f"{count[d]} of its {total[d]} {_task(d)}" for d in run) + f" test pairs, split v1{extra})")


def _fewer_words(chosen: pd.DataFrame) -> str:
    """``; timed on fewer of them: dwt 7`` naming the methods timed on fewer of ``chosen``'s pairs than the others
    (each method's time is its own mean), else ``""``."""
    if chosen.empty:
        return ""
    per = chosen.assign(pair=chosen["pair"].astype(str)).drop_duplicates(["method", "dataset", "pair"]) \
        .groupby("method").size()
    fewer = per[per < _pair_count(chosen)]
    return ("; timed on fewer of them: " + ", ".join(f"{m} {n}" for m, n in fewer.items())) if len(fewer) else ""


def _number(frame: pd.DataFrame, method: str, column: str) -> float:
    if method not in frame.index or column not in frame.columns:
        return math.nan
    value = pd.to_numeric(pd.Series([frame.loc[method, column]]), errors="coerce").iloc[0]
    return float(value)


#: The columns of :func:`cost_table` (``method`` is the registry name, dropped from the printed tables).
COST_COLUMNS = ["Method", "Time/s per pair", "GFLOPs", "GFLOP/s", "Fraction of conv peak", "Params (M)", "method"]


def cost_table(methods: list[str], names: dict[str, str], profiles: pd.DataFrame, seconds: pd.Series,
               asv_costs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rows of Table 5: Method, Time/s per pair, GFLOPs, GFLOP/s, Fraction of conv peak, Params (M).

    ``attrs['time_source']`` is ``'asv'`` or ``'run'`` (with asv, ``attrs['time_from_asv']``: the methods whose
    time is asv's, and ``attrs['time_from_run']``: those that had no asv time and show the run's own); ``attrs['throughput_source']`` is ``'asv'`` when every
    shown GFLOP/s comes from asv's ``track_gflops_per_s``, ``'profile'`` when every one was measured by
    :func:`profile_methods`, ``'asv+profile'`` when mixed, ``None`` when none is known.  GFLOP/s and the
    fraction are n/a for methods that are not torch methods or were not timed.  GFLOPs and parameters come from
    ``profiles``, else from asv's ``track_gflops`` / ``track_params`` (the same :mod:`fusionbench.profile`
    counts; before session 34 a report built with ``--no-profile`` showed n/a beside asv's counts).
    """
    prof = profiles.set_index("method") if not profiles.empty else pd.DataFrame()
    asv = asv_costs.set_index("method") if asv_costs is not None and not asv_costs.empty else None
    rows, sources, from_asv, from_run = [], set(), [], []
    for m in methods:
        t = float(seconds.get(m, np.nan))
        if asv is not None and np.isfinite(_number(asv, m, "seconds_per_pair")):
            t = _number(asv, m, "seconds_per_pair")
            from_asv.append(m)
        elif asv is not None and np.isfinite(t):
            from_run.append(m)
        p, g = _number(prof, m, "params"), _number(prof, m, "gflops")
        if asv is not None:  # not profiled here (--no-profile, an external row): asv's count of the same quantity
            p = p if np.isfinite(p) else _number(asv, m, "params")
            g = g if np.isfinite(g) else _number(asv, m, "gflops")
        rate, fraction = math.nan, math.nan
        if asv is not None and np.isfinite(_number(asv, m, "gflops_per_s")):
            rate, fraction = _number(asv, m, "gflops_per_s"), _number(asv, m, "fraction_of_conv_peak")
            sources.add("asv")
        elif np.isfinite(g) and _number(prof, m, "forward_s") > 0:
            rate = g / _number(prof, m, "forward_s")
            fraction = rate / _number(prof, m, "conv_peak")
            sources.add("profile")
        rows.append({"Method": names.get(m, m), "Time/s per pair": t,
                     "GFLOPs": g if np.isfinite(g) else "n/a",
                     "GFLOP/s": rate if np.isfinite(rate) else "n/a",
                     "Fraction of conv peak": fraction if np.isfinite(fraction) else "n/a",
                     "Params (M)": p / 1e6 if np.isfinite(p) else "n/a", "method": m})
    out = pd.DataFrame(rows, columns=COST_COLUMNS)
    out.attrs["time_source"] = "asv" if asv is not None else "run"
    out.attrs["time_from_asv"] = from_asv  # with asv: the methods whose time is asv's
    out.attrs["time_from_run"] = from_run  # with asv: the methods whose time is the run's own (no asv time)
    out.attrs["throughput_source"] = "+".join(sorted(sources)) if sources else None
    if "profile" in sources:
        timed = [m for m in methods if np.isfinite(_number(prof, m, "forward_s"))]
        out.attrs["throughput_when"] = _when(prof, timed, profiles.attrs.get("timed_now"))
    return out


def _stamp_words(stamps: Iterable[tuple[str, str, str]]) -> list[str]:
    """``measured <first>[–<last>] at commit <c> on <machine>``, one phrase per (commit, machine) of the
    ``(measured, commit, machine)`` stamps, the times of each as a span (before session 34 each minute of one
    profiling was its own phrase, the commit and machine repeated)."""
    spans: dict[tuple[str, str], list[str]] = {}
    for when, commit, machine in stamps:
        spans.setdefault((commit, machine), []).append(when)
    words = []
    for (commit, machine), times in sorted(spans.items(), key=lambda item: min(item[1])):
        first, last = min(times), max(times)
        if first == last:
            span = first
        elif first[:10] == last[:10] and first.endswith(" UTC") and last.endswith(" UTC"):  # one day: 12:55–12:56
            span = f"{first[:-4]}–{last[11:]}"
        else:
            span = f"{first} to {last}"
        words.append(f"measured {span} at commit {commit} on {machine}")
    return words


def _when(prof: pd.DataFrame, timed: list[str], timed_now: list[str] | None) -> str:
    """Where the profile's GFLOP/s come from: timed now, or the cached profile and when/where it was measured."""
    now = [m for m in timed if timed_now and m in timed_now]
    stamps: list[tuple[str, str, str] | None] = []
    for m in timed:
        vals = [prof.loc[m, c] if c in prof.columns else np.nan for c in WHEN_COLUMNS]
        stamps.append(None if any(not isinstance(v, str) or not v for v in vals) else (vals[0], vals[1], vals[2]))
    if timed and len(now) == len(timed):
        return "timed when this report was built (" + "; ".join(_stamp_words(s for s in stamps if s)) + ")"
    known = _stamp_words(s for m, s in zip(timed, stamps) if s and m not in now)
    unknown = [m for m, s in zip(timed, stamps) if not s and m not in now]
    parts = []
    if now:
        parts.append(f"{', '.join(now)} timed when this report was built")
    if known:
        parts.append("from the cached profile (results/profile.csv), " + "; ".join(known))
    if unknown:
        parts.append("from the cached profile (results/profile.csv)" + (f" for {', '.join(unknown)}" if known or now
                                                                         else "")
                     + "; when and where it was measured was not recorded")
    return "; ".join(parts)


def throughput_caption(table: pd.DataFrame) -> str:
    """The sentence of the Table 5 caption that says where GFLOP/s and the fraction of conv peak come from."""
    source = table.attrs.get("throughput_source")
    if source is None:
        return "GFLOP/s: not measured (n/a)."
    if source == "asv":  # two benchmarks, two measurements: the fraction is not the column over one yardstick
        return ("GFLOP/s = GFLOPs / the best wall time of that forward pass at 256x256 (asv's track_gflops_per_s); "
                "Fraction of conv peak = that forward pass's GFLOP/s over a plain 3x3 64->64 convolution's, measured "
                "apart (asv's track_fraction_of_conv_peak: the median of three interleaved rounds, yardstick then "
                "forward, in the method's own process), so it is not the GFLOP/s column over one common yardstick; "
                "on a shared machine both move by tens of per cent between builds.")
    where = {"profile": "fusionbench.profile.forward_seconds (best of 3, of 15 under 0.1 s; the conv peak the best "
                        "of conv_peak_gflops_per_s read in the same process right before each method's forward), "
                        + table.attrs.get("throughput_when", "when and where it was measured was not recorded"),
             "asv+profile": "asv where it has the method, else fusionbench.profile.forward_seconds, "
                            + table.attrs.get("throughput_when", "when and where it was measured was not recorded")
             }[source]
    return ("GFLOP/s = GFLOPs / the best wall time of that forward pass at 256x256; Fraction of conv peak = "
            "GFLOP/s / a plain 3x3 64->64 convolution's GFLOP/s on the same machine; source: " + where + ".")
