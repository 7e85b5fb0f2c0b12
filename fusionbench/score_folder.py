"""Score a folder of fused images against their sources, without a dataset or a run.

``fusionbench score --fused DIR --a DIR --b DIR [--metrics paper] [--csv OUT]`` and
``fusionbench.metrics.evaluate_folder(fused, a, b, presets)``: images pair by
file stem (``a/12.png``, ``b/12.png``, ``fused/12.png``; the extension may
differ), each is checked as the runner checks its inputs, and the fused image is
scored on its BT.601 luma against the sources' luma with the same presets and
the same code path as ``fusionbench run`` (:func:`fusionbench.scoring.score_pair`; a preset that reads
colour, ``ChromaErr``, gets the images as they are).
A missing, mis-sized, 16-bit or unreadable image is one line naming the file;
the rest are scored.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .io import index_images


@dataclass
class FolderScores:
    """The result of :func:`evaluate_folder`: long-format scores plus one line per problem."""

    scores: "pd.DataFrame"  # noqa: F821  (columns image, metric, value)
    problems: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    pairs: list[str] = field(default_factory=list)  # the source pairs' stems (in a/ and in b/), scored or not

    def table(self) -> "pd.DataFrame":  # noqa: F821
        """One row per image, one column per metric (in the order asked for), then the summary rows
        (:meth:`summary_labels`): the ``mean`` of each column over its defined values, and ``n``, how many
        images that mean is over (session 38: a mean over fewer images than the source pairs, some fused images
        missing, unreadable or undefined, was not told from one over all of them)."""
        import pandas as pd

        if self.scores.empty:
            return pd.DataFrame(columns=self.metrics)
        # reindex, not [...]: a metric that failed on every image has no row, and its column is NaN ("–", n 0)
        # (session 39's API audit: a pandas KeyError lost the other metrics' table and CSV)
        wide = self.scores.pivot(index="image", columns="metric", values="value").reindex(columns=self.metrics)
        from .registry import natural_key

        wide = wide.loc[sorted(wide.index, key=natural_key)]
        wide.columns.name = None
        mean, n = self.summary_labels()
        summary = pd.DataFrame([wide.mean(axis=0, skipna=True), wide.notna().sum(axis=0).astype(float)],
                               index=[mean, n])
        return pd.concat([wide, summary])

    def summary_labels(self) -> tuple[str, str]:
        """The labels of :meth:`table`'s summary rows: ``("mean", "n")``, in parentheses (again) while an image
        has one of those names, so that no image's row is overwritten (before session 38 an image named
        ``mean`` was)."""
        images = set(self.scores["image"]) if not self.scores.empty else set()
        labels = ("mean", "n")
        while images & set(labels):
            labels = tuple(f"({label})" for label in labels)
        return labels

    def images(self) -> list[str]:
        """The scored images' stems, in :meth:`table` order."""
        from .registry import natural_key

        return sorted(set(self.scores["image"]), key=natural_key) if not self.scores.empty else []

    def undefined(self) -> dict[str, list[str]]:
        """``{metric: [images]}`` where the metric is undefined (NaN), so that its mean is over the other images."""
        if self.scores.empty:
            return {}
        from .registry import natural_key

        missing = self.scores[self.scores["value"].isna()].groupby("metric")["image"].agg(list)
        return {m: sorted(missing[m], key=natural_key) for m in self.metrics if m in missing.index}

    def coverage_note(self) -> str | None:
        """One line when some metric's mean is over fewer images than there are source pairs, else ``None``."""
        if not self.pairs or self.scores.empty:
            return None
        counts = self.scores.dropna(subset=["value"]).groupby("metric")["image"].nunique()
        least = min(int(counts.get(m, 0)) for m in self.metrics)
        if least == len(self.pairs):
            return None
        _, n = self.summary_labels()
        return (f"the means are over fewer images than the {len(self.pairs)} source pairs (as few as {least}; row "
                f"{n!r}): fused images missing, skipped or undefined are left out, so compare them only with means "
                "over the same pairs")


def evaluate_folder(fused: str | Path, a: str | Path, b: str | Path, presets: str | Iterable[str] = "paper") -> FolderScores:
    """Score every fused image in ``fused`` against ``a`` (MRI/visible) and ``b`` (PET/SPECT/CT/IR) of the same stem."""
    import pandas as pd

    from .io import ImageError, check_min_side, check_pair, load_image
    from .metric_registry import resolve_metrics
    from .scoring import score_pair

    metrics = resolve_metrics(presets)
    if not metrics:
        raise ValueError(f"--metrics {presets!r} selects no metric (name presets, patterns or paper/standard/all; "
                         "`fusionbench list metrics`)")
    problems: list[str] = []
    fused_dir, a_dir, b_dir = Path(fused), Path(a), Path(b)
    fused_files = index_images(fused_dir, problems)  # sub-folders and non-image files: one line each
    a_files = index_images(a_dir, problems)
    b_files = index_images(b_dir, problems)
    rows: list[tuple[str, str, float]] = []
    from .registry import natural_key

    pairs = sorted(set(a_files) & set(b_files), key=natural_key)
    if fused_files and pairs and not set(fused_files) & set(pairs):
        problems.append(f"{fused_dir}: none of its {len(fused_files)} images has the name of a source pair: images "
                        f"pair by file stem ({fused_dir / 'X.png'} with {a_dir / 'X.png'} and {b_dir / 'X.png'}; "
                        "the extension may differ)")

    for stem in sorted(set(fused_files) | set(a_files) | set(b_files), key=natural_key):
        if stem not in a_files or stem not in b_files:
            have = fused_files.get(stem) or a_files.get(stem) or b_files[stem]
            lacking = a_dir if stem not in a_files else b_dir
            problems.append(f"{have}: no source image {stem!r} in {lacking}, skipped")
            continue
        if stem not in fused_files:
            problems.append(f"{fused_dir / (stem + '.png')}: fused image not found (sources {a_files[stem].name}), skipped")
            continue
        try:
            img_a, img_b = load_image(a_files[stem]), load_image(b_files[stem])
            check_pair(img_a, img_b, a_files[stem], b_files[stem])
            img_f = load_image(fused_files[stem])
            if img_f.shape[:2] != img_a.shape[:2]:
                raise ImageError(fused_files[stem], f"size {img_f.shape[1]}x{img_f.shape[0]} differs from its sources "
                                                    f"({img_a.shape[1]}x{img_a.shape[0]})")
            check_min_side(fused_files[stem], img_a.shape[1], img_a.shape[0])  # one line, not one per metric
        except ImageError as exc:
            problems.append(f"{exc}, skipped")
            continue
        # the runner's scoring (fusionbench.worker.score): undefined values are NaN, their warnings silenced there
        # (a context variable; until session 30 this wrapped it in process-wide filters ignoring every warning)
        scores = score_pair(img_f, img_a, img_b, metrics)
        rows.extend((stem, name, scores.values[name]) for name in metrics if name in scores.values)
        problems.extend(f"{fused_files[stem]}: metric {name} failed ({type(exc).__name__}: {exc})"
                        for name, exc in scores.errors.items())
    return FolderScores(pd.DataFrame(rows, columns=["image", "metric", "value"]), problems, metrics, pairs)


def format_table(table: "pd.DataFrame") -> str:  # noqa: F821
    """What ``fusionbench score`` prints: the table with 4 decimals (its last row, the image counts, whole), each
    metric's direction in its header
    (``EN ↑``, ``Nabf ↓``), then each metric's convention line (as in ``fusionbench list metrics``), so that
    a number copied from the terminal says how it was computed."""
    from .metric_registry import METRICS

    infos = {m: METRICS.get(m).info for m in table.columns if m in METRICS}
    shown = table.map(lambda v: f"{v:.4f}" if v == v else "nan").astype(object)
    if len(table):  # the last summary row counts images: whole numbers
        shown.iloc[-1] = [f"{int(v)}" for v in table.iloc[-1]]
    shown = shown.rename(columns={m: f"{m} {i.arrow}" for m, i in infos.items()})
    colour = [m for m, i in infos.items() if i.colour == "rgb"]
    lines = [shown.to_string(), "",
             "Scored on the fused image's BT.601 luma against the sources' luma, uint8 grey levels"
             + (f" ({', '.join(colour)}: on the images in colour)" if colour else "") + ". Conventions:"]
    lines += [f"  {i.convention or m}" for m, i in infos.items()]
    return "\n".join(lines)


__all__ = ["FolderScores", "evaluate_folder", "format_table"]
