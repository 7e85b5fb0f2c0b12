"""NSST-PAPCNN (``nsst_papcnn``) against the official MATLAB code run under GNU Octave, and its parts.

The reference results in ``octave_papcnn/`` were made by ``scripts/reference_runs/run_papcnn.m``: the
official ``fuse_NSST_PAPCNN.m`` (yuliu316316/NSST-PAPCNN-Fusion @ 04454e9) unchanged under Octave 7.3,
called as the two official demos call it, with MATLAB's ``graythresh`` (``shims/papcnn/graythresh.m``).
That run reproduces the repository's own MATLAB result ``results/fused.tif`` bit for bit.  Measured
(``case_agreement.py``, docs/fidelity.md): every value identical on all 63 cases run.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import convolve2d

from fusionbench.colour import to_float
from fusionbench.io import load_image
from fusionbench.method_registry import create_method
from fusionbench.methods import nsst_papcnn as papcnn
from fusionbench.methods._matlab import to_uint8

FOLDER = Path(__file__).parent / "octave_papcnn"


def _cases():
    for row in csv.DictReader(open(FOLDER / "cases.csv")):
        yield pytest.param(row, id=row["name"])


def _input(shared_dir: Path, rel: str, crop: str) -> np.ndarray:
    if not (shared_dir / rel).is_file():
        pytest.skip(f"{rel} not in shared")
    image = load_image(shared_dir / rel)
    if crop:
        y0, x0, h, w = (int(v) for v in crop.split(","))
        image = image[y0:y0 + h, x0:x0 + w]
    return to_float(image)


@pytest.mark.parametrize("row", list(_cases()))
def test_equals_the_official_code_under_octave(shared_dir, row):
    mri = _input(shared_dir, row["mri"], row["crop"])
    other = _input(shared_dir, row["other"], row["crop"])
    ours = create_method("nsst_papcnn")(mri, other)
    reference = load_image(FOLDER / f"{row['name']}.png")
    assert ours.dtype == np.uint8 and ours.shape == reference.shape
    np.testing.assert_array_equal(ours, reference)


def _literal_pa_pcnn(c: np.ndarray, iterations: int) -> np.ndarray:
    """``PA_PCNN.m`` line by line in numpy (whole arrays), with the port's parameters."""
    decay_f, lam, decay_e, v_e = papcnn.pa_pcnn_parameters(np.abs(c))
    f = np.abs(c)
    u = np.zeros_like(f)
    y = np.zeros_like(f)
    t = np.zeros_like(f)
    e = np.ones_like(f)
    w = np.array([[0.5, 1, 0.5], [1, 0, 1], [0.5, 1, 0.5]])
    for _ in range(iterations):
        k = convolve2d(y, w, mode="same")
        u = decay_f * u + f * (1 + lam * k)
        y = (u > e).astype(np.float64)
        e = decay_e * e + v_e * y
        t = t + y
    return t


@pytest.mark.parametrize("shape", [(37, 53), (64, 64)])
def test_pa_pcnn_kernel_equals_a_literal_transcription(shape):
    rng = np.random.default_rng(3)
    band = rng.laplace(scale=0.02, size=shape)
    counts = papcnn.pa_pcnn_firing_counts(band, 110)
    np.testing.assert_array_equal(counts, _literal_pa_pcnn(band, 110))
    assert 0 < counts.min() and counts.max() < 110  # the neurons fire, and not at every step


def test_graythresh_follows_matlab_otsuthresh():
    # two values in equal numbers: every split between them has the same between-class variance, and
    # MATLAB takes the mean of the tied (1-based) bin indices 52..204: (128 - 1)/255
    two = np.repeat([51 / 255, 204 / 255], 50)
    assert papcnn.matlab_graythresh(two) == 127 / 255
    # a constant image: no finite maximum, level 0; values above 1 saturate as in im2uint8
    assert papcnn.matlab_graythresh(np.full((4, 4), 0.3)) == 0.0
    assert papcnn.matlab_graythresh(np.array([0.0, 0.0, 2.0, 5.0])) == papcnn.matlab_graythresh(
        np.array([0.0, 0.0, 1.0, 1.0]))
    # a bimodal sample: the level separates the modes
    rng = np.random.default_rng(0)
    sample = np.concatenate([rng.normal(0.2, 0.03, 500), rng.normal(0.7, 0.03, 500)]).clip(0, 1)
    assert 0.3 < papcnn.matlab_graythresh(sample) < 0.6


def test_octave_std_is_the_sample_standard_deviation():
    x = np.random.default_rng(1).random((31, 17))
    assert papcnn.octave_std(x) == pytest.approx(np.std(x, ddof=1), rel=1e-14)


def test_exact_inverse_is_the_rounded_rational_inverse():
    from fractions import Fraction

    inverse = papcnn.exact_inverse(papcnn.RGB_TO_YUV)
    exact = [[Fraction(float(v)) for v in row] for row in papcnn.RGB_TO_YUV]
    # each entry is the float nearest to the true inverse: its product with the matrix is I to within the
    # entries' own rounding, and rounding the exact product of each row back gives the identity's floats
    for i in range(3):
        for j in range(3):
            dot = sum(Fraction(float(inverse[i, k])) * exact[k][j] for k in range(3))
            assert abs(dot - (i == j)) < Fraction(1, 2 ** 50)
    np.testing.assert_allclose(inverse @ papcnn.RGB_TO_YUV, np.eye(3), atol=1e-15)
    # Octave 7.3's inv (OpenBLAS SkylakeX kernels) differs from it by less than 1e-16 (the last bits of three entries)
    octave = np.array([[1, -3.9457070707137524e-05, 1.1398279671717171], [1, -0.3946101641414142, -0.58050031565656568],
                       [1, 2.0319996843434343, -0.0004813762626262731]])
    np.testing.assert_allclose(inverse, octave, rtol=0, atol=1e-16)
    with pytest.raises(np.linalg.LinAlgError):
        papcnn.exact_inverse(np.ones((2, 2)))


def test_grey_pairs_put_the_ct_first_and_colour_keeps_the_functional_chroma():
    rng = np.random.default_rng(2)
    a = rng.random((40, 40)).astype(np.float32)
    b = rng.random((40, 40)).astype(np.float32)
    grey = papcnn.nsst_papcnn(a, b, iterations=5)
    expected = to_uint8(papcnn.fuse_nsst_papcnn(np.round(b * 255) / 255, np.round(a * 255) / 255,
                                                       iterations=5) * 255)
    np.testing.assert_array_equal(grey, expected)
    colour = papcnn.nsst_papcnn(a, np.stack([b, b * 0.5, b * 0.2], axis=-1), iterations=5)
    assert colour.shape == (40, 40, 3) and colour.dtype == np.uint8
    assert (colour[..., 0].astype(int) >= colour[..., 2]).mean() > 0.9  # the red-dominant chroma survives
