"""Enumerated options of the functional metrics are validated (session 37 audit F6).

Before, an unknown value silently meant the default: ``mutual_information(base=math.e)`` gave bits,
``ssim(variant="VIFB")`` the 'standard' mean, ``psnr(variant="Tang")`` the standard PSNR,
``average_gradient(normalise="mn")`` the (M-1)(N-1) form and ``piella(kind="Q")`` Q_W.  Now every such
option raises ``ValueError`` naming the function, the parameter, the value and the accepted values;
the accepted values give the numbers they gave before (pinned below, computed with the code before the fix).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import fusionbench.metrics as M
from fusionbench.metrics import functional as F
from fusionbench.metrics.functional import information, structural
from fusionbench.metrics.synthetic import triple


def _fixed():
    """triple(64, 3) with levels 254 and 255 in A and F (so that MI's saturate_255 changes the value)."""
    f, a, b = triple(64, 3)
    a, f = a.copy(), f.copy()
    a[0, :2] = 254, 255
    f[0, :2] = 255, 254
    return f, a, b


#: (function, option, accepted values, [bad values]) of every public functional metric with an enumerated option
OPTIONS = [
    ("mutual_information", "base", ("2", "e"), ["E", "nats", "bits", 10, math.pi, None, 1]),
    ("mutual_information", "stretch_first", (False, True), ["yes", None, 2]),
    ("mutual_information", "saturate_255", (False, True), ["False", None]),
    ("normalized_mutual_information", "stretch_first", (False, True), ["True", None]),
    ("tsallis_entropy", "transposed_marginals", (False, True), ["no", None]),
    ("tsallis_entropy", "stretch_first", (False, True), ["no", -1]),
    ("standard_deviation", "dtype", ("float64", "float32"), ["float16", "int8", "Float32", "double32", None]),
    ("root_mean_squared_error", "variant", ("standard", "vifb"), ["mefb", "Vifb", "tang", ""]),
    ("peak_signal_to_noise_ratio", "variant", ("standard", "vifb", "tang", "cddfuse"), ["Tang", "mefb", "CDDFuse"]),
    ("average_gradient", "normalise", ("(M-1)(N-1)", "MN"), ["mn", "(M-1)*(N-1)", "mean"]),
    ("average_gradient", "dtype", ("float64", "float32"), ["float16", "uint8"]),
    ("spatial_frequency", "normalise", ("mean", "MN"), ["mn", "Mean", "(M-1)(N-1)"]),
    ("spatial_frequency", "dtype", ("float64", "float32"), ["float16", "int16"]),
    ("qabf", "equal_gradient_quirk", (True, False), ["off", None]),
    ("nabf", "tang_argument_bug", (False, True), ["tang", None]),
    ("q_sf", "signed", (False, True), ["signed", None]),
    ("ssim", "variant", ("standard", "vifb", "tang", "cddfuse"), ["VIFB", "Standard", "mefb", ""]),
    ("piella", "kind", ("S", "W", "E"), ["Q", "w", "s", "Q_W", ""]),
    ("qcb", "unit_scale_first", (False, True), ["mefb", None]),
    ("fmi", "feature", ("none", "dct", "wavelet", "edge", "gradient"), ["Edge", "pixel", "dmey", None]),
]

BAD = [pytest.param(fn, opt, bad, id=f"{fn}-{opt}-{bad!r}") for fn, opt, _, bads in OPTIONS for bad in bads]
GOOD = [pytest.param(fn, opt, ok, id=f"{fn}-{opt}-{ok!r}") for fn, opt, oks, _ in OPTIONS for ok in oks]

#: each accepted value's number on ``_fixed()``, computed with the code before the fix (at 41a509d)
PINNED = {
    "mutual_information|base|'2'": 4.724769440201458,
    "mutual_information|base|'e'": 3.2749606162714313,
    'mutual_information|stretch_first|False': 4.724769440201458,
    'mutual_information|stretch_first|True': 4.724769440201458,
    'mutual_information|saturate_255|False': 4.724769440201458,
    'mutual_information|saturate_255|True': 4.725257721451458,
    'normalized_mutual_information|stretch_first|False': 0.7083716471190058,
    'normalized_mutual_information|stretch_first|True': 0.7083716471190058,
    'tsallis_entropy|transposed_marginals|False': 18.488722035255456,
    'tsallis_entropy|transposed_marginals|True': 101.06594223813633,
    'tsallis_entropy|stretch_first|False': 18.488722035255456,
    'tsallis_entropy|stretch_first|True': 18.488722035255456,
    "standard_deviation|dtype|'float64'": 28.00356223126145,
    "standard_deviation|dtype|'float32'": 28.003562927246094,
    "root_mean_squared_error|variant|'standard'": 41.79348263102379,
    "root_mean_squared_error|variant|'vifb'": 0.653004306599317,
    "peak_signal_to_noise_ratio|variant|'standard'": 15.708632364597223,
    "peak_signal_to_noise_ratio|variant|'vifb'": 49.981643153873975,
    "peak_signal_to_noise_ratio|variant|'tang'": 63.83943597327632,
    "peak_signal_to_noise_ratio|variant|'cddfuse'": 15.708632364597223,
    "average_gradient|normalise|'(M-1)(N-1)'": 4.076208482818022,
    "average_gradient|normalise|'MN'": 3.949822135816585,
    "average_gradient|dtype|'float64'": 4.076208482818022,
    "average_gradient|dtype|'float32'": 4.076208484611334,
    "spatial_frequency|normalise|'mean'": 11.516012833758982,
    "spatial_frequency|normalise|'MN'": 11.42568976993293,
    "spatial_frequency|dtype|'float64'": 11.516012833758982,
    "spatial_frequency|dtype|'float32'": 11.516013145446777,
    'qabf|equal_gradient_quirk|True': 0.4778490870966309,
    'qabf|equal_gradient_quirk|False': 0.47784905188876786,
    'nabf|tang_argument_bug|False': 0.00039155628326124523,
    'nabf|tang_argument_bug|True': 0.20859714217869568,
    'q_sf|signed|False': 0.4549074185793086,
    'q_sf|signed|True': -0.4549074185793086,
    "ssim|variant|'standard'": 0.658227876322659,
    "ssim|variant|'vifb'": 1.316455752645318,
    "ssim|variant|'tang'": 0.4697346161958888,
    "ssim|variant|'cddfuse'": 0.9047835294552028,
    "piella|kind|'S'": 0.7522769446702043,
    "piella|kind|'W'": 0.738736802424834,
    "piella|kind|'E'": 0.6189686703223238,
    'qcb|unit_scale_first|False': 0.6376591684611599,
    'qcb|unit_scale_first|True': 0.6377715371975277,
    "fmi|feature|'none'": 0.4310846648651853,
    "fmi|feature|'dct'": 0.41117356549408335,
    "fmi|feature|'wavelet'": 0.43507055179904425,
    "fmi|feature|'edge'": 0.8914897370517411,
    "fmi|feature|'gradient'": 0.4204698028968,
}


@pytest.mark.parametrize("fn, opt, bad", BAD)
def test_an_unknown_option_value_raises_naming_parameter_value_and_accepted(fn: str, opt: str, bad) -> None:
    f, a, b = _fixed()
    with pytest.raises(ValueError) as e:
        getattr(F, fn)(f, a, b, **{opt: bad})
    msg = str(e.value)
    assert msg.startswith(f"{fn}: unknown {opt} {bad!r} (accepted: "), msg
    accepted = next(oks for n, o, oks, _ in OPTIONS if (n, o) == (fn, opt))
    for ok in accepted:
        assert repr(ok) in msg, msg


@pytest.mark.parametrize("fn, opt, ok", GOOD)
def test_each_accepted_value_gives_the_number_it_gave_before(fn: str, opt: str, ok) -> None:
    f, a, b = _fixed()
    assert getattr(F, fn)(f, a, b, **{opt: ok}) == pytest.approx(PINNED[f"{fn}|{opt}|{ok!r}"], rel=1e-12)


def test_every_public_option_is_listed() -> None:
    """Every keyword of a public functional metric is in OPTIONS, or is numeric (listed here), or data_range."""
    import inspect

    numeric = {("mean_squared_error", "scale"), ("tsallis_entropy", "q"), ("piella", "alpha"), ("qp", "threshold"),
               ("fmi", "w")}
    listed = {(fn, opt) for fn, opt, _, _ in OPTIONS}
    for name in F.__all__:
        for p in inspect.signature(getattr(F, name)).parameters.values():
            if p.kind is p.KEYWORD_ONLY and p.name != "data_range":
                assert (name, p.name) in listed | numeric, (name, p.name)


def test_mutual_information_base_accepts_the_numbers_2_and_e() -> None:
    """base=math.e gave bits before (only the string 'e' selected nats); now 2 and math.e are the two bases."""
    f, a, b = _fixed()
    bits, nats = F.mutual_information(f, a, b, base="2"), F.mutual_information(f, a, b, base="e")
    assert nats == pytest.approx(bits * math.log(2), rel=1e-15)
    for base in (math.e, np.e, np.float64(math.e)):
        assert F.mutual_information(f, a, b, base=base) == nats
    for base in (2, 2.0, np.int64(2)):
        assert F.mutual_information(f, a, b, base=base) == bits


def test_other_spellings_that_worked_before_still_work() -> None:
    """dtype in any numpy spelling of float32/float64; a flag as 0/1 or numpy.bool_."""
    f, a, b = _fixed()
    sd32 = PINNED["standard_deviation|dtype|'float32'"]
    for dt in (np.float32, np.dtype("float32"), "f4", "single"):
        assert F.standard_deviation(f, dtype=dt) == sd32
    assert F.average_gradient(f, dtype=np.float64) == PINNED["average_gradient|dtype|'float64'"]
    assert F.q_sf(f, a, b, signed=1) == PINNED["q_sf|signed|True"]
    assert F.q_sf(f, a, b, signed=np.bool_(False)) == PINNED["q_sf|signed|False"]
    assert F.nabf(f, a, b, tang_argument_bug=0) == PINNED["nabf|tang_argument_bug|False"]


def test_helpers_with_an_enumerated_option() -> None:
    x = np.array([[0, 1, 2], [3, 6, 5]], float)
    assert information.stretch(x).tolist() == [[0, 43, 85], [128, 255, 213]]
    assert information.stretch(x, rounding="half_even").tolist() == [[0, 42, 85], [128, 255, 212]]
    with pytest.raises(ValueError, match=r"^stretch: unknown rounding 'half_up' \(accepted: 'half_away', 'half_even'\)"):
        information.stretch(x, rounding="half_up")
    f, a, _ = _fixed()
    g = f.astype(float)
    with pytest.raises(ValueError, match=r"^ssim_map: unknown mode 'wrap'"):  # a KeyError before
        structural.ssim_map(g, a.astype(float), C1=1.0, C2=1.0, valid=False, mode="wrap")
    with pytest.raises(ValueError, match=r"^triple: unknown rule 'mean' \(accepted: 'avg', 'max'\)"):
        triple(32, 0, "mean")  # was silently the average


def test_the_audit_reproductions_raise() -> None:
    """The session 37 audit's F6 cases, with their messages."""
    f, a, b = _fixed()
    with pytest.raises(ValueError, match=r"^ssim: unknown variant 'VIFB' \(accepted: 'standard', 'vifb', 'tang', 'cddfuse'\)$"):
        F.ssim(f, a, b, variant="VIFB")
    with pytest.raises(ValueError, match=r"^peak_signal_to_noise_ratio: unknown variant 'Tang'"):
        F.peak_signal_to_noise_ratio(f, a, b, variant="Tang")
    with pytest.raises(ValueError, match=r"^average_gradient: unknown normalise 'mn'"):
        F.average_gradient(f, normalise="mn")
    with pytest.raises(ValueError, match=r"^piella: unknown kind 'Q' \(accepted: 'S', 'W', 'E'\)$"):
        F.piella(f, a, b, kind="Q")
    with pytest.raises(ValueError, match=r"^fmi: unknown feature 'Edge' \(accepted: 'none', 'dct', 'wavelet', 'edge', 'gradient'\)$"):
        F.fmi(f, a, b, feature="Edge")
    with pytest.raises(ValueError, match=r"^mutual_information: unknown base 'E' \(accepted: '2', 'e', 2, math.e\)$"):
        F.mutual_information(f, a, b, base="E")


def test_every_preset_passes_its_frozen_options() -> None:
    """The presets freeze only accepted values: every registered preset's options pass the checks."""
    from fusionbench.metric_registry import list_metrics, metric_info

    f, a, b = _fixed()
    for name in list_metrics():
        info = metric_info(name)
        if info.options and info.colour == "y601":
            M.compute(name, f, a, b)  # raises ValueError if an option were refused


#: (function, numeric option, the range as the message states it, [accepted values], [bad values]) (session 38:
#: numbers went into the arithmetic unchecked: ``tsallis_entropy(q=1)`` divided by zero, ``mean_squared_error``
#: with ``scale=-1`` equalled ``scale=1``, ``fmi(w=0)`` was 1.0, ``qp(threshold=1)`` NaN without a word)
NUMERIC = [
    ("fmi", "w", "an integer in [2, ∞)", [3, 4, 5, np.int64(3)], [1, 0, -3, 2.5, 3.0, math.nan, "3", True, None]),
    ("mean_squared_error", "scale", "a number in (0, ∞)", [255.0, 1.0, 100, np.float32(1.0)],
     [0, -1, math.nan, math.inf, "255", None, True]),
    ("piella", "alpha", "a number in (0, ∞)", [1.0, 0.5, 2], [0, -1.0, math.nan, math.inf, None, "1"]),
    ("qp", "threshold", "a number in [0, 1)", [0.1, 0.0, 0.5, np.float64(0.1)], [1, 1.5, -0.1, math.nan, None]),
    ("tsallis_entropy", "q", "a number in (0, ∞), not 1", [1.85, 0.5, 2, 3], [1, 1.0, 0, -1, math.nan, math.inf,
                                                                             None, "1.85"]),
]

#: each accepted value's number on ``_fixed()``, computed with the code before the range checks (at 47fabbf)
PINNED_NUMERIC = {
    "fmi|w|3": 0.4310846648651853,
    "fmi|w|4": 0.43531859249808885,
    "fmi|w|5": 0.4440036632925276,
    "mean_squared_error|scale|255.0": 1746.6951904296875,
    "mean_squared_error|scale|1.0": 0.026861902198072857,
    "mean_squared_error|scale|100": 268.6190219807285,
    "piella|alpha|1.0": 0.6189686703223238,
    "piella|alpha|0.5": 0.7867456198304023,
    "piella|alpha|2": 0.3831222148405856,
    "qp|threshold|0.1": 0.6175087490662454,
    "qp|threshold|0.0": 0.6910832367709375,
    "qp|threshold|0.5": 0.5666825257886757,
    "tsallis_entropy|q|1.85": 18.488722035255456,
    "tsallis_entropy|q|0.5": 1.9288806208523905,
    "tsallis_entropy|q|2": 31.3692521729289,
    "tsallis_entropy|q|3": 8572.408635110218,
}


@pytest.mark.parametrize("fn, opt, rng, bad", [pytest.param(fn, opt, rng, bad, id=f"{fn}-{opt}-{bad!r}")
                                               for fn, opt, rng, _, bads in NUMERIC for bad in bads])
def test_a_numeric_option_out_of_range_raises_naming_parameter_value_and_range(fn: str, opt: str, rng: str,
                                                                               bad) -> None:
    f, a, b = _fixed()
    with pytest.raises(ValueError) as e:
        getattr(F, fn)(f, a, b, **{opt: bad})
    msg = str(e.value)
    assert msg.startswith(f"{fn}: {opt} must be {rng.split(' in ')[0]}") and msg.endswith(f"got {bad!r}"), msg
    if not isinstance(bad, (str, bool, type(None))) and not (opt == "w" and isinstance(bad, float)):
        assert f"{fn}: {opt} must be {rng}, got {bad!r}" == msg


@pytest.mark.parametrize("fn, opt, ok", [pytest.param(fn, opt, ok, id=f"{fn}-{opt}-{ok!r}")
                                         for fn, opt, _, oks, _ in NUMERIC for ok in oks])
def test_each_accepted_number_gives_the_value_it_gave_before(fn: str, opt: str, ok) -> None:
    f, a, b = _fixed()
    key = f"{fn}|{opt}|{ok.item() if isinstance(ok, np.generic) else ok!r}"
    assert getattr(F, fn)(f, a, b, **{opt: ok}) == pytest.approx(PINNED_NUMERIC[key], rel=1e-12)


def test_every_numeric_option_is_range_checked() -> None:
    """The numeric options of :func:`test_every_public_option_is_listed` are the ones in NUMERIC."""
    assert {(fn, opt) for fn, opt, *_ in NUMERIC} == {("mean_squared_error", "scale"), ("tsallis_entropy", "q"),
                                                       ("piella", "alpha"), ("qp", "threshold"), ("fmi", "w")}


def test_a_tsallis_q_too_large_for_float64_is_undefined_with_the_warning() -> None:
    """Session 38's metrics audit (F7): ``q=1e6`` passed the range check and gave NaN with numpy's "invalid value"
    RuntimeWarning, not the UndefinedMetricWarning of the NaN policy."""
    import warnings

    f, a, b = _fixed()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert math.isnan(F.tsallis_entropy(f, a, b, q=1e6))
    assert [w.category for w in caught] == [M.UndefinedMetricWarning], [str(w.message) for w in caught]
    assert "q = 1e+06" in str(caught[0].message)


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, "wide"])
def test_a_bad_data_range_is_refused_for_uint8_images_too(bad) -> None:
    """Session 38's metrics audit: ``data_range`` is not used for uint8 images, and a bad one passed silently."""
    f, a, b = _fixed()
    with pytest.raises(ValueError, match="data_range must be"):
        F.entropy(f, data_range=bad)
    assert F.entropy(f, data_range=255) == F.entropy(f)


@pytest.mark.parametrize("gap", [1e-4, 1e-9, 1e-12, 1e-15])
def test_tsallis_near_q_1_approaches_mutual_information_in_nats(gap) -> None:
    """Session 38's metrics audit: at q = 1 + 1e-15 the textbook form gave 3.40 for a limit of 3.275 (1 − Σ… cancels).
    Near 1 the sum is taken in its expm1 form: within O(q − 1) of MI in nats from either side."""
    f, a, b = _fixed()
    limit = F.mutual_information(f, a, b, base="e")
    for q in (1 + gap, 1 - gap):
        assert F.tsallis_entropy(f, a, b, q=q) == pytest.approx(limit, rel=10 * gap + 1e-12)


def test_the_two_forms_of_tsallis_agree_where_they_meet() -> None:
    """Just inside and outside TSALLIS_NEAR_ONE the expm1 and textbook forms give the same value (to round-off)."""
    from fusionbench.metrics.functional.information import TSALLIS_NEAR_ONE

    f, a, b = _fixed()
    for transposed in (False, True):
        inside = F.tsallis_entropy(f, a, b, q=1 + TSALLIS_NEAR_ONE * (1 - 1e-9), transposed_marginals=transposed)
        outside = F.tsallis_entropy(f, a, b, q=1 + TSALLIS_NEAR_ONE * (1 + 1e-9), transposed_marginals=transposed)
        assert inside == pytest.approx(outside, rel=1e-8)


def test_huge_integers_are_one_line_not_a_type_error() -> None:
    """Session 39's second review: ``np.isfinite(2**70)`` raised ``TypeError`` inside the one numeric check."""
    from fusionbench.checks import number

    assert number("f", "n", 2**70, low=0, integer=True) == 2**70
    with pytest.raises(ValueError, match="f: q must be a number float64 can hold"):
        number("f", "q", 10**400, low=0)
    with pytest.raises(ValueError, match=r"f: q must be a number in \[0, 1\), got 1180591620717411303424"):
        number("f", "q", 2**70, low=0, high=1)
