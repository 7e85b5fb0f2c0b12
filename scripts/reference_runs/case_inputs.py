"""Inputs for ``run_papcnn.m`` and ``run_legff.m``: ``OUT_DIR/<name>_mri.png`` and ``OUT_DIR/<name>_other.png``.

    python case_inputs.py SHARED_DIR OUT_DIR NAME=OTHER.png:MRI.png[@y0,x0,h,w] ...

Each image as ``fusionbench.io.load_image`` reads it (uint8; a grey image stored as RGB becomes
grey), optionally cropped: the arrays the runner hands a ``colour="own"`` method such as ``nsst_papcnn`` or ``legff``.  OTHER is the CT, IR or
colour PET/SPECT image, MRI the anatomical or visible one.  The same list goes to ``cases.csv``
(``collect_png_cases.py``), from which the test rebuilds the inputs.
"""
from __future__ import annotations

import sys
from pathlib import Path

from fusionbench.io import load_image, save_png
from pair_specs import parse


def main(shared: Path, out: Path, specs: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        name, other, mri, crop = parse(spec)
        for role, rel in (("other", other), ("mri", mri)):
            image = load_image(shared / rel)
            if crop is not None:
                y0, x0, h, w = crop
                image = image[y0:y0 + h, x0:x0 + w]
            save_png(out / f"{name}_{role}.png", image)


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] in ("-h", "--help"):  # the usage, before anything is read or written
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
