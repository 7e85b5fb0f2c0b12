"""The maintainer scripts of ``scripts/reference_runs/`` answer a wrong call with their usage, before they read
or write anything (``liu_mst_collect.py --help`` used to rewrite the committed
``tests/methods/octave_liu_mst/cases.csv`` before failing on the missing folder)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((REPO / "scripts" / "reference_runs").rglob("*.py"))
GUARD = 'sys.argv[1] in ("-h", "--help")'


def _reads_argv(path: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    return "sys.argv[" in text.replace(GUARD, "")


def test_every_script_that_reads_its_arguments_checks_them_first() -> None:
    readers = [p for p in SCRIPTS if _reads_argv(p)]
    assert len(readers) >= 10, "the reference-run scripts moved (or this test's scan broke)"
    missing = [str(p.relative_to(REPO)) for p in readers if GUARD not in p.read_text(encoding="utf-8")]
    assert not missing, f"check the arguments (and print the usage) before using them in: {missing}"
    for path in readers:  # the guard's own sys.argv[1] is the first use of an argument
        text = path.read_text(encoding="utf-8")
        assert text.find("sys.argv[") == text.find(GUARD), f"{path.name}: an argument is used before the guard"


@pytest.mark.parametrize("argv", [["--help"], []])
def test_a_wrong_call_prints_the_usage_and_writes_nothing(argv: list[str], tmp_path: Path) -> None:
    script = REPO / "scripts" / "reference_runs" / "liu_mst_collect.py"
    committed = REPO / "tests" / "methods" / "octave_liu_mst" / "cases.csv"
    before = committed.read_bytes()
    out = subprocess.run([sys.executable, str(script), *argv], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 1 and "python liu_mst_collect.py OUT_DIR" in out.stderr
    assert committed.read_bytes() == before and not list(tmp_path.iterdir())
