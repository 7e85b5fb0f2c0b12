"""The colour protocol against scikit-image's colour functions and its own invariants."""
from __future__ import annotations

import numpy as np
import pytest
from skimage import color as skcolor

from fusionbench import colour


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(1).random((32, 40, 3)).astype(np.float32)


def test_luma_is_bt601_full_range(rgb) -> None:
    # skimage's YIQ / YPbPr / YUV luma rows are BT.601 weights (0.299, 0.587, 0.114)
    np.testing.assert_allclose(colour.rgb_to_luma(rgb), skcolor.rgb2yiq(rgb)[..., 0], atol=1e-6)
    np.testing.assert_allclose(colour.rgb_to_luma(rgb), skcolor.rgb2ypbpr(rgb)[..., 0], atol=1e-6)
    # ... and not skimage's rgb2gray (BT.709)
    assert not np.allclose(colour.rgb_to_luma(rgb), skcolor.rgb2gray(rgb), atol=1e-3)


def test_studio_ycbcr_matches_skimage(rgb) -> None:
    # skimage.rgb2ycbcr returns MATLAB's values in 0-255 (Y in 16-235)
    np.testing.assert_allclose(colour.rgb_to_ycbcr_studio(rgb) * 255, skcolor.rgb2ycbcr(rgb), atol=1e-4)
    np.testing.assert_allclose(colour.ycbcr_studio_to_rgb(colour.rgb_to_ycbcr_studio(rgb)), rgb, atol=1e-6)


def test_merge_luma_replaces_the_luma(rgb) -> None:
    target = np.full(rgb.shape[:2], 0.5, np.float32)
    merged = colour.merge_luma(target, rgb * 0.5 + 0.25)  # keep away from clipping
    np.testing.assert_allclose(colour.rgb_to_luma(merged), target, atol=1e-5)
    # identity: fusing to b's own luma returns b
    np.testing.assert_allclose(colour.merge_luma(colour.rgb_to_luma(rgb), rgb), rgb, atol=1e-6)


def test_quantise_rounds_and_clips() -> None:
    x = np.array([-0.1, 0.0, 0.5 / 255, 1.5 / 255, 0.5, 1.0, 1.2])
    assert colour.quantise(x).tolist() == [0, 0, 0, 2, 128, 255, 255]  # round half to even: 0.5→0, 1.5→2
    assert colour.quantise(np.array([7], np.uint8)).dtype == np.uint8


def test_luma_uint8_of_grey_is_identity() -> None:
    g = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert np.array_equal(colour.luma_uint8(g), g)
    rgb = np.stack([g, g, g], -1)
    assert np.array_equal(colour.luma_uint8(rgb), g)


def _cbcr(rgb: np.ndarray) -> np.ndarray:
    """Full-range BT.601 Cb, Cr (JPEG) of an RGB image in [0, 1], via scikit-image's YPbPr."""
    return skcolor.rgb2ypbpr(rgb)[..., 1:]


def test_chroma_side_prefers_b_then_a() -> None:
    grey, rgb = np.zeros((4, 5)), np.zeros((4, 5, 3))
    assert colour.chroma_side(grey, rgb) == "b" and colour.chroma_side(rgb, grey) == "a"
    assert colour.chroma_side(rgb, rgb) == "b" and colour.chroma_side(grey, grey) is None


@pytest.mark.parametrize("side", ["a", "b"])
def test_recolour_keeps_the_colour_sides_cb_cr(rgb, side) -> None:
    source = rgb * 0.3 + 0.35  # away from clipping
    fused_luma = np.random.default_rng(2).random(rgb.shape[:2]).astype(np.float32) * 0.2 + 0.4
    grey = np.full(rgb.shape[:2], 0.5, np.float32)
    a, b = (source, grey) if side == "a" else (grey, source)
    out = colour.recolour(fused_luma, a, b)
    np.testing.assert_allclose(colour.rgb_to_luma(out), fused_luma, atol=1e-5)
    np.testing.assert_allclose(_cbcr(out), _cbcr(source), atol=1e-5)  # "replace Y, keep Cb/Cr"
    assert colour.recolour(fused_luma, grey, grey) is not None and colour.recolour(fused_luma, grey, grey).ndim == 2


def test_recolour_with_both_colour_takes_b(rgb) -> None:
    a = rgb[::-1] * 0.5 + 0.25
    b = rgb * 0.5 + 0.25
    y = np.full(rgb.shape[:2], 0.5, np.float32)
    np.testing.assert_array_equal(colour.recolour(y, a, b), colour.merge_luma(y, b))
    assert not np.allclose(_cbcr(colour.recolour(y, a, b)), _cbcr(a), atol=1e-3)


def test_exact_inverse_is_the_rounded_rational_inverse():
    from fractions import Fraction

    from fusionbench.colour import exact_inverse
    from fusionbench.methods._matlab import ANALOGUE_YUV

    inverse = exact_inverse(ANALOGUE_YUV)
    m = [[Fraction(float(v)) for v in row] for row in ANALOGUE_YUV]
    # an independent exact inverse (adjugate over determinant, in rationals); float(Fraction) rounds once
    det = sum(m[0][j] * (m[1][(j + 1) % 3] * m[2][(j + 2) % 3] - m[1][(j + 2) % 3] * m[2][(j + 1) % 3]) for j in range(3))
    for i in range(3):
        for j in range(3):
            cofactor = m[(j + 1) % 3][(i + 1) % 3] * m[(j + 2) % 3][(i + 2) % 3] \
                - m[(j + 1) % 3][(i + 2) % 3] * m[(j + 2) % 3][(i + 1) % 3]
            assert inverse[i, j] == float(cofactor / det), (i, j)
    np.testing.assert_allclose(inverse @ ANALOGUE_YUV, np.eye(3), atol=1e-15)
    assert exact_inverse(np.diag([2.0, 4.0]))[1, 1] == 0.25
    # Octave 7.3's inv (OpenBLAS SkylakeX kernels) differs from it by less than 1e-16 (the last bits of three entries)
    octave = np.array([[1, -3.9457070707137524e-05, 1.1398279671717171], [1, -0.3946101641414142, -0.58050031565656568],
                       [1, 2.0319996843434343, -0.0004813762626262731]])
    np.testing.assert_allclose(inverse, octave, rtol=0, atol=1e-16)
    with pytest.raises(np.linalg.LinAlgError):
        exact_inverse(np.ones((2, 2)))
