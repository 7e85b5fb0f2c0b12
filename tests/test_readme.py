"""Every ```python block of README.md runs as written (issue 14.6).

Each block runs in a fresh interpreter (so that a block's registrations do not leak into other
tests), in a temporary folder holding the two input files the README's example names
(``mri.png``: grey, ``pet.png``: colour), outside the checkout, so it imports the installed package.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line number, code)`` of every fenced ```python block of a Markdown text."""
    blocks = []
    for match in re.finditer(r"^```python[ \t]*\n(.*?)^```[ \t]*$", text, flags=re.S | re.M):
        blocks.append((text.count("\n", 0, match.start()) + 1, match.group(1)))
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def test_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 2, "README.md lost its Python examples (or this test's parser broke)"


def test_block_parser_finds_only_python_blocks() -> None:
    text = "a\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = 2\n```\n"
    assert python_blocks(text) == [(2, "x = 1\n"), (8, "y = 2\n")]


@pytest.fixture()
def example_folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:96]
    mri = np.clip(128 + 80 * np.sin(xx / 9.0) * np.cos(yy / 13.0) + rng.normal(0, 6, (96, 96)), 0, 255)
    pet = np.stack([np.clip(255 * np.exp(-((xx - c) ** 2 + (yy - 48) ** 2) / 600.0), 0, 255) for c in (30, 48, 66)], -1)
    Image.fromarray(mri.astype(np.uint8)).save(tmp_path / "mri.png")
    Image.fromarray(pet.astype(np.uint8), "RGB").save(tmp_path / "pet.png")
    return tmp_path


@pytest.mark.parametrize("line, code", BLOCKS, ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_readme_python_block_runs(line: int, code: str, example_folder: Path) -> None:
    out = subprocess.run([sys.executable, "-c", code], cwd=example_folder, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, f"README.md block at line {line} failed:\n{code}\n{out.stderr[-3000:]}"
