"""Statistics over per-pair scores: bootstrap CIs, Friedman, post-hoc tests, mean ranks.

Everything a library does comes from ``scipy.stats``: ``bootstrap``,
``friedmanchisquare``, ``rankdata``, ``wilcoxon``, ``studentized_range``.
Written here only what scipy lacks: Holm's step-down correction, the
Nemenyi critical difference (Demšar, JMLR 7, 2006, eq. for CD with
q_α = studentized-range quantile / √2), the matched-pairs rank-biserial
correlation (Kerby, Comprehensive Psychology 3, 2014: r = (R+ − R−)/(R+ + R−)
over the non-zero paired differences) and a cluster (group) bootstrap that
resamples whole subjects/series with replacement (Davison & Hinkley 1997,
§3.8), vectorised over resamples.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats


#: fewest independent units (groups, or pairs where no groups are known) a percentile bootstrap CI is reported
#: for.  With g units, each resample that draws one unit g times has probability g**-g; for g = 3 that is
#: 1/27 = 3.7 % > 2.5 %, so both ends of a 95 % interval are exactly the smallest and largest unit means (the
#: range, not a CI); for g = 4 they are within one draw of it.  Below this the CI is ``(nan, nan)``.
MIN_CI_UNITS = 5


def bootstrap_ci(values: np.ndarray, *, confidence: float = 0.95, n_resamples: int = 2000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (scipy.stats.bootstrap); NaNs dropped; ``(v, v)`` if every value is
    ``v``; ``(nan, nan)`` with fewer than :data:`MIN_CI_UNITS` values, and where a value is infinite (the mean is
    then infinite: an interval of the finite values alone, printed beside it, did not contain it)."""
    values = np.asarray(values, dtype=float)
    if np.isinf(values).any():
        return float("nan"), float("nan")
    values = values[np.isfinite(values)]
    if values.size and np.all(values == values[0]):
        return float(values[0]), float(values[0])
    if values.size < MIN_CI_UNITS:
        return float("nan"), float("nan")
    res = stats.bootstrap((values,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                          method="percentile", random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def group_bootstrap_ci(values: np.ndarray, groups: np.ndarray | None, *, confidence: float = 0.95,
                       n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile CI of the mean resampling whole groups (subjects/series) with replacement.

    Each resample draws as many groups as there are, with replacement, and takes
    the mean of every pair in the drawn groups (a group drawn twice counts twice).
    ``groups`` ``None`` (or all distinct) is the ordinary pair bootstrap
    (:func:`bootstrap_ci`).  With fewer than :data:`MIN_CI_UNITS` groups the percentile interval is (nearly)
    the range of the group means, not a CI: ``(nan, nan)`` (a single group has no between-group variation
    at all).
    """
    values = np.asarray(values, dtype=float)
    if groups is None or np.isinf(values).any():  # an infinite value: no interval (bootstrap_ci)
        return bootstrap_ci(values, confidence=confidence, n_resamples=n_resamples, seed=seed)
    groups = np.asarray(groups, dtype=object)
    keep = np.isfinite(values)
    values, groups = values[keep], groups[keep]
    labels, index = np.unique(groups.astype(str), return_inverse=True)
    g = labels.size
    if g == values.size:
        return bootstrap_ci(values, confidence=confidence, n_resamples=n_resamples, seed=seed)
    if g < MIN_CI_UNITS:
        return float("nan"), float("nan")
    sums = np.bincount(index, weights=values, minlength=g)
    counts = np.bincount(index, minlength=g).astype(float)
    draws = np.random.default_rng(seed).integers(0, g, size=(n_resamples, g))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def rank_biserial(diff: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation of paired differences (zeros dropped; 0 if all are zero)."""
    diff = np.asarray(diff, dtype=float)
    diff = diff[np.isfinite(diff) & (diff != 0)]
    if diff.size == 0:
        return 0.0
    ranks = stats.rankdata(np.abs(diff))
    plus, minus = ranks[diff > 0].sum(), ranks[diff < 0].sum()
    return float((plus - minus) / (plus + minus))


def versus_reference(matrix: pd.DataFrame, reference: str, higher_is_better: bool,
                     alpha: float = 0.05) -> pd.DataFrame:
    """The method under study against each other column of a pairs × methods matrix.

    Per other method: two-sided Wilcoxon signed-rank test of the paired
    differences ``reference − other`` (``zero_method='wilcox'``), Holm-corrected
    over the k − 1 comparisons of this metric; ``median_diff`` (reference −
    other, in the metric's units), ``rank_biserial`` (positive = reference
    larger), and ``verdict``: ``better``/``worse`` (the metric's direction
    applied) where ``p_holm < alpha``, else ``no significant difference``.
    """
    if reference not in matrix.columns:
        return pd.DataFrame(columns=["method", "n_pairs", "median_diff", "rank_biserial", "p", "p_holm", "verdict"])
    ref = matrix[reference].to_numpy(dtype=float)
    rows = []
    for other in matrix.columns:
        if other == reference:
            continue
        diff = ref - matrix[other].to_numpy(dtype=float)
        p = 1.0 if np.allclose(diff, 0) else float(stats.wilcoxon(diff, zero_method="wilcox").pvalue)
        rows.append({"method": other, "n_pairs": int(diff.size), "median_diff": float(np.median(diff)),
                     "rank_biserial": rank_biserial(diff), "p": p})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["p_holm"] = holm(table["p"].to_numpy())
    sign = np.sign(table["rank_biserial"].to_numpy()) * (1 if higher_is_better else -1)
    table["verdict"] = np.where(table["p_holm"] >= alpha, "no significant difference",
                                np.where(sign > 0, "better", "worse"))
    return table


def complete_blocks(scores: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Pairs × methods matrix of one metric, keeping only pairs scored (finite) by every method.

    An infinite score (PSNR of F = A = B, kept by the store since session 37) leaves its pair out as NaN did:
    ``inf - inf`` has no sign, and such a pair gave the Wilcoxon test a NaN p-value that Holm turned into 0, a
    "better"/"worse" verdict from no evidence."""
    df = scores[scores["metric"] == metric].pivot_table(index="pair", columns="method", values="value", aggfunc="first")
    df = df.dropna(axis=0, how="any")
    return df[np.isfinite(df.to_numpy(dtype=float)).all(axis=1)]


def mean_ranks(matrix: pd.DataFrame, higher_is_better: bool) -> pd.Series:
    """Average rank per method (1 = best), ties averaged (scipy.stats.rankdata)."""
    data = matrix.to_numpy(dtype=float)
    ranks = stats.rankdata(-data if higher_is_better else data, axis=1)
    return pd.Series(ranks.mean(axis=0), index=matrix.columns).sort_values()


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm–Bonferroni step-down adjusted p-values (monotone, capped at 1)."""
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p)
    m = p.size
    adjusted = np.empty(m)
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, (m - rank) * p[idx])
        adjusted[idx] = min(1.0, running)
    return adjusted


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of mean ranks for k methods on n blocks (Demšar 2006)."""
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
    return float(q * np.sqrt(k * (k + 1) / (6.0 * n)))


@dataclass
class RankTest:
    """Friedman test + post-hoc results of one metric on one dataset."""

    metric: str
    n_pairs: int
    methods: list[str]
    ranks: pd.Series
    friedman_stat: float = float("nan")
    friedman_p: float = float("nan")
    cd: float = float("nan")
    wilcoxon_holm: pd.DataFrame = field(default_factory=pd.DataFrame)  # method_a, method_b, p, p_holm


def rank_test(scores: pd.DataFrame, metric: str, higher_is_better: bool, alpha: float = 0.05,
              pairwise: bool = True) -> RankTest | None:
    """Friedman across the methods in ``scores`` (complete blocks), Nemenyi CD, and (``pairwise``) all-pairs
    Wilcoxon with Holm; reports use :func:`versus_reference` instead of the all-pairs table."""
    matrix = complete_blocks(scores, metric)
    k, n = matrix.shape[1], matrix.shape[0]
    if k < 2 or n < 2:
        return None
    result = RankTest(metric, n, list(matrix.columns), mean_ranks(matrix, higher_is_better))
    if k >= 3:
        stat, p = stats.friedmanchisquare(*[matrix[c].to_numpy() for c in matrix.columns])
        result.friedman_stat, result.friedman_p = float(stat), float(p)
        result.cd = nemenyi_cd(k, n, alpha)
    if not pairwise:
        return result
    rows = []
    cols = list(matrix.columns)
    for i in range(k):
        for j in range(i + 1, k):
            diff = matrix[cols[i]].to_numpy() - matrix[cols[j]].to_numpy()
            if np.allclose(diff, 0):
                p = 1.0
            else:
                p = float(stats.wilcoxon(matrix[cols[i]], matrix[cols[j]], zero_method="wilcox").pvalue)
            rows.append((cols[i], cols[j], p))
    table = pd.DataFrame(rows, columns=["method_a", "method_b", "p"])
    table["p_holm"] = holm(table["p"].to_numpy()) if len(table) else []
    result.wilcoxon_holm = table
    return result


def wilcoxon_p(diff: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p of paired differences (``zero_method='wilcox'``; NaNs dropped);
    1.0 when every difference is zero, NaN with no difference at all."""
    diff = np.asarray(diff, dtype=float)
    diff = diff[np.isfinite(diff)]
    if diff.size == 0:
        return float("nan")
    if np.allclose(diff, 0):
        return 1.0
    return float(stats.wilcoxon(diff, zero_method="wilcox").pvalue)


def component_effects(values: pd.DataFrame, full: str, without: dict[str, str], metrics: list[str],
                      higher_is_better: dict[str, bool], alpha: float = 0.05) -> pd.DataFrame:
    """Does each component help?  Full model against the model without it, over pairs and training seeds.

    ``values``: one row per (variant, seed, key, metric) with column ``value`` (a per-pair score of the
    model of ``variant`` trained with ``seed``; ``key`` identifies the pair).  ``without[component]`` is
    the variant lacking that component.  Per component and metric, over the seeds both variants have
    (``n_seeds``) and the pairs both have in every one of those seeds (``n_pairs``):

    * each pair's value is averaged over the seeds, and ``diff = full − without`` per pair;
    * ``p``: two-sided Wilcoxon signed-rank test of ``diff`` (:func:`wilcoxon_p`); ``p_holm``: Holm over
      every (component, metric) row of the table;
    * the direction is the sign of the matched-pairs rank-biserial correlation of ``diff`` (positive:
      the full model scores higher), and ``seeds_agree`` counts the seeds whose own ``full − without``
      differences (same pairs) have a rank-biserial of the same sign; ``seed_diffs`` lists each seed's
      mean difference (to set the effect beside the seed-to-seed spread);
    * ``verdict``: ``helps`` (the full model is better in the metric's direction) or ``hurts`` where
      ``p_holm < alpha`` and, with two or more seeds, every seed agrees; else ``no evidence``.  With one
      seed the verdict rests on the pairs alone and ``all_seeds`` says ``n/a (1 seed)``: it cannot tell
      the component's effect from that of the training seed.

    Limits (stated in the report): two trained models usually differ consistently over images even
    without a real component effect, so the Wilcoxon over pairs is sensitive to training noise; the
    seed check is the guard, and with 3 seeds it is weak (a no-effect component whose seed differences
    point at random passes it with probability 1/4).
    """
    rows = []
    for component, other in without.items():
        for metric in metrics:
            sub = values[(values["metric"] == metric) & values["variant"].isin([full, other])]
            wide = sub.pivot_table(index="key", columns=["variant", "seed"], values="value", aggfunc="first")
            seeds = sorted(set(s for v, s in wide.columns if v == full) & set(s for v, s in wide.columns if v == other))
            row = {"component": component, "metric": metric, "full": full, "without": other,
                   "n_seeds": len(seeds), "n_pairs": 0, "full_mean": np.nan, "without_mean": np.nan,
                   "mean_diff": np.nan, "median_diff": np.nan, "rank_biserial": np.nan, "p": np.nan,
                   "seeds_agree": 0, "seed_diffs": ""}
            if seeds:
                f = wide[[(full, s) for s in seeds]].dropna()
                o = wide.loc[f.index, [(other, s) for s in seeds]].dropna()
                f = f.loc[o.index]
                a, b = f.to_numpy(dtype=float), o.to_numpy(dtype=float)
                diff = a.mean(axis=1) - b.mean(axis=1)
                if diff.size:
                    direction = np.sign(rank_biserial(diff))
                    per_seed = [np.sign(rank_biserial(a[:, i] - b[:, i])) for i in range(len(seeds))]
                    row.update(n_pairs=int(diff.size), full_mean=float(a.mean()), without_mean=float(b.mean()),
                               mean_diff=float(diff.mean()), median_diff=float(np.median(diff)),
                               rank_biserial=rank_biserial(diff), p=wilcoxon_p(diff),
                               seeds_agree=int(sum(s == direction != 0 for s in per_seed)),
                               seed_diffs=" ".join(f"{d:+.4g}" for d in (a - b).mean(axis=0)))
            rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    finite = np.isfinite(table["p"].to_numpy(dtype=float))
    table["p_holm"] = np.nan
    if finite.any():
        table.loc[finite, "p_holm"] = holm(table.loc[finite, "p"].to_numpy(dtype=float))
    verdicts, agree = [], []
    for _, r in table.iterrows():
        if r["n_seeds"] == 0 or r["n_pairs"] == 0:
            agree.append("–")
        elif r["n_seeds"] == 1:
            agree.append("n/a (1 seed)")
        else:
            agree.append(f"{'yes' if r['seeds_agree'] == r['n_seeds'] else 'no'} ({r['seeds_agree']}/{r['n_seeds']})")
        consistent = r["n_seeds"] == 1 or r["seeds_agree"] == r["n_seeds"]
        significant = np.isfinite(r["p_holm"]) and r["p_holm"] < alpha and r["rank_biserial"] != 0
        if significant and consistent and r["n_seeds"] >= 1:
            better = (r["rank_biserial"] > 0) == bool(higher_is_better.get(r["metric"], True))
            verdicts.append("helps" if better else "hurts")
        else:
            verdicts.append("no evidence")
    table["all_seeds"] = agree
    table["verdict"] = verdicts
    return table
