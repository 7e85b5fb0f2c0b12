"""The per-pair box plots and the infinite scores they cannot draw.

The store keeps an infinite score (PSNR of F = A = B, since session 37) and the tables print its mean ``inf``
with a footnote; a box plot cannot draw one.  Until session 38 the figure fed it to matplotlib, which put the
quartiles over it (the median moved) and drew an invisible whisker to infinity, and the page said nothing.
"""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd

from fusionbench.report import figures
from fusionbench.runner import RunConfig, run


def _scores(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame([("ds", *r) for r in rows], columns=["dataset", "pair", "method", "metric", "value"])


def test_an_infinite_score_is_left_out_of_the_box_and_marked_beside_it(tmp_path, monkeypatch) -> None:
    drawn = []
    monkeypatch.setattr(figures, "save", lambda fig, stem: drawn.append(fig) or [])
    rows = [(p, "average", "PSNR", v) for p, v in (("p1", 10.0), ("p2", 20.0), ("p3", 30.0), ("p4", np.inf))]
    rows += [(p, "dwt", "PSNR", v) for p, v in (("p1", 11.0), ("p2", 12.0), ("p3", 13.0), ("p4", 14.0))]
    rows += [(p, m, "EN", 5.0) for p in ("p1", "p2") for m in ("average", "dwt")]
    figures.box_plots(_scores(rows), "ds", ["PSNR", "EN"], ["average", "dwt"], tmp_path / "box")
    psnr, en = drawn[0].axes[:2]
    shapes = [list(line.get_xdata()) for line in psnr.lines]
    assert [15, 15, 25, 25, 15] in shapes and [20, 20] in shapes  # average's quartiles over its three finite scores
    assert all(np.isfinite(line.get_xdata()).all() for line in psnr.lines)  # no whisker to infinity
    assert [t.get_text() for t in psnr.texts] == ["+1 inf"]
    assert list(en.texts) == []


def test_not_drawn_counts_each_cells_infinite_scores() -> None:
    rows = [(p, "average", "PSNR", v) for p, v in (("p1", np.inf), ("p2", np.inf), ("p3", 1.0), ("p4", np.nan))]
    rows += [(p, "dwt", "PSNR", v) for p, v in (("p1", -np.inf), ("p2", 2.0))]
    rows += [("p1", "maximum", "PSNR", np.inf), ("p1", "average", "EN", 5.0)]
    cells = figures.infinite_scores(_scores(rows), "ds", ["PSNR", "EN"], ["average", "dwt"])
    assert cells == {("average", "PSNR"): 2, ("dwt", "PSNR"): 1}  # maximum is not among the methods drawn
    note = figures.not_drawn_note(cells, {"average": "Average", "dwt": "DWT"})
    assert note == ("Not drawn: 3 pairs with an infinite score (PSNR where F = A = B), marked “+k inf” beside "
                    "their box: Average PSNR (2 pairs); DWT PSNR (1 pair).")
    assert figures.not_drawn_note({}, {}) == ""


def test_the_report_page_says_which_infinite_scores_its_box_plot_leaves_out(tmp_path, make_pairs) -> None:
    """A small store with one infinite score (pair p000 has A = B, so the average F = A = B: PSNR inf)."""
    from fusionbench.report import build_report

    data = make_pairs(tmp_path / "data", 3, size=32, colour=False)
    shutil.copy(data / "a" / "p000.png", data / "b" / "p000.png")
    out = tmp_path / "out"
    run(RunConfig(methods=["average"], datasets=[f"folder:{data}"], metrics="PSNR,EN", out=str(out), workers=0,
                  quiet=True), log=lambda m: None)
    report = tmp_path / "report"
    build_report(out, report, metrics="PSNR,EN", quiet=True, log=lambda m: None, profile=False)
    page = (report / "index.html").read_text()
    assert "Not drawn: 1 pair with an infinite score (PSNR where F = A = B)" in page
    assert "marked “+k inf” beside their box: Average PSNR (1 pair)." in page
