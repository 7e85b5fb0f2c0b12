"""Write the toolbox's results for the cases committed beside the tests (``tests/methods/octave_liu_mst/``).

    python liu_mst_collect.py OUT_DIR

OUT_DIR holds ``run_liu_mst.m``'s results for the names below (inputs made by
``liu_mst_inputs.py`` from the same specs); each result is saved as ``uint8(F)`` PNG,
``<name>_<method>.png``, and ``cases.csv`` lists the inputs (relative to ``../shared``).
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

from PIL import Image
from scipy.io import loadmat

from fusionbench.methods._matlab import to_uint8

ROOT = Path(__file__).resolve().parents[2]
#: name, functional, MRI, crop (y0,x0,h,w) — give liu_mst_inputs.py "name=functional:mri@crop"
CASES = (
    ("ct2006", "data/harvard/MRI-CT/CT/2006.png", "data/harvard/MRI-CT/MRI/2006.png", ""),
    ("pet25030_96x128", "data/harvard/MRI-PET/PET/25030.png", "data/harvard/MRI-PET/MRI/25030.png", "40,60,96,128"),
    ("ct2006_97x130", "data/harvard/MRI-CT/CT/2006.png", "data/harvard/MRI-CT/MRI/2006.png", "50,40,97,130"),
)
RESULTS = {"F_dwt": "dwt.vifb", "F_lp": "laplacian_pyramid.liu", "F_rp": "contrast_pyramid.liu", "F_nsct": "nsct.liu"}


def main(out_dir: Path) -> None:
    target = ROOT / "tests" / "methods" / "octave_liu_mst"
    target.mkdir(parents=True, exist_ok=True)
    with open(target / "cases.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "functional", "mri", "crop", "methods"])
        for name, functional, mri, crop in CASES:
            results = loadmat(out_dir / f"{name}.mat")
            methods = []
            for key, method in RESULTS.items():
                if results[key].size:  # dwt_fuse runs on sides divisible by 16 only (the dwt2 stand-in)
                    Image.fromarray(to_uint8(results[key])).save(target / f"{name}_{method}.png", optimize=True)
                    methods.append(method)
            writer.writerow([name, functional, mri, crop, " ".join(methods)])


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):  # the usage, before anything is read or written
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
