"""Where each row of a table comes from: the weights behind a method, and the runs behind its outputs.

* :func:`weights_notes`: per method with learned weights, a few words on where they come from
  (:func:`fusionbench.weights_provenance.weights_note`: official and sha256-pinned, or trained by fusionbench on
  the schedule its provenance file gives), for which tasks and on what data, and one footnote sentence. Read from
  what the run recorded in the store's ``method_weights`` table (``ReportData.methods_meta[m]["weights"]``), so a report built later
  describes the weights the run used; for a store written before session 35, from the weights installed now.
* :func:`output_origins`: per method, the out folder its fused outputs are in (``OUT`` of the default cache
  ``OUT/fused``; ``cache folder DIR`` for a ``--cache DIR``, which runs of any out folder share) and the runs
  that fused them (the ``run_id`` of each output row; for older exports, which keep none, the runs whose
  ``--out`` or ``--cache`` is that folder and that requested the method), with their commits. A row with a
  run id but no fusion time was scored, not fused, by that run (an image already in the cache, e.g. fused by
  a run of another out folder; or external results): the line says so, since the fusing run is not known.
* :func:`provenance_line`: the one-line footnote of a table: runs, commits, machine, split.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from fusionbench.checkout import short_form
from fusionbench.machine import host_words
from fusionbench.method_registry import trained_for_task
from fusionbench.weights_provenance import OFFICIAL, recorded_weights, weights_record

#: the footnote's words for weights described as installed when the report was built, not as the run recorded them
NOT_RECORDED = "as installed when this report was built (the results store did not record the weights its runs used)"
#: the same, after such a method's note in a CSV's ``weights`` value (a CSV is read without the footnote)
NOT_RECORDED_ROW = "described as installed when this report was built, not as recorded by the run"


def weights_records(methods: list[str], meta: dict[str, dict] | None = None,
                    root: Path | None = None) -> tuple[dict[str, dict], list[str]]:
    """``({method: {"note", "trained_on", "trained_for"}}, unrecorded)``: the weights each method's run used, as
    the store recorded them (``meta``: ``ReportData.methods_meta``), and the methods whose row recorded none,
    described from the weights installed now (their provenance path shown relative to ``root``)."""
    records: dict[str, dict] = {}
    unrecorded = []
    for m in methods:
        record = recorded_weights((meta or {}).get(m))
        if record is None:
            record = weights_record(m, root)
            if record["note"]:
                unrecorded.append(m)
        records[m] = record
    return records, unrecorded


def trained_elsewhere(trained_for: list[str] | tuple[str, ...], task: str | None) -> str:
    """``"trained for <tasks> pairs"`` when weights trained for ``trained_for`` (``MethodInfo.trained_for``) were
    not trained for ``task``, else ``""``."""
    if not task or trained_for_task(tuple(trained_for), task):
        return ""
    return f"trained for {' and '.join(trained_for)} pairs"


def weights_notes(methods: list[str], names: dict[str, str], root: Path | None = None,
                  task: str | None = None, meta: dict[str, dict] | None = None) -> tuple[dict[str, str], str]:
    """``({method: note}, sentence)``: the notes of the methods that have one, and one footnote sentence.

    With the dataset's ``task``, weights trained for other tasks only (SDNet's and MATR's medical models, or
    ``mopa``'s MRI-PET/SPECT training, on IR-VIS or MRI-CT pairs) are said to be so, in the note and the
    sentence; and what each method's weights were trained on, where its registration says
    (``MethodInfo.trained_on``: SDNet's and MATR's authors' unlisted Harvard pairs, CNN's ImageNet patches).
    ``meta``: the store's method rows (:func:`weights_records`); methods without a recorded note are described
    from the weights installed now, and the sentence and their notes say so."""
    records, unrecorded = weights_records(methods, meta, root)
    notes = {m: str(r["note"]) for m, r in records.items() if r["note"]}
    if not notes:
        return notes, ""
    by_note: dict[str, list[str]] = {}  # methods with the same note named together (official weights last)
    for m, n in sorted(notes.items(), key=lambda item: item[1] == OFFICIAL):
        by_note.setdefault(n, []).append(names.get(m, m))
    parts = [f"{', '.join(ms)}: {n}" for n, ms in by_note.items()]
    elsewhere = {m: trained_elsewhere(records[m]["trained_for"], task) for m in notes}
    elsewhere = {m: e for m, e in elsewhere.items() if e}
    notes = {m: n + (f" ({elsewhere[m]}, not {task})" if m in elsewhere else "") for m, n in notes.items()}
    data = {m: d for m in notes if (d := records[m]["trained_on"])}
    notes = {m: n + (f"; trained on {data[m]}" if m in data else "") for m, n in notes.items()}
    if meta is not None:
        notes = {m: n + (f"; {NOT_RECORDED_ROW}" if m in unrecorded else "") for m, n in notes.items()}
    sentence = "Weights: " + "; ".join(parts) + "."
    if elsewhere:
        sentence += (f" Weights trained for other tasks than {task}: "
                     + "; ".join(f"{names.get(m, m)}, {e}" for m, e in elsewhere.items()) + ".")
    if data:  # methods with the same training data named together
        together: dict[str, list[str]] = {}
        for m, d in data.items():
            together.setdefault(d, []).append(names.get(m, m))
        sentence += " Training data of these weights: " + "; ".join(f"{', '.join(ms)}: {d}"
                                                                      for d, ms in together.items()) + "."
    if meta is not None and unrecorded:
        who = "" if len(unrecorded) == len(notes) else " of " + ", ".join(names.get(m, m) for m in unrecorded)
        sentence += f" The weights{who} are described {NOT_RECORDED}."
    return notes, sentence


def json_dict(value: object) -> dict:
    """A run record's JSON column (``config``, ``machine``) as a dict; ``{}`` where it is absent or does not parse."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _runs_table(runs: pd.DataFrame) -> list[dict]:
    """The runs as ``{run_id, sha (7 hex, with ``-dirty`` where the checkout's code had changes, or 'unknown'),
    config, machine}`` dicts."""
    return [{"run_id": row.get("run_id"), "sha": short_form(str(row.get("git_sha") or "")) or "unknown",
             "config": json_dict(row.get("config")), "machine": json_dict(row.get("machine"))}
            for row in (runs.to_dict("records") if not runs.empty else [])]


def _folder(path: str, caches: set[Path]) -> tuple[str, Path]:
    """``(kind, folder)`` of one fused output ``<cache>/<method>/<key>/<file>``: ``("out", OUT)`` where the cache
    is a run's default ``OUT/fused``; ``("cache", DIR)`` where it is a ``--cache DIR`` of one of the runs
    (``caches``) or any other folder: shared by runs of any out folder, so not a run's folder. A path not laid
    out so: ``("folder", its parent)``."""
    p = Path(str(path))
    if len(p.parents) < 4:
        return "folder", p.parent
    cache = p.parents[2]
    if cache.name == "fused" and cache not in caches:
        return "out", cache.parent
    return "cache", cache


def _folder_words(kind: str, folder: Path) -> str:
    return f"cache folder {folder}" if kind == "cache" else str(folder)


def output_origins(outputs: pd.DataFrame, runs: pd.DataFrame, methods: list[str],
                   keys: set[tuple[str, str]] | None = None) -> dict[str, dict]:
    """Per method: ``{'folders', 'runs', 'commits', 'exact'}`` of its outputs (over ``keys`` ``(dataset, pair)``
    when given).

    Where the outputs carry the ``run_id`` of the run that fused them,
    ``runs`` are exactly those runs and ``exact`` is true. Rows without one (older exports) fall back to the runs
    whose ``--out`` is the outputs' folder and that requested the method: the runs that can have made them.
    """
    table = _runs_table(runs)
    by_id = {r["run_id"]: r for r in table}
    caches = {Path(str(r["config"]["cache"])) for r in table if r["config"].get("cache")}
    out: dict[str, dict] = {}
    if outputs.empty or "path" not in outputs.columns:
        return out
    for method in methods:
        rows = outputs[outputs["method"] == method]
        if keys:
            # a boolean array, not a list: an empty list would select no columns instead of no rows
            rows = rows[np.array([(d, str(p)) in keys for d, p in zip(rows["dataset"], rows["pair"])], dtype=bool)]
        folders = sorted({_folder_words(*_folder(p, caches)) for p in rows["path"].dropna().astype(str) if p})
        recorded = (pd.to_numeric(rows["run_id"], errors="coerce") if "run_id" in rows.columns
                    else pd.Series(np.nan, index=rows.index))
        ids = sorted({int(i) for i in recorded.dropna()})
        unrecorded = rows[recorded.isna().to_numpy()]
        # a row with a run id but no fusion time: that run scored an image it did not fuse (one already in the
        # cache, fused earlier, e.g. by a run of another out folder sharing --cache; or external results)
        untimed = (int((recorded.notna() & pd.to_numeric(rows["seconds"], errors="coerce").isna()).sum())
                   if "seconds" in rows.columns else 0)
        guessed = []
        if len(unrecorded):
            loose = {_folder(p, caches) for p in unrecorded["path"].dropna().astype(str) if p}
            for r in table:
                cfg = r["config"]
                mine = {("out", Path(str(cfg["out"]))) if cfg.get("out") else None,
                        ("cache", Path(str(cfg["cache"]))) if cfg.get("cache") else None}
                asked = cfg.get("resolved_methods") or []
                if loose & mine and (not asked or method in asked):
                    guessed.append(r["run_id"])
        runs_of_method = ids + [g for g in guessed if g not in ids]
        shas = []
        for i in runs_of_method:
            sha = by_id[i]["sha"] if i in by_id else "unknown"
            if sha not in shas:
                shas.append(sha)
        out[method] = {"folders": folders, "runs": runs_of_method, "commits": shas, "exact": not len(unrecorded),
                       "untimed": untimed, "recorded": int(recorded.notna().sum())}
    return out


def _ids(ids: list) -> str:
    ids = sorted(int(i) for i in ids if pd.notna(i))
    if not ids:
        return "?"
    if len(ids) > 2 and ids == list(range(ids[0], ids[-1] + 1)):
        return f"{ids[0]}-{ids[-1]}"
    return ", ".join(map(str, ids))


def origin_words(origin: dict | None) -> str:
    """``run 1 or 2 (/work/runs/s13, commit 34a819d)`` for one method's :func:`output_origins` entry."""
    if not origin or not origin.get("folders"):
        return "outputs not recorded"
    runs = origin["runs"]
    if origin.get("exact"):
        which = f"run{'s' if len(runs) > 1 else ''} {_ids(runs)}"
    elif len(runs) == 1:
        which = f"run {_ids(runs)}"
    elif len(runs) == 2:
        which = f"run {runs[0]} or {runs[1]}"
    else:
        which = f"one of runs {_ids(runs)}" if runs else "no recorded run"
    commits = origin["commits"]
    untimed, recorded = origin.get("untimed", 0), origin.get("recorded", 0)
    scored = ("" if not untimed else
              f"; {'' if untimed == recorded else f'{untimed} of {recorded} images '}scored, not fused, by "
              f"{'that run' if len(runs) == 1 else 'those runs'}: already in the cache, or given as fused images")
    return (f"{which} ({', '.join(origin['folders'])}; commit{'s' if len(commits) > 1 else ''} "
            f"{', '.join(commits) or 'unknown'}{scored})")


def provenance_line(outputs: pd.DataFrame, runs: pd.DataFrame, methods: list[str], names: dict[str, str],
                    keys: set[tuple[str, str]] | None = None) -> str:
    """One footnote line: which runs and commits the rows' outputs come from, the machine, the split."""
    origins = output_origins(outputs, runs, methods, keys)
    by: dict[str, list[str]] = {}
    for m in methods:
        by.setdefault(origin_words(origins.get(m)), []).append(names.get(m, m))
    table = _runs_table(runs)
    used = {i for o in origins.values() for i in o["runs"]}
    records = [r for r in table if r["run_id"] in used] or table
    machines = {json.dumps({k: r["machine"].get(k) for k in ("processor", "cpu_model", "cpu_flags", "cpu_count",
                                                             "hostname", "platform")},
                           sort_keys=True) for r in records}
    machine_words = []
    for text in sorted(machines):
        mach = json.loads(text)
        machine_words.append(f"{host_words(mach)} ({mach.get('platform') or '?'})")
    splits = sorted({str(r["config"].get("split") or "all") for r in records})
    rows = "; ".join(f"{', '.join(ms)}: {w}" for w, ms in by.items())
    how = ("" if all(o.get("exact") for o in origins.values()) else
           " (where the outputs carry no run id, as in older exports: the runs of the results whose "
           "out folder holds them and that requested the method)")
    return (f"Provenance: fused outputs from {rows}{how}; machine: "
            f"{'; '.join(machine_words) or 'not recorded'}; split: {', '.join(splits)}.")
