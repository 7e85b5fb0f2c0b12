"""DTNP: neuron model against a literal reference; bit-exact against Octave and the official outputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import convolve2d

from fusionbench.method_registry import create_method
from fusionbench.methods import _neural_p as npn

from ._neural_p_cases import OCTAVE_PAIRS, check_luma_path, octave_agreement, octave_inputs, official_agreement


def _dtnp_literal(stimulus: np.ndarray, n: int) -> np.ndarray:
    """``DTNP.m`` written literally with whole-array ``where``; returns the score Σp (p = 1.1)."""
    w = npn.link_kernel(3)
    u = np.zeros_like(stimulus)
    theta = np.ones_like(stimulus)
    p = np.zeros_like(stimulus)
    score = np.zeros_like(stimulus)
    for _ in range(n):
        work = convolve2d(p, w, mode="same")
        quiet = p == 0
        u = np.where(quiet, u + stimulus + work, stimulus + work)
        theta = np.where(quiet, theta, theta - 1 + p)
        p = np.where(u >= theta, 1.1, 0.0)
        score += p
    return score


def test_registered() -> None:
    m = create_method("dtnp")
    assert m.info.display_name == "DTNP" and m.info.colour == "luma"
    assert m.params == {"iterations": 110}


def test_link_table() -> None:
    w = npn.link_kernel(3)
    for fma in (True, False):
        table = npn.link_table(1.1, fma)
        assert table.shape == (512,) and table[0] == 0 and table[1 << 4] == 0  # bit 4 = centre, weight 0
        assert table[1] == w[2, 0] * 1.1 and table[1 << 1] == 1.1   # bottom-left corner, left neighbour
        assert table[511] == pytest.approx(1.1 * (4 + 4 / np.sqrt(2)), rel=1e-15)


@pytest.mark.parametrize("scale", [0.05, 0.5])
def test_dtnp_neuron_matches_literal_model(scale: float) -> None:
    rng = np.random.default_rng(7)
    maps = rng.random((3, 21, 26)) * scale
    maps[2, 5:12, 5:12] = 0.0
    counts = npn.dtnp_firing_counts(maps, 110, chunk_pixels=2 * 21 * 26)  # two chunks
    expected = np.stack([_dtnp_literal(m, 110) for m in maps])
    # counts × 1.1 summed in any order of firings equals the literal score: compare counts
    np.testing.assert_array_equal(counts, np.rint(expected / 1.1).astype(int))
    assert 0 < counts.mean() < 110


def test_dtnp_thresholds_follow_official_recursion() -> None:
    th = npn._dtnp_thresholds(1.0, 1.1, 3)
    assert th[0] == 1.0 and th[1] == (1.0 - 1) + 1.1 and th[2] == (th[1] - 1) + 1.1 and th[3] == (th[2] - 1) + 1.1


def test_octave_ct_and_pet_bit_exact(shared_dir: Path) -> None:
    """Octave runs of the official code (``dtnp/``): measured bit-exact (100 % of pixels)."""
    agr = octave_agreement(shared_dir, "dtnp", "dtnp", ("MRI-CT_2006", "MRI-PET_25030"))
    assert agr.max_abs == 0, str(agr)  # every pixel identical


def test_octave_bit_exact_on_a_non_square_crop(shared_dir: Path) -> None:
    """The official Fuse_NSCT_DTNP.m run here under Octave (``scripts/reference_runs/run_dtnp.m``, the
    shared runs' readable neuron model) on a 120×150 crop (rows 40:160, cols 20:170) of MRI-CT 2006;
    the shared runs are all 256².  The same driver reproduces the shared run of the whole pair bit for bit."""
    from fusionbench.io import load_image

    crop = (slice(40, 160), slice(20, 170))
    harvard = shared_dir / "data" / "harvard" / "MRI-CT"
    mri = load_image(harvard / "MRI" / "2006.png")[crop] / 255.0
    ct = load_image(harvard / "CT" / "2006.png")[crop] / 255.0
    ours = create_method("dtnp")(mri, ct)
    ref = load_image(Path(__file__).with_name("octave_dtnp_nonsquare") / "dtnp_mri_ct2006_crop.png")
    assert ours.shape == ref.shape == (120, 150)
    assert np.array_equal(ours, ref), f"{np.mean(ours != ref):.6f} of pixels differ"


# measured (exact share, share within ±1, PSNR dB), the same on every CPU (docs/cpu_independence.md)
@pytest.mark.parametrize("name,exact,within1,psnr", [
    ("MRI-PET_25030", 0.9568, 0.9981, 61.05),
    ("MRI-PET_41052", 0.9673, 0.9986, 62.28),
])
def test_colour_pet_luma_path(shared_dir: Path, name: str, exact: float, within1: float, psnr: float) -> None:
    """The runner's path for a colour PET: BT.601 luma instead of MATLAB's ``rgb2gray``.

    Measured: the grey fused luma is 95.68 % exact, 99.81 % within ±1 of the Octave run on
    MRI-PET_25030 (the luma inputs differ by 1 grey level at 252 pixels), 96.73 % / 99.86 % on
    MRI-PET_41052.
    """
    check_luma_path(shared_dir, "dtnp", "dtnp", name, exact, within1, psnr)


@pytest.mark.slow
def test_octave_all_pairs_bit_exact(shared_dir: Path) -> None:
    """All six Octave pairs: measured bit-exact (PSNR inf, MAD 0, 100 % exact)."""
    agr = octave_agreement(shared_dir, "dtnp", "dtnp", OCTAVE_PAIRS)
    assert agr.max_abs == 0, str(agr)  # every pixel identical


@pytest.mark.slow
def test_official_outputs_bit_exact(official_dir: Path) -> None:
    """The authors' MATLAB P-code results ``results/{1..9,11,12}.tif``: measured bit-exact."""
    agr = official_agreement("dtnp", official_dir)
    assert agr.max_abs == 0, str(agr)  # every pixel identical


def test_three_official_outputs_bit_exact(official_dir: Path) -> None:
    """The default run's share of the test above (all eleven: about 8 s warm, marked slow): ``results/{1,2,3}.tif``
    bit-exact, so CI checks the claim (session 28; until then only ``-m slow`` did)."""
    agr = official_agreement("dtnp", official_dir, ids=(1, 2, 3))
    assert agr.max_abs == 0, str(agr)  # every pixel identical


@pytest.mark.parametrize("workers", [1, 2])
def test_compiled_neuron_model_equals_numpy_reference(workers: int) -> None:
    """Issue 23: the compiled DTNP neuron model gives exactly the counts of the whole-array version."""
    rng = np.random.default_rng(5)
    maps = rng.random((3, 33, 29)) * np.array([0.05, 0.5, 2.0])[:, None, None]
    maps[0, 4:9, 4:20] = 0.0
    np.testing.assert_array_equal(npn.dtnp_firing_counts(maps, 110, workers=workers),
                                  npn.dtnp_firing_counts_numpy(maps, 110))


@pytest.mark.parametrize("smoothing", ["dtnp", "cnp"])
def test_compiled_insml_equals_numpy_reference(smoothing: str) -> None:
    """Issue 23: the compiled INSML gives exactly the values of the whole-array version, tiny maps included."""
    rng = np.random.default_rng(9)
    for shape in [(2, 37, 41), (1, 1, 1), (2, 5, 1), (1, 2, 3)]:
        x = rng.random(shape)
        assert np.array_equal(npn.insml(x, smoothing), npn.insml_numpy(x, smoothing)), shape


@pytest.mark.parametrize("block", [1, 3, 8])
def test_blocked_neuron_model_equals_numpy_reference_any_size(block: int, monkeypatch) -> None:
    """Issue 23 (session 6): the temporally blocked kernel gives the reference counts whatever the block,
    the map size (maps smaller than a block, one row, one column) and the iteration count (not a
    multiple of the block), for both roundings of the link table and other Θ0 / p."""
    monkeypatch.setattr(npn, "_DTNP_BLOCK", block)
    rng = np.random.default_rng(11)
    for shape, iterations in [((1, 1, 1), 5), ((2, 1, 9), 9), ((1, 7, 1), 8), ((3, 2, 3), 17),
                              ((2, 19, 23), 110), ((1, 12, 40), 0), ((1, 12, 40), 1)]:
        maps = rng.random(shape) * 0.3
        for kwargs in ({}, {"fma": False}, {"theta0": 0.5, "p_fire": 1.3}):
            got = npn.dtnp_firing_counts(maps, iterations, workers=1, **kwargs)
            want = npn.dtnp_firing_counts_numpy(maps, iterations, **kwargs)
            assert got.dtype == np.int32 and got.shape == shape
            np.testing.assert_array_equal(got, want, err_msg=f"{shape} {iterations} {kwargs}")


def test_blocked_neuron_model_on_real_bands(shared_dir: Path) -> None:
    """The DTNP kernel on the real stimuli of a Harvard pair (INSML of |NSCT band|, both sources in one call)."""
    from fusionbench.methods._transforms.nsct import nsct_fuse

    mri, functional = octave_inputs(shared_dir, "MRI-PET_25030")
    stimuli = []

    def band_rule(b1: np.ndarray, b2: np.ndarray) -> np.ndarray:
        if len(stimuli) < 3:
            stimuli.append(npn.insml(np.abs(np.stack([b1, b2])), "dtnp"))
        return b1

    nsct_fuse(functional[:96, :80], mri[:96, :80], lambda l1, l2: l1, band_rule, (1, 2), "9-7", "pkva")
    assert len(stimuli) == 3
    for stim in stimuli:
        got = npn.dtnp_firing_counts(stim, 110, workers=2)
        np.testing.assert_array_equal(got, npn.dtnp_firing_counts_numpy(stim, 110))
        assert 0 < got.mean() < 110
