"""What a report reads: the results store (through :class:`fusionbench.store.ResultsStore`, current rows
only) or its compressed export, plus registry and dataset metadata for names, directions and groups.

A committed report carries its results as ``results/`` (gzip CSV, current rows
only: a few hundred kB) instead of the SQLite store; :meth:`ReportData.load`
reads either, and :func:`export` writes that folder.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from fusionbench.method_registry import METHODS
from fusionbench.metric_registry import METRICS, PAPER_ORDER
from fusionbench.registry import natural_key

EXPORT_DIR = "results"
EXPORT_TABLES = ("scores", "outputs", "runs", "failures", "methods", "skipped")
#: The export's record of the metric version behind each metric's scores (``metric, version``).
METRIC_VERSIONS_FILE = "metric_versions.csv"
_KNOWN_ORDER = ("harvard-mri-pet", "harvard-mri-spect", "harvard-mri-ct", "tno", "builtin-mri-pet",
                "builtin-mri-spect", "builtin-mri-ct")


#: What reading a dataset raises when its files are not here (OSError), it is not registered in this
#: process (KeyError) or its manifest or dataset.json does not match its files (ValueError).  Anything
#: else is a bug, and is not caught where the report makes do without the data.
DATA_UNAVAILABLE = (OSError, KeyError, ValueError)


def dataset_title(dataset: str) -> str:
    """The dataset's title from its manifest or ``dataset.json`` (``fusionbench.data``), else its name."""
    from fusionbench.data.titles import dataset_title as title

    return title(dataset)


def dataset_task(dataset: str) -> str | None:
    """The task a dataset declares (``MRI-PET``, ..., ``IR-VIS``), or ``None`` where it declares none."""
    from fusionbench.data.base import dataset_info

    if dataset.startswith("folder:"):
        try:
            from fusionbench.data.folder import read_folder_metadata

            return read_folder_metadata(Path(dataset.split(":", 1)[1]).expanduser()).task
        except (ImportError, OSError, ValueError):
            return None
    try:
        return dataset_info(dataset).task or None
    except KeyError:
        return None


@dataclass
class Groups:
    """Subject/series groups of a dataset's pairs, as its manifest declares them (:func:`dataset_groups`), or of the
    pairs a run scored on it (:meth:`of_pairs`, what a table's footnote and ``too_few`` count: the groups the
    bootstrap resamples)."""

    by_pair: dict[str, str] = field(default_factory=dict)
    level: str | None = None  # "series", "subject", or None when unknown
    note: str = ""

    def of_pairs(self, pairs: Iterable[object]) -> "Groups":
        """These groups restricted to ``pairs`` (pair ids, compared as text): the groups of the pairs a run scored,
        which :func:`fusionbench.report.stats.group_bootstrap_ci` resamples.  A pair the manifest gives no group is
        left out, as the bootstrap then resamples by pair; no group left is "groups unknown".  Before session 37 the
        footnote and ``too_few`` counted every group of the manifest ("resampling 15 series groups" for 10
        MRI-SPECT paper20 pairs from 7 series)."""
        wanted = {str(p) for p in pairs}
        kept = {p: g for p, g in self.by_pair.items() if str(p) in wanted}
        return Groups(kept, self.level if kept else None, self.note)

    @property
    def too_few(self) -> bool:
        """Whether there are known groups, but fewer than a group bootstrap CI needs
        (:data:`fusionbench.report.stats.MIN_CI_UNITS`)."""
        from .stats import MIN_CI_UNITS

        return bool(self.by_pair and self.level) and len(set(self.by_pair.values())) < MIN_CI_UNITS

    def describe(self) -> str:
        """How the bootstrap resamples, for the report: ``resampling N <level> groups``, that there are too few
        groups for a CI, or that pairs are resampled as if independent (with the note)."""
        from .stats import MIN_CI_UNITS

        note = f" ({self.note})" if self.note else ""
        if not self.by_pair or not self.level:
            return "groups unknown: pairs resampled as if independent" + note
        n = len(set(self.by_pair.values()))
        if self.too_few:
            return (f"no CI: {n} {self.level} group{'s' if n != 1 else ''}, too few to resample (a group bootstrap "
                    f"needs at least {MIN_CI_UNITS}; with 3 its 95 % percentile interval is just the range of the "
                    f"group means)" + note)
        return f"resampling {n} {self.level} groups" + note

    def ci_sentence(self) -> str:
        """The tables' footnote sentence on their 95 % CIs."""
        if self.too_few:
            return f"95 % CIs (HTML, CSV): {self.describe()}."
        from .stats import MIN_CI_UNITS

        # a cell over fewer pairs (a method that failed on some) resamples the groups of its own pairs (review of
        # session 37: the count above is the table's, not every cell's)
        return (f"95 % CIs (HTML, CSV): bootstrap, {self.describe()} over the table's pairs; a cell over fewer "
                f"pairs resamples its own pairs' groups, and has none (n/a) with fewer than {MIN_CI_UNITS} of them "
                "or over an infinite score.")


def dataset_groups(dataset: str, data_dir: str | Path | None = None) -> Groups:
    """The groups the dataset's manifest (or ``dataset.json``) declares; empty where unknown."""
    try:
        from fusionbench.data import create_dataset

        ds = create_dataset(dataset, data_dir=data_dir)
    except DATA_UNAVAILABLE:  # data not available here: groups unknown, said so in the report
        return Groups(note="dataset not available to read its groups")
    groups = {p.id: p.group for p in ds.pairs if getattr(p, "group", None)}
    return Groups(groups, getattr(ds, "group_level", None) if groups else None, getattr(ds, "group_note", ""))


def display_name(method: str, known: dict[str, dict[str, str]] | None = None) -> str:
    """The name a method was recorded under (store's ``methods`` table), else its registered one, else its name."""
    if known and method in known and known[method].get("display_name"):
        return known[method]["display_name"]
    entry = METHODS.find(method)
    return method if entry is None else entry.info.display_name


def method_family(method: str) -> str:
    """The family ``method`` is registered in (``""`` where it is not registered here, a plugin's say); a store's
    ``methods`` table records it too (``ReportData.methods_meta``), which a report prefers."""
    entry = METHODS.find(method)
    return "" if entry is None else entry.info.family


def higher_is_better(metric: str) -> bool:
    """Whether larger values of ``metric`` are better (its registered direction); ``True`` if it is not registered."""
    entry = METRICS.find(metric)
    return True if entry is None else entry.info.higher_is_better


def rankable(metric: str) -> bool:
    """Whether ``metric`` has a direction to rank by (``MetricInfo.rankable``); ``True`` if it is not registered."""
    entry = METRICS.find(metric)
    return True if entry is None else entry.info.rankable


def metric_arrow(metric: str) -> str:
    """``MetricInfo.arrow`` of ``metric`` (``↑``, ``↓``, or ``·`` when not rankable); ``↑`` if it is not registered."""
    entry = METRICS.find(metric)
    return "↑" if entry is None else entry.info.arrow


def metric_convention(metric: str) -> str:
    """The one-line convention ``metric`` is registered with (for footnotes); empty if it is not registered."""
    entry = METRICS.find(metric)
    return "" if entry is None else entry.info.convention


def method_order(methods: list[str]) -> list[str]:
    """Baselines in natural order, the paper's own network (``mopa*``) last."""
    return sorted(methods, key=lambda m: (m.startswith("mopa"), natural_key(m)))


def metric_order(metrics: list[str]) -> list[str]:
    """The paper's seven metrics first, in its column order (:data:`PAPER_ORDER`: AG, EN, SF, SD, CC, MI, SCD);
    the others after them in natural order."""
    paper = [m for m in PAPER_ORDER if m in metrics]
    return paper + sorted((m for m in metrics if m not in PAPER_ORDER), key=natural_key)


def dataset_order(names: list[str]) -> list[str]:
    """``names`` with the Harvard, TNO and built-in datasets first, in that fixed order, then the rest by name."""
    return sorted(names, key=lambda d: (_KNOWN_ORDER.index(d) if d in _KNOWN_ORDER else len(_KNOWN_ORDER), d))


def _empty(columns: str) -> pd.DataFrame:
    return pd.DataFrame(columns=columns.split(","))


def _in_key_order(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``frame`` sorted by the ``keys`` it has (stable; a fresh 0…n−1 index), so statistics do not depend on row order."""
    present = [k for k in keys if k in frame.columns]
    if not present or frame.empty:
        return frame
    return frame.sort_values(present, kind="stable").reset_index(drop=True)


def _exported_versions(path: Path, scores: pd.DataFrame) -> dict[str, str]:
    """``{metric: version}`` recorded beside an export; an export written before metric versions has none,
    and its scores are read as version 1."""
    metrics = sorted(set(scores["metric"])) if "metric" in scores.columns else []
    versions = {m: "1" for m in metrics}
    if path.is_file():
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        versions.update(zip(table["metric"], table["version"]))
    return versions


#: the columns of an export that are identifiers, read as text whatever they look like
TEXT_COLUMNS = ("pair", "method_key", "pair_sha256", "fused_sha256")


def _read_export_table(path: Path) -> pd.DataFrame:
    """One CSV (or gzip CSV) of a ``results/`` export; a file that does not parse is one error naming it."""
    try:
        # identifiers as text: an all-digit pair id, or a method key / digest of digits (and one 'e'), read as numbers
        return pd.read_csv(path, dtype=dict.fromkeys(TEXT_COLUMNS, str), keep_default_na=False, na_values=[""])
    except (OSError, EOFError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ValueError(f"{path}: unreadable export table ({type(exc).__name__}: {exc}); rebuild the export with "
                         "`fusionbench report` from the results store") from None


@dataclass
class ReportData:
    """Everything a report reads, current rows only (stale method versions and changed pairs left out)."""

    db: Path
    scores: pd.DataFrame   # dataset, pair, method, metric, value
    outputs: pd.DataFrame  # dataset, pair, method, path, seconds, run_id, method_key, pair_sha256, fused_sha256
    runs: pd.DataFrame
    failures: pd.DataFrame
    methods_meta: dict[str, dict[str, str]] = field(default_factory=dict)
    skipped: pd.DataFrame = field(default_factory=lambda: _empty("dataset,method,reason"))
    #: ``{metric: version}`` of the scores held (the preset version that computed them)
    metric_versions: dict[str, str] = field(default_factory=dict)
    #: ``{metric: (version in the export, registered version)}``: scores left out of an export as stale
    stale_metrics: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: ``{dataset: split}`` its rows are over, where :meth:`within_split` set one (each dataset's own run's split)
    dataset_splits: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # rows in a fixed order (by dataset, method, metric, pair), not in the order the run's workers finished
        # them: a std's float sum and the bootstrap's resamples depend on the order of the values, so without
        # this two runs of the same command (or a rebuild from the export) gave CIs differing in the 3rd decimal
        self.scores = _in_key_order(self.scores, ["dataset", "method", "metric", "pair"])
        self.outputs = _in_key_order(self.outputs, ["dataset", "method", "pair"])

    @classmethod
    def load(cls, source: str | Path) -> "ReportData":
        """Read an OUT folder, its ``results.sqlite``, or a report's ``results/`` export."""
        source = Path(source)
        if source.is_dir() and (source / "results.sqlite").is_file():
            source = source / "results.sqlite"
        elif source.is_dir() and (source / EXPORT_DIR / "scores.csv.gz").is_file():
            source = source / EXPORT_DIR
        if source.is_dir() and (source / "scores.csv.gz").is_file():
            return cls._from_export(source)
        if not source.is_file():
            raise FileNotFoundError(f"{source}: no results store (run `fusionbench run` first)")
        return cls._from_store(source)

    @classmethod
    def _from_store(cls, db: Path) -> "ReportData":
        from fusionbench.store import ResultsStore

        with ResultsStore.snapshot(db) as store:  # read only: works where the folder is not writable
            history = store.scores_frame(history=True)
            scores = history[["dataset", "pair", "method", "metric", "value"]]
            versions = dict(zip(history["metric"], history["metric_version"]))
            outputs = store.outputs_frame()
            runs = store.runs_frame()
            failures = store.failures_frame()
            skipped = store.skipped_frame()
            meta = store.method_metadata()
        if not runs.empty:  # which runs wrote a current score or output: the ones behind this report's numbers
            made = pd.concat([pd.to_numeric(history["run_id"], errors="coerce"),
                              pd.to_numeric(outputs.get("run_id", pd.Series(dtype=float)), errors="coerce")])
            runs = runs.assign(made_results=runs["run_id"].isin(set(made.dropna().astype(int))))
        return cls(db, scores, outputs, runs, failures, meta, skipped, versions)

    @classmethod
    def _from_export(cls, folder: Path) -> "ReportData":
        frames = {}
        for name in EXPORT_TABLES:
            path = folder / (f"{name}.csv.gz" if name in ("scores", "outputs") else f"{name}.csv")
            frames[name] = _read_export_table(path) if path.is_file() else pd.DataFrame()
        meta = {r["method"]: {k: ("" if pd.isna(v) else str(v)) for k, v in r.items() if k != "method"}
                for r in frames["methods"].to_dict("records")} if not frames["methods"].empty else {}
        scores = frames["scores"]
        exported = _exported_versions(folder / METRIC_VERSIONS_FILE, scores)
        from fusionbench.metric_registry import metric_versions

        registered = metric_versions(exported)
        stale = {m: (v, registered[m]) for m, v in exported.items() if m in registered and registered[m] != v}
        if stale and not scores.empty:
            scores = scores[~scores["metric"].isin(list(stale))]
        return cls(folder, scores, frames["outputs"], frames["runs"], frames["failures"], meta,
                   frames["skipped"] if not frames["skipped"].empty else _empty("dataset,method,reason"),
                   {m: v for m, v in exported.items() if m not in stale}, stale)

    # ------------------------------------------------------------------ views
    def within_split(self, split: str | None, data_dir: str | Path | None) -> list[str]:
        """Keep only the rows of the pairs each dataset holds now in its split, as listed from ``data_dir``; one line
        per dataset that had others or could not be checked (``[]`` when there is nothing to say).

        A dataset's split is that of the newest run whose outputs it holds (:meth:`_run_splits`), else ``split``
        (the last run's).  A store can hold several splits' runs (two commands with the default ``--out``) and
        pairs since removed from or renamed in a folder; until session 39 a report pooled them all into each table
        and labelled it with the last run's split (session 39's CLI audit).  A dataset that cannot be listed here
        (its data on another machine), has no such split, or would lose every row keeps its rows, and says so."""
        from fusionbench.data import create_dataset

        by_run = self._run_splits()
        lines = []
        for dataset in self.datasets():
            ds_split = by_run.get(dataset) or split or "all"
            self.dataset_splits[dataset] = ds_split  # what its tables say they are over
            held = set(self.scores.loc[self.scores["dataset"] == dataset, "pair"].astype(str))
            if not self.outputs.empty:
                held |= set(self.outputs.loc[self.outputs["dataset"] == dataset, "pair"].astype(str))
            try:
                listed = create_dataset(dataset, data_dir=data_dir)
                ids = ({str(pair.id) for pair in listed.select(ds_split)}
                       if ds_split == "all" or ds_split in listed.splits else None)
            except Exception:  # noqa: BLE001 - any dataset, plugin ones included: its rows stay as they are
                continue
            gone = held - (ids or set())
            if ids is None or not ids or gone == held:
                if gone:
                    why = (f"it has no {ds_split!r} split" if ids is None or not ids
                           else f"none of them is in its {ds_split!r} split")
                    lines.append(f"{dataset}: {why} as the data holds it now; its {len(held)} pairs with scores are "
                                 "kept, the split label notwithstanding")
                continue
            if not gone:
                continue
            for name in ("scores", "outputs"):
                frame = getattr(self, name)
                if not frame.empty:
                    setattr(self, name, frame[~((frame["dataset"] == dataset) & frame["pair"].astype(str).isin(gone))])
            lines.append(f"{dataset}: {len(gone)} of the {len(held)} pairs with results are not in its {ds_split!r} "
                         "split as the data holds it now (rows of another split's run, or pairs since removed or "
                         f"renamed): left out; the tables are over the {len(held) - len(gone)} others")
        return lines

    def _run_splits(self) -> dict[str, str]:
        """``{dataset: split}``: the split of the newest run among those that wrote a dataset's outputs (the
        outputs' ``run_id``), where the runs recorded one."""
        if self.outputs.empty or "run_id" not in self.outputs or self.runs.empty or "config" not in self.runs:
            return {}
        splits = {}
        for run_id, config in zip(self.runs["run_id"], self.runs["config"]):
            try:
                doc = json.loads(config) if isinstance(config, str) else dict(config)
            except (TypeError, ValueError):
                continue
            if isinstance(doc, dict) and doc.get("split"):
                splits[int(run_id)] = str(doc["split"])
        newest = (self.outputs.assign(run=pd.to_numeric(self.outputs["run_id"], errors="coerce"))
                  .dropna(subset=["run"]).groupby("dataset")["run"].max())
        return {d: splits[int(r)] for d, r in newest.items() if int(r) in splits}

    def datasets(self) -> list[str]:
        """The datasets with scores, in :func:`dataset_order`."""
        return dataset_order(list(self.scores["dataset"].unique()))

    def methods(self, dataset: str | None = None) -> list[str]:
        """The methods with scores (on ``dataset``; default any), in :func:`method_order` (``mopa*`` last)."""
        df = self.scores if dataset is None else self.scores[self.scores["dataset"] == dataset]
        return method_order(list(df["method"].unique()))

    def metrics(self) -> list[str]:
        """The metrics with scores, in :func:`metric_order` (the paper's seven first)."""
        return metric_order(list(self.scores["metric"].unique()))

    def last_run(self) -> dict:
        """The newest run whose results the report shows, as a dict, its ``config``, ``versions`` and ``machine``
        JSON decoded where it parses; ``{}`` when there is no run.  That is the newest run that wrote a current
        score or output (the ``made_results`` column a store's reader adds, which the export keeps), so that a
        later run with nothing to do (a resume that only recorded metadata) does not stand for the results; for an
        export without that column, the run with the highest ``run_id`` among the outputs' rows (the run that
        fused each); else the newest row of ``runs``."""
        if self.runs.empty:
            return {}
        runs = self.runs
        if "made_results" in runs.columns:
            made = runs["made_results"].astype(str).str.lower().isin(["true", "1"])
            if made.any():
                runs = runs[made]
        elif not self.outputs.empty and "run_id" in self.outputs.columns and "run_id" in runs.columns:
            made = pd.to_numeric(self.outputs["run_id"], errors="coerce").dropna()
            maker = runs[pd.to_numeric(runs["run_id"], errors="coerce") == made.max()] if len(made) else runs.iloc[:0]
            if not maker.empty:
                runs = maker
        row = runs.iloc[-1].to_dict()
        for key in ("config", "versions", "machine"):
            try:
                row[key] = json.loads(row[key])
            except (TypeError, ValueError):
                pass
        return row

    def export(self, folder: str | Path, display_names: Mapping[str, str] | None = None) -> Path:
        """Write the current rows as ``folder/{scores,outputs}.csv.gz`` and small CSVs (what a report commits).

        ``display_names`` (``{method: name}``, unique: the report's names) replace the ``display_name`` column of
        ``methods.csv``, so that a reader joining on it finds the tables' names (``SwinFusion (ct)``; before session
        37 the export repeated the store's ``SwinFusion`` for ``swinfusion.ct``); the name the run recorded is kept
        in ``recorded_display_name`` (an export read back keeps its column as it is)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        scores = self.scores.sort_values(["dataset", "method", "pair", "metric"])
        scores.to_csv(folder / "scores.csv.gz", index=False,
                      compression={"method": "gzip", "mtime": 0})
        outputs = self.outputs.sort_values(["dataset", "method", "pair"]) if not self.outputs.empty else self.outputs
        outputs.to_csv(folder / "outputs.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
        for name, frame in (("runs", self.runs), ("failures", self.failures), ("skipped", self.skipped)):
            frame.to_csv(folder / f"{name}.csv", index=False)
        rows = []
        for m, v in self.methods_meta.items():
            recorded = v.get("recorded_display_name") or v.get("display_name", "")
            row = {"method": m, **v}
            if display_names and display_names.get(m):
                row["display_name"] = display_names[m]
            row["recorded_display_name"] = recorded
            rows.append(row)
        pd.DataFrame(rows).to_csv(folder / "methods.csv", index=False)
        pd.DataFrame(sorted(self.metric_versions.items()), columns=["metric", "version"]).to_csv(
            folder / METRIC_VERSIONS_FILE, index=False)
        return folder
