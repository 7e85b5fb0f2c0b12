"""Datasets: the released ones (one manifest file each), generic folders and the built-in default."""
from __future__ import annotations

from pathlib import Path

from .base import DATASETS, Dataset, DatasetInfo, Pair, create_dataset, dataset_info, list_datasets, register_dataset
from .manifest import DatasetManifest, DatasetMetadata, ManifestError, load_manifest
from .titles import dataset_title


def register_manifest(manifest: DatasetManifest | str | Path) -> DatasetManifest:
    """Register a released dataset from its manifest file (see ``docs/datasets.md``).

    The registry records the caller's module as the source (``user (<module>)``,
    or ``plugin <dist>`` while a plugin's entry point loads).
    """
    import sys

    DATASETS.ensure_loaded()  # built-ins first, so that a clash names the built-in
    from .released import register_manifest as _impl

    return _impl(manifest, module=sys._getframe(1).f_globals.get("__name__"))


def paper_training_pairs(data_dir: str | Path | None = None) -> list[Pair]:
    """The paper's 180 training pairs (60 per Harvard task, train split v1)."""
    from .released import paper_training_pairs as _impl

    return _impl(data_dir)


def paper20_pairs(data_dir: str | Path | None = None) -> list[Pair]:
    """The paper's 20-pair set: 10 MRI-PET + 10 MRI-SPECT test pairs (split v1)."""
    from .released import paper20_pairs as _impl

    return _impl(data_dir)


__all__ = ["DATASETS", "Dataset", "DatasetInfo", "DatasetManifest", "DatasetMetadata", "ManifestError", "Pair",
           "create_dataset", "dataset_info", "dataset_title", "list_datasets", "load_manifest", "paper20_pairs",
           "paper_training_pairs", "register_dataset", "register_manifest"]
