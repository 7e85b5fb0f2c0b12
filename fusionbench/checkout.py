"""Which commit of fusionbench this code is: that of the git checkout it runs from (an editable install), or
``None`` for an installed copy. Never the commit of some other repository that happens to hold the copy (a venv
inside a user's project) or that the command was started in (the current folder): a run, its report and a
throughput measurement all record fusionbench's own commit through :func:`code_commit`.

A checkout whose code differs from its commit (uncommitted edits or new files under ``fusionbench/``,
``methods/`` or ``metrics/``, the folders that are installed) records the commit with :data:`DIRTY` appended,
like ``git describe --dirty``, except that a new file git does not ignore counts too (a new method module
changes results; ``git describe`` counts only tracked files): its results were not made by the commit's code
(before session 34 nothing said so)."""
from __future__ import annotations

import subprocess
from pathlib import Path

#: how many hex digits a commit shows in the report's prose (``git rev-parse --short``'s usual length)
SHORT = 7
#: appended to the commit of a checkout whose package code differs from it
DIRTY = "-dirty"
#: the checkout's folders whose changes make it :data:`DIRTY` (the installed packages; tests, docs and reports
#: do not change a result)
CODE_FOLDERS = ("fusionbench", "methods", "metrics")


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """``git ARGS`` run in ``folder`` (output captured as text; at most 5 s)."""
    return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=5)


def _checkout() -> tuple[Path, str] | None:
    """``(root, HEAD commit)`` of the fusionbench checkout this module lies in, or ``None``: an installed copy, a
    copy inside some other git repository (the checkout's root must be this package's parent, and git must track
    this file), no ``git`` on the PATH, or git failing or taking over 5 s."""
    here = Path(__file__).resolve()
    try:
        found = _git(here.parent, "rev-parse", "--show-toplevel", "HEAD")
        lines = found.stdout.splitlines()
        if found.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != here.parent.parent:
            return None
        if _git(here.parent, "ls-files", "--error-unmatch", here.name).returncode != 0 or not lines[1].strip():
            return None
        return here.parent.parent, lines[1].strip()
    except (OSError, subprocess.SubprocessError):
        return None


def code_root() -> Path | None:
    """The root folder of the fusionbench checkout this code runs from (where ``asv.conf.json`` and
    ``benchmarks/`` lie), or ``None`` for an installed copy (:func:`code_commit`'s rules)."""
    found = _checkout()
    return found[0] if found else None


def code_dirty(root: Path) -> bool:
    """Whether the checkout at ``root`` has uncommitted changes or untracked (not ignored) files under
    :data:`CODE_FOLDERS`; ``False`` where git cannot tell."""
    try:
        status = _git(root, "status", "--porcelain", "--", *CODE_FOLDERS)
    except (OSError, subprocess.SubprocessError):
        return False
    return status.returncode == 0 and bool(status.stdout.strip())


def code_commit() -> str | None:
    """The full commit of the fusionbench checkout this module lies in, with :data:`DIRTY` appended where its
    code differs from it (:func:`code_dirty`), or ``None`` (:func:`code_root`'s cases)."""
    found = _checkout()
    if found is None:
        return None
    root, sha = found
    return sha + DIRTY if code_dirty(root) else sha


def short_form(commit: str | None) -> str | None:
    """A recorded commit's first :data:`SHORT` hex digits, its :data:`DIRTY` mark kept; ``None`` for none."""
    if not commit:
        return None
    dirty = commit.endswith(DIRTY)
    sha = commit[: -len(DIRTY)] if dirty else commit
    return sha[:SHORT] + (DIRTY if dirty else "")


def short_commit() -> str | None:
    """:func:`code_commit` in :func:`short_form`, or ``None``."""
    return short_form(code_commit())
