"""Datasets: Harvard (MRI-PET/SPECT/CT), TNO, generic folders and the built-in default."""
from .base import DATASETS, Dataset, DatasetInfo, Pair, create_dataset, list_datasets, register_dataset


def paper_training_pairs(data_dir=None):
    """The paper's 180 training pairs (60 per Harvard task, train split v1)."""
    from .released import paper_training_pairs as _impl

    return _impl(data_dir)


def paper20_pairs(data_dir=None):
    """The paper's 20-pair set: 10 MRI-PET + 10 MRI-SPECT test pairs (split v1)."""
    from .released import paper20_pairs as _impl

    return _impl(data_dir)


__all__ = ["DATASETS", "Dataset", "DatasetInfo", "Pair", "create_dataset", "list_datasets", "paper20_pairs",
           "paper_training_pairs", "register_dataset"]
