"""CNP: neuron model and rules against literal references; bit-exact against Octave and the official outputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from scipy.signal import convolve2d

from fusionbench.method_registry import create_method
from fusionbench.methods import _neural_p as npn

from ._neural_p_cases import OCTAVE_PAIRS, check_luma_path, octave_agreement, official_agreement


def _cnp_literal(stimulus: np.ndarray, n: int, theta0: float = 0.3, size: int = 7) -> np.ndarray:
    """``CNP_test.m`` written literally with whole-array ``where`` (independent of the port's form)."""
    w = npn.link_kernel(size)
    f = np.zeros_like(stimulus)
    link = np.zeros_like(stimulus)
    theta = np.full_like(stimulus, theta0)
    p = np.zeros_like(stimulus)
    fires = np.zeros_like(stimulus)
    for _ in range(n):
        work = convolve2d(p, w, mode="same")
        quiet = p == 0
        f = np.where(quiet, f + stimulus + work, stimulus + work)
        link = np.where(quiet, link + work, work)
        theta = np.where(quiet, theta, p)
        p = (f * (1 + link) >= theta).astype(np.float64)
        fires += p
    return fires


def test_registered() -> None:
    m = create_method("cnp")
    assert m.info.display_name == "CNP" and m.info.colour == "luma"
    assert m.params == {"iterations": 110}


def test_link_kernel_and_conv_order() -> None:
    w = npn.link_kernel(7)
    assert w[3, 3] == 0 and w[3, 4] == 1 and w[0, 0] == 1 / np.sqrt(18)
    order = npn.conv_same_order(7)
    assert len(order) == 48
    # columns left to right, bottom row first inside a column
    assert order[0][:2] == (3, -3) and order[6][:2] == (-3, -3) and order[-1][:2] == (-3, 3)


@pytest.mark.parametrize("scale", [1.0, 0.02])
def test_cnp_neuron_matches_literal_model(scale: float) -> None:
    rng = np.random.default_rng(3)
    maps = rng.random((2, 23, 31)) * scale
    maps[1, :8, :8] = 0.0  # a dark corner, driven only by its neighbours
    counts = npn.cnp_firing_counts(maps, 110)
    expected = np.stack([_cnp_literal(m, 110) for m in maps])
    np.testing.assert_array_equal(counts, expected)
    assert counts.dtype == np.int32 and 0 < counts.mean() < 110


def test_cnp_initial_threshold_matters() -> None:
    # a constant stimulus below θ0 = 0.3 cannot fire at the first step, above it can
    low = npn.cnp_firing_counts(np.full((1, 9, 9), 0.2), 1)
    high = npn.cnp_firing_counts(np.full((1, 9, 9), 0.4), 1)
    assert low.sum() == 0 and high.min() == 1


def _insml_literal(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    xp = np.pad(x, 1, mode="symmetric")
    rows, cols = x.shape
    total = np.zeros_like(x)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            weight = 1.0 if dr == 0 or dc == 0 else 1 / np.sqrt(2)
            total += weight * np.abs(x - xp[1 + dr:1 + dr + rows, 1 + dc:1 + dc + cols])
    cp = np.sqrt(ndimage.uniform_filter(total, 3, mode="reflect"))
    return ndimage.convolve(cp, kernel, mode="reflect")


def test_insml_wle_majority_match_scipy_references() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 20, 27))
    for name in ("cnp", "dtnp"):
        got = npn.insml(x, name)
        for i in range(2):
            np.testing.assert_allclose(got[i], _insml_literal(x[i], npn.INSML_SMOOTHING[name]), rtol=1e-12)
    # CNP's INSML smoothing kernel differs from DTNP's
    assert not np.allclose(npn.insml(x, "cnp"), npn.insml(x, "dtnp"))
    np.testing.assert_allclose(npn.wle(x[0]), ndimage.convolve(x[0] ** 2, npn.WLE_KERNEL, mode="mirror"), rtol=1e-12)
    decision = rng.random((2, 30, 33)) > 0.45
    sums = np.stack([ndimage.correlate(d.astype(int), np.ones((9, 9), int), mode="reflect") for d in decision])
    np.testing.assert_array_equal(npn.majority_filter(decision, 9), sums >= 41)


def test_octave_ct_and_pet_bit_exact(shared_dir: Path) -> None:
    """Octave runs of the official code (``cnp_cnptest/``): measured bit-exact (100 % of pixels)."""
    agr = octave_agreement(shared_dir, "cnp", "cnp_cnptest", ("MRI-CT_2006", "MRI-PET_25030"))
    assert agr.max_abs == 0, str(agr)  # every pixel identical


# measured (exact share, share within ±1, PSNR dB), the same on every CPU (docs/cpu_independence.md)
@pytest.mark.parametrize("name,exact,within1,psnr", [
    ("MRI-PET_25030", 0.9837, 0.9999, 65.95),
    ("MRI-PET_41052", 0.9922, 1.0, 69.23),
])
def test_colour_pet_luma_path(shared_dir: Path, name: str, exact: float, within1: float, psnr: float) -> None:
    """The runner's path for a colour PET: BT.601 luma instead of MATLAB's ``rgb2gray``.

    Measured: the grey fused luma is 98.37 % exact, 99.99 % within ±1 of the Octave run on
    MRI-PET_25030 (the luma inputs differ by 1 grey level at 252 pixels), 99.22 % / 100 % on
    MRI-PET_41052; the output is colour (PET chroma put back by the runner).
    """
    check_luma_path(shared_dir, "cnp", "cnp_cnptest", name, exact, within1, psnr)


@pytest.mark.slow
def test_octave_all_pairs_bit_exact(shared_dir: Path) -> None:
    """All six Octave pairs: measured bit-exact (PSNR inf, MAD 0, 100 % exact)."""
    agr = octave_agreement(shared_dir, "cnp", "cnp_cnptest", OCTAVE_PAIRS)
    assert agr.max_abs == 0, str(agr)  # every pixel identical


def test_official_outputs_bit_exact(official_dir: Path) -> None:
    """The authors' MATLAB P-code results ``results/{1..9,11,12}.tif``: measured bit-exact.

    In the default run (about 2.5 s warm; until session 28 it was marked slow, so CI never checked the claim)."""
    agr = official_agreement("cnp", official_dir)
    assert agr.max_abs == 0, str(agr)  # every pixel identical


@pytest.mark.parametrize("workers", [1, 2])
def test_compiled_neuron_model_equals_numpy_reference(workers: int) -> None:
    """Issue 23: the compiled CNP neuron model gives exactly the counts of the whole-array version."""
    from fusionbench.methods import _neural_p as npn

    rng = np.random.default_rng(6)
    maps = rng.random((3, 31, 27)) * np.array([0.05, 0.3, 2.0])[:, None, None]
    maps[1, 3:12, 5:9] = 0.0
    np.testing.assert_array_equal(npn.cnp_firing_counts(maps, 110, workers=workers),
                                  npn.cnp_firing_counts_numpy(maps, 110))


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (4, 1), (37, 41), (2, 9, 7)])
def test_compiled_wle_equals_numpy_reference(shape) -> None:
    """Issue 23: the compiled WLE gives exactly the values of the whole-array numpy version."""
    from fusionbench.methods import _neural_p as npn

    rng = np.random.default_rng(13)
    for x in (rng.standard_normal(shape), rng.random(shape) * 1e-3, np.zeros(shape)):
        assert np.array_equal(npn.wle(x), npn.wle_numpy(x))


def test_compiled_neuron_model_fixed_point_exit() -> None:
    """Issue 23: the kernel stops once every neuron fired twice in a row; the counts stay those of the reference."""
    from fusionbench.methods import _neural_p as npn

    rng = np.random.default_rng(7)
    # a strong and a weak stimulus with a dark corner: the whole map fires from some iteration on (the exit is
    # taken); a dark map never fires (the exit is not taken)
    maps = rng.random((3, 19, 23)) * np.array([2.0, 0.01, 0.0])[:, None, None]
    maps[1, :5, :5] = 0.0
    got = npn.cnp_firing_counts(maps, 110, workers=1)
    want = npn.cnp_firing_counts_numpy(maps, 110)
    np.testing.assert_array_equal(got, want)
    assert want[0].min() >= 100 and want[1].min() > 0 and want[2].max() == 0
    for iterations in (1, 2, 3, 7):  # the exit near the first iterations
        np.testing.assert_array_equal(npn.cnp_firing_counts(maps, iterations, workers=1),
                                      npn.cnp_firing_counts_numpy(maps, iterations))


@pytest.mark.parametrize("block", [3, 4, 7, 32, 1000])
def test_neuron_model_skips_settled_segments_exactly(block: int) -> None:
    """Issue 23 (session 9): segments of rows at a local fixed point are not recomputed; the counts stay
    the reference's, for any segment width (narrower than, equal to and wider than the link radius
    and the map), on maps that settle in parts (a bright band next to dark, slowly firing areas)."""
    from fusionbench.methods import _neural_p as npn

    rng = np.random.default_rng(9)
    maps = rng.random((3, 40, 57)) * np.array([0.02, 0.3, 1.0])[:, None, None]
    maps[0, 10:25, :] += 1.5            # settles early, next to a dark part still changing
    maps[1, :, 30:] = 0.0
    maps[2, 5:9, 40:44] = 0.0
    order = npn.conv_same_order(7)
    dr, dc, wt = (np.array([o[i] for o in order]) for i in range(3))
    kernel = npn._cnp_plane_kernel()
    for iterations in (2, 3, 9, 110):
        want = npn.cnp_firing_counts_numpy(maps, iterations)
        for i in range(maps.shape[0]):
            got = np.zeros(maps.shape[1:], np.int32)
            kernel(np.ascontiguousarray(maps[i]), iterations, 0.3, 3, dr.astype(np.int64), dc.astype(np.int64),
                   wt.astype(np.float64), block, got)
            np.testing.assert_array_equal(got, want[i], err_msg=f"block {block}, {iterations} iterations, map {i}")


def test_neuron_model_settles_in_parts_on_an_enlarged_image() -> None:
    """The local fixed-point skip is taken: on a 4×-enlarged low band part of the map settles long before the
    rest (the case of a 1024² fusion of a 256² pair); the counts equal the reference's."""
    from fusionbench.methods import _neural_p as npn

    rng = np.random.default_rng(10)
    small = np.abs(rng.standard_normal((12, 12))) * 0.2
    small[:4] += 1.0
    big = np.kron(small, np.ones((8, 8)))[None]
    np.testing.assert_array_equal(npn.cnp_firing_counts(big, 110, workers=1), npn.cnp_firing_counts_numpy(big, 110))


def _counts(kernel, s: np.ndarray, iterations: int, theta0: float, scale: float, block: int) -> np.ndarray:
    from fusionbench.methods import _neural_p as npn

    order = npn.conv_same_order(7)
    dr, dc = (np.array([o[i] for o in order], dtype=np.int64) for i in range(2))
    wt = np.array([o[2] for o in order]) * scale
    out = np.zeros(s.shape, np.int32)
    kernel(np.ascontiguousarray(s), iterations, theta0, 3, dr, dc, wt, block, out)
    return out


@pytest.mark.parametrize("seed", [19, 40, 88, 109])
def test_settled_segment_skip_equals_full_computation_under_weak_links(seed: int) -> None:
    """With the official link weights a fired region only grows, so a wrong skip rule could pass the tests
    above; with weights scaled down (0.03×) regions also stop firing, and the skipping kernel must still
    give the counts of the same kernel with the skip off (``block`` 0), for narrow and wide segments.
    These maps catch a rule that ignores the neighbouring segments or the older of the two iterations."""
    from fusionbench.methods import _neural_p as npn

    r = np.random.default_rng(seed)
    scale = float(r.choice([0.003, 0.01, 0.03, 0.1, 0.3]))   # 0.03 for these seeds
    theta0 = float(r.choice([0.3, 0.6]))
    s = r.random((24, 24)) * r.choice([0.05, 0.1, 0.3])
    if r.random() < 0.5:
        s[r.integers(0, 12):][:r.integers(2, 8)] += r.choice([0.5, 1.0])
    else:
        s[:, r.integers(0, 12):][:, :r.integers(2, 8)] += r.choice([0.5, 1.0])
    kernel = npn._cnp_plane_kernel()
    want = _counts(kernel, s, 60, theta0, scale, 0)
    for block in (3, 4, 7, 32):
        np.testing.assert_array_equal(_counts(kernel, s, 60, theta0, scale, block), want, err_msg=f"block {block}")


@pytest.mark.parametrize("shape", [(200, 190), (129, 300), (67, 70), (64, 900)])
def test_banded_wle_insml_rule_equals_whole_maps(shape, monkeypatch) -> None:
    """Issue 23 (session 9): the WLE·INSML choice in bands of rows (3 rows of context) is the whole-map choice
    bit for bit, for band sizes that do and do not divide the rows and a last band shorter than the context."""
    from fusionbench.methods import _neural_p as npn

    rng = np.random.default_rng(shape[0])
    x1, x2 = rng.standard_normal(shape), rng.standard_normal(shape)
    x2[::7] = x1[::7]  # ties pick x1
    want = npn._wle_insml_choice(x1, x2, "cnp")
    monkeypatch.setattr(npn, "RULE_BANDED_ABOVE", 0)
    for rows in (1, 4, 32, 65):
        monkeypatch.setattr(npn, "RULE_BAND_ROWS", rows)
        for smoothing in ("cnp", "dtnp"):
            ref = want if smoothing == "cnp" else npn._wle_insml_choice(x1, x2, smoothing)
            np.testing.assert_array_equal(npn.wle_insml_rule(x1, x2, smoothing), ref, err_msg=f"{rows} rows")
