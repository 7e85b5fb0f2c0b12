"""Named configurations of the ``mopa`` network: Table 4 ablations and alternative readings of the paper.

Every preset is a set of overrides of the registered ``mopa`` configuration
(:data:`methods.mopa.DEFAULT_PARAMS`), registered as ``mopa.<preset>``:

* Table 4 as printed: rows 1-4 keep exactly ONE component and row 5 keeps all
  (``mask_only``, ``attention_only``, ``contrast_only``, ``decouple_only``,
  ``mopa``).  The text instead describes "four modified versions of our
  network, each omitting one component" (``no_mask``, ``no_attention``,
  ``no_contrast``, ``no_decouple``).  Both readings are registered.
* Other readings of the text (``docs/paper_network.md``): ``width4`` and
  ``width6`` (the FLOP count read as 2×MAC, or as MAC), ``parallel`` (both
  attention branches read the input), ``cem_multiscale`` (CEM weights applied
  to the multiscale features), ``soft_weights`` (S of Eq. 12 as a normalised
  magnitude ratio), ``laplacian`` (∇ of Eq. 12 as SDNet's Laplacian),
  ``all_tasks`` (training pairs from CT, PET and SPECT, 60 each).
* ``v1``: the configuration of fusionbench's first ``mopa`` (width 4,
  parallel attention, α = 1 with I1 = MRI, soft S, 60 pairs per task), kept
  with its committed weights for comparison.

Training seeds: every preset takes a ``seed`` parameter (default 0), e.g.
``create_method("mopa.no_mask", seed=1)``, which loads the weights trained
with ``fusionbench train mopa.no_mask --seed 1`` (``weights/no_mask.seed1.pth``).
The runner selects methods by name only, so the nine Table 4 presets
(:data:`SEEDED`) are also registered once per extra seed of :data:`EXTRA_SEEDS`
as ``<name>.seed<N>`` (``mopa.seed1``, ``mopa.no_mask.seed2``; a further
``.tag``, as timm names a model's pretrained tags); the name without a suffix
is seed 0.
"""
from __future__ import annotations

from typing import Any

from fusionbench.train.spec import seed_variant, split_seed

COMPONENTS = ("mask", "attention", "contrast", "decouple")


def switches(keep: tuple[str, ...]) -> dict[str, bool]:
    """``{'use_mask': ..., ...}`` with the components in ``keep`` on and the others off."""
    return {f"use_{c}": c in keep for c in COMPONENTS}


#: preset → overrides of the default configuration (``mopa`` itself has none)
PRESETS: dict[str, dict[str, Any]] = {"mopa": {}}
for _c in COMPONENTS:
    PRESETS[f"{_c}_only"] = switches((_c,))
for _c in COMPONENTS:
    PRESETS[f"no_{_c}"] = switches(tuple(x for x in COMPONENTS if x != _c))
PRESETS.update({
    "width4": {"width": 4},
    "width6": {"width": 6},
    "parallel": {"attention": "parallel"},
    "cem_multiscale": {"cem_apply": "multiscale"},
    "soft_weights": {"loss_weights": "soft"},
    "laplacian": {"loss_grad": "laplacian"},
    "all_tasks": {"train_tasks": "all"},
    "v1": {"width": 4, "attention": "parallel", "loss_alpha": 1.0, "loss_i1": "mri", "loss_weights": "soft",
           "train_tasks": "all"},
})

#: Table 4's five rows, in the printed order.
TABLE4 = ("mask_only", "attention_only", "contrast_only", "decouple_only", "mopa")
#: the four leave-one-out presets (the text's reading of the ablation)
LEAVE_ONE_OUT = tuple(f"no_{c}" for c in COMPONENTS)


def registered_name(preset: str) -> str:
    """``mopa`` for the full model, ``mopa.<preset>`` for the others."""
    return "mopa" if preset == "mopa" else f"mopa.{preset}"


#: the presets Table 4 is computed from (issue 19): the four keep-one, the four leave-one-out and the full model
SEEDED = TABLE4[:-1] + LEAVE_ONE_OUT + ("mopa",)
#: the training seeds registered as ``<name>.seed<N>`` beside each :data:`SEEDED` preset (seed 0 = the plain name)
EXTRA_SEEDS = (1, 2)


def seeded_name(preset: str, seed: int = 0) -> str:
    """The registered name of ``preset`` trained with ``seed``: ``mopa.no_mask`` (0), ``mopa.no_mask.seed1``."""
    return seed_variant(registered_name(preset), seed)


__all__ = ["COMPONENTS", "EXTRA_SEEDS", "LEAVE_ONE_OUT", "PRESETS", "SEEDED", "TABLE4", "registered_name",
           "seeded_name", "split_seed", "switches"]
