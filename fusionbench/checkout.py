"""Which commit of fusionbench this code is: that of the git checkout it runs from (an editable install), or
``None`` for an installed copy. Never the commit of some other repository that happens to hold the copy (a venv
inside a user's project) or that the command was started in (the current folder): a run, its report and a
throughput measurement all record fusionbench's own commit through :func:`code_commit`."""
from __future__ import annotations

import subprocess
from pathlib import Path

#: how many hex digits a commit shows in the report's prose (``git rev-parse --short``'s usual length)
SHORT = 7


def code_commit() -> str | None:
    """The full commit of the fusionbench checkout this module lies in, or ``None``: an installed copy, a copy
    inside some other git repository (the checkout's root must be this package's parent, and git must track
    this file), no ``git`` on the PATH, or git failing or taking over 5 s."""
    here = Path(__file__).resolve()

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=here.parent, capture_output=True, text=True, timeout=5)

    try:
        found = git("rev-parse", "--show-toplevel", "HEAD")
        lines = found.stdout.splitlines()
        if found.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != here.parent.parent:
            return None
        tracked = git("ls-files", "--error-unmatch", here.name).returncode == 0
        return (lines[1].strip() or None) if tracked else None
    except (OSError, subprocess.SubprocessError):
        return None


def short_commit() -> str | None:
    """:func:`code_commit`'s first :data:`SHORT` hex digits, or ``None``."""
    sha = code_commit()
    return sha[:SHORT] if sha else None
