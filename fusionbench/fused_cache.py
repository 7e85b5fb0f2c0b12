"""The layout of the fused-image cache: ``<cache>/<method>/<method key>/<pair sha256>.png``.

The runner writes each fused image there (content-addressed: a new method key or a changed pair file is a new
file, so re-scoring never re-fuses); the store records the path.  A reader of a store it did not write itself
(``export-fused``, a report's figures) uses a recorded path only if it has this shape for the row's own method
(and key and pair digest, where recorded): a store received from someone else could otherwise name any image of
this machine, which the export copied into the folder you publish and the report drew as a method's output (an
untrusted-input audit, session 31).
"""
from __future__ import annotations

import re
from pathlib import Path

#: how a results folder's method key starts (``external.folder_key``)
EXTERNAL_KEY_PREFIX = "results-"
#: a method key: 16 hex digits for a registered method (``FusionMethod.cache_key``), the prefix and 24 for a
#: results folder
_KEY = re.compile(f"(?:{re.escape(EXTERNAL_KEY_PREFIX)})?[0-9a-f]+")
#: a pair's digest (``Pair.sha256``: 64 hex digits; empty for a plugin dataset's pair built without one)
_DIGEST = re.compile(r"[0-9a-f]*")


def cache_file(cache: str | Path, method: str, method_key: str, pair_sha256: str) -> Path:
    """Where the runner caches method ``method`` (key ``method_key``)'s image of the pair ``pair_sha256``."""
    return Path(cache) / method / method_key / f"{pair_sha256}.png"


def in_cache_layout(path: str | Path, method: str, method_key: str | None = None,
                    pair_sha256: str | None = None) -> bool:
    """Whether ``path`` is shaped like :func:`cache_file` of ``method``: ``.../<method>/<hex>/<hex>.png``, the
    hex parts equal to ``method_key`` and ``pair_sha256`` where they are given."""
    path = Path(path)
    key, name = path.parent.name, path.name
    digest = name[:-len(".png")] if name.endswith(".png") else None
    return (digest is not None and path.parent.parent.name == method
            and _KEY.fullmatch(key) is not None and _DIGEST.fullmatch(digest) is not None
            and method_key in (None, key) and pair_sha256 in (None, digest))


def recorded_text(row: object, column: str) -> str | None:
    """A text column of an output row (a namedtuple of ``itertuples`` or a Series), ``None`` where the row has no
    such column (an export written before it) or the value is missing."""
    return text_or_none(row.get(column) if hasattr(row, "get") else getattr(row, column, None))


def text_or_none(value: object) -> str | None:
    """A recorded identifier as text, ``None`` for a missing one (NULL, NaN from a CSV, an empty string)."""
    return value if isinstance(value, str) and value else None
