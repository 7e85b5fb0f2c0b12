"""The training set as one compressed file, for machines without the data folder (``fusionbench train pack``).

A device machine receives the working tree (and the ``carry`` paths) but not
``../shared``.  :func:`write_pack` stores, for the listed trainable method
variants, the source images of their training pairs **as loaded**
(:func:`fusionbench.io.load_image`: uint8, H×W grey or H×W×3 colour) and which
pairs each variant trains on; :func:`read_pack` gives them back, so training
from a pack sees exactly the arrays it would load from the data folder (a test
pins this).

File format (``.fbpack``): an ``.npz`` archive (arrays ``a_<i>``, ``b_<i>``
and ``index``, a JSON document) compressed as a whole with xz (LZMA preset
9 | extreme): for ``mopa``'s 180 pairs 4.25 MiB, against 45 MiB of pixels and
6.03 MiB of PNG files.  The
JSON holds the format version, per pair its dataset, id, key, file names and
the manifest's combined sha256, and per variant its ordered list of pair keys.
The file's own sha256 is written beside it as ``<stem>.sha256`` (the sidecar
convention of :mod:`fusionbench.weights`) and checked when it is read.

Packs go to ``packs/`` by default, a folder git ignores; ``scripts/device_train.sh``
carries it to the device.
"""
from __future__ import annotations

import io
import json
import lzma
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from fusionbench.io import atomic_write, sha256_file
from fusionbench.weights import sidecar, sidecar_token, write_sidecar

FORMAT = 1
DEFAULT_DIR = Path("packs")


@dataclass(frozen=True)
class PackedPair:
    """A training pair read from a pack: the :class:`fusionbench.data.Pair` fields training uses, plus pixels."""

    dataset: str
    id: str
    key: str
    a_path: str
    b_path: str
    a: np.ndarray
    b: np.ndarray


@dataclass
class TrainingPack:
    """A read pack: pairs by key, and the pair keys of each packed variant."""

    path: Path
    sha256: str
    pairs: dict[str, PackedPair]
    variants: dict[str, list[str]]
    max_pairs: int | None = None

    def pairs_of(self, variant: str) -> list[PackedPair]:
        """The training pairs of ``variant``, in training order; a variant not packed raises one clear line."""
        if variant not in self.variants:
            raise KeyError(f"{self.path}: pack has no training set for {variant!r} (packed: "
                           f"{', '.join(sorted(self.variants))}); write one with `fusionbench train pack {variant}`")
        return [self.pairs[k] for k in self.variants[variant]]


def check_pack_path(out: str | Path) -> None:
    """``ValueError`` (``"OUT: why"``) unless a pack can be written at ``out``: not a folder, no file on its path."""
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"{out}: is a folder; give the pack's file name (e.g. {out / 'training.fbpack'})")
    import os

    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{out}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):  # before the images are read and compressed
                raise ValueError(f"{out}: {parent} is not writable")
            break


def write_pack(variants: Iterable[str], out: str | Path, data_dir: str | Path | None = None, *,
               max_pairs: int | None = None) -> Path:
    """Write the training sets of ``variants`` (registered names such as ``mopa``) to ``out``; returns the path.

    Pairs shared by several variants are stored once.  Writes ``<stem>.sha256`` beside the pack.
    ``max_pairs`` keeps only the first N pairs of each variant (smoke tests); it is recorded in the
    pack (``max_pairs``) and so in every provenance file of a run trained from it.
    """
    from fusionbench.io import load_image

    from .spec import get_trainer, split_seed

    if max_pairs is not None and max_pairs < 1:
        raise ValueError(f"max_pairs must be >= 1 (or None: every pair), not {max_pairs}")
    out = Path(out)
    check_pack_path(out)  # before the images are read
    keys: dict[str, list[str]] = {}
    pairs: dict[str, object] = {}
    for variant in variants:
        spec, params, name = get_trainer(variant)
        chosen = spec.training_pairs(params, data_dir)[:max_pairs]
        if "seed" in params:  # a registered seed variant trains on its preset's pairs, under the preset's name
            name = split_seed(name)[0]
        keys[name] = [p.key for p in chosen]
        for p in chosen:
            pairs.setdefault(p.key, p)
    arrays: dict[str, np.ndarray] = {}
    index = []
    for i, (key, p) in enumerate(pairs.items()):
        arrays[f"a_{i}"] = load_image(p.a_path)
        arrays[f"b_{i}"] = load_image(p.b_path)
        index.append({"key": key, "dataset": p.dataset, "id": p.id, "a": Path(p.a_path).name,
                      "b": Path(p.b_path).name, "sha256": p.sha256})
    doc = {"format": FORMAT, "pairs": index, "variants": keys, "max_pairs": max_pairs}
    arrays["index"] = np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as tmp:  # nothing left behind when the write or the rename fails
        tmp.write_bytes(lzma.compress(buf.getvalue(), preset=9 | lzma.PRESET_EXTREME))
    write_sidecar(out)
    return out


def read_pack(path: str | Path) -> TrainingPack:
    """Read and verify a pack (sha256 against its ``<stem>.sha256``; one line naming the file on any problem)."""
    path = Path(path)
    side = sidecar(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a training pack; give the pack's file "
                         f"(e.g. {path / 'training.fbpack'})")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: training pack not found; write it with `fusionbench train pack NAME`")
    digest = sha256_file(path)
    if side.is_file() and sidecar_token(path, n=len(digest)) != digest:  # an unreadable sidecar does not match
        raise ValueError(f"{path}: sha256 {digest} does not match {side.name}; the pack is corrupted or replaced")
    try:
        with np.load(io.BytesIO(lzma.decompress(path.read_bytes()))) as z:
            doc = json.loads(z["index"].tobytes().decode())
            if doc.get("format") != FORMAT:
                raise ValueError(f"format {doc.get('format')!r}, expected {FORMAT}")
            pairs = {}
            for i, rec in enumerate(doc["pairs"]):
                pairs[rec["key"]] = PackedPair(rec["dataset"], rec["id"], rec["key"], rec["a"], rec["b"],
                                               z[f"a_{i}"], z[f"b_{i}"])
    except (lzma.LZMAError, KeyError, OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable training pack ({exc})") from None
    return TrainingPack(path, digest, pairs, {k: list(v) for k, v in doc["variants"].items()}, doc.get("max_pairs"))


__all__ = ["DEFAULT_DIR", "FORMAT", "PackedPair", "TrainingPack", "check_pack_path", "read_pack", "write_pack"]
