"""Datasets: Harvard (MRI-PET/SPECT/CT), TNO, generic folders and the built-in default."""
from .base import DATASETS, Dataset, DatasetInfo, Pair, create_dataset, list_datasets, register_dataset

__all__ = ["DATASETS", "Dataset", "DatasetInfo", "Pair", "create_dataset", "list_datasets", "register_dataset"]
