"""The committed manifests (ids + sha256 per file) and the versioned splits.

Generated once by ``scripts/make_manifests.py`` from the released data and
committed; the split rule is documented there and in ``docs/datasets.md``.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

SPLIT_VERSION = "v1"


@lru_cache(maxsize=None)
def manifest() -> dict[str, Any]:
    """``{"version": ..., "datasets": {name: {"task", "a_modality", "b_modality", "pairs": [...]}}}``."""
    text = resources.files("fusionbench.data").joinpath(f"manifests/manifest-{SPLIT_VERSION}.json").read_text()
    return json.loads(text)


@lru_cache(maxsize=None)
def splits() -> dict[str, Any]:
    """``{"version", "seed", "test_fraction", "datasets": {name: {split: [ids]}}}``."""
    text = resources.files("fusionbench.data").joinpath(f"manifests/splits-{SPLIT_VERSION}.json").read_text()
    return json.loads(text)


def dataset_splits(name: str) -> dict[str, list[str]]:
    return {k: list(v) for k, v in splits()["datasets"].get(name, {}).items()}
