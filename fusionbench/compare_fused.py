"""``fusionbench compare-fused A B``: are two runs' fused images the same, pixel for pixel?

Each side is a run's out folder (``results.sqlite``), the store itself, or a report's ``results/`` export, as
for ``fusionbench report``.  The images themselves are not read: the store records the digest of every fused
image's pixels (``outputs.fused_sha256``, :func:`fusionbench.io.pixel_sha256`) and the export keeps it, so a
committed report can be checked against a re-run on another machine, or before and after a change to the code.

The current output rows of the two sides are matched on ``(dataset, pair, method)``; each match gets one status:

``identical`` / ``different``
    both sides made the image with the same method key from the same input files, and their pixel digests are
    equal / not equal;
``other version``
    the method keys differ (another version, other parameters, retrained weights): not compared, a difference
    is expected;
``other inputs``
    the pair's files differ (``pair_sha256``): not compared;
``not recorded``
    a side has no digest (a row written before digests were recorded: a run that scores the image again
    records it);
``only in A`` / ``only in B``
    the image is on one side only.

:func:`compare_fused` returns the per-image table and a summary per (dataset, method); the command prints the
summary and exits 0 when at least one image was compared and every compared image is identical, else 1.
docs/runner.md ("Checking a re-run image by image") shows the use.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

#: the statuses of a matched row, in the summary's column order
STATUSES = ("identical", "different", "other version", "other inputs", "not recorded", "only in A", "only in B")
_KEY = ["dataset", "pair", "method"]
_COMPARED = ["method_key", "pair_sha256", "fused_sha256"]


@dataclass
class FusedComparison:
    """The outcome of :func:`compare_fused`: one row per (dataset, pair, method) of either side."""

    images: pd.DataFrame  # dataset, pair, method, status, then method_key/pair_sha256/fused_sha256 _a and _b

    def summary(self) -> pd.DataFrame:
        """Counts of each status per (dataset, method): one row each, a column per :data:`STATUSES`."""
        counts = self.images.groupby(["dataset", "method", "status"]).size().unstack("status", fill_value=0)
        return counts.reindex(columns=list(STATUSES), fill_value=0).reset_index()

    @property
    def compared(self) -> int:
        return int(self.images["status"].isin(["identical", "different"]).sum())

    @property
    def different(self) -> int:
        return int((self.images["status"] == "different").sum())

    @property
    def agrees(self) -> bool:
        """At least one image compared, and every compared image identical."""
        return self.compared > 0 and self.different == 0


def _outputs(source: str | Path) -> pd.DataFrame:
    """The current output rows of a store, an out folder or an export, with the columns this compares (an export
    written before these columns existed lacks them: read as not recorded)."""
    from fusionbench.report.data import ReportData

    outputs = ReportData.load(source).outputs
    if outputs.empty:
        raise ValueError(f"{source}: no fused images are recorded there")
    frame = outputs.reindex(columns=_KEY + _COMPARED).copy()
    frame["pair"] = frame["pair"].astype(str)
    return frame


def _status(row: pd.Series) -> str:
    if row["_merge"] == "left_only":
        return "only in A"
    if row["_merge"] == "right_only":
        return "only in B"
    if row["method_key_a"] is not None and row["method_key_b"] is not None \
            and row["method_key_a"] != row["method_key_b"]:
        return "other version"
    if row["pair_sha256_a"] is not None and row["pair_sha256_b"] is not None \
            and row["pair_sha256_a"] != row["pair_sha256_b"]:
        return "other inputs"
    if row["fused_sha256_a"] is None or row["fused_sha256_b"] is None:
        return "not recorded"
    return "identical" if row["fused_sha256_a"] == row["fused_sha256_b"] else "different"


def compare_fused(a: str | Path, b: str | Path, *, methods: str | None = None,
                  datasets: str | None = None) -> FusedComparison:
    """Compare the fused images recorded by ``a`` and ``b`` by their pixel digests (see the module).

    ``methods`` / ``datasets``: comma-separated fnmatch patterns restricting the comparison (as for
    ``export-fused``).  ``ValueError`` when a side holds no fused image or the patterns leave none.
    """
    from fusionbench.export_fused import matching_names
    from fusionbench.fused_cache import text_or_none

    left, right = _outputs(a), _outputs(b)
    merged = left.merge(right, how="outer", on=_KEY, suffixes=("_a", "_b"), indicator=True)
    for column in [f"{c}_{side}" for c in _COMPARED for side in "ab"]:  # missing (a side or a value): None
        merged[column] = pd.Series([text_or_none(v) for v in merged[column]], index=merged.index, dtype=object)
    merged = merged[matching_names(merged["method"], methods) & matching_names(merged["dataset"], datasets)]
    if merged.empty:
        raise ValueError(f"no fused image of {a} or {b} matches --methods {methods or '*'} "
                         f"--datasets {datasets or '*'}")
    merged["status"] = merged.apply(_status, axis=1)
    columns = _KEY + ["status"] + [f"{c}_{side}" for c in _COMPARED for side in "ab"]
    images = merged[columns].sort_values(_KEY).reset_index(drop=True)
    return FusedComparison(images)
