"""Each table's footnote names the task presets among its own rows, and only those."""
from __future__ import annotations

import numpy as np
import pandas as pd


def test_each_table_names_its_own_stand_ins(tmp_path) -> None:
    from fusionbench.report.build import build_report

    results = tmp_path / "results"
    results.mkdir()
    rng = np.random.default_rng(0)
    methods = ["mopa", "legff.ivf", "sdnet", "u2fusion.ivf", "average"]
    rows = [("tno", f"{k:02d}", m, metric, float(rng.random())) for k in range(1, 7) for m in methods
            for metric in ("EN", "SD")]
    scores = pd.DataFrame(rows, columns=["dataset", "pair", "method", "metric", "value"])
    scores.to_csv(results / "scores.csv.gz", index=False)
    outputs = scores[["dataset", "pair", "method"]].drop_duplicates().assign(path="", seconds=0.01)
    outputs.to_csv(results / "outputs.csv.gz", index=False)
    out = build_report(results, tmp_path / "report", metrics="EN,SD", quiet=True, profile=False,
                       data_dir=tmp_path / "no-data")
    main, others = (out / "tables" / "tno.md").read_text(), (out / "tables" / "tno_others.md").read_text()
    assert "LEGFF (IR/VIS) stands in for LEGFF on IR-VIS" in main and "U2Fusion" not in main
    assert "U2Fusion (IR/VIS) stands in for U2Fusion on IR-VIS" in others  # one of its rows
    assert "LEGFF" not in others  # not a row of this table
    assert "95 % CIs" in main and "95 % CIs" not in others  # the other-methods table has no CIs
