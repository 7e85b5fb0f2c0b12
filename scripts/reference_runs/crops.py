"""Write the crop triples of ``tests/metrics/nonsquare_reference.json`` as PNGs for the reference runs.

Usage: python scripts/reference_runs/crops.py OUT_DIR [--shared ../shared]
Each triple is a non-square crop (rows, cols: half-open ranges) of a triple of
``../shared/metrics_ref/reference_values.json``; written as OUT_DIR/<id>_{F,A,B}.png.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image

from fusionbench.metrics import calibration as C

REPO = Path(__file__).resolve().parents[2]
CROP_REFERENCE = "tests/metrics/nonsquare_reference.json"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    spec = json.loads((REPO / CROP_REFERENCE).read_text())
    ref_dir = args.shared / "metrics_ref"
    ref = C.load_reference(ref_dir)
    for crop in spec["triples"]:
        for key, image in zip("FAB", C.crop_triple_images(ref_dir, ref, crop)):
            Image.fromarray(image).save(args.out / f"{crop['id']}_{key}.png")
        print(crop["id"], image.shape)


if __name__ == "__main__":
    main()
