"""Where the learned weights of a method come from, in words a results table can print.

* :func:`weights_note`: ``official weights, sha256-pinned`` for third-party weights of the weights registry
  (:mod:`fusionbench.weights`), or, for weights trained by fusionbench, the schedule read from the provenance
  JSON committed beside them (``<module>.WEIGHTS_DIR/*.json`` whose ``method`` is the registered name:
  ``methods/mopa/weights/mopa.json``, ``methods/swinfusion_weights/mri_pet_spect.json``), or found beside weights
  you trained (``<module>.trained_dir()``). The method registry has no field for this; it is derived from those
  files.
* :func:`trained_on` and ``MethodInfo.trained_for``: what the weights were trained on, and for which tasks.
* :func:`weights_record`: all three as one JSON-able dict. The runner records it in the results store's
  ``method_weights`` table when a run starts, so a report built later, after the weights or the
  environment changed, describes the weights the run used (:func:`recorded_weights`), not those installed now.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from fusionbench.checkout import code_root

OFFICIAL = "official weights, sha256-pinned"


def _entry(method: str):
    from fusionbench.method_registry import METHODS

    return METHODS.find(method)


def provenance_file(method: str) -> tuple[Path, dict] | None:
    """The provenance JSON beside the trained weights of ``method`` (its ``method`` and ``seed`` fields name it,
    :func:`_registered_name`): in the
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
            if isinstance(doc, dict) and _registered_name(doc) == method:
                return path, doc
    return None


def _registered_name(doc: dict) -> str | None:
    """The registered name a provenance JSON describes: its ``method``, with ``.seed<N>`` for a seed above 0 (an
    exported seed's JSON holds ``"method": "mopa.no_mask", "seed": 1``: the weights of ``mopa.no_mask.seed1``;
    until session 38 those never matched, and seed 0 matched any seed's file)."""
    from fusionbench.train.spec import seed_variant  # the one naming rule of training seeds

    method, seed = doc.get("method"), doc.get("seed") or 0
    if not isinstance(method, str):
        return None
    return seed_variant(method, seed) if isinstance(seed, int) and seed > 0 else method


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


def trained_on(method: str) -> str:
    """What the learned weights of ``method`` were trained on (``MethodInfo.trained_on``), or ``""``."""
    entry = _entry(method)
    return entry.info.trained_on if entry is not None else ""


def trained_for(method: str) -> tuple[str, ...]:
    """The tasks the weights of ``method`` were trained for (``MethodInfo.trained_for``; empty: any or unstated)."""
    entry = _entry(method)
    return tuple(entry.info.trained_for) if entry is not None else ()


def weights_record(method: str, root: Path | None = None) -> dict[str, object]:
    """``{"note", "trained_on", "trained_for"}`` of the weights ``method`` has now (:func:`weights_note`, its
    provenance path shown relative to ``root``; :func:`trained_on`, :func:`trained_for`): what the runner records
    in the store's ``method_weights`` table, and what a report says of a method whose run recorded none."""
    return {"note": weights_note(method, root), "trained_on": trained_on(method),
            "trained_for": list(trained_for(method))}


def recorded_weights(meta: dict | None) -> dict[str, object] | None:
    """The :func:`weights_record` a run recorded, from a method's row of the store's ``methods`` table (its
    ``weights`` JSON text, as ``ReportData.methods_meta`` holds it); ``None`` where the row has none (a store
    written before session 35, an external folder's results, or text that does not parse)."""
    text = (meta or {}).get("weights")
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    note, on, tasks = doc.get("note", ""), doc.get("trained_on", ""), doc.get("trained_for", [])
    if not isinstance(note, str) or not isinstance(on, str) or not isinstance(tasks, list):
        return None
    return {"note": note, "trained_on": on, "trained_for": [str(t) for t in tasks]}
