"""fusionbench against the official runs of ``run_all.sh`` / ``run_wide.sh``: pooled agreement per run.

    FUSIONBENCH_HOME=<weights cache> python agreement.py OUT_DIR

Prints, for each run folder present (``sdnet``, ``sdnet_colour``, ``u2fusion``, ``matr``,
``swinfusion``, ``swinfusion_ct``): the
number of pairs, PSNR over all values, mean |Δ|, the share of identical values and of values
within ±1 grey level, the largest |Δ|, and how many pairs are bit-exact.  Each input is given to
fusionbench as the official script read it (SDNet: Pillow's YCbCr → 'F'; MATR: Pillow's 'L').
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from fusionbench import create_method

sys.path.insert(0, str(Path(__file__).resolve().parent))
from legacy_shims import imread  # noqa: E402


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def _report(label: str, pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
    diffs = [np.abs(ours.astype(np.int64) - official.astype(np.int64)).ravel() for ours, official in pairs]
    d = np.concatenate(diffs)
    mse = float(np.mean(d.astype(np.float64) ** 2))
    psnr = float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
    exact_pairs = sum(int(x.max() == 0) for x in diffs)
    print(f"{label}: {len(pairs)} pairs, PSNR {psnr:.2f} dB, MAD {d.mean():.6f}, identical {100 * np.mean(d == 0):.4f} %, "
          f"within ±1 {100 * np.mean(d <= 1):.4f} %, max {d.max()}, bit-exact pairs {exact_pairs}")


def sdnet_grey(run: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    sdnet, work, pairs = create_method("sdnet").instance, run / "work", []
    for row in csv.DictReader(open(run / "cases.csv")):
        n = row["n"]
        function = imread(work / "Test_Function" / f"{n}.png", flatten=True, mode="YCbCr").astype(np.float64)
        structure = imread(work / "Test_Structure" / f"{n}.png", flatten=True, mode="YCbCr").astype(np.float64)
        pairs.append((sdnet(structure / 255.0, function / 255.0), _png(work / "result" / "epoch29" / f"{n}.png")))
    return pairs


def sdnet_colour(run: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    sdnet, work, pairs = create_method("sdnet").instance, run / "scripts", []
    for row in csv.DictReader(open(run / "cases.csv")):
        n = row["n"]
        rgb = _png(work / f"Medical\\Function\\RGB\\{n}.png")
        mri = _png(work / "mri" / f"{n}.png")
        pairs.append((sdnet(mri / 255.0, rgb / 255.0), _png(work / f"Medical\\Result\\RGB\\{n}.png")))
    return pairs


def u2fusion(run: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    method, work, pairs = create_method("u2fusion").instance, run / "work", []
    for row in csv.DictReader(open(run / "cases.csv")):
        n = row["n"]
        first, second = (_png(work / side / f"{n}.png") / 255.0 for side in ("source1", "source2"))
        pairs.append((method.fuse_official(first, second), _png(work / "results" / f"{n}.png")))
    return pairs


def matr(run: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    method, pairs = create_method("matr").instance, []
    for row in csv.DictReader(open(run / "cases.csv")):
        crop = tuple(int(v) for v in row["crop"].split(",")) if row["crop"] else None

        def grey(path: str) -> np.ndarray:
            image = Image.open(path)
            if crop is not None:
                y0, x0, h, w = crop
                image = image.crop((x0, y0, x0 + w, y0 + h))
            return np.asarray(image.convert("L"))

        ours = method(grey(row["mri"]) / 255.0, grey(row["functional"]) / 255.0)
        pairs.append((ours, _png(run / f"{row['n']}.png")))
    return pairs


def _swinfusion(run: Path, name: str) -> list[tuple[np.ndarray, np.ndarray]]:
    method, data, pairs = create_method(name).instance, run / "work" / "Dataset" / "testsets" / "cases", []
    for row in csv.DictReader(open(run / "cases.csv")):
        n = int(row["n"])
        a, b = (np.float32(_png(data / side / f"{n:03d}.png") / 255.0) for side in ("A", "B"))
        ours = np.round(np.clip(method(a, b), 0, 1) * np.float32(255.0)).astype(np.uint8)
        pairs.append((ours, _png(run / f"{n}.png")))
    return pairs


RUNS = {"sdnet": sdnet_grey, "sdnet_colour": sdnet_colour, "u2fusion": u2fusion, "matr": matr,
        "swinfusion": lambda run: _swinfusion(run, "swinfusion"),
        "swinfusion_ct": lambda run: _swinfusion(run, "swinfusion.ct")}


def main(out: Path) -> None:
    for name, collect in RUNS.items():
        if (out / name / "cases.csv").is_file():
            _report(name, collect(out / name))


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):  # the usage, before anything is read or written
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
