"""Registry of trainable methods: what the generic loop needs to know about each."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .config import TrainConfig


@dataclass(frozen=True)
class TrainSpec:
    """How to train the registered method ``method`` (and all its ``method.tag`` variants).

    * ``build_model(params) -> torch.nn.Module``: the trainable module from the
      variant's registered params (called after seeding).
    * ``prepare(a, b) -> C×H×W float32``: one pair's full-image input channels
      (``a``, ``b`` as :func:`fusionbench.io.load_image` returns them); anything
      precomputable (masks, luma) is done here, once, before training.
    * ``loss(model, batch) -> (loss, {term: float})``: ``batch`` is an
      N×C×h×w float32 tensor of patches of the prepared channels.
    * ``default_pairs(data_dir) -> list[Pair]``: the training pairs.
    * ``defaults``: the method's paper schedule.
    * ``weights_name(params) -> str``: file stem of the exported weights.
    * ``weights_dir``: folder of the committed weights (for ``--export``).
    * ``pairs_for(params, data_dir) -> list[Pair]`` (optional): the training
      pairs of one variant, when they depend on its params; used instead of
      ``default_pairs`` when given.
    """

    method: str
    build_model: Callable[[dict[str, Any]], Any]
    prepare: Callable[[np.ndarray, np.ndarray], np.ndarray]
    loss: Callable[[Any, Any], tuple[Any, dict[str, float]]]
    default_pairs: Callable[[str | Path | None], list]
    defaults: TrainConfig = field(default_factory=TrainConfig)
    weights_name: Callable[[dict[str, Any]], str] = lambda params: "model"
    weights_dir: Path | None = None
    description: str = ""
    pairs_for: Callable[[dict[str, Any], str | Path | None], list] | None = None

    def training_pairs(self, params: dict[str, Any], data_dir: str | Path | None) -> list:
        """The training pairs of the variant with ``params``."""
        if self.pairs_for is not None:
            return self.pairs_for(params, data_dir)
        return self.default_pairs(data_dir)


TRAINERS: dict[str, TrainSpec] = {}


def register_trainer(spec: TrainSpec) -> TrainSpec:
    """Register ``spec`` under its method name (re-registering the same name replaces it)."""
    TRAINERS[spec.method] = spec
    return spec


def _load_methods() -> None:
    from fusionbench.method_registry import list_methods

    list_methods()  # importing the method registry imports fusionbench.methods, which registers trainers


def get_trainer(name: str) -> tuple[TrainSpec, dict[str, Any], str]:
    """``(spec, params, registered_name)`` for a method or variant name such as ``mopa.mask_only``."""
    from fusionbench.method_registry import create_method

    _load_methods()
    method = create_method(name)
    base = method.name.split(".", 1)[0]
    if base not in TRAINERS:
        raise KeyError(f"method {method.name!r} is not trainable; trainable: {', '.join(list_trainers()) or 'none'}")
    return TRAINERS[base], dict(method.params), method.name


def list_trainers() -> list[str]:
    """Names of the trainable base methods."""
    _load_methods()
    return sorted(TRAINERS)
