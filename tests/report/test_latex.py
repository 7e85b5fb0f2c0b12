"""Every .tex a report writes compiles with pdflatex in a plain article, with no error and no overfull box.

Skipped where pdflatex is not installed (CI installs texlive-latex-base, texlive-latex-recommended,
texlive-latex-extra).
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ._latex import declared_packages, document, pdflatex
from fusionbench.report.tables import (ablation_table, ablation_to_latex, build_table, convention_footnote,
                                       frame_to_latex, to_latex)

needs_pdflatex = pytest.mark.skipif(pdflatex() is None, reason="pdflatex not installed")
PAPER = ["AG", "EN", "SF", "MI", "CC", "SD", "SCD"]
TEN = ["legff", "cnp", "sdnet", "dtnp", "matr", "mdl", "cnn", "mlepf", "swinfusion", "mopa"]


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


def _wide_scores() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [("harvard-mri-spect", f"p{i}", m, metric, float(rng.uniform(10, 120)))
            for i in range(5) for m in TEN + ["mdl.fast"] for metric in PAPER]
    return pd.DataFrame(rows, columns=["dataset", "pair", "method", "metric", "value"])


def test_declared_packages() -> None:
    assert declared_packages("% packages: booktabs, adjustbox\n\\begin{table}") == ["adjustbox"]
    assert declared_packages("\\begin{table}") == []


@needs_pdflatex
@pytest.mark.parametrize("mean_only", [False, True])
def test_wide_metric_table_compiles_without_overfull_box(tmp_path, mean_only) -> None:
    scores = _wide_scores()
    footnote = convention_footnote(PAPER, "test", extra="Δ and 10^9 and 50 % & more_text")
    table = build_table(scores, "harvard-mri-spect", TEN + ["mdl.fast"], PAPER, title="MRI-SPECT: Δ test",
                        footnote=footnote, bootstrap=False, highlight="mopa")
    path = tmp_path / "wide.tex"
    path.write_text(to_latex(table, label="tab:wide", mean_only=mean_only))
    assert compile_problems(path, tmp_path / "build") == []


@needs_pdflatex
def test_ablation_and_cost_tables_compile(tmp_path) -> None:
    scores = _wide_scores().assign(method=lambda d: d["method"].replace(
        {"legff": "mopa.mask_only", "cnp": "mopa.attention_only", "sdnet": "mopa.contrast_only",
         "dtnp": "mopa.decouple_only"}))
    variants = {m: {"mask": m.endswith("mask_only") or m == "mopa", "attention": "attention" in m or m == "mopa",
                    "contrast": "contrast" in m or m == "mopa", "decouple": "decouple" in m or m == "mopa"}
                for m in ["mopa.mask_only", "mopa.attention_only", "mopa.contrast_only", "mopa.decouple_only", "mopa"]}
    path = tmp_path / "ablation.tex"
    path.write_text(ablation_to_latex(ablation_table(scores, variants, PAPER), "Table 4 style: 20 pairs; n = 5"))
    cost = pd.DataFrame({"Method": ["LEGFF", "Ours (Di et al. 2025)"], "Time/s per pair": [1.23456, 0.5],
                         "GFLOPs": ["n/a", 2.5], "Params (M)": ["n/a", 0.1234]})
    path2 = tmp_path / "cost.tex"
    path2.write_text(frame_to_latex(cost, "GFLOPs = 10^9 FLOPs with FLOPs = 2 x MAC; machine x86_64, 2 CPUs"))
    assert compile_problems(path, tmp_path / "b1") == [] and compile_problems(path2, tmp_path / "b2") == []


@needs_pdflatex
def test_every_tex_of_a_report_compiles(tmp_path) -> None:
    """A whole report's .tex files (the end-to-end report of tests/report/test_html.py's kind)."""
    import json

    from PIL import Image

    from fusionbench.report import build_report
    from fusionbench.runner import RunConfig, run

    data = tmp_path / "data"
    rng = np.random.default_rng(1)
    for side in ("a", "b"):
        (data / side).mkdir(parents=True)
    for i in range(4):
        base = rng.integers(0, 256, (32, 32)).astype(np.uint8)
        Image.fromarray(base).save(data / "a" / f"q{i}.png")
        Image.fromarray(255 - base).save(data / "b" / f"q{i}.png")
    (data / "dataset.json").write_text(json.dumps({"title": "Pairs with_underscore & 100 %"}))
    run(RunConfig(methods=["average,maximum,dwt"], datasets=[f"folder:{data}"], metrics="paper",
                  out=str(tmp_path / "out"), workers=0, quiet=True), log=lambda m: None)
    out = build_report(tmp_path / "out", tmp_path / "report", quiet=True, log=lambda m: None, profile=False)
    tex = sorted((out / "tables").glob("*.tex"))
    assert len(tex) >= 2
    problems = [p for path in tex for p in compile_problems(path, tmp_path / "build")]
    assert problems == []


def test_greek_letters_take_latexs_names_and_marks_do_not_flip_symbols() -> None:
    from fusionbench.report.tables import latex_escape

    assert latex_escape("λ=σ_AF") == r"$\lambda$=$\sigma$\_AF"  # was $\lamda$, undefined in LaTeX
    assert latex_escape("ς ο Α Ω ά µ") == r"$\varsigma$ $o$ $\mathrm{A}$ $\Omega$ $\alpha$ $\mu$"
    assert latex_escape("≠ ≮ ½ ÷") == r"$\neq$ ? 1/2 $\div$"  # ≠ and ½ were "=" and "12"
    assert latex_escape("MSE̅ m̃ Cvejić") == r"MS$\bar{E}$ $\tilde{m}$ Cvejic"  # the marks were "?"
    assert latex_escape("ε φ ϵ ϕ") == r"$\varepsilon$ $\varphi$ $\epsilon$ $\phi$"  # the glyphs Unicode draws


def test_fullwidth_latex_specials_are_escaped_like_the_specials() -> None:
    """A fullwidth or small form decomposes to a LaTeX special, which was passed through: a dataset name
    ``＼input｛/etc/passwd｝`` compiled as ``\\input{/etc/passwd}``, and ``＆`` stopped pdflatex (the review of
    session 32)."""
    from fusionbench.report.tables import latex_escape

    assert latex_escape("＼input｛/etc/passwd｝") == r"\textbackslash{}input\{/etc/passwd\}"
    assert latex_escape("a＆b 50﹪ x＿y ＃1 ＄x＄ ＾ ～") == r"a\&b 50\% x\_y \#1 \$x\$ \^{} \~{}"


@needs_pdflatex
def test_every_greek_letter_and_every_registered_text_compiles(tmp_path) -> None:
    """Every Greek letter, and the convention of every metric preset and the display name of every method (the
    texts a table's footnote and rows carry), escaped, in one document: before session 32 a table scored with
    Qc (``--metrics standard``) stopped pdflatex at ``\\lamda``."""
    import fusionbench
    from fusionbench.metric_registry import METRICS
    from fusionbench.report.tables import latex_escape

    greek = "".join(chr(c) for c in [*range(0x391, 0x3AA), *range(0x3B1, 0x3CA)] if c != 0x3A2) + "ϵϕϑϖϱ"
    texts = [greek, "＼input｛/etc/hostname｝ a＆b 50﹪ ＃ ＄ ＾ ～ ＜ ＞ ｜", *(METRICS.get(n).info.convention or n for n in METRICS.names()),
             *(fusionbench.create_method(n).info.display_name for n in fusionbench.list_methods())]
    path = tmp_path / "texts.tex"
    path.write_text("\\begin{sloppypar}\n" + "\n\n".join(latex_escape(t) for t in texts) + "\n\\end{sloppypar}\n")
    assert compile_problems(path, tmp_path / "build") == []
    log = (tmp_path / "build" / "texts_doc.log").read_text(errors="replace")
    assert "/etc/hostname" not in log.replace("input\\{/etc/hostname\\}", "")  # typeset, not read
