"""Which pairs ``mopa`` trains on (§2: "180 pairs of 256×256 pixels medical images" from the Harvard library).

The paper does not say which tasks the 180 pairs come from.  It evaluates
MRI-PET and MRI-SPECT only, its second feature path is "the PET/SPECT path",
and the training code it copies (SDNet's ``Medical/``) fuses a functional
(PET/SPECT) with a structural (MRI) image.  So the registered ``mopa`` trains
on **90 MRI-PET + 90 MRI-SPECT** pairs (``train_tasks="pet_spect"``), all from
the train split v1 (never a test pair): the 60 ``paper_train`` pairs of each
task plus 30 more of its train split, drawn with ``numpy.random.default_rng(2025)``
from the rest in key order.  ``train_tasks="all"`` is fusionbench's v1 choice:
the 60 ``paper_train`` pairs of each of CT, PET and SPECT.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

TRAIN_TASKS = ("pet_spect", "all")
#: the tasks of fusionbench each ``train_tasks`` trains for (``MethodInfo.trained_for``; "medical" = the MRI family)
TRAINED_FOR: dict[str, tuple[str, ...]] = {"pet_spect": ("MRI-PET", "MRI-SPECT"), "all": ("medical",)}
PER_TASK = 90
SELECTION_SEED = 2025


def training_pairs(train_tasks: str = "pet_spect", data_dir: str | Path | None = None) -> list:
    """The 180 training pairs of ``train_tasks`` (see the module docstring), in a fixed order."""
    import fusionbench
    from fusionbench.data import paper_training_pairs

    if train_tasks == "all":
        return paper_training_pairs(data_dir)
    if train_tasks != "pet_spect":
        raise ValueError(f"train_tasks must be one of {TRAIN_TASKS}, not {train_tasks!r}")
    kw = {} if data_dir is None else {"data_dir": str(data_dir)}
    out: list = []
    for name in ("harvard-mri-pet", "harvard-mri-spect"):
        ds = fusionbench.create_dataset(name, **kw)
        base = list(ds.splits["paper_train"])
        # drawn from the manifest's split ids (not the files present), so the choice never depends on the copy
        rest = sorted(set(ds.splits["train"]) - set(base))
        extra = np.random.default_rng(SELECTION_SEED).choice(len(rest), PER_TASK - len(base), replace=False)
        by_id = {p.id: p for p in ds.pairs}
        for pid in base + [rest[i] for i in sorted(extra)]:
            if pid not in by_id:
                raise FileNotFoundError(f"training pair {name}/{pid} is missing from the data folder {data_dir}")
            out.append(by_id[pid])
    return out
