"""What each table's footnote says of its own rows: the task presets standing in for a method, and weights
trained for other tasks than the dataset's."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fusionbench.report.provenance import NOT_RECORDED, NOT_RECORDED_ROW


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from fusionbench.report.build import build_report

    root = tmp_path_factory.mktemp("footnotes")
    results = root / "results"
    results.mkdir()
    rng = np.random.default_rng(0)
    methods = ["mopa", "legff.ivf", "sdnet", "matr", "u2fusion.ivf", "average"]
    rows = [(dataset, f"{k:02d}", m, metric, float(rng.random())) for dataset in ("tno", "harvard-mri-pet")
            for k in range(1, 7) for m in methods for metric in ("EN", "SD")
            if not (dataset == "harvard-mri-pet" and m.endswith(".ivf"))]
    scores = pd.DataFrame(rows, columns=["dataset", "pair", "method", "metric", "value"])
    scores.to_csv(results / "scores.csv.gz", index=False)
    outputs = scores[["dataset", "pair", "method"]].drop_duplicates().assign(path="", seconds=0.01)
    outputs.to_csv(results / "outputs.csv.gz", index=False)
    # no sources here: figures and groups are skipped (and a method without outputs among the Table 5 pairs once
    # crashed the provenance line: an empty list selected no columns)
    return build_report(results, root / "report", metrics="EN,SD", quiet=True, profile=False,
                        data_dir=root / "no-data")


def test_each_table_names_its_own_stand_ins(report) -> None:
    main, others = (report / "tables" / "tno.md").read_text(), (report / "tables" / "tno_others.md").read_text()
    assert "LEGFF (IR/VIS) stands in for LEGFF on IR-VIS" in main and "U2Fusion" not in main
    assert "U2Fusion (IR/VIS) stands in for U2Fusion on IR-VIS" in others  # one of its rows
    assert "LEGFF" not in others  # not a row of this table
    assert "95 % CIs" in main and "95 % CIs" not in others  # the other-methods table has no CIs


def test_weights_trained_for_another_task_are_named(report) -> None:
    tno = (report / "tables" / "tno.md").read_text()
    said = tno.split("Weights trained for other tasks than IR-VIS: ")[1].split(" Training data")[0].rstrip(".")
    assert sorted(said.split("; ")) == ["MATR, trained for medical pairs", "Ours (Di et al. 2025), trained for "
                                        "MRI-PET and MRI-SPECT pairs", "SDNet, trained for medical pairs"]
    pet = (report / "tables" / "harvard-mri-pet.md").read_text()
    assert "Weights: " in pet and "other tasks" not in pet  # trained for this task
    column = pd.read_csv(report / "tables" / "tno.csv")
    notes = dict(zip(column["method"], column["weights"]))
    assert "(trained for medical pairs, not IR-VIS); trained on Harvard AANLIB pairs" in notes["sdnet"]
    # this export recorded no weights (no methods.csv): each CSV value says it describes the installed ones
    assert notes["mopa"].endswith(f"(trained for MRI-PET and MRI-SPECT pairs, not IR-VIS); {NOT_RECORDED_ROW}")


def test_third_party_weights_say_what_they_were_trained_on(report) -> None:
    """SDNet's and MATR's official weights were trained by their authors on Harvard pairs they did not list: the
    footnote says so on every table with them, since some test pairs may be among them (the report audit,
    session 33); fusionbench's own weights name their provenance file instead."""
    pet = (report / "tables" / "harvard-mri-pet.md").read_text()
    said = pet.split("Training data of these weights: ")[1].split(" Provenance:")[0]
    # this export has no methods.csv, so no weights recorded by a run: the footnote says whose it describes
    said, unrecorded = said.split(" The weights are described ")
    assert said == ("SDNet, MATR: Harvard AANLIB pairs chosen by the authors and not listed, so some of the Harvard "
                    "test pairs may be among them.")
    assert unrecorded == f"{NOT_RECORDED}."
    notes = dict(zip(*pd.read_csv(report / "tables" / "harvard-mri-pet.csv")[["method", "weights"]].T.values))
    assert notes["matr"].endswith(f"so some of the Harvard test pairs may be among them; {NOT_RECORDED_ROW}")
    assert "trained on" not in notes["mopa"]


def test_multi_focus_models_are_named_on_the_medical_and_ir_tables() -> None:
    """CNN's and IFCNN's released models were trained for multi-focus fusion (ImageNet patches and their blurred
    copies; NYU Depth v2 images): on any benchmark task they run on another task's weights, as SDNet does on TNO."""
    from fusionbench.report.provenance import weights_notes

    for task in ("MRI-PET", "IR-VIS"):
        notes, sentence = weights_notes(["cnn", "ifcnn", "average"], {"cnn": "CNN", "ifcnn": "IFCNN"}, task=task)
        assert f"Weights trained for other tasks than {task}: CNN, trained for multi-focus pairs; IFCNN, trained " \
               "for multi-focus pairs." in sentence
        assert "CNN: ImageNet patches and their blurred copies" in sentence and "average" not in notes
