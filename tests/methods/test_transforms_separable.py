"""Axis-0 passes on the rows of a transpose give the libraries' values bit for bit (issue 23, growth).

The pyramids' filters, the energy / consistency windows of ``choose_max`` and the DWT run their
axis-0 step on a transposed copy (``_transforms._separable``) instead of scipy's / PyWavelets'
strided column walk; these tests compare with the direct library calls, on square, odd and
tall/wide shapes and on shapes that make a second row block.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import pywt
from scipy import ndimage

from fusionbench.methods._transforms import dwt_decompose, dwt_reconstruct
from fusionbench.methods._transforms._separable import BLOCK_ROWS, axis0_then_axis1, transpose
from fusionbench.methods._transforms.pyramids import _sep_filter, expand, reduce
from fusionbench.methods.classical import _window_mean, choose_max

SHAPES = [(1, 1), (2, 5), (7, 3), (64, 64), (BLOCK_ROWS + 3, 37), (130, 2 * BLOCK_ROWS + 1), (301, 499)]
KERNEL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _image(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("shape", SHAPES)
def test_transpose_is_a_copy_of_the_transpose(shape):
    x = _image(shape)
    t = transpose(x)
    assert t.flags.c_contiguous and t.dtype == x.dtype
    np.testing.assert_array_equal(t, x.T)
    np.testing.assert_array_equal(transpose(x[:, ::2]), x[:, ::2].T)  # a strided source


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", ["mirror", "reflect", "constant", "nearest"])
def test_separable_correlation_equals_scipy(shape, mode):
    x = _image(shape, 1)
    for kernel in (KERNEL, 2.0 * KERNEL, np.array([0.2, -0.7, 0.5, 0.1])):
        ref = ndimage.correlate1d(ndimage.correlate1d(x, kernel, axis=0, mode=mode), kernel, axis=1, mode=mode)
        got = axis0_then_axis1(x, lambda y, axis: ndimage.correlate1d(y, kernel, axis=axis, mode=mode))
        np.testing.assert_array_equal(got, ref)
    ref = ndimage.correlate1d(ndimage.correlate1d(x, KERNEL, axis=0, mode=mode), KERNEL, axis=1, mode=mode)
    np.testing.assert_array_equal(_sep_filter(x, KERNEL, mode), ref)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("window", [1, 3, 5])
def test_window_mean_equals_uniform_filter(shape, window):
    x = _image(shape, 2) ** 2
    np.testing.assert_array_equal(_window_mean(x, window), ndimage.uniform_filter(x, size=window, mode="mirror"))
    stack = np.stack([x, -x])  # leading axes take scipy's own path
    np.testing.assert_array_equal(_window_mean(stack, window),
                                  ndimage.uniform_filter(stack, size=(1, window, window), mode="mirror"))


@pytest.mark.parametrize("shape", [(1, 9), (31, 5), (64, 64), (131, 77), (301, 499)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_choose_max_abs_in_strips_equals_np_where(shape, dtype):
    a, b = _image(shape, 3).astype(dtype), _image(shape, 4).astype(dtype)
    b[0, 0], a[-1, -1] = a[0, 0], np.nan  # a tie goes to a; NaN loses
    got = choose_max(a, b, "abs")
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, np.where(np.abs(a) >= np.abs(b), a, b))


@pytest.mark.parametrize("shape", [(64, 64), (131, 77), (301, 499)])
def test_choose_max_equals_the_scipy_formulation(shape):
    a, b = _image(shape, 3), _image(shape, 4)
    for window, consistency in ((3, False), (3, True), (5, True)):
        ea = ndimage.uniform_filter(a * a, size=window, mode="mirror")
        eb = ndimage.uniform_filter(b * b, size=window, mode="mirror")
        take = ea >= eb
        if consistency:
            take = ndimage.uniform_filter(take.astype(np.float64), size=3, mode="mirror") > 0.5
        np.testing.assert_array_equal(choose_max(a, b, "energy", window, consistency), np.where(take, a, b))


@pytest.mark.parametrize("shape", [(64, 64), (75, 50), (130, 129)])
@pytest.mark.parametrize("variant", ["burt", "mertens"])
def test_reduce_and_expand_equal_the_direct_filters(shape, variant):
    x = _image(shape, 5)
    mode = "mirror" if variant == "burt" else "reflect"
    direct = ndimage.correlate1d(ndimage.correlate1d(x, KERNEL, axis=0, mode=mode), KERNEL, axis=1, mode=mode)
    np.testing.assert_array_equal(reduce(x, variant), direct[::2, ::2])
    small = reduce(x, variant)
    if variant == "burt":
        up = np.zeros(shape)
        up[::2, ::2] = small
        k2 = 2.0 * KERNEL
        ref = ndimage.correlate1d(ndimage.correlate1d(up, k2, axis=0, mode="mirror"), k2, axis=1, mode="mirror")
        np.testing.assert_array_equal(expand(small, shape, variant), ref)


@pytest.mark.parametrize("shape", [(8, 8), (37, 41), (64, 64), (101, 128), (BLOCK_ROWS + 1, 3 * BLOCK_ROWS + 5)])
@pytest.mark.parametrize("wavelet,mode,level", [("db1", "periodization", 4), ("db2", "symmetric", 3),
                                                ("sym4", "periodization", 3), ("db3", "symmetric", 2),
                                                ("db2", "zero", 2)])
def test_dwt_equals_pywavelets(shape, wavelet, mode, level):
    x = _image(shape, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = pywt.wavedec2(x, wavelet, mode=mode, level=level)
        got = dwt_decompose(x, wavelet, level, mode)
    assert len(got) == len(ref)
    np.testing.assert_array_equal(got[0], ref[0])
    for g, r in zip(got[1:], ref[1:]):
        assert len(g) == 3
        for gi, ri in zip(g, r):
            np.testing.assert_array_equal(gi, ri)
    # a fused-like coefficient set (not the decomposition of any image) reconstructs as waverec2 does
    mixed = [ref[0] * 0.5] + [tuple(c[::-1, ::-1] for c in t) for t in ref[1:]]
    np.testing.assert_array_equal(dwt_reconstruct(mixed, wavelet, mode), pywt.waverec2(mixed, wavelet, mode=mode))
    np.testing.assert_array_equal(dwt_reconstruct(ref, wavelet, mode, shape),
                                  pywt.waverec2(ref, wavelet, mode=mode)[: shape[0], : shape[1]])


def test_dwt_warns_as_pywavelets_when_the_level_is_too_high():
    x = _image((9, 12), 7)
    with pytest.warns(UserWarning, match="Level value of 4 is too high"):
        dwt_decompose(x, "db2", 4, "symmetric")
    with pytest.raises(ValueError):
        dwt_decompose(x, "db2", -1, "symmetric")
