"""ChromaErr: the fused image's chroma against the colour source's (fusionbench's own colour-fidelity measure)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

import fusionbench.metrics as M
from fusionbench.metric_registry import metric_info, reads_colour
from fusionbench.metrics.functional.colour import chroma


def _pair(seed: int = 0, size: int = 24) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size, size), dtype=np.uint8), rng.integers(40, 216, (size, size, 3), dtype=np.uint8)


def test_chroma_is_bt601_full_range_as_pillow_converts_it() -> None:
    """An independent conversion: Pillow's RGB → YCbCr is the JPEG (BT.601 full-range) one, in fixed point and
    truncated to integers: ours is less than one level above it (and its 16-bit fixed-point coefficients put it
    up to 0.046 below, measured)."""
    rgb = np.random.default_rng(3).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    ours = chroma(rgb.astype(np.float64))
    pil = np.asarray(Image.fromarray(rgb).convert("YCbCr"), dtype=np.float64)[..., 1:]
    gap = ours - pil
    assert gap.min() > -0.05 and gap.max() < 1.0
    assert np.abs(gap - 0.5).mean() < 0.3  # truncation: the gap spreads over [0, 1), not around one value


def test_values_that_follow_from_the_definition() -> None:
    a, b = _pair()
    assert M.compute("ChromaErr", b, a, b) == 0.0  # the colour source's own chroma
    brighter = (b.astype(np.int16) + 10).astype(np.uint8)  # the same change on R, G, B: a luma change only
    assert M.compute("ChromaErr", brighter, a, b) == pytest.approx(0.0, abs=1e-9)
    bluer = b.copy()
    bluer[..., 2] += 10  # ΔCb = 0.5·10, ΔCr = −0.081312·10 at every pixel
    assert M.compute("ChromaErr", bluer, a, b) == pytest.approx(math.hypot(5.0, 0.81312), rel=1e-12)
    grey = b.mean(axis=2).round().astype(np.uint8)  # neutral chroma: the source's mean colourfulness
    cb_cr = chroma(b.astype(np.float64)) - 128.0
    assert M.compute("ChromaErr", grey, a, b) == pytest.approx(np.hypot(cb_cr[..., 0], cb_cr[..., 1]).mean())
    as_float = M.compute("ChromaErr", bluer / 255.0, a / 255.0, b / 255.0, data_range=1.0)
    assert as_float == pytest.approx(M.compute("ChromaErr", bluer, a, b), rel=1e-12)


def test_the_colour_source_is_b_then_a_and_none_is_undefined() -> None:
    a, b = _pair()
    other = np.roll(b, 3, axis=1)
    assert M.compute("ChromaErr", b, other, b) == 0.0  # both colour: b's chroma counts (the recolouring rule)
    assert M.compute("ChromaErr", other, other, a) == 0.0  # only a is colour (IR-VIS with a colour visible)
    with pytest.warns(M.UndefinedMetricWarning, match="neither source is a colour image"):
        assert math.isnan(M.compute("ChromaErr", a, a, a))


def test_bad_inputs_are_refused() -> None:
    a, b = _pair()
    for fused, message in ((b[:10], "sizes differ"), (b.astype(np.float64), "pass data_range"),
                           (b[..., :2], "H×W×3"), (b[:1, :1], "at least 2x2")):
        with pytest.raises(ValueError, match=message):
            M.compute("ChromaErr", fused, a[:1, :1] if message == "at least 2x2" else a,
                      b[:1, :1] if message == "at least 2x2" else b)


def test_metadata() -> None:
    info = metric_info("ChromaErr")
    assert reads_colour("ChromaErr") and not reads_colour("EN")
    assert not info.higher_is_better and info.score_range == (0.0, math.inf) and info.groups == ("all",)


def test_the_runner_and_score_give_it_the_images_in_colour(tmp_path, make_pairs, capsys) -> None:
    """Scored on the luma view, as every other preset, it would be NaN (no colour left): the runner and
    `fusionbench score` hand it the fused image and the sources as they are."""
    from fusionbench.cli import main
    from fusionbench.io import load_image
    from fusionbench.report.data import ReportData

    data = make_pairs(tmp_path / "data", 2, colour=True)
    out = tmp_path / "out"
    assert main(["run", "--methods", "average", "--datasets", f"folder:{data}", "--metrics", "EN,ChromaErr",
                 "--out", str(out), "--workers", "0", "--quiet", "--no-report"]) == 0
    rd = ReportData.load(out)
    scores = rd.scores.set_index(["pair", "metric"])["value"]
    for row in rd.outputs.itertuples():
        a, b = load_image(data / "a" / f"{row.pair}.png"), load_image(data / "b" / f"{row.pair}.png")
        want = M.compute("ChromaErr", load_image(row.path), a, b)
        assert math.isfinite(want) and scores[(row.pair, "ChromaErr")] == want
    fused = tmp_path / "fused"
    fused.mkdir()
    for row in rd.outputs.itertuples():
        Image.open(row.path).save(fused / f"{row.pair}.png")
    assert main(["score", "--fused", str(fused), "--a", str(data / "a"), "--b", str(data / "b"),
                 "--metrics", "ChromaErr", "--csv", str(tmp_path / "s.csv")]) == 0
    import pandas as pd

    assert "(ChromaErr: on the images in colour)" in capsys.readouterr().out
    from fusionbench.report.tables import convention_footnote

    assert "; ChromaErr on the images in colour (RGB), not luma." in convention_footnote(["EN", "ChromaErr"], "test")
    assert "not luma" not in convention_footnote(["EN"], "test")
    table = pd.read_csv(tmp_path / "s.csv", index_col="image")
    for row in rd.outputs.itertuples():
        assert table.loc[str(row.pair), "ChromaErr"] == scores[(row.pair, "ChromaErr")]


def test_unit_images_with_a_255_data_range_are_refused_as_by_the_grey_presets() -> None:
    """Found in review: the grey presets refused [0, 1] floats given data_range=255, ChromaErr scored them
    (0.0047 instead of 1.21 on a Harvard pair)."""
    a, b = _pair()
    bluer = b.copy()
    bluer[..., 2] += 10
    with pytest.raises(ValueError, match=r"fused has float values all within \[0, 1\] but data_range = 255"):
        M.compute("ChromaErr", bluer / 255.0, a / 255.0, b / 255.0, data_range=255.0)
    with pytest.raises(ValueError, match="far outside"):
        M.compute("ChromaErr", bluer * 4.0, a.astype(float), b.astype(float), data_range=255.0)


def test_integer_images_follow_the_grey_presets_dtype_rules() -> None:
    """Session 38's metrics audit: every grey preset scores a uint16 image with ``data_range=65535`` (and integers
    within 0–255 without one), ChromaErr refused them. Now the same rules: the scores equal those of the same
    images as floats in [0, 1] (and as uint8)."""
    a, b = _pair(5)
    f = np.clip(b.astype(int) + 9, 0, 255).astype(np.uint8)
    as_uint8 = M.compute("ChromaErr", f, a, b)
    assert M.compute("ChromaErr", f.astype(np.int64), a.astype(np.int32), b.astype(np.uint16)) == as_uint8
    wide = [x.astype(np.uint16) * 257 for x in (f, a, b)]  # 0-255 → 0-65535
    unit = [x / 65535.0 for x in wide]
    assert M.compute("ChromaErr", *wide, data_range=65535) == pytest.approx(M.compute("ChromaErr", *unit, data_range=1.0),
                                                                             abs=1e-12)
    assert M.compute("ChromaErr", *wide, data_range=65535) == pytest.approx(as_uint8, abs=1e-9)
    with pytest.raises(ValueError, match="integer values outside 0-255; pass data_range"):
        M.compute("ChromaErr", *wide)
    with pytest.raises(ValueError, match="boolean"):
        M.compute("ChromaErr", f > 9, a, b)
