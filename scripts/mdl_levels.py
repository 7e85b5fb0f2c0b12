"""MDL (MDLatLRRv2) at each decomposition level: outputs, AG/SF/SD, agreement with the Octave runs.

Usage::

    python scripts/mdl_levels.py [--shared ../shared] [--figure docs/figures/mdl_levels.png]
                                 [--csv docs/figures/mdl_levels.csv] [--compare legff,cnp,nsct,laplacian_pyramid]

For the six Harvard pairs of ``../shared/official/octave_runs`` (2 CT, 2 PET,
2 SPECT) it fuses every pair at ``de_level`` 1–4 with one pass of the port
(:meth:`MDLatLRR.fuse_all_levels`), checks each output against the official
code's Octave output of that level (``mdl/`` is level 4, ``mdl/other_levels``
levels 1–3), scores AG, SF and SD on the fused luma (as the runner does), and
scores a few other methods on the same pairs for comparison.  Writes a CSV of
every value, a figure (one row per task: MRI, functional image, levels 1–4)
and prints a Markdown table of the means for ``docs/fidelity.md``.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PAIRS = ["MRI-CT_2006", "MRI-CT_20010", "MRI-PET_25030", "MRI-PET_41052", "MRI-SPECT_3020", "MRI-SPECT_10030"]
METRICS = ("AG", "SF", "SD")


def _paths(shared: Path, name: str) -> tuple[Path, Path]:
    task, pid = name.split("_")
    data = shared / "data" / "harvard" / task
    return data / "MRI" / f"{pid}.png", data / task.split("-")[1] / f"{pid}.png"


def _octave(shared: Path, name: str, level: int) -> Path:
    root = shared / "official" / "octave_runs" / "mdl"
    return root / f"{name}.png" if level == 4 else root / "other_levels" / f"{name}_level{level}.png"


def mdl_all_levels(mri: np.ndarray, func: np.ndarray, levels: int = 4) -> list[np.ndarray]:
    """uint8 MDL outputs for de_level 1..levels, exactly as ``fusionbench.fuse("mdl.l<k>", ...)``."""
    from fusionbench.methods.mdl import MDL, rgb_to_yuv, to_uint8, yuv_to_rgb

    model = MDL(levels=levels).model
    m = mri.astype(np.float64) / 255
    f = func.astype(np.float64) / 255
    grey, colour = (m, f) if f.ndim == 3 else (f, np.repeat(m[..., None], 3, axis=2))
    yuv = rgb_to_yuv(colour)
    outs = []
    for fused_y in model.fuse_all_levels(grey, yuv[..., 0]):
        rgb = to_uint8(yuv_to_rgb(np.stack([fused_y, yuv[..., 1], yuv[..., 2]], axis=-1)) * 255)
        outs.append(rgb if f.ndim == 3 else rgb[..., 0])
    return outs


def _scores(fused: np.ndarray, a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    import fusionbench.metrics as M
    from fusionbench.api import scoring_view

    view = scoring_view(fused, a, b)
    return M.evaluate(view.fused, view.a, view.b, ",".join(METRICS))


def _figure(path: Path, rows: list[tuple[str, np.ndarray, np.ndarray, list[np.ndarray]]], default: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 2 + len(rows[0][3])
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.9 * cols, 2.0 * len(rows)), squeeze=False)
    titles = ["MRI", "functional"] + [f"de_level {k}" + (" = mdl" if k == default else "") for k in range(1, cols - 1)]
    for r, (name, a, b, outs) in enumerate(rows):
        for c, img in enumerate([a, b] + outs):
            ax = axes[r, c]
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=9)
        axes[r, 0].set_ylabel(name, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    p.add_argument("--figure", type=Path, default=REPO / "docs" / "figures" / "mdl_levels.png")
    p.add_argument("--csv", type=Path, default=REPO / "docs" / "figures" / "mdl_levels.csv")
    p.add_argument("--compare", default="legff,cnp,nsct,laplacian_pyramid",
                   help="other methods scored on the same pairs (comma list)")
    args = p.parse_args(argv)

    import fusionbench
    from fusionbench.io import load_image

    records, fig_rows = [], []
    for name in PAIRS:
        pa, pb = _paths(args.shared, name)
        a, b = load_image(pa), load_image(pb)
        outs = mdl_all_levels(a, b)
        for level, out in enumerate(outs, start=1):
            ref = load_image(_octave(args.shared, name, level))
            exact = float(np.mean(out == ref)) if out.shape == ref.shape else float("nan")
            records.append({"pair": name, "method": f"mdl.l{level}", "octave_exact": exact, **_scores(out, a, b)})
            print(f"{name} de_level {level}: {100 * exact:.4f} % exact vs Octave", file=sys.stderr)
        for method in filter(None, args.compare.split(",")):
            records.append({"pair": name, "method": method, "octave_exact": "",
                            **_scores(fusionbench.fuse(method, a, b), a, b)})
        if name in ("MRI-CT_2006", "MRI-PET_25030", "MRI-SPECT_3020"):
            fig_rows.append((name, a, b, outs))

    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with args.csv.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["pair", "method", "octave_exact", *METRICS])
        w.writeheader()
        for rec in records:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in rec.items()})
    from fusionbench.method_registry import method_info

    _figure(args.figure, fig_rows, int(method_info("mdl").params["levels"]))

    methods = list(dict.fromkeys(r["method"] for r in records))
    others = [m for m in methods if not m.startswith("mdl")]
    ref_mean = {k: np.mean([r[k] for r in records if r["method"] in others]) for k in METRICS}
    print("| method | " + " | ".join(f"{k} (× others' mean)" for k in METRICS) + " | exact vs Octave |")
    print("|---|" + "---|" * (len(METRICS) + 1))
    for m in methods:
        rows = [r for r in records if r["method"] == m]
        cells = []
        for k in METRICS:
            v = float(np.mean([r[k] for r in rows]))
            cells.append(f"{v:.2f} ({v / ref_mean[k]:.2f}×)")
        ex = [r["octave_exact"] for r in rows if r["octave_exact"] != ""]
        print(f"| {m} | " + " | ".join(cells) + f" | {100 * np.mean(ex):.2f} % |" if ex else f"| {m} | "
              + " | ".join(cells) + " | — |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
