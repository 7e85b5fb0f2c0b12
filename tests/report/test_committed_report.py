"""The committed report (`reports/`) stays light: under 8 MB in git, no PDF twins, no SQLite store, and a page
that links its figures instead of embedding them (issue 22)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 8 * 1024 * 1024


def _tracked() -> list[Path]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(["git", "ls-files", "-z", "reports"], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip("git ls-files failed")
    return [ROOT / p for p in done.stdout.split("\0") if p and (ROOT / p).is_file()]


def test_committed_report_is_under_8_mb() -> None:
    files = _tracked()
    assert files, "reports/ has no committed files"
    total = sum(p.stat().st_size for p in files)
    biggest = sorted(files, key=lambda p: p.stat().st_size)[-3:]
    assert total < LIMIT, f"reports/ is {total / 2**20:.1f} MiB in git (limit 8 MiB); biggest: " + ", ".join(
        f"{p.relative_to(ROOT)} {p.stat().st_size / 2**20:.1f} MiB" for p in biggest)


def test_committed_report_has_no_heavy_twins() -> None:
    files = _tracked()
    assert not [p for p in files if p.suffix in (".pdf", ".sqlite")], "PDF twins or the SQLite store committed"
    page = ROOT / "reports" / "index.html"
    assert page.is_file() and page.stat().st_size < 2 * 1024 * 1024
    assert "data:image/png;base64," not in page.read_text()
    assert (ROOT / "reports" / "results" / "scores.csv.gz").is_file()
