"""Inputs for ``run_liu_mst.m``: ``OUT_DIR/<name>.mat`` with ``I1`` (functional / infrared) and ``I2`` (MRI / visible).

    python liu_mst_inputs.py SHARED_DIR OUT_DIR NAME=FUNCTIONAL.png:MRI.png[@y0,x0,h,w] ...

Both as double on the 0-255 scale, the 8-bit grey image the toolbox would read from a file
(``double(imread(...))``); a colour PET/SPECT image enters as its BT.601 luma quantised to 8 bits
(``fusionbench.colour.luma_uint8``), the grey image the classical methods fuse under the runner's
colour protocol (snapped to the 8-bit grid by the presets' ``uint8_io``).  ``I1`` is the functional/infrared image because VIFB
calls its MST-SR methods with the infrared image first (``dwt.vifb``, ``laplacian_pyramid.liu``
and ``nsct.liu`` pass ``b`` first).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.io import savemat

from fusionbench import colour
from fusionbench.io import load_image
from pair_specs import parse


def grey(path: Path, crop: tuple[int, int, int, int] | None) -> np.ndarray:
    image = colour.luma_uint8(load_image(path))
    if crop is not None:
        y0, x0, h, w = crop
        image = image[y0:y0 + h, x0:x0 + w]
    return np.asarray(image, dtype=np.float64)


def main(shared: Path, out: Path, specs: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        name, functional, mri, crop = parse(spec)
        savemat(out / f"{name}.mat", {"I1": grey(shared / functional, crop), "I2": grey(shared / mri, crop)})


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] in ("-h", "--help"):  # the usage, before anything is read or written
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
