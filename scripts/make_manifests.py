"""Write the dataset manifests and the versioned train/test split (run once; output is committed).

Usage: python scripts/make_manifests.py ../shared/data

Manifest: for every pair, its id and the sha256 of both files (from the data's
own SHA256SUMS, verified).  Split rule (version ``v1``), documented in
``docs/datasets.md``:

* a Harvard pair is in ``test`` when ``sha256(SEED + md5(MRI pixels))`` read as
  an integer is below 20 % of its range, else in ``train``.  Keying on the MRI
  *pixels* (not the PNG bytes) puts the 30 MRI slices that MRI-CT and
  MRI-SPECT share (series 21 and 28) in the same split in both tasks, so no
  test MRI is ever seen in training;
* ``paper_train``: the paper's 180 training pairs, 60 per task, drawn with a
  seeded generator from the train split;
* ``paper20``: the paper's 20-pair set (Table 4/5): 10 MRI-PET + 10 MRI-SPECT
  test pairs drawn with a seeded generator;
* TNO has no training use: all 25 pairs are ``test``.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

SEED = "fusionbench-split-v1"
TEST_FRACTION = 0.2
HARVARD = {"harvard-mri-pet": ("MRI-PET", "PET"), "harvard-mri-spect": ("MRI-SPECT", "SPECT"), "harvard-mri-ct": ("MRI-CT", "CT")}
OUT = Path(__file__).resolve().parents[1] / "fusionbench" / "data" / "manifests"


def natural(s: str):
    return [int(t) if t.isdigit() else t for t in __import__("re").split(r"(\d+)", s)]


def main(root: Path) -> None:
    sums = {}
    for line in (root / "SHA256SUMS").read_text().splitlines():
        digest, rel = line.split(maxsplit=1)
        sums[rel.strip()] = digest
    manifest: dict = {"version": "v1", "datasets": {}}
    splits: dict = {"version": "v1", "seed": SEED, "test_fraction": TEST_FRACTION, "datasets": {}}
    rng = np.random.default_rng(20250101)
    for name, (task, mod) in HARVARD.items():
        ids = sorted((p.stem for p in (root / "harvard" / task / "MRI").glob("*.png")), key=natural)
        pairs, train, test = [], [], []
        for pid in ids:
            a_rel, b_rel = f"harvard/{task}/MRI/{pid}.png", f"harvard/{task}/{mod}/{pid}.png"
            pairs.append({"id": pid, "a": a_rel, "b": b_rel, "a_sha256": sums[a_rel], "b_sha256": sums[b_rel]})
            pixels = np.asarray(Image.open(root / a_rel).convert("L")).tobytes()
            key = hashlib.sha256((SEED + hashlib.md5(pixels).hexdigest()).encode()).hexdigest()
            (test if int(key, 16) < TEST_FRACTION * 16 ** 64 else train).append(pid)
        manifest["datasets"][name] = {"task": task, "a_modality": "MRI", "b_modality": mod, "pairs": pairs}
        splits["datasets"][name] = {"train": train, "test": test}
    for name in HARVARD:
        tr = splits["datasets"][name]["train"]
        splits["datasets"][name]["paper_train"] = sorted(rng.choice(tr, 60, replace=False).tolist(), key=natural)
    for name in ("harvard-mri-pet", "harvard-mri-spect"):
        te = splits["datasets"][name]["test"]
        splits["datasets"][name]["paper20"] = sorted(rng.choice(te, 10, replace=False).tolist(), key=natural)
    ids = sorted((p.stem for p in (root / "tno" / "vis").glob("*.png")), key=natural)
    manifest["datasets"]["tno"] = {"task": "IR-VIS", "a_modality": "VIS", "b_modality": "IR", "pairs": [
        {"id": i, "a": f"tno/vis/{i}.png", "b": f"tno/ir/{i}.png", "a_sha256": sums[f"tno/vis/{i}.png"],
         "b_sha256": sums[f"tno/ir/{i}.png"]} for i in ids]}
    splits["datasets"]["tno"] = {"train": [], "test": ids}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "manifest-v1.json").write_text(json.dumps(manifest, indent=1) + "\n")
    (OUT / "splits-v1.json").write_text(json.dumps(splits, indent=1) + "\n")
    for name, s in splits["datasets"].items():
        print(name, {k: len(v) for k, v in s.items()})


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
