"""Table 4 ablation presets of Di et al. (2025), §2.3.

Table 4 as printed: rows 1-4 keep exactly ONE component and row 5 keeps all
(``mask_only``, ``attention_only``, ``contrast_only``, ``decouple_only``,
``mopa``).  The text instead describes "four modified versions of our network,
each omitting one component" (``no_mask``, ``no_attention``, ``no_contrast``,
``no_decouple``).  Both readings are registered.
"""
from __future__ import annotations

COMPONENTS = ("mask", "attention", "contrast", "decouple")


def switches(keep: tuple[str, ...]) -> dict[str, bool]:
    """``{'use_mask': ..., ...}`` with the components in ``keep`` on and the others off."""
    return {f"use_{c}": c in keep for c in COMPONENTS}


PRESETS: dict[str, dict[str, bool]] = {"mopa": switches(COMPONENTS)}
for _c in COMPONENTS:
    PRESETS[f"{_c}_only"] = switches((_c,))
for _c in COMPONENTS:
    PRESETS[f"no_{_c}"] = switches(tuple(x for x in COMPONENTS if x != _c))

#: Table 4's five rows, in the printed order (the presets with committed weights).
TABLE4 = ("mask_only", "attention_only", "contrast_only", "decouple_only", "mopa")


def registered_name(preset: str) -> str:
    """``mopa`` for the full model, ``mopa.<preset>`` for the others."""
    return "mopa" if preset == "mopa" else f"mopa.{preset}"
