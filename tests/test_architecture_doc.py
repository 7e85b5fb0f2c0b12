"""docs/architecture.md's module map names every module of the core package."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO / "fusionbench"  # the checkout's core package (an installed copy also holds methods/ and metrics/)
DOC = REPO / "docs" / "architecture.md"


def test_every_core_module_is_in_the_module_map() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Module map"):text.index("## One pair through")]
    named = set(re.findall(r"`([\w/]+\.py)`", section))
    modules = {p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*.py")
               if p.name != "__init__.py" or p.parent == ROOT}
    missing = sorted(modules - named)
    assert not missing, f"add these to the module map of docs/architecture.md: {missing}"
    stale = sorted(n for n in named if not n.startswith("tests/") and not (ROOT / n).is_file())
    assert not stale, f"the module map names modules that do not exist: {stale}"
