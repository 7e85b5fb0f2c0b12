"""Q_SF (Zheng et al. 2007, as Z. Liu's imageFusionMetrics ``metricZheng.m`` computes it).

``q_sf_reference.csv`` holds the signed rSFe that ``metricZheng.m`` (commit d6f7f1a of
zhengliu6699/imageFusionMetrics) returned under GNU Octave 7.3 on the 12 square calibration triples and the
9 non-square and degenerate crops (its header says exactly how).  ``Q_SF.liu`` must equal them to round-off
(measured worst 2.3e-15 relative: the sums of squared differences are sums of integers, exact on both sides;
held to ``calibration.tolerance``, 1e-9, the floor of 3× the measured worst), ``Q_SF`` is its absolute value.
The property tests check the neighbour pairs counted at the borders, the diagonal weight and the degenerate
values from the definition, without the reference.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

import fusionbench.metrics as M
from fusionbench.metric_registry import metric_info, resolve_metrics
from fusionbench.metrics import calibration as C
from fusionbench.metrics.synthetic import structured_pair, triple

HERE = Path(__file__).parent
CROPS = {c["id"]: c for c in json.loads((HERE / "nonsquare_reference.json").read_text())["triples"]}
W = math.sqrt(2.0) / 2.0


def _records() -> list[dict]:
    lines = [ln for ln in (HERE / "q_sf_reference.csv").read_text().splitlines() if not ln.startswith("#")]
    return [{"triple": r["triple"], "shape": (int(r["rows"]), int(r["cols"])), "value": float(r["rSFe"])}
            for r in csv.DictReader(lines)]


RECORDS = _records()


def _images(metrics_ref, tid: str):
    ref_dir, data = metrics_ref
    return C.crop_triple_images(ref_dir, data, CROPS[tid]) if tid in CROPS else C.triple_images(ref_dir, data, tid)


def test_the_reference_file_covers_every_calibration_triple(metrics_ref) -> None:
    square = {t["id"] for t in metrics_ref[1]["triples"]}
    assert len(RECORDS) == 21 and {r["triple"] for r in RECORDS} == square | set(CROPS)


@pytest.mark.calibration
@pytest.mark.parametrize("record", RECORDS, ids=[r["triple"] for r in RECORDS])
def test_matches_metric_zheng_under_octave(record: dict, metrics_ref) -> None:
    F, A, B = _images(metrics_ref, record["triple"])
    assert F.shape == record["shape"]
    signed = M.compute("Q_SF.liu", F, A, B)
    assert C.within_tolerance(signed, record["value"], C.tolerance("Q_SF.liu")), (record, signed)
    assert M.compute("Q_SF", F, A, B) == abs(signed)


@pytest.mark.calibration
def test_the_tolerance_is_the_round_off_floor_of_three_times_the_measured(metrics_ref) -> None:
    """calibration.py's policy: MARGIN × the measured worst, never below ROUNDOFF; measured 2.3e-15."""
    worst = max(C.relative_difference(M.compute("Q_SF.liu", *_images(metrics_ref, r["triple"])), r["value"])
                for r in RECORDS)
    assert worst <= 1e-14 and C.MARGIN * worst <= C.ROUNDOFF
    assert C.tolerance("Q_SF.liu") == C.tolerance("Q_SF") == C.ROUNDOFF


# ------------------------------------------------------------------------ variants the calibration tells apart
def _pairs(x: np.ndarray, wrap: bool) -> list[np.ndarray]:
    """Neighbour differences in the four directions; with ``wrap`` the circular ones too (no crop)."""
    if wrap:
        return [x - np.roll(x, s, axis=(0, 1)) for s in ((0, -1), (-1, 0), (1, 1), (1, -1))]
    return [x[:, :-1] - x[:, 1:], x[:-1, :] - x[1:, :], x[1:, 1:] - x[:-1, :-1], x[1:, :-1] - x[:-1, 1:]]


def _variant(F, A, B, *, wrap=False, per_count=False, weight=W, reference="max") -> float:
    f, a, b = (x.astype(np.float64) for x in (F, A, B))

    def sf2(diffs):
        terms = [(d * d).sum() / (d.size if per_count else f.size) for d in diffs]
        return terms[0] + terms[1] + weight * (terms[2] + terms[3])

    da, db = _pairs(a, wrap), _pairs(b, wrap)
    comb = {"max": lambda x, y: np.maximum(abs(x), abs(y)), "sum": lambda x, y: abs(x) + abs(y)}[reference]
    sf_f, sf_r = math.sqrt(sf2(_pairs(f, wrap))), math.sqrt(sf2([comb(x, y) for x, y in zip(da, db)]))
    return (sf_f - sf_r) / sf_r


VARIANTS = {
    "circular neighbours kept (no crop)": {"wrap": True},
    "sums divided by their numbers of differences, not M·N": {"per_count": True},
    "√2/2 on the differences (1/2 on the squares)": {"weight": 0.5},
    "diagonals unweighted": {"weight": 1.0},
    "SF_R from |ΔA| + |ΔB|": {"reference": "sum"},
}


@pytest.mark.calibration
@pytest.mark.parametrize("changes", VARIANTS.values(), ids=list(VARIANTS))
def test_calibration_tells_the_variant_apart(changes: dict, metrics_ref) -> None:
    """The variant code with the documented convention equals ours; each variant fails ≥ 3 of the 21 records
    (the non-degenerate ones: F constant or F = A = B give −1 and 0 whatever the variant)."""
    failed = 0
    for r in RECORDS:
        F, A, B = _images(metrics_ref, r["triple"])
        assert _variant(F, A, B) == pytest.approx(M.compute("Q_SF.liu", F, A, B), rel=1e-14, abs=1e-15)
        failed += not C.within_tolerance(_variant(F, A, B, **changes), r["value"], C.tolerance("Q_SF.liu"))
    assert failed >= 3, f"{changes} passes {len(RECORDS) - failed} of {len(RECORDS)} records"


# ----------------------------------------------------------------------------------------- properties
def test_registered_as_documented() -> None:
    q, liu = metric_info("Q_SF"), metric_info("Q_SF.liu")
    assert "Q_SF" in resolve_metrics("standard") and "Q_SF" not in resolve_metrics("paper")
    assert liu.groups == () and liu.profile == "liu" and liu.options == {"signed": True}
    assert not q.higher_is_better and not liu.higher_is_better
    assert q.score_range == (0.0, math.inf) and liu.score_range == (-1.0, math.inf)
    assert q.version == liu.version == "1"
    assert "rank with Q_SF" in liu.convention
    from fusionbench.metric_registry import METRICS

    assert "Q_SF" not in METRICS.hints  # it said "not implemented"


@pytest.mark.parametrize("rule", ["avg", "max"])
def test_q_sf_is_the_absolute_value_and_symmetric(rule: str) -> None:
    f, a, b = triple(64, 1, rule)
    signed = M.compute("Q_SF.liu", f, a, b)
    assert -1 < signed < 0  # averaging and max-picking lose detail against the max-abs-difference reference
    assert M.compute("Q_SF", f, a, b) == abs(signed)
    assert M.compute("Q_SF.liu", f, b, a) == signed


POSITIONS = {"top-left": (0, 0), "top-right": (0, 16), "bottom-left": (10, 0), "bottom-right": (10, 16),
             "top": (0, 8), "bottom": (10, 8), "left": (5, 0), "right": (5, 16), "inside": (1, 1)}


@pytest.mark.parametrize("where", POSITIONS)
def test_one_impulse_counts_the_neighbour_pairs_inside_the_image(where: str) -> None:
    """A single bright pixel on black is in one difference per neighbour pair inside the image.  Inside: 2 row,
    2 column, 2 main- and 2 secondary-diagonal pairs, SF² ∝ 4 + 4·(√2/2); on an edge 3 + 2·(√2/2); at a corner
    1 row, 1 column and one diagonal pair: 2 + √2/2 (the top-left and bottom-right corners a main-diagonal
    pair (i, j)−(i−1, j−1), the other two a secondary one (i, j)−(i−1, j+1)).  Circular neighbours would give
    4 + 4·(√2/2) everywhere.  A = the impulse inside an 11×17 image, B = black, F = the impulse at ``where``:
    rSFe = √(n_F/n_A) − 1."""
    shape = (11, 17)
    a, b, f = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    a[5, 7] = f[POSITIONS[where]] = 200
    n_f = {"top-left": 2 + W, "top-right": 2 + W, "bottom-left": 2 + W, "bottom-right": 2 + W,
           "inside": 4 + 4 * W}.get(where, 3 + 2 * W)
    assert M.compute("Q_SF.liu", f, a, b) == pytest.approx(math.sqrt(n_f / (4 + 4 * W)) - 1, rel=1e-13)


def test_every_direction_is_divided_by_m_n() -> None:
    """Each direction's sum is divided by M·N, not by its number of differences (M(N−1) row, (M−1)N column,
    (M−1)(N−1) diagonal pairs), so differences in different directions weigh the same on a non-square image.
    F = a column of 90 beside black (M row pairs, no column pair, M−1 pairs per diagonal) against A = one
    90 at a corner (2 + √2/2): rSFe + 1 = √((M + 2(M−1)·√2/2) / (2 + √2/2))."""
    shape = (6, 9)
    b = np.zeros(shape, np.uint8)
    f = np.zeros(shape, np.uint8)
    f[:, 0] = 90
    n_f = shape[0] + W * 2 * (shape[0] - 1)
    for r, c in ((0, 0), (0, 8), (5, 0), (5, 8)):
        a = np.zeros(shape, np.uint8)
        a[r, c] = 90
        assert M.compute("Q_SF.liu", f, a, b) == pytest.approx(math.sqrt(n_f / (2 + W)) - 1, rel=1e-13), (r, c)


def test_full_contrast_differences_are_exact() -> None:
    """Differences of ±255 everywhere (the int16/int32 range of the sums): A a 0/255 checkerboard (every row and
    column pair 255, diagonals 0), B black, F 0/255 vertical stripes (row and both diagonal pairs 255, column
    pairs 0), on a 2×2 and a non-square image."""
    for m, n in ((2, 2), (40, 71)):
        yy, xx = np.mgrid[:m, :n]
        a = ((yy + xx) % 2 * 255).astype(np.uint8)
        f = (xx % 2 * 255).astype(np.uint8)
        n_f = m * (n - 1) + 2 * W * (m - 1) * (n - 1)
        n_a = m * (n - 1) + (m - 1) * n
        assert M.compute("Q_SF.liu", f, a, np.zeros_like(a)) == pytest.approx(math.sqrt(n_f / n_a) - 1, rel=1e-14)


def test_f_equal_to_identical_sources_scores_zero() -> None:
    """F = A = B: max(|ΔA|, |ΔB|) = |ΔF| at every pair, so SF_R = SF_F and rSFe = 0 (exactly: the same sums)."""
    a, _ = structured_pair(64, 3)
    assert M.compute("Q_SF.liu", a, a, a) == 0.0 and M.compute("Q_SF", a, a, a) == 0.0


def test_the_max_abs_difference_fusion_of_dominated_sources_scores_zero() -> None:
    """SF_R is the SF of an image whose every neighbour difference is the larger source one: when A's difference
    is the larger at every pair (B = A // 2, B = 255 − A, B constant), F = A is that image and scores 0,
    while F = B scores SF_B/SF_A − 1 (the same image reversed: 0 too)."""
    a, _ = structured_pair(64, 3)
    for b in (a // 2, 255 - a, np.full_like(a, 40)):
        assert all(np.all(abs(db) <= abs(da)) for da, db in zip(_pairs(a.astype(float), False),
                                                                   _pairs(b.astype(float), False)))
        assert M.compute("Q_SF.liu", a, a, b) == pytest.approx(0.0, abs=1e-15)
    assert M.compute("Q_SF.liu", 255 - a, a, 255 - a) == pytest.approx(0.0, abs=1e-15)
    half = M.compute("Q_SF.liu", a // 2, a, a // 2)
    assert -0.6 < half < -0.4  # about half the differences of A


def test_grey_level_shift_of_f_changes_nothing() -> None:
    f, a, b = triple(64, 2)
    shifted = (f.astype(np.int64) // 2 + 60).astype(np.uint8)
    assert M.compute("Q_SF.liu", shifted, a, b) == M.compute("Q_SF.liu", (shifted - 60).astype(np.uint8), a, b)


@pytest.mark.parametrize("level", [0, 128, 255])
def test_a_constant_fused_image_scores_minus_one(level: int) -> None:
    _, a, b = triple(64, 4)
    f = np.full_like(a, level)
    assert M.compute("Q_SF.liu", f, a, b) == -1.0 and M.compute("Q_SF", f, a, b) == 1.0


@pytest.mark.parametrize("name", ["Q_SF", "Q_SF.liu"])
@pytest.mark.parametrize("fused", ["textured", "constant"])
def test_constant_sources_are_undefined(name: str, fused: str) -> None:
    """SF_R = 0: metricZheng.m divides by it (±Inf, or NaN with a constant F); fusionbench gives NaN."""
    f, a, _ = triple(64, 4)
    if fused == "constant":
        f = np.full_like(f, 9)
    for c1, c2 in ((0, 0), (77, 77), (12, 200)):
        with pytest.warns(M.UndefinedMetricWarning, match="both sources are constant"):
            assert math.isnan(M.compute(name, f, np.full_like(a, c1), np.full_like(a, c2)))
    assert math.isfinite(M.compute(name, f, a, np.full_like(a, 12)))  # one constant source is enough
