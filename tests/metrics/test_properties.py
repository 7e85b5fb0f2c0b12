"""Property tests for every registered preset: finite values, score ranges, symmetry, identities."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import fusionbench.metrics as M
from fusionbench.metrics import functional as F
from fusionbench.metric_registry import list_metrics, metric_info

from fusionbench.metrics.synthetic import structured_pair, triple

# the presets that score grey images (every one but ChromaErr, which reads colour: tests/metrics/test_chroma.py)
ALL = [n for n in list_metrics() if metric_info(n).colour == "y601"]
NEEDS_LARGE = {"MS_SSIM"}  # undefined (NaN) at ≤ 160 px
# Nabf.tang: Tang's argument-order bug treats A as the fused image.
# Qc: the reference clips λ = σ_AF/(σ_AF+σ_BF) to 1 where λ > 1 but sets the score to 0 where
# λ < 0, so swapping A and B (λ → 1 − λ) changes the value wherever the covariances differ in sign.
# VIFF: where the two gains tie (both 0: F flat in the window, or anti-correlated with both sources) B's terms
# are kept (MEFB's rule), so B's variance enters the denominator there (session 37 audit F11; on triple(64, 2),
# the symmetry test's input, no window ties and the two orders agree, which the old list relied on).
ASYMMETRIC = {"Nabf.tang", "Qc", "Qc.mefb", "VIFF", "VIFF.mefb"}


def _score(name, f, a, b):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", M.UndefinedMetricWarning)
        return M.compute(name, f, a, b)


def test_the_full_set_is_registered() -> None:
    expected = {"AG", "EN", "SF", "SD", "CC", "MI", "SCD", "PSNR", "MSE", "RMSE", "Qabf", "Nabf", "SSIM",
                "MS_SSIM", "MEF_SSIM", "VIFF", "VIFp_sum", "FMI_pixel", "FMI_dct", "FMI_w", "FMI_edge", "Qcb",
                "Qcv", "Qc", "Qy", "Q_S", "Q_W", "Q_E", "NMI", "TE", "Qncie", "Qp", "CE", "EI", "Q_SF"}
    assert expected <= set(ALL)
    assert {n for n in ALL if "all" in metric_info(n).groups} >= expected


@pytest.mark.parametrize("name", ALL)
def test_finite_and_in_range_on_random_images(name: str) -> None:
    r = np.random.default_rng(1)
    n = 176 if name.split(".")[0] in NEEDS_LARGE else 48
    f, a, b = (r.integers(0, 256, (n, n), dtype=np.uint8) for _ in range(3))
    v = _score(name, f, a, b)
    assert math.isfinite(v), f"{name} gave {v}"
    lo, hi = metric_info(name).score_range
    assert lo - 1e-9 <= v <= hi + 1e-9, f"{name}={v} outside {lo, hi}"


@pytest.mark.parametrize("rule", ["avg", "max"])
@pytest.mark.parametrize("name", ALL)
def test_in_range_on_structured_images(name: str, rule: str) -> None:
    n = 176 if name.split(".")[0] in NEEDS_LARGE else 64
    f, a, b = triple(n, 0, rule)
    v = _score(name, f, a, b)
    lo, hi = metric_info(name).score_range
    assert math.isfinite(v) and lo - 1e-9 <= v <= hi + 1e-9, f"{name}={v} outside {lo, hi}"


def _range_cases(n: int):
    """Inputs beyond the random and structured ones: an inverted F (against one source, against the average of
    two, of a max fusion), constant sources (non-zero and zero), binary images, a dark and a bright F, a noise F."""
    r = np.random.default_rng(7)
    f, a, b = triple(n, 2)
    fm, am, bm = triple(n, 1, "max")
    yield "inverted", (255 - f, a, b)
    yield "inverted max", (255 - fm, am, bm)
    yield "B=A, F=255-A", (255 - a, a, a)
    yield "constant A", (f, np.full_like(a, 77), b)
    yield "zero B", (f, a, np.zeros_like(b))
    yield "binary", tuple((r.integers(0, 2, (n, n)) * 255).astype(np.uint8) for _ in range(3))
    yield "dark F", (f // 16, a, b)
    yield "bright F", (np.minimum(255, f.astype(int) * 3).astype(np.uint8), a, b)
    yield "noise F", (r.integers(0, 256, (n, n), dtype=np.uint8), a, b)


@pytest.mark.parametrize("name", ALL)
def test_in_range_on_inverted_constant_and_binary_images(name: str) -> None:
    """The declared score_range holds on harder inputs too (NaN, i.e. undefined, is allowed): the session 37 audit
    found Qc declared [0, 1] but negative on an inverted F (F10)."""
    n = 176 if name.split(".")[0] in NEEDS_LARGE else 64
    lo, hi = metric_info(name).score_range
    for case, (f, a, b) in _range_cases(n):
        v = _score(name, f, a, b)
        assert math.isnan(v) or lo - 1e-9 <= v <= hi + 1e-9, f"{name}={v} outside {lo, hi} on {case}"


def test_qc_is_negative_on_an_inverted_fused_image_and_declared_minus_one_to_one() -> None:
    """Qc = mean of λ·SSIM_AF + (1 − λ)·SSIM_BF (λ in [0, 1]; the reference's 0 or 1 outside): in [−1, 1]
    (Cvejić et al. 2005, SSIM in [−1, 1]).  An F inverted against its sources scores below 0, which the
    old declared range [0, 1] excluded."""
    f, a, b = triple(64, 2)
    for name in ("Qc", "Qc.mefb"):
        assert metric_info(name).score_range == (-1.0, 1.0)
        v = M.compute(name, 255 - f, a, b)
        assert -1.0 <= v < -0.3, v  # −0.3617
        w = M.compute(name, 255 - a, a, a)
        assert -1.0 <= w < -0.7, w  # −0.7796: SSIM(A, 255 − A) in every window


@pytest.mark.parametrize("name", [n for n in ALL if metric_info(n).needs_sources and n not in ASYMMETRIC])
def test_symmetric_in_the_sources(name: str) -> None:
    n = 176 if name.split(".")[0] in NEEDS_LARGE else 64
    f, a, b = triple(n, 2)
    assert _score(name, f, a, b) == pytest.approx(_score(name, f, b, a), rel=1e-9, abs=1e-12)


def _swap_changes(f, a, b) -> set[str]:
    out = set()
    for name in ALL:
        if metric_info(name).needs_sources:
            x, y = _score(name, f, a, b), _score(name, f, b, a)
            if not (x == pytest.approx(y, rel=1e-9, abs=1e-12) or (math.isnan(x) and math.isnan(y))):
                out.add(name)
    return out


def test_the_presets_not_symmetric_are_those_the_docs_name() -> None:
    """On a max fusion (F copies flat patches of each source, so VIFF's gains tie there) exactly the presets of
    ASYMMETRIC change when A and B swap, and docs/metrics.md's "Source order" remark names each of them (it named
    Qc and Nabf.tang only before the session 37 audit, F11)."""
    from pathlib import Path

    assert _swap_changes(*triple(128, 0, "max")) == ASYMMETRIC
    text = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    remark = text.split("- **Source order.**", 1)[1].split("\n- **", 1)[0]
    for name in ASYMMETRIC:
        assert f"**{name}**" in remark or f"`{name}`" in remark, name
    assert f"{['Zero', 'One', 'Two', 'Three', 'Four', 'Five', 'Six'][len(ASYMMETRIC)]} presets are not symmetric" \
        in remark  # the count the docs give is the count measured


def test_viff_is_not_symmetric_where_the_gains_tie() -> None:
    """VIFF(F, A, B) != VIFF(F, B, A) on a max fusion (7.5e-3 relative on triple(128, 0, "max")); without a window
    where the gains tie (triple(64, 2): F flat nowhere) the two orders agree to round-off; an F made flat over a
    block where A and B differ in variance breaks the symmetry (B's variance is kept at the ties)."""
    f, a, b = triple(128, 0, "max")
    for name in ("VIFF", "VIFF.mefb"):
        x, y = M.compute(name, f, a, b), M.compute(name, f, b, a)
        assert x != y and 1e-3 < abs(x - y) / x < 2e-2, (x, y)
    f, a, b = triple(64, 2)
    assert M.compute("VIFF", f, a, b) == pytest.approx(M.compute("VIFF", f, b, a), rel=1e-12)
    f = f.copy()
    f[8:40, 8:40] = 128  # flat F: both gains 0 there, A's and B's variances differ
    x, y = M.compute("VIFF", f, a, b), M.compute("VIFF", f, b, a)
    assert abs(x - y) / x > 1e-4, (x, y)


def test_viff_keeps_b_on_ties_as_mefb(metrics_ref) -> None:
    """The tie rule is MEFB's: on syn_s0_128_max VIFF.mefb(F, A, B) equals MEFB's record to round-off, while the
    swapped order (the other tie rule) is 1.9e-3 away."""
    from fusionbench.metrics import calibration as C

    ref_dir, ref = metrics_ref
    want = next(r["value"] for r in ref["records"]
                if r["reference"] == "mefb" and r["metric"] == "VIF" and r["triple"] == "syn_s0_128_max")
    F, A, B = C.triple_images(ref_dir, ref, "syn_s0_128_max")
    assert M.compute("VIFF.mefb", F, A, B) == pytest.approx(want, rel=1e-12)
    swapped = M.compute("VIFF.mefb", F, B, A)
    assert abs(swapped - want) / want == pytest.approx(1.91e-3, rel=1e-2)


def test_tang_nabf_is_not_symmetric() -> None:
    f, a, b = triple(64, 2)
    assert _score("Nabf.tang", f, a, b) != pytest.approx(_score("Nabf.tang", f, b, a), rel=1e-6)


# value when F = A = B (a structured image).  Qp is not 1 there: the reference correlates masked
# source features with the unmasked fused features.
IDENTITY = {
    "CC": 1.0, "MSE": 0.0, "RMSE": 0.0, "CE": 0.0, "SSIM": 1.0, "MS_SSIM": 1.0, "MEF_SSIM": 1.0, "Qc": 1.0,
    "Qy": 1.0, "Q_S": 1.0, "Q_W": 1.0, "Q_E": 1.0, "VIFF": 1.0, "VIFp_sum": 2.0, "FMI_pixel": 1.0, "FMI_dct": 1.0,
    "FMI_w": 1.0, "FMI_edge": 1.0, "Nabf": 0.0, "Qcv": 0.0, "NMI": 2.0, "Qcb": 1.0,
    "PSNR": math.inf, "SCD": math.nan, "Q_SF": 0.0, "Q_SF.liu": 0.0,
}


@pytest.mark.parametrize("name", sorted(IDENTITY))
def test_identity_f_equals_a_equals_b(name: str) -> None:
    n = 176 if name in NEEDS_LARGE else 64
    a, _ = structured_pair(n, 3)
    v = _score(name, a, a, a)
    want = IDENTITY[name]
    if math.isnan(want):
        assert math.isnan(v)
    else:
        assert v == pytest.approx(want, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("name", sorted(n for n in ALL if n.split(".")[0] in {"Qc", "Qcb", "Qcv"}))
def test_undefined_where_the_reference_is_nan_on_a_constant_fused_image(name: str) -> None:
    """VIFB and MEFB give NaN for Qcb and Qcv (Liu's normalize1 divides 0 by 0 on a constant,
    non-zero image) and for Qc (λ = 0/0 in every window) on a constant fused image
    (tests/metrics/nonsquare_reference.json, triple deg_constF_97x125)."""
    _, a, b = triple(64, 5)
    with pytest.warns(M.UndefinedMetricWarning):
        assert math.isnan(M.compute(name, np.full_like(a, 128), a, b))
    assert math.isfinite(_score(name, *triple(64, 5)))


@pytest.mark.parametrize("name", ["Qy", "Qy.mefb", "FMI_w", "FMI_w.tang"])
def test_undefined_where_the_value_would_be_round_off_on_a_constant_fused_image(name: str) -> None:
    """Qy's SSIM terms (C1 = C2 = 2e-16) and FMI_w's wavelet detail windows are round-off on a constant F: version 1
    gave a value that depended on the grey level through round-off alone (Qy 0.055 at 128, 7.6e-23 at 0; FMI_w
    0.038 and 5.9e-17).  Now NaN with the warning, as Qc, at every level; a real fusion stays finite."""
    from fusionbench.metric_registry import metric_info

    f, a, b = triple(64, 5)
    for level in (0, 1, 128, 255):
        with pytest.warns(M.UndefinedMetricWarning, match="constant"):
            assert math.isnan(M.compute(name, np.full_like(a, level), a, b))
    assert math.isfinite(M.compute(name, f, a, b))
    assert metric_info(name).version == "2"


def test_te_default_follows_mefb() -> None:
    """metrics_conventions.md §6: TE = "Liu toolbox as in MEFB".  Version 1 used the correct marginals, a form no
    reference computes (11.14 on syn_s0_128_avg against MEFB's 34.01)."""
    from fusionbench.metric_registry import metric_info

    f, a, b = triple(64, 5)
    assert M.compute("TE", f, a, b) == M.compute("TE.mefb", f, a, b)
    assert metric_info("TE").options == metric_info("TE.mefb").options and metric_info("TE").version == "2"
    assert M.compute("TE", f, a, b) != pytest.approx(M.functional.tsallis_entropy(f, a, b), rel=1e-3)


def test_ce_skips_empty_fused_bins_so_it_can_be_negative() -> None:
    """CE sums p_X·log2(p_X/p_F) only over bins where p_F > 0 (VIFB/MEFB): not a KL divergence.  A posterised F
    scores below 0, inside the registered range, whose lower end is the log-sum bound −log2(e)/e."""
    from fusionbench.metric_registry import metric_info

    f, a, b = triple(64, 5)
    post = (f // 16 * 16).astype(np.uint8)
    pf = np.bincount(post.ravel(), minlength=256) / post.size
    want = 0.0
    for x in (a, b):
        px = np.bincount(x.ravel(), minlength=256) / x.size
        m = (px > 0) & (pf > 0)
        want += (px[m] * np.log2(px[m] / pf[m])).sum() / 2
    ce = M.compute("CE", post, a, b)
    assert ce == pytest.approx(want, rel=1e-12) and ce < 0
    for name in ("CE", "CE.vifb", "CE.mefb"):
        lo, hi = metric_info(name).score_range
        assert lo == pytest.approx(-math.log2(math.e) / math.e, rel=1e-15) and hi == math.inf
        assert lo <= M.compute(name, post, a, b)


def test_nabf_is_below_one() -> None:
    """Each artifact term (1 − Q_XF)·w_X is below w_X and the denominator is Σ(w_A + w_B): Nabf < 1 (it was
    registered as [0, 2]).  Smooth sources and a noise F, artifacts nearly everywhere, stay below 1."""
    from fusionbench.metric_registry import metric_info

    r = np.random.default_rng(3)
    yy, xx = np.mgrid[:64, :64]
    a = (yy * 2).astype(np.uint8)
    b = (xx * 3).astype(np.uint8)
    f = r.integers(0, 256, (64, 64), dtype=np.uint8)
    for name in ("Nabf", "Nabf.tang"):
        assert metric_info(name).score_range == (0.0, 1.0)
    v = M.compute("Nabf", f, a, b)
    assert 0.5 < v < 1.0, v


def test_psnr_vifb_is_the_documented_formula() -> None:
    """PSNR.vifb/.mefb = 20·log10(255/√m̃), m̃ = mean over sources of √SSE_X/(MN) (their convention line; it used
    to read 20·log10(255/(sqrt(SSE)/MN)), 4.8 dB off on syn_s0_128_avg)."""
    f, a, b = triple(64, 4)
    mn = f.size
    m = np.mean([np.sqrt(((x.astype(float) - f) ** 2).sum()) / mn for x in (a, b)])
    for name in ("PSNR.vifb", "PSNR.mefb"):
        assert M.compute(name, f, a, b) == pytest.approx(20 * np.log10(255 / np.sqrt(m)), rel=1e-12)


def test_ms_ssim_halves_as_wangs_matlab_code() -> None:
    """The downsampling between MS-SSIM scales is imfilter(x, ones(2)/4, 'symmetric', 'same') then x(1:2:end,
    1:2:end): on an odd side the last row/column pairs with its mirror image.  pytorch_msssim's avg_pool2d
    (zero padding at both ends, zeros counted) is another grid (docs/metrics.md)."""
    from fusionbench.metrics.functional._filters import halve

    x = np.random.default_rng(4).random((5, 7))
    padded = np.vstack([x, x[-1:]])
    padded = np.hstack([padded, padded[:, -1:]])
    matlab = (padded[:-1, :-1] + padded[1:, :-1] + padded[:-1, 1:] + padded[1:, 1:])[::2, ::2] / 4
    assert np.array_equal(halve(x), matlab)
    zero = np.pad(x, 1)
    pool = sum(zero[i::2, j::2][:3, :4] for i in (0, 1) for j in (0, 1)) / 4  # avg_pool2d(2, padding=1)
    assert halve(x).shape == pool.shape and not np.allclose(halve(x), pool)


def test_documented_degenerate_values_are_the_references() -> None:
    """Kept as the references compute them (docs/metrics.md remarks): Qabf of constant non-zero sources is a
    border-ring value (NaN only when both sources are 0); FMI_edge of a blank F scores above a real fusion."""
    f, a, b = triple(64, 0)
    c = np.full_like(a, 77)
    assert M.compute("Qabf", c, c, c) == pytest.approx(0.97533, abs=1e-5)
    with pytest.warns(M.UndefinedMetricWarning):
        assert math.isnan(M.compute("Qabf", np.zeros_like(a), np.zeros_like(a), np.zeros_like(a)))
    blank = [M.compute("FMI_edge", np.full_like(a, level), a, b) for level in (0, 128, 255)]
    assert blank[0] == blank[1] == blank[2] > M.compute("FMI_edge", f, a, b)


def test_mi_identity_is_twice_the_entropy() -> None:
    a, _ = structured_pair(64, 3)
    assert M.compute("MI", a, a, a) == pytest.approx(2 * M.compute("EN", a, a, a), rel=1e-12)


def test_profiles_relate_as_documented() -> None:
    f, a, b = triple(64, 4)
    psnr = M.compute("PSNR", f, a, b)
    assert M.compute("PSNR.tang", f, a, b) == pytest.approx(psnr + 20 * np.log10(255), rel=1e-12)
    assert M.compute("MI.cddfuse", f, a, b) == pytest.approx(M.compute("MI", f, a, b) * np.log(2), rel=1e-12)
    assert M.compute("SSIM.vifb", f, a, b) == pytest.approx(2 * M.compute("SSIM", f, a, b), rel=1e-12)
    assert M.compute("MSE.tang", f, a, b) == pytest.approx(M.compute("MSE", f, a, b) / 255 ** 2, rel=1e-12)
    m, nn = f.shape
    assert M.compute("SF.vifb", f, a, b) < M.compute("SF", f, a, b)
    assert M.compute("AG.cddfuse", f, a, b) == pytest.approx(
        M.compute("AG", f, a, b) * (m - 1) * (nn - 1) / (m * nn), rel=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_no_negative_zero_on_degenerate_images(name: str) -> None:
    """A score of zero is +0.0: a CSV or table never shows ``-0.0`` (EN of a one-level image was
    ``-0.0`` from ``-sum(p·log p)``)."""
    _, a, b = triple(64, 5)
    zero, flat = np.zeros_like(a), np.full_like(a, 100)
    for f, x, y in ((zero, a, b), (a, a, b), (flat, flat, flat), (zero, zero, zero)):
        value = _score(name, f, x, y)
        assert not (value == 0 and math.copysign(1.0, value) < 0), (name, value)


def test_ssim_profiles_declare_the_range_of_their_aggregation() -> None:
    """Summed over the two sources (VIFB, CDDFuse) SSIM reaches 2; averaged (default, Tang) it stays in [-1, 1]
    (SSIM.tang was registered with the summed profiles' (-2, 2))."""
    from fusionbench.metric_registry import metric_info

    assert metric_info("SSIM").score_range == metric_info("SSIM.tang").score_range == (-1.0, 1.0)
    assert metric_info("SSIM.vifb").score_range == metric_info("SSIM.cddfuse").score_range == (-2.0, 2.0)


def _triple(shape, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(rng.integers(0, 256, shape).astype(np.uint8) for _ in range(3))


def test_ssim_is_defined_from_11_px():
    """ME5: SSIM's 11×11 'valid' window fits an 11-px side (one row of windows); 10 px is undefined."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", M.UndefinedMetricWarning)
        assert np.isfinite(F.ssim(*_triple((11, 14))))
    with pytest.warns(M.UndefinedMetricWarning, match="11x11"):
        assert np.isnan(F.ssim(*_triple((10, 14))))


def test_ms_ssim_size_limit_is_above_160_px():
    """ME6: at 160 px the coarsest scale (10 px) has no 11×11 window: NaN with the metric's own warning (not
    numpy's empty-mean warnings); 161 px is defined."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert np.isnan(F.ms_ssim(*_triple((160, 170))))
    assert [w.category for w in caught] == [M.UndefinedMetricWarning]
    assert "160 px" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(F.ms_ssim(*_triple((161, 170))))


def test_vifp_sum_scores_a_source_without_variance_as_1():
    """ME8: documented: a source with no variance at any scale gives 1 for its term (CDDFuse's NaN → 1)."""
    f = np.random.default_rng(4).integers(0, 256, (64, 64)).astype(np.uint8)
    c = np.full((64, 64), 100, np.uint8)
    assert F.vifp_sum(f, c, c) == 2.0
    assert F.vifp_sum(f, c, f) == pytest.approx(2.0, abs=1e-9)  # 1 (constant A) + VIFp(F, F) ≈ 1
