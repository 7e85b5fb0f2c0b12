"""A small ``results/`` export for the report tests: four MRI-PET pairs, EN only, the run's own times (0.01 s)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def small_export(tmp_path: Path, methods: tuple[str, ...]) -> Path:
    """``tmp_path/results`` holding ``scores.csv.gz`` (random EN of ``methods`` on pairs 01-04 of harvard-mri-pet,
    seed 0) and ``outputs.csv.gz`` (0.01 s each); returns that folder."""
    results = tmp_path / "results"
    results.mkdir()
    rng = np.random.default_rng(0)
    rows = [("harvard-mri-pet", f"{k:02d}", m, "EN", float(rng.random())) for k in range(1, 5) for m in methods]
    scores = pd.DataFrame(rows, columns=["dataset", "pair", "method", "metric", "value"])
    scores.to_csv(results / "scores.csv.gz", index=False)
    scores[["dataset", "pair", "method"]].drop_duplicates().assign(path="", seconds=0.01).to_csv(
        results / "outputs.csv.gz", index=False)
    return results
