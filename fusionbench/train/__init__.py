"""Generic training for fusionbench's trainable methods.

One loop for every trainable method (:func:`fusionbench.train.loop.train`):
seeded and deterministic, patches cut in memory from precomputed full-image
inputs (:class:`~fusionbench.train.patches.PatchSet`), Adam, a checkpoint every
few minutes, ``resume=True`` continuing exactly where it stopped, a tqdm bar
with the loss and patches/s, a CSV log and a loss-curve figure.

A method makes itself trainable by registering a :class:`TrainSpec` (how to
build the model from its registered params, how to turn one pair into input
channels, its loss, its default training pairs and schedule)::

    register_trainer(TrainSpec(method="mopa", build_model=..., prepare=..., loss=...,
                               default_pairs=..., defaults=TrainConfig(...)))

and ``fusionbench train <method>[.<variant>]`` (:mod:`fusionbench.train.cli`)
trains it.  This package imports torch lazily, so importing it is cheap.
"""
from __future__ import annotations

from .config import TrainConfig
from .spec import TrainSpec, get_trainer, list_trainers, register_trainer

__all__ = ["TrainConfig", "TrainSpec", "get_trainer", "list_trainers", "register_trainer"]
