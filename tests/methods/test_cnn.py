"""CNN (Liu et al. 2017): .mat loading, weight map, Burt rule, and fidelity to VIFB's JPEG results."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import fusionbench
from fusionbench.io import load_image
from fusionbench.methods import cnn_liu2017 as cnn
from fusionbench.methods._matlab import to_uint8

from ._fidelity import agreement
from ._octave_cases import case_image, committed_cases, committed_result
from ._isa import TORCH_CAPABILITY, TORCH_STAND_IN_CASES, run_under_torch_stand_ins

torch = pytest.importorskip("torch")

VIFB_NAMES = ["carLight", "carShadow", "carWhite", "elecbike", "fight", "kettle", "labMan", "man", "manCall", "manCar",
              "manWalking", "manlight", "manwithbag", "nightCar", "peopleshadow", "running", "snow", "tricycle",
              "walking", "walking2", "walkingnight"]
# MATLAB rgb2gray weights (applied to double RGB in run_CNN.m)
RGB2GRAY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])


def _jpeg(x: np.ndarray, quality: int = 75) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf))


def test_weight_map_matches_the_loop_of_run_cnn():
    rng = np.random.default_rng(1)
    h, w = 41, 38
    sh, sw = int(np.ceil(h / 2)) - 7, int(np.ceil(w / 2)) - 7
    score = rng.random((sh, sw))
    total, count = np.zeros((h, w)), np.zeros((h, w))
    for j in range(sh):
        for i in range(sw):
            total[2 * j:2 * j + 16, 2 * i:2 * i + 16] += score[j, i]
            count[2 * j:2 * j + 16, 2 * i:2 * i + 16] += 1
    np.testing.assert_allclose(cnn.scores_to_weight_map(score, (h, w)), total / count, rtol=1e-12)


def test_band_fuse_matches_a_direct_es2_implementation():
    rng = np.random.default_rng(2)
    m1, m2, wt = rng.normal(size=(7, 9)), rng.normal(size=(7, 9)), rng.random((7, 9))
    m2[:3] = 0.9 * m1[:3] + 0.05 * rng.normal(size=(3, 9))  # matched region takes the weighted average

    def es2(x):  # es2.m, written out
        z, s = x.shape
        y = np.zeros((z + 2, s + 2))
        y[1:-1, 1:-1] = x
        y[1:-1, 0], y[1:-1, -1] = x[:, 1], x[:, -2]
        y[0, 1:-1], y[-1, 1:-1] = x[1], x[-2]
        return y

    def box(x):
        e = es2(x)
        return np.array([[e[r:r + 3, c:c + 3].sum() for c in range(x.shape[1])] for r in range(x.shape[0])])

    s1, s2 = box(m1 * m1), box(m2 * m2)
    ma = 2 * box(m1 * m2) / (s1 + s2 + np.finfo(float).eps)
    ref = np.where(ma > 0.6, wt * m1 + (1 - wt) * m2, np.where(s1 > s2, m1, m2))
    out = cnn.band_fuse(m1, m2, wt)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-15)
    assert (ma > 0.6).any() and (ma <= 0.6).any()


def test_mat_loading_is_strict(official_dir):
    from scipy.io import loadmat

    mat = loadmat(official_dir / "cnn_liu2017" / "weights" / "cnnmodel.mat")
    state = cnn.mat_to_state_dict(mat)
    net = cnn.build_cnn_network()
    net.load_state_dict(state, strict=True)
    # column-major taps: kernel[r, c] of conv1 filter 5 is weights_b1_1[r + 3c, 5]
    k = net.conv1.weight.detach().numpy()[5, 0]
    assert k[1, 0] == mat["weights_b1_1"][1, 5] and k[0, 1] == mat["weights_b1_1"][3, 5]
    assert sum(p.numel() for p in net.parameters()) == 9 * 64 + 64 + 64 * 9 * 128 + 128 + 128 * 9 * 256 + 256 + 512 * 64 * 2
    bad = dict(mat, weights_b1_2=mat["weights_b1_2"][:, :, :100])
    with pytest.raises(ValueError, match="weights_b1_2"):
        cnn.mat_to_state_dict(bad)
    with pytest.raises(ValueError, match="expected arrays"):
        cnn.mat_to_state_dict({k: v for k, v in mat.items() if k != "biases_output"})


def test_runs_through_fuse(weights_home):
    rng = np.random.default_rng(0)
    a = (rng.random((40, 52)) * 255).astype(np.uint8)
    b = (rng.random((40, 52, 3)) * 255).astype(np.uint8)
    out = fusionbench.fuse("cnn", a, b)
    assert out.shape == (40, 52, 3) and out.dtype == np.uint8
    assert cnn.pyramid_levels((256, 256)) == 8 and cnn.pyramid_levels((240, 320)) == 7
    small = fusionbench.fuse("cnn", a[:12, :9], b[:12, :9])  # under one 16×16 patch: reflect-padded, cropped back
    assert small.shape == (12, 9, 3) and small.dtype == np.uint8


RAW_VS_JPEG = {1: (38.14, 2.037, 0.2307), 21: (42.94, 0.936, 0.5097)}  # keyed by the number of pairs


def _vifb_fuse(inst, official_dir, name):
    """VIFB's run_CNN.m: weight map from the rgb2gray greys, R, G and B fused separately, uint8()."""
    base = official_dir / "cnn_liu2017" / "inputs" / "vifb"
    ir, vi = load_image(base / "IR" / f"{name}.jpg"), load_image(base / "VI" / f"{name}.jpg")
    grey = [(x / 255.0) @ RGB2GRAY if x.ndim == 3 else x / 255.0 for x in (ir, vi)]
    w = inst.weight_map(grey[0].astype(np.float32), grey[1].astype(np.float32))
    irc, vic = (x if x.ndim == 3 else np.repeat(x[..., None], 3, axis=2) for x in (ir, vi))
    fused = np.stack([cnn.fuse_with_map(irc[..., c] / 255.0, vic[..., c] / 255.0, w) for c in range(3)], axis=-1)
    return to_uint8(fused * 255.0)


@pytest.mark.parametrize("names", [["walking"], pytest.param(VIFB_NAMES, marks=pytest.mark.slow)])
def test_fidelity_vifb_jpeg(weights_home, official_dir, names):
    inst = fusionbench.create_method("cnn").instance
    outs = [_vifb_fuse(inst, official_dir, n) for n in names]
    refs = [load_image(official_dir / "cnn_liu2017" / "outputs" / "vifb" / f"{n}_CNN.jpg") for n in names]
    raw = agreement(outs, refs)
    via_jpeg = agreement([_jpeg(o) for o in outs], refs)
    print(len(names), "VIFB pairs:", raw, "| our output JPEG-encoded (PIL q75) vs VIFB:", via_jpeg)
    # measured: our uint8 result, JPEG-encoded at quality 75, is bit-identical to VIFB's JPEG
    # (walking, walkingnight and all 21: see docs/fidelity.md); the raw comparison only shows JPEG's cost.
    # Bit-identical with AVX-512 convolutions (and ATEN_CPU_CAPABILITY avx2/default); with oneDNN's AVX2
    # kernels (ONEDNN_MAX_CPU_ISA=AVX2) a few float32 sums round the other way before JPEG: all 21 pairs
    # 83.69 dB, 99.9957 % exact, 99.9969 % within ±1, max 5 (the 1-pair case stays bit-identical);
    # with ONEDNN_MAX_CPU_ISA=SSE41 bit-identical again.  The thresholds hold for every instruction set measured.
    assert via_jpeg.exact >= 0.9999 and via_jpeg.within1 >= 0.9999 and via_jpeg.psnr >= 80.0
    # Our uint8 output against VIFB's JPEG directly (what JPEG costs), measured (PSNR dB, MAD, exact share):
    # walking 38.14 / 2.037 / 23.07 %, all 21 pairs 42.94 / 0.936 / 50.97 %; pinned 0.3 dB, 0.02, 0.5 % under.
    psnr, mad, exact = RAW_VS_JPEG[len(names)]
    assert raw.psnr >= psnr - 0.3 and raw.mad <= mad + 0.02 and raw.exact >= exact - 0.005, str(raw)


def test_inference_branch_is_bit_identical_to_the_graph():
    """The inference path (in-place ReLU, max-pool as strided maxima) gives exactly the graph's logits,
    on even and odd sizes (the ceil-mode window over the last row/column)."""
    import torch.nn.functional as F

    for shape in [(1, 3, 8, 8), (1, 3, 7, 9), (2, 4, 1, 5), (1, 1, 1, 1)]:
        x = torch.randn(*shape)
        assert torch.equal(cnn.max_pool2_ceil(x), F.max_pool2d(x, 2, ceil_mode=True))
    torch.manual_seed(0)
    net = cnn.build_cnn_network().eval()

    def plain_branch(x):  # the graph's ops (F.relu, F.max_pool2d), the convolutions as the method calls them
        y = F.relu(cnn._onednn.conv2d(x, net.conv1.weight, net.conv1.bias, 1))
        y = F.max_pool2d(F.relu(net.conv2(y)), 2, ceil_mode=True)
        return F.relu(net.conv3(y))

    for size in [(24, 24), (23, 31)]:
        x1, x2 = torch.rand(1, 1, *size), torch.rand(1, 1, *size)
        # both without autograd: with it, ATen may route a convolution to another backend (oneDNN vs im2col +
        # MKL GEMM), whose float32 sums agree on AVX-512 but not with MKL or oneDNN held to AVX2
        with torch.inference_mode():
            ref = net.output(torch.cat([plain_branch(x1), plain_branch(x2)], dim=1))
            assert torch.equal(net(x1, x2), ref)


def test_fast_logits_equal_the_graph_to_round_off_with_the_same_flops(weights_home):
    """The fusion path (the graph's branches, the 8×8 output conv as row taps + shifted sums on channels-last
    maps, border rows with only their own taps) gives the graph's logits to float32 round-off and counts
    exactly its FLOPs, on square, odd and very short maps (pooled height under the 8-tap kernel's two borders)."""
    from fusionbench import profile

    net = cnn.load_cnn_network()
    g = torch.Generator().manual_seed(3)
    for size in [(16, 16), (16, 29), (29, 16), (31, 17), (90, 40), (64, 64)]:
        x1, x2 = torch.rand(1, 1, *size, generator=g), torch.rand(1, 1, *size, generator=g)
        with torch.inference_mode():
            ref, new = net(x1, x2), cnn.fast_logits(net, x1, x2)
        assert new.shape == ref.shape
        # measured ≤ 2.4e-4 on logits of magnitude up to ~30 (float32 sums of 32,768 products in another order)
        assert torch.allclose(new, ref, rtol=0, atol=1e-3 * float(ref.abs().max()))
        assert profile.count_flops(lambda a, b: cnn.fast_logits(net, a, b), x1, x2) == profile.count_flops(net, x1, x2)


def test_banded_logits_are_bit_identical_to_the_whole_image(weights_home):
    """Large images run the network in bands of rows with halos (issue 23: a worker under 2 GB at 1024²).
    Forced small bands on odd sizes (odd heights and widths: the ceil-mode pool in the last band; the width
    of 1030 is a 1024²-like row) give exactly the whole image's logits; 256² and TNO sizes run whole."""
    exec(_BANDS_CHECK, {"cnn": cnn, "torch": torch})  # the same check as the AVX2/SSE4 test below, in process
    # pooled rows per band: the whole image at 256² and at TNO's largest (768×576), bands of 64 at 1024²
    assert cnn.band_rows((256, 256)) == 128 and cnn.band_rows((576, 768)) == 288
    assert cnn.band_rows((1024, 1024)) == 64 and cnn.band_rows((1023, 1024)) == 64


def test_large_images_run_in_bands(weights_home, monkeypatch):
    """Above 2^19 pixels no branch runs on more than a band of input rows (64 pooled rows per chunk at
    width 1024; the last chunk takes the remainder), so no full-size feature map exists (1024²: see
    docs/fidelity.md §CNN for the measured peak)."""
    seen = []
    band = cnn.pooled_band

    def spy(net, first, second, k0, k1):
        seen.append(min(first.shape[-2], 2 * k1 + cnn.HALO) - max(0, 2 * k0 - cnn.HALO))
        return band(net, first, second, k0, k1)

    monkeypatch.setattr(cnn, "pooled_band", spy)
    net = cnn.load_cnn_network()
    x = torch.rand(1, 1, 520, 1024, generator=torch.Generator().manual_seed(0))  # 532,480 pixels
    with torch.inference_mode():
        out = cnn.fast_logits(net, x, x.flip(-1))
    assert out.shape == (1, 2, 253, 505)
    # interior rows [7, 253) in chunks [7, 71), [71, 135), [135, 253): three bands (both sources in each)
    assert len(seen) == 3 and max(seen) == 2 * (260 - 135) + cnn.HALO


#: forced small bands on odd sizes give exactly the whole image's logits (run in process and under the stand-ins)
_BANDS_CHECK = """
net = cnn.load_cnn_network()
g = torch.Generator().manual_seed(5)
for size, rows in [((150, 67), 16), ((203, 99), 16), ((97, 255), 17), ((92, 520), 16)]:
    x1, x2 = torch.rand(1, 1, *size, generator=g), torch.rand(1, 1, *size, generator=g)
    with torch.inference_mode():
        whole = cnn.fast_logits(net, x1, x2, rows=size[0])
        banded = cnn.fast_logits(net, x1, x2, rows=rows)
    assert torch.equal(banded, whole), (size, int((banded != whole).sum()), float((banded - whole).abs().max()))
"""
_BANDS_SCRIPT = """
import sys, torch
from fusionbench.methods import cnn_liu2017 as cnn
assert torch.backends.cpu.get_cpu_capability() == sys.argv[1], torch.backends.cpu.get_cpu_capability()
""" + _BANDS_CHECK

@pytest.mark.parametrize("torch_stand_in", TORCH_STAND_IN_CASES)
def test_banded_logits_are_bit_identical_on_avx2_and_sse4(torch_stand_in, weights_home, tmp_path):
    """The band bit-identity does not rest on AVX-512: in processes whose MKL, oneDNN and ATen use only AVX2 or
    only SSE4 code, the forced small bands of the test above give the whole image's logits (old code, measured:
    1-9,550 logits differ per size on AVX2, 1-2 on SSE4).
    (Before session 11, ``conv1`` ran on one source at a time: a band of at most 20,480 input values went to
    ATen's im2col + MKL GEMM, which on AVX2 and SSE4 rounds some pixels by their place in the map, and a larger
    whole image to oneDNN; logits differed by up to 2.6e-5 on AVX2.  Both sources now go through ``conv1`` as one
    batch, which PyTorch always gives to oneDNN: docs/fidelity.md, "CNN: bands on AVX2 machines".)"""
    run_under_torch_stand_ins(_BANDS_SCRIPT, {torch_stand_in: [TORCH_CAPABILITY[torch_stand_in]]}, tmp_path,
                              OMP_NUM_THREADS="1")


# VIFB's methods/CNN/run_CNN.m run unchanged under GNU Octave 7.3 (scripts/reference_runs/run_vifb_cnn.m) on grey
# 8-bit inputs: the functional image's BT.601 luma (or CT/IR) in its infrared slot, the MRI/visible image in its
# visible slot.  Measured on 68 cases (20 pairs per Harvard task, 6 TNO pairs or crops, two Harvard crops): 61
# identical on every value, all but 7 of 5,476,748 values identical; each of those 7 is within 1.6e-5 grey levels
# of a rounding half (the network's float32 sums, added in another order).  Six cases are committed here.
@pytest.mark.parametrize("row", committed_cases("octave_vifb_cnn"), ids=lambda row: row["name"])
def test_equals_vifb_run_cnn_under_octave(weights_home, shared_dir, row):
    from fusionbench.method_registry import create_method

    other, mri = (case_image(shared_dir, row[key], row["crop"], grey=True) for key in ("other", "mri"))
    fused = np.asarray(create_method("cnn")(mri, other), dtype=np.float64) * 255.0
    reference = committed_result("octave_vifb_cnn", row["name"]).astype(int)
    assert fused.shape == reference.shape
    ours = to_uint8(fused).astype(int)
    differ = ours != reference
    assert np.all(np.abs(ours - reference) <= 1)
    # a differing value may only be one whose unrounded value sits at a rounding half (float32 round-off)
    assert np.all(np.abs(fused[differ] - np.floor(fused[differ]) - 0.5) < 1e-4), fused[differ]
    assert differ.sum() <= 2


def test_band_fuse_equal_salience_takes_the_second_band():
    """band_fuse.m's selection is `s1 > s2`: where the two bands have the same local energy and do not match
    (m2 = -m1: match = -1), the second band is taken.  The random bands of the es2 test never tie."""
    rng = np.random.default_rng(5)
    m1 = rng.normal(size=(7, 9))
    m2 = -m1
    out = cnn.band_fuse(m1, m2, rng.random((7, 9)))
    np.testing.assert_array_equal(out, m2)
    # one strictly stronger band still wins wherever it is
    np.testing.assert_array_equal(cnn.band_fuse(2 * m1, m2, np.zeros((7, 9))), 2 * m1)
