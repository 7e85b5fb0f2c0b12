"""What a report reads: the results store, plus registry metadata for names and directions."""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fusionbench.method_registry import METHODS
from fusionbench.metric_registry import METRICS, PAPER_ORDER
from fusionbench.registry import natural_key

DATASET_TITLES = {
    "harvard-mri-pet": "MRI-PET (Harvard AANLIB)",
    "harvard-mri-spect": "MRI-SPECT (Harvard AANLIB)",
    "harvard-mri-ct": "MRI-CT (Harvard AANLIB)",
    "tno": "IR-VIS (TNO)",
    "builtin-mri-pet": "MRI-PET (built-in, simulated PET)",
    "builtin-mri-spect": "MRI-SPECT (built-in, simulated SPECT)",
    "builtin-mri-ct": "MRI-CT (built-in, simulated CT)",
}


def display_name(method: str) -> str:
    """The table name of a method (its registered display name, else its registry name)."""
    try:
        return METHODS.get(method).info.display_name
    except KeyError:
        return method


def higher_is_better(metric: str) -> bool:
    try:
        return METRICS.get(metric).info.higher_is_better
    except KeyError:
        return True


def metric_convention(metric: str) -> str:
    try:
        return METRICS.get(metric).info.convention
    except KeyError:
        return ""


def method_order(methods: list[str]) -> list[str]:
    """Baselines in natural order, the paper's own network (``mopa*``) last."""
    return sorted(methods, key=lambda m: (m.startswith("mopa"), natural_key(m)))


def metric_order(metrics: list[str]) -> list[str]:
    paper = [m for m in PAPER_ORDER if m in metrics]
    return paper + sorted((m for m in metrics if m not in PAPER_ORDER), key=natural_key)


@dataclass
class ReportData:
    """Everything read from ``results.sqlite``."""

    db: Path
    scores: pd.DataFrame   # dataset, pair, method, metric, value
    outputs: pd.DataFrame  # dataset, pair, method, path, seconds
    runs: pd.DataFrame
    failures: pd.DataFrame

    @classmethod
    def load(cls, db: str | Path) -> "ReportData":
        db = Path(db)
        if db.is_dir():
            db = db / "results.sqlite"
        if not db.is_file():
            raise FileNotFoundError(f"{db}: no results store (run `fusionbench run` first)")
        con = sqlite3.connect(db)
        try:
            scores = pd.read_sql_query("SELECT dataset, pair, method, metric, value FROM scores", con)
            outputs = pd.read_sql_query("SELECT dataset, pair, method, path, seconds FROM outputs", con)
            runs = pd.read_sql_query("SELECT * FROM runs ORDER BY run_id", con)
            failures = pd.read_sql_query("SELECT dataset, pair, method, stage, metric, error, message FROM failures", con)
        finally:
            con.close()
        return cls(db, scores, outputs, runs, failures)

    def datasets(self) -> list[str]:
        order = list(DATASET_TITLES)
        names = list(self.scores["dataset"].unique())
        return sorted(names, key=lambda d: (order.index(d) if d in order else len(order), d))

    def methods(self, dataset: str | None = None) -> list[str]:
        df = self.scores if dataset is None else self.scores[self.scores["dataset"] == dataset]
        return method_order(list(df["method"].unique()))

    def metrics(self) -> list[str]:
        return metric_order(list(self.scores["metric"].unique()))

    def last_run(self) -> dict:
        if self.runs.empty:
            return {}
        row = self.runs.iloc[-1].to_dict()
        for key in ("config", "versions", "machine"):
            try:
                row[key] = json.loads(row[key])
            except (TypeError, ValueError):
                pass
        return row
