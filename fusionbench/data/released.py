"""The released datasets: Harvard AANLIB pairs (three tasks) and TNO infrared-visible.

Files are read from ``DATA_DIR/harvard/<TASK>/<MODALITY>/<id>.png`` and
``DATA_DIR/tno/{vis,ir}/<id>.png`` (the layout of ``../shared/data`` and of
``fusionbench fetch``).  ``DATA_DIR`` is ``--data-dir`` or
``$FUSIONBENCH_HOME/data``.  Ids, sha256 and splits come from the committed
manifest; a missing file is reported per pair, not fatal.
"""
from __future__ import annotations

from pathlib import Path

from fusionbench.io import sha256_file
from fusionbench.config import data_dir as default_data_dir

from .base import Dataset, Pair, register_dataset
from .manifest import SPLIT_VERSION, dataset_splits, manifest


def _released(name: str, data_dir: str | Path | None) -> Dataset:
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    spec = manifest()["datasets"][name]
    pairs, problems = [], []
    for rec in spec["pairs"]:
        a, b = root / rec["a"], root / rec["b"]
        missing = [p for p in (a, b) if not p.is_file()]
        if missing:
            problems.append(f"{missing[0]}: file not found (pair {rec['id']})")
            continue
        a_sha, b_sha = sha256_file(a), sha256_file(b)
        for path, got, want in ((a, a_sha, rec["a_sha256"]), (b, b_sha, rec["b_sha256"])):
            if got != want:
                problems.append(f"{path}: sha256 differs from the manifest (modified copy?); used as is")
        pairs.append(Pair(name, rec["id"], spec["task"], a, b, sha256=a_sha[:32] + b_sha[:32]))
    if not pairs:
        fetch = "harvard" if name.startswith("harvard") else "tno"
        raise FileNotFoundError(
            f"dataset {name!r}: no files under {root}; run `fusionbench fetch {fetch}` or pass --data-dir DIR"
        )
    return Dataset(name, pairs, dataset_splits(name), SPLIT_VERSION, problems=problems)


@register_dataset("harvard-mri-pet", task="MRI-PET", needs_download=True,
                  description="Harvard AANLIB MRI + pseudo-colour PET, 245 pairs, 256x256")
def harvard_mri_pet(data_dir: str | Path | None = None) -> Dataset:
    return _released("harvard-mri-pet", data_dir)


@register_dataset("harvard-mri-spect", task="MRI-SPECT", needs_download=True,
                  description="Harvard AANLIB MRI + pseudo-colour SPECT, 333 pairs, 256x256")
def harvard_mri_spect(data_dir: str | Path | None = None) -> Dataset:
    return _released("harvard-mri-spect", data_dir)


@register_dataset("harvard-mri-ct", task="MRI-CT", needs_download=True,
                  description="Harvard AANLIB MRI + CT, 160 pairs, 256x256")
def harvard_mri_ct(data_dir: str | Path | None = None) -> Dataset:
    return _released("harvard-mri-ct", data_dir)


@register_dataset("tno", task="IR-VIS", needs_download=True,
                  description="TNO infrared (b) + visible (a), the 25-pair CDDFuse test set")
def tno(data_dir: str | Path | None = None) -> Dataset:
    return _released("tno", data_dir)


def paper_training_pairs(data_dir: str | Path | None = None) -> list[Pair]:
    """The paper's 180 training pairs: 60 per Harvard task, all from the train split (split v1)."""
    out: list[Pair] = []
    for name in ("harvard-mri-pet", "harvard-mri-spect", "harvard-mri-ct"):
        out += _released(name, data_dir).select("paper_train")
    return out


def paper20_pairs(data_dir: str | Path | None = None) -> list[Pair]:
    """The paper's 20-pair set (Tables 4-5): 10 MRI-PET + 10 MRI-SPECT test pairs (split v1)."""
    return [p for name in ("harvard-mri-pet", "harvard-mri-spect") for p in _released(name, data_dir).select("paper20")]
