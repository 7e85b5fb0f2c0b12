"""The released datasets: one manifest file each, registered by a loop over the files.

Files are read from ``DATA_DIR/<path in the manifest>`` (the layout of
``../shared/data`` and of ``fusionbench fetch``): Harvard AANLIB pairs under
``harvard/<TASK>/<MODALITY>/<id>.png``, TNO under ``tno/{vis,ir}/<id>.png``.
``DATA_DIR`` is ``--data-dir`` or ``$FUSIONBENCH_HOME/data``
(:func:`fusionbench.config.data_dir`).  Ids, sha256, splits, groups and the
descriptive metadata come from the manifest (:mod:`fusionbench.data.manifest`);
a missing file is reported per pair, not fatal.

Adding a released dataset is adding one file to ``fusionbench/data/manifests``
(or calling :func:`register_manifest` on a file elsewhere, e.g. from a plugin).
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from fusionbench.config import data_dir as default_data_dir
from fusionbench.io import InputProblem, sha256_file

from .base import Dataset, Pair, register_dataset
from .manifest import DatasetManifest, load_manifest, released_manifests


def build_released(m: DatasetManifest, data_dir: str | Path | None = None) -> Dataset:
    """The dataset of manifest ``m`` with files under ``data_dir`` (default: the cache's data folder)."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    meta = m.metadata
    pairs, problems = [], []
    for rec in m.pairs:
        a, b = root / rec["a"], root / rec["b"]
        missing = [p for p in (a, b) if not p.is_file()]
        if missing:
            problems.append(InputProblem(missing[0], f"file not found (pair {rec['id']})"))
            continue
        a_sha, b_sha = sha256_file(a), sha256_file(b)
        for path, got, want in ((a, a_sha, rec["a_sha256"]), (b, b_sha, rec["b_sha256"])):
            if got != want:
                problems.append(InputProblem(path, "sha256 differs from the manifest (modified copy?); used as is"))
        pairs.append(Pair(m.name, rec["id"], meta.task, a, b, sha256=a_sha[:32] + b_sha[:32],
                          group=meta.groups.get(rec["id"])))
    if not pairs:
        how = f"run `fusionbench fetch {m.fetch.bundle}` or pass" if m.fetch else "pass"
        raise FileNotFoundError(f"dataset {m.name!r}: no files under {root}; {how} --data-dir DIR")
    return Dataset.from_metadata(m.name, pairs, meta, splits={k: list(v) for k, v in m.splits.items()},
                                 split_version=m.split_version, problems=problems)


def register_manifest(manifest: DatasetManifest | str | Path, *, module: str | None = None) -> DatasetManifest:
    """Register the dataset a manifest (object or file) declares; returns the validated manifest.

    The registry name, task, title, splits and fetch bundle come from the
    manifest; a name already registered is an error naming both sources.
    ``module`` is the registering module (the registry records it as the source).
    """
    m = manifest if isinstance(manifest, DatasetManifest) else load_manifest(manifest)
    meta = m.metadata
    factory = partial(build_released, m)
    factory.__doc__ = meta.description or meta.title  # type: ignore[attr-defined]
    factory.__module__ = module or "user"  # type: ignore[attr-defined]
    factory.__qualname__ = f"manifest:{m.path}"  # type: ignore[attr-defined]  # one object per file
    register_dataset(m.name, module=module, task=meta.task or "", description=meta.description or meta.title,
                     needs_download=m.fetch is not None, title=meta.title, splits=tuple(m.splits),
                     fetch_bundle=m.fetch.bundle if m.fetch else "", licence=meta.licence,
                     citation=meta.citation)(factory)  # called as factory(data_dir=...)
    return m


for _manifest in released_manifests().values():
    register_manifest(_manifest, module=__name__)


def paper_training_pairs(data_dir: str | Path | None = None) -> list[Pair]:
    """The paper's 180 training pairs: 60 per Harvard task, all from the train split (split v1)."""
    out: list[Pair] = []
    for name in ("harvard-mri-pet", "harvard-mri-spect", "harvard-mri-ct"):
        out += build_released(released_manifests()[name], data_dir).select("paper_train")
    return out


def paper20_pairs(data_dir: str | Path | None = None) -> list[Pair]:
    """The paper's 20-pair set (Tables 4-5): 10 MRI-PET + 10 MRI-SPECT test pairs (split v1)."""
    return [p for name in ("harvard-mri-pet", "harvard-mri-spect")
            for p in build_released(released_manifests()[name], data_dir).select("paper20")]
