"""Table 4 (and Fig. 10) over training seeds: per-variant means, seed spread and per-component verdicts.

A Table 4 *variant* is a registered preset with ``use_<component>`` switches
(``mopa``, ``mopa.no_mask``, ``mopa.mask_only``, ...).  Its model trained with
seed N > 0 is the registered method ``<variant>.seed<N>`` (seed 0 is the plain
name; :func:`fusionbench.train.spec.split_seed`), so a run of ``--methods
'mopa*'`` holds every seed's per-pair scores side by side.

* :func:`seed_groups`: ``{variant: {seed: method}}`` of the seeds that were scored.
* :func:`ablation_table`: per variant, the mean over its pairs for each seed
  (a *seed mean*), then the mean of the seed means and their sd over seeds
  (ddof 1) — the paper's "mean ± sd over seeds of the per-pair means".  A
  variant with one seed has no seed spread: its ``±`` is the sd over pairs,
  and the ``Seeds`` column (1) and ``attrs['spread']`` say so.
* :func:`component_table`: per component and metric, the full model against
  the leave-one-out variant without it (:func:`fusionbench.report.stats.component_effects`:
  Wilcoxon over pairs of the seed-averaged differences, Holm over components ×
  metrics, sign checked in every seed, verdict ``helps`` / ``hurts`` / ``no evidence``).

Why the seed-averaged pairs (and not every seed × pair as one sample): the
seeds' values of one pair are not independent observations of the image, and
pooling them would triple ``n`` and shrink p-values for nothing; averaging
first keeps one difference per pair and reduces the training noise in it.
The between-seed variation, which the Wilcoxon over pairs does not see, is
checked separately: a verdict other than ``no evidence`` needs the same sign
in every seed (with two or more seeds).
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from fusionbench.train.spec import split_seed

from .data import display_name, higher_is_better
from .stats import component_effects

#: the full model and its leave-one-out presets (the text's reading of the ablation)
FULL = "mopa"
LEAVE_ONE_OUT = {"mask": "mopa.no_mask", "attention": "mopa.no_attention", "contrast": "mopa.no_contrast",
                 "decouple": "mopa.no_decouple"}


def seed_groups(methods: Iterable[str], variants: Iterable[str]) -> dict[str, dict[int, str]]:
    """``{variant: {seed: method}}``: each variant's scored methods by training seed (``mopa.no_mask.seed2`` → 2)."""
    methods = set(methods)
    out: dict[str, dict[int, str]] = {}
    for variant in variants:
        group = {0: variant} if variant in methods else {}
        for m in methods:
            base, seed = split_seed(m)
            if base == variant and seed > 0:
                group[seed] = m
        out[variant] = dict(sorted(group.items()))
    return out


def seed_pair_values(scores: pd.DataFrame, seeds: Mapping[str, Mapping[int, str]], metrics: list[str],
                     pairs: list[tuple[str, str]] | None = None) -> pd.DataFrame:
    """Long frame ``variant, seed, key, metric, value`` (``key`` = ``dataset/pair``) of the selected pairs."""
    method_of = {m: (v, s) for v, group in seeds.items() for s, m in group.items()}
    df = scores[scores["method"].isin(method_of) & scores["metric"].isin(metrics)]
    if pairs is not None:
        keys = {(d, str(p)) for d, p in pairs}
        df = df[[(d, str(p)) in keys for d, p in zip(df["dataset"], df["pair"])]]
    vs = [method_of[m] for m in df["method"]]
    return pd.DataFrame({"variant": [v for v, _ in vs], "seed": [s for _, s in vs],
                         "key": (df["dataset"].astype(str) + "/" + df["pair"].astype(str)).to_numpy(),
                         "metric": df["metric"].to_numpy(), "value": df["value"].to_numpy(dtype=float)})


def ablation_table(scores: pd.DataFrame, variants: dict[str, dict[str, bool]], metrics: list[str],
                   pairs: list[tuple[str, str]] | None = None, names: Mapping[str, str] | None = None,
                   seeds: Mapping[str, Mapping[int, str]] | None = None) -> pd.DataFrame:
    """Table 4 style: component flags (✓/✗), ``Seeds``, then per metric the mean and its sd.

    ``<metric>`` is the mean over seeds of the per-seed means over ``pairs`` (``(dataset, pair)``; default
    every scored pair); ``<metric> std`` the sd over seeds (ddof 1) where the variant has two or more
    seeds, else the sd over pairs (``attrs['spread'][variant]`` is ``'seeds'`` or ``'pairs'``).  ``seeds``
    defaults to :func:`seed_groups` of the scored methods.  ``attrs``: ``methods``, ``metrics``,
    ``n_pairs`` (per variant, fewest over its seeds), ``n_seeds``, ``spread`` and ``seed_means``
    (``{(variant, metric): [mean of seed 0, ...]}``, for the figure's points).
    """
    names = dict(names or {})
    seeds = dict(seeds) if seeds is not None else seed_groups(scores["method"].unique(), variants)
    seeds = {v: dict(seeds.get(v, {})) for v in variants}
    long = seed_pair_values(scores, seeds, metrics, pairs)
    per_seed = long.groupby(["variant", "metric", "seed"])["value"].agg(["mean", "std", "count"])
    components = list(dict.fromkeys(c for flags in variants.values() for c in flags))  # registration order
    rows, n_pairs, n_seeds, spread, seed_means = [], {}, {}, {}, {}
    for variant, flags in variants.items():
        have = sorted({s for (v, _, s) in per_seed.index if v == variant})
        n_seeds[variant] = len(have)
        spread[variant] = "seeds" if len(have) >= 2 else "pairs"
        sub = long[long["variant"] == variant]
        n_pairs[variant] = int(min((sub[sub["seed"] == s]["key"].nunique() for s in have), default=0))
        row: dict[str, object] = {"Variant": names.get(variant) or display_name(variant)}
        row.update({c.capitalize(): "✓" if flags.get(c) else "✗" for c in components})
        row["Seeds"] = len(have)
        for metric in metrics:
            means = [float(per_seed.loc[(variant, metric, s), "mean"]) for s in have
                     if (variant, metric, s) in per_seed.index]
            seed_means[(variant, metric)] = means
            if not means:
                row[metric], row[f"{metric} std"] = np.nan, np.nan
            elif len(means) >= 2:
                row[metric], row[f"{metric} std"] = float(np.mean(means)), float(np.std(means, ddof=1))
            else:
                row[metric] = means[0]
                row[f"{metric} std"] = float(per_seed.loc[(variant, metric, have[0]), "std"])
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs.update(methods=list(variants), metrics=list(metrics), n_pairs=n_pairs, n_seeds=n_seeds, spread=spread,
                     seed_means=seed_means)
    return out


def ablation_display(table: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """The table with each metric as one ``mean ± sd`` text cell (Markdown / HTML)."""
    metrics = table.attrs.get("metrics") or [c for c in table.columns if f"{c} std" in table.columns]
    out = table.drop(columns=[f"{m} std" for m in metrics])
    for m in metrics:
        out[m] = [("–" if not np.isfinite(mu) else f"{mu:.{digits}f} ± {sd:.{digits}f}" if np.isfinite(sd)
                   else f"{mu:.{digits}f}") for mu, sd in zip(table[m], table[f"{m} std"])]
    return out


def component_table(scores: pd.DataFrame, metrics: list[str], pairs: list[tuple[str, str]] | None = None,
                    seeds: Mapping[str, Mapping[int, str]] | None = None, alpha: float = 0.05,
                    full: str = FULL, without: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Per component (whose leave-one-out variant was scored) and metric: the full model against the model
    without it, with the verdict (:func:`fusionbench.report.stats.component_effects`; Holm over every row).

    Columns: ``component``, ``metric``, ``n_pairs``, ``n_seeds``, ``full_mean``, ``without_mean``,
    ``mean_diff`` and ``median_diff`` (full − without, metric units), ``rank_biserial``, ``p``, ``p_holm``,
    ``seed_diffs`` (each seed's mean difference, e.g. ``+0.37 +0.41 +0.35``), ``all_seeds`` (``yes (3/3)``, ``no (2/3)``, ``n/a (1 seed)``), ``verdict``.  Empty when the full model
    or every leave-one-out variant is missing.
    """
    without = dict(without or LEAVE_ONE_OUT)
    seeds = dict(seeds) if seeds is not None else seed_groups(scores["method"].unique(), [full, *without.values()])
    present = {v for v, g in seeds.items() if g}
    without = {c: v for c, v in without.items() if v in present}
    if full not in present or not without:
        return pd.DataFrame()
    long = seed_pair_values(scores, {v: seeds[v] for v in [full, *without.values()]}, metrics, pairs)
    table = component_effects(long, full, without, metrics, {m: higher_is_better(m) for m in metrics}, alpha)
    keep = ["component", "metric", "n_pairs", "n_seeds", "full_mean", "without_mean", "mean_diff", "median_diff",
            "rank_biserial", "p", "p_holm", "seed_diffs", "all_seeds", "verdict"]
    out = table[keep].copy()
    out.attrs.update(alpha=alpha, full=full, without=without)
    return out


def component_display(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`component_table` for reading: p-values in scientific notation (``1.9e-06``), the rest as is."""
    out = table.copy()
    for c in ("p", "p_holm"):
        out[c] = ["–" if not np.isfinite(v) else f"{v:.2g}" if v >= 0.01 else f"{v:.1e}" for v in table[c]]
    return out
