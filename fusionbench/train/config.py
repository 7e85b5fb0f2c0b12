"""The training schedule: one dataclass shared by every trainable method."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any


#: the fields whose ``None`` means "no limit"
_OPTIONAL = ("max_patches", "stop_after_steps", "stop_after_seconds")


@dataclass(frozen=True)
class TrainConfig:
    """Schedule and bookkeeping of one training run.

    ``patch_size``/``stride`` cut every training pair into square patches
    (position ``0, stride, 2·stride, ...`` while the patch fits);
    ``max_patches`` keeps a seeded random subset of them (``None``: all).
    ``stop_after_steps`` ends the run early after that many optimiser steps
    in total (a budget; the checkpoint lets ``resume`` continue);
    ``stop_after_seconds`` ends this call after that much wall time (checked
    after every step; for fixed device time slots).
    ``checkpoint_every_s`` is the wall time between checkpoints (one is also
    written at the end of every epoch and at the end of the run).

    Performance options (they change how a step is computed, not the schedule;
    they may change between a run and its resumption, and each call records
    them in its provenance; ``docs/training.md``, "Performance options"):
    ``channels_last`` keeps the model and every batch in ``torch.channels_last``
    memory format; ``cudnn_benchmark`` lets cuDNN time its (deterministic)
    algorithms and keep the fastest; ``cuda_graph`` replays forward, backward
    and Adam step of a full-size batch as one captured CUDA graph
    (:mod:`fusionbench.train.graph`; a logged no-op on the CPU).
    """

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-4
    patch_size: int = 120
    stride: int = 10
    max_patches: int | None = None
    seed: int = 0
    threads: int = 1
    checkpoint_every_s: float = 180.0
    log_every: int = 10
    stop_after_steps: int | None = None
    stop_after_seconds: float | None = None
    progress: bool = True
    device: str = "cpu"
    precision: str = "fp32"
    channels_last: bool = False
    cudnn_benchmark: bool = False
    cuda_graph: bool = False

    PRECISIONS = ("fp32", "tf32", "bf16")

    def __post_init__(self) -> None:
        at_least_one = {"epochs": self.epochs, "batch_size": self.batch_size, "patch_size": self.patch_size,
                        "stride": self.stride, "threads": self.threads, "log_every": self.log_every,
                        "max_patches": self.max_patches, "stop_after_steps": self.stop_after_steps}
        for name, value in at_least_one.items():
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{name} must be an integer >= 1{' (or None)' if name in _OPTIONAL else ''}, "
                                 f"not {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, not {self.seed!r}")
        if not (isinstance(self.lr, (int, float)) and not isinstance(self.lr, bool) and math.isfinite(self.lr)
                and self.lr > 0):
            raise ValueError(f"lr must be finite and > 0, not {self.lr!r}")
        value = self.checkpoint_every_s  # inf: checkpoints at epoch ends and at the end only
        if not (isinstance(value, (int, float)) and value > 0):
            raise ValueError(f"checkpoint_every_s must be > 0, not {value!r}")
        seconds = self.stop_after_seconds  # 0: one step, then the checkpoint (a slot already used up)
        if seconds is not None and not (isinstance(seconds, (int, float)) and seconds >= 0):
            raise ValueError(f"stop_after_seconds must be >= 0 (or None), not {seconds!r}")
        if self.precision not in self.PRECISIONS:
            raise ValueError(f"precision must be one of {self.PRECISIONS}, not {self.precision!r}")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device must be 'cpu' or 'cuda[:N]', not {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a plain dict (``dataclasses.asdict``), e.g. for provenance JSON."""
        return asdict(self)

    def with_overrides(self, **overrides: Any) -> "TrainConfig":
        """A copy with the non-``None`` overrides applied (unknown keys raise)."""
        names = {f.name for f in fields(self)}
        unknown = set(overrides) - names
        if unknown:
            raise TypeError(f"unknown TrainConfig fields: {sorted(unknown)}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    # Fields that may differ between a run and its resumption.  ``epochs`` may change too: the learning
    # rate is constant and epoch e's order depends on (seed, e) only, so the first k epochs of a run do
    # not depend on its total; resuming with more epochs extends a finished run exactly.  ``device``
    # may change (a schedule split over machines): the checkpoint holds CPU tensors and CPU RNG state.
    # The performance options change how a step is computed, not what it computes (to float round-off).
    RESUMABLE_CHANGES = ("threads", "checkpoint_every_s", "progress", "stop_after_steps", "epochs", "device",
                         "stop_after_seconds", "channels_last", "cudnn_benchmark", "cuda_graph")
    #: the performance options (TrainConfig fields), in the order of their ``fusionbench train`` flags
    PERF_OPTIONS = ("channels_last", "cudnn_benchmark", "cuda_graph")
