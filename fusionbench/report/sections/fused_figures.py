"""The fused images the figures show: the stored ones, or re-made where the fused-image cache is gone.

:func:`fused_grid` picks one pair per dataset (one of the paper's 20 where the run has them, the pair
with the most methods) and draws the sources beside the fused images with a zoom inset;
:func:`mask_figure` draws those pairs' Otsu masks (Fig. 2 style).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fusionbench.data.base import pair_file_name

from .. import figures
from ..context import ReportContext, file_stem, paper20_keys
from ..data import DATA_UNAVAILABLE

if TYPE_CHECKING:  # pragma: no cover
    from fusionbench.data import Pair

MAX_GRID_METHODS = 10


def remade_folder() -> Path:
    """Where a report keeps the fused images it re-made: ``$FUSIONBENCH_HOME/report-fused``, this user's cache.
    Until session 31 it was the system temp folder, shared by every user of the machine, where another user
    could plant the images a report then showed as a method's."""
    from fusionbench.config import home

    return home() / "report-fused"


def fused_output(ctx: ReportContext, dataset: str, pair: Pair, method: str) -> Path | None:
    """The stored fused image, or (the cache being gone) the method re-run on this pair for the figure."""
    outs = ctx.data.outputs
    row = outs[(outs["dataset"] == dataset) & (outs["pair"].astype(str) == str(pair.id))
               & (outs["method"] == method)] if not outs.empty else outs
    if not row.empty and _usable_cache_file(row):
        return Path(str(row["path"].iloc[0]))
    if method not in set(ctx.data.scores.loc[ctx.data.scores["dataset"] == dataset, "method"]):
        return None
    try:
        import hashlib

        from PIL import Image

        from fusionbench.api import fuse
        from fusionbench.method_registry import create_method

        # keyed by the method key (name, version, parameters, weights), as the run's cache is: retrained
        # weights under the same version make a new image, never the old weights' one
        built = create_method(method)
        key = hashlib.sha256(built.cache_key().encode()).hexdigest()[:16]
        target = (remade_folder() / method / key
                  / f"{pair_file_name(file_stem(dataset), str(pair.id), (pair.sha256 or '')[:16])}.png")
        if not target.is_file():
            image = fuse(built, pair.a_path, pair.b_path)
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(target)
        ctx.refused.add(method)
        ctx.remade[(method, dataset, str(pair.id))] = _against_scored(row, built.cache_key(), target)
        return target
    except Exception as exc:  # noqa: BLE001 - the figure leaves the method out, and says so in the log
        ctx.log(f"figure: {method} on {dataset}/{pair.id} not available ({type(exc).__name__}: {exc})")
        ctx.missing[method] = (str(exc).splitlines()[0].split(" (")[0] if str(exc) else type(exc).__name__)
        return None


def _usable_cache_file(row) -> bool:
    """Whether the output row's recorded image exists and is shaped like a cache file of its own method (a store
    from someone else could name any image of this machine, which the figure then showed as the method's)."""
    from fusionbench.fused_cache import in_cache_layout, recorded_text

    first = row.iloc[0]
    path = Path(str(first["path"]))
    return in_cache_layout(path, str(first["method"]), recorded_text(first, "method_key"),
                           recorded_text(first, "pair_sha256")) and path.is_file()


def _against_scored(row, key: str, image: Path) -> str:
    """How a re-made figure image compares with the image the run scored (``row``: its output row, maybe empty),
    by the pixel digest the store recorded (:func:`fusionbench.io.pixel_sha256`): ``identical``, ``different``,
    ``other version`` (the method's key now is not the run's) or ``not recorded``."""
    from fusionbench.fused_cache import recorded_text
    from fusionbench.io import load_image, pixel_sha256

    first = row.iloc[0] if not row.empty else {}
    digest, run_key = recorded_text(first, "fused_sha256"), recorded_text(first, "method_key")
    if run_key is not None and run_key != key:
        return "other version"
    if digest is None:
        return "not recorded"
    return "identical" if pixel_sha256(load_image(image)) == digest else "different"


def _figure_pair(ctx: ReportContext, dataset: str):
    """The dataset's figure pair: one of the paper's 20 where scored, the one with the most methods; None without
    sources.
    """
    from fusionbench.data import create_dataset

    try:
        ds = create_dataset(dataset, data_dir=ctx.data_dir)
    except DATA_UNAVAILABLE as exc:  # sources not here (or not registered here): the tables still build
        ctx.log(f"figures for {dataset} skipped: {exc}")
        return None
    scored = ctx.data.scores[ctx.data.scores["dataset"] == dataset]
    counts = scored.groupby("pair")["method"].nunique()
    keys = {k for d, k in paper20_keys(ctx.data_dir) if d == dataset}
    candidates = [p for p in ds.pairs if str(p.id) in counts.index]
    if not candidates:
        return None
    preferred = [p for p in candidates if str(p.id) in keys] or candidates
    best = max(counts[[str(p.id) for p in preferred]])
    return next(p for p in preferred if counts[str(p.id)] == best)


def fused_grid(ctx: ReportContext, dataset: str, title: str, task: str | None, shown: list[str]) -> str:
    """The qualitative grid of ``dataset`` (sources and up to ``MAX_GRID_METHODS`` fused images) as HTML."""
    pair = _figure_pair(ctx, dataset)
    if pair is None:
        return ""
    ctx.figure_pairs[dataset] = (title, pair, task or pair.task or "")
    paths = {}
    for m in shown[:MAX_GRID_METHODS]:
        path = fused_output(ctx, dataset, pair, m)
        if path is not None:
            paths[m] = path
    if not paths:
        return ""
    stem = ctx.out / "figures" / pair_file_name("grid", file_stem(dataset), str(pair.id))
    written, where = figures.qualitative_grid(pair.a_path, pair.b_path, paths, f"{title}, pair {pair.id}", stem,
                                              task=task or pair.task or "", names=ctx.names, roi=ctx.roi)
    ctx.written += written
    left = [ctx.names.get(m, m) for m in shown[MAX_GRID_METHODS:]] + \
           [ctx.names.get(m, m) for m in shown[:MAX_GRID_METHODS] if m not in paths]
    caption = (f"{title}, pair {pair.id}: the two sources (a, b) and the fused images of {len(paths)} methods; "
               f"the yellow box, enlarged in each panel's corner, is placed on {where}."
               + (f" Not shown: {', '.join(left)}." if left else ""))
    return ctx.img(stem.with_suffix(".png"), caption)


def mask_figure(ctx: ReportContext) -> tuple[str, str] | None:
    """``(title, html)`` of the Fig. 2 style masks of every dataset's figure pair; None when no grid was drawn."""
    rows = [(title, pair.a_path, pair.b_path, task) for title, pair, task in ctx.figure_pairs.values()]
    if not rows:
        return None
    stem = ctx.out / "figures" / "masks"
    ctx.written += figures.mask_figure(rows, "Fig. 2 style: sources and their Otsu binary masks", stem)
    ids = "; ".join(f"{title}: pair {pair.id}" for title, pair, _ in ctx.figure_pairs.values())
    return ("Fig. 2 style: binary masks", ctx.img(stem.with_suffix(".png"),
            f"Each row: source A, its Otsu mask (threshold_otsu on the BT.601 luma), source B, its mask ({ids})."))
