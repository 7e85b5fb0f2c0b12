"""asv settings shared by the benchmark classes that time one long call per sample."""
from __future__ import annotations


class OneShot:
    """One call per sample, one sample, no warm-up rounds, one process (a fusion or a training step
    takes seconds: asv's defaults would repeat it for minutes).  Subclasses set ``timeout``."""

    number = 1
    repeat = 1
    rounds = 1
    warmup_time = 0
    processes = 1
