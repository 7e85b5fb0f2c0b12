"""The state one report's sections share, and the small file helpers they use.

A :class:`ReportContext` is made once per :func:`fusionbench.report.build.build_report` call and handed
to each section builder (:mod:`fusionbench.report.sections`): what the report reads (``data``, the
method selection, display names, the data folder), how it writes (``out``, ``full``, ``mean_only``,
``roi``), and what the sections collect on the way (``written`` files, skipped methods, the figure pair
of each dataset, fused images re-made or left out of the figures).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from fusionbench.data.base import dataset_file_stem as file_stem  # noqa: F401  (a dataset's file-name stem)

from . import html as htmlmod
from .data import DATA_UNAVAILABLE, ReportData
from .selection import Selection
from .tables import MetricTable, to_csv, to_latex, to_markdown

Log = Callable[[str], None]


def write_file(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` (making its folder) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def paper20_keys(data_dir: str | Path | None) -> list[tuple[str, str]]:
    """``(dataset, pair id)`` of the paper's 20 Harvard pairs in ``data_dir``; empty where they are not there."""
    if not data_dir:
        return []
    try:
        from fusionbench.data import paper20_pairs

        return [(p.dataset, str(p.id)) for p in paper20_pairs(data_dir)]
    except DATA_UNAVAILABLE:  # a data folder without the Harvard pairs
        return []


class ReportContext:
    """State shared by the sections of one report."""

    def __init__(self, data: ReportData, out: Path, names: dict[str, str], sel: Selection, data_dir, split: str,
                 log: Log, full: bool, mean_only: bool, roi) -> None:
        self.data, self.out, self.names, self.sel = data, out, names, sel
        self.data_dir, self.split, self.log, self.full, self.mean_only, self.roi = (data_dir, split, log, full,
                                                                                   mean_only, roi)
        self.written: list[Path] = []
        self.skipped_rows: list[dict] = []
        self.figure_pairs: dict[str, tuple] = {}  # dataset → (title, pair, task) for the masks figure
        self.refused: set[str] = set()  # methods re-run for the figures (fused-image cache gone)
        #: (method, dataset, pair) → how a re-made image compares with the scored one's recorded pixel digest:
        #: ``identical``, ``different``, ``other version`` (another method key now) or ``not recorded``
        self.remade: dict[tuple[str, str, str], str] = {}
        self.missing: dict[str, str] = {}  # methods left out of the figures, and why
        #: the asv result files Table 5 took its times from, as exported under ``results/`` (paths relative to
        #: the report folder); empty when its times are the run's own
        self.asv_exported: list[str] = []

    def split_of(self, dataset: str) -> str:
        """The split ``dataset``'s tables are over: its own run's (:meth:`ReportData.within_split`), else the run's."""
        return self.data.dataset_splits.get(dataset) or self.split

    def img(self, path: Path, caption: str) -> str:
        """The figure at ``path`` as HTML (linked, or embedded with ``full``); nothing where it was not written."""
        return htmlmod.image_html(path, caption, self.out, embed=self.full) if path.is_file() else ""

    def write_table(self, stem: Path, table: MetricTable, label: str) -> None:
        """A metric table as ``stem``.md, .tex and .csv."""
        self.written += [write_file(stem.with_suffix(".md"), to_markdown(table)),
                         write_file(stem.with_suffix(".tex"), to_latex(table, label=label, mean_only=self.mean_only)),
                         write_file(stem.with_suffix(".csv"), to_csv(table))]
