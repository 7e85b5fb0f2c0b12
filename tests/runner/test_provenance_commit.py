"""The commit a run records is fusionbench's own: that of the checkout the code runs from, never that of some
other git repository that happens to hold an installed copy (a venv inside a user's project recorded the
project's commit as fusionbench's; the packaging audit of session 26)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fusionbench import runner


def _repo_with(tmp_path: Path, package: str, *, commit: bool = True) -> tuple[Path, str]:
    """A git repository holding ``package/runner.py``; ``(that file, the HEAD commit)``."""
    repo = tmp_path / "repo"
    target = repo / package / "runner.py"
    target.parent.mkdir(parents=True)
    target.write_text("# a copy\n")
    (repo / "README").write_text("x\n")

    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                              capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    git("add", "README" if not commit else ".")
    git("commit", "-q", "-m", "x")
    return target, git("rev-parse", "HEAD")


def test_a_checkout_records_its_commit(tmp_path, monkeypatch):
    target, sha = _repo_with(tmp_path, "fusionbench")
    monkeypatch.setattr(runner, "__file__", str(target))
    assert runner._git_sha() == sha


@pytest.mark.parametrize("package, commit", [("venv/lib/python3.11/site-packages/fusionbench", True),
                                             ("fusionbench", False)])
def test_a_copy_inside_another_repository_records_no_commit(tmp_path, monkeypatch, package, commit):
    """An installed copy in a user's repository, and an untracked copy at a repository's root: ``None``
    (the report says "commit unknown") instead of the other repository's HEAD."""
    target, _ = _repo_with(tmp_path, package, commit=commit)
    monkeypatch.setattr(runner, "__file__", str(target))
    assert runner._git_sha() is None
