"""External results: a folder of fused images scored like a registered method.

``fusionbench run --methods mine=results:PATH`` (or, in the API,
:func:`parse_results_spec`) turns a folder of fused images into a method of the
run.  ``PATH`` holds one fused image per pair, named by the pair id
(``<pair id>.png``; any other format of ``fusionbench.io.IMAGE_SUFFIXES`` is read too), either directly
or in one sub-folder per dataset (``PATH/<dataset>/<pair id>.png``, which wins
when it exists).  An optional ``PATH/method.json`` describes the method::

    {"display_name": "Mine", "family": "external", "citation": "...",
     "colour": "luma", "licence": "CC-BY-4.0"}

``colour`` is ``"luma"`` (the images may be colour; they are scored on their
BT.601 luma exactly as fusionbench's own colour results) or ``"grey"`` (every
image must be grey; a colour image is refused).

The ``method_key`` of a results folder is the sha256 of its files (names and
contents, ``method.json`` included): change one image and every pair is scored
again, as when a registered method's version is bumped.

Each image is checked as the runner checks its inputs (exists, readable,
8-bit, no alpha; same size as the pair's sources); a missing or bad image is
one line naming the file, recorded in ``failures``, and the rest go on.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .data.base import dataset_file_stem, legacy_dataset_file_stems
from .fused_cache import EXTERNAL_KEY_PREFIX
from .io import IMAGE_SUFFIXES, ImageError, load_image, sha256_file

RESULTS_PREFIX = "results:"
METADATA_FILE = "method.json"
_METADATA_KEYS = {"display_name", "family", "citation", "colour", "licence", "description"}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")


class ResultsFolderError(ValueError):
    """A results folder (or its ``method.json``) that cannot be used; the message names the path."""


@dataclass(frozen=True)
class ResultsFolder:
    """A folder of fused images acting as one method of a run."""

    name: str
    root: Path
    key: str
    display_name: str
    family: str = "external"
    citation: str = ""
    colour: Literal["luma", "grey"] = "luma"
    licence: str = ""
    description: str = ""

    @property
    def spec(self) -> str:
        """The ``NAME=results:PATH`` text that names this folder on the command line."""
        return f"{self.name}={RESULTS_PREFIX}{self.root}"

    def image_for(self, dataset: str, pair: str) -> Path | None:
        """The fused image of ``pair`` of ``dataset``, or ``None`` when the folder has none."""
        for folder in self._dataset_folders(dataset) + [self.root]:
            if folder.is_dir():
                for suffix in IMAGE_SUFFIXES:
                    candidate = folder / f"{pair}{suffix}"
                    if candidate.is_file():
                        return candidate
                if folder != self.root:
                    return None  # a per-dataset sub-folder exists: only it is searched
        return None

    def expected_path(self, dataset: str, pair: str) -> Path:
        """Where the image of ``pair`` is looked for first (for the message when it is missing)."""
        return next((sub for sub in self._dataset_folders(dataset) if sub.is_dir()), self.root) / f"{pair}.png"

    def _dataset_folders(self, dataset: str) -> list[Path]:
        """Where a per-dataset sub-folder of ``dataset`` may be: its name now (:func:`dataset_dirname`), then the
        names an older ``export-fused`` gave it (:func:`fusionbench.data.base.legacy_dataset_file_stems`)."""
        names = dict.fromkeys([dataset_dirname(dataset), *legacy_dataset_file_stems(dataset)])
        return [self.root / name for name in names]

    def metadata(self) -> dict[str, Any]:
        """What the results store keeps about this method (display name, family, citation, ...)."""
        return {"display_name": self.display_name, "family": self.family, "citation": self.citation,
                "colour": self.colour, "licence": self.licence, "description": self.description,
                "source": f"{RESULTS_PREFIX}{self.root}"}


def load_result(path: str | Path, source_shape: tuple[int, ...], colour: str = "luma") -> np.ndarray:
    """Read and check one external fused image against its pair's size; raises :class:`ImageError` naming it."""
    image = load_image(path)
    if image.shape[:2] != tuple(source_shape[:2]):
        raise ImageError(path, f"size {image.shape[1]}x{image.shape[0]} differs from the pair's sources "
                               f"({source_shape[1]}x{source_shape[0]})")
    if colour == "grey" and image.ndim == 3:
        raise ImageError(path, f"colour image, but the results folder's {METADATA_FILE} declares colour \"grey\"")
    return image


def dataset_dirname(dataset: str) -> str:
    """A dataset's sub-folder name, unique per name (:func:`fusionbench.data.base.dataset_file_stem`: a registered
    name as it is; ``folder:/x/y`` → ``folder_x_y-<8 hex digits of the name's sha256>``)."""
    return dataset_file_stem(dataset)


def is_results_spec(text: str) -> bool:
    """Whether ``text`` is a ``NAME=results:PATH`` method spec."""
    name, sep, rest = text.partition("=")
    return bool(sep) and rest.startswith(RESULTS_PREFIX)


def folder_key(root: Path) -> str:
    """sha256 over the sorted (relative path, file sha256) of every image and ``method.json`` under ``root``."""
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
                   and (p.suffix.lower() in IMAGE_SUFFIXES or p.name == METADATA_FILE))
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()}\0{sha256_file(path)}\n".encode())
    return EXTERNAL_KEY_PREFIX + digest.hexdigest()[:24]


def _read_metadata(root: Path) -> dict[str, Any]:
    path = root / METADATA_FILE
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultsFolderError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ResultsFolderError(f"{path}: expected a JSON object")
    unknown = sorted(set(meta) - _METADATA_KEYS)
    if unknown:
        raise ResultsFolderError(f"{path}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(_METADATA_KEYS))})")
    if meta.get("colour", "luma") not in ("luma", "grey"):
        raise ResultsFolderError(f"{path}: colour must be \"luma\" or \"grey\", not {meta['colour']!r}")
    bad = [k for k, v in meta.items() if not isinstance(v, str)]
    if bad:
        raise ResultsFolderError(f"{path}: {', '.join(bad)} must be text")
    return meta


def parse_results_spec(spec: str) -> ResultsFolder:
    """``NAME=results:PATH`` → a :class:`ResultsFolder` (reads ``method.json``, hashes the files).

    ``NAME`` is the method's name in the results store (lower-case letters, digits, ``_ . -``).
    """
    name, sep, rest = spec.partition("=")
    name = name.strip()
    if not sep or not rest.startswith(RESULTS_PREFIX):
        raise ResultsFolderError(f"{spec!r}: expected NAME=results:PATH")
    if not _NAME.match(name):
        raise ResultsFolderError(f"{spec!r}: the name {name!r} must be lower-case letters, digits, '_', '.' or '-'")
    text = rest[len(RESULTS_PREFIX):].strip()
    if not text:  # Path("") is the working directory: it was scored, and its failures hid NAME's earlier scores
        raise ResultsFolderError(f"{spec!r}: the results folder's path is missing (expected NAME=results:PATH)")
    root = Path(text).expanduser()
    if not root.is_dir():
        raise ResultsFolderError(f"{root}: results folder not found (method {name})")
    meta = _read_metadata(root)
    return ResultsFolder(
        name=name, root=root.resolve(), key=folder_key(root), display_name=meta.get("display_name", name),
        family=meta.get("family", "external"), citation=meta.get("citation", ""),
        colour=meta.get("colour", "luma"), licence=meta.get("licence", ""), description=meta.get("description", ""),
    )


__all__ = ["IMAGE_SUFFIXES", "RESULTS_PREFIX", "ResultsFolder", "ResultsFolderError", "folder_key",
           "is_results_spec", "load_result", "parse_results_spec"]
