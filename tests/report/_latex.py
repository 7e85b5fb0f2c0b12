"""Test support: the plain document a report's ``.tex`` table is compiled in, the way an author would include it.

Each table is put in a plain ``article`` (A4, 2.5 cm margins via ``geometry``,
``booktabs`` plus the packages its first line names: ``% packages: a, b``);
``tests/report/test_latex.py`` compiles it with ``pdflatex -interaction=nonstopmode
-halt-on-error`` and counts an error or an overfull box in the log as a problem.
"""
from __future__ import annotations

import re
import shutil

PREAMBLE = r"""\documentclass{article}
\usepackage[a4paper,margin=2.5cm]{geometry}
\usepackage[T1]{fontenc}
\usepackage{booktabs}
%s
\begin{document}
%s
\end{document}
"""


def declared_packages(tex: str) -> list[str]:
    """The packages named on a first line ``% packages: a, b`` (``booktabs`` is always loaded)."""
    first = tex.lstrip().splitlines()[0] if tex.strip() else ""
    match = re.match(r"%\s*packages:\s*(.*)", first)
    if not match:
        return []
    return [p.strip() for p in match.group(1).split(",") if p.strip() and p.strip() != "booktabs"]


def document(tex: str) -> str:
    """A plain article that includes ``tex`` (its declared packages loaded)."""
    uses = "\n".join(rf"\usepackage{{{p}}}" for p in declared_packages(tex))
    return PREAMBLE % (uses, tex)


def pdflatex() -> str | None:
    """The path of ``pdflatex`` on ``PATH``, or ``None`` where it is not installed."""
    return shutil.which("pdflatex")
