"""Dataset manifests: one JSON file per released dataset, and the metadata schema ``folder:`` shares.

A released dataset is one file ``fusionbench/data/manifests/<name>.json`` (or any
file given to :func:`fusionbench.data.register_manifest`).  The data, fetch, CLI
and report layers all read it; registering the released datasets is a loop over
these files.  Fields (``docs/datasets.md`` has an example):

* metadata, shared with ``folder:PATH/dataset.json`` (all optional there):
  ``title``, ``description``, ``task`` (``MRI-PET``, ``MRI-SPECT``, ``MRI-CT``,
  ``IR-VIS`` or another ``A-B`` name), ``modalities`` (``{"a": ..., "b": ...}``),
  ``licence``, ``citation``, ``source_url``, ``groups`` (``{pair_id: group}``,
  subject or series), ``group_level`` and ``group_note`` (what a group is, and
  what is unknown);
* released only: ``schema`` (1), ``name``, ``pairs`` (``id``, ``a``, ``b`` paths
  relative to the data folder, ``a_sha256``, ``b_sha256``), ``splits``
  (``{split: [ids]}``), ``split`` (version and rule), ``layout`` (path patterns
  with ``{id}``, used by ``scripts/make_manifests.py``) and ``fetch``
  (``bundle`` — the name of ``fusionbench fetch BUNDLE`` —, ``base_url``,
  ``remap`` from our layout to the source's).

Every problem with a file is one :class:`ManifestError` naming the file.
"""
from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

SPLIT_VERSION = "v1"
SCHEMA_VERSION = 1
KNOWN_TASKS = ("MRI-PET", "MRI-SPECT", "MRI-CT", "IR-VIS")
_TASK_PATTERN = re.compile(r"^[A-Za-z0-9]+(-[A-Za-z0-9]+)+$")

# key → (type, description) of the metadata shared by released manifests and folder dataset.json files
METADATA_FIELDS: dict[str, type | tuple[type, ...]] = {
    "title": str, "description": str, "task": str, "modalities": dict, "licence": str, "citation": str,
    "source_url": str, "groups": dict, "group_level": (str, type(None)), "group_note": str,
}
RELEASED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "schema": int, "name": str, "pairs": list, "splits": dict, "split": dict, "layout": dict, "fetch": dict,
}
RELEASED_REQUIRED = ("schema", "name", "title", "task", "modalities", "licence", "citation", "source_url", "pairs",
                     "splits")
PAIR_KEYS = ("id", "a", "b", "a_sha256", "b_sha256")


class ManifestError(ValueError):
    """A manifest or ``dataset.json`` that does not follow the schema; the message names the file."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class DatasetMetadata:
    """What a dataset says about itself (released manifest or ``dataset.json``); every field optional."""

    title: str = ""
    description: str = ""
    task: str | None = None
    modalities: dict[str, str] = field(default_factory=dict)
    licence: str = ""
    citation: str = ""
    source_url: str = ""
    groups: dict[str, str] = field(default_factory=dict)
    group_level: str | None = None
    group_note: str = ""


@dataclass(frozen=True)
class FetchSpec:
    """Where ``fusionbench fetch BUNDLE`` downloads a dataset's files from."""

    bundle: str
    base_url: str
    remap: dict[str, str]


@dataclass(frozen=True)
class DatasetManifest:
    """One released dataset: its metadata, pairs, splits and fetch source, read from ``path``."""

    name: str
    metadata: DatasetMetadata
    pairs: tuple[dict[str, str], ...]
    splits: dict[str, list[str]]
    split_info: dict[str, Any]
    layout: dict[str, str]
    fetch: FetchSpec | None
    path: Path

    @property
    def split_version(self) -> str:
        return str(self.split_info.get("version", ""))


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_task(task: str, path: str | Path) -> str:
    for known in KNOWN_TASKS:
        if task != known and re.sub(r"[^a-z0-9]", "", task.lower()) == re.sub(r"[^a-z0-9]", "", known.lower()):
            raise ManifestError(path, f"task {task!r} is spelled differently from the known task {known!r}; use {known!r}")
    if not _TASK_PATTERN.match(task):
        raise ManifestError(path, f"task {task!r} must look like A-B (known: {', '.join(KNOWN_TASKS)})")
    return task


def parse_metadata(doc: Any, path: str | Path, *, extra: dict[str, type | tuple[type, ...]] | None = None,
                   pair_ids: set[str] | None = None) -> DatasetMetadata:
    """Validate the shared metadata fields of ``doc`` (read from ``path``) and return them.

    Unknown keys are an error (with a suggestion), so that a typo such as
    ``"license"`` is not silently ignored.  ``extra`` lists further allowed
    keys; ``pair_ids``, when given, are the ids ``groups`` may name.
    """
    if not isinstance(doc, dict):
        raise ManifestError(path, f"expected a JSON object, got {type(doc).__name__}")
    allowed = {**METADATA_FIELDS, **(extra or {})}
    for key, value in doc.items():
        if key not in allowed:
            raise ManifestError(path, f"unknown key {key!r}{_suggest(key, list(allowed))}; "
                                      f"allowed: {', '.join(sorted(allowed))}")
        if not isinstance(value, allowed[key]):
            want = allowed[key]
            names = " or ".join(t.__name__ for t in want) if isinstance(want, tuple) else want.__name__
            raise ManifestError(path, f"{key!r} must be {names.replace('NoneType', 'null')}, got {type(value).__name__}")
    task = doc.get("task")
    if task is not None:
        _check_task(task, path)
    modalities = doc.get("modalities", {})
    bad = set(modalities) - {"a", "b"}
    if bad or not all(isinstance(v, str) and v for v in modalities.values()):
        raise ManifestError(path, 'modalities must be {"a": NAME, "b": NAME} with non-empty strings')
    groups = doc.get("groups", {})
    if not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in groups.values()):
        raise ManifestError(path, "groups must map pair ids to group names (strings)")
    if pair_ids is not None:
        unknown = sorted(set(groups) - pair_ids)
        if unknown:
            raise ManifestError(path, f"groups names {len(unknown)} pair(s) not in the dataset, first: {unknown[0]!r}")
    return DatasetMetadata(
        title=doc.get("title", ""), description=doc.get("description", ""), task=task,
        modalities=dict(modalities), licence=doc.get("licence", ""), citation=doc.get("citation", ""),
        source_url=doc.get("source_url", ""), groups={str(k): str(v) for k, v in groups.items()},
        group_level=doc.get("group_level"), group_note=doc.get("group_note", ""),
    )


def parse_manifest(doc: Any, path: str | Path) -> DatasetManifest:
    """Validate a released dataset's manifest (already parsed JSON) read from ``path``."""
    if not isinstance(doc, dict):
        raise ManifestError(path, f"expected a JSON object, got {type(doc).__name__}")
    missing = [k for k in RELEASED_REQUIRED if k not in doc]
    if missing:
        raise ManifestError(path, f"missing required key(s): {', '.join(missing)}")
    if doc["schema"] != SCHEMA_VERSION:
        raise ManifestError(path, f"schema {doc['schema']!r} is not supported (this version reads {SCHEMA_VERSION})")
    name = doc["name"]
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
        raise ManifestError(path, f"name {name!r} must be lower-case letters, digits, '.', '_' or '-'")
    pairs = doc.get("pairs")
    if not isinstance(pairs, list) or not pairs:
        raise ManifestError(path, "pairs must be a non-empty list")
    ids: list[str] = []
    for i, rec in enumerate(pairs):
        if not isinstance(rec, dict) or any(not isinstance(rec.get(k), str) or not rec.get(k) for k in PAIR_KEYS):
            raise ManifestError(path, f"pair {i} must have string fields {', '.join(PAIR_KEYS)}")
        for key in ("a_sha256", "b_sha256"):
            if not re.fullmatch(r"[0-9a-f]{64}", rec[key]):
                raise ManifestError(path, f"pair {rec['id']!r}: {key} is not a hex sha256")
        ids.append(rec["id"])
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ManifestError(path, f"pair id {dup!r} appears twice")
    metadata = parse_metadata(doc, path, extra=RELEASED_FIELDS, pair_ids=set(ids))
    splits = doc["splits"]
    for split, members in splits.items():
        if not isinstance(members, list) or not set(members) <= set(ids):
            raise ManifestError(path, f"split {split!r} must be a list of the dataset's pair ids")
    fetch = None
    if "fetch" in doc:
        spec = doc["fetch"]
        if not isinstance(spec.get("bundle"), str) or not isinstance(spec.get("base_url"), str) \
                or not isinstance(spec.get("remap"), dict):
            raise ManifestError(path, 'fetch must be {"bundle": NAME, "base_url": URL, "remap": {ours: theirs}}')
        fetch = FetchSpec(spec["bundle"], spec["base_url"], dict(spec["remap"]))
    return DatasetManifest(name=name, metadata=metadata, pairs=tuple(pairs),
                           splits={k: list(v) for k, v in splits.items()}, split_info=dict(doc.get("split", {})),
                           layout=dict(doc.get("layout", {})), fetch=fetch, path=Path(path))


def load_manifest(path: str | Path) -> DatasetManifest:
    """Read and validate one manifest file; any problem is one :class:`ManifestError` naming it."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(path, "file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(path, f"not valid JSON ({exc})") from None
    return parse_manifest(doc, path)


def manifest_dir() -> Path:
    """The folder of the committed manifests (inside the installed package)."""
    return Path(str(resources.files("fusionbench.data").joinpath("manifests")))


@lru_cache(maxsize=None)
def released_manifests() -> dict[str, DatasetManifest]:
    """Every committed manifest, by dataset name (file order: natural by file name)."""
    out: dict[str, DatasetManifest] = {}
    for path in sorted(manifest_dir().glob("*.json")):
        m = load_manifest(path)
        if m.name in out:
            raise ManifestError(path, f"dataset {m.name!r} is also declared in {out[m.name].path}")
        out[m.name] = m
    return out


# ---------------------------------------------------------------- views in the shape of the former v1 files
def manifest() -> dict[str, Any]:
    """``{"version", "datasets": {name: {"task", "a_modality", "b_modality", "pairs"}}}`` (the v1 manifest's shape)."""
    return {"version": SPLIT_VERSION, "datasets": {
        name: {"task": m.metadata.task, "a_modality": m.metadata.modalities.get("a", ""),
               "b_modality": m.metadata.modalities.get("b", ""), "pairs": list(m.pairs)}
        for name, m in released_manifests().items()}}


def splits() -> dict[str, Any]:
    """``{"version", "seed", "test_fraction", "datasets": {name: {split: [ids]}}}`` (the v1 split file's shape)."""
    infos = [m.split_info for m in released_manifests().values() if "seed" in m.split_info]
    first = infos[0] if infos else {}
    return {"version": SPLIT_VERSION, "seed": first.get("seed"), "test_fraction": first.get("test_fraction"),
            "datasets": {name: {k: list(v) for k, v in m.splits.items()} for name, m in released_manifests().items()}}

