"""`fusionbench run` passes --order/--highlight/--exclude-variants to its report; `fusionbench report` takes
--methods/--order/--highlight/--exclude-variants/--mean-only/--roi/--full."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fusionbench.cli import main


@pytest.fixture
def pairs(tmp_path):
    data = tmp_path / "data"
    rng = np.random.default_rng(2)
    for side in ("a", "b"):
        (data / side).mkdir(parents=True)
    for i in range(4):
        base = rng.integers(0, 256, (36, 44)).astype(np.uint8)
        Image.fromarray(base).save(data / "a" / f"k{i}.png")
        Image.fromarray(np.flipud(base)).save(data / "b" / f"k{i}.png")
    return data


def test_run_and_report_selection_flags(tmp_path, pairs, capsys) -> None:
    out = tmp_path / "out"
    assert main(["run", "--methods", "average,maximum,dwt,dwt.vifb", "--datasets", f"folder:{pairs}", "--metrics",
                 "EN,SD", "--out", str(out), "--workers", "0", "--quiet", "--no-bench", "--order", "dwt,average",
                 "--highlight", "average"]) == 0
    md = next(p for p in (out / "tables").glob("folder_*.md") if not p.stem.endswith("_others")).read_text()
    rows = [line.split("|")[1].strip() for line in md.splitlines() if line.startswith("| ") and "Method" not in line]
    assert rows == ["DWT", "**Average**"]  # --order, --highlight
    assert "Maximum" in next((out / "tables").glob("folder_*_others.md")).read_text()

    report = tmp_path / "report"
    assert main(["report", str(out), "--out", str(report), "--metrics", "EN,SD", "--methods", "dwt*,max*",
                 "--exclude-variants", "--mean-only", "--roi", "2,3,16", "--no-profile", "--quiet"]) == 0
    tex = next(p for p in (report / "tables").glob("folder_*.tex") if not p.stem.endswith("_others")).read_text()
    assert "DWT &" in tex and "Maximum &" in tex
    assert "VIFB" not in tex  # --exclude-variants
    assert r"\pm" not in tex  # --mean-only: no std columns, footnote says "Mean over pairs"
    page = (report / "index.html").read_text()
    assert "placed on the given ROI" in page
    capsys.readouterr()
    assert main(["report", str(out), "--out", str(report), "--roi", "2,3", "--quiet"]) != 0
    assert "ROW,COL,SIZE" in capsys.readouterr().err  # one clear line
