"""Figures (matplotlib): qualitative grids (Fig. 7–9), Otsu masks (Fig. 2), ablation bars and outputs
(Fig. 10–11), per-metric box plots and critical-difference diagrams.

PNG at 100 dpi by default (a committed report stays light); ``full=True`` writes
200 dpi PNGs and a PDF twin of each figure (``fusionbench report --full``).
Zoom insets sit on the functional image's region of highest activity (PET,
SPECT, infrared: the window of highest mean intensity), on the MRI's most
detailed region for MRI-CT, or on a given ROI.
"""
from __future__ import annotations

import textwrap

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fusionbench.io import load_image  # noqa: E402

from .data import display_name, higher_is_better  # noqa: E402
from .stats import RankTest  # noqa: E402


FULL = {"dpi": 200, "pdf": True}
LIGHT = {"dpi": 100, "pdf": False}
_mode = dict(LIGHT)


def set_resolution(full: bool) -> None:
    """Full resolution (200 dpi PNG + PDF) or light (100 dpi PNG only) for the figures that follow."""
    _mode.clear()
    _mode.update(FULL if full else LIGHT)


def save(fig: plt.Figure, stem: Path) -> list[Path]:
    """Write ``stem.png`` (and ``stem.pdf`` at full resolution); return the paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png")]
    fig.savefig(paths[0], dpi=_mode["dpi"], bbox_inches="tight")
    if _mode["pdf"]:
        paths.append(stem.with_suffix(".pdf"))
        fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


def _name(method: str, names: dict[str, str] | None) -> str:
    return (names or {}).get(method) or display_name(method)


def _show(ax: plt.Axes, image: np.ndarray, title: str, zoom: tuple[int, int, int] | None) -> None:
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    if zoom is not None:
        r, c, size = zoom
        h, w = image.shape[:2]
        ax.add_patch(plt.Rectangle((c, r), size, size, fill=False, edgecolor="yellow", linewidth=0.8))
        inset = ax.inset_axes([0.62, 0.0, 0.38, 0.38])
        crop = image[r:r + size, c:c + size]
        inset.imshow(crop, cmap="gray" if crop.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
        inset.set_xticks([])
        inset.set_yticks([])
        for spine in inset.spines.values():
            spine.set_edgecolor("yellow")


def detail_window(a: np.ndarray, size: int | None = None) -> tuple[int, int, int]:
    """A square window on the most detailed region of ``a`` (largest local gradient energy)."""
    from scipy import ndimage

    h, w = a.shape[:2]
    size = size or max(16, min(h, w) // 4)
    grey = a.astype(float) if a.ndim == 2 else a.astype(float).mean(axis=2)
    energy = ndimage.uniform_filter(np.hypot(ndimage.sobel(grey, 0), ndimage.sobel(grey, 1)), size)
    half = size // 2
    energy[:half, :] = energy[-half:, :] = 0
    energy[:, :half] = energy[:, -half:] = 0
    r, c = np.unravel_index(np.argmax(energy), energy.shape)
    return int(np.clip(r - half, 0, h - size)), int(np.clip(c - half, 0, w - size)), size


def activity_window(b: np.ndarray, size: int | None = None, local: bool = False) -> tuple[int, int, int]:
    """A square window on the highest-activity region of a functional image.

    Tracer images (PET, SPECT): the window of largest mean luma (a quarter of the
    shorter side).  ``local`` (infrared): the window (a sixth of the shorter side)
    whose mean most exceeds that of its 4×-wider surround, i.e. the hottest target
    rather than a large warm background such as a sunlit roof.
    """
    from scipy import ndimage

    h, w = b.shape[:2]
    size = size or max(16, min(h, w) // (6 if local else 4))
    grey = b.astype(float) if b.ndim == 2 else b.astype(float) @ np.array([0.299, 0.587, 0.114])
    if local:
        energy = ndimage.uniform_filter(grey, size, mode="reflect") - ndimage.uniform_filter(grey, 4 * size,
                                                                                            mode="reflect")
    else:
        energy = ndimage.uniform_filter(grey, size, mode="constant")
    half = size // 2
    energy[:half, :] = energy[-half:, :] = -1
    energy[:, :half] = energy[:, -half:] = -1
    r, c = np.unravel_index(np.argmax(energy), energy.shape)
    return int(np.clip(r - half, 0, h - size)), int(np.clip(c - half, 0, w - size)), size


def fit_roi(roi: tuple[int, int, int], shape: tuple[int, ...]) -> tuple[tuple[int, int, int], str]:
    """``--roi ROW,COL,SIZE`` inside an H×W image, and the caption's words for it: a window that does not fit is
    moved inside (and cut to the image's smaller side), and the caption says so (before, a window outside the
    image ended the report halfway with numpy's "zero-size array" error)."""
    h, w = int(shape[0]), int(shape[1])
    row, col, size = roi
    size = max(1, min(size, h, w))
    fitted = (int(np.clip(row, 0, h - size)), int(np.clip(col, 0, w - size)), size)
    if fitted == tuple(roi):
        return fitted, "the given ROI"
    return fitted, f"the given ROI {tuple(roi)}, moved inside the {w}x{h} image to {fitted}"


def inset_window(a: np.ndarray, b: np.ndarray, task: str | None, roi: tuple[int, int, int] | None = None
                 ) -> tuple[tuple[int, int, int], str]:
    """The zoom window of a pair and what it is placed on (for the caption)."""
    if roi is not None:
        return fit_roi(roi, a.shape[:2])
    if task in ("MRI-PET", "MRI-SPECT", "IR-VIS"):
        functional = task.split("-")[1]
        if task == "IR-VIS":
            return activity_window(b, local=True), "the infrared image's hottest target (largest local excess)"
        return activity_window(b), f"the {functional} image's highest-activity region"
    return detail_window(a), "the most detailed region of source A"


def panel_label(index: int) -> str:
    """Panel letters a, b, …, z, aa, ab, … (as far as a grid needs)."""
    label = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        label = chr(ord("a") + rem) + label
    return label


def source_labels(task: str) -> tuple[str, str]:
    """Panel names of the two sources of a task: ``MRI-PET`` → (MRI, PET), ``IR-VIS`` → (VIS, IR)."""
    if task == "IR-VIS":
        return "visible", "infrared"
    parts = task.split("-")
    return (parts[0], parts[1]) if len(parts) == 2 else ("source A", "source B")


def qualitative_grid(a_path: Path, b_path: Path, outputs: dict[str, Path], title: str, stem: Path,
                     task: str = "", names: dict[str, str] | None = None,
                     roi: tuple[int, int, int] | None = None) -> tuple[list[Path], str]:
    """The two sources and each method's fused output for one pair, with a zoomed inset.

    Returns the written paths and where the inset was placed (for the caption).
    """
    a, b = load_image(a_path), load_image(b_path)
    zoom, where = inset_window(a, b, task, roi)
    a_label, b_label = source_labels(task)
    panels = [(f"(a) {a_label}", a), (f"(b) {b_label}", b)]
    for i, (method, path) in enumerate(outputs.items()):
        panels.append((f"({panel_label(i + 2)}) {_name(method, names)}", load_image(path)))
    cols = min(6, len(panels))
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.05 * rows + 0.3), squeeze=False,
                             layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (name, image) in zip(axes.ravel(), panels):
        _show(ax, image, name, zoom)
    fig.suptitle(title, fontsize=9)
    return save(fig, stem), where


def mask_figure(rows: list[tuple[str, Path, Path, str]], title: str, stem: Path) -> list[Path]:
    """Fig. 2 style, one multi-panel figure: per row (label, A, B, task) each source and its Otsu mask
    (scikit-image ``threshold_otsu`` on the BT.601 luma)."""
    from skimage.filters import threshold_otsu

    from fusionbench.colour import luma_uint8

    fig, axes = plt.subplots(len(rows), 4, figsize=(8, 2.1 * len(rows) + 0.3), squeeze=False, layout="constrained")
    for r, (label, a_path, b_path, task) in enumerate(rows):
        a_label, b_label = source_labels(task)
        a, b = load_image(a_path), load_image(b_path)
        titles = [f"{a_label}", f"Otsu mask of {a_label}", f"{b_label}", f"Otsu mask of {b_label}"]
        for col, image in ((0, a), (2, b)):
            grey = luma_uint8(image)
            axes[r, col].imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
            axes[r, col + 1].imshow(grey > threshold_otsu(grey), cmap="gray")
        for c in range(4):
            axes[r, c].axis("off")
            axes[r, c].set_title(f"({panel_label(4 * r + c)}) {titles[c]}", fontsize=8)
        # wrapped to the row's height: a long label (a folder dataset's path) collapsed the layout
        axes[r, 0].text(-0.08, 0.5, textwrap.fill(label, 32), transform=axes[r, 0].transAxes, rotation=90,
                        va="center", ha="right", fontsize=8)
    fig.suptitle(title, fontsize=9)  # constrained layout: tight_layout could not fit one row with its titles
    return save(fig, stem)


def ablation_outputs(rows: list[tuple[str, Path, Path, str, dict[str, Path]]], title: str, stem: Path,
                     names: dict[str, str] | None = None) -> list[Path]:
    """Fig. 11 style, one multi-panel figure: per row (label, A, B, task, {variant: fused}) the sources and
    each ablation variant's output."""
    cols = 2 + max(len(r[4]) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.7 * cols, 1.85 * len(rows) + 0.3), squeeze=False,
                             layout="constrained")
    k = 0
    for r, (label, a_path, b_path, task, outputs) in enumerate(rows):
        a_label, b_label = source_labels(task)
        panels = [(a_label, load_image(a_path)), (b_label, load_image(b_path))]
        panels += [(_name(m, names), load_image(p)) for m, p in outputs.items()]
        for c in range(cols):
            axes[r, c].axis("off")
        for c, (name, image) in enumerate(panels):
            _show(axes[r, c], image, f"({panel_label(k)}) {name}", None)
            k += 1
        axes[r, 0].text(-0.08, 0.5, label, transform=axes[r, 0].transAxes, rotation=90, va="center", ha="right",
                        fontsize=7)
    fig.suptitle(title, fontsize=9)
    return save(fig, stem)


def _cell_scores(df: pd.DataFrame, method: str, metric: str) -> np.ndarray:
    """The scores of one (method, metric) cell of a one-dataset frame, NaN (undefined) dropped, ±inf kept."""
    return df[(df["method"] == method) & (df["metric"] == metric)]["value"].dropna().to_numpy(dtype=float)


def infinite_scores(scores: pd.DataFrame, dataset: str, metrics: Sequence[str],
                    methods: Sequence[str]) -> dict[tuple[str, str], int]:
    """``{(method, metric): k}`` of the cells of ``dataset`` with ``k > 0`` infinite scores (±inf, PSNR of
    F = A = B), which :func:`box_plots` leaves out of the box and marks ``+k inf`` beside it."""
    df = scores[scores["dataset"] == dataset]
    counts = {(m, k): int(np.isinf(_cell_scores(df, m, k)).sum()) for k in metrics for m in methods}
    return {cell: n for cell, n in counts.items() if n}


def not_drawn_note(cells: dict[tuple[str, str], int], names: dict[str, str] | None = None) -> str:
    """The caption sentence for the :func:`infinite_scores` of a box plot (``""`` when there are none), in the
    tables' words for an infinite score (:func:`fusionbench.summary.infinite_note`)."""
    if not cells:
        return ""
    total = sum(cells.values())
    listed = "; ".join(f"{_name(m, names)} {k} ({n} pair{'s' if n > 1 else ''})" for (m, k), n in cells.items())
    return (f"Not drawn: {total} pair{'s' if total > 1 else ''} with an infinite score (PSNR where F = A = B), "
            f"marked “+k inf” beside their box: {listed}.")


def box_plots(scores: pd.DataFrame, dataset: str, metrics: Sequence[str], methods: Sequence[str],
              stem: Path, names: dict[str, str] | None = None, title: str = "") -> list[Path]:
    """Per-metric box plots of the per-pair scores of every method on one dataset.

    Quartiles and whiskers are over the finite scores: an infinite one (:func:`infinite_scores`) cannot be drawn,
    and is counted ``+k inf`` at the right of its method's row instead (the page's caption lists them,
    :func:`not_drawn_note`); NaN scores (the metric undefined on the pair) are left out, as in the tables.
    """
    df = scores[scores["dataset"] == dataset]
    cols = min(4, len(metrics))
    rows = int(np.ceil(len(metrics) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, rows * max(2.2, 0.28 * len(methods) + 1.0) + 0.4),
                             squeeze=False)
    for ax in axes.ravel()[len(metrics):]:
        ax.axis("off")
    infinite = infinite_scores(scores, dataset, metrics, methods)
    for ax, metric in zip(axes.ravel(), metrics):
        data = [_cell_scores(df, m, metric) for m in methods]
        ax.boxplot([d[np.isfinite(d)] for d in data], orientation="horizontal", widths=0.6, showfliers=True,
                   flierprops={"markersize": 2})
        for row, m in enumerate(methods, start=1):
            if (m, metric) in infinite:
                ax.text(1.01, row, f"+{infinite[(m, metric)]} inf", transform=ax.get_yaxis_transform(),
                        fontsize=6, va="center", ha="left")
        ax.set_yticks(range(1, len(methods) + 1), [_name(m, names) for m in methods], fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{metric} {'↑' if higher_is_better(metric) else '↓'}", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(title or dataset, fontsize=10)
    fig.tight_layout()
    return save(fig, stem)


def cd_diagram(test: RankTest, title: str, stem: Path, names: dict[str, str] | None = None,
               highlight: str | None = None) -> list[Path]:
    """Critical-difference diagram (Demšar 2006): mean ranks, with bars joining methods within CD."""
    ranks = test.ranks.sort_values()
    k = len(ranks)
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.22 * k))
    ax.set_xlim(0.5, k + 0.5)
    half = (k + 1) // 2
    ax.set_ylim(-(half + 1), 2)
    ax.axis("off")
    ax.hlines(0, 1, k, color="black", linewidth=1)
    for r in range(1, k + 1):
        ax.vlines(r, 0, 0.25, color="black", linewidth=0.8)
        ax.text(r, 0.45, str(r), ha="center", fontsize=7)
    for i, (method, rank) in enumerate(ranks.items()):
        left = i < half
        y = -(i + 1) if left else -(k - i)
        x_text = 0.6 if left else k + 0.4
        ax.plot([rank, rank, x_text], [0, y, y], color="black", linewidth=0.6)
        ax.text(x_text, y, f"{_name(method, names)} ({rank:.2f})", fontsize=7, va="center",
                ha="right" if left else "left", fontweight="bold" if method == highlight else "normal")
    if np.isfinite(test.cd):
        ax.plot([1, 1 + test.cd], [1.2, 1.2], color="red", linewidth=1.5)
        ax.text(1 + test.cd / 2, 1.45, f"CD = {test.cd:.2f} (Nemenyi, α = 0.05)", ha="center", fontsize=7)
        values = ranks.to_numpy()
        level = 0
        for i in range(k):
            j = i
            while j + 1 < k and values[j + 1] - values[i] <= test.cd:
                j += 1
            if j > i and (i == 0 or values[j] - values[i - 1] > test.cd):
                level += 1
                ax.hlines(-0.25 - 0.3 * level, values[i] - 0.03, values[j] + 0.03, color="red", linewidth=2)
    p = f"Friedman p = {test.friedman_p:.2g}" if np.isfinite(test.friedman_p) else ""
    ax.set_title(f"{title} — {test.metric}, n = {test.n_pairs} pairs. {p}", fontsize=8)
    return save(fig, stem)


def ablation_bars(table: pd.DataFrame, metrics: Sequence[str], stem: Path,
                  ci: dict[tuple[str, str], tuple[float, float]] | None = None, title: str = "",
                  points: dict[tuple[str, str], Sequence[float]] | None = None, bars: str = "") -> list[Path]:
    """Fig. 10 style: per metric one bar per ablation variant (mean), with an interval as error bars and the
    value printed on each bar; each panel's y axis spans the values and does not start at 0: the figure says so
    under its title, with ``bars`` (what the error bars are) where given.

    ``table`` is :func:`fusionbench.report.ablation.ablation_table`'s frame; ``ci[(method, metric)]`` = (low, high)
    (the report passes mean ± sd over seeds, or a 95 % CI over pairs for a variant with one seed);
    ``points[(method, metric)]``: values drawn as dots on the bar (each training seed's mean).
    """
    methods = table.attrs.get("methods") or list(table["Variant"])
    labels = list(table["Variant"])
    colours = plt.cm.tab10(np.arange(len(labels)) % 10)
    cols = min(4, len(metrics))
    rows = int(np.ceil(len(metrics) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.9 * cols, 2.5 * rows + 0.6), squeeze=False)
    for ax in axes.ravel()[len(metrics):]:
        ax.axis("off")
    for ax, metric in zip(axes.ravel(), metrics):
        means = table[metric].to_numpy(dtype=float)
        low = np.array([(ci or {}).get((m, metric), (np.nan, np.nan))[0] for m in methods], dtype=float)
        high = np.array([(ci or {}).get((m, metric), (np.nan, np.nan))[1] for m in methods], dtype=float)
        err = np.vstack([np.where(np.isfinite(low), means - low, 0), np.where(np.isfinite(high), high - means, 0)])
        x = np.arange(len(labels))
        dots = [np.asarray((points or {}).get((m, metric), ()), dtype=float) for m in methods]
        extra = np.concatenate([d for d in dots if d.size > 1] or [np.array([np.nan])])
        lo_all = np.nanmin(np.append(np.where(np.isfinite(low), low, means), extra))
        hi_all = np.nanmax(np.append(np.where(np.isfinite(high), high, means), extra))
        pad = 0.15 * (hi_all - lo_all) if hi_all > lo_all else max(abs(hi_all) * 0.05, 1e-3)
        bottom = lo_all - pad
        ax.bar(x, means - bottom, bottom=bottom, color=colours, yerr=err, capsize=2,
               error_kw={"linewidth": 0.8})
        for xi, d in zip(x, dots):  # each training seed's mean
            if d.size > 1:
                ax.plot(np.full(d.size, xi), d, "o", ms=2.2, color="black", alpha=0.7, zorder=3)
        for xi, v, top in zip(x, means, means + err[1]):
            if np.isfinite(v):
                ax.text(xi, top + pad * 0.1, f"{v:.3g}", ha="center", va="bottom", fontsize=6)
        ax.set_ylim(bottom, hi_all + 1.6 * pad)
        ax.set_title(f"{metric} {'↑' if higher_is_better(metric) else '↓'}", fontsize=9)
        ax.set_ylabel("mean (axis not from 0)", fontsize=6)
        ax.set_xticks([])
        ax.tick_params(axis="y", labelsize=7)
    fig.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=c) for c in colours], labels=labels, fontsize=7,
               loc="lower center", ncol=min(len(labels), 5), frameon=False)
    subtitle = "y axes do not start at 0" + (f"; error bars: {bars}" if bars else "")
    fig.suptitle(f"{title}\n{subtitle}" if title else subtitle, fontsize=8)
    fig.tight_layout(rect=(0, 0.08 + 0.02 * (len(labels) > 5), 1, 1))
    return save(fig, stem)
