"""``fusionbench.fuse``'s check of a method's output against the contract of docs/plugins.md: H×W (or H×W×3)
float in [0, 1] or uint8, anything else one ``MethodOutputError`` line naming the method and what it returned."""
from __future__ import annotations

import numpy as np
import pytest

import fusionbench
from fusionbench.api import FLOAT_OUTPUT_RANGE, MethodOutputError
from fusionbench.method_registry import METHODS, register_method

A = np.linspace(0, 1, 48, dtype=np.float32).reshape(6, 8)


@pytest.mark.parametrize("output, reason", [
    (lambda a: (a * 255).astype(np.int64), "returned int64 values in [0, 255]"),  # was saved as an all-white image
    (lambda a: (a * 65535).astype(np.uint16), "returned uint16 values in [0, 65535]"),
    (lambda a: (a > 0.5).astype(np.int32), "returned int32 values in [0, 1]"),
    (lambda a: a > 0.5, "returned a bool array"),
    (lambda a: a.astype(np.complex64), "returned complex values (complex64)"),  # was a ComplexWarning only
    (lambda a: None, "returned None;"),  # was "returned shape (), expected (6, 8)"
    (lambda a: "not an array", "returned a str;"),
    (lambda a: a * 255.0, "returned float32 values in [0, 255], not in [0, 1]"),  # was clipped to all-white
    (lambda a: a - 0.7, "returned float32 values in [-0.7, 0.3], not in [0, 1]"),  # was clipped to black
])
def test_an_output_off_the_contract_is_one_line_naming_the_method(output, reason) -> None:
    register_method("test_api_bad", override=True)(lambda a, b: output(a))
    try:
        with pytest.raises(MethodOutputError) as info:
            fusionbench.fuse("test_api_bad", A, A)
    finally:
        METHODS.remove("test_api_bad")
    message = str(info.value)
    assert message.startswith("method test_api_bad returned") and reason in message, message
    assert "\n" not in message and "float in [0, 1] or uint8" in message


def test_floats_slightly_outside_0_1_saturate_and_uint8_passes() -> None:
    """Saturating ports (MATLAB's uint8) overshoot a little: clipped as before, within the bound."""
    lo, hi = FLOAT_OUTPUT_RANGE
    assert lo <= -0.5 and hi >= 1.5  # a wide margin over the built-ins' measured [0, 1]
    register_method("test_api_overshoot", override=True)(lambda a, b: a * 1.4 - 0.2)
    register_method("test_api_uint8", override=True)(lambda a, b: np.round(a * 255).astype(np.uint8))
    try:
        out = fusionbench.fuse("test_api_overshoot", A, A)
        assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255
        assert np.array_equal(fusionbench.fuse("test_api_uint8", A, A), np.round(A * 255).astype(np.uint8))
    finally:
        METHODS.remove("test_api_overshoot")
        METHODS.remove("test_api_uint8")


def test_an_overshooting_luma_is_saturated_before_it_takes_the_chroma() -> None:
    """Session 37's audit: a luma method's 1.45 was recoloured as is (``b_RGB + (1.45 - Y_b)``, clipped per
    channel), so on colour pairs it differed from the saturated 1.0 by up to 109 grey levels."""
    rng = np.random.default_rng(7)
    grey = rng.integers(0, 256, (6, 8)).astype(np.uint8)
    pet = rng.integers(0, 256, (6, 8, 3)).astype(np.uint8)
    register_method("test_api_over", override=True)(lambda a, b: np.maximum(a, b) * 1.45)
    register_method("test_api_over_clipped", override=True)(lambda a, b: np.clip(np.maximum(a, b) * 1.45, 0, 1))
    try:
        over, clipped = fusionbench.fuse("test_api_over", grey, pet), fusionbench.fuse("test_api_over_clipped", grey, pet)
    finally:
        METHODS.remove("test_api_over")
        METHODS.remove("test_api_over_clipped")
    assert over.shape == (6, 8, 3) and np.array_equal(over, clipped)


def test_scoring_view_checks_its_images_as_fuse_does() -> None:
    """Before, a 0..255 float or int64 fused image became all 255, NaN all 0, and sizes were not compared."""
    from fusionbench import scoring_view
    from fusionbench.io import ImageError

    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, (12, 10)).astype(np.uint8)
    good = scoring_view(a / 255.0, a, a)
    assert np.array_equal(good.fused, a) and good.fused.dtype == np.uint8
    for bad, match in ((a.astype(float), r"\[0, 1\]"), (a.astype(np.int64), "dtype int64"),
                       (np.full((12, 10), np.nan), "NaN"), (a[:6], "differs")):
        with pytest.raises(ImageError, match=match):
            scoring_view(bad, a, a)


def test_files_of_different_sizes_are_named_by_their_paths(tmp_path) -> None:
    """``fuse``/``scoring_view`` given paths named neither file ("b: size … differs from its partner a")."""
    from PIL import Image

    from fusionbench import scoring_view
    from fusionbench.io import ImageError

    big, small = tmp_path / "big.png", tmp_path / "small.png"
    Image.fromarray(np.zeros((12, 10), np.uint8)).save(big)
    Image.fromarray(np.zeros((6, 10), np.uint8)).save(small)
    for call in (lambda: fusionbench.fuse("average", big, small), lambda: scoring_view(big, big, small)):
        with pytest.raises(ImageError, match=f"{small}: size 10x6 differs from its partner {big}"):
            call()


def test_fuse_refuses_a_one_pixel_wide_pair_as_the_runner_does() -> None:
    """U2Fusion failed on a 1×64 pair with a raw torch padding error; the runner refuses such a pair before any
    method runs, and ``fuse`` now says the same."""
    import numpy as np
    import pytest

    from fusionbench import fuse
    from fusionbench.io import ImageError

    line = np.zeros((1, 64), np.uint8)
    with pytest.raises(ImageError, match=r"a: size 64x1 is too small"):
        fuse("average", line, line)
    assert fuse("average", np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8)).shape == (2, 2)


def test_score_gives_what_run_and_the_score_command_give_for_every_preset(tmp_path) -> None:
    """``fusionbench.score`` scores one fused image as ``fusionbench run`` and ``fusionbench score`` do (lumas, and the
    images in colour for ``ChromaErr``).  Session 38's metrics audit (F2): the README's route,
    ``evaluate(*scoring_view(...), "all")``, gave ChromaErr NaN without a word, where the command gave 1.2104."""
    import math

    from PIL import Image

    import fusionbench.metrics
    from fusionbench.score_folder import evaluate_folder

    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (40, 48), dtype=np.uint8)
    b = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    fused = fusionbench.fuse("average", a, b)
    got = fusionbench.score(fused, a, b, "all")
    assert math.isfinite(got["ChromaErr"])
    view = fusionbench.scoring_view(fused, a, b)
    assert math.isnan(fusionbench.metrics.evaluate(view.fused, view.a, view.b, ["ChromaErr"])["ChromaErr"])
    for side, image in (("a", a), ("b", b), ("f", fused)):
        (tmp_path / side).mkdir()
        Image.fromarray(image).save(tmp_path / side / "p.png")
    table = evaluate_folder(tmp_path / "f", tmp_path / "a", tmp_path / "b", "all").table()
    assert list(got) == list(table.columns)
    for name, value in got.items():
        want = table.loc["p", name]
        assert (math.isnan(value) and math.isnan(want)) or value == want, name
    assert fusionbench.score(fused, a, b) == fusionbench.score(fused, a, b, "paper")
    assert list(fusionbench.score(fused, a, b)) == fusionbench.resolve_metrics("paper")


def test_score_checks_its_images_and_names_an_unknown_metric() -> None:
    from fusionbench.io import ImageError

    a = np.zeros((16, 16), np.uint8)
    with pytest.raises(ImageError, match="fused"):
        fusionbench.score(np.zeros((16, 17), np.uint8), a, a)
    with pytest.raises(KeyError, match="unknown metric 'nope'"):
        fusionbench.score(a, a, a, "nope")
    got = fusionbench.score(np.full((16, 16), 0.5), a, np.ones((16, 16)), ["EN", "SD"])  # floats in [0, 1]
    assert got == fusionbench.score(np.full((16, 16), 128, np.uint8), a, np.full((16, 16), 255, np.uint8), ["EN", "SD"])


def test_overrides_apply_to_a_method_object_too() -> None:
    """Session 39's API audit: ``fuse(method_object, a, b, levels=1)`` dropped ``levels`` (and typos) silently."""
    import fusionbench

    rng = np.random.default_rng(4)
    a, b = (rng.integers(0, 256, (64, 64), dtype=np.uint8) for _ in range(2))
    m = fusionbench.create_method("laplacian_pyramid")
    one_level = fusionbench.fuse("laplacian_pyramid", a, b, levels=1)
    assert not np.array_equal(one_level, fusionbench.fuse(m, a, b))
    assert np.array_equal(fusionbench.fuse(m, a, b, levels=1), one_level)
    assert m.params == fusionbench.create_method("laplacian_pyramid").params  # the object itself unchanged
    with pytest.raises(TypeError, match="has no parameter 'levls'"):
        fusionbench.fuse(m, a, b, levls=1)


def test_fuse_never_hands_the_callers_arrays_to_the_method() -> None:
    """Session 39's API audit: float32 inputs reached the method by reference, so a method writing into its inputs
    changed the caller's images (uint8 and float64 were converted, hence copied)."""
    import fusionbench
    from fusionbench.method_registry import METHODS, register_method

    @register_method("test_api_in_place")
    def in_place(a, b):
        a *= 0.5
        b[:] = 0
        return a + b

    try:
        rng = np.random.default_rng(5)
        for dtype in (np.float32, np.float64):
            a, b = (rng.random((16, 16)).astype(dtype) for _ in range(2))
            before = a.copy(), b.copy()
            fusionbench.fuse("test_api_in_place", a, b)
            assert np.array_equal(a, before[0]) and np.array_equal(b, before[1]), dtype
    finally:
        METHODS.remove("test_api_in_place")


def test_an_rgb_array_with_equal_channels_is_grey_whatever_its_dtype() -> None:
    """As ``load_image`` reads such a file; until session 39 a float one was fused as colour (H×W×3), a uint8 one
    as grey."""
    import fusionbench

    rng = np.random.default_rng(6)
    a, b = (rng.integers(0, 256, (32, 32), dtype=np.uint8) for _ in range(2))
    grey = fusionbench.fuse("dwt", np.dstack([a] * 3), b)
    assert grey.shape == (32, 32)
    assert np.array_equal(fusionbench.fuse("dwt", np.dstack([a] * 3) / 255.0, b / 255.0), grey)
