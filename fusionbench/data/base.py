"""Pairs, datasets and the dataset registry.

A *pair* is an anatomical image ``a`` (MRI, or visible) and a second image ``b``
(PET/SPECT in pseudo-colour RGB, CT, or infrared) with an id, a task and the
paths it came from.  A *dataset* is an ordered list of pairs plus a versioned
split (``train`` / ``test``) committed in ``fusionbench/data/splits``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from fusionbench.registry import Registry


@dataclass(frozen=True)
class Pair:
    """One registered image pair (paths only; loading is :mod:`fusionbench.io`'s job)."""

    dataset: str
    id: str
    task: str
    a_path: Path
    b_path: Path
    sha256: str = ""  # combined digest of the two files (filled from the manifest or computed)

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.id}"


@dataclass
class Dataset:
    """A named, ordered set of pairs with optional split membership."""

    name: str
    pairs: list[Pair]
    splits: dict[str, list[str]] = field(default_factory=dict)
    split_version: str = ""
    description: str = ""
    problems: list[str] = field(default_factory=list)  # one line per file that could not form a pair

    def select(self, split: str | None = None) -> list[Pair]:
        """Pairs of ``split`` (``None`` or ``'all'``: every pair)."""
        if split in (None, "all"):
            return list(self.pairs)
        if split not in self.splits:
            raise KeyError(f"dataset {self.name!r} has no split {split!r} (has: {', '.join(self.splits) or 'none'})")
        wanted = set(self.splits[split])
        return [p for p in self.pairs if p.id in wanted]

    def __len__(self) -> int:
        return len(self.pairs)


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    task: str = ""
    description: str = ""
    needs_download: bool = False


DATASETS: Registry[DatasetInfo] = Registry("dataset", "fusionbench.datasets", "fusionbench.data.builtin")


def register_dataset(name: str, *, task: str = "", description: str = "", needs_download: bool = False,
                     prefix: bool = False) -> Callable[[Callable[..., Dataset]], Callable[..., Dataset]]:
    """Register a dataset factory ``fn(data_dir=None, **kw) -> Dataset``.

    With ``prefix=True`` the name is a family such as ``folder`` and the factory
    receives the text after the colon: ``folder:PATH`` → ``fn(arg='PATH', ...)``.
    """
    def decorator(fn: Callable[..., Dataset]) -> Callable[..., Dataset]:
        info = DatasetInfo(name=name, task=task, description=description or (fn.__doc__ or "").strip().split("\n")[0],
                           needs_download=needs_download)
        if prefix:
            DATASETS.add_prefix(name, fn, info)
        else:
            DATASETS.add(name, fn, info)
        return fn

    return decorator


def create_dataset(name: str, data_dir: str | Path | None = None, **kwargs: Any) -> Dataset:
    """Build the dataset ``name`` (``folder:PATH`` for a generic folder)."""
    entry = DATASETS.get(name)
    if entry.name.endswith(":"):
        return entry.obj(arg=name.split(":", 1)[1], data_dir=data_dir, **kwargs)
    return entry.obj(data_dir=data_dir, **kwargs)


def list_datasets(filter: str | Iterable[str] = "*", exclude_filters: str | Iterable[str] = ()) -> list[str]:
    """Registered dataset names (``folder:PATH`` is always available as well)."""
    return DATASETS.list(filter, exclude_filters)
