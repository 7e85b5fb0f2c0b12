"""Fill the released manifests' pair lists, sha256 and split v1 from the data (run once; output is committed).

Usage::

    python scripts/make_manifests.py ../shared/data           # rewrite pairs/splits in place
    python scripts/make_manifests.py ../shared/data --check   # only compare with the committed manifests

Each manifest (``fusionbench/data/manifests/<name>.json``) keeps its hand-written
metadata (title, task, licence, citation, source, fetch, groups); this script
fills ``pairs`` (ids from the ``layout`` patterns, sha256 from the data's own
SHA256SUMS, verified) and ``splits`` by the manifest's ``split.rule``:

* ``mri-pixels-hash`` (Harvard, split ``v1``): a pair is in ``test`` when
  ``sha256(SEED + md5(MRI pixels))`` read as an integer is below 20 % of its
  range, else in ``train``.  Keying on the MRI *pixels* (not the PNG bytes) puts
  the 30 MRI slices that MRI-CT and MRI-SPECT share (series 21 and 28) in the
  same split in both tasks, so no test MRI is ever seen in training;
  ``paper_train``: the paper's 180 training pairs, 60 per task, drawn with one
  seeded generator from the train splits (MRI-PET, MRI-SPECT, MRI-CT in that
  order); ``paper20``: the paper's 20-pair set (Table 4/5), 10 MRI-PET + 10
  MRI-SPECT test pairs drawn next from the same generator;
* ``all-test`` (TNO): every pair is ``test``, ``train`` is empty.

Split v1 is frozen: ``--check`` must report no difference; a new rule is a new version.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parents[1] / "fusionbench" / "data" / "manifests"
PAPER_TRAIN_ORDER = ("harvard-mri-pet", "harvard-mri-spect", "harvard-mri-ct")  # generator order of split v1
PAPER20_ORDER = ("harvard-mri-pet", "harvard-mri-spect")
PAPER_SEED = 20250101


def natural(s: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _ids(root: Path, layout: dict[str, str]) -> list[str]:
    pattern = layout["a"]
    folder = root / Path(pattern).parent
    prefix, suffix = Path(pattern).name.split("{id}")
    return sorted((p.name[len(prefix):len(p.name) - len(suffix)] for p in folder.glob(f"{prefix}*{suffix}")), key=natural)


def build(root: Path, docs: dict[str, dict]) -> dict[str, dict]:
    """New pairs and splits for every manifest document in ``docs`` (name → parsed JSON)."""
    sums = {}
    for line in (root / "SHA256SUMS").read_text().splitlines():
        digest, rel = line.split(maxsplit=1)
        sums[rel.strip()] = digest
    out = {name: dict(doc) for name, doc in docs.items()}
    for name, doc in out.items():
        pairs, train, test = [], [], []
        rule = doc["split"]["rule"]
        for pid in _ids(root, doc["layout"]):
            a_rel, b_rel = doc["layout"]["a"].format(id=pid), doc["layout"]["b"].format(id=pid)
            pairs.append({"id": pid, "a": a_rel, "b": b_rel, "a_sha256": sums[a_rel], "b_sha256": sums[b_rel]})
            if rule == "mri-pixels-hash":
                pixels = np.asarray(Image.open(root / a_rel).convert("L")).tobytes()
                key = hashlib.sha256((doc["split"]["seed"] + hashlib.md5(pixels).hexdigest()).encode()).hexdigest()
                (test if int(key, 16) < doc["split"]["test_fraction"] * 16 ** 64 else train).append(pid)
            elif rule == "all-test":
                test.append(pid)
            else:
                raise SystemExit(f"{name}: unknown split rule {rule!r}")
        doc["pairs"] = pairs
        doc["splits"] = {"train": train, "test": test}
    rng = np.random.default_rng(PAPER_SEED)
    for name in PAPER_TRAIN_ORDER:
        tr = out[name]["splits"]["train"]
        out[name]["splits"]["paper_train"] = sorted(rng.choice(tr, 60, replace=False).tolist(), key=natural)
    for name in PAPER20_ORDER:
        te = out[name]["splits"]["test"]
        out[name]["splits"]["paper20"] = sorted(rng.choice(te, 10, replace=False).tolist(), key=natural)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", nargs="?", default="../shared/data", type=Path)
    parser.add_argument("--check", action="store_true", help="compare with the committed manifests, write nothing")
    args = parser.parse_args(argv)
    files = {json.loads(p.read_text())["name"]: p for p in sorted(OUT.glob("*.json"))}
    docs = {name: json.loads(p.read_text()) for name, p in files.items()}
    new = build(args.data, docs)
    differ = [name for name in docs if (new[name]["pairs"], new[name]["splits"]) != (docs[name]["pairs"], docs[name]["splits"])]
    for name, doc in new.items():
        print(name, {k: len(v) for k, v in doc["splits"].items()}, "DIFFERS" if name in differ else "same")
        if not args.check and name in differ:
            files[name].write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    return 1 if (args.check and differ) else 0


if __name__ == "__main__":
    sys.exit(main())
