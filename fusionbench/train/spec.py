"""Registry of trainable methods: what the generic loop needs to know about each.

:data:`TRAINERS` is a :class:`fusionbench.registry.Registry` like the method,
metric, dataset and weights registries (same listing, wildcards, entry-point
group ``fusionbench.trainers``, error messages); a name clash is an error.
The built-in trainers register themselves when :mod:`fusionbench.train.builtin`
is imported (the methods package, and the SwinFusion trainer module).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from fusionbench.registry import Registry

from .config import TrainConfig


@dataclass(frozen=True)
class TrainSpec:
    """How to train the registered method ``method`` (and all its ``method.tag`` variants).

    * ``build_model(params) -> torch.nn.Module``: the trainable module from the
      variant's registered params (called after seeding).
    * ``prepare(a, b) -> C×H×W float32``: one pair's full-image input channels
      (``a``, ``b`` as :func:`fusionbench.io.load_image` returns them); anything
      precomputable (masks, luma) is done here, once, before training.
    * ``loss(model, batch) -> (loss, {term: float or 0-d tensor})``: ``batch`` is an
      N×C×h×w float32 tensor of patches of the prepared channels.
    * ``default_pairs(data_dir) -> list[Pair]``: the training pairs.
    * ``defaults``: the method's paper schedule.
    * ``weights_name(params) -> str``: file stem of the exported weights.
    * ``weights_dir``: folder of the committed weights (for ``--export``).
    * ``pairs_for(params, data_dir) -> list[Pair]`` (optional): the training
      pairs of one variant, when they depend on its params; used instead of
      ``default_pairs`` when given.
    * ``make_loss(params) -> loss`` (optional): the loss of one variant, when
      it depends on its params (e.g. a loss reading); used instead of ``loss``.
    * ``schedule_for(params) -> TrainConfig`` (optional): the default schedule
      of one variant; used instead of ``defaults``.
    * ``export(final_path, dest_dir, stem, params) -> Path`` (optional): write
      the committed weights ``dest_dir/<stem>.pth`` (+ ``<stem>.sha256``) from
      a run's ``final.pth``, when they are not the trained module's state dict
      as is (e.g. SwinFusion's EMA copy); default: copy ``final.pth``.
    * ``extra_params``: the keys ``--set`` may give beyond the variant's
      registered params (a key the trainer reads with a default, e.g. ``ema_decay``).
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
    make_loss: Callable[[dict[str, Any]], Callable[[Any, Any], tuple[Any, dict[str, float]]]] | None = None
    schedule_for: Callable[[dict[str, Any]], TrainConfig] | None = None
    export: Callable[[Path, Path, str, dict[str, Any]], Path] | None = None
    #: keys ``fusionbench train --set`` accepts besides the variant's registered params (e.g. SwinFusion's
    #: ``ema_decay``, read by its ``build_model`` and ``export``); any other key is refused, not ignored
    extra_params: tuple[str, ...] = ()

    def loss_for(self, params: dict[str, Any]) -> Callable[[Any, Any], tuple[Any, dict[str, Any]]]:
        """The loss of the variant with ``params``."""
        return self.make_loss(params) if self.make_loss is not None else self.loss

    def schedule(self, params: dict[str, Any]) -> TrainConfig:
        """The default schedule of the variant with ``params``."""
        return self.schedule_for(params) if self.schedule_for is not None else self.defaults

    def training_pairs(self, params: dict[str, Any], data_dir: str | Path | None) -> list:
        """The training pairs of the variant with ``params``."""
        if self.pairs_for is not None:
            return self.pairs_for(params, data_dir)
        return self.default_pairs(data_dir)


#: every trainable base method (``mopa``, ``swinfusion``, plugins under ``fusionbench.trainers``)
TRAINERS: Registry[TrainSpec] = Registry("trainer", "fusionbench.trainers", "fusionbench.train.builtin")


def register_trainer(spec: TrainSpec, *, override: bool = False) -> TrainSpec:
    """Register ``spec`` under its method name; a different spec under a taken name raises ``ValueError``.

    Registering an equal spec again (a module imported twice) is a no-op;
    ``override=True`` replaces on purpose.
    """
    TRAINERS.add(spec.method, spec, spec, override=override, module=getattr(spec.build_model, "__module__", None))
    return spec


def get_trainer(name: str) -> tuple[TrainSpec, dict[str, Any], str]:
    """``(spec, params, registered_name)`` for a method or variant name such as ``mopa.mask_only``."""
    from fusionbench.method_registry import create_method

    method = create_method(name)
    base = method.name.split(".", 1)[0]
    if base not in TRAINERS:
        raise KeyError(f"method {method.name!r} is not trainable; trainable: {', '.join(list_trainers()) or 'none'}")
    return TRAINERS.get(base).obj, dict(method.params), method.name


_SEED_SUFFIX = re.compile(r"^(?P<base>.+)\.seed(?P<seed>\d+)$")


def seed_variant(name: str, seed: int) -> str:
    """The name of ``name`` trained with ``seed``: ``name`` itself for seed 0, else ``name.seed<N>``.

    The one naming rule of training seeds: exported weight stems (``no_mask.seed1.pth``), run labels of
    ``scripts/device_train.sh`` and registered seed variants (``mopa.no_mask.seed1``) all follow it.
    """
    if seed < 0:
        raise ValueError(f"a training seed is >= 0, not {seed}")
    return name if seed == 0 else f"{name}.seed{seed}"


def split_seed(name: str) -> tuple[str, int]:
    """Inverse of :func:`seed_variant`: ``("mopa.no_mask", 1)`` for ``mopa.no_mask.seed1``; else ``(name, 0)``."""
    m = _SEED_SUFFIX.match(name)
    return (m["base"], int(m["seed"])) if m else (name, 0)


def list_trainers(filter: str | Iterable[str] = "*", exclude_filters: str | Iterable[str] = ()) -> list[str]:
    """Names of the trainable base methods matching ``filter`` and none of ``exclude_filters``.

    The same wildcards as :func:`fusionbench.list_methods` (fnmatch, case ignored, natural sort):
    ``list_trainers("swin*")``.
    """
    return TRAINERS.list(filter, exclude_filters)
