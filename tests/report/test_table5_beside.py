"""The paper's Table 5 beside ours prints n/a where our Table 5 does (not a torch method), as its caption explains,
and – only where the method is not in our table; Table 5's provenance line says where asv's times come from
(session 37 audit, finding 6)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from fusionbench.report import paper

from .test_asv_export import ASV, USED, _build, _export


def test_not_a_torch_method_is_n_a_and_a_method_not_run_is_a_dash() -> None:
    costs = pd.DataFrame([{"method": "legff", "Time/s per pair": 0.14, "GFLOPs": "n/a", "GFLOP/s": "n/a",
                           "Fraction of conv peak": "n/a", "Params (M)": "n/a"},
                          {"method": "sdnet", "Time/s per pair": 0.06, "GFLOPs": 3.7, "GFLOP/s": 58.2,
                           "Fraction of conv peak": 0.69, "Params (M)": 0.07}])
    beside = paper.beside_table5(costs).set_index("Method")
    for column in ("GFLOPs ours", "GFLOPs ours (paper conv.)", "GFLOP/s ours", "Params (M) ours"):
        assert beside.loc["LEGFF", column] == "n/a", column
        assert pd.isna(beside.loc["CNP", column])  # not in our table: printed –
    assert beside.loc["SDNet", "GFLOPs ours (paper conv.)"] == paper.paper_convention_gflops(3.7)


def test_the_written_table_and_its_caption_agree(tmp_path: Path) -> None:
    report = _build(_export(tmp_path, ("average", "dwt", "ifcnn")), tmp_path / "report", ASV, tmp_path)
    text = (report / "tables" / "paper_vs_ours_table5.md").read_text()
    assert "n/a: not a torch method" in text and "–: not in our Table 5" in text
    caption = (report / "tables" / "table5_cost.md").read_text().splitlines()[0]
    assert "Provenance: times of Average, DWT, IFCNN from asv (at commit 1678533 on AMD EPYC (2 CPU threads); " \
           f"result file results/asv/{USED}), not from the run's fusion" in caption, caption
