"""The results store: ``OUT/results.sqlite`` (stdlib sqlite3, WAL journal).

Tables (other tools and the reports read these names; keep them):

``runs``
    one row per invocation: command, config (JSON), package versions, git sha,
    machine, start/end time, status.
``outputs``
    one row per fused image: ``dataset, pair, method, method_key, pair_sha256,
    path`` (the content-addressed PNG), ``seconds`` (fusion wall time), run id.
``scores``
    long format, one row per ``dataset, pair, method, metric, value`` (plus
    ``method_key``, ``pair_sha256`` and run id).  ``value`` is NULL when the
    metric is undefined for that pair (e.g. SCD when F equals a source).
``failures``
    ``dataset, pair, method, stage, error, message, traceback`` (stage is
    ``fuse`` or ``score``; ``metric`` names the metric of a score failure).
``methods``
    one row per (method, method_key) a run used: ``display_name, family,
    citation, colour, source`` (``builtin``, a plugin, or ``results:PATH`` for a
    folder of external results), so that a report names every method without
    the registry that made it.

Every write is one committed transaction, so a run killed at any instant keeps
all that was committed; primary keys make a repeated write replace, never
duplicate, a row.  Only the client process writes.
"""
from __future__ import annotations

import json
import math
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL DEFAULT 'running',
    command TEXT NOT NULL,
    config TEXT NOT NULL,
    versions TEXT NOT NULL,
    git_sha TEXT,
    machine TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outputs (
    dataset TEXT NOT NULL,
    pair TEXT NOT NULL,
    method TEXT NOT NULL,
    method_key TEXT NOT NULL,
    pair_sha256 TEXT NOT NULL,
    path TEXT NOT NULL,
    seconds REAL,
    run_id INTEGER,
    created REAL NOT NULL,
    PRIMARY KEY (dataset, pair, method, method_key)
);
CREATE TABLE IF NOT EXISTS scores (
    dataset TEXT NOT NULL,
    pair TEXT NOT NULL,
    method TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    method_key TEXT NOT NULL,
    pair_sha256 TEXT NOT NULL,
    run_id INTEGER,
    created REAL NOT NULL,
    PRIMARY KEY (dataset, pair, method, metric, method_key)
);
CREATE TABLE IF NOT EXISTS failures (
    dataset TEXT NOT NULL,
    pair TEXT NOT NULL,
    method TEXT NOT NULL,
    stage TEXT NOT NULL,
    metric TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL,
    message TEXT NOT NULL,
    traceback TEXT,
    method_key TEXT NOT NULL DEFAULT '',
    run_id INTEGER,
    created REAL NOT NULL,
    PRIMARY KEY (dataset, pair, method, stage, metric)
);
CREATE TABLE IF NOT EXISTS methods (
    method TEXT NOT NULL,
    method_key TEXT NOT NULL,
    display_name TEXT NOT NULL,
    family TEXT NOT NULL DEFAULT '',
    citation TEXT NOT NULL DEFAULT '',
    colour TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    run_id INTEGER,
    PRIMARY KEY (method, method_key)
);
CREATE INDEX IF NOT EXISTS scores_by_method ON scores (dataset, method, metric);
"""


class ResultsStore:
    """A thin, typed wrapper around ``results.sqlite``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, timeout=60)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ runs
    def start_run(self, command: str, config: dict[str, Any], versions: dict[str, str], git_sha: str | None,
                  machine: dict[str, Any]) -> int:
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO runs (started, command, config, versions, git_sha, machine) VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), command, json.dumps(config, default=str), json.dumps(versions), git_sha, json.dumps(machine)),
            )
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str = "done") -> None:
        with self.conn:
            self.conn.execute("UPDATE runs SET finished = ?, status = ? WHERE run_id = ?", (time.time(), status, run_id))

    # ------------------------------------------------------------------ reads
    def scored_metrics(self, dataset: str, pair: str, method: str, method_key: str) -> set[str]:
        rows = self.conn.execute(
            "SELECT metric FROM scores WHERE dataset=? AND pair=? AND method=? AND method_key=?",
            (dataset, pair, method, method_key),
        )
        return {r[0] for r in rows}

    def done_index(self, dataset: str) -> dict[tuple[str, str, str], set[str]]:
        """``{(pair, method, method_key): {metrics}}`` for one dataset (one query, used by the planner)."""
        out: dict[tuple[str, str, str], set[str]] = {}
        for pair, method, key, metric in self.conn.execute(
            "SELECT pair, method, method_key, metric FROM scores WHERE dataset=?", (dataset,)
        ):
            out.setdefault((pair, method, key), set()).add(metric)
        return out

    def output_path(self, dataset: str, pair: str, method: str, method_key: str) -> str | None:
        row = self.conn.execute(
            "SELECT path FROM outputs WHERE dataset=? AND pair=? AND method=? AND method_key=?",
            (dataset, pair, method, method_key),
        ).fetchone()
        return row[0] if row else None

    def method_metadata(self) -> dict[str, dict[str, str]]:
        """``{method: {display_name, family, citation, colour, source}}`` as last recorded by a run."""
        rows = self.conn.execute(
            "SELECT method, display_name, family, citation, colour, source FROM methods ORDER BY run_id"
        )
        return {m: {"display_name": d, "family": f, "citation": c, "colour": col, "source": src}
                for m, d, f, c, col, src in rows}

    def count(self, table: str) -> int:
        if table not in ("runs", "outputs", "scores", "failures", "methods"):
            raise ValueError(table)
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def scores_frame(self, datasets: Iterable[str] | None = None):
        """All scores as a pandas DataFrame (``dataset, pair, method, metric, value``)."""
        import pandas as pd

        df = pd.read_sql_query("SELECT dataset, pair, method, metric, value FROM scores", self.conn)
        if datasets is not None:
            df = df[df["dataset"].isin(list(datasets))]
        return df

    # ------------------------------------------------------------------ writes
    def record_methods(self, run_id: int, methods: Iterable[tuple[str, str, dict[str, str]]]) -> None:
        """Record ``(method, method_key, metadata)`` of every method a run uses (see the ``methods`` table)."""
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO methods VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(name, key, meta.get("display_name") or name, meta.get("family", ""), meta.get("citation", ""),
                  meta.get("colour", ""), meta.get("source", ""), run_id) for name, key, meta in methods],
            )

    def record_task(self, result: dict[str, Any], run_id: int) -> None:
        """Write one worker result (output, scores, failures) in a single transaction."""
        now = time.time()
        ds, pair, method = result["dataset"], result["pair"], result["method"]
        key, sha = result["method_key"], result["pair_sha256"]
        with self.conn:
            if result.get("path"):
                self.conn.execute(
                    "INSERT OR REPLACE INTO outputs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (ds, pair, method, key, sha, result["path"], result.get("seconds"), run_id, now),
                )
                self.conn.execute(
                    "DELETE FROM failures WHERE dataset=? AND pair=? AND method=? AND stage='fuse'", (ds, pair, method)
                )
            for metric, value in result.get("scores", {}).items():
                if value is not None and not math.isfinite(value):
                    value = None
                self.conn.execute(
                    "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (ds, pair, method, metric, value, key, sha, run_id, now),
                )
                self.conn.execute(
                    "DELETE FROM failures WHERE dataset=? AND pair=? AND method=? AND stage='score' AND metric=?",
                    (ds, pair, method, metric),
                )
            for failure in result.get("failures", []):
                self.record_failure(ds, pair, method, key=key, run_id=run_id, commit=False, **failure)

    def record_failure(self, dataset: str, pair: str, method: str, *, stage: str, error: str, message: str,
                       traceback: str = "", metric: str = "", key: str = "", run_id: int | None = None,
                       commit: bool = True) -> None:
        args = (dataset, pair, method, stage, metric, error, message, traceback, key, run_id, time.time())
        if commit:
            with self.conn:
                self.conn.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", args)
        else:
            self.conn.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", args)
