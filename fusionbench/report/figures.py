"""Figures (matplotlib, PNG and PDF): qualitative grids (Fig. 7–9), Otsu masks (Fig. 2),
ablation bars and outputs (Fig. 10–11), per-metric box plots and critical-difference diagrams."""
from __future__ import annotations

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


def save(fig: plt.Figure, stem: Path) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf``; return both paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    fig.savefig(paths[0], dpi=130, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


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
                     task: str = "") -> list[Path]:
    """The two sources and every method's fused output for one pair, with a zoomed detail inset."""
    a, b = load_image(a_path), load_image(b_path)
    zoom = detail_window(a)
    a_label, b_label = source_labels(task)
    panels = [(f"(a) {a_label}", a), (f"(b) {b_label}", b)]
    for i, (method, path) in enumerate(outputs.items()):
        panels.append((f"({panel_label(i + 2)}) {display_name(method)}", load_image(path)))
    cols = min(6, len(panels))
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.05 * rows + 0.3), squeeze=False,
                             layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (name, image) in zip(axes.ravel(), panels):
        _show(ax, image, name, zoom)
    fig.suptitle(title, fontsize=9)
    return save(fig, stem)


def mask_figure(a_path: Path, b_path: Path, title: str, stem: Path) -> list[Path]:
    """Fig. 2 style: each source and its Otsu binary mask (scikit-image ``threshold_otsu``)."""
    from skimage.filters import threshold_otsu

    from fusionbench.colour import luma_uint8

    a, b = load_image(a_path), load_image(b_path)
    fig, axes = plt.subplots(1, 4, figsize=(8, 2.2))
    for ax, (name, image) in zip(axes, [("MRI / A", a), ("Otsu mask of A", None), ("B", b), ("Otsu mask of B", None)]):
        ax.axis("off")
        ax.set_title(name, fontsize=8)
    for col, image in ((0, a), (2, b)):
        grey = luma_uint8(image)
        axes[col].imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
        axes[col + 1].imshow(grey > threshold_otsu(grey), cmap="gray")
    fig.suptitle(title, fontsize=9)
    return save(fig, stem)


def box_plots(scores: pd.DataFrame, dataset: str, metrics: Sequence[str], methods: Sequence[str],
              stem: Path) -> list[Path]:
    """Per-metric box plots of the per-pair scores of every method on one dataset."""
    df = scores[scores["dataset"] == dataset]
    cols = min(4, len(metrics))
    rows = int(np.ceil(len(metrics) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 0.25 * len(methods) + 2.2 * rows), squeeze=False)
    for ax in axes.ravel()[len(metrics):]:
        ax.axis("off")
    for ax, metric in zip(axes.ravel(), metrics):
        data = [df[(df["method"] == m) & (df["metric"] == metric)]["value"].dropna().to_numpy() for m in methods]
        ax.boxplot(data, orientation="horizontal", widths=0.6, showfliers=True, flierprops={"markersize": 2})
        ax.set_yticks(range(1, len(methods) + 1), [display_name(m) for m in methods], fontsize=7)
        ax.set_title(f"{metric} {'↑' if higher_is_better(metric) else '↓'}", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(dataset, fontsize=10)
    fig.tight_layout()
    return save(fig, stem)


def cd_diagram(test: RankTest, title: str, stem: Path) -> list[Path]:
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
        ax.text(x_text, y, f"{display_name(method)} ({rank:.2f})", fontsize=7, va="center",
                ha="right" if left else "left")
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


def ablation_bars(table: pd.DataFrame, metrics: Sequence[str], stem: Path) -> list[Path]:
    """Fig. 10 style: one group of bars per metric, one bar per ablation variant (means over the 20 pairs)."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(2.0 * len(metrics), 2.6), squeeze=False)
    labels = list(table["display_name"])
    colours = plt.cm.tab10(np.arange(len(labels)))
    for ax, metric in zip(axes.ravel(), metrics):
        ax.bar(range(len(labels)), table[metric].to_numpy(dtype=float), color=colours)
        ax.set_title(metric, fontsize=9)
        ax.set_xticks([])
        ax.tick_params(axis="y", labelsize=7)
    axes[0, 0].legend(handles=[plt.Rectangle((0, 0), 1, 1, color=c) for c in colours], labels=labels,
                      fontsize=6, loc="upper left", bbox_to_anchor=(0, -0.05), ncol=len(labels))
    fig.tight_layout()
    return save(fig, stem)
