"""Which methods a report shows, in which order, which one is highlighted, and their unique names.

A report has three kinds of rows:

* the **main** methods (Tables 1–3 style, statistics, CD diagrams, grids): by
  default, for a run that includes ``mopa``, the founding paper's ten methods
  in the paper's order (LEGFF, CNP, SDNet, DTNP, MATR, MDL, CNN, MLEPF,
  SwinFusion, Ours) with ``mopa`` highlighted; otherwise every method of the
  run that is not a variant, in natural order;
* the **ablations**: the paper network's ablation presets, ``mopa.*_only`` and
  ``mopa.no_*`` (:func:`is_ablation_preset`; Table 4 style, own table and figure),
  with ``mopa`` as the full model; other presets of the network (``mopa.v1``,
  ``mopa.width4``) are full networks and go with the other methods; their models trained with
  other seeds (``mopa.no_mask.seed1``, :func:`fusionbench.train.spec.split_seed`)
  are not rows of their own anywhere: Table 4 averages them into their
  preset's row (:mod:`fusionbench.report.ablation`);
* the **other methods**: everything else of the run (presets such as
  ``mdl.fast`` or ``laplacian_pyramid.mertens``, extra baselines, external
  results), in a table of their own.

``--methods PATTERNS`` (fnmatch, comma-separated), ``--order LIST`` and
``--exclude-variants`` replace the default; a *variant* is a registry preset
(a name with a dot, ``base.preset``).  Per dataset, a selected method that was
not run there is replaced by its task-specific preset where one was run
(``swinfusion`` → ``swinfusion.ct`` on MRI-CT; ``legff`` → ``legff.ivf`` on
IR-VIS), and the table says so.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping

from fusionbench.registry import natural_key
from fusionbench.train.spec import split_seed

# The paper's Tables 1–3 and 5, in its row order (label → registry name).
PAPER_ORDER: tuple[tuple[str, str], ...] = (
    ("LEGFF", "legff"), ("CNP", "cnp"), ("SDNet", "sdnet"), ("DTNP", "dtnp"), ("MATR", "matr"), ("MDL", "mdl"),
    ("CNN", "cnn"), ("MLEPF", "mlepf"), ("SwinFusion", "swinfusion"), ("Ours", "mopa"),
)
PAPER_METHODS = tuple(name for _, name in PAPER_ORDER)
PAPER_HIGHLIGHT = "mopa"
# Task-specific presets preferred on a task even when the base method was run there too.
TASK_PRESETS: dict[str, dict[str, str]] = {"IR-VIS": {"legff": "legff.ivf", "u2fusion": "u2fusion.ivf"},
                                           "MRI-CT": {"swinfusion": "swinfusion.ct"}}


#: Table 4's ablation presets in its order: the four single-component networks, then the leave-one-out ones
#: (the full network, ``mopa``, comes last in the table)
ABLATION_PRESETS: tuple[str, ...] = ("mopa.mask_only", "mopa.attention_only", "mopa.contrast_only",
                                     "mopa.decouple_only", "mopa.no_mask", "mopa.no_attention", "mopa.no_contrast",
                                     "mopa.no_decouple")


def is_ablation_preset(method: str) -> bool:
    """A Table 4 ablation preset (``mopa.*_only`` or ``mopa.no_*``, or one of its seeds); other presets of the
    network (``mopa.v1``, ``mopa.width4``, ...) are full networks with every component, not ablations."""
    base = split_seed(method)[0]
    return fnmatch.fnmatchcase(base, f"{PAPER_HIGHLIGHT}.*_only") or fnmatch.fnmatchcase(base, f"{PAPER_HIGHLIGHT}.no_*")


def is_variant(method: str) -> bool:
    """A registry preset (``base.preset``) rather than a method's default setting."""
    return "." in method


def is_seed_variant(method: str) -> bool:
    """An ablation preset's model trained with another seed (``mopa.no_mask.seed1``): averaged into its
    preset's Table 4 row, never a row of its own."""
    base, seed = split_seed(method)
    return seed > 0 and bool(ablation_flags(method))


def ablation_flags(method: str) -> dict[str, bool]:
    """``{component: on}`` of a method whose registered parameters carry ``use_<component>`` switches."""
    from fusionbench.method_registry import METHODS

    entry = METHODS.find(method)
    if entry is None:
        return {}
    params = entry.info.params
    return {k[4:]: bool(v) for k, v in params.items() if k.startswith("use_") and isinstance(v, bool)}


def split_patterns(text: str | Iterable[str] | None) -> list[str]:
    """``"a,b*, c"`` → ``["a", "b*", "c"]`` (``None`` or ``""`` → ``[]``)."""
    if text is None:
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    return [s.strip() for s in items if s and s.strip()]


def match(methods: Iterable[str], patterns: list[str]) -> list[str]:
    """Methods matching any fnmatch pattern, in pattern order then natural order (each once)."""
    methods = sorted(methods, key=natural_key)
    out: list[str] = []
    for pattern in patterns:
        for m in methods:
            if m not in out and (m == pattern or fnmatch.fnmatchcase(m, pattern)):
                out.append(m)
    return out


@dataclass
class Selection:
    """The report's choice of methods (see the module docstring)."""

    main: list[str]
    highlight: str | None = None
    ablations: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)
    paper_default: bool = False  # the paper's ten methods in its order
    note: str = ""

    def in_table4(self, method: str) -> bool:
        """Whether ``method`` is one of Table 4's models: an ablation preset (or the full model) or one of its
        training seeds (``mopa.no_mask.seed1``), which are rows of no other table."""
        return split_seed(method)[0] in self.ablations

    def without_table4(self, available: Iterable[str]) -> "Selection":
        """The selection when Table 4 is not written (fewer than two ablation presets have results): the ablation
        presets' models of ``available`` that the main tables do not show, training seeds included, are other
        methods of the run (until session 39 they were in no table, without a word)."""
        moved = [m for m in sorted(set(available), key=natural_key)
                 if self.in_table4(m) and m not in self.main and m not in self.others]
        return replace(self, ablations=[], others=[*self.others, *moved])

    def for_dataset(self, available: Iterable[str], task: str | None) -> tuple[list[str], dict[str, str]]:
        """The main methods present on one dataset, with task presets substituted: (methods, {shown: selected}).

        Each method is shown once: where the main methods hold a method and its preset for the task (a run
        of ``legff,legff.ivf`` on medical and IR-VIS data, whose main methods are every method of the run),
        the preset stands in for the method in the method's place, not a second time in its own (until
        session 37 it was listed twice, and the report failed on the table's repeated row).
        """
        available = set(available)
        shown, standin = [], {}
        for m in self.main:
            preset = TASK_PRESETS.get(task or "", {}).get(m)
            if preset and preset in available:
                standin[preset] = m
                m = preset
            elif m not in available:
                continue
            if m not in shown:
                shown.append(m)
        return shown, standin


def select(available: Iterable[str], *, methods: str | Iterable[str] | None = None,
           order: str | Iterable[str] | None = None, highlight: str | None = None,
           exclude_variants: bool = False) -> Selection:
    """The report's :class:`Selection` from the methods a store holds and the command-line options."""
    available = sorted(set(available), key=natural_key)
    seeded = [m for m in available if is_seed_variant(m)]
    available = [m for m in available if m not in seeded]
    bases = {split_seed(m)[0] for m in seeded}
    ablations = [m for m in sorted(set(available) | bases, key=natural_key)
                 if is_ablation_preset(m) and ablation_flags(m) and m != PAPER_HIGHLIGHT]
    if (PAPER_HIGHLIGHT in available or PAPER_HIGHLIGHT in bases) and ablation_flags(PAPER_HIGHLIGHT):
        ablations.append(PAPER_HIGHLIGHT)
    ablations = _ablation_order(ablations)
    patterns, order_list = split_patterns(methods), split_patterns(order)
    if order_list:
        unknown = [m for m in order_list if m not in available]
        main = [m for m in order_list if m in available]
        if not main and not patterns:  # before: empty main tables and exit 0
            raise ValueError(f"--order {order!r}: no method of the results is named (they have: "
                             f"{', '.join(sorted(available, key=natural_key))})")
        note = f"order given by --order; not in the results: {', '.join(unknown)}" if unknown else "order given by --order"
        if patterns:
            main += [m for m in match(available, patterns) if m not in main]
    elif patterns:
        main = match(available, patterns)
        note = "methods chosen by --methods " + ",".join(patterns)
    elif PAPER_HIGHLIGHT in available:
        main = [m for m in PAPER_METHODS if m in available or _has_preset(m, available)]
        _check_highlight(highlight, main)
        return Selection(main, highlight or PAPER_HIGHLIGHT,
                         [m for m in ablations],
                         [m for m in available if m not in main and m not in ablations
                          and m not in _standins(main, available)],
                         paper_default=True,
                         note="the founding paper's ten methods in its order (Tables 1-3, 5)")
    else:
        main = [m for m in available if not (is_ablation_preset(m) and ablation_flags(m))]
        note = "every method of the run"
    if exclude_variants:
        main = [m for m in main if not is_variant(m)]
    if highlight is None and PAPER_HIGHLIGHT in main:
        highlight = PAPER_HIGHLIGHT
    _check_highlight(highlight, main)
    others = [m for m in available if m not in main and m not in ablations and m not in _standins(main, available)]
    return Selection(main, highlight, [m for m in ablations if m not in main or m == PAPER_HIGHLIGHT], others,
                     note=note)


def _check_highlight(highlight: str | None, main: list[str]) -> None:
    """A given ``--highlight`` must be one of the main tables' methods (else nothing would be highlighted)."""
    if highlight is not None and highlight not in main:
        raise ValueError(f"--highlight {highlight!r} is not a method of the main tables ({', '.join(main) or 'none'})")


def _has_preset(method: str, available: Iterable[str]) -> bool:
    return any(a.startswith(method + ".") and not ablation_flags(a) for a in available)


def _standins(main: list[str], available: Iterable[str]) -> set[str]:
    """Task presets that stand in for a main method on some dataset."""
    available = set(available)
    out = {p for table in TASK_PRESETS.values() for base, p in table.items() if base in main and p in available}
    return out


def _ablation_order(methods: list[str]) -> list[str]:
    """Table 4's order: mask, attention, contrast, decouple only; then the leave-one-out presets; full last."""
    first = list(ABLATION_PRESETS)
    return sorted(methods, key=lambda m: (m == PAPER_HIGHLIGHT, first.index(m) if m in first else len(first),
                                          natural_key(m)))


def unique_display_names(methods: Iterable[str], names: Mapping[str, str]) -> dict[str, str]:
    """``{method: display name}`` where no two methods share a name.

    A name used by several methods keeps it for the one without a preset suffix
    (``swinfusion``); the others get their preset in brackets
    (``SwinFusion (ct)``), and if that still clashes, their registry name.
    """
    methods = list(dict.fromkeys(methods))
    out = {m: names.get(m) or m for m in methods}
    by_name: dict[str, list[str]] = {}
    for m in methods:
        by_name.setdefault(out[m], []).append(m)
    for name, group in by_name.items():
        if len(group) < 2:
            continue
        keep = next((m for m in group if not is_variant(m)), None)
        for m in group:
            if m != keep:
                out[m] = f"{name} ({m.split('.', 1)[1]})" if is_variant(m) else f"{name} [{m}]"
    seen: dict[str, int] = {}
    for m in methods:
        seen[out[m]] = seen.get(out[m], 0) + 1
    for m in methods:
        if seen[out[m]] > 1:
            out[m] = f"{out[m]} [{m}]"
    return out
