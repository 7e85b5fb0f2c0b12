"""The results store: ``OUT/results.sqlite`` (stdlib sqlite3, WAL journal).

Tables (other tools and the reports read these names; keep them):

``runs``
    one row per invocation: command, config (JSON), package versions, git sha,
    machine, start/end time, status, and ``owner`` (JSON: host name, pid and
    start time of the process that ran it).  ``status`` is ``running`` while it
    runs, then ``done``, ``interrupted`` or ``failed: <error>``; a run whose
    process ended without closing it (``kill -9``, the out-of-memory killer, a
    power cut) reads ``killed`` (:data:`KILLED`) once a process on the same
    machine sees that its owner is gone.
``outputs``
    one row per fused image: ``dataset, pair, method, method_key, pair_sha256,
    path`` (the content-addressed PNG), ``seconds`` (fusion wall time), run id,
    and ``fused_sha256``, the digest of the image's pixels
    (:func:`fusionbench.io.pixel_sha256`), so that a re-run, or a copy of the
    cache, can be checked image by image; NULL in rows written before it was
    recorded, until a run scores that image again.
``scores``
    long format, one row per ``dataset, pair, method, metric, value`` (plus
    ``method_key``, ``pair_sha256``, run id and ``metric_version``, the
    preset's :attr:`~fusionbench.metric_registry.MetricInfo.version` that
    computed it).  ``value`` is NULL when the metric is undefined for that pair
    (e.g. SCD when F equals a source); an infinite value is kept (PSNR of F = A = B is
    ``inf``; until session 37 it was NULL too, and a run's mean left that pair out).
``failures``
    ``dataset, pair, method, stage, error, message, traceback`` (stage is
    ``fuse`` or ``score``; ``metric`` names the metric of a score failure).
``methods``
    one row per (method, method_key) a run used: ``display_name, family,
    citation, colour, source`` (``builtin``, a plugin, or ``results:PATH`` for a
    folder of external results), so that a report names every method without
    the registry that made it.  Its ``run_id`` is the latest run that used that key.
``method_weights``
    one row per (method, method_key) a run used: ``weights``, the JSON of
    :func:`fusionbench.weights_provenance.weights_record` (where the learned
    weights came from, for which tasks, on what data) as the latest run using
    that key found them when it started, so that a report built later describes
    the weights behind the key's outputs, not those installed then.  That holds
    because a method's key includes its weights (the registered object's
    ``cache_token``: ``mopa`` and SwinFusion give their weights' sha256; official
    weights are pinned by sha256 in the code); a trainable method whose key does
    not would reuse its old outputs under a record of new weights.
    A table of its own (session 35), not a column of ``methods``: fusionbench
    before then inserts into ``methods`` by position, and still writes to a store
    a newer version has opened.  No row: a store written before session 35, or
    external results.
``skipped``
    ``run_id, dataset, method, reason``: every (method, dataset) a run did not
    run and why (weights unavailable, a method restricted to other tasks, a
    dataset without the requested split).

**Current rows.**  Rows are never deleted when a method changes: a new
version (or new parameters, or retrained weights) writes rows under a new
``method_key``, and the older rows stay as history.  A changed input file is
recorded under a new ``pair_sha256``; a method run on it replaces its own row of
that pair (the keys hold no ``pair_sha256``), and the other methods' rows of the
old file stay, not current, until they run again.  The readers (:meth:`ResultsStore.scores_frame`,
:meth:`outputs_frame`, :meth:`failures_frame`, :meth:`skipped_frame`) return
only *current* rows by default:

* the current key of a method is the key recorded in ``methods`` by the latest
  run that used the method (each run records the keys of the methods as they
  are registered when it starts); for a method without a ``methods`` row (a
  store written before that table) it is the key of its latest ``scores`` row;
  a caller may pass ``keys={method: key}`` to override;
* the current sha256 of a pair is that of its latest ``scores`` row (any
  method): a pair file replaced on disk makes the other methods' rows of the old
  file not current;
* a score is current only if its ``metric_version`` is the registered preset's
  version (a preset not registered here is read as stored).  A metric whose
  version was bumped is therefore missing from the readers until a run
  re-scores it; the planner (:meth:`ResultsStore.done_index`) counts such rows
  as not done, and the run scores them again from the cached fused image
  (the new score replaces the old row).
  Stores written before metric versions existed read their rows as version 1.

:meth:`ResultsStore.superseded` counts the rows that are not current.

Every write is one committed transaction, so a run killed at any instant keeps
all that was committed; primary keys make a repeated write replace, never
duplicate, a row.  Only the client process writes.
"""
from __future__ import annotations

import json
import math
import sqlite3
import time
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

if TYPE_CHECKING:
    import pandas as pd

    from .worker import TaskResult

TABLES = ("runs", "outputs", "scores", "failures", "methods", "method_weights", "skipped")

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
    machine TEXT NOT NULL,
    owner TEXT
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
    fused_sha256 TEXT,
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
    metric_version TEXT NOT NULL DEFAULT '1',
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
CREATE TABLE IF NOT EXISTS method_weights (
    method TEXT NOT NULL,
    method_key TEXT NOT NULL,
    weights TEXT NOT NULL,
    run_id INTEGER,
    PRIMARY KEY (method, method_key)
);
CREATE TABLE IF NOT EXISTS skipped (
    run_id INTEGER NOT NULL,
    dataset TEXT NOT NULL,
    method TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (run_id, dataset, method)
);
CREATE INDEX IF NOT EXISTS scores_by_method ON scores (dataset, method, metric);
"""


SCORE_COLUMNS = "dataset, pair, method, metric, value, method_key, pair_sha256, run_id, created, metric_version"
OUTPUT_COLUMNS = "dataset, pair, method, method_key, pair_sha256, path, seconds, run_id, created, fused_sha256"


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a store written by an older fusionbench up to :data:`SCHEMA` (columns added since)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(scores)")}
    if "metric_version" not in columns:
        conn.execute("ALTER TABLE scores ADD COLUMN metric_version TEXT NOT NULL DEFAULT '1'")
    if "owner" not in {row[1] for row in conn.execute("PRAGMA table_info(runs)")}:
        conn.execute("ALTER TABLE runs ADD COLUMN owner TEXT")
    if "fused_sha256" not in {row[1] for row in conn.execute("PRAGMA table_info(outputs)")}:
        conn.execute("ALTER TABLE outputs ADD COLUMN fused_sha256 TEXT")
    conn.commit()


#: ``PRAGMA application_id`` of a fusionbench results store (the bytes ``FBrs``), stamped on every store opened
#: for writing since session 37; a store written before reads 0 and is recognised by its tables
APPLICATION_ID = 0x46427273
#: columns added to a table after its first release (:func:`_migrate` adds them to an older store)
_ADDED_COLUMNS = {"scores": {"metric_version"}, "runs": {"owner"}, "outputs": {"fused_sha256"}}


@cache
def _schema_columns() -> dict[str, frozenset[str]]:
    """Each table of :data:`SCHEMA` with its columns."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(SCHEMA)
        return {t: frozenset(row[1] for row in conn.execute(f"PRAGMA table_info({t})")) for t in TABLES}
    finally:
        conn.close()


def not_a_store(conn: sqlite3.Connection) -> str:
    """Why the database on ``conn`` is not a fusionbench results store, or ``""`` when it is one (or is empty:
    a new store).  One is either stamped with :data:`APPLICATION_ID`, or unstamped (written before session 37)
    with fusionbench's tables having their columns (those :func:`_migrate` adds may be missing) and no other
    table unless ``runs`` and ``scores`` are there (a store its owner added a table to; a store being created
    by another process has only some of fusionbench's tables yet).
    Reads only: it runs before anything is written, so that another program's ``results.sqlite`` in an
    ``--out`` folder is left as it was (session 37's audit: a database with its own ``scores`` table got
    fusionbench's seven tables added, then the run failed on ``no such column: dataset``; one without was
    adopted silently)."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if app_id == APPLICATION_ID:
        return ""
    if app_id != 0:
        return f"its application id is {app_id & 0xFFFFFFFF:#010x}, another program's file format"
    tables = sorted(name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                    if not name.startswith("sqlite_"))
    expected = _schema_columns()
    for table in (t for t in tables if t in TABLES):
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}  # a name of TABLES: no quoting
        missing = sorted(expected[table] - _ADDED_COLUMNS.get(table, set()) - have)
        if missing:
            return f"its table {table} lacks fusionbench's columns {', '.join(missing)}"
    foreign = [t for t in tables if t not in TABLES]
    if foreign and not {"runs", "scores"} <= set(tables):  # a store someone added a table to is still one
        return f"it holds tables fusionbench does not create: {', '.join(foreign)}"
    return ""


def _refuse_foreign(conn: sqlite3.Connection) -> None:
    """``sqlite3.DatabaseError`` unless :func:`not_a_store` finds the database a fusionbench store."""
    reason = not_a_store(conn)
    if reason:
        raise sqlite3.DatabaseError(f"not a fusionbench results store ({reason}); fusionbench leaves it as it is "
                                    "(give the run an --out folder of its own)")


def check_store(path: str | Path) -> None:
    """:class:`StoreError` naming ``path`` if a file is there that is not a fusionbench results store; nothing is
    created or written (a run calls it before it makes any folder of its ``--out``)."""
    path = Path(path)
    if not path.is_file():
        return
    conn = None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=OPEN_TIMEOUT_S)
        _refuse_foreign(conn)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path} for writing: {exc}") from exc
    finally:
        if conn is not None:
            conn.close()


#: how the reasons of ``skipped`` rows about the split a run asked for begin (:mod:`fusionbench.runner`)
SPLIT_SKIP_REASONS = ("no split ", "no image pairs")


#: the status of a run whose process ended without closing it (see :func:`_killed_runs`)
KILLED = "killed"


def _killed_runs(conn: sqlite3.Connection) -> list[int]:
    """The ``running`` runs whose owner process, on this machine, has ended (:func:`owner_gone`)."""
    from .process_owner import owner_gone

    rows = conn.execute("SELECT run_id, owner FROM runs WHERE status = 'running' AND owner IS NOT NULL").fetchall()
    return [run_id for run_id, owner in rows if owner_gone(_json_or_none(owner))]


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def _current_versions(metrics: Iterable[str]) -> dict[str, str]:
    from .metric_registry import metric_versions

    return metric_versions(set(metrics))


class StoreError(RuntimeError):
    """The results store could not be opened, or written; the one-line message names its path."""


#: how long opening a store waits for another process that is creating the same new store
OPEN_TIMEOUT_S = 60.0


def _enable_wal(conn: sqlite3.Connection, timeout_s: float = OPEN_TIMEOUT_S) -> None:
    """``PRAGMA journal_mode=WAL``, retried while another process holds the new file: on a store being
    created that statement answers "database is locked" at once, without sqlite's busy timeout (two runs
    started together on one new ``--out`` failed at random)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _check_integrity(conn: sqlite3.Connection) -> None:
    """``sqlite3.DatabaseError`` unless ``PRAGMA quick_check`` passes: a store damaged past its first pages
    opened fine and failed at the first write, after a result had been computed (about 10 ms per 10 MB)."""
    problems = [row[0] for row in conn.execute("PRAGMA quick_check(3)").fetchall()]
    if problems != ["ok"]:
        raise sqlite3.DatabaseError("database disk image is malformed (" + "; ".join(problems) + ")")


def _refuse_triggers(conn: sqlite3.Connection) -> None:
    """``sqlite3.DatabaseError`` for a store holding a trigger: fusionbench creates none, and one in a store
    received from someone else ran on every later write, rewriting this machine's own results unseen (an
    untrusted-input audit, session 31: a trigger set each new score to 999 and deleted each failure).  Reading
    such a store (``report``, ``--dry-run``) fires nothing and is allowed."""
    names = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")]
    if names:
        drops = " ".join("DROP TRIGGER " + '"' + n.replace('"', '""') + '";' for n in names)  # SQL identifiers
        raise sqlite3.DatabaseError(
            f"it holds {len(names)} trigger(s) fusionbench does not create ({', '.join(map(repr, names))}), which "
            f"would change rows as they are written; if you trust it, remove them in sqlite3: {drops}")


def _copy_readonly(path: Path, target: sqlite3.Connection) -> None:
    """Copy the store at ``path`` into ``target``, writing nothing to it and leaving no file beside it.

    ``mode=ro`` first; a WAL store in a folder this user cannot write fails there (sqlite cannot create the
    ``-shm`` index beside it), so then ``immutable=1``, which reads the file alone.  Not when a non-empty
    ``-wal`` file is left beside it (a writer still open, or killed): those commits are not in the file yet,
    and the error says so rather than showing an older store."""
    uri = path.resolve().as_uri()
    side = [Path(f"{path}{suffix}") for suffix in ("-wal", "-shm")]
    had_side_files = any(p.exists() for p in side)
    try:
        _backup(f"{uri}?mode=ro", target)
        if not had_side_files and any(p.exists() for p in side):
            _tidy_wal(path)
    except sqlite3.Error as exc:
        wal = Path(f"{path}-wal")
        if wal.is_file() and wal.stat().st_size:
            raise StoreError(f"cannot read {path}: {exc} (and {wal.name} beside it holds commits not yet in the "
                             "file; open the store once where its folder is writable)") from exc
        try:
            _backup(f"{uri}?mode=ro&immutable=1", target)
        except sqlite3.Error as exc2:
            raise StoreError(f"cannot read {path}: {exc2}") from exc2


def _tidy_wal(path: Path) -> None:
    """Remove the ``-wal`` and ``-shm`` files a ``mode=ro`` read made beside a WAL store: sqlite deletes them only
    when the last connection closing can write (session 38: ``fusionbench report`` left them beside every store it
    read). A writable connection that reads and closes does it the safe way: sqlite deletes them only if no other
    connection has the store open (a run still writing keeps them), and writes nothing to the store (its WAL
    holds no commit). Nothing is done where the store cannot be written."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=1)
        try:
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        pass  # a read-only file or folder, or a store busy elsewhere: the files stay, as before


def _backup(uri: str, target: sqlite3.Connection) -> None:
    """Copy the database at sqlite ``uri`` into ``target``."""
    source = sqlite3.connect(uri, uri=True, timeout=60)
    try:
        source.backup(target)
    finally:
        source.close()


class ResultsStore:
    """A thin, typed wrapper around ``results.sqlite``."""

    def __init__(self, path: str | Path):
        """Open (or create) the store at ``path`` for writing; :class:`StoreError` naming it if sqlite cannot."""
        self.path = Path(path)
        conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=OPEN_TIMEOUT_S)
            _refuse_foreign(conn)  # before the first write (WAL mode rewrites the file's header)
            _enable_wal(conn)
            _check_integrity(conn)
            _refuse_triggers(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.executescript(SCHEMA)
            conn.commit()
            _migrate(conn)
        except (sqlite3.Error, OSError) as exc:
            if conn is not None:
                conn.close()
            raise StoreError(f"cannot open {self.path} for writing: {exc}") from exc
        self.conn = conn

    @classmethod
    def snapshot(cls, path: str | Path) -> "ResultsStore":
        """An in-memory copy of the store at ``path`` (empty if there is none): reads see its rows, writes go
        nowhere, and nothing is left on disk (:func:`_tidy_wal`), so it works in a folder this user cannot write
        (``fusionbench run --dry-run``, ``fusionbench report``).  :class:`StoreError` naming ``path`` if
        the store cannot be read."""
        store = cls.__new__(cls)
        store.path = Path(path)
        store.conn = sqlite3.connect(":memory:")
        if store.path.is_file():
            _copy_readonly(store.path, store.conn)
            reason = not_a_store(store.conn)
            if reason:
                store.conn.close()
                raise StoreError(f"cannot read {store.path}: not a fusionbench results store ({reason})")
        store.conn.executescript(SCHEMA)
        store.conn.commit()
        _migrate(store.conn)
        return store

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One committed transaction; a sqlite error in it (a read-only file, a full disk, a damaged page) is a
        :class:`StoreError` naming the store (it was sqlite's bare "attempt to write a readonly database")."""
        try:
            with self.conn:
                yield self.conn
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write {self.path}: {exc}") from exc

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ runs
    def start_run(self, command: str, config: dict[str, Any], versions: dict[str, str], git_sha: str | None,
                  machine: dict[str, Any]) -> int:
        """Insert a ``running`` row owned by this process; earlier ``running`` rows whose process on this machine
        has ended are marked :data:`KILLED` in the same transaction."""
        from .process_owner import current_owner

        with self._transaction():
            self._mark_killed_runs()
            cur = self.conn.execute(
                "INSERT INTO runs (started, command, config, versions, git_sha, machine, owner) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (time.time(), command, json.dumps(config, default=str), json.dumps(versions), git_sha,
                 json.dumps(machine), json.dumps(current_owner())),
            )
        return int(cur.lastrowid)

    def live_runs(self, exclude: int | None = None) -> list[tuple[int, int]]:
        """``(run_id, pid)`` of the ``running`` runs whose process on this machine is alive (another process of
        this machine writing into the same store), ``exclude`` left out.  Runs of other hosts are not counted:
        whether they live cannot be told from here."""
        import os
        import platform

        from .process_owner import owner_gone

        rows = self.conn.execute("SELECT run_id, owner FROM runs WHERE status = 'running' AND owner IS NOT NULL")
        live = []
        for run_id, text in rows.fetchall():
            owner = _json_or_none(text)
            if not isinstance(owner, dict) or not isinstance(owner.get("pid"), int):  # a store from elsewhere
                continue
            if (run_id != exclude and owner.get("hostname") == platform.node() and owner["pid"] != os.getpid()
                    and not owner_gone(owner)):
                live.append((int(run_id), owner["pid"]))
        return live

    def _mark_killed_runs(self) -> None:
        self.conn.executemany("UPDATE runs SET status = ? WHERE run_id = ? AND status = 'running'",
                              [(KILLED, run_id) for run_id in _killed_runs(self.conn)])

    def finish_run(self, run_id: int, status: str = "done") -> None:
        with self._transaction():
            self.conn.execute("UPDATE runs SET finished = ?, status = ? WHERE run_id = ?", (time.time(), status, run_id))

    # ------------------------------------------------------------------ reads
    def done_index(self, dataset: str) -> dict[tuple[str, str, str, str], set[str]]:
        """``{(pair, method, method_key, pair_sha256): {metrics}}`` for one dataset (one query, for the planner).

        A score of an older metric version than the registered one is not done (the run scores it again).
        """
        rows = self.conn.execute(
            "SELECT pair, method, method_key, pair_sha256, metric, metric_version FROM scores WHERE dataset=?",
            (dataset,)).fetchall()
        current = _current_versions(r[4] for r in rows)
        out: dict[tuple[str, str, str, str], set[str]] = {}
        for pair, method, key, sha, metric, version in rows:
            if current.get(metric, version) == version:
                out.setdefault((pair, method, key, sha), set()).add(metric)
        return out

    def fused_digests(self, dataset: str) -> dict[tuple[str, str, str, str], str]:
        """``{(pair, method, method_key, pair_sha256): fused_sha256}`` of the outputs of one dataset whose
        pixel digest is recorded (for the planner: a cached image is checked against it when scored)."""
        rows = self.conn.execute(
            "SELECT pair, method, method_key, pair_sha256, fused_sha256 FROM outputs "
            "WHERE dataset=? AND fused_sha256 IS NOT NULL", (dataset,))
        return {(pair, method, key, sha): digest for pair, method, key, sha, digest in rows}

    def method_metadata(self) -> dict[str, dict[str, str]]:
        """``{method: {display_name, family, citation, colour, source, weights}}`` as last recorded by a run
        (the row of the key :meth:`current_keys` reads; ``weights``: JSON text from ``method_weights``, ``''``
        where the run recorded none)."""
        rows = self.conn.execute(
            "SELECT m.method, m.display_name, m.family, m.citation, m.colour, m.source, COALESCE(w.weights, '') "
            "FROM methods AS m LEFT JOIN method_weights AS w ON w.method = m.method AND w.method_key = m.method_key "
            "ORDER BY m.run_id, m.rowid"
        )
        return {m: {"display_name": d, "family": f, "citation": c, "colour": col, "source": src, "weights": w}
                for m, d, f, c, col, src, w in rows}

    def count(self, table: str) -> int:
        if table not in TABLES:
            raise ValueError(table)
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def current_keys(self, keys: Mapping[str, str] | None = None) -> dict[str, str]:
        """``{method: current method_key}`` by the rule in the module docstring (``keys`` override)."""
        out: dict[str, str] = {}
        for method, key in self.conn.execute(
            "SELECT method, method_key FROM scores WHERE rowid IN "
            "(SELECT MAX(rowid) FROM scores GROUP BY method)"
        ):
            out[method] = key  # fallback: the key of the latest written row
        for method, key in self.conn.execute("SELECT method, method_key FROM methods ORDER BY run_id, rowid"):
            out[method] = key  # the latest run that used the method
        out.update(keys or {})
        return out

    def _current(self, df: "pd.DataFrame", keys: Mapping[str, str] | None) -> "pd.DataFrame":
        """Rows of ``df`` (``dataset, pair, method, method_key, pair_sha256``; scores also ``metric,
        metric_version``) that are current."""
        import pandas as pd

        current = self.current_keys(keys)
        mask = df["method_key"].to_numpy() == df["method"].map(current).to_numpy()
        if "metric_version" in df.columns:
            mask &= self._metric_current(df)
        if len(df):
            shas = pd.read_sql_query("SELECT dataset, pair, pair_sha256 AS current_sha FROM scores WHERE rowid IN "
                                     "(SELECT MAX(rowid) FROM scores GROUP BY dataset, pair)", self.conn)
            wanted = df[["dataset", "pair"]].merge(shas, how="left", on=["dataset", "pair"])["current_sha"]
            mask &= df["pair_sha256"].to_numpy() == wanted.to_numpy()
        return df[mask]

    def _frame(self, query: str, datasets: Iterable[str] | None) -> "pd.DataFrame":
        import pandas as pd

        df = pd.read_sql_query(query, self.conn)
        if datasets is not None:
            df = df[df["dataset"].isin(list(datasets))]
        return df

    def scores_frame(self, datasets: Iterable[str] | None = None, *, current_only: bool = True,
                     keys: Mapping[str, str] | None = None, history: bool = False) -> "pd.DataFrame":
        """Scores as a DataFrame (``dataset, pair, method, metric, value``).

        ``current_only`` (default) keeps the rows of each method's current key
        and each pair's current sha256 (module docstring); ``current_only=False``
        returns every row, history included.  ``history=True`` adds the columns
        ``method_key, pair_sha256, run_id, metric_version``.
        """
        df = self._frame("SELECT dataset, pair, method, metric, value, method_key, pair_sha256, run_id, "
                         "metric_version FROM scores ORDER BY rowid", datasets)
        if current_only:
            df = self._current(df, keys)
        cols = ["dataset", "pair", "method", "metric", "value"] + (["method_key", "pair_sha256", "run_id",
                                                                    "metric_version"] if history else [])
        return df[cols].reset_index(drop=True)

    @staticmethod
    def _metric_current(df: "pd.DataFrame") -> Any:
        """Boolean mask of the rows of ``df`` (``metric, metric_version``) whose metric version is current."""
        current = _current_versions(df["metric"].unique())
        return df["metric_version"].to_numpy() == df["metric"].map(current).fillna(df["metric_version"]).to_numpy()

    def outputs_frame(self, datasets: Iterable[str] | None = None, *, current_only: bool = True,
                      keys: Mapping[str, str] | None = None) -> "pd.DataFrame":
        """Fused outputs (``dataset, pair, method, path, seconds, run_id, method_key, pair_sha256, fused_sha256``);
        current rows by default.

        ``run_id`` is the run that fused the image (a later run that only scores it keeps that id), nullable;
        ``method_key`` and ``pair_sha256`` say which method version made it from which input files;
        ``fused_sha256`` is the image's pixel digest (:func:`fusionbench.io.pixel_sha256`), None where not
        recorded (:mod:`fusionbench.compare_fused` compares two runs by it).
        """
        df = self._frame("SELECT dataset, pair, method, path, seconds, run_id, method_key, pair_sha256, fused_sha256 "
                         "FROM outputs ORDER BY created", datasets)
        if current_only:
            df = self._current(df, keys)
        df["run_id"] = df["run_id"].astype("Int64")
        return df[["dataset", "pair", "method", "path", "seconds", "run_id", "method_key", "pair_sha256",
                   "fused_sha256"]].reset_index(drop=True)

    def failures_frame(self, datasets: Iterable[str] | None = None, *, current_only: bool = True,
                       keys: Mapping[str, str] | None = None) -> "pd.DataFrame":
        """Failures (``dataset, pair, method, stage, metric, error, message``).

        Current: a method's failures under its current key, and input problems
        (``method`` empty) as last recorded.
        """
        df = self._frame("SELECT dataset, pair, method, stage, metric, error, message, method_key FROM failures "
                         "ORDER BY created", datasets)
        if current_only and len(df):
            current = self.current_keys(keys)
            df = df[(df["method"] == "") | (df["method_key"].to_numpy() == df["method"].map(current).to_numpy())]
        return df[["dataset", "pair", "method", "stage", "metric", "error", "message"]].reset_index(drop=True)

    def skipped_frame(self, datasets: Iterable[str] | None = None, *, current_only: bool = True) -> "pd.DataFrame":
        """(method, dataset) pairs a run did not run (``dataset, method, reason``).

        Current: each (dataset, method)'s row from the latest run that skipped
        it, unless the method has scores on that dataset from a later run.  Scores of the same run do not
        hide it: a run on a folder of several tasks scores a task-restricted method on some pairs and skips
        it on the others ("1 of 2 pairs"); until session 29 that row was hidden after its run and shown
        again after a re-run that changed nothing.
        """
        df = self._frame("SELECT run_id, dataset, method, reason FROM skipped ORDER BY run_id", datasets)
        if current_only and len(df):
            import pandas as pd

            df = df.drop_duplicates(["dataset", "method"], keep="last")
            ran = self.conn.execute("SELECT dataset, method, MAX(run_id) FROM scores GROUP BY dataset, method")
            later = {(d, m): r for d, m, r in ran}
            # not current: a skip the method's scores of a later run replace, and a skip for the split a run asked
            # for ("no split 'train'", "no image pairs in split 'train'"), which says nothing of the method's scores
            # on the dataset's other splits (session 37's review: a --split train run after a test run listed the
            # method as skipped)
            keep = [(later.get((d, m)) or -1) <= r and not (why.startswith(SPLIT_SKIP_REASONS) and (d, m) in later)
                    for d, m, r, why in zip(df["dataset"], df["method"], df["run_id"], df["reason"])]
            df = df.loc[pd.Series(keep, index=df.index, dtype=bool)]
        return df[["dataset", "method", "reason"]].reset_index(drop=True)

    def runs_frame(self) -> "pd.DataFrame":
        """The ``runs`` table, oldest first; a ``running`` run whose process on this machine has ended reads
        :data:`KILLED` (also in a :meth:`snapshot`, which writes nothing)."""
        import pandas as pd

        frame = pd.read_sql_query("SELECT * FROM runs ORDER BY run_id", self.conn)
        killed = _killed_runs(self.conn)
        if killed:
            frame.loc[frame["run_id"].isin(killed), "status"] = KILLED
        return frame

    def superseded(self, datasets: Iterable[str] | None = None, methods: Iterable[str] | None = None,
                   keys: Mapping[str, str] | None = None) -> int:
        """How many ``scores`` rows (of ``datasets`` × ``methods``, default all) are history, not current."""
        df = self._frame("SELECT dataset, pair, method, metric, method_key, pair_sha256, metric_version FROM scores",
                         datasets)
        if methods is not None:
            df = df[df["method"].isin(list(methods))]
        return int(len(df) - len(self._current(df, keys)))

    def method_seconds(self) -> "pd.DataFrame":
        """Fusion times of every recorded output, history included (``dataset, pair, method, method_key, seconds``)."""
        import pandas as pd

        return pd.read_sql_query("SELECT dataset, pair, method, method_key, seconds FROM outputs "
                                 "WHERE seconds IS NOT NULL", self.conn)

    # ------------------------------------------------------------------ writes
    def record_methods(self, run_id: int, methods: Iterable[tuple[str, str, dict[str, str]]]) -> None:
        """Record ``(method, method_key, metadata)`` of every method a run uses (the ``methods`` table; the
        metadata's ``weights`` JSON, where given, in ``method_weights``)."""
        methods = list(methods)
        with self._transaction():
            self.conn.executemany(
                "INSERT OR REPLACE INTO methods (method, method_key, display_name, family, citation, colour, "
                "source, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(name, key, meta.get("display_name") or name, meta.get("family", ""), meta.get("citation", ""),
                  meta.get("colour", ""), meta.get("source", ""), run_id) for name, key, meta in methods],
            )
            self.conn.executemany(
                "INSERT OR REPLACE INTO method_weights (method, method_key, weights, run_id) VALUES (?, ?, ?, ?)",
                [(name, key, meta["weights"], run_id) for name, key, meta in methods if meta.get("weights")],
            )

    def record_skipped(self, run_id: int, rows: Iterable[tuple[str, str, str]]) -> None:
        """Record ``(dataset, method, reason)`` for every (method, dataset) the run does not run."""
        with self._transaction():
            self.conn.executemany("INSERT OR REPLACE INTO skipped VALUES (?, ?, ?, ?)",
                                  [(run_id, ds, method, reason) for ds, method, reason in rows])

    def record_task(self, result: "TaskResult", run_id: int) -> None:
        """Write one worker result (output, scores, failures) in a single transaction.

        The output row is written when the result has an output and the client
        has set ``result.path`` (where it cached the PNG).  A result that fused
        nothing (``seconds is None``: an image fused by an earlier run, only
        scored now, e.g. for metrics added later) leaves an existing row for the
        same image as it is, so the fusion time and the run that fused it stay.
        """
        now = time.time()
        ds, pair, method = result.dataset, result.pair, result.method
        key, sha = result.method_key, result.pair_sha256
        versions = _current_versions(result.scores)
        with self._transaction():
            if result.has_output and result.path:
                row = (ds, pair, method, key, sha, result.path, result.seconds, run_id, now, result.fused_sha256)
                if result.seconds is None:  # scored only: keep the fusing run's row of this very image
                    # the same image (same pair file, and the same pixels where both digests are known) keeps its
                    # fusion time and fusing run, wherever the cache now is; until session 39 the path's text
                    # decided, and an OUT spelled another way (absolute, from another folder, a copy) erased them
                    same = ("(outputs.pair_sha256 = excluded.pair_sha256 AND (outputs.fused_sha256 IS NULL OR "
                            "excluded.fused_sha256 IS NULL OR outputs.fused_sha256 = excluded.fused_sha256))")
                    self.conn.execute(
                        f"INSERT INTO outputs ({OUTPUT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (dataset, pair, method, method_key) DO UPDATE SET "
                        "pair_sha256 = excluded.pair_sha256, path = excluded.path, "
                        f"seconds = CASE WHEN {same} THEN outputs.seconds ELSE excluded.seconds END, "
                        f"run_id = CASE WHEN {same} THEN outputs.run_id ELSE excluded.run_id END, "
                        f"created = CASE WHEN {same} THEN outputs.created ELSE excluded.created END, "
                        "fused_sha256 = COALESCE(excluded.fused_sha256, outputs.fused_sha256) "
                        "WHERE outputs.path != excluded.path OR outputs.pair_sha256 != excluded.pair_sha256 "
                        "OR outputs.fused_sha256 IS NOT excluded.fused_sha256", row)
                    # a row written before digests were recorded learns its image's digest
                    self.conn.execute(
                        "UPDATE outputs SET fused_sha256 = ? WHERE dataset=? AND pair=? AND method=? "
                        "AND method_key=? AND path=? AND fused_sha256 IS NULL",
                        (result.fused_sha256, ds, pair, method, key, result.path))
                else:
                    self.conn.execute(f"INSERT OR REPLACE INTO outputs ({OUTPUT_COLUMNS}) "
                                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
                self.conn.execute(
                    "DELETE FROM failures WHERE dataset=? AND pair=? AND method=? AND stage='fuse'", (ds, pair, method)
                )
            for metric, value in result.scores.items():
                if value is not None and math.isnan(value):  # undefined: NULL; ±inf is a value (PSNR of F = A = B)
                    value = None
                # delete + insert (not REPLACE) so that the newest row is always the highest rowid
                self.conn.execute("DELETE FROM scores WHERE dataset=? AND pair=? AND method=? AND metric=? "
                                  "AND method_key=?", (ds, pair, method, metric, key))
                self.conn.execute(
                    f"INSERT INTO scores ({SCORE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (ds, pair, method, metric, value, key, sha, run_id, now, versions.get(metric, "1")),
                )
                self.conn.execute(
                    "DELETE FROM failures WHERE dataset=? AND pair=? AND method=? AND stage='score' AND metric=?",
                    (ds, pair, method, metric),
                )
            for failure in result.failures:
                self.record_failure(ds, pair, method, stage=failure.stage, error=failure.error,
                                    message=failure.message, traceback=failure.traceback, metric=failure.metric,
                                    key=key, run_id=run_id, commit=False)

    #: the tables with a ``dataset`` column
    DATASET_TABLES = ("outputs", "scores", "failures", "skipped")

    def dataset_names(self) -> list[str]:
        """Every dataset name with rows in the store, sorted."""
        union = " UNION ".join(f"SELECT dataset FROM {t}" for t in self.DATASET_TABLES)
        return sorted(row[0] for row in self.conn.execute(union))

    def rename_dataset(self, old: str, new: str) -> None:
        """Move every row of dataset ``old`` to the name ``new`` (one transaction).  A row whose key ``new``
        already has (written under the new name, so newer) is dropped."""
        with self._transaction():
            for table in self.DATASET_TABLES:
                self.conn.execute(f"UPDATE OR IGNORE {table} SET dataset=? WHERE dataset=?", (new, old))
                self.conn.execute(f"DELETE FROM {table} WHERE dataset=?", (old,))

    def clear_input_failures(self, dataset: str) -> None:
        """Forget the input problems (``method`` empty) recorded for ``dataset``; the planner records the
        current ones right after, so a fixed file no longer shows as a failure."""
        with self._transaction():
            self.conn.execute("DELETE FROM failures WHERE dataset=? AND method=''", (dataset,))

    def record_failure(self, dataset: str, pair: str, method: str, *, stage: str, error: str, message: str,
                       traceback: str = "", metric: str = "", key: str = "", run_id: int | None = None,
                       commit: bool = True) -> None:
        args = (dataset, pair, method, stage, metric, error, message, traceback, key, run_id, time.time())
        if commit:
            with self._transaction():
                self.conn.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", args)
        else:
            self.conn.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", args)
