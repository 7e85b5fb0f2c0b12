"""MLEPF: agreement with the official MATLAB code run under Octave, and its building blocks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

import fusionbench
from fusionbench.io import load_image
from fusionbench.method_registry import create_method
from fusionbench.methods import mlepf as m
from fusionbench.methods._matlab import strel_disk_footprint

from ._fidelity import agreement
from ._isa import needs_avx512, outputs_per_cpu

from ._octave_cases import OCTAVE_PAIRS, octave_case



def test_registered() -> None:
    info = create_method("mlepf").info
    assert info.display_name == "MLEPF" and info.colour == "own"


def test_matlab_disk_shapes() -> None:
    # MATLAB strel('disk', R) with N = 4 (octave_runs/MANIFEST.md): R=3 → 5×5 full, R=5 → 9×9 cut corners
    assert strel_disk_footprint(3).all() and strel_disk_footprint(3).shape == (5, 5)
    fp5 = strel_disk_footprint(5)
    assert fp5.shape == (9, 9) and not fp5[0, 0] and not fp5[0, 1] and fp5[0, 2] and fp5[1, 1]
    fp81 = strel_disk_footprint(81)
    assert fp81.shape == (161, 161) and int(fp81.sum()) == 21961
    assert (fp81 == fp81[::-1]).all() and (fp81 == fp81.T).all()


def test_incremental_rank_mlmg_equals_direct_morphology() -> None:
    rng = np.random.default_rng(0)
    maps = np.abs(rng.normal(size=(2, 45, 38)))
    maps[0, :10] = 0.0  # flat region and ties
    scales = 4
    ref = np.zeros_like(maps)
    for i in range(1, scales + 1):
        fp = strel_disk_footprint(2 * i + 1)
        for p in range(2):
            big = np.pad(maps[p], fp.shape[0], constant_values=-np.inf)
            dil = ndimage.grey_dilation(big, footprint=fp)[fp.shape[0]:-fp.shape[0], fp.shape[0]:-fp.shape[0]]
            big = np.pad(maps[p], fp.shape[0], constant_values=np.inf)
            ero = ndimage.grey_erosion(big, footprint=fp)[fp.shape[0]:-fp.shape[0], fp.shape[0]:-fp.shape[0]]
            ref[p] = ref[p] + 1 / (2 * i + 1) * (dil - ero)
    assert np.array_equal(m.mlmg(maps, scales=scales), ref)


def test_hsv_round_trip() -> None:
    rgb = np.random.default_rng(2).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    hsv = m.rgb2hsv_octave(rgb)
    back = m.hsv2rgb_octave(hsv[..., 0], hsv[..., 1], hsv[..., 2]) * 255
    assert np.abs(back - rgb).max() < 1e-9


def test_wmc_quirk_binary() -> None:
    # official wmcFilter ends with uint8(u)/255 on values in [0, 1]: the result is {0, 1/255}
    v = np.random.default_rng(3).random((30, 30))
    assert set(np.unique(m.wmc_filter(v) * 255).round().astype(int)) <= {0, 1}


def _run(shared_dir: Path, names: list[str]):
    outs, refs = [], []
    for name in names:
        a, b, ref = octave_case(shared_dir, "mlepf", name)
        outs.append(fusionbench.fuse("mlepf", a, b))
        refs.append(load_image(ref))
    return agreement(outs, refs)


def test_octave_bit_exact_one_pair(shared_dir: Path) -> None:
    agr = _run(shared_dir, ["MRI-PET_25030"])
    assert agr.exact == 1.0, str(agr)


def test_octave_bit_exact_on_a_non_square_crop(shared_dir: Path) -> None:
    """The official script.m run here under Octave (``scripts/reference_runs/run_mlepf.m``) on a
    120×150 crop (rows 40:160, cols 20:170) of MRI-PET 25030; the shared runs are all 256².
    The same driver reproduces the shared run of the whole pair bit for bit."""
    crop = (slice(40, 160), slice(20, 170))
    harvard = shared_dir / "data" / "harvard" / "MRI-PET"
    mri, pet = load_image(harvard / "MRI" / "25030.png")[crop], load_image(harvard / "PET" / "25030.png")[crop]
    ours = m.mlepf_uint8(mri, pet)
    ref = load_image(Path(__file__).with_name("octave_mlepf_nonsquare") / "mlepf_mri_pet25030_crop.png")
    assert ours.shape == ref.shape == (120, 150, 3)
    assert np.array_equal(ours, ref), f"{np.mean(ours != ref):.6f} of values differ"


@pytest.mark.slow
def test_octave_all_pairs(shared_dir: Path) -> None:
    # measured: bit-exact on all 6 pairs (PSNR inf, MAD 0, 100 % exact)
    agr = _run(shared_dir, OCTAVE_PAIRS)
    assert agr.exact == 1.0, str(agr)


@pytest.mark.parametrize("workers", [1, 2])
def test_compiled_kernels_equal_numpy_references(workers: int) -> None:
    """Issue 23: the compiled MLMG and PCNN give exactly the values of the whole-array numpy versions."""
    from fusionbench.methods import mlepf as M

    rng = np.random.default_rng(11)
    maps = np.abs(rng.standard_normal((3, 37, 45))) * rng.random((3, 37, 45))
    maps[1, :10, :12] = 0.0
    grad = M.mlmg(maps, workers=workers)
    assert np.array_equal(grad, M.mlmg_numpy(maps))
    assert np.array_equal(M.pcnn_counts(grad, workers=workers), M.pcnn_counts_numpy(grad))
    tiny = rng.random((2, 1, 6))
    assert np.array_equal(M.mlmg(tiny, workers=workers), M.mlmg_numpy(tiny))
    assert np.array_equal(M.pcnn_counts(tiny, workers=workers), M.pcnn_counts_numpy(tiny))


@pytest.mark.parametrize("shape", [(37, 53), (1, 5), (3, 1), (64, 64)])
def test_compiled_wmc_filter_equals_numpy_reference(shape, monkeypatch) -> None:
    """Issue 23: the compiled WMC step gives the float32 values of the whole-array numpy version (before uint8())."""
    from fusionbench.methods import mlepf as M

    rng = np.random.default_rng(12)
    for x in (rng.random(shape) * 255, np.round(rng.random(shape) * 255), -rng.random(shape), np.zeros(shape)):
        for iterations in (1, 2, 3):
            assert np.array_equal(M.wmc_filter(x, iterations), M.wmc_filter_numpy(x, iterations))
            monkeypatch.setattr(M, "to_uint8", lambda v: np.asarray(v, dtype=np.float64))
            assert np.array_equal(M.wmc_filter(x, iterations), M.wmc_filter_numpy(x, iterations))
            monkeypatch.undo()


def _mlmg_plane(img: np.ndarray, steps: np.ndarray, grouped: bool) -> np.ndarray:
    """The compiled MLMG of one plane for explicit SE steps (coefficients 1/(2i + 1))."""
    coefs = np.array([1 / (2 * i + 1) for i in range(1, len(steps) + 1)])
    out = np.zeros_like(img)
    m._mlmg_plane_kernel()(np.ascontiguousarray(img), np.asarray(steps, dtype=np.int64), coefs, grouped, out)
    return out


def test_grouped_mlmg_passes_equal_step_by_step() -> None:
    """Issue 23 (session 6): the 5×5-square and diamond passes give exactly the values of the 3-point line
    steps one by one, for the official SE increments and for others (which fall back to single steps),
    on random planes (with ties and zeros), tiny planes and more scales than the official 40."""
    rng = np.random.default_rng(21)
    official = np.array(m._line_steps("matlab", 60), dtype=np.int64)
    odd = np.array([(1, 0), (3, 0), (3, 2), (3, 3), (5, 4), (6, 4), (6, 5)], dtype=np.int64)
    planes = [np.abs(rng.standard_normal((29, 41))), np.round(rng.random((23, 17)) * 4) / 4,
              rng.random((1, 7)), rng.random((6, 1)), np.zeros((5, 5))]
    planes[0][3:9, 4:15] = 0.0
    for steps in (official[:40], official, odd):
        for img in planes:
            grouped = _mlmg_plane(img, steps, True)
            assert np.array_equal(grouped, _mlmg_plane(img, steps, False)), (img.shape, len(steps))
    x = np.abs(rng.standard_normal((2, 33, 30)))
    assert np.array_equal(m.mlmg(x, scales=60), m.mlmg_numpy(x, scales=60))


def _mlmg_like(rng: np.random.Generator, shape: tuple[int, ...], scales: int = 6) -> np.ndarray:
    """Stimuli shaped like MLEPF's: the MLMG of random layers, with a flat (F = 0) corner."""
    layers = np.abs(rng.standard_normal(shape)) * rng.random(shape)
    layers[..., : shape[-2] // 3, : shape[-1] // 4] = 0.0
    return m.mlmg(layers, scales=scales)


def test_pcnn_freezing_equals_dense_and_numpy() -> None:
    """Issue 23 (session 7): certified neurons are no longer stepped; the counts stay exactly those of every
    pixel stepped (compiled dense steps and the numpy reference), and the certification really freezes
    neurons (the work counter), in both the dense-phase and the sparse-phase certifications."""
    rng = np.random.default_rng(31)
    stim = _mlmg_like(rng, (3, 41, 53))
    ref = m.pcnn_counts_numpy(stim)
    assert np.array_equal(m.pcnn_counts(stim, freeze=False, workers=1), ref)
    work = np.zeros((3, 2), dtype=np.int64)
    assert np.array_equal(m.pcnn_counts(stim, workers=1, work=work), ref)
    assert (work[:, 0] < 0.5 * 41 * 53 * 200).all() and (work[:, 1] >= 1).all(), work
    dense = np.zeros((3, 2), dtype=np.int64)
    m.pcnn_counts(stim, freeze=False, workers=1, work=dense)
    assert (dense[:, 0] == 41 * 53 * 200).all() and (dense[:, 1] == 0).all()


@pytest.mark.parametrize("iterations", [0, 1, 7, 8, 9, 17, 33, 60])
def test_pcnn_freezing_any_iteration_count(iterations: int) -> None:
    rng = np.random.default_rng(32)
    stim = _mlmg_like(rng, (2, 23, 31))
    assert np.array_equal(m.pcnn_counts(stim, iterations=iterations, workers=1),
                          m.pcnn_counts_numpy(stim, iterations=iterations))


@pytest.mark.parametrize("schedule", [(1, 1, 0.25), (2, 3, 1.0), (3, 5, 0.0), (8, 16, 0.25), (5, 2, 0.6)])
def test_pcnn_freezing_any_schedule(schedule, monkeypatch) -> None:
    """Every certification schedule (first check, sparse re-check interval, sparse threshold; 0.0 undoes every
    dense-phase certification, 1.0 goes sparse at once) gives the same counts."""
    from fusionbench.methods import _pcnn

    first, every, fraction = schedule
    monkeypatch.setattr(_pcnn, "FIRST_CHECK", first)
    monkeypatch.setattr(_pcnn, "SPARSE_CHECK", every)
    monkeypatch.setattr(_pcnn, "SPARSE_FRACTION", fraction)
    rng = np.random.default_rng(33)
    stim = _mlmg_like(rng, (2, 29, 37))
    stim[1, 5, 7] = np.nan  # never fires, stays stepped
    stim[1, 20:, 30:] = 1e-4  # weak neurons that fire late and irregularly
    assert np.array_equal(m.pcnn_counts(stim, workers=1), m.pcnn_counts_numpy(stim))


@pytest.mark.parametrize("params", [dict(v_l=0.5), dict(v_l=2.0, beta=0.0), dict(alpha_theta=0.2, v_theta=5.0),
                                    dict(alpha_l=0.0), dict(v_theta=0.0), dict(alpha_l=0.3, beta=10.0),
                                    dict(v_theta=400.0)])
def test_pcnn_freezing_other_parameters(params) -> None:
    """Other gains and decays (α_L = 0: no decay, outside the certificate's assumptions: dense only)."""
    rng = np.random.default_rng(34)
    stim = _mlmg_like(rng, (2, 19, 27))
    assert np.array_equal(m.pcnn_counts(stim, workers=1, iterations=80, **params),
                          m.pcnn_counts_numpy(stim, iterations=80, **params))


@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 1, 9), (1, 7, 1), (1, 4, 4), (1, 9, 9)])
def test_pcnn_freezing_tiny_planes(shape) -> None:
    rng = np.random.default_rng(35)
    stim = rng.random(shape) * 2
    for x in (stim, np.zeros(shape), np.full(shape, 3.0)):
        assert np.array_equal(m.pcnn_counts(x, workers=1), m.pcnn_counts_numpy(x))


@pytest.mark.parametrize("seed", [4, 5])
@pytest.mark.parametrize("schedule", [(1, 1, 1.0), (2, 1, 1.0)])
def test_pcnn_freezing_sparse_recertification(seed: int, schedule, monkeypatch) -> None:
    """Neurons certified in the sparse phase right after a step they did not fire in (weak, irregular
    regions; a certification after every step): both firing maps must then hold them as firing."""
    from fusionbench.methods import _pcnn

    for name, value in zip(("FIRST_CHECK", "SPARSE_CHECK", "SPARSE_FRACTION"), schedule):
        monkeypatch.setattr(_pcnn, name, value)
    rng = np.random.default_rng(seed)
    stim = _mlmg_like(rng, (2, 29, 37))
    stim[1, 20:, 30:] = rng.random((9, 7)) * 3e-4
    stim[0, 10:20, 10:20] *= 1e-3
    assert np.array_equal(m.pcnn_counts(stim, workers=1), m.pcnn_counts_numpy(stim))


@pytest.mark.parametrize("block", [1, 2, 3, 10, 40])
def test_wavefront_mlmg_equals_scale_by_scale(block: int) -> None:
    """Issue 23 (session 7): the in-place wavefront MLMG (``methods/_mlmg.py``) gives exactly the values of the
    scale-by-scale grouped passes, for any block of scales, on random planes (ties, zeros, tiny planes),
    the official 40 scales and 60; increments other than a square or a diamond are refused (fallback)."""
    from fusionbench.methods import _mlmg

    rng = np.random.default_rng(41)
    wavefront = _mlmg.wavefront_kernel()
    official = np.array(m._line_steps("matlab", 60), dtype=np.int64)
    planes = [np.abs(rng.standard_normal((29, 41))), np.round(rng.random((23, 17)) * 4) / 4,
              rng.random((1, 7)), rng.random((6, 1)), np.zeros((5, 5)), rng.random((64, 3))]
    planes[0][3:9, 4:15] = 0.0
    for steps in (official[:40], official, official[:7]):
        coefs = np.array([1 / (2 * i + 1) for i in range(1, len(steps) + 1)])
        for img in planes:
            out = np.zeros_like(img)
            assert wavefront(np.ascontiguousarray(img), steps, coefs, block, out)
            assert np.array_equal(out, _mlmg_plane(img, steps, True)), (img.shape, len(steps))
    odd = np.array([(1, 0), (3, 0), (3, 2)], dtype=np.int64)
    assert not wavefront(planes[0], odd, np.ones(3), block, np.zeros_like(planes[0]))


def test_mlmg_falls_back_for_other_increments(monkeypatch) -> None:
    """``mlmg`` uses the scale-by-scale kernel when the wavefront refuses the increments."""
    from fusionbench.methods import _mlmg

    odd = [(1, 0), (3, 0), (3, 2)]
    monkeypatch.setattr(m, "_line_steps", lambda shape, scales: odd[:scales])
    x = np.abs(np.random.default_rng(42).standard_normal((2, 17, 19)))
    expected = np.stack([_mlmg_plane(p, np.array(odd, dtype=np.int64), False) for p in x])
    assert np.array_equal(m.mlmg(x, scales=3, workers=1), expected)
    assert not _mlmg.wavefront_kernel()(x[0], np.array(odd, dtype=np.int64), np.ones(3), 1, np.zeros_like(x[0]))


@pytest.mark.slow
@needs_avx512
def test_kernels_same_values_on_every_instruction_set(tmp_path: Path) -> None:
    """Issue 23 (session 7): the vectorised MLMG, WMC step, INSML and WLE and the freezing PCNN compiled for SSE2 only
    (no FMA), AVX2 and AVX-512 give the bits of the numpy references (no contraction, no reassociation)."""
    from fusionbench.methods import _neural_p as npn

    script = ("import sys, numpy as np\n"
              "from fusionbench.methods import mlepf as m, _neural_p as npn\n"
              "x = np.abs(np.random.default_rng(51).standard_normal((2, 45, 38)))\n"
              "x[0, :12, :9] = 0.0\n"
              "g = m.mlmg(x, workers=1)\n"
              "np.savez(sys.argv[1], g=g, c=m.pcnn_counts(g, workers=1), i=npn.insml(x, 'dtnp'), w=npn.wle(x),\n"
              "         f=m.wmc_filter(x[0] * 255, 2))\n")
    x = np.abs(np.random.default_rng(51).standard_normal((2, 45, 38)))
    x[0, :12, :9] = 0.0
    g = m.mlmg_numpy(x)
    ref = {"g": g, "c": m.pcnn_counts_numpy(g), "i": npn.insml_numpy(x, "dtnp"), "w": npn.wle_numpy(x),
           "f": m.wmc_filter_numpy(x[0] * 255, 2)}
    for cpu, path in outputs_per_cpu(script, tmp_path, suffix=".npz", timeout=600).items():
        got = np.load(path)
        for key, value in ref.items():
            assert np.array_equal(got[key], value), (cpu, key)
