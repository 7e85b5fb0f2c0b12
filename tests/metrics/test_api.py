"""The public entry points ``compute``/``evaluate``, input validation and groups."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import fusionbench.metrics as M
from fusionbench.metric_registry import PAPER_ORDER, metric_info, resolve_metrics


def _triple(n: int = 48, seed: int = 0):
    r = np.random.default_rng(seed)
    return tuple(r.integers(0, 256, (n, n), dtype=np.uint8) for _ in range(3))


def test_paper_group_is_the_seven_in_order() -> None:
    assert resolve_metrics("paper") == list(PAPER_ORDER)


def test_groups_nest() -> None:
    paper, standard, every = (set(resolve_metrics(g)) for g in ("paper", "standard", "all"))
    assert paper <= standard <= every


def test_metadata_fields() -> None:
    for name in resolve_metrics("all"):
        info = metric_info(name)
        assert set(info.groups) <= {"paper", "standard", "all"}
        assert info.convention and info.profile == "default"
        lo, hi = info.score_range
        assert lo < hi


def test_evaluate_returns_floats() -> None:
    f, a, b = _triple()
    out = M.evaluate(f, a, b, "paper")
    assert list(out) == list(PAPER_ORDER)
    assert all(isinstance(v, float) and np.isfinite(v) for v in out.values())


def test_float_input_needs_data_range() -> None:
    f, a, b = _triple()
    with pytest.raises(ValueError, match="data_range"):
        M.compute("EN", f / 255.0, a, b)
    v = M.compute("MI", f / 255.0, a / 255.0, b / 255.0, data_range=1.0)
    assert v == pytest.approx(M.compute("MI", f, a, b))


def test_float_input_is_quantised_round_and_clip() -> None:
    f, a, b = _triple()
    x = f.astype(np.float64) + 0.3  # rounds back to f
    assert M.compute("SD", x, a, b, data_range=255.0) == M.compute("SD", f, a, b)


def test_shape_mismatch_raises() -> None:
    f, a, b = _triple()
    with pytest.raises(ValueError, match="shapes differ"):
        M.compute("MI", f, a[:-1], b)


@pytest.mark.parametrize("shape", [(0, 5), (1, 1), (1, 9), (9, 1)])
def test_every_preset_refuses_an_image_under_2x2(shape) -> None:
    """The same rule for every preset (98 when it was written, 100 with Q_SF and Q_SF.liu): before, the source-free ones answered 0.0 (EN of an empty image),
    NaN with numpy warnings (SF) or numpy's own message (AG)."""
    from fusionbench.metric_registry import list_metrics

    tiny = np.zeros(shape, np.uint8)
    for name in list_metrics("*"):
        with pytest.raises(ValueError, match=r"images must be at least 2x2"):
            M.compute(name, tiny, tiny, tiny)


def test_colour_raises() -> None:
    f, a, b = _triple()
    with pytest.raises(ValueError, match="colour"):
        M.compute("EN", np.dstack([f, f, f]), a, b)


def test_unknown_preset_suggests() -> None:
    f, a, b = _triple()
    with pytest.raises(KeyError):
        M.compute("Qabff", f, a, b)


def test_scd_undefined_is_nan_with_warning() -> None:
    f, a, b = _triple()
    with pytest.warns(M.UndefinedMetricWarning):
        v = M.compute("SCD", a, a, b)
    assert np.isnan(v)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = M.evaluate(a, a, b, ["SCD"])  # evaluate silences the warning
    assert np.isnan(out["SCD"])


def test_data_range_must_be_finite_and_positive() -> None:
    x = np.random.default_rng(1).random((16, 16))
    for bad in (float("inf"), -1.0, 0.0, float("nan"), "one"):
        with pytest.raises(ValueError, match="data_range must be"):
            M.evaluate(x, x, x, "EN", data_range=bad)


def test_values_on_another_scale_than_data_range_are_refused_and_a_little_overshoot_saturates() -> None:
    """Before, a 0..255 float (or int64) image with data_range=1.0 was clipped to all 255 and scored 0."""
    rng = np.random.default_rng(2)
    grey = rng.integers(0, 256, (16, 16))
    with pytest.raises(ValueError, match=r"fused has values in \[0, 255\], far outside \[0, data_range = 1\]"):
        M.evaluate(grey.astype(float), grey / 255.0, grey / 255.0, "EN", data_range=1.0)
    with pytest.raises(ValueError, match="is data_range right"):
        M.evaluate(grey / 255.0, grey.astype(np.int64), grey / 255.0, "CC", data_range=1.0)  # a source
    over = grey / 255.0 * 1.2 - 0.1  # within half the range beyond either end: clipped as uint8 saturates
    clipped = np.clip(np.round(over * 255), 0, 255).astype(np.uint8)
    assert M.evaluate(over, grey / 255.0, grey / 255.0, "EN", data_range=1.0)["EN"] == \
        M.evaluate(clipped, grey.astype(np.uint8), grey.astype(np.uint8), "EN")["EN"]


def test_unit_images_with_a_255_data_range_are_refused() -> None:
    """Before, [0, 1] floats with data_range=255 were quantised to grey levels 0/1 and scored without a word
    (Qabf 0.07 instead of 0.44 on the synthetic triple)."""
    from fusionbench.metrics import synthetic

    f, a, b = synthetic.triple(64, 0, "avg")
    with pytest.raises(ValueError, match=r"fused has float values all within \[0, 1\] but data_range = 255"):
        M.evaluate(f / 255.0, a / 255.0, b / 255.0, ["Qabf"], data_range=255.0)
    with pytest.raises(ValueError, match="Pass data_range=1.0"):
        M.compute("EN", f / 255.0, data_range=255)  # fused-only preset
    with pytest.raises(ValueError, match=r"^a has float values all within \[0, 1\]"):  # one source on [0, 1]
        M.evaluate(f.astype(float), a / 255.0, b.astype(float), ["CC"], data_range=255.0)
    right = M.evaluate(f / 255.0, a / 255.0, b / 255.0, ["Qabf", "SD"], data_range=1.0)
    assert right == M.evaluate(f, a, b, ["Qabf", "SD"])
    # still scored: 0-255 floats, and a dark 0-255 image of integer levels 0/1
    assert M.evaluate(f.astype(float), a.astype(float), b.astype(float), ["SD"], data_range=255.0) == \
        M.evaluate(f, a, b, ["SD"])
    assert np.isfinite(M.compute("EN", (f > 128).astype(float), data_range=255.0))


def test_evaluate_silences_only_the_undefined_metric_warning() -> None:
    """``warn=False`` hides the ``UndefinedMetricWarning`` of ``fusionbench.metrics.undefined`` (NaN values say
    it) and nothing else: before, it also hid every ``RuntimeWarning`` (numpy's overflow/invalid-value warnings of
    any preset or plugin metric).  Since session 30 it is silenced through a context variable, not the process's
    warning filters (``test_pool.py``: thread safety), so only ``undefined`` is silenced."""
    from fusionbench.metric_registry import METRICS, register_metric

    name = "TEST_WARNS_TWICE"

    def warns(fused, a=None, b=None, **kw):
        warnings.warn("overflow in a plugin metric", RuntimeWarning)
        return M.undefined("undefined here")

    register_metric(name, warns, needs_sources=False)
    try:
        f, a, b = _triple()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = M.evaluate(f, a, b, [name])
        assert np.isnan(out[name])
        kinds = [w.category for w in caught]
        assert RuntimeWarning in kinds and M.UndefinedMetricWarning not in kinds, kinds
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            M.evaluate(f, a, b, [name], warn=True)
        assert {w.category for w in caught} >= {RuntimeWarning, M.UndefinedMetricWarning}
    finally:
        METRICS.remove(name)


def test_psnr_of_f_equal_to_both_sources_warns_only_when_asked() -> None:
    """PSNR's infinity (F = A = B) is not NaN but warns as an undefined value does: silenced by ``evaluate``'s
    default, shown with ``warn=True`` (a review of session 30: its direct ``warnings.warn`` showed on every such
    pair once ``evaluate`` stopped changing the process's warning filters)."""
    img = np.tile(np.arange(64, dtype=np.uint8), (48, 1))
    for warn, expected in ((False, 0), (True, 1)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert M.evaluate(img, img, img, ["PSNR"], warn=warn)["PSNR"] == float("inf")
        assert len([w for w in caught if issubclass(w.category, M.UndefinedMetricWarning)]) == expected, warn


def test_a_plugin_metric_s_own_undefined_warning_is_not_silenced() -> None:
    """What ``warn=False`` silences is ``fusionbench.metrics.undefined`` (a context variable, safe from several
    threads); an ``UndefinedMetricWarning`` a plugin metric raises with ``warnings.warn`` itself shows, as any
    other warning (docs/plugins.md: return ``undefined("why")`` instead)."""
    from fusionbench.metric_registry import METRICS, register_metric

    name = "TEST_WARNS_ITSELF"

    def warns(fused, a=None, b=None, **kw):
        warnings.warn("undefined, said by the plugin itself", M.UndefinedMetricWarning)
        return float("nan")

    register_metric(name, warns, needs_sources=False)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            M.evaluate(*_triple(), [name])
        assert [str(w.message) for w in caught] == ["undefined, said by the plugin itself"]
    finally:
        METRICS.remove(name)


def _md_cells(line: str) -> list[str]:
    """The cells of a markdown table row (``\\|`` is a literal bar, not a cell boundary)."""
    import re

    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def test_docs_tables_match_the_registry() -> None:
    """docs/metrics.md's two preset tables say what the registry says: range and convention of every default
    preset, convention of every profile.  (The CE row's unescaped ``||`` split it into extra cells.)"""
    import math
    from pathlib import Path

    from fusionbench.metric_registry import list_metrics

    def num(x: float) -> str:
        if math.isinf(x):
            return "∞" if x > 0 else "-∞"
        return str(int(x)) if float(x).is_integer() else f"{x:.4g}"

    text = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    rows = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = _md_cells(line)
            rows.setdefault(len(cells), {}).setdefault(cells[0].strip("`"), cells)  # the first table's row
    defaults, profiles = rows.get(5, {}), rows.get(2, {})
    for name in list_metrics():
        info = metric_info(name)
        if "." in name:
            assert profiles.get(name) == [f"`{name}`", info.convention], name
        else:
            lo, hi = info.score_range
            group = next(g for g in ("paper", "standard", "all") if g in info.groups)
            want = [f"`{name}`", group,
                    "yes" if info.higher_is_better else "no", f"[{num(lo)}, {num(hi)}]",
                    info.convention.split(": ", 1)[1]]
            assert defaults.get(name) == want, name


def test_cddfuse_profiles_use_float32_arithmetic() -> None:
    """SD.cddfuse / SF.cddfuse imitate CDDFuse's float32 numpy; on the pinned triple their values equal the
    float32 computation exactly and differ from float64 (the calibration tolerance 1e-6 cannot see this)."""
    import fusionbench.metrics as M
    from fusionbench.metrics.synthetic import triple

    f, a, b = triple(64, 5, "avg")
    x32 = f.astype(np.float32)
    assert M.compute("SD.cddfuse", f, a, b) == float(x32.std())
    sf32 = float(np.sqrt((np.diff(x32, axis=1) ** 2).mean() + (np.diff(x32, axis=0) ** 2).mean()))
    assert M.compute("SF.cddfuse", f, a, b) == sf32
    assert M.compute("SD.cddfuse", f, a, b) != M.compute("SD", f, a, b)


def test_float_input_is_quantised_half_to_even() -> None:
    """as_grey: round half to even, like colour.quantise (module docstring of metrics/_input.py)."""
    from fusionbench.metrics._input import as_grey

    x = np.array([[0.5, 1.5], [2.5, 254.5]])
    assert as_grey(x, data_range=255.0).tolist() == [[0.0, 2.0], [2.0, 254.0]]
