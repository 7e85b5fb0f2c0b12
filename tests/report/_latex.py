"""Compile a report's ``.tex`` tables the way an author would include them, and list what went wrong.

Each table is put in a plain ``article`` (A4, 2.5 cm margins via ``geometry``,
``booktabs`` plus the packages its first line names: ``% packages: a, b``) and
compiled with ``pdflatex -interaction=nonstopmode -halt-on-error``; a problem is
an error or an overfull box in the log.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

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


def compile_problems(tex_path: str | Path, workdir: str | Path, timeout: float = 120.0) -> list[str]:
    """Errors and overfull boxes of ``tex_path`` compiled in a plain article (``[]`` = compiles cleanly)."""
    tex_path, workdir = Path(tex_path), Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    text = tex_path.read_text()
    problems = []
    try:
        text.encode("ascii")
    except UnicodeEncodeError as exc:
        problems.append(f"{tex_path.name}: non-ASCII character {text[exc.start]!r}")
    doc = workdir / (tex_path.stem + "_doc.tex")
    doc.write_text(document(text))
    exe = pdflatex()
    if exe is None:
        raise FileNotFoundError("pdflatex not installed (apt-get install texlive-latex-base "
                                "texlive-latex-recommended texlive-latex-extra)")
    done = subprocess.run([exe, "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=workdir,
                          capture_output=True, text=True, timeout=timeout)
    log = (workdir / (doc.stem + ".log")).read_text(errors="replace") if (workdir / (doc.stem + ".log")).is_file() \
        else done.stdout
    if done.returncode != 0:
        errors = [line for line in log.splitlines() if line.startswith("!")]
        problems.append(f"{tex_path.name}: pdflatex failed: {'; '.join(errors[:3]) or done.stdout[-300:]}")
    problems += [f"{tex_path.name}: {line.strip()}" for line in log.splitlines()
                 if line.startswith("Overfull")]
    return problems
