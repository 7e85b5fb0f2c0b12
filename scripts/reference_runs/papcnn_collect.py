"""Commit a few ``run_papcnn.m`` results beside the test: ``tests/methods/octave_papcnn/``.

    python papcnn_collect.py OUT_DIR NAME=OTHER.png:MRI.png[@y0,x0,h,w] ...

Copies ``OUT_DIR/<name>.png`` (the official code's uint8 output under Octave) and writes ``cases.csv``
(name, other, mri, crop), from which ``tests/methods/test_nsst_papcnn.py`` rebuilds the inputs out of
``../shared``; the specs are those given to ``papcnn_inputs.py``.
"""
from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

from pair_specs import parse

DEST = Path(__file__).resolve().parents[2] / "tests" / "methods" / "octave_papcnn"


def main(outputs: Path, specs: list[str]) -> None:
    DEST.mkdir(parents=True, exist_ok=True)
    with open(DEST / "cases.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "other", "mri", "crop"])
        for spec in specs:
            name, other, mri, crop = parse(spec)
            shutil.copyfile(outputs / f"{name}.png", DEST / f"{name}.png")
            writer.writerow([name, other, mri, ",".join(map(str, crop)) if crop else ""])


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
