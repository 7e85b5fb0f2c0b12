"""``fusionbench export-fused OUT DEST``: a run's fused images under readable names, to publish with a paper.

The run keeps its fused images in a content-addressed cache (``OUT/fused/<method>/<key>/<pair sha256>.png``),
which answers "which image is method M on pair P?" only through the results store.  This writes the current
images as ``DEST/<method>/<dataset>/<pair>.png`` (``<dataset>`` with ``:`` and ``/`` as ``_``, as a results
folder names its per-dataset sub-folders: ``DEST/<method>`` is itself a folder that ``--methods
NAME=results:DEST/<method>`` scores) and a ``DEST/manifest.csv`` with one row per image:
``dataset, pair, method, file, sha256, fused_sha256, run_id, seconds, source`` (``sha256``: the file's bytes;
``fused_sha256``: its pixels, :func:`fusionbench.io.pixel_sha256`, the digest the store records; ``run_id``: the
run that fused it; ``source``: the cache file copied).  A cached image that is gone or unreadable, or whose pixels
are not those the store recorded when it was fused (edited or replaced since), is one line naming it and is not
published; the others are written.

``OUT`` is a run's out folder (``results.sqlite``) or a report's ``results/`` export, as for ``fusionbench
report``; the images themselves must still be in the cache the store names (or in ``OUT/fused`` when the out
folder was moved).
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

MANIFEST = "manifest.csv"


@dataclass
class ExportResult:
    """What :func:`export_fused` wrote and what it could not."""

    written: int = 0
    problems: list[str] = field(default_factory=list)
    manifest: Path | None = None


def _cached_file(row: object, out: Path) -> Path | str:
    """The cache file of an output row (its recorded path, else the same file under ``out/fused``: a moved out
    folder; for a relative recorded path, ``out/fused`` first), or why there is none to copy.

    The recorded path must have the cache's shape for the row (:func:`fusionbench.fused_cache.in_cache_layout`):
    a store or export received from someone else could otherwise name any image on this machine
    (``/home/you/scans/x.png``), which the export then copied into the folder you publish."""
    from fusionbench.fused_cache import in_cache_layout, recorded_text

    path = Path(str(row.path))  # type: ignore[attr-defined]
    if not in_cache_layout(path, str(row.method), recorded_text(row, "method_key"),  # type: ignore[attr-defined]
                           recorded_text(row, "pair_sha256")):
        return (f"the store names {path} as its image, which is not a fused-image cache file of this method "
                "(<method>/<key>/<pair sha256>.png): not copied")
    moved = out / "fused" / str(row.method) / path.parent.name / path.name  # type: ignore[attr-defined]
    # a relative recorded path is relative to the folder the run was started in, not to this one: OUT's own copy
    # first (until session 32 a copied OUT whose image was gone took the original folder's, without a word), then
    # the recorded path (a --cache outside OUT); either way the pixels are checked against the recorded digest
    for candidate in ((path, moved) if path.is_absolute() else (moved, path)):
        if candidate.is_file():
            return candidate
    return f"cached image {path} is gone"


#: what one file or folder name cannot hold here (``\\`` can, on POSIX: a pair id may have one)
_NOT_IN_NAMES = "\0" + os.sep + (os.altsep or "")


def _target(dest: Path, method: str, dataset: str, pair: str) -> Path | str:
    """``dest/<method>/<dataset>/<pair>.png``, or why a name cannot be one folder or file name there (``..``, a
    path separator, a NUL byte or over 255 bytes: from a received store, it wrote outside ``dest``; session 31)."""
    from fusionbench.external import dataset_dirname

    parts = [method, dataset_dirname(dataset), f"{pair}.png"]
    for part in parts:
        if part in ("", ".", "..") or any(c in part for c in _NOT_IN_NAMES) or len(part.encode()) > 255:
            return f"{part!r} cannot be a folder or file name under {dest}: not exported"
    return dest.joinpath(*parts)


def matching_names(names: pd.Series, patterns: str | None) -> pd.Series:
    """Which of ``names`` match the comma-separated fnmatch ``patterns``, ignoring case as the registry's patterns
    do (all when ``None``)."""
    if not patterns:
        return pd.Series(True, index=names.index)
    from fusionbench.registry import matches

    pats = [p.strip() for p in patterns.split(",") if p.strip()]
    return names.map(lambda n: any(matches(str(n), p) for p in pats))


def export_fused(out: str | Path, dest: str | Path, *, methods: str | None = None, datasets: str | None = None,
                 log: Callable[[str], None] | None = None) -> ExportResult:
    """Copy the current fused image of every (dataset, pair, method) of ``out`` to ``dest`` (see the module).

    ``methods`` / ``datasets``: comma-separated fnmatch patterns restricting the export.  Raises ``ValueError``
    when ``out`` holds no results, the patterns match no image, or ``dest`` is a file or a folder that cannot be
    written.
    """
    from fusionbench.fused_cache import recorded_text
    from fusionbench.io import ImageError, load_image, pixel_sha256, sha256_file, writable_folder
    from fusionbench.report.data import ReportData

    log = log or (lambda msg: None)
    out, dest = Path(out), Path(dest)
    if not out.exists():
        raise ValueError(f"{out}: no such folder or file")
    data = ReportData.load(out)
    outputs = data.outputs
    if outputs.empty or "path" not in outputs.columns:
        raise ValueError(f"{out}: no fused images are recorded there")
    keep = matching_names(outputs["method"], methods) & matching_names(outputs["dataset"], datasets)
    outputs = outputs[keep].sort_values(["dataset", "method", "pair"])
    if outputs.empty:
        raise ValueError(f"{out}: no fused image matches --methods {methods or '*'} --datasets {datasets or '*'}")
    writable_folder(dest, "DEST")  # a file or a read-only folder: one line, not one per image naming its source
    root = out if out.is_dir() else out.parent
    result, rows = ExportResult(), []
    for row in outputs.itertuples(index=False):
        source = _cached_file(row, root)
        target = _target(dest, str(row.method), str(row.dataset), str(row.pair))
        for why in (source, target):
            if isinstance(why, str):
                result.problems.append(f"{row.dataset}/{row.method}/{row.pair}: {why}")
        if isinstance(source, str) or isinstance(target, str):
            continue
        recorded = recorded_text(row, "fused_sha256")
        try:
            found = pixel_sha256(load_image(source))  # a truncated or corrupt cache file is named, not published
            if recorded is not None and found != recorded:
                result.problems.append(f"{row.dataset}/{row.method}/{row.pair}: cached image {source} holds other "
                                       f"pixels than the store recorded (sha256 {found[:12]}…, recorded "
                                       f"{recorded[:12]}…), not the image the store's scores are of")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        except ImageError as exc:
            result.problems.append(f"{row.dataset}/{row.method}/{row.pair}: {exc}")
            continue
        except OSError as exc:
            where = exc.filename or source  # the file the copy failed on: the cached source or the target
            result.problems.append(f"{row.dataset}/{row.method}/{row.pair}: {where}: {exc.strerror or exc}")
            continue
        rows.append({"dataset": row.dataset, "pair": row.pair, "method": row.method,
                     "file": target.relative_to(dest).as_posix(),
                     "sha256": sha256_file(target), "fused_sha256": found,
                     "run_id": getattr(row, "run_id", None), "seconds": row.seconds, "source": str(source)})
        result.written += 1
    for problem in result.problems:
        log(problem)
    if rows:
        dest.mkdir(parents=True, exist_ok=True)
        result.manifest = dest / MANIFEST
        frame = pd.DataFrame(rows)
        frame["run_id"] = frame["run_id"].astype("Int64")
        frame.to_csv(result.manifest, index=False)
    return result
