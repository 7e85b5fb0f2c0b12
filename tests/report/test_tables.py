"""Table formatting: bold/underline placement by metric direction, arrows, LaTeX and CSV."""
from __future__ import annotations

import io

import pandas as pd
import pytest

from fusionbench.metric_registry import METRICS, register_metric
from fusionbench.report.tables import build_table, to_csv, to_latex, to_markdown


@pytest.fixture
def scores():
    # EN (higher is better) and a lower-is-better metric registered for the test, and removed after it: a
    # test metric left in the registry broke the metric tests that run every preset in the same process
    register_metric("TEST_LOW", lambda f, a, b: 0.0, higher_is_better=False, convention="TEST_LOW: test metric")
    rows = []
    for pair in ("p1", "p2"):
        for method, en, low in (("average", 5.0, 3.0), ("dwt", 7.0, 1.0), ("maximum", 6.0, 2.0)):
            rows += [("ds", pair, method, "EN", en), ("ds", pair, method, "TEST_LOW", low)]
    yield pd.DataFrame(rows, columns=["dataset", "pair", "method", "metric", "value"])
    METRICS.remove("TEST_LOW")


def test_bold_best_underline_second_by_direction(scores) -> None:
    table = build_table(scores, "ds", ["average", "dwt", "maximum"], ["EN", "TEST_LOW"], title="T", footnote="F")
    places = table.placements()
    assert places[("dwt", "EN")] == "best" and places[("maximum", "EN")] == "second"
    assert ("average", "EN") not in places
    assert places[("dwt", "TEST_LOW")] == "best" and places[("maximum", "TEST_LOW")] == "second"  # lower is better
    md = to_markdown(table)
    assert "| Method | EN ↑ | TEST_LOW ↓ |" in md
    assert "| DWT | **7.0000 ± 0.0000** | **1.0000 ± 0.0000** |" in md
    assert "| Maximum | <u>6.0000 ± 0.0000</u> | <u>2.0000 ± 0.0000</u> |" in md
    assert "| Average | 5.0000 ± 0.0000 | 3.0000 ± 0.0000 |" in md
    assert md.rstrip().endswith("<sub>F</sub>")


def test_latex_is_booktabs_with_marks(scores) -> None:
    tex = to_latex(build_table(scores, "ds", ["average", "dwt", "maximum"], ["EN", "TEST_LOW"], title="T",
                               highlight="dwt"))
    assert tex.startswith("% packages: booktabs, adjustbox\n")
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"\multicolumn{2}{c}{EN $\uparrow$}" in tex and r"TEST\_LOW $\downarrow$" in tex
    assert r"{l" + r"r@{\,$\pm$\,}r" * 2 + "}" in tex  # mean and std right-aligned in their own columns
    assert r"\textbf{DWT} & \textbf{7.0000} & \textbf{0.0000} & \textbf{1.0000} & \textbf{0.0000} \\" in tex
    assert r"Maximum & \underline{6.0000} & \underline{0.0000}" in tex
    mean_only = to_latex(build_table(scores, "ds", ["dwt"], ["EN"], title="T"), mean_only=True)
    assert r"DWT & 7.0000 \\" in mean_only and r"\pm" not in mean_only.split(r"\midrule")[1]  # one method: no marks
    tex.encode("ascii")


def test_latex_escape_is_ascii() -> None:
    from fusionbench.report.tables import latex_escape

    text = latex_escape("Δ mean ± std_1 & 50 % #2 α→β ≈ 10^9 “q” naïve")
    text.encode("ascii")
    assert r"$\Delta$" in text and r"\_" in text and r"\&" in text and r"\%" in text and r"\#" in text
    assert r"$\alpha$" in text and r"\^{}" in text and "naive" in text


def test_csv_has_statistics(scores) -> None:
    frame = pd.read_csv(io.StringIO(to_csv(build_table(scores, "ds", ["dwt"], ["EN"], title="T"))))
    row = frame.iloc[0]
    assert row["mean"] == 7.0 and row["n"] == 2 and row["ci95_low"] == 7.0
    assert pd.isna(row["place"])  # a column of one method has no best


def test_ties_share_a_place(scores) -> None:
    scores = scores.copy()
    scores.loc[(scores["method"] == "maximum") & (scores["metric"] == "EN"), "value"] = 7.0
    places = build_table(scores, "ds", ["average", "dwt", "maximum"], ["EN"], title="T").placements()
    assert places[("dwt", "EN")] == places[("maximum", "EN")] == "best"
    assert places[("average", "EN")] == "second"


def test_statistics_do_not_depend_on_the_order_the_rows_were_stored_in() -> None:
    """A run's workers finish (method, pair) tasks in any order; the report's std and bootstrap CI must not follow it."""
    import numpy as np

    from fusionbench.report.data import ReportData

    rng = np.random.default_rng(3)
    pairs = [f"p{i:02d}" for i in range(30)]
    rows = [("ds", p, m, "EN", float(v)) for m in ("average", "dwt") for p, v in zip(pairs, rng.normal(5, 1, 30))]
    frame = pd.DataFrame(rows, columns=["dataset", "pair", "method", "metric", "value"])
    outputs = pd.DataFrame(columns=["dataset", "pair", "method", "path", "seconds"])

    def table(scores: pd.DataFrame):
        data = ReportData(db=None, scores=scores, outputs=outputs, runs=pd.DataFrame(), failures=pd.DataFrame())
        return build_table(data.scores, "ds", ["average", "dwt"], ["EN"], title="T")

    first = table(frame)
    for seed in (0, 1):
        again = table(frame.sample(frac=1.0, random_state=seed))
        assert first.std.equals(again.std)  # bit for bit: the same float sums in the same order
        assert first.ci_low.equals(again.ci_low) and first.ci_high.equals(again.ci_high)
    # without the fixed order the bootstrap does move (so this test can fail)
    shuffled = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    raw = build_table(shuffled, "ds", ["average", "dwt"], ["EN"], title="T")
    assert not (raw.ci_low.equals(first.ci_low) and raw.ci_high.equals(first.ci_high))


def test_a_mean_over_fewer_pairs_is_marked_and_its_n_given(scores) -> None:
    """A metric undefined on some pairs (stored as NULL) gives a mean over fewer pairs: the cell is marked † in
    Markdown and LaTeX and the footnote names it with its n; complete tables carry no mark."""
    complete = build_table(scores, "ds", ["average", "dwt"], ["EN", "TEST_LOW"], title="T", footnote="F")
    assert complete.pairs == 2 and complete.short_cells() == {} and complete.short_note() == ""
    assert "†" not in to_markdown(complete) and "dagger" not in to_latex(complete)
    holed = scores.copy()
    holed.loc[(holed["method"] == "dwt") & (holed["metric"] == "EN") & (holed["pair"] == "p2"), "value"] = float("nan")
    table = build_table(holed, "ds", ["average", "dwt"], ["EN", "TEST_LOW"], title="T", footnote="F")
    assert table.short_cells() == {("dwt", "EN"): 1}
    md = to_markdown(table)
    assert "| DWT | **7.0000 ± –**† | **1.0000 ± 0.0000** |" in md  # EN over one pair: no std
    assert md.rstrip().endswith("<sub>F † Mean over fewer than the table's 2 pairs (the metric undefined on the "
                                "others, or the method failed on them): DWT EN: n = 1.</sub>")
    tex = to_latex(table)
    assert r"\textbf{7.0000}$^\dagger$" in tex and r"$^\dagger$ Mean over fewer than the table's 2 pairs" in tex
    csv = pd.read_csv(io.StringIO(to_csv(table))).set_index(["method", "metric"])
    assert csv.loc[("dwt", "EN"), "n"] == 1 and csv.loc[("average", "EN"), "n"] == 2


def test_a_cell_without_a_value_says_why(scores) -> None:
    """A cell shown – is explained in the footnote: every score NaN (the metric undefined on every pair) or no
    score at all (not computed for that method); before, a – stood without a word."""
    undefined = scores.copy()
    undefined.loc[(undefined["method"] == "dwt") & (undefined["metric"] == "EN"), "value"] = float("nan")
    unscored = undefined[~((undefined["method"] == "average") & (undefined["metric"] == "TEST_LOW"))]
    table = build_table(unscored, "ds", ["average", "dwt"], ["EN", "TEST_LOW"], title="T", footnote="F")
    assert table.empty_cells() == {("dwt", "EN"): True, ("average", "TEST_LOW"): False}
    md = to_markdown(table)
    assert "| DWT | – |" in md and "– No value, the metric is undefined on every pair: DWT EN." in md
    assert "– No value, not scored (not computed for this method, or its scoring failed): Average TEST_LOW." in md
    assert "-- No value, the metric is undefined" in to_latex(table)
    assert build_table(scores, "ds", ["average", "dwt"], ["EN"], title="T").short_note() == ""


def test_marks_follow_the_printed_values_and_tiny_values_are_not_printed_as_zero(scores) -> None:
    """Before: Nabf means of 2.8e-8 and 0 both printed 0.0000, one bold and one underlined; a main table of one
    method marked every cell best."""
    scores = scores.copy()
    low = scores["metric"] == "TEST_LOW"
    scores.loc[low & (scores["method"] == "average"), "value"] = 2.8e-8
    scores.loc[low & (scores["method"] == "dwt"), "value"] = 0.0
    scores.loc[low & (scores["method"] == "maximum"), "value"] = 1.00001  # prints 1.0000 like ...
    en = scores["metric"] == "EN"
    scores.loc[en & (scores["method"] == "maximum"), "value"] = 7.00002  # ... and 7.0000 ties DWT's 7.0
    table = build_table(scores, "ds", ["average", "dwt", "maximum"], ["EN", "TEST_LOW"], title="T")
    places = table.placements()
    assert places[("dwt", "TEST_LOW")] == "best" and places[("average", "TEST_LOW")] == "second"
    assert places[("dwt", "EN")] == places[("maximum", "EN")] == "best"  # equal as printed: a shared place
    assert places[("average", "EN")] == "second"
    md = to_markdown(table)
    assert "| Average | <u>5.0000 ± 0.0000</u> | <u>2.80e-08 ± 0.0000</u> |" in md
    assert "| DWT | **7.0000 ± 0.0000** | **0.0000 ± 0.0000** |" in md
    assert r"\underline{2.80e-08}" in to_latex(table)
    alone = build_table(scores, "ds", ["dwt"], ["EN", "TEST_LOW"], title="T")
    assert alone.placements() == {} and "**" not in to_markdown(alone).split("\n", 1)[1]


def test_table_cell_is_mean_and_sample_std() -> None:
    """Values 1, 2, 6 over three pairs: mean 3 (median would be 2), std ddof=1 = sqrt(14/2) = 2.6458
    (ddof=0 would be sqrt(14/3) = 2.1602) -- the module docstring's ``mean ± std (ddof=1)``."""
    from fusionbench.report.tables import build_table, to_markdown

    scores = pd.DataFrame([("ds", p, "dwt", "EN", v) for p, v in (("p1", 1.0), ("p2", 2.0), ("p3", 6.0))],
                          columns=["dataset", "pair", "method", "metric", "value"])
    table = build_table(scores, "ds", ["dwt"], ["EN"], title="T", bootstrap=False)
    assert table.mean.loc["dwt", "EN"] == 3.0
    assert table.std.loc["dwt", "EN"] == pytest.approx(7.0 ** 0.5)
    assert "| DWT | 3.0000 ± 2.6458 |" in to_markdown(table)  # one method: no mark


def test_an_infinite_mean_has_no_place_and_the_html_marks_follow_its_printed_decimals(scores) -> None:
    """Found in review: an infinite mean (an export's PSNR with F = A = B) crashed the marks; the HTML table
    printed 4 decimals where the marks compare 3 (SD 35.1234 and 35.1231 both "best", shown different)."""
    from fusionbench.report.sections.per_dataset import _html_metric_table

    rows = [("ds", p, m, "EN", v) for p in ("p1", "p2") for m, v in (("average", 35.1234), ("dwt", 35.1231),
                                                                      ("maximum", 30.0))]
    rows += [("ds", p, m, "PSNR", v) for p in ("p1", "p2") for m, v in (("average", float("inf")), ("dwt", 30.0),
                                                                        ("maximum", 20.0))]
    frame = pd.DataFrame(rows, columns=["dataset", "pair", "method", "metric", "value"])
    table = build_table(frame, "ds", ["average", "dwt", "maximum"], ["EN", "PSNR"], title="T", bootstrap=False)
    places = table.placements()
    # the infinite mean is the best PSNR (until session 37 it had no place, and dwt's 30 was marked best)
    assert places[("average", "PSNR")] == "best" and places[("dwt", "PSNR")] == "second"
    assert places[("average", "EN")] == places[("dwt", "EN")] == "best"  # 35.123 both, as printed
    page = _html_metric_table(table)
    assert page.count(">35.123<") == 2 and ">35.1234<" not in page  # (data-v keeps the full value to sort by)
    # an infinite mean is a value, printed inf (session 37: "–", and the footnote called it undefined)
    assert "| Average | **35.123 ± 0.000** | **inf ± –** |" in to_markdown(table)
    assert "undefined on every pair" not in table.short_note() and r"$\infty$" in to_latex(table)
    assert "inf: a mean over an infinite score (PSNR where F = A = B), whose std and 95 % CI are undefined " \
           "(± –, n/a): Average PSNR." in table.short_note()


def test_a_metric_best_inside_its_range_is_not_ranked() -> None:
    """Found in review: Q_SF.liu (signed, best at 0) was marked "lower is better", so the most negative value (a
    constant F, −1) was bold."""
    rows = [("ds", p, m, "Q_SF.liu", v) for p in ("p1", "p2") for m, v in (("average", -1.0), ("dwt", -0.02),
                                                                            ("maximum", 0.1))]
    frame = pd.DataFrame(rows, columns=["dataset", "pair", "method", "metric", "value"])
    table = build_table(frame, "ds", ["average", "dwt", "maximum"], ["Q_SF.liu"], title="T", bootstrap=False)
    assert table.placements() == {} and table.arrows() == {"Q_SF.liu": "·"}
    md = to_markdown(table)
    assert "| Method | Q_SF.liu · |" in md and "**" not in md.split("\n", 1)[1]


def test_the_confidence_interval_table_prints_the_main_tables_decimals() -> None:
    """The HTML table of means with bootstrap CIs prints each metric at the main table's decimals (3 for means
    from 10 to 100: it printed 2, ``20.02 [17.65, 22.81]`` beside the main table's 20.023; the report audit,
    session 33)."""
    from fusionbench.report.sections.per_dataset import _html_ci_table

    rows = [("ds", f"p{i}", m, "SF", v + i) for i in range(8) for m, v in (("average", 20.0234), ("dwt", 5.01234))]
    rows += [("ds", f"p{i}", m, "EN", 4.5 + 0.01 * i) for i in range(8) for m in ("average", "dwt")]
    scores = pd.DataFrame(rows, columns=["dataset", "pair", "method", "metric", "value"])
    table = build_table(scores, "ds", ["average", "dwt"], ["SF", "EN"], title="T",
                        groups={f"p{i}": f"g{i}" for i in range(8)})
    page = _html_ci_table(table)
    assert f">{table.mean.loc['average', 'SF']:.3f} [" in page and f">{table.mean.loc['dwt', 'SF']:.3f} [" in page
    assert f">{table.mean.loc['average', 'EN']:.4f} [" in page
    assert f"{table.ci_low.loc['average', 'SF']:.3f}, {table.ci_high.loc['average', 'SF']:.3f}]" in page


def test_the_footnotes_luma_recipe_is_the_one_the_scores_use() -> None:
    """Every table's footnote states the luma conversion precisely enough to reproduce each printed digit (it
    said "(round, clip)", and an exact-arithmetic reading of that changed the last digit of 27-51 printed means;
    the report audit, session 33): the recipe as written gives :func:`luma_uint8` bit for bit."""
    import numpy as np

    from fusionbench.colour import luma_uint8
    from fusionbench.report.tables import convention_footnote

    note = convention_footnote(["EN"], "test")
    assert "0.299 R + 0.587 G + 0.114 B of the image in [0, 1] (uint8 ÷ 255 in float32), in float64 kept as " \
           "float32; ×255, rounded half to even, clipped" in note
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    rgb[0, :8] = [[0, 0, 0], [255, 255, 255], [1, 2, 3], [128, 128, 128], [255, 0, 0], [0, 255, 0], [0, 0, 255],
                  [17, 200, 99]]
    y = ((rgb.astype(np.float32) / 255).astype(np.float64) @ np.array([0.299, 0.587, 0.114])).astype(np.float32)
    recipe = np.clip(np.round(y.astype(np.float64) * 255), 0, 255).astype(np.uint8)
    assert np.array_equal(recipe, luma_uint8(rgb))


def test_the_std_of_one_pair_is_not_shown_as_zero(scores) -> None:
    """ddof=1 over one pair is undefined: "± –" in Markdown and HTML, "--" in LaTeX (session 37's audit: the tables
    and ``summary.md`` printed ``± 0.0000``, which reads as no spread)."""
    one = scores[scores["pair"] == "p1"]
    table = build_table(one, "ds", ["average", "dwt"], ["EN"], title="T", bootstrap=False)
    assert "| Average | <u>5.0000 ± –</u> |" in to_markdown(table)
    assert r"Average & \underline{5.0000} & \underline{--} \\" in to_latex(table)
