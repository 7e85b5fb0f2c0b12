"""Reading a results store in tests: the rows of one SQL query."""
from __future__ import annotations

import sqlite3
from pathlib import Path


def rows(db: str | Path, sql: str) -> list[tuple]:
    """All rows of ``sql`` on the SQLite file ``db`` (the connection is closed again)."""
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
