"""Statistics against scipy and published values on known data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fusionbench.report.stats import bootstrap_ci, holm, mean_ranks, nemenyi_cd, rank_test


def _scores(matrix: np.ndarray) -> pd.DataFrame:
    rows = [(f"p{i}", f"m{j}", "X", float(matrix[i, j])) for i in range(matrix.shape[0]) for j in range(matrix.shape[1])]
    return pd.DataFrame(rows, columns=["pair", "method", "metric", "value"])


def test_friedman_and_ranks_match_scipy() -> None:
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(15, 4)) + np.array([0.0, 0.3, 0.6, 0.9])
    result = rank_test(_scores(matrix), "X", higher_is_better=True)
    expected = stats.friedmanchisquare(*matrix.T)
    assert result.friedman_stat == pytest.approx(expected.statistic)
    assert result.friedman_p == pytest.approx(expected.pvalue)
    ranks = stats.rankdata(-matrix, axis=1).mean(axis=0)
    assert result.ranks.sort_index().to_numpy() == pytest.approx(ranks)
    assert result.ranks.index[0] == "m3"  # highest values → best rank


def test_wilcoxon_holm_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    matrix = rng.normal(size=(12, 3)) + np.array([0.0, 0.5, 1.0])
    table = rank_test(_scores(matrix), "X", higher_is_better=False).wilcoxon_holm
    p01 = stats.wilcoxon(matrix[:, 0], matrix[:, 1]).pvalue
    assert table.iloc[0]["p"] == pytest.approx(p01)
    assert (table["p_holm"] >= table["p"]).all()


def test_holm_known_values() -> None:
    # Holm (1979) step-down: sorted p = 0.01, 0.02, 0.03, 0.04 with m = 4 → 0.04, 0.06, 0.06, 0.06
    assert holm(np.array([0.03, 0.01, 0.04, 0.02])).tolist() == pytest.approx([0.06, 0.04, 0.06, 0.06])


def test_nemenyi_cd_matches_demsar_table() -> None:
    # Demšar (2006), Table 5(a): q_0.05 = 2.569 for k = 4 → CD = 2.569 · sqrt(4·5 / (6·N))
    assert nemenyi_cd(4, 20) == pytest.approx(2.569 * np.sqrt(20 / 120), rel=1e-3)
    assert nemenyi_cd(10, 20) == pytest.approx(3.164 * np.sqrt(110 / 120), rel=1e-3)


def test_bootstrap_ci_brackets_the_mean() -> None:
    values = np.random.default_rng(2).normal(5, 1, 40)
    lo, hi = bootstrap_ci(values)
    assert lo < values.mean() < hi and hi - lo < 1.2
    assert bootstrap_ci(np.array([3.0, 3.0])) == (3.0, 3.0)


def test_mean_ranks_average_ties() -> None:
    frame = pd.DataFrame({"a": [1.0, 1.0], "b": [1.0, 0.0]})
    assert mean_ranks(frame, higher_is_better=True).to_dict() == {"a": 1.25, "b": 1.75}


def test_versus_reference_matches_scipy_with_effect_sizes() -> None:
    from fusionbench.report.stats import rank_biserial, versus_reference

    rng = np.random.default_rng(3)
    matrix = pd.DataFrame(rng.normal(size=(20, 3)) * 0.3 + np.array([1.0, 0.0, 0.9]), columns=["ours", "a", "b"])
    table = versus_reference(matrix, "ours", higher_is_better=True).set_index("method")
    assert list(table.index) == ["a", "b"]
    diff = matrix["ours"] - matrix["a"]
    assert table.loc["a", "p"] == pytest.approx(stats.wilcoxon(diff).pvalue)
    assert table.loc["a", "median_diff"] == pytest.approx(np.median(diff))
    assert table["p_holm"].tolist() == pytest.approx(holm(table["p"].to_numpy()).tolist())
    assert table.loc["a", "verdict"] == "better" and table.loc["a", "rank_biserial"] > 0.5
    # lower-is-better: the same differences read as worse
    assert versus_reference(matrix, "ours", higher_is_better=False).set_index("method").loc["a", "verdict"] == "worse"
    # Kerby (2014): differences +1, +2, -3 → R+ = 1 + 2, R- = 3 → r = 0
    assert rank_biserial(np.array([1.0, 2.0, -3.0])) == pytest.approx(0.0)
    assert rank_biserial(np.array([1.0, 2.0, 3.0])) == 1.0 and rank_biserial(np.zeros(3)) == 0.0


def test_group_bootstrap_resamples_groups() -> None:
    from fusionbench.report.stats import group_bootstrap_ci

    rng = np.random.default_rng(4)
    groups = np.repeat(np.arange(6), 10)
    values = rng.normal(size=6)[groups] * 3 + rng.normal(size=60) * 0.1  # strongly clustered
    lo_g, hi_g = group_bootstrap_ci(values, groups)
    lo_p, hi_p = bootstrap_ci(values)
    assert lo_g < values.mean() < hi_g
    assert (hi_g - lo_g) > 2 * (hi_p - lo_p)  # treating pairs as independent understates the spread
    assert np.isnan(group_bootstrap_ci(values, np.zeros(60)))[0]  # one group: no CI
    assert group_bootstrap_ci(values, np.arange(60)) == bootstrap_ci(values)  # all distinct = pair bootstrap
    assert group_bootstrap_ci(values, None) == bootstrap_ci(values)


def test_rank_test_without_pairwise() -> None:
    matrix = np.random.default_rng(5).normal(size=(8, 4))
    result = rank_test(_scores(matrix), "X", higher_is_better=True, pairwise=False)
    assert result.wilcoxon_holm.empty and np.isfinite(result.cd)


def test_group_bootstrap_pools_the_pairs_of_the_drawn_groups(monkeypatch) -> None:
    """Group a: one pair (0.0); group b: three pairs (1.0).  A resample drawing {a, b} has the pooled mean
    (0 + 1 + 1 + 1) / 4 = 0.75 (the docstring: "the mean of every pair in the drawn groups"), not the mean of
    the group means 0.5.  {a, b} is half the resamples, so the 40th and 60th percentiles are both 0.75.
    (Two groups are below the reporting floor: lowered here to test the arithmetic.)"""
    from fusionbench.report import stats as stats_module
    from fusionbench.report.stats import group_bootstrap_ci

    monkeypatch.setattr(stats_module, "MIN_CI_UNITS", 2)
    values = np.array([0.0, 1.0, 1.0, 1.0])
    groups = np.array(["a", "b", "b", "b"])
    assert group_bootstrap_ci(values, groups, confidence=0.2) == (0.75, 0.75)


def test_too_few_groups_give_no_ci_rather_than_the_range_of_their_means() -> None:
    """Three series (the Harvard MRI-PET test split): each one-series resample has probability 1/27 > 2.5 %, so a
    percentile "95 % CI" is exactly the smallest and largest series mean.  Below MIN_CI_UNITS there is no CI;
    from it on, the interval is strictly inside the range of the group means."""
    from fusionbench.report.stats import MIN_CI_UNITS, group_bootstrap_ci

    rng = np.random.default_rng(1)
    for g in range(2, 8):
        groups = np.repeat(np.arange(g), 12)
        values = rng.normal(size=groups.size) + groups.astype(float)
        lo, hi = group_bootstrap_ci(values, groups)
        means = [values[groups == k].mean() for k in range(g)]
        if g < MIN_CI_UNITS:
            assert np.isnan(lo) and np.isnan(hi)
        else:
            assert min(means) < lo < values.mean() < hi < max(means)
    assert np.isnan(bootstrap_ci(np.arange(MIN_CI_UNITS - 1.0))[0])  # as few independent pairs: no CI either
    assert np.isfinite(bootstrap_ci(np.arange(float(MIN_CI_UNITS)))[0])


def test_the_footnote_says_why_there_is_no_ci() -> None:
    from fusionbench.report.data import Groups

    three = Groups({f"p{i}": str(i % 3) for i in range(30)}, "series", "one subject")
    assert three.too_few and "no CI: 3 series groups" in three.ci_sentence() and "bootstrap," not in three.ci_sentence()
    ten = Groups({f"p{i}": str(i % 10) for i in range(30)}, "series")
    assert not ten.too_few and ten.ci_sentence() == (
        "95 % CIs (HTML, CSV): bootstrap, resampling 10 series groups over the table's pairs; a cell over fewer "
        "pairs resamples its own pairs' groups, and has none (n/a) with fewer than 5 of them or over an infinite "
        "score.")


def test_a_pair_with_an_infinite_score_is_left_out_of_the_rank_tests() -> None:
    """The store keeps PSNR of F = A = B as inf since session 37: ``inf - inf`` gave Wilcoxon a NaN p-value, which
    Holm turned into 0 and a "worse" verdict from no evidence.  Such a pair is left out, as a NaN one is."""
    import numpy as np
    import pandas as pd

    from fusionbench.report.stats import complete_blocks, versus_reference

    rows = [("p0", m, float("inf")) for m in ("a", "b", "c")]
    rows += [(f"p{i}", m, v + i) for i in range(1, 7) for m, v in (("a", 30.0), ("b", 29.0), ("c", 31.0))]
    scores = pd.DataFrame([("ds", p, m, "PSNR", v) for p, m, v in rows],
                          columns=["dataset", "pair", "method", "metric", "value"])
    matrix = complete_blocks(scores, "PSNR")
    assert list(matrix.index) == [f"p{i}" for i in range(1, 7)] and np.isfinite(matrix.to_numpy()).all()
    table = versus_reference(matrix, "a", higher_is_better=True).set_index("method")
    assert table["p"].notna().all() and table.loc["b", "verdict"] in ("better", "no significant difference")
    assert table.loc["b", "n_pairs"] == 6


def test_the_interval_of_a_mean_over_an_infinite_score_is_not_that_of_the_finite_ones() -> None:
    """A mean over inf is inf; an interval of the finite values alone ([14.8, 16.4] beside inf) did not contain
    it.  No interval then, with or without groups."""
    import numpy as np

    from fusionbench.report.stats import bootstrap_ci, group_bootstrap_ci

    values = np.array([np.inf, 15.0, 16.0, 14.0, 15.5, 16.5, 14.5])
    assert all(np.isnan(bootstrap_ci(values)))
    assert all(np.isnan(group_bootstrap_ci(values, np.array(list("abcdefg")))))
    assert all(np.isnan(group_bootstrap_ci(values, np.array(list("aabbccd")))))
    assert np.isfinite(bootstrap_ci(values[1:])).all()
