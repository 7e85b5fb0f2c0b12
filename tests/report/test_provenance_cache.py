"""The ``Provenance:`` line names where a table's fused outputs are: the out folder of the run (``OUT/fused/...``),
or, with ``--cache DIR`` outside OUT, that cache folder, named as such (not its method/key sub-folder presented as
the run's folder); images a run only found in the cache are not said to be fused by it."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from fusionbench.report.provenance import output_origins, provenance_line


def _runs(*configs: dict) -> pd.DataFrame:
    return pd.DataFrame([{"run_id": i, "git_sha": "34a819d0", "config": json.dumps(c), "machine": "{}"}
                         for i, c in enumerate(configs, start=1)])


def test_a_cache_outside_out_is_named_as_a_cache_folder(tmp_path) -> None:
    cache, out = tmp_path / "cacheX", tmp_path / "o26"
    paths = [str(cache / "dwt" / "728a31d623a0cfd0" / f"{i}.png") for i in range(3)]
    outputs = pd.DataFrame({"dataset": "ds", "pair": ["p0", "p1", "p2"], "method": "dwt", "path": paths,
                            "seconds": np.nan, "run_id": 1})
    runs = _runs({"out": str(out), "cache": str(cache), "resolved_methods": ["dwt"]})
    line = provenance_line(outputs, runs, ["dwt"], {"dwt": "DWT"})
    assert "728a31d623a0cfd0" not in line and f"cache folder {cache}" in line, line
    # o26 found o25's images in the shared cache: run 1 scored them, it did not fuse them
    assert "DWT: run 1 (cache folder" in line and "scored, not fused, by that run: already in the cache" in line, line
    fused = outputs.assign(seconds=0.01)
    line = provenance_line(fused, runs, ["dwt"], {"dwt": "DWT"})
    assert f"DWT: run 1 (cache folder {cache}; commit 34a819d)" in line and "not fused" not in line, line
    # an older export (no run ids): the runs whose --cache is that folder are the candidates
    old = output_origins(fused.drop(columns=["run_id"]), runs, ["dwt"])["dwt"]
    assert old["runs"] == [1] and old["folders"] == [f"cache folder {cache}"]


def test_the_default_cache_names_the_out_folder(tmp_path) -> None:
    out = tmp_path / "fused" / "o25"  # an out folder below a folder named fused: its own fused/ is the cache
    outputs = pd.DataFrame({"dataset": "ds", "pair": ["p0"], "method": "dwt", "seconds": 0.01, "run_id": 1,
                            "path": [str(out / "fused" / "dwt" / "728a31d623a0cfd0" / "0.png")]})
    line = provenance_line(outputs, _runs({"out": str(out)}), ["dwt"], {"dwt": "DWT"})
    assert f"DWT: run 1 ({out}; commit 34a819d)" in line, line
