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


def test_changed_code_marks_the_commit_dirty(tmp_path, monkeypatch):
    """Results made by edited code are not the commit's: the commit carries ``-dirty`` (as ``git describe
    --dirty``), in full and short form, for an edit or a new file under the package folders; a change elsewhere
    (a README, tests, docs) does not mark it."""
    target, sha = _repo_with(tmp_path, "fusionbench")
    monkeypatch.setattr(checkout, "__file__", str(target))
    repo = target.parents[1]
    assert checkout.code_root() == repo.resolve()
    (repo / "README").write_text("changed\n")
    assert checkout.code_commit() == sha
    target.write_text("# edited\n")
    assert checkout.code_commit() == sha + checkout.DIRTY
    assert checkout.short_commit() == sha[:checkout.SHORT] + checkout.DIRTY
    subprocess.run(["git", "checkout", "-q", "--", "fusionbench"], cwd=repo, check=True)
    assert checkout.code_commit() == sha
    (repo / "methods").mkdir()
    (repo / "methods" / "new_method.py").write_text("# a method not committed\n")
    assert checkout.code_commit() == sha + checkout.DIRTY


@pytest.mark.parametrize("recorded, shown", [("0123456789abcdef", "0123456"), ("0123456789abcdef-dirty", "0123456-dirty"),
                                             ("", None), (None, None)])
def test_the_short_form_keeps_the_dirty_mark(recorded, shown):
    """The report's run history cut the recorded commit to 7 characters, which would have dropped the mark."""
    assert checkout.short_form(recorded) == shown


def test_the_weights_footnote_path_does_not_depend_on_the_current_folder(tmp_path, monkeypatch):
    """A provenance file's path is shown relative to the checkout (or the installed package's folder), wherever
    the report is built; before, a report built outside the checkout showed the file's last three path parts."""
    from fusionbench.weights_provenance import weights_note

    here = weights_note("mopa")
    monkeypatch.chdir(tmp_path)
    assert weights_note("mopa") == here and "methods/mopa/weights/" in here


def test_the_report_benchmarks_the_checkout_the_code_runs_from(tmp_path, monkeypatch):
    """``fusionbench run``/``report --bench`` ran asv in the current folder: started anywhere but the checkout's
    root it skipped asv, or benchmarked another checkout.  Now the default is the code's own checkout."""
    import numpy as np
    import pandas as pd

    from fusionbench.report import build
    from fusionbench.report.sections import table5

    results = tmp_path / "results"
    results.mkdir()
    rows = [("harvard-mri-pet", f"{k:02d}", m, "EN", float(v)) for k in range(1, 4) for m, v in
            (("average", 1.0 + k), ("dwt", 2.0 * k))]
    scores = pd.DataFrame(rows, columns=["dataset", "pair", "method", "metric", "value"])
    scores.to_csv(results / "scores.csv.gz", index=False)
    scores[["dataset", "pair", "method"]].drop_duplicates().assign(path="", seconds=np.float64(0.01)).to_csv(
        results / "outputs.csv.gz", index=False)
    seen = []
    monkeypatch.setattr(table5, "run_asv", lambda methods, repo, log, data_dir=None: seen.append(repo))
    monkeypatch.setattr(build, "code_root", lambda: tmp_path / "the-checkout")
    monkeypatch.chdir(tmp_path)
    build.build_report(results, tmp_path / "report", metrics="EN", quiet=True, profile=False, run_benchmarks=True,
                       data_dir=tmp_path / "no-data")
    assert seen == [tmp_path / "the-checkout"]
