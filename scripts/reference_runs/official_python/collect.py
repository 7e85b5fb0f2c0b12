"""Copy the official results of ``run_all.sh`` into the tests' folders.

    python collect.py OUT_DIR [SHARED_DIR]

Writes ``tests/methods/tf_sdnet/``, ``tf_sdnet_colour/``, ``tf_u2fusion/``, ``torch_matr/``,
``torch_swinfusion/`` and ``torch_swinfusion_ct/``: each a
``cases.csv`` (n, the two inputs relative to ``../shared``, the crop y0,x0,h,w) and the
official result ``<n>.png``; for the small grey crops (≤ 20,000 pixels) also the unrounded result ``<n>.raw.npy``
(``test.py``'s ``result`` in grey levels; ``test_main.py``'s ``output`` in [0, 1]).
"""
from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
#: (folder in OUT_DIR, tests folder, where the results are, the two input columns)
RUNS = (
    ("sdnet", "tf_sdnet", "work/result/epoch29", ("function", "structure")),
    ("sdnet_colour", "tf_sdnet_colour", "scripts", ("colour", "mri")),
    ("u2fusion", "tf_u2fusion", "work/results", ("source1", "source2")),
    ("matr", "torch_matr", ".", ("functional", "mri")),
    ("swinfusion", "torch_swinfusion", ".", ("a", "b")),
    ("swinfusion_ct", "torch_swinfusion_ct", ".", ("a", "b")),
)


def result_path(run_dir: Path, where: str, n: str) -> Path:
    if where == "scripts":  # output_process.m's Windows-style name, one file on Linux
        return run_dir / where / f"Medical\\Result\\RGB\\{n}.png"
    return run_dir / where / f"{n}.png"


def main(out: Path, shared: Path) -> None:
    shared = shared.resolve()
    for folder, target_name, where, columns in RUNS:
        run_dir = out / folder
        target = ROOT / "tests" / "methods" / target_name
        target.mkdir(parents=True, exist_ok=True)
        rows = []
        for row in csv.DictReader(open(run_dir / "cases.csv")):
            n = row["n"]
            shutil.copy(result_path(run_dir, where, n), target / f"{n}.png")
            raw = result_path(run_dir, where, n).with_name(f"{n}.png.raw.npy")
            if row["crop"] and raw.is_file() and np.load(raw).ndim == 2 and np.load(raw).size <= 20_000:
                np.save(target / f"{n}.raw.npy", np.load(raw).astype(np.float32))
            rows.append({"n": n, "first": str(Path(row[columns[0]]).resolve().relative_to(shared)),
                         "second": str(Path(row[columns[1]]).resolve().relative_to(shared)), "crop": row["crop"]})
        with open(target / "cases.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["n", "first", "second", "crop"])
            writer.writeheader()
            writer.writerows(rows)
        print(target, len(rows), "cases")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):  # the usage, before anything is read or written
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT.parent / "shared")
