"""Dataset titles for reports: a released dataset's manifest title, or a folder's ``dataset.json`` title."""
from __future__ import annotations

from pathlib import Path

from .base import dataset_info


def dataset_title(name: str) -> str:
    """The title reports print for dataset ``name``: the manifest's or ``dataset.json``'s, else the name.

    ``folder:PATH`` reads ``PATH/dataset.json`` (no image is read); a dataset
    that is not registered is titled by its name.
    """
    if name.startswith("folder:"):
        from .folder import read_folder_metadata

        try:
            meta = read_folder_metadata(Path(name.split(":", 1)[1]).expanduser())
        except (OSError, ValueError):
            return name
        return meta.title or name
    try:
        return dataset_info(name).title or name
    except KeyError:
        return name
