"""Where each row of a table comes from: the weights behind a method, and the runs behind its outputs.

* :func:`weights_note`: for a method with learned weights, a few words on where they come from:
  ``official weights, sha256-pinned`` for third-party weights of the weights registry
  (:mod:`fusionbench.weights`), or, for weights trained by fusionbench, the schedule read from the
  provenance JSON committed beside them (``<module>.WEIGHTS_DIR/*.json`` whose ``method`` is the
  registered name: ``methods/mopa/weights/mopa.json``, ``methods/swinfusion_weights/mri_pet_spect.json``).
  The method registry has no field for this; it is derived from those files.
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
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from fusionbench.checkout import code_root, short_form
from fusionbench.machine import host_words

OFFICIAL = "official weights, sha256-pinned"


def _entry(method: str):
    from fusionbench.method_registry import METHODS

    return METHODS.find(method)


def provenance_file(method: str) -> tuple[Path, dict] | None:
    """The provenance JSON beside the trained weights of ``method`` (its ``method`` field is the name): in the
    module's ``WEIGHTS_DIR`` (committed), else in its ``trained_dir()`` (weights you trained and exported,
    e.g. ``$FUSIONBENCH_HOME/trained/mopa``), the order in which the method looks for its weights."""
    entry = _entry(method)
    if entry is None:
        return None
    module = sys.modules.get(getattr(entry.obj, "__module__", ""), None)
    folders = [getattr(module, "WEIGHTS_DIR", None)]
    if callable(getattr(module, "trained_dir", None)):
        folders.append(module.trained_dir())
    for folder in folders:
        if folder is None or not Path(folder).is_dir():
            continue
        for path in sorted(Path(folder).glob("*.json")):
            try:
                doc = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(doc, dict) and doc.get("method") == method:
                return path, doc
    return None


def _schedule_words(doc: dict) -> str:
    """``1 epoch, 552 steps, 64² patches, batch 16, lr 0.001`` from a provenance JSON's ``schedule``."""
    s = doc.get("schedule") if isinstance(doc.get("schedule"), dict) else {}
    words = []
    if s.get("epochs"):
        words.append(f"{s['epochs']} epoch{'s' if s['epochs'] != 1 else ''}")
    if s.get("iterations"):
        words.append(f"{s['iterations']} iterations")
    elif s.get("steps"):
        words.append(f"{s['steps']} steps")
    if s.get("patch_size"):
        words.append(f"{s['patch_size']}x{s['patch_size']} patches" + (f" ({s['patches']})" if s.get("patches") else ""))
    if s.get("batch_size"):
        words.append(f"batch {s['batch_size']}")
    official = doc.get("official_schedule") if isinstance(doc.get("official_schedule"), dict) else {}
    if official.get("iterations"):
        words.append(f"official: {official['iterations']} iterations, batch {official.get('batch_size', '?')}")
    return ", ".join(words)


def code_folder() -> Path:
    """What a provenance file's path is shown relative to: the fusionbench checkout the code runs from
    (``methods/mopa/weights/...``), else the folder holding the installed package
    (``fusionbench/methods/mopa/weights/...``); never the current folder (before session 34 a report built
    from elsewhere showed the file's last three path parts instead)."""
    import fusionbench

    return code_root() or Path(fusionbench.__file__).resolve().parent.parent


def weights_note(method: str, root: Path | None = None) -> str:
    """Where the weights of ``method`` come from, in a few words; ``""`` for a method without learned weights.
    ``root``: what the provenance file's path is shown relative to (default :func:`code_folder`)."""
    entry = _entry(method)
    if entry is None:
        return ""
    info = entry.info
    if info.weights:
        from fusionbench.weights import WEIGHTS

        if all(w in WEIGHTS for w in info.weights):
            return OFFICIAL
    if not info.trainable:
        return ""
    found = provenance_file(method)
    if found is None:
        return "trained by fusionbench (no provenance file beside the weights)"
    path, doc = found
    note = str(doc.get("note") or "")
    named = re.search(r"\b(reduced[^(;.,]*?schedule)", note, re.IGNORECASE)
    kind = named.group(1) if named else (note.split(" (")[0].split(";")[0].strip().rstrip(".") or "schedule")
    kind = kind.replace("REDUCED", "reduced")
    try:
        where = path.resolve().relative_to((root or code_folder()).resolve()).as_posix()
    except ValueError:
        where = "/".join(path.parts[-3:])
    state = "" if doc.get("finished", True) else ", unfinished"
    return f"trained by fusionbench, {kind} ({_schedule_words(doc)}{state}; {where})"


def trained_elsewhere(method: str, task: str | None) -> str:
    """``"trained for <tasks> pairs"`` when the weights of ``method`` were trained for other tasks than ``task``
    (``MethodInfo.trained_for``), else ``""``."""
    entry = _entry(method)
    if entry is None or not task or entry.info.trained_for_task(task):
        return ""
    return f"trained for {' and '.join(entry.info.trained_for)} pairs"


def weights_notes(methods: list[str], names: dict[str, str], root: Path | None = None,
                  task: str | None = None) -> tuple[dict[str, str], str]:
    """``({method: note}, sentence)``: the notes of the methods that have one, and one footnote sentence.

    With the dataset's ``task``, weights trained for other tasks only (SDNet's and MATR's medical models, or
    ``mopa``'s MRI-PET/SPECT training, on IR-VIS or MRI-CT pairs) are said to be so, in the note and the
    sentence; and what each method's weights were trained on, where its registration says
    (``MethodInfo.trained_on``: SDNet's and MATR's authors' unlisted Harvard pairs, CNN's ImageNet patches)."""
    notes = {m: weights_note(m, root) for m in methods}
    notes = {m: n for m, n in notes.items() if n}
    if not notes:
        return notes, ""
    official = [names.get(m, m) for m, n in notes.items() if n == OFFICIAL]
    trained = [f"{names.get(m, m)}: {n}" for m, n in notes.items() if n != OFFICIAL]
    parts = trained + ([", ".join(official) + f": {OFFICIAL}"] if official else [])
    elsewhere = {m: trained_elsewhere(m, task) for m in notes}
    elsewhere = {m: e for m, e in elsewhere.items() if e}
    notes = {m: n + (f" ({elsewhere[m]}, not {task})" if m in elsewhere else "") for m, n in notes.items()}
    data = {m: d for m in notes if (d := trained_on(m))}
    notes = {m: n + (f"; trained on {data[m]}" if m in data else "") for m, n in notes.items()}
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
    return notes, sentence


def trained_on(method: str) -> str:
    """What the learned weights of ``method`` were trained on (``MethodInfo.trained_on``), or ``""``."""
    entry = _entry(method)
    return entry.info.trained_on if entry is not None else ""


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
