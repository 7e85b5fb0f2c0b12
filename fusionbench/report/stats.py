"""Statistics over per-pair scores: bootstrap CIs, Friedman, post-hoc tests, mean ranks.

Everything a library does comes from ``scipy.stats``: ``bootstrap``,
``friedmanchisquare``, ``rankdata``, ``wilcoxon``, ``studentized_range``.
Written here only what scipy lacks: Holm's step-down correction and the
Nemenyi critical difference (Demšar, JMLR 7, 2006, eq. for CD with
q_α = studentized-range quantile / √2).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats


def bootstrap_ci(values: np.ndarray, *, confidence: float = 0.95, n_resamples: int = 2000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (scipy.stats.bootstrap); NaNs dropped; (nan, nan) if < 2 values."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 2 or np.all(values == values[0]):
        v = float(values[0]) if values.size else float("nan")
        return (v, v) if values.size else (float("nan"), float("nan"))
    res = stats.bootstrap((values,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                          method="percentile", random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def complete_blocks(scores: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Pairs × methods matrix of one metric, keeping only pairs scored (finite) by every method."""
    df = scores[scores["metric"] == metric].pivot_table(index="pair", columns="method", values="value", aggfunc="first")
    return df.dropna(axis=0, how="any")


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


def rank_test(scores: pd.DataFrame, metric: str, higher_is_better: bool, alpha: float = 0.05) -> RankTest | None:
    """Friedman across methods (complete blocks), Nemenyi CD and pairwise Wilcoxon with Holm."""
    matrix = complete_blocks(scores, metric)
    k, n = matrix.shape[1], matrix.shape[0]
    if k < 2 or n < 2:
        return None
    result = RankTest(metric, n, list(matrix.columns), mean_ranks(matrix, higher_is_better))
    if k >= 3:
        stat, p = stats.friedmanchisquare(*[matrix[c].to_numpy() for c in matrix.columns])
        result.friedman_stat, result.friedman_p = float(stat), float(p)
        result.cd = nemenyi_cd(k, n, alpha)
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
