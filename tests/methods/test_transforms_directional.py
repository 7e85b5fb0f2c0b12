"""Direction-by-direction NSST/NSCT filtering equals the batched arithmetic bit for bit (issue 23, memory).

The batched expressions below are the ones the transforms used before they went one direction at a
time; the fused paths (``nsst_fuse`` / ``nsct_fuse``) must equal decompose → fuse → reconstruct.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import fft as sfft
from scipy.signal import fftconvolve

from fusionbench.methods._transforms import _cache, _conv
from fusionbench.methods._transforms.nsct import (
    nsct_decompose,
    nsct_fuse,
    nsct_reconstruct,
    nsdfb_responses,
)
from fusionbench.methods._transforms.nsst import (
    nsst_decompose,
    nsst_fuse,
    nsst_reconstruct,
    shear_filter_bank,
)

SHAPES = [(64, 64), (97, 130), (37, 41)]


def _rule(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) >= np.abs(y), x, y)


def _mean(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x + y) / 2


@pytest.mark.parametrize("shape", SHAPES)
def test_nsct_per_direction_equals_batched(shape):
    x = np.random.default_rng(1).random(shape)
    low, bands = nsct_decompose(x, (1, 2, 3, 3), "9-7", "pkva")
    highs = []
    for band in bands:
        n = int(np.log2(band.shape[0]))
        resp = nsdfb_responses(shape, "pkva", n, "r")
        highs.append(sfft.irfft2(np.sum(resp * sfft.rfft2(band, axes=(-2, -1)), axis=0), s=shape))
    from fusionbench.methods._transforms._atrous import nsp_decompose, nsp_reconstruct

    _, pyramid = nsp_decompose(x, "9-7", 4)
    for band, high, n in zip(bands, pyramid, (1, 2, 3, 3)):
        batched = sfft.irfft2(nsdfb_responses(shape, "pkva", n, "d") * sfft.rfft2(high), s=shape, axes=(-2, -1))
        np.testing.assert_array_equal(band, batched)
    np.testing.assert_array_equal(nsct_reconstruct(low, bands, "9-7", "pkva"), nsp_reconstruct(low, highs, "9-7"))


@pytest.mark.parametrize("shape", [(64, 64), (96, 96)])
def test_nsst_per_direction_equals_batched(shape):
    x = np.random.default_rng(2).random(shape)
    low, bands = nsst_decompose(x)
    from fusionbench.methods._transforms._atrous import nsp_decompose, nsp_reconstruct

    _, pyramid = nsp_decompose(x, "maxflat", 4)
    highs = []
    for band, high, k, n in zip(bands, pyramid, (2, 2, 3, 3), (4, 4, 8, 8)):
        f = shear_filter_bank(shape, k, n)
        np.testing.assert_array_equal(band, sfft.irfft2(f * sfft.rfft2(high), s=shape, axes=(-2, -1)))
        highs.append(sfft.irfft2(np.sum(np.conj(f) * sfft.rfft2(band, axes=(-2, -1)), axis=0), s=shape))
    np.testing.assert_array_equal(nsst_reconstruct(low, bands), nsp_reconstruct(low, highs, "maxflat"))


@pytest.mark.parametrize("shape", SHAPES)
def test_nsct_fuse_equals_decompose_fuse_reconstruct(shape):
    rng = np.random.default_rng(3)
    a, b = rng.random(shape), rng.random(shape)
    for setting in (((1, 2, 3, 3), "9-7", "pkva"), ((0, 2, 3), "pyrexc", "vk")):
        la, ba = nsct_decompose(a, *setting)
        lb, bb = nsct_decompose(b, *setting)
        ref = nsct_reconstruct(_mean(la, lb), [_rule(x, y) for x, y in zip(ba, bb)], *setting[1:])
        np.testing.assert_array_equal(nsct_fuse(a, b, _mean, _rule, *setting), ref)


@pytest.mark.parametrize("shape", [(64, 64), (97, 130)])
def test_nsst_fuse_equals_decompose_fuse_reconstruct(shape):
    rng = np.random.default_rng(4)
    a, b = rng.random(shape), rng.random(shape)
    la, ba = nsst_decompose(a)
    lb, bb = nsst_decompose(b)
    ref = nsst_reconstruct(_mean(la, lb), [_rule(x, y) for x, y in zip(ba, bb)])
    np.testing.assert_array_equal(nsst_fuse(a, b, _mean, _rule), ref)


@pytest.mark.parametrize("lev", [0, 1, 3])
@pytest.mark.parametrize("ext_shape", [(83, 71), (40, 101), (9, 7), (70, 9)])
def test_atrous_cached_spectrum_equals_fftconvolve(lev, ext_shape):
    """The row-block passes (session 11) give ``fftconvolve``'s bits, gathered rows and columns included."""
    rng = np.random.default_rng(5)
    ext, h = rng.random(ext_shape), rng.random((9, 7))
    hu = np.zeros((9 * 2**lev, 7 * 2**lev))
    hu[:: 2**lev, :: 2**lev] = h
    if ext.shape[0] < hu.shape[0] or ext.shape[1] < hu.shape[1]:
        ext = np.tile(ext, (-(-hu.shape[0] // ext.shape[0]), -(-hu.shape[1] // ext.shape[1])))
    rows, cols = np.arange(ext.shape[0]), np.arange(ext.shape[1])
    expected = fftconvolve(ext, hu, mode="valid")
    np.testing.assert_array_equal(_conv._fftconvolve_valid(ext, rows, cols, h.tobytes(), h.shape, lev), expected)
    # the rows and columns are gathered from an image, as atrous_conv's symmetric extension does
    perm_r, perm_c = rng.permutation(ext.shape[0]), rng.permutation(ext.shape[1])
    image = np.empty_like(ext)
    image[np.ix_(perm_r, perm_c)] = ext
    np.testing.assert_array_equal(_conv._fftconvolve_valid(image, perm_r, perm_c, h.tobytes(), h.shape, lev),
                                  expected)


@pytest.mark.parametrize("shape", [(1, 1), (1, 40), (33, 1), (37, 41), (70, 70), (130, 97)])
def test_atrous_conv_equals_fftconvolve_of_the_symmetric_extension(shape):
    """Every pyramid filter and level (images smaller than the filter included) against scipy's call on ``ext``."""
    from fusionbench.methods._transforms._filters import atrous_filters

    x = np.random.default_rng(6).random(shape)
    for name in ("9-7", "pyrexc", "maxflat"):
        for h in atrous_filters(name):
            h = np.ascontiguousarray(h, dtype=np.float64)
            for lev in range(4):
                p, q = h.shape[0] * 2**lev, h.shape[1] * 2**lev
                s = 1 if lev == 0 else 2 - 2 ** (lev - 1)
                rows = _conv._sym_index(np.arange(shape[0] + p - 1) - (q // 2 - s + 1), shape[0])
                cols = _conv._sym_index(np.arange(shape[1] + q - 1) - (p // 2 - s + 1), shape[1])
                hu = np.zeros((p, q))
                hu[:: 2**lev, :: 2**lev] = h
                np.testing.assert_array_equal(_conv.atrous_conv(x, h, lev),
                                              fftconvolve(x[np.ix_(rows, cols)], hu, mode="valid"))


@pytest.mark.parametrize("shape", [(1, 7), (37, 41), (64, 64)])
def test_atrous_convs_sharing_the_forward_transform_equal_one_filter_at_a_time(shape):
    """Filters of one shape share ``ext``'s spectrum ('pyrexc' h0/h1); other shapes get their own: same bits."""
    from fusionbench.methods._transforms._filters import atrous_filters

    x = np.random.default_rng(7).random(shape)
    for name in ("pyrexc", "9-7"):
        h0, h1, g0, g1 = atrous_filters(name)
        filters = (h1, h0, g0, g1, h0)
        for lev in range(3):
            got = _conv.atrous_convs(x, filters, lev)
            for h, y in zip(filters, got):
                np.testing.assert_array_equal(y, _conv.atrous_conv(x, h, lev))


def test_bounded_cache_evicts_by_bytes(monkeypatch):
    monkeypatch.setattr(_cache, "MAX_BYTES", 3 * 800)
    _cache.clear()
    calls = []

    @_cache.bounded_cache
    def make(i: int) -> np.ndarray:
        calls.append(i)
        return np.full(100, float(i))  # 800 bytes

    for i in (0, 1, 2, 0, 3):  # 3 evicts the least recently used entry, 1
        make(i)
    assert calls == [0, 1, 2, 3] and _cache.bytes_cached() == 3 * 800
    make(1)
    assert calls[-1] == 1 and not make(0).flags.writeable
    _cache.clear()
    assert _cache.bytes_cached() == 0


def test_entries_of_the_current_pass_are_not_evicted_for_each_other(monkeypatch):
    """A pass whose entries exceed the cache keeps what fits for the next pass (plain LRU would keep nothing)."""
    monkeypatch.setattr(_cache, "MAX_BYTES", 3 * 800)
    _cache.clear()
    calls = []

    @_cache.bounded_cache
    def make(i: int) -> np.ndarray:
        calls.append(i)
        return np.full(100, float(i))  # 800 bytes

    for _ in range(3):  # a cyclic working set of 5 entries, 3 fit
        with _cache.one_pass():
            for i in range(5):
                make(i)
    assert calls == [0, 1, 2, 3, 4, 3, 4, 3, 4] and _cache.bytes_cached() == 3 * 800
    with _cache.one_pass():  # another fusion evicts the earlier passes' entries, least recently used first
        make(10)
        make(11)
    assert calls[-2:] == [10, 11]
    make(2)  # still cached (the most recently used of the earlier entries)
    assert calls[-1] == 11
    make(0)
    assert calls[-1] == 0  # evicted for 10 and 11
    _cache.clear()


def test_nsct_fuse_larger_than_the_cache_reuses_part_of_it(monkeypatch):
    """``nsct_fuse`` runs in one pass: a second fusion at the same size finds some responses cached."""
    shape = (64, 64)
    x, y = np.random.default_rng(8).random(shape), np.random.default_rng(9).random(shape)
    monkeypatch.setattr(_cache, "MAX_BYTES", 10**9)
    _cache.clear()
    full = nsct_fuse(x, y, _mean, _rule, (2, 3, 3, 4), "pyrexc", "vk")
    need = _cache.bytes_cached()
    monkeypatch.setattr(_cache, "MAX_BYTES", need // 2)
    _cache.clear()
    built = []
    real = _conv.periodic_kernel_fft

    def counting(*args, **kwargs):
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr("fusionbench.methods._transforms.nsct.periodic_kernel_fft", counting)
    first = nsct_fuse(x, y, _mean, _rule, (2, 3, 3, 4), "pyrexc", "vk")
    n_first = len(built)
    second = nsct_fuse(x, y, _mean, _rule, (2, 3, 3, 4), "pyrexc", "vk")
    assert 0 < len(built) - n_first < n_first  # part rebuilt, part reused
    assert 0 < _cache.bytes_cached() <= need // 2
    np.testing.assert_array_equal(first, full)
    np.testing.assert_array_equal(second, full)
    _cache.clear()


def _former_nsdfb_responses(shape, dir_filter, nlevels, kind):
    """``nsdfb_responses`` as written before session 8 (a list of channels, stacked at the end)."""
    from fusionbench.methods._transforms._filters import nsdfb_filters
    from fusionbench.methods._transforms.nsct import _Q1, _stage

    pkf = _conv.periodic_kernel_fft
    (k1, k2), f1, f2 = nsdfb_filters(dir_filter, kind)
    fan = [pkf(k1, shape), pkf(k2, shape)]
    if nlevels == 1:
        return np.stack(fan)
    fan_q = [pkf(k1, shape, _Q1), pkf(k2, shape, _Q1)]
    y = [fan[0] * fan_q[0], fan[0] * fan_q[1], fan[1] * fan_q[0], fan[1] * fan_q[1]]
    for lev in range(3, nlevels + 1):
        new = [None] * 2 ** lev
        for k in range(1, 2 ** (lev - 1) + 1):
            mkl, i = _stage(lev, k)  # the toolbox's index maths (pinned against Octave in test_transforms_nsct.py)
            new[2 * k - 2] = y[k - 1] * pkf(f1[i], shape, mkl)  # numpy elides the temporary ≥ 256 KiB
            new[2 * k - 1] = y[k - 1] * pkf(f2[i], shape, mkl)
        y = new
    return np.stack(y)


@pytest.mark.parametrize("shape", [(37, 41), (64, 64), (256, 256)])  # 256²: the elided, swapped products
@pytest.mark.parametrize("dir_filter", ["vk", "pkva"])
def test_nsdfb_responses_built_in_place_equal_the_former_construction(shape, dir_filter):
    for nlevels in (1, 2, 3, 4):
        for kind in "dr":
            np.testing.assert_array_equal(nsdfb_responses.__wrapped__(shape, dir_filter, nlevels, kind),
                                          _former_nsdfb_responses(shape, dir_filter, nlevels, kind))


@pytest.mark.parametrize("dir_filter", ["pkva", "vk", "dmaxflat7"])
def test_nsdfb_bank_from_the_cached_shorter_tree_equals_the_whole_tree(dir_filter: str) -> None:
    """Issue 23 (session 9): a bank of n ≥ 3 levels built on the cached bank of n − 1 levels (its parents) has the
    bits of the level-by-level construction (:func:`_former_nsdfb_responses`), with the shorter bank cached or
    not, for both kinds."""
    from fusionbench.methods._transforms import _cache, nsct

    for shape in ((64, 64), (37, 53), (300, 200)):
        for kind in ("d", "r"):
            for warm in (False, True):
                _cache.clear()
                if warm:
                    nsct.nsdfb_responses(shape, dir_filter, 3, kind)
                for n in (1, 2, 3, 4, 5):
                    got = nsct.nsdfb_responses(shape, dir_filter, n, kind)
                    want = _former_nsdfb_responses(shape, dir_filter, n, kind)
                    assert np.array_equal(got.view(np.float64), want.view(np.float64)), (shape, kind, n, warm)
    _cache.clear()


def _whole_kernel_rfft2(f, shape, mat=None):
    """``periodic_kernel_fft`` as written before session 10: the whole R×C kernel, then ``rfft2``."""
    R, C = shape
    fr, fc = f.shape
    rr, cc = np.meshgrid(np.arange(fr), np.arange(fc), indexing="ij")
    if mat is None:
        off_r, off_c = rr - int(np.ceil((fr - 1) / 2)), cc - int(np.ceil((fc - 1) / 2))
    else:
        m0, m1, m2, m3 = int(mat[0, 0]), int(mat[1, 0]), int(mat[0, 1]), int(mat[1, 1])
        new_cols = (m0 - 1) * (fc - 1) + m2 * (fr - 1) + fc - 1
        new_rows = (m3 - 1) * (fr - 1) + m1 * (fc - 1) + fr - 1
        off_r, off_c = m1 * cc + m3 * rr - int(new_rows / 2), m0 * cc + m2 * rr - int(new_cols / 2)
    k = np.zeros((R, C))
    np.add.at(k, (np.mod(off_r, R), np.mod(off_c, C)), f)
    return sfft.rfft2(k)


@pytest.mark.parametrize("shape", [(256, 256), (97, 130), (37, 41), (9, 12), (1, 5), (16, 3), (2, 7)])
def test_periodic_kernel_fft_from_the_nonzero_rows_equals_rfft2_of_the_whole_kernel(shape):
    """Issue 23 (session 10): only the kernel's non-zero rows get a row FFT, the zero rows take pocketfft's own
    transform of a zero row, the column pass runs in place: the bits of ``rfft2`` of the whole kernel, signed
    zeros included, for every fan and stage filter of the three directional filters (4,680 cases up to 1024²
    while developing; a zero row filled with +0 instead of pocketfft's output fails)."""
    from fusionbench.methods._transforms._filters import nsdfb_filters
    from fusionbench.methods._transforms.nsct import _Q1, _stage

    for name in ("vk", "pkva", "dmaxflat7"):
        for kind in "dr":
            (k1, k2), f1, f2 = nsdfb_filters(name, kind)
            cases = [(k1, None), (k2, None), (k1, _Q1), (k2, _Q1)]
            for lev in (3, 4):
                for k in range(1, 2 ** (lev - 1) + 1):
                    mkl, i = _stage(lev, k)
                    cases += [(f1[i], mkl), (f2[i], mkl)]
            buf = np.empty((shape[0], shape[1] // 2 + 1), dtype=np.complex128)
            for f, mat in cases:
                want = _whole_kernel_rfft2(f, shape, mat).view(np.int64)
                got = _conv.periodic_kernel_fft(f, shape, mat)
                assert got.flags.owndata and np.array_equal(got.view(np.int64), want), (name, kind, mat)
                assert _conv.periodic_kernel_fft(f, shape, mat, out=buf) is buf
                assert np.array_equal(buf.view(np.int64), want), (name, kind, mat)


@pytest.mark.parametrize("dir_filter", ["vk", "pkva", "dmaxflat7"])
def test_streamed_bank_channels_equal_the_cached_bank(dir_filter):
    """Issue 23 (session 10): a bank made one channel at a time (``StreamedBank``) has the bits of
    ``nsdfb_responses``, channel by channel, whatever was asked before (the channel buffer is reused)."""
    from fusionbench.methods._transforms.nsct import StreamedBank

    for shape in ((64, 64), (37, 53), (256, 256)):
        for kind in "dr":
            for n in (3, 4, 5):
                want = nsdfb_responses.__wrapped__(shape, dir_filter, n, kind)
                bank = StreamedBank(shape, dir_filter, n, kind)
                assert bank.shape == want.shape and bank.nbytes == want.nbytes and len(bank) == want.shape[0]
                for j in list(range(len(bank))) + [len(bank) - 1, 0]:
                    assert np.array_equal(bank[j].view(np.int64), want[j].view(np.int64)), (shape, kind, n, j)
                for j in (0, len(bank) - 1, 1):  # session 11: the rows made block by block, any block sizes
                    rows = bank.rows(j)
                    for r0, r1 in ((0, 5), (5, 6), (6, shape[0]), (0, shape[0])):
                        assert np.array_equal(rows(r0, r1).view(np.int64), want[j][r0:r1].view(np.int64))
    _cache.clear()


@pytest.mark.parametrize("block_bytes", [1, 3000, 10**9])
def test_products_with_a_channel_in_row_blocks_equal_whole_planes(monkeypatch, block_bytes):
    """Issue 23 (session 11): the analysis products and the synthesis sum a block of rows at a time (one row, a
    few, the whole plane) fuse to the same bits, NSCT with cached and streamed banks, NSST (conjugate) and the
    whole-map path (``context_rows=None``) included."""
    from fusionbench.methods._transforms import _directional

    rng = np.random.default_rng(15)
    a, b = rng.random((67, 93)), rng.random((67, 93))
    want = {}
    for streamed in (False, True):
        monkeypatch.setattr(_cache, "MAX_BYTES", 2 * 8 * 67 * 47 * 16 if streamed else 384 * 2**20)
        _cache.clear()
        for ctx in (0, None):
            for key, fuse in (("nsct", lambda: nsct_fuse(a, b, _mean, _rule, (2, 3, 4), "pyrexc", "vk", context_rows=ctx)),
                              ("nsst", lambda: nsst_fuse(a, b, _mean, _rule, (3, 4), (8, 16), context_rows=ctx))):
                monkeypatch.setattr(_directional, "PRODUCT_BLOCK_BYTES", 10**9)
                ref = want.setdefault((key, ctx), fuse())
                monkeypatch.setattr(_directional, "PRODUCT_BLOCK_BYTES", block_bytes)
                np.testing.assert_array_equal(fuse(), ref)
    _cache.clear()


def test_would_keep_follows_the_admission_rule(monkeypatch):
    monkeypatch.setattr(_cache, "MAX_BYTES", 3 * 800)
    _cache.clear()

    @_cache.bounded_cache
    def make(i: int) -> np.ndarray:
        return np.full(100, float(i))  # 800 bytes

    assert _cache.would_keep(3 * 800) and not _cache.would_keep(3 * 800 + 1)
    with _cache.one_pass():
        make(0)
        make(1)
        assert _cache.would_keep(800) and not _cache.would_keep(1600)  # 0 and 1 are this pass's
        assert make.peek(0) is not None and make.peek(7) is None
    assert _cache.would_keep(3 * 800)  # outside a pass everything may be evicted
    with _cache.one_pass():
        make(2)
        assert _cache.would_keep(1600)  # 0 and 1 belong to an earlier pass now
        assert not _cache.would_keep(2400)
    _cache.clear()


def test_nsct_fuse_streams_the_banks_the_cache_would_not_keep(monkeypatch):
    """Issue 23 (session 10): with a cache too small for the 4-level banks, ``nsct_fuse`` makes them one channel
    at a time, keeps the rest cached, and fuses to the same bits as with a cache that holds everything."""
    from fusionbench.methods._transforms import nsct

    shape = (96, 80)
    x, y = np.random.default_rng(10).random(shape), np.random.default_rng(11).random(shape)
    setting = ((2, 3, 3, 4), "pyrexc", "vk")
    monkeypatch.setattr(_cache, "MAX_BYTES", 10**9)
    _cache.clear()
    full = nsct_fuse(x, y, _mean, _rule, *setting)
    bank4 = nsdfb_responses(shape, "vk", 4, "d").nbytes
    need = _cache.bytes_cached()
    limit = need - 3 * bank4 // 2  # room for one of the two 4-level banks (one and a half too many)
    monkeypatch.setattr(_cache, "MAX_BYTES", limit)
    _cache.clear()
    made = []
    real = nsct.StreamedBank

    def spy(*args):
        made.append(args)
        return real(*args)

    monkeypatch.setattr(nsct, "StreamedBank", spy)
    for _ in range(3):
        np.testing.assert_array_equal(nsct_fuse(x, y, _mean, _rule, *setting), full)
        assert _cache.bytes_cached() <= limit
    assert len(made) == 3 and all(a[2] == 4 for a in made)  # one bank a pair: the other one stays cached
    _cache.clear()


@pytest.mark.parametrize("shape", [(97, 130), (67, 93), (257, 263), (130, 101), (9, 12), (1, 5), (5, 1), (16, 3),
                                   (2, 7), (64, 64), (96, 200)])
def test_fused_spectrum_by_rows_equals_the_2d_transforms(shape):
    """Issue 23 (session 10): column passes on whole planes, row passes + scaling + a pointwise rule on blocks of
    rows give the bits of ``rfft2(rule(irfft2(r·s1), irfft2(r·s2)))`` (odd, prime, one-row and one-column sizes;
    509×1021 and 1024² too while developing).  Scaling by ``1/R`` then ``1/C`` instead of pocketfft's ``1/(R·C)``
    fails here."""
    from fusionbench.methods._transforms import _directional

    rng = np.random.default_rng(12)
    s1, s2, resp = (sfft.rfft2(rng.random(shape)) for _ in range(3))
    want = sfft.rfft2(_rule(sfft.irfft2(resp * s1, s=shape), sfft.irfft2(resp * s2, s=shape)))
    scratch = [np.empty_like(s1) for _ in range(3)]
    for block in (_directional.ROW_BLOCK, 2, 1):
        _directional.ROW_BLOCK, saved = block, _directional.ROW_BLOCK
        try:
            got = _directional._fused_spectrum_by_rows(resp, s1, s2, shape, _rule, *scratch)
        finally:
            _directional.ROW_BLOCK = saved
        assert np.array_equal(got.view(np.int64), want.view(np.int64)), (shape, block)


@pytest.mark.parametrize("shape", [(97, 130), (64, 64), (37, 41)])
def test_pointwise_fusions_equal_the_whole_map_fusions(shape):
    """``context_rows=0`` (the rule on blocks of rows) fuses to the same bits as the whole-map path, NSCT and NSST."""
    rng = np.random.default_rng(13)
    a, b = rng.random(shape), rng.random(shape)
    for setting in (((2, 3, 3, 4), "pyrexc", "vk"), ((1, 2, 3, 3), "9-7", "pkva"), ((0, 2), "maxflat", "dmaxflat7")):
        np.testing.assert_array_equal(nsct_fuse(a, b, _mean, _rule, *setting, context_rows=0),
                                      nsct_fuse(a, b, _mean, _rule, *setting))
    for dcomp, dsize in (((2, 2, 3, 3), (4, 4, 8, 8)), ((3, 3, 4, 4), (8, 8, 16, 16))):
        np.testing.assert_array_equal(nsst_fuse(a, b, _mean, _rule, dcomp, dsize, context_rows=0),
                                      nsst_fuse(a, b, _mean, _rule, dcomp, dsize))
    _cache.clear()


@pytest.mark.parametrize("shape", [(300, 200), (97, 130), (70, 64)])
def test_row_local_rule_in_blocks_with_context_equals_whole_maps(shape):
    """Issue 23 (session 10): CNP's WLE·INSML rule (3 rows of reach) on row blocks with 3 rows of context either
    side gives the whole-map NSST fusion bit for bit; with 2 rows of context (too few) it does not."""
    from fusionbench.methods._neural_p import _RULE_HALO, wle_insml_rule
    from fusionbench.methods._transforms import _directional

    rng = np.random.default_rng(14)
    a, b = rng.random(shape), rng.random(shape)

    def rule(x, y):
        return wle_insml_rule(x, y, "cnp")

    want = nsst_fuse(a, b, _mean, rule)
    for block in (_directional.CONTEXT_BLOCK, 32, 7):
        _directional.CONTEXT_BLOCK, saved = block, _directional.CONTEXT_BLOCK
        try:
            np.testing.assert_array_equal(nsst_fuse(a, b, _mean, rule, context_rows=_RULE_HALO), want)
            if block < shape[0]:  # (one block: no block edge inside the image)
                assert not np.array_equal(nsst_fuse(a, b, _mean, rule, context_rows=_RULE_HALO - 1), want)
        finally:
            _directional.CONTEXT_BLOCK = saved
    _cache.clear()
