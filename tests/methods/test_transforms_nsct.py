"""NSCT: perfect reconstruction, filter banks and band-by-band agreement with the Cunha–Zhou–Do toolbox.

Reference: ``nsctdec`` of ``MorvanLi/DTNP-MIF/nsct_toolbox`` run unchanged under GNU Octave 7.3
(``../shared/official/octave_runs/transforms``; 'vk' needed the README's ``ftrans2`` →
``mctrans`` shim).  Measured agreement, max |Δ| over every band: ≤ 3.1e-15 for the three
settings ('9-7'/'pkva'/[1 2 3 3] = DTNP, 'pyrexc'/'vk'/[2 3 3 4] = Liu's MST-SR,
'maxflat'/'dmaxflat7'/[2 3 3 4] = toolbox default) on a random image (full float64 dump) and
two 256² MRI slices (37×37 samples per band; per-direction L2 norms to ≤ 1.4e-14 relative).  Pinned with margin.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionbench.methods._transforms import nsct_decompose, nsct_reconstruct
from fusionbench.methods._transforms._filters import atrous_filters, dfilters, nsdfb_filters

from ._octave_transforms import band_errors, load_case

SETTINGS = {
    "nsct_9-7_pkva_1233": ((1, 2, 3, 3), "9-7", "pkva", "rand128"),
    "nsct_pyrexc_vk_2334": ((2, 3, 3, 4), "pyrexc", "vk", "rand128"),
    "nsct_maxflat_dmaxflat7_2334": ((2, 3, 3, 4), "maxflat", "dmaxflat7", "rand256"),
}


# Perfect reconstruction: measured max |x - rec(dec(x))| 1.4e-15 to 2.4e-15 on every case here (2026-12-06);
# the bound leaves ~8× for other instruction sets' round-off.
PR_TOL = 2e-14


@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("which", ["random", "mri_ct2006", "mri_pet25030"])
def test_nsct_matches_octave(shared_dir, setting, which):
    levels, pfilt, dfilt, rand_name = SETTINGS[setting]
    ref, x = load_case(shared_dir, setting, rand_name if which == "random" else which)
    low, bands = nsct_decompose(x, levels, pfilt, dfilt)
    errs = band_errors(ref, low, bands)
    bad = {k: v for k, v in errs.items() if v > (1e-12 if k.endswith('_l2_rel') else 2e-14)}  # measured ≤ 3.1e-15
    assert not bad, bad


NONSQUARE = Path(__file__).with_name("octave_nsct_nonsquare")


def _nonsquare_input(shared_dir: Path, name: str) -> np.ndarray:
    """The inputs of the non-square Octave runs (``scripts/reference_runs/run_nsct.m``)."""
    if name == "rand97x131":
        return np.random.RandomState(0).random_sample((97, 131))
    assert name == "mri200x240"
    from fusionbench.io import load_image

    return load_image(shared_dir / "data" / "harvard" / "MRI-PET" / "MRI" / "25030.png")[30:230, 10:250] / 255.0


@pytest.mark.parametrize("path", sorted(NONSQUARE.glob("*.mat")), ids=lambda p: p.stem)
def test_nsct_matches_octave_on_non_square_images(shared_dir, path):
    """The toolbox run here under Octave on a 97×131 random image and a 200×240 MRI crop (the shared
    dumps are all square; session 15): measured ≤ 3.1e-15 on every band, all three settings."""
    from scipy.io import loadmat

    ref = loadmat(path)
    setting, name = path.stem.split("__")
    levels, pfilt, dfilt, _ = SETTINGS[setting]
    x = _nonsquare_input(shared_dir, name)
    assert x.shape[0] != x.shape[1]
    low, bands = nsct_decompose(x, levels, pfilt, dfilt)
    errs = band_errors(ref, low, bands)
    bad = {k: v for k, v in errs.items() if v > (1e-12 if k.endswith("_l2_rel") else 2e-14)}
    assert not bad, bad


def test_the_non_square_octave_runs_are_all_there():
    """Two inputs × the three settings, except maxflat on the random image (too small for its 4th level)."""
    assert sorted(p.stem for p in NONSQUARE.glob("*.mat")) == [
        f"{s}__{i}" for s, i in [("nsct_9-7_pkva_1233", "mri200x240"), ("nsct_9-7_pkva_1233", "rand97x131"),
                                 ("nsct_maxflat_dmaxflat7_2334", "mri200x240"), ("nsct_pyrexc_vk_2334", "mri200x240"),
                                 ("nsct_pyrexc_vk_2334", "rand97x131")]]


def test_filter_banks_match_toolbox(shared_dir):
    from scipy.io import loadmat

    path = shared_dir / "official" / "octave_runs" / "transforms" / "filters.mat"
    if not path.is_file():
        pytest.skip("filters.mat missing")
    ref = loadmat(path)
    for tag, name in [("97", "9-7"), ("maxflat", "maxflat"), ("pyrexc", "pyrexc")]:
        for key, ours in zip(["h1", "h2", "g1", "g2"], atrous_filters(name)):
            np.testing.assert_array_equal(ours, ref[f"atrous_{tag}_{key}"])
    for name in ["pkva", "vk", "dmaxflat7"]:
        h0, h1 = dfilters(name, "d")
        np.testing.assert_allclose(h0 / np.sqrt(2), ref[f"dfilt_{name}_h1_over_sqrt2"], atol=1e-14, rtol=0)
        np.testing.assert_allclose(h1 / np.sqrt(2), ref[f"dfilt_{name}_h2_over_sqrt2"], atol=1e-14, rtol=0)
        (k1, k2), f1, f2 = nsdfb_filters(name, "d")
        np.testing.assert_allclose(k1, ref[f"dfilt_{name}_fan1"], atol=1e-14, rtol=0)
        np.testing.assert_allclose(k2, ref[f"dfilt_{name}_fan2"], atol=1e-14, rtol=0)
        for i in range(4):
            np.testing.assert_allclose(f1[i], ref[f"dfilt_{name}_para1_{i + 1}"], atol=1e-14, rtol=0)
            np.testing.assert_allclose(f2[i], ref[f"dfilt_{name}_para2_{i + 1}"], atol=1e-14, rtol=0)


@pytest.mark.parametrize("pfilt", ["9-7", "maxflat", "pyr", "pyrexc"])
@pytest.mark.parametrize("dfilt", ["pkva", "vk", "dmaxflat7"])
def test_nsct_perfect_reconstruction(pfilt, dfilt):
    x = np.random.default_rng(5).random((128, 128))
    levels = (0, 1, 3) if pfilt == "maxflat" else (1, 2, 3, 4)
    low, bands = nsct_decompose(x, levels, pfilt, dfilt)
    assert [b.shape for b in bands] == [(2 ** n if n else 1, 128, 128) for n in levels]
    assert np.abs(nsct_reconstruct(low, bands, pfilt, dfilt) - x).max() <= PR_TOL


def test_nsct_non_square():
    x = np.random.default_rng(6).random((120, 200))
    low, bands = nsct_decompose(x, (1, 2, 3), "9-7", "pkva")
    assert np.abs(nsct_reconstruct(low, bands, "9-7", "pkva") - x).max() <= PR_TOL


def test_nsct_real_image_reconstruction(shared_dir):
    from fusionbench.io import load_image

    path = shared_dir / "data" / "harvard" / "MRI-CT" / "MRI" / "2006.png"
    if not path.is_file():
        pytest.skip("image missing")
    x = load_image(path).astype(np.float64) / 255
    low, bands = nsct_decompose(x)
    assert np.abs(nsct_reconstruct(low, bands) - x).max() <= PR_TOL
