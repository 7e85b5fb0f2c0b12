"""Table 5 in every report: parameters and GFLOPs from :mod:`fusionbench.profile`, time per pair from the
run's own measured fusion seconds, or asv's figures when ``--bench`` ran (or an asv results folder is given).

* **Parameters, GFLOPs**: :func:`fusionbench.profile.params` / :func:`~fusionbench.profile.gflops`
  (FLOPs = 2 × MAC, one forward pass on both sources at 256×256; non-torch
  methods: n/a).  Profiles are cached in ``results/profile.csv`` beside the
  export, keyed by method and registered version, so a regeneration does not
  profile again.
* **Time per pair**: the mean of the store's ``outputs.seconds`` (the worker's
  wall time of one fusion, colour protocol included, weights already loaded)
  over the paper's 20 pairs where the run has them, else over every pair of the
  run's Harvard MRI-PET/MRI-SPECT datasets, else every pair; labelled as a run
  measurement with its machine and worker count (other work on the machine is
  not controlled, unlike asv's).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

Log = Callable[[str], None]
PROFILE_COLUMNS = ["method", "version", "params", "gflops", "note"]


def _version(method: str) -> str:
    from fusionbench.method_registry import METHODS

    try:
        return str(METHODS.get(method).info.version)
    except KeyError:
        return ""


def profile_methods(methods: list[str], cache: Path | None = None, log: Log | None = None) -> pd.DataFrame:
    """``method, version, params, gflops, note`` for ``methods``; cached rows of the same version are reused."""
    from fusionbench import profile

    log = log or (lambda msg: None)
    cached = pd.read_csv(cache, dtype={"version": str}, keep_default_na=False, na_values=[""]) \
        if cache is not None and cache.is_file() else pd.DataFrame(columns=PROFILE_COLUMNS)
    rows = []
    for m in methods:
        hit = cached[(cached["method"] == m) & (cached["version"].astype(str) == _version(m))]
        if not hit.empty:
            rows.append(hit.iloc[0].to_dict())
            continue
        row = {"method": m, "version": _version(m), "params": np.nan, "gflops": np.nan, "note": ""}
        try:
            p = profile.params(m)
            if p is None:
                row["note"] = "not a torch method"
            else:
                row["params"] = float(p)
                row["gflops"] = float(profile.gflops(m))
        except Exception as exc:  # noqa: BLE001 - e.g. weights not available here: said in the table
            row["note"] = f"not profiled: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
            log(f"Table 5: {m}: {row['note']}")
        rows.append(row)
    frame = pd.DataFrame(rows, columns=PROFILE_COLUMNS)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        keep = cached[~cached["method"].isin(frame["method"])] if not cached.empty else cached
        pd.concat([keep, frame], ignore_index=True).to_csv(cache, index=False)
    return frame


def run_seconds(outputs: pd.DataFrame, methods: list[str], pairs20: list[tuple[str, str]]) -> tuple[pd.Series, str]:
    """Mean fusion seconds per pair of each method, and which pairs they are over."""
    df = outputs.dropna(subset=["seconds"]) if "seconds" in outputs.columns else outputs
    df = df[df["method"].isin(methods)]
    keys = set(pairs20)
    chosen = df[[(d, str(p)) in keys for d, p in zip(df["dataset"], df["pair"])]] if keys else df.iloc[:0]
    if not chosen.empty:
        over = "the paper's 20 pairs (10 MRI-PET + 10 MRI-SPECT test pairs, split v1)"
    else:
        chosen = df[df["dataset"].isin(["harvard-mri-pet", "harvard-mri-spect"])]
        over = "every MRI-PET and MRI-SPECT pair of the run"
        if chosen.empty:
            chosen, over = df, "every pair of the run"
    return chosen.groupby("method")["seconds"].mean(), over


def cost_table(methods: list[str], names: dict[str, str], profiles: pd.DataFrame, seconds: pd.Series,
               asv_costs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rows of Table 5: Method, Time/s per pair, GFLOPs, Params (M), with ``attrs['time_source']``."""
    prof = profiles.set_index("method") if not profiles.empty else pd.DataFrame()
    asv = asv_costs.set_index("method") if asv_costs is not None and not asv_costs.empty else None
    rows = []
    for m in methods:
        t = float(seconds.get(m, np.nan))
        if asv is not None and m in asv.index and np.isfinite(asv.loc[m, "seconds_per_pair"]):
            t = float(asv.loc[m, "seconds_per_pair"])
        p = float(prof.loc[m, "params"]) if m in prof.index else math.nan
        g = float(prof.loc[m, "gflops"]) if m in prof.index else math.nan
        rows.append({"Method": names.get(m, m), "Time/s per pair": t,
                     "GFLOPs": g if np.isfinite(g) else "n/a",
                     "Params (M)": p / 1e6 if np.isfinite(p) else "n/a", "method": m})
    out = pd.DataFrame(rows)
    out.attrs["time_source"] = "asv" if asv is not None else "run"
    return out
