"""fusionbench.scoring.score_pair: the one scoring path of the runner's workers and ``fusionbench score``."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from fusionbench.colour import luma_uint8
from fusionbench.metric_registry import METRICS, register_metric
from fusionbench.metrics import UndefinedMetricWarning, compute
from fusionbench.scoring import score_pair


@pytest.fixture
def colour_triple() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (40, 48), dtype=np.uint8)  # MRI, grey
    b = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)  # PET, colour
    fused = ((a[..., None].astype(float) + b) / 2).round().astype(np.uint8)
    return fused, a, b


def test_colour_presets_read_the_images_and_the_others_the_lumas(colour_triple) -> None:
    fused, a, b = colour_triple
    scores = score_pair(fused, a, b, ["EN", "ChromaErr", "MI", "Qabf"])
    assert not scores.errors and list(scores.values) == ["ChromaErr", "EN", "MI", "Qabf"]
    assert scores.values["ChromaErr"] == compute("ChromaErr", fused, a, b)
    lumas = luma_uint8(fused), a, luma_uint8(b)
    for name in ("EN", "MI", "Qabf"):
        assert scores.values[name] == compute(name, *lumas)
    assert np.isfinite(scores.values["ChromaErr"])
    with pytest.warns(UndefinedMetricWarning):  # on the lumas it would be undefined: neither source in colour
        assert np.isnan(compute("ChromaErr", *lumas))


def test_given_lumas_are_used_as_they_are(colour_triple) -> None:
    fused, a, b = colour_triple
    other = np.zeros_like(a)  # a caller's cached lumas are trusted, not recomputed
    assert score_pair(fused, a, b, ["MI"], luma_a=other, luma_b=other).values["MI"] == compute(
        "MI", luma_uint8(fused), other, other)


def test_a_failing_preset_is_an_error_and_the_others_are_scored(colour_triple) -> None:
    @register_metric("test_scoring_broken")
    def broken(fused, a, b):  # noqa: ANN001
        raise ValueError("broken on purpose")

    try:
        scores = score_pair(*colour_triple, ["EN", "test_scoring_broken", "ChromaErr", "SF"])
    finally:
        METRICS.remove("test_scoring_broken")
    assert set(scores.values) == {"EN", "ChromaErr", "SF"}
    assert list(scores.errors) == ["test_scoring_broken"]
    assert isinstance(scores.errors["test_scoring_broken"], ValueError)


def test_an_unregistered_preset_is_an_error_not_a_crash(colour_triple) -> None:
    scores = score_pair(*colour_triple, ["EN", "no_such_preset_here"])
    assert set(scores.values) == {"EN"} and isinstance(scores.errors["no_such_preset_here"], KeyError)


def test_undefined_values_are_nan_without_their_warning() -> None:
    flat = np.full((32, 32), 90, np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an UndefinedMetricWarning escaping would fail here
        scores = score_pair(flat, flat, flat, ["CC", "EN"])
    assert np.isnan(scores.values["CC"]) and scores.values["EN"] == 0.0
