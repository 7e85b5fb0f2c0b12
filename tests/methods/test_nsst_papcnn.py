"""NSST-PAPCNN (``nsst_papcnn``) against the official MATLAB code run under GNU Octave, and its parts.

The reference results in ``octave_papcnn/`` were made by ``scripts/reference_runs/run_papcnn.m``: the
official ``fuse_NSST_PAPCNN.m`` (yuliu316316/NSST-PAPCNN-Fusion @ 04454e9) unchanged under Octave 7.3,
called as the two official demos call it, with MATLAB's ``graythresh`` (``shims/papcnn/graythresh.m``).
That run reproduces the repository's own MATLAB result ``results/fused.tif`` bit for bit.  Measured
(``case_agreement.py``, docs/fidelity.md): every value identical on all 63 cases run.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import convolve2d

from fusionbench.method_registry import create_method
from fusionbench.methods import nsst_papcnn as papcnn
from fusionbench.methods._matlab import to_uint8

from ._octave_cases import case_image, committed_cases, committed_result

@pytest.mark.parametrize("row", committed_cases("octave_papcnn"), ids=lambda row: row["name"])
def test_equals_the_official_code_under_octave(shared_dir, row):
    mri, other = (case_image(shared_dir, row[key], row["crop"], grey=False) for key in ("mri", "other"))
    ours = create_method("nsst_papcnn")(mri, other)
    reference = committed_result("octave_papcnn", row["name"])
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
