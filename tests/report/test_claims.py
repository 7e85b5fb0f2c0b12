"""The claims check: verdicts follow the measurement (holds / does not hold / not comparable)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from fusionbench.report.claims import (ablation_claims, claims_table, cost_claims, gain_claims, table_winner_claims,
                                       training_state)
from fusionbench.report.paper import PAPER_COLUMNS, PAPER_METHODS

TEN = list(PAPER_METHODS.values())


def _scores(best: str) -> pd.DataFrame:
    rows = []
    for dataset in ("harvard-mri-spect", "harvard-mri-pet"):
        for i, method in enumerate(TEN):
            value = 10.0 if method == best else (0.5 if method == "mopa" else 1.0 + 0.1 * i)
            rows += [(dataset, f"p{k}", method, metric, value + 0.01 * k) for k in range(3) for metric in PAPER_COLUMNS]
    return pd.DataFrame(rows, columns=["dataset", "pair", "method", "metric", "value"])


def test_winner_claims_follow_the_measurement() -> None:
    rows = pd.DataFrame(table_winner_claims(_scores("mopa"))).set_index("claim")
    assert rows.loc["Table 1: Ours is best on AG", "verdict"] == "holds"
    assert rows.loc["Table 2: MATR is best on MI", "verdict"] == "does not hold"  # the paper's MI winner: MATR
    assert rows.loc["Table 2: MLEPF is best on SD", "verdict"].startswith("not comparable")
    flipped = pd.DataFrame(table_winner_claims(_scores("cnn"))).set_index("claim")
    assert flipped.loc["Table 1: Ours is best on AG", "verdict"] == "does not hold"
    assert "best: CNN" in flipped.loc["Table 1: Ours is best on AG", "measured"]


def test_gain_claims() -> None:
    rows = pd.DataFrame(gain_claims(_scores("mopa")))
    assert (rows["verdict"] == "holds").all()  # 10 against about 1.0-1.8: far above every claimed gain
    worse = pd.DataFrame(gain_claims(_scores("cnn")))
    assert (worse["verdict"] == "does not hold").all()
    assert gain_claims(_scores("mopa").query("method != 'mopa'"))[0]["verdict"].startswith("not comparable")


def test_ablation_and_cost_claims() -> None:
    means = pd.DataFrame({m: [1.0] * 5 for m in PAPER_COLUMNS},
                         index=["mopa.mask_only", "mopa.attention_only", "mopa.contrast_only", "mopa.decouple_only",
                                "mopa"])
    means.loc["mopa"] = 2.0
    assert ablation_claims(means)[0]["verdict"] == "holds"
    means.loc["mopa.mask_only", "AG"] = 3.0
    assert ablation_claims(means)[0]["verdict"] == "does not hold" and "AG: mopa.mask_only" in \
        ablation_claims(means)[0]["measured"]
    assert ablation_claims(None)[0]["verdict"].startswith("not comparable")
    costs = pd.DataFrame({"method": ["sdnet", "mopa", "legff"], "Method": ["SDNet", "Ours", "LEGFF"],
                          "Time/s per pair": [0.05, 0.1, 0.3], "GFLOPs": [3.7, 1.0, "n/a"],
                          "Params (M)": [0.03, 0.0123, "n/a"]})
    rows = pd.DataFrame(cost_claims(costs, "run")).set_index("claim")
    assert rows.filter(like="shortest) average running time", axis=0)["verdict"].iloc[0] == "does not hold"
    assert rows.filter(like="SDNet has the shortest", axis=0)["verdict"].iloc[0] == "holds"
    assert rows.filter(like="smallest computation", axis=0)["verdict"].iloc[0] == "does not hold"
    assert rows.filter(like="parameters", axis=0)["verdict"].iloc[0] == "does not hold"  # 12,300 vs 5e6
    table = claims_table(_scores("mopa"), means, costs, "run")
    assert list(table.columns) == ["claim", "paper", "measured", "verdict"] and len(table) > 20
    assert np.all(table["verdict"].str.len() > 0)


def test_training_state_reads_the_weights_provenance(tmp_path) -> None:
    (tmp_path / "README.md").write_text("# w\n\nSchedule: 1 epoch of 64x64 patches.\n\nThese are a *reduced* "
                                        "schedule's weights. Other text.\n")
    assert training_state(tmp_path).startswith("Schedule: 1 epoch") and "reduced schedule" in training_state(tmp_path)
    assert training_state(tmp_path / "none").startswith("unknown")
