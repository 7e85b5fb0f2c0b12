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

    def table(self) -> "pd.DataFrame":  # noqa: F821
        """One row per image, one column per metric (in the order asked for), and a final ``mean`` row."""
        import pandas as pd

        if self.scores.empty:
            return pd.DataFrame(columns=self.metrics)
        wide = self.scores.pivot(index="image", columns="metric", values="value")[self.metrics]
        from .registry import natural_key

        wide = wide.loc[sorted(wide.index, key=natural_key)]
        wide.columns.name = None
        wide.loc["mean"] = wide.mean(axis=0, skipna=True)
        return wide

    def undefined(self) -> dict[str, list[str]]:
        """``{metric: [images]}`` where the metric is undefined (NaN), so that its mean is over the other images."""
        if self.scores.empty:
            return {}
        from .registry import natural_key

        missing = self.scores[self.scores["value"].isna()].groupby("metric")["image"].agg(list)
        return {m: sorted(missing[m], key=natural_key) for m in self.metrics if m in missing.index}


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
    fused_files = index_images(fused_dir, problems, report_other_files=False)
    a_files = index_images(a_dir, problems, report_other_files=False)
    b_files = index_images(b_dir, problems, report_other_files=False)
    rows: list[tuple[str, str, float]] = []
    from .registry import natural_key

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
    return FolderScores(pd.DataFrame(rows, columns=["image", "metric", "value"]), problems, metrics)


def format_table(table: "pd.DataFrame") -> str:  # noqa: F821
    """What ``fusionbench score`` prints: the table with 4 decimals, each metric's direction in its header
    (``EN ↑``, ``Nabf ↓``), then each metric's convention line (as in ``fusionbench list metrics``), so that
    a number copied from the terminal says how it was computed."""
    from .metric_registry import METRICS

    infos = {m: METRICS.get(m).info for m in table.columns if m in METRICS}
    shown = table.rename(columns={m: f"{m} {i.arrow}" for m, i in infos.items()})
    colour = [m for m, i in infos.items() if i.colour == "rgb"]
    lines = [shown.to_string(float_format=lambda v: f"{v:.4f}", na_rep="nan"), "",
             "Scored on the fused image's BT.601 luma against the sources' luma, uint8 grey levels"
             + (f" ({', '.join(colour)}: on the images in colour)" if colour else "") + ". Conventions:"]
    lines += [f"  {i.convention or m}" for m, i in infos.items()]
    return "\n".join(lines)


__all__ = ["FolderScores", "evaluate_folder", "format_table"]
