"""LEGFF: bit-exact against the official MATLAB outputs and the Octave runs of the official code."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import fusionbench
from fusionbench.io import load_image
from fusionbench.methods import legff as legff_module
from fusionbench.methods._matlab import rgb2ycbcr_uint8, to_uint8, ycbcr2rgb_uint8

from ._fidelity import agreement

from ._octave_cases import OCTAVE_PAIRS, case_image, committed_cases, committed_result, octave_case
MEDICAL = {"CT-MRI": "CT", "PET-MRI": "PET", "SPECT-MRI": "SPECT"}


def _official_medical(official_dir: Path) -> list[tuple[Path, Path, Path]]:
    cases = []
    for out in sorted((official_dir / "legff" / "outputs").glob("LEGFF-*-MRI-*.png")):
        task, k = re.fullmatch(r"LEGFF-(\w+-MRI)-(\d+)\.png", out.name).groups()
        base = official_dir / "legff" / "inputs" / task
        cases.append((base / "MRI" / f"{k}.png", base / MEDICAL[task] / f"{k}.png", out))
    return cases



def test_registered() -> None:
    from fusionbench.method_registry import create_method

    m = create_method("legff")
    assert m.info.display_name == "LEGFF" and m.info.colour == "own"
    assert create_method("legff.ivf").params["base"] == "mean_offset"


def test_matlab_uint8_rounds_half_away() -> None:
    assert to_uint8(np.array([0.5, 1.5, 2.5, -0.4, 255.6, np.nan])).tolist() == [1, 2, 3, 0, 255, 0]


def test_ycbcr_round_trip_close() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    back = ycbcr2rgb_uint8(rgb2ycbcr_uint8(rgb))
    assert np.abs(back.astype(int) - rgb).max() <= 2


def test_grey_output_in_range_and_symmetric_rule() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    b = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    out = legff_module.legff_uint8(a, b)
    assert out.shape == a.shape and out.dtype == np.uint8
    # bright/dark/base rules are elementwise max/min: the pair order does not matter
    assert np.array_equal(out, legff_module.legff_uint8(b, a))


def test_octave_runs_bit_exact(shared_dir: Path) -> None:
    outs, refs = [], []
    for name in OCTAVE_PAIRS:
        a, b, ref = octave_case(shared_dir, "legff", name)
        outs.append(fusionbench.fuse("legff", a, b))
        refs.append(load_image(ref))
    agr = agreement(outs, refs)
    assert agr.exact == 1.0, str(agr)


# Non-square crops (the shared runs are all 256²): the official Main.m run here under Octave with its algorithm lines
# unchanged (scripts/reference_runs/run_legff.m, MATLAB's imguidedfilter/rgb2ycbcr/ycbcr2rgb written from their
# documentation in shims/legff; the same set-up reproduces the six shared Octave runs on every value), dataID 1-3 for
# the medical crops and 4 (the infrared/visible base rule, legff.ivf) for TNO.  Measured: identical on every value
# of 7 cases (PET 120×150 and 93×211, SPECT 97×131, CT 97×130, TNO 301×401, the whole TNO 05 and 10); four committed.
@pytest.mark.parametrize("row", committed_cases("octave_legff_nonsquare"), ids=lambda row: row["name"])
def test_official_main_under_octave_on_non_square_crops(shared_dir: Path, row) -> None:
    mri, other = (case_image(shared_dir, row[key], row["crop"], grey=False) for key in ("mri", "other"))
    method = "legff.ivf" if row["other"].startswith("data/tno/") else "legff"  # the registry's IR-VIS preset
    ours = fusionbench.create_method(method)(mri, other)
    reference = committed_result("octave_legff_nonsquare", row["name"])
    assert ours.shape == reference.shape and mri.shape[0] != mri.shape[1]
    np.testing.assert_array_equal(ours, reference)


@pytest.mark.parametrize("task", list(MEDICAL))
def test_official_medical_outputs_bit_exact_sample(official_dir: Path, task: str) -> None:
    cases = [c for c in _official_medical(official_dir) if c[2].name.startswith(f"LEGFF-{task}-")][:3]
    assert cases
    outs = [fusionbench.fuse("legff", a, b) for a, b, _ in cases]
    agr = agreement(outs, [load_image(r) for _, _, r in cases])
    assert agr.exact == 1.0, str(agr)


def test_official_ir_visible_bit_exact_sample(official_dir: Path) -> None:
    base = official_dir / "legff"
    for k in (1, 11):
        ir = base / "inputs" / "IV2Dataset" / f"IR{k}.png"
        vis = base / "inputs" / "IV2Dataset" / f"VIS{k}.png"
        out = fusionbench.fuse("legff.ivf", vis, ir)
        assert np.array_equal(out, load_image(base / "outputs" / f"LEGFF-IV2-{k}.png"))


@pytest.mark.slow
def test_all_official_outputs_bit_exact(official_dir: Path) -> None:
    cases = _official_medical(official_dir)
    assert len(cases) == 27
    outs = [fusionbench.fuse("legff", a, b) for a, b, _ in cases]
    agr = agreement(outs, [load_image(r) for _, _, r in cases])
    assert agr.exact == 1.0, str(agr)
    base = official_dir / "legff"
    for k in range(1, 21):
        out = fusionbench.fuse("legff.ivf", base / "inputs" / "IV2Dataset" / f"VIS{k}.png",
                               base / "inputs" / "IV2Dataset" / f"IR{k}.png")
        assert np.array_equal(out, load_image(base / "outputs" / f"LEGFF-IV2-{k}.png")), k


@pytest.mark.parametrize("shape", [(5, 7), (33, 40), (100, 67), (256, 256)])
@pytest.mark.parametrize("size", [3, 11])
def test_guided_filter_in_strips_equals_the_whole_image_formula(shape, size) -> None:
    """The strip-wise guided filter (issue 23, linear growth) gives the whole-image arithmetic bit for bit."""
    from scipy import ndimage

    rng = np.random.default_rng(11)
    image, guide = rng.random(shape) * 255, rng.random(shape) * 255

    def box(x):
        return ndimage.uniform_filter(x, size=size, mode="nearest")

    mean_g, mean_i = box(guide), box(image)
    a = (box(guide * image) - mean_g * mean_i) / (box(guide * guide) - mean_g * mean_g + 0.01)
    ref = box(a) * guide + box(mean_i - a * mean_g)
    np.testing.assert_array_equal(legff_module.guided_filter(image, guide, size), ref)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (2, 2), (12, 4), (61, 47)])
@pytest.mark.parametrize("size", [3, 5, 7, 9, 11, 13, 23])
def test_one_sweep_guided_filter_equals_whole_image_version(shape, size) -> None:
    """Issue 23 (session 9): the row-by-row compiled guided filter gives the whole-image numpy version's values
    bit for bit, on images smaller than the window and with flat (zero-variance) guides."""
    rng = np.random.default_rng(size)
    for image, guide in ((rng.random(shape) * 255, rng.random(shape) * 255),
                         (np.round(rng.random(shape) * 255), np.round(rng.random(shape) * 3) * 85),
                         (rng.random(shape), np.full(shape, 7.0))):
        np.testing.assert_array_equal(legff_module.guided_filter(image, guide, size),
                                      legff_module.guided_filter_whole(image, guide, size))


def test_compiled_uint8_and_entropy_equal_matlab_helpers() -> None:
    """The compiled uint8() and the histogram entropy give ``to_uint8`` / ``entropy_uint8(to_uint8(±x))`` exactly:
    halves round away from zero, NaN → 0, ±Inf and out-of-range values saturate."""
    from fusionbench.methods._matlab import entropy_uint8, to_uint8

    rng = np.random.default_rng(3)
    x = rng.random((37, 53)) * 300 - 30
    x[0, :12] = [0.5, 1.5, 254.5, 255.5, -0.5, -0.49999999999999994, np.nan, np.inf, -np.inf, -0.0, 0.49999999999999994, 300]
    x[1:5] = np.round(x[1:5]) + 0.5
    np.testing.assert_array_equal(legff_module._uint8(x), to_uint8(x))
    assert legff_module._uint8(x).dtype == np.uint8
    for negate in (False, True):
        assert legff_module._entropy_of_uint8(x, negate) == entropy_uint8(to_uint8(-x if negate else x))


@pytest.mark.slow
def test_compiled_kernels_same_values_on_every_instruction_set(tmp_path) -> None:
    """Issue 23 (session 9): the one-sweep guided filter, box mean, uint8() and disk morphology compiled for SSE2
    only (no FMA), AVX2 and AVX-512 give the numpy/scipy references' bits (no contraction, no reassociation)."""
    from scipy import ndimage

    from fusionbench.methods._matlab import disk_footprint, to_uint8

    from ._isa import has_avx512, outputs_per_cpu

    if not has_avx512():
        pytest.skip("needs an AVX-512 CPU to compare the instruction sets")
    script = ("import sys, numpy as np\n"
              "from fusionbench.methods import legff as L, _morphology as M\n"
              "rng = np.random.default_rng(52)\n"
              "x, g = rng.random((45, 38)) * 255, np.round(rng.random((45, 38)) * 255)\n"
              "np.savez(sys.argv[1], gf=L.guided_filter(x, g, 7), bx=L._box(x, 9), u=L._uint8(x * 1.2 - 20),\n"
              "         e=M.disk_erosion(x, 5), d=M.disk_dilation(x, 3))\n")
    rng = np.random.default_rng(52)
    x, g = rng.random((45, 38)) * 255, np.round(rng.random((45, 38)) * 255)
    ref = {"gf": legff_module.guided_filter_whole(x, g, 7), "bx": ndimage.uniform_filter(x, 9, mode="nearest"),
           "u": to_uint8(x * 1.2 - 20), "e": ndimage.grey_erosion(x, footprint=disk_footprint(5), mode="nearest"),
           "d": ndimage.grey_dilation(x, footprint=disk_footprint(3), mode="nearest")}
    for cpu, path in outputs_per_cpu(script, tmp_path, suffix=".npz", timeout=600).items():
        got = np.load(path)
        for key, value in ref.items():
            assert np.array_equal(got[key], value), (cpu, key)
