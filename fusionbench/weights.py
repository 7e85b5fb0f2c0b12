"""Third-party weights: a registry of pinned files and the cache they live in.

A method that needs files declares them where it is defined::

    register_weights("mdl", filename="...", sha256="...", url="https://...",
                     method_dir="mdl")

and lists the name in ``register_method(..., weights=("mdl",))``.  Files are
kept in ``$FUSIONBENCH_HOME/weights/<method_dir>/<filename>`` (default
``~/.cache/fusionbench/weights``).  ``fusionbench fetch weights NAME`` downloads
the official file and checks the pinned sha256; ``--from DIR`` copies it from a
folder laid out like ``../shared/official`` (``<method_dir>/weights/<file>``)
with the same check.  A file whose sha256 differs is refused.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .config import weights_dir
from .io import sha256_file


@dataclass(frozen=True)
class WeightFile:
    """One pinned third-party file."""

    name: str
    filename: str
    sha256: str
    url: str
    method_dir: str
    description: str = ""


WEIGHTS: dict[str, WeightFile] = {}


class WeightsMissingError(RuntimeError):
    """Raised when a method needs weights that are not in the cache."""


class ChecksumError(RuntimeError):
    """Raised when a weight file does not match its pinned sha256."""


def register_weights(
    name: str, *, filename: str, sha256: str, url: str, method_dir: str, description: str = ""
) -> WeightFile:
    """Declare a pinned weight file under ``name`` (idempotent for identical declarations)."""
    wf = WeightFile(name, filename, sha256.lower(), url, method_dir, description)
    if name in WEIGHTS and WEIGHTS[name] != wf:
        raise ValueError(f"weights {name!r} already declared differently")
    WEIGHTS[name] = wf
    return wf


def cache_dir() -> Path:
    return weights_dir()


def _known(name: str) -> WeightFile:
    _ensure_declared()
    try:
        return WEIGHTS[name]
    except KeyError:
        raise KeyError(f"unknown weights {name!r}; known: {', '.join(sorted(WEIGHTS)) or 'none'}") from None


def _ensure_declared() -> None:
    # Weight declarations live in the method modules; importing the registry loads them.
    from .method_registry import METHODS

    METHODS.ensure_loaded()


def cached_path(name: str) -> Path:
    """Where the file of ``name`` lives in the cache (it may not exist yet)."""
    wf = _known(name)
    return cache_dir() / wf.method_dir / wf.filename


def is_cached(name: str) -> bool:
    return cached_path(name).is_file()


def weights_path(name: str) -> Path:
    """Path of a cached weight file; raises :class:`WeightsMissingError` with the fetch command."""
    path = cached_path(name)
    if not path.is_file():
        raise WeightsMissingError(missing_weights_message([name]) or f"weights {name!r} missing")
    return path


def expand_weight_names(name: str) -> list[str]:
    """``all`` → every declared file; a declared name → itself; a group such as ``sdnet`` → ``sdnet.*``."""
    _ensure_declared()
    if name == "all":
        return sorted(WEIGHTS)
    if name in WEIGHTS:
        return [name]
    group = sorted(n for n in WEIGHTS if n.startswith(name + "."))
    if not group:
        raise KeyError(f"unknown weights {name!r}; known: {', '.join(sorted(WEIGHTS)) or 'none'}")
    return group


def missing_weights_message(names: Iterable[str]) -> str | None:
    """One line saying which weights are missing and how to fetch them, or ``None``."""
    missing = [n for n in names if not is_cached(n)]
    if not missing:
        return None
    groups = sorted({n.split(".")[0] if n.split(".")[0] not in WEIGHTS else n for n in missing})
    cmds = "; ".join(f"fusionbench fetch weights {g}" for g in groups)
    return f"weights not in cache ({', '.join(missing)}): run `{cmds}` (or add `--from DIR` for a local copy)"


def _verify(path: Path, wf: WeightFile) -> None:
    digest = sha256_file(path)
    if digest != wf.sha256:
        raise ChecksumError(f"{path}: sha256 {digest} does not match the pinned {wf.sha256} of weights {wf.name!r}; refused")


def fetch_weights(name: str, *, from_dir: str | Path | None = None, force: bool = False) -> Path:
    """Put the weight file ``name`` in the cache and return its path.

    With ``from_dir`` the file is copied from ``from_dir/<method_dir>/weights/<filename>``;
    otherwise it is downloaded with pooch from the pinned URL.  Either way its
    sha256 must match the pinned value.
    """
    wf = _known(name)
    target = cached_path(name)
    if target.is_file() and not force:
        _verify(target, wf)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".part")
    if from_dir is not None:
        source = Path(from_dir) / wf.method_dir / "weights" / wf.filename
        if not source.is_file():
            raise FileNotFoundError(f"{source}: not found (expected <DIR>/{wf.method_dir}/weights/{wf.filename})")
        shutil.copyfile(source, tmp)
    else:
        import pooch

        pooch.retrieve(wf.url, known_hash=None, fname=tmp.name, path=tmp.parent, progressbar=False)
    try:
        _verify(tmp, wf)
    except ChecksumError:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(target)
    return target


def all_weight_names() -> list[str]:
    _ensure_declared()
    return sorted(WEIGHTS)
