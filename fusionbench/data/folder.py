"""``folder:PATH``: any folder with ``a/`` (anatomical or visible) and ``b/`` (the other image).

The dataset's name is ``folder:`` and the folder's absolute path (:func:`folder_dataset_name`), however PATH
was typed.

Files pair by name (the stem before the extension); a file without a partner,
a file that is not an image (by extension), and a pair that no method could
read, judged from the two files' headers (unidentified format, 16-bit, alpha
channel, sizes that differ: :func:`fusionbench.io.check_pair_files`), is
reported as one line in ``Dataset.problems`` and skipped, so a run names it
once instead of once per method.  Every pair is in split ``test``.

An optional ``PATH/dataset.json`` declares what the folder is, with the same
keys as a released manifest's metadata (:mod:`fusionbench.data.manifest`), all
optional::

    {"task": "MRI-PET", "modalities": {"a": "MRI", "b": "PET"},
     "title": "...", "licence": "...", "citation": "...", "source_url": "...",
     "groups": {"pair_id": "subject-or-series"}, "group_level": "subject", "group_note": "..."}

A malformed file is one :class:`~fusionbench.data.manifest.ManifestError`
naming it.  Without a declared task the pairs' task is ``None``: methods
restricted to some tasks do not apply to them.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from .base import Dataset, Pair, register_dataset
from .manifest import DatasetMetadata, ManifestError, parse_metadata

METADATA_FILE = "dataset.json"


def read_folder_metadata(root: Path, pair_ids: set[str] | None = None) -> DatasetMetadata:
    """``root/dataset.json`` validated (empty metadata when the file is absent)."""
    path = root / METADATA_FILE
    if not path.is_file():
        return DatasetMetadata()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(path, f"not valid JSON ({exc})") from None
    return parse_metadata(doc, path, pair_ids=pair_ids)


def folder_dataset_name(root: str | Path) -> str:
    """The dataset name of the folder ``root``: ``folder:`` and its absolute, resolved path.

    One folder is one dataset however it is typed (``folder:ds``, ``folder:ds/``, ``folder:./ds`` or its
    absolute path, from any working directory); until session 28 the name was the text as typed, so each
    spelling was a dataset of its own (everything fused again, the same pairs reported twice), and one relative
    spelling run from two directories named two folders.
    """
    path = Path(root).expanduser()
    try:
        return f"folder:{path.resolve(strict=True)}"
    except FileNotFoundError:  # nothing there, or a link that leads nowhere: the path as typed (absolute, normalised),
        # so that the folder check names it and says why; until session 32 a broken link was named by its missing
        # target ("/nonexistent: folder does not exist", a path the user never typed)
        return f"folder:{os.path.abspath(path)}"
    except (OSError, RuntimeError):  # a symlink loop: named by its absolute path; the folder check then says why
        return f"folder:{path.absolute()}"


def earlier_names(name: str, known: Iterable[str]) -> list[str]:
    """The names among ``known`` (a store's datasets) that name the folder of ``name`` the way fusionbench did
    before session 28: ``folder:`` and the path as typed, relative or not resolved (``folder:ds``, ``folder:ds/``),
    which resolves, from the working directory, to the folder ``name`` names."""
    if not name.startswith("folder:"):
        return []
    out = []
    for other in known:
        family, _, path = other.partition(":")
        if family == "folder" and other != name and path.strip():
            try:
                if folder_dataset_name(path) == name:
                    out.append(other)
            except (OSError, RuntimeError):  # a ~user that does not exist (expanduser): not this folder
                continue
    return out


def _why_not_a_folder(path: Path) -> str:
    """Why ``path``, which is not a folder, cannot be one: a file, a symbolic link that leads nowhere (broken, or
    a loop: ``exists()`` is false for both, and "does not exist" sent the user looking for a missing folder that
    ``ls`` shows), or nothing at all."""
    if path.exists():
        return "not a folder"
    if path.is_symlink():
        return "a symbolic link that leads to no folder (broken, or a loop)"
    return "folder does not exist"


@register_dataset("folder", prefix=True, task="",
                  description="folder:PATH — PATH/a (anatomical/visible) and PATH/b (other), matching names; "
                              "task etc. from PATH/dataset.json")
def folder_dataset(arg: str, data_dir: str | Path | None = None, task: str | None = None) -> Dataset:
    """Build ``folder:arg``; ``task`` overrides the task ``dataset.json`` declares."""
    if not arg.strip():
        raise FileNotFoundError("folder: needs the folder's path (folder:PATH, PATH with sub-folders a/ and b/)")
    root = Path(arg).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: {_why_not_a_folder(root)} (a folder dataset is PATH with sub-folders a/ and b/)")
    if not (root / "a").is_dir() or not (root / "b").is_dir():
        raise FileNotFoundError(f"{root}: a folder dataset needs sub-folders a/ and b/")
    problems: list[str] = []
    from fusionbench.io import ImageError, InputProblem, check_pair_files, index_images, sha256_file

    a_files, b_files = index_images(root / "a", problems), index_images(root / "b", problems)
    from fusionbench.registry import natural_key

    stems = sorted(set(a_files) | set(b_files), key=natural_key)
    meta = read_folder_metadata(root, pair_ids=set(stems))
    pair_task = task if task is not None else meta.task
    name = folder_dataset_name(root)
    pairs = []
    for stem in stems:
        if stem not in b_files:
            problems.append(InputProblem(a_files[stem], f"missing partner in {root / 'b'}, skipped"))
            continue
        if stem not in a_files:
            problems.append(InputProblem(b_files[stem], f"missing partner in {root / 'a'}, skipped"))
            continue
        try:
            check_pair_files(a_files[stem], b_files[stem])
        except ImageError as exc:
            problems.append(InputProblem(exc.path, f"{exc.reason}, skipped"))
            continue
        digest = sha256_file(a_files[stem])[:32] + sha256_file(b_files[stem])[:32]
        pairs.append(Pair(name, stem, pair_task, a_files[stem], b_files[stem], sha256=digest,
                          group=meta.groups.get(stem)))
    return Dataset.from_metadata(name, pairs, meta, task=pair_task, splits={"test": [p.id for p in pairs]},
                                 split_version="folder", problems=problems)
