"""The commit a run, its report and a throughput measurement record is fusionbench's own
(:func:`fusionbench.checkout.code_commit`): that of the checkout the code runs from, never that of some other git
repository that happens to hold an installed copy (a venv inside a user's project recorded the project's commit
as fusionbench's; the packaging audit of session 26), nor that of the folder the command was started in (the
report's note and the throughput table's ``commit`` read the current folder's HEAD until session 33)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fusionbench import checkout


def _repo_with(tmp_path: Path, package: str, *, commit: bool = True) -> tuple[Path, str]:
    """A git repository holding ``package/checkout.py``; ``(that file, the HEAD commit)``."""
    repo = tmp_path / "repo"
    target = repo / package / "checkout.py"
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
    monkeypatch.setattr(checkout, "__file__", str(target))
    assert checkout.code_commit() == sha
    assert checkout.short_commit() == sha[:7]


@pytest.mark.parametrize("package, commit", [("venv/lib/python3.11/site-packages/fusionbench", True),
                                             ("fusionbench", False)])
def test_a_copy_inside_another_repository_records_no_commit(tmp_path, monkeypatch, package, commit):
    """An installed copy in a user's repository, and an untracked copy at a repository's root: ``None``
    (the report says "commit unknown") instead of the other repository's HEAD."""
    target, _ = _repo_with(tmp_path, package, commit=commit)
    monkeypatch.setattr(checkout, "__file__", str(target))
    assert checkout.code_commit() is None


def test_no_git_on_the_path_is_no_commit(tmp_path, monkeypatch):
    """Without git (a container, a bare cluster node) the commit is unknown; nothing raises (the report's note
    ran git unguarded, so ``fusionbench run`` exited 1 after a run without failures; the static audit, session 33)."""
    target, _ = _repo_with(tmp_path, "fusionbench")
    monkeypatch.setattr(checkout, "__file__", str(target))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert checkout.code_commit() is None and checkout.short_commit() is None


def test_the_report_and_throughput_notes_name_this_code_not_the_current_folder(tmp_path, monkeypatch):
    """Started inside a user's own repository, the report's "built ... at commit" and a throughput measurement's
    commit are fusionbench's (here: none, an installed copy), not the user's HEAD."""
    from types import SimpleNamespace

    from fusionbench.report.cost import _where_measured
    from fusionbench.report.readme import figure_notes

    target, users_head = _repo_with(tmp_path, "venv/lib/python3.11/site-packages/fusionbench")
    monkeypatch.setattr(checkout, "__file__", str(target))
    monkeypatch.chdir(target.parents[5])  # the user's repository
    note = figure_notes(SimpleNamespace(refused=set(), missing={}, remade={}))
    assert users_head[:7] not in note and "at commit" not in note
    assert _where_measured()["commit"] == "unknown"
