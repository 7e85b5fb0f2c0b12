"""Issue 14.1, report side: after a method's version is bumped and re-run, every report table has n = pairs
(the old version's rows are history, not averaged in), and the report's export carries current rows only."""
from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from fusionbench.method_registry import METHODS, register_method
from fusionbench.runner import RunConfig, run


def _register(version: str) -> None:
    @register_method("test_report_versioned", version=version, override=True)
    def versioned(a, b):
        return np.maximum(a, b) if version == "1" else (a + b) / 2


def test_bumped_version_gives_n_pairs_in_report_tables(tmp_path) -> None:
    from fusionbench.report import build_report

    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    for side in ("a", "b"):
        (data / side).mkdir(parents=True)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(data / "a" / f"p{i}.png")
        Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(data / "b" / f"p{i}.png")
    cfg = RunConfig(methods=["test_report_versioned,average"], datasets=[f"folder:{data}"], metrics="EN,SD",
                    out=str(tmp_path / "out"), workers=0, quiet=True)
    try:
        _register("1")
        run(cfg, log=lambda m: None)
        _register("2")
        run(cfg, log=lambda m: None)
        out = build_report(tmp_path / "out", tmp_path / "report", metrics="EN,SD", quiet=True, log=lambda m: None,
                           profile=False)
    finally:
        METHODS.remove("test_report_versioned")
    table = pd.read_csv(next((out / "tables").glob("folder_*.csv")))
    assert set(table["n"]) == {3}  # not 6: version 1's rows are not averaged in
    mine = table[table["method"] == "test_report_versioned"].set_index("metric")["mean"]
    avg = table[table["method"] == "average"].set_index("metric")["mean"]
    assert np.allclose(mine.sort_index(), avg.sort_index())  # the current (version 2 = mean) rows
    ranks = pd.read_csv(next((out / "stats").glob("*_ranks.csv")))
    assert set(ranks["n_pairs"]) == {3}
    exported = pd.read_csv(out / "results" / "scores.csv.gz")
    assert len(exported[exported["method"] == "test_report_versioned"]) == 6  # 3 pairs x 2 metrics
