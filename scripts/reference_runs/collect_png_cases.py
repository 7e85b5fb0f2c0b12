"""Commit a few reference-run results beside a test: ``tests/methods/<FOLDER>/``.

    python collect_png_cases.py FOLDER OUT_DIR NAME=OTHER.png:MRI.png[@y0,x0,h,w] ...

Copies ``OUT_DIR/<name>.png`` (an official code's uint8 output, e.g. ``run_papcnn.m``'s or
``run_vifb_cnn.m``'s) and writes ``cases.csv`` (name, other, mri, crop), from which the test rebuilds
the inputs out of ``../shared``; the specs are those given to the input script.
"""
from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

from pair_specs import parse

TESTS = Path(__file__).resolve().parents[2] / "tests" / "methods"


def main(folder: str, outputs: Path, specs: list[str]) -> None:
    dest = TESTS / folder
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / "cases.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "other", "mri", "crop"])
        for spec in specs:
            name, other, mri, crop = parse(spec)
            shutil.copyfile(outputs / f"{name}.png", dest / f"{name}.png")
            writer.writerow([name, other, mri, ",".join(map(str, crop)) if crop else ""])


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] in ("-h", "--help"):  # the usage, before anything is read or written
        raise SystemExit(__doc__)
    main(sys.argv[1], Path(sys.argv[2]), sys.argv[3:])
