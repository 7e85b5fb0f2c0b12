"""Pairs, datasets and the dataset registry.

A *pair* is an anatomical image ``a`` (MRI, or visible) and a second image ``b``
(PET/SPECT in pseudo-colour RGB, CT, or infrared) with an id, a task, an
optional subject/series group and the paths it came from.  A *dataset* is an
ordered list of pairs plus versioned splits (``train`` / ``test`` / ...) and the
metadata its manifest or ``dataset.json`` declares (title, task, modalities,
licence, citation, groups; :mod:`fusionbench.data.manifest`).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from fusionbench.registry import Registry

if TYPE_CHECKING:
    from .manifest import DatasetMetadata


#: runs of the characters a dataset name may hold that a file name may not
_PATH_CHARACTERS = re.compile(r"[:/\\]+")
#: the same, with control characters (a newline, NUL): what a file stem replaces
_UNSAFE_IN_FILE_NAMES = re.compile(r"[:/\\\x00-\x1f\x7f]+")
#: the longest stem :func:`dataset_file_stem` gives, in bytes (a file name holds 255, and the report adds to it)
STEM_BYTES = 120


def _folder_parts(name: str) -> list[str]:
    """The components of a folder dataset's path (``folder:/a/b`` → ``["a", "b"]``); ``[]`` for another name."""
    family, _, path = name.partition(":")
    return [p for p in path.replace("\\", "/").split("/") if p] if family == "folder" else []


def dataset_file_stem(name: str) -> str:
    """A dataset name as a file or folder name (report tables and figures, exported and external images).

    A registered name (``harvard-mri-pet``) is kept as it is; a folder dataset (``folder:/data/x/y``) becomes
    ``folder_`` and its folder's own name, ``-`` and the first 8 hex digits of the name's sha256 (``folder_y-1a2b3c4d``);
    any other name with ``:``, ``/`` or ``\\`` has each run of them replaced by ``_`` and the same digits
    appended.  So two names never share a stem: until session 28 ``folder:x/y`` and ``folder:x_y`` both
    became ``folder_x_y``, and one dataset's tables, figures and exported images overwrote the other's.
    Control characters are replaced too, and ``.``, ``..`` and any name over :data:`STEM_BYTES` bytes (the
    readable part cut to fit) get the digits as well: a stem is always one file name, short enough for the
    report's ``grid_<stem>_<pair>.png`` (a 250-byte folder name made the report fail; ``..`` from a store
    made ``export-fused`` write outside its folder; an untrusted-input audit, session 31).
    """
    if not _UNSAFE_IN_FILE_NAMES.search(name) and name not in (".", "..") and len(name.encode()) <= STEM_BYTES:
        return name
    parts = _folder_parts(name)
    # a folder dataset by its folder's own name (an absolute path can exceed a file name's 255 bytes)
    readable = _UNSAFE_IN_FILE_NAMES.sub("_", f"folder_{parts[-1]}" if parts else name)
    return f"{fit_bytes(readable, STEM_BYTES - 9)}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def fit_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, never inside a character."""
    return text.encode()[:limit].decode(errors="ignore")


#: the longest file name (without its suffix) :func:`pair_file_name` gives, in bytes: 255 less room for a suffix
FILE_NAME_BYTES = 240


def pair_file_name(*parts: str) -> str:
    """``parts`` joined by ``_`` as one file name (suffix not included): as it is up to :data:`FILE_NAME_BYTES`,
    else cut and followed by ``-`` and 8 hex digits of the whole name's sha256, so that it stays unique (a pair
    id is a file's stem, up to 251 bytes, and a report names figures ``grid_<dataset stem>_<pair>``)."""
    name = "_".join(parts)
    if len(name.encode()) <= FILE_NAME_BYTES:
        return name
    return f"{fit_bytes(name, FILE_NAME_BYTES - 9)}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def legacy_dataset_file_stems(name: str) -> list[str]:
    """The sub-folder names an ``export-fused`` before session 31 may have given dataset ``name``, so that its
    results folders are still read: before session 28 not unique (``:`` and ``/`` became ``_``); in sessions
    28-30 a long folder name was not cut (:func:`dataset_file_stem` cuts it to fit :data:`STEM_BYTES`).  A folder dataset was then named
    by its path as typed: for ``folder:/a/b/ds`` the candidates are the absolute form (``folder_a_b_ds``) and
    every trailing part of it as a relative path (``folder_ds``, ``folder_b_ds``), also typed with ``./`` or a
    trailing ``/`` (``folder_._ds``, ``folder_ds_``), longest first."""
    stems = [_PATH_CHARACTERS.sub("_", name)]
    parts = _folder_parts(name)
    if _PATH_CHARACTERS.search(name):  # sessions 28-30: the readable part uncut (a long folder name is cut now)
        readable = f"folder_{parts[-1]}" if parts else name
        stems.append(f"{_PATH_CHARACTERS.sub('_', readable)}-{hashlib.sha256(name.encode()).hexdigest()[:8]}")
    for k in range(len(parts) - 1, 0, -1):
        tail = "/".join(parts[-k:])
        stems += [_PATH_CHARACTERS.sub("_", f"folder:{text}") for text in (tail, f"./{tail}", f"{tail}/")]
    return list(dict.fromkeys(stems))


@dataclass(frozen=True)
class Pair:
    """One registered image pair (paths only; loading is :mod:`fusionbench.io`'s job)."""

    dataset: str
    id: str
    task: str | None  # None: a folder without a declared task
    a_path: Path
    b_path: Path
    sha256: str = ""  # combined digest of the two files (filled from the manifest or computed)
    group: str | None = None  # subject or series the pair belongs to (Dataset.group_level); None if unknown

    @property
    def key(self) -> str:
        """``dataset/id``: the pair's key across datasets."""
        return f"{self.dataset}/{self.id}"


@dataclass
class Dataset:
    """A named, ordered set of pairs with optional split membership."""

    name: str
    pairs: list[Pair]
    splits: dict[str, list[str]] = field(default_factory=dict)
    split_version: str = ""
    description: str = ""
    problems: list[str] = field(default_factory=list)  # one line per file that could not form a pair (io.InputProblem)
    task: str | None = None  # the task of every pair; None when a folder declares none
    title: str = ""  # the name reports print (e.g. "MRI-PET (Harvard AANLIB)")
    modalities: dict[str, str] = field(default_factory=dict)  # {"a": "MRI", "b": "PET"}
    licence: str = ""
    citation: str = ""
    source_url: str = ""
    group_level: str | None = None  # what Pair.group is ("series", "subject"); None if there are no groups
    group_note: str = ""  # what is known (and unknown) about the groups

    @classmethod
    def from_metadata(cls, name: str, pairs: list[Pair], meta: "DatasetMetadata", **kwargs: Any) -> "Dataset":
        """A dataset whose descriptive fields come from a manifest's or ``dataset.json``'s metadata."""
        return cls(name, pairs, task=kwargs.pop("task", meta.task), title=meta.title or name, modalities=dict(meta.modalities),
                   licence=meta.licence, citation=meta.citation, source_url=meta.source_url,
                   group_level=meta.group_level if meta.groups else None, group_note=meta.group_note,
                   description=kwargs.pop("description", meta.description), **kwargs)

    @property
    def groups(self) -> dict[str, str | None]:
        """``{pair_id: group}`` (``None`` where unknown)."""
        return {p.id: p.group for p in self.pairs}

    def select(self, split: str | None = None) -> list[Pair]:
        """Pairs of ``split`` (``None`` or ``'all'``: every pair)."""
        if split in (None, "all"):
            return list(self.pairs)
        if split not in self.splits:
            raise KeyError(f"dataset {self.name!r} has no split {split!r} (has: {', '.join(self.splits) or 'none'})")
        wanted = set(self.splits[split])
        return [p for p in self.pairs if p.id in wanted]

    def __len__(self) -> int:
        return len(self.pairs)


@dataclass(frozen=True)
class DatasetInfo:
    """What the registry knows about a dataset without building it."""

    name: str
    task: str = ""
    description: str = ""
    needs_download: bool = False
    title: str = ""
    splits: tuple[str, ...] = ()  # split names, where known before building (released datasets)
    fetch_bundle: str = ""  # ``fusionbench fetch BUNDLE`` downloads it ("" if nothing to fetch)
    licence: str = ""
    citation: str = ""


DATASETS: Registry[DatasetInfo] = Registry("dataset", "fusionbench.datasets", "fusionbench.data.builtin")


def register_dataset(name: str, *, task: str = "", description: str = "", needs_download: bool = False,
                     prefix: bool = False, module: str | None = None, override: bool = False,
                     **info: Any) -> Callable[[Callable[..., Dataset]], Callable[..., Dataset]]:
    """Register a dataset factory ``fn(data_dir=None, **kw) -> Dataset``.

    With ``prefix=True`` the name is a family such as ``folder`` and the factory
    receives the text after the colon: ``folder:PATH`` → ``fn(arg='PATH', ...)``.
    ``info`` sets further :class:`DatasetInfo` fields (``title``, ``splits``, ...);
    ``module`` is the registering module (default: the factory's), which decides
    the source the registry records (:func:`fusionbench.registry.current_source`);
    ``override=True`` replaces a dataset or family of that name on purpose (otherwise
    a clash raises, unless the factory is defined again where it was first: a
    notebook cell run again).
    A released dataset is not registered here by hand: it is a manifest file
    (:func:`fusionbench.data.register_manifest`).
    """
    def decorator(fn: Callable[..., Dataset]) -> Callable[..., Dataset]:
        info_obj = DatasetInfo(name=name, task=task,
                               description=description or (fn.__doc__ or "").strip().split("\n")[0],
                               needs_download=needs_download, **info)
        if prefix:
            DATASETS.add_prefix(name, fn, info_obj, override=override, module=module)
        else:
            DATASETS.add(name, fn, info_obj, override=override, module=module)
        return fn

    return decorator


def create_dataset(name: str, data_dir: str | Path | None = None, **kwargs: Any) -> Dataset:
    """Build the dataset ``name`` (``folder:PATH`` for a generic folder)."""
    entry = DATASETS.get(name)
    if entry.name.endswith(":"):
        return entry.obj(arg=name.split(":", 1)[1], data_dir=data_dir, **kwargs)
    return entry.obj(data_dir=data_dir, **kwargs)


def dataset_info(name: str) -> DatasetInfo:
    """Registry metadata of ``name`` (for ``folder:PATH``, the folder family's)."""
    return DATASETS.get(name).info


def list_datasets(filter: str | Iterable[str] = "*", exclude_filters: str | Iterable[str] = ()) -> list[str]:
    """Registered dataset names (``folder:PATH`` is always available as well)."""
    return DATASETS.list(filter, exclude_filters)
