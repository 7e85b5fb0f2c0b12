"""Issue 16, report side: an IR-VIS dataset is reported with the IR-VIS metric set (missing ones named) and its
figures are in colour where the visible image is colour."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
from PIL import Image

from fusionbench.runner import RunConfig, run


def test_irvis_metric_set_and_colour_figures(tmp_path) -> None:
    from fusionbench.report import build_report

    data = tmp_path / "data"
    rng = np.random.default_rng(3)
    for side in ("a", "b"):
        (data / side).mkdir(parents=True)
    for i in range(3):
        vis = rng.integers(0, 256, (37, 51, 3)).astype(np.uint8)  # colour visible, odd size
        Image.fromarray(vis).save(data / "a" / f"v{i}.png")
        Image.fromarray(rng.integers(0, 256, (37, 51)).astype(np.uint8)).save(data / "b" / f"v{i}.png")
    (data / "dataset.json").write_text(json.dumps({"task": "IR-VIS", "title": "Colour IR-VIS"}))
    run(RunConfig(methods=["average,maximum,dwt"], datasets=[f"folder:{data}"], metrics="CC,EN,SSIM,SD",
                  out=str(tmp_path / "out"), workers=0, quiet=True), log=lambda m: None)
    out = build_report(tmp_path / "out", tmp_path / "report", metrics="paper", quiet=True, log=lambda m: None,
                       profile=False)
    table = pd.read_csv(next((out / "tables").glob("folder_*.csv")))
    assert list(dict.fromkeys(table["metric"])) == ["EN", "SD", "SSIM", "CC"]  # the IR-VIS set, in its order
    page = (out / "index.html").read_text()
    assert "not computed in this run: SF, AG, MI, VIFp_sum, Qabf, SCD" in page
    grid = np.asarray(Image.open(next((out / "figures").glob("grid_*.png"))).convert("RGB")).astype(int)
    assert np.abs(grid[..., 0] - grid[..., 1]).max() > 50  # colour panels (visible and fused keep their chroma)
    assert "hottest target" in page  # the inset sits on the infrared image


def test_a_run_of_a_method_and_its_irvis_preset_on_both_tasks_is_reported(tmp_path) -> None:
    """Session 37's audit: ``--methods legff,legff.ivf`` on a medical and an IR-VIS dataset (no ``mopa``, so the
    main tables hold every method) failed at the report: ``The truth value of a Series is ambiguous``."""
    from fusionbench.report import build_report

    rng = np.random.default_rng(5)
    for name, task in (("med", "MRI-PET"), ("irvis", "IR-VIS")):
        for side in ("a", "b"):
            (tmp_path / name / side).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(rng.integers(0, 256, (24, 32)).astype(np.uint8)).save(tmp_path / name / side / f"p{i}.png")
        (tmp_path / name / "dataset.json").write_text(json.dumps({"task": task}))
    run(RunConfig(methods=["legff,legff.ivf"], datasets=[f"folder:{tmp_path / 'med'}", f"folder:{tmp_path / 'irvis'}"],
                  metrics="EN,SD", out=str(tmp_path / "out"), workers=0, quiet=True), log=lambda m: None)
    out = build_report(tmp_path / "out", tmp_path / "report", metrics="paper", quiet=True, log=lambda m: None,
                       profile=False)
    tables = {p.name.split("-")[0]: pd.read_csv(p) for p in (out / "tables").glob("folder_*.csv")
              if "_others" not in p.name}
    assert set(tables["folder_med"]["method"]) == {"legff"}
    assert set(tables["folder_irvis"]["method"]) == {"legff.ivf"}
    assert len(tables["folder_irvis"]) == len(set(tables["folder_irvis"]["metric"]))  # one row per metric
