"""The compiled filters behind the fast metrics, against the library calls they replace.

Where a helper's docstring promises bit-for-bit equality with ``scipy.ndimage``
(the metrics test window variances for exact zero, so the summation order is
part of the calibration), the test asserts exact equality.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from fusionbench.metrics.functional import _filters, _ssim_fast, _vif_kernels
from fusionbench.metrics.functional._threads import fft_workers

RNG = np.random.default_rng(11)
GREY = RNG.integers(0, 256, (3, 37, 41)).astype(np.float64)  # odd, unequal sizes on purpose
NOISE = RNG.normal(0, 50, (2, 33, 30))


def _scipy_sep(x, g, mode):
    y = ndimage.correlate1d(x, g, axis=-1, mode=mode)
    return ndimage.correlate1d(y, g, axis=-2, mode=mode)


@pytest.mark.parametrize("mode", ["constant", "nearest", "reflect"])
@pytest.mark.parametrize("n,sigma", [(11, 1.5), (7, 1.0), (3, 0.5)])
@pytest.mark.parametrize("x", [GREY, NOISE], ids=["grey", "noise"])
def test_sep_filter_is_correlate1d_bit_for_bit(mode, n, sigma, x):
    g = _filters.gaussian_1d(n, sigma)
    np.testing.assert_array_equal(_ssim_fast.sep_filter(x, g, mode=mode), _scipy_sep(x, g, mode))


@pytest.mark.parametrize("x", [GREY, NOISE], ids=["grey", "noise"])
def test_sep_filter_valid_is_the_valid_part(x):
    g = _filters.gaussian_1d(11, 1.5)
    np.testing.assert_array_equal(_ssim_fast.sep_filter(x, g, valid=True), _filters.sep_valid(x, g))
    np.testing.assert_array_equal(_ssim_fast.sep_filter(x[0], g, valid=True), _filters.sep_valid(x[0], g))


def test_sep_filter_rejects_asymmetric_kernels():
    with pytest.raises(ValueError, match="symmetric"):
        _ssim_fast.sep_filter(GREY, np.array([1.0, 2.0, 3.0]))


@pytest.mark.parametrize("size", [7, 8])
def test_box_valid_is_the_cumulative_sum_version(size):
    for x in (GREY, NOISE):
        np.testing.assert_array_equal(_ssim_fast.box_valid(x, size), _filters.box_valid(x, size))


@pytest.mark.parametrize("size", [3, 7])
def test_uniform_reflect_is_uniform_filter1d(size):
    for x in (GREY, NOISE):
        ref = ndimage.uniform_filter1d(ndimage.uniform_filter1d(x, size, axis=-1, mode="reflect"),
                                       size, axis=-2, mode="reflect")
        np.testing.assert_array_equal(_ssim_fast.uniform_reflect(x, size), ref)


def test_prewitt_magnitude_on_grey_levels():
    k = np.array([[1.0, 0, -1]] * 3)
    gx = ndimage.correlate(GREY, k[None], mode="constant")
    gy = ndimage.correlate(GREY, k.T[None], mode="constant")
    np.testing.assert_array_equal(_ssim_fast.prewitt_mag(GREY), np.sqrt(gx * gx + gy * gy))


def test_ssim_formula_matches_numpy_expression():
    mx, my, vx, vy, cxy = (RNG.random((20, 21)) * 100 for _ in range(5))
    C1, C2 = 6.5025, 58.5225
    ref = ((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2))
    np.testing.assert_array_equal(_ssim_fast.ssim_formula(mx, my, vx, vy, cxy, C1, C2), ref)


def test_skimage_ssim_means_match_numpy():
    s = RNG.random((8, 24, 26)) * 2
    s[3:6] += 3  # second moments above the squared means
    C1, C2, cov_norm, crop = 1e-4, 9e-4, 49 / 48, 3

    def mean_map(k):
        uf, ux = s[0], s[k]
        vf, vx, vxy = (cov_norm * (s[3] - uf * uf), cov_norm * (s[3 + k] - ux * ux),
                       cov_norm * (s[5 + k] - uf * ux))
        m = ((2 * uf * ux + C1) * (2 * vxy + C2)) / ((uf * uf + ux * ux + C1) * (vf + vx + C2))
        return m[crop:-crop, crop:-crop].mean()

    got = _ssim_fast.skimage_ssim_means(s, C1, C2, cov_norm, crop)
    assert got == pytest.approx((mean_map(1), mean_map(2)), rel=1e-13)


def test_gsm_terms_match_the_masked_numpy_chain():
    k, h, w = 2, 15, 16
    s11 = RNG.normal(0, 1, (k, h, w)) * 10
    s22 = RNG.normal(0, 1, (h, w)) * 10
    s12 = RNG.normal(0, 1, (k, h, w)) * 10
    s11[0, :3] = 0.0  # flat reference windows
    s22[5:7] = 1e-12  # flat distorted windows
    num, den = np.empty((k, h, w)), np.empty((k, h, w))
    _vif_kernels.gsm_log_args(s11, s22, s12, 2.0, num, den)

    eps = 1e-10
    a = np.maximum(s11, 0.0)
    c = np.broadcast_to(np.maximum(s22, 0.0), a.shape)
    gg = s12 / (a + eps)
    sv = c - gg * s12
    low1, low2 = a < eps, c < eps
    gg, sv, a = np.where(low1, 0.0, gg), np.where(low1, c, sv), np.where(low1, 0.0, a)
    gg, sv = np.where(low2, 0.0, gg), np.where(low2, 0.0, sv)
    neg = gg < 0
    sv, gg = np.where(neg, c, sv), np.where(neg, 0.0, gg)
    sv = np.maximum(sv, eps)
    np.testing.assert_array_equal(num, 1 + gg * gg * a / (sv + 2.0))
    np.testing.assert_array_equal(den, 1 + a / 2.0)


def test_fft_workers_follow_the_worker_cap(monkeypatch):
    monkeypatch.setenv("FUSIONBENCH_WORKER_THREADS", "1")
    assert fft_workers() == 1
    monkeypatch.delenv("FUSIONBENCH_WORKER_THREADS")
    assert fft_workers() >= 1


def test_qp_filter_products_are_numpys_bit_for_bit():
    """``_pc_kernels.apply_bank`` (Qp's spectrum × log-Gabor bank) equals numpy's complex64 × float32 product."""
    import scipy.fft as sfft

    from fusionbench.metrics.functional._pc_kernels import apply_bank
    from fusionbench.metrics.functional.perceptual import NSCALE, _filters

    rng = np.random.default_rng(4)
    stack = rng.integers(0, 256, (3, 40, 36)).astype(float)
    stack[0, :10] = 0.0  # flat parts: zero spectra and signed zeros
    spec = sfft.fft2(stack, axes=(-2, -1)).astype(np.complex64)
    spec[1, 0, :5] = [0, -0.0, complex(-0.0, -0.0), complex(-1, -0.0), complex(0, -2)]
    bank, _ = _filters(40, 36)
    out = np.empty((3, NSCALE, 40, 36), dtype=np.complex64)
    for o in range(bank.shape[0]):
        apply_bank(spec.view(np.float32), bank[o], out.view(np.float32))
        np.testing.assert_array_equal(out.view(np.uint32), (spec[:, None] * bank[o]).view(np.uint32))


@pytest.mark.parametrize("nscale", [4, 3, 2, 1], ids=["4", "3-divides", "2", "1"])
def test_qp_weight_exponent_is_the_formula_bit_for_bit(nscale):
    """``orientation_energy``'s exponent (cutoff − ΣAn/(max An + ε)/nscale)·g: multiplying by 1/nscale
    for a power of two gives exactly numpy's division (and the division is kept otherwise)."""
    from fusionbench.metrics.functional._pc_kernels import _cabs, orientation_energy

    rng = np.random.default_rng(7)
    eo = (rng.standard_normal((2, nscale, 6, 10)) + 1j * rng.standard_normal((2, nscale, 6, 10))).astype(np.complex64)
    eo[0, :, 0, :3] = 0  # no response at all: amplitude sum 0
    eo[1, :, 1, :2] *= np.float32(1e-30)  # tiny amplitudes
    an0 = np.empty((2, 6, 10), dtype=np.float32)
    sum_an, energy, arg = np.empty((3, 2, 6, 10))
    eps, cutoff, g = 1e-4, 0.5, 10.0
    orientation_energy(eo.view(np.float32), eps, cutoff, g, an0, sum_an, energy, arg)
    amp = np.vectorize(lambda z: float(_cabs(np.float32(z.real), np.float32(z.imag))))(eo)
    np.testing.assert_array_equal(sum_an, np.add.reduce(amp, axis=1))  # scales added in order
    np.testing.assert_array_equal(arg, (cutoff - sum_an / (amp.max(axis=1) + eps) / nscale) * g)


def _numpy_sobel_edge(x):
    """The former numpy/ndimage formulation of ``_edge.sobel_edge`` (Octave ``edge`` defaults)."""
    im = x / 255.0
    k = np.array([[1.0, 2, 1], [0, 0, 0], [-1, -2, -1]]) / 8.0
    gy = ndimage.correlate(im, k, mode="nearest")
    gx = ndimage.correlate(im, k.T, mode="nearest")
    s = gy * gy + gx * gx
    s = np.where(s <= 4 * s.mean(), 0.0, s)
    p = np.pad(s, 1)
    c = p[1:-1, 1:-1]
    return ((c > p[1:-1, :-2]) & (c > p[1:-1, 2:])) | ((c > p[:-2, 1:-1]) & (c > p[2:, 1:-1])), gy * gy + gx * gx


@pytest.mark.parametrize("x", [GREY[0], NOISE[0] + 128, GREY[1, :1], GREY[2, :, :1], np.full((4, 6), 7.0)],
                         ids=["grey", "noise", "one-row", "one-column", "flat"])
def test_sobel_edge_is_the_ndimage_formulation_bit_for_bit(x):
    from fusionbench.metrics.functional import _edge

    edges, strength = _numpy_sobel_edge(x)
    s = np.empty_like(x)
    _edge._strength(np.ascontiguousarray(x / 255.0), s)
    np.testing.assert_array_equal(s, strength)  # exact: the gradient sums in ndimage's tap order
    np.testing.assert_array_equal(_edge.sobel_edge(x), edges)


@pytest.mark.parametrize("n", [17, 9, 5, 3])
@pytest.mark.parametrize("x", [GREY, NOISE], ids=["grey", "noise"])
def test_vif_scale_filters_are_ndimage_bit_for_bit(n, x):
    """VIF's scales: 'valid' filtering and 2x decimation by the compiled filter, as ndimage's."""
    g = _filters.gaussian_1d(n, n / 5.0)
    full = _ssim_fast.sep_filter(x, g, valid=True)
    np.testing.assert_array_equal(full[..., ::2, ::2], _filters.sep_valid_decimate(x, g))
    np.testing.assert_array_equal(full, _filters.sep_valid(x, g))


def test_sep_filter_writes_into_out_and_refuses_bad_buffers():
    g = _filters.gaussian_1d(11, 1.5)
    buf = np.full(GREY.size + 7, np.nan)[:GREY.size]  # flat scratch, as Qp passes it
    got = _ssim_fast.sep_filter(GREY, g, out=buf)
    np.testing.assert_array_equal(got, _scipy_sep(GREY, g, "constant"))
    assert np.shares_memory(got, buf)
    with pytest.raises(ValueError, match="C-contiguous float64"):
        _ssim_fast.sep_filter(GREY, g, out=np.empty(GREY.size - 1))
    with pytest.raises(ValueError, match="overlap"):
        x = GREY.copy()
        _ssim_fast.sep_filter(x, g, out=x)


@pytest.mark.parametrize("rows,cols,band", [(37, 41, 4), (37, 41, 5), (37, 41, 11), (30, 23, 29), (12, 9, 1)])
def test_qp_banded_masked_correlation_is_the_whole_image_bit_for_bit(monkeypatch, rows, cols, band):
    """Qp's masked correlation in bands of rows (5 rows of context each side) gives exactly the
    whole-image score: the filtered maps of every kept row and the row-major sum are unchanged."""
    from fusionbench.metrics.functional import perceptual as P

    rng = np.random.default_rng(rows * cols + band)
    x = rng.random((4, rows, cols))
    x[:, :3] = 0.0  # flat rows at the top border
    m = rng.random((3, rows, cols)) > 0.3
    whole = P._masked_corr(*x, *m, *P._band_buffers(rows, cols))
    monkeypatch.setattr(P, "_BAND_ABOVE", 0)
    monkeypatch.setattr(P, "_BAND_ROWS", band)
    P_, S_, b = P._band_buffers(rows, cols)
    assert b == band and P_.size <= 11 * (band + 10) * cols
    assert P._masked_corr(*x, *m, P_, S_, b) == whole
    # and the whole-image score is the plain numpy/ndimage formulation to round-off
    g = _filters.gaussian_1d(11, 1.5)
    x1, x2, xm, xf = x
    m1, m2, m3 = m
    a1, a2, am = m1 * x1, m2 * x2, m3 * xm
    mu = [_scipy_sep(v, g, "constant") for v in (a1, a2, am, xf)]
    sec = [_scipy_sep(v, g, "constant") for v in (a1 * a1, a2 * a2, am * am, xf * xf, a1 * xf, a2 * xf, am * xf)]
    sf = sec[3] - mu[3] ** 2
    r = [np.where(mk, (sec[4 + k] - mu[k] * mu[3] + 1e-4) / (np.sqrt(np.abs((sec[k] - mu[k] ** 2) * sf)) + 1e-4), 0.0)
         for k, mk in enumerate(m)]
    np.testing.assert_allclose(whole, np.maximum(np.maximum(r[0], r[1]), r[2]).sum() / m3.sum(), rtol=1e-12)


@pytest.mark.parametrize("per_image", [False, True], ids=["batched", "one-by-one"])
def test_qp_phase_congruency_per_image_equals_each_image_alone(monkeypatch, per_image):
    """Qp filters its three images together (small) or one after another into reused buffers (above
    ``_BAND_ABOVE`` pixels): either way each image's (PC, M, m) is exactly what the image alone gives."""
    from fusionbench.metrics.functional import perceptual
    from fusionbench.metrics.functional.perceptual import phase_congruency

    if per_image:
        monkeypatch.setattr(perceptual, "_BAND_ABOVE", 0)

    rng = np.random.default_rng(3)
    stack = rng.integers(0, 256, (3, 33, 28)).astype(float)
    stack[1, :, :6] = 17.0  # a flat part
    together = phase_congruency(stack)
    for i in range(3):
        for got, alone in zip(together, phase_congruency(stack[i])):
            np.testing.assert_array_equal(got[i], alone)


@pytest.mark.parametrize("band", [1, 7, 16, 40])
def test_qcb_in_bands_is_the_whole_image_bit_for_bit(monkeypatch, band):
    """Qcb's two 31×31 filterings and contrast in bands of rows (15 rows of context each side) give
    exactly the whole-image value, black backgrounds included."""
    from fusionbench.metrics.functional import visual

    rng = np.random.default_rng(band)
    f, a, b = rng.integers(0, 256, (3, 45, 38)).astype(np.uint8)
    a[:12] = 0  # black background: contrast ratios of tiny local means
    f[30:, :9] = 0
    whole = [visual.qcb(f, a, b), visual.qcb(f, a, b, unit_scale_first=True)]
    monkeypatch.setattr(visual, "_QCB_BAND_ABOVE", 0)
    monkeypatch.setattr(visual, "_QCB_BAND_ROWS", band)
    assert [visual.qcb(f, a, b), visual.qcb(f, a, b, unit_scale_first=True)] == whole
