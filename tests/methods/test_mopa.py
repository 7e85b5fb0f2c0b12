"""mopa (Di et al. 2025): network shapes, switches, readings, CUDA-safe ops, cost in both conventions, registry, weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.filters import threshold_otsu

import fusionbench
import torch.nn.functional as F

from fusionbench.methods.mopa import (DEFAULT_PARAMS, LEAVE_ONE_OUT, PRESETS, TABLE4, VERSION, build_model,
                                      load_state_dict, preset_params, weights_file)
from fusionbench.methods.mopa.layers import local_std, reflect_pad
from fusionbench.methods.mopa.network import MopaNet, network_inputs, otsu_mask
from fusionbench.methods.mopa.presets import EXTRA_SEEDS, SEEDED, registered_name, seeded_name

from ._isa import HOST, STAND_INS, assert_same_bits_on_every_cpu, needs_avx512


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _batch(n=2, h=37, w=45, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.random((h, w), dtype=np.float32), rng.random((h, w), dtype=np.float32)
    x = np.stack([network_inputs(a * (k + 1) / n, b) for k in range(n)])
    return torch.from_numpy(x)


def test_otsu_mask_two_levels():
    img = np.zeros((10, 10), np.float32)
    img[:, 6:] = 0.8
    img[0, 0] = 0.1
    mask = otsu_mask(img)
    assert mask.dtype == np.float32
    np.testing.assert_array_equal(mask, (img > 0.5).astype(np.float32))
    assert not otsu_mask(np.full((5, 5), 0.3, np.float32)).any()


def test_local_std_matches_window_std():
    rng = np.random.default_rng(1)
    x = rng.random((1, 2, 12, 15)).astype(np.float32)
    r = 2
    padded = np.pad(x, ((0, 0), (0, 0), (r, r), (r, r)), mode="reflect")
    win = np.lib.stride_tricks.sliding_window_view(padded, (2 * r + 1, 2 * r + 1), axis=(2, 3))
    expected = win.std(axis=(-1, -2))  # Eq. 7: (1/(2r+1))·sqrt(Σ(φ-μ)²) = population std
    np.testing.assert_allclose(local_std(torch.from_numpy(x), r).numpy(), expected, atol=2e-4)


def test_reflect_pad_is_torchs_reflect_padding_with_a_cuda_safe_backward():
    """Same values as F.pad(mode='reflect'); its backward has no ReflectionPad node (raises on CUDA when deterministic)."""
    x = torch.randn(2, 3, 9, 11, dtype=torch.float64, requires_grad=True)
    for r in (0, 1, 3):
        assert torch.equal(reflect_pad(x, r), F.pad(x, (r, r, r, r), mode="reflect") if r else x)
    w = torch.randn(2, 3, 15, 17, dtype=torch.float64)
    (g_ours,) = torch.autograd.grad((reflect_pad(x, 3) * w).sum(), x)
    (g_torch,) = torch.autograd.grad((F.pad(x, (3, 3, 3, 3), mode="reflect") * w).sum(), x)
    torch.testing.assert_close(g_ours, g_torch, rtol=0, atol=1e-12)
    names = _backward_nodes(reflect_pad(x, 3).sum())
    assert not any("Reflection" in n for n in names), names


def _backward_nodes(t):
    seen, stack, names = set(), [t.grad_fn], set()
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        names.add(type(fn).__name__)
        stack += [nxt for nxt, _ in fn.next_functions]
    return names


@pytest.mark.parametrize("preset", ["mopa", "parallel", "cem_multiscale", "laplacian", "no_mask"])
def test_training_graph_has_no_cuda_nondeterministic_backward(preset):
    """Every backward node of the training loss is deterministic on CUDA (no op that raises under
    ``torch.use_deterministic_algorithms(True)``: reflection padding, adaptive pooling, interpolation, ...)."""
    from fusionbench.methods.mopa import make_loss

    params = preset_params(preset)
    net = build_model(params)
    total, _ = make_loss(params)(net, _batch(2, 20, 20))
    bad = {n for n in _backward_nodes(total)
           if any(k in n for k in ("Reflection", "AdaptiveAvgPool", "AdaptiveMaxPool", "Upsample", "GridSampler",
                                   "FractionalMaxPool", "MaxUnpool", "NllLoss", "Cumsum", "Histc"))}
    assert not bad


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_shapes_and_switches(preset):
    params = preset_params(preset)
    net = build_model(params)
    x = _batch()
    fused, dec = net(x)
    assert fused.shape == (2, 1, 37, 45)
    assert fused.min().item() >= 0 and fused.max().item() <= 1
    if params["use_decouple"]:
        assert [d.shape for d in dec] == [(2, 1, 37, 45)] * 2
        assert net(x, decouple=False)[1] is None
    else:
        assert dec is None and net.decoupler is None
    assert net.path_a[0][0].in_channels == (2 if params["use_mask"] else 1)
    assert net.path_a[0][0].out_channels == params["width"]
    assert isinstance(net.contrast, torch.nn.Identity) != params["use_contrast"]
    assert isinstance(net.attention, torch.nn.Identity) != params["use_attention"]


def test_attention_modes_share_parameters_and_differ_in_flow():
    torch.manual_seed(0)
    cascade = MopaNet(4, attention="cascade").eval()
    parallel = MopaNet(4, attention="parallel").eval()
    parallel.load_state_dict(cascade.state_dict())  # same parameters in both readings
    x = _batch()
    with torch.no_grad():
        assert not torch.equal(cascade(x)[0], parallel(x)[0])
        att, f = cascade.attention, torch.rand(1, 12, 9, 9)
        pooled = torch.cat([f.mean(dim=(2, 3), keepdim=True), f.amax(dim=(2, 3), keepdim=True)], dim=1)
        xc = f * att.channel(pooled)
        expected = att.combine(torch.cat([xc, xc * att.spatial_weights(xc)], dim=1))  # spatial reads channel output
        assert torch.equal(att(f), expected)
    with pytest.raises(ValueError, match="attention"):
        MopaNet(4, attention="serial")


def test_cem_weights_input_or_multiscale_features():
    torch.manual_seed(0)
    net = MopaNet(4).eval()
    cem = net.contrast
    f = torch.rand(1, 12, 10, 10)
    with torch.no_grad():
        m = cem.multiscale(f)
        w = cem.weights_of(m)
        assert torch.equal(cem(f), f * w)
        cem.cem_apply = "multiscale"
        assert torch.equal(cem(f), m * w)
    with pytest.raises(ValueError, match="cem_apply"):
        MopaNet(4, cem_apply="output")


@pytest.mark.parametrize("cem_apply", ["input", "multiscale"])
def test_module_apply_reaches_every_layer(cem_apply):
    """``nn.Module.apply(fn)`` (the usual weight-init idiom) is torch's: the CEM's mode is not stored
    under that name (it was, and ``MopaNet().apply(init)`` raised ``'str' object is not callable``)."""
    net = MopaNet(4, cem_apply=cem_apply)
    seen = []
    assert net.apply(seen.append) is net
    assert net.contrast in seen and len(seen) == len(list(net.modules()))
    assert net.contrast.cem_apply == cem_apply


def test_mask_channels_matter_only_with_mask():
    x = _batch()
    x2 = x.clone()
    x2[:, 2:] = 1 - x2[:, 2:]
    torch.manual_seed(0)
    with_mask = MopaNet().eval()
    torch.manual_seed(0)
    without = MopaNet(use_mask=False).eval()
    with torch.no_grad():
        assert not torch.equal(with_mask(x)[0], with_mask(x2)[0])
        assert torch.equal(without(x)[0], without(x2)[0])


def test_gradients_reach_every_parameter():
    from fusionbench.methods.mopa import loss

    torch.manual_seed(0)
    net = MopaNet()
    total, terms = loss(net, _batch(2, 24, 24))
    total.backward()
    assert set(terms) == {"gradient", "intensity", "decouple", "total"}
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_deterministic_forward():
    torch.manual_seed(3)
    n1 = MopaNet().eval()
    torch.manual_seed(3)
    n2 = MopaNet().eval()
    x = _batch()
    with torch.no_grad():
        assert torch.equal(n1(x)[0], n2(x)[0])
        assert torch.equal(n1(x)[0], n1(x)[0])


@pytest.mark.parametrize("width,params,flops64,fixed", [(4, 17467, 137_937_544, 648), (5, 28066, 223_093_644, 908),
                                                          (6, 39263, 312_083_854, 1422)])
def test_cost(width, params, flops64, fixed):
    """Inference cost per width (paper: 2.531 GFLOPs at 256², Table 5).

    Counted at 64² to keep the test fast: conv FLOPs scale with the pixel
    count and the layers on pooled vectors cost ``fixed`` FLOPs, so
    F(256²) = 16·F(64²) − 15·fixed (width 5: 3,569,484,684 FLOPs = 1.785 GMAC).
    """
    from torch.utils.flop_counter import FlopCounterMode

    net = MopaNet(width).eval()
    assert sum(p.numel() for n, p in net.named_parameters() if not n.startswith("decoupler")) == params
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, 4, 64, 64), decouple=False)
    assert counter.get_total_flops() == flops64


def test_width_is_the_closest_to_the_paper_in_its_own_convention():
    """Table 5's 2.531 in the paper's convention (1.318 paper-FLOPs per MAC): width 5 (2.35) beats 4 (1.45) and 6 (3.29)."""
    from fusionbench.methods.mopa.flops import PAPER_FLOPS_PER_MAC, PAPER_MOPA_GFLOPS

    f256 = {w: 16 * f - 15 * c for w, _, f, c in [(4, 0, 137_937_544, 648), (5, 0, 223_093_644, 908),
                                                   (6, 0, 312_083_854, 1422)]}
    paper = {w: f / 2e9 * PAPER_FLOPS_PER_MAC for w, f in f256.items()}
    assert min(paper, key=lambda w: abs(paper[w] - PAPER_MOPA_GFLOPS)) == DEFAULT_PARAMS["width"] == 5
    assert paper[5] == pytest.approx(2.352, abs=1e-3)


def test_paper_flop_convention_is_calibrated_on_table5(weights_home):
    """Re-measure Table 5's SDNet and MATR rows: paper GFLOPs / our GMAC = 1.313 and 1.323 (mean 1.318)."""
    from fusionbench.methods.mopa.flops import PAPER_FLOPS_PER_MAC, calibration, cost

    ratios = calibration()
    assert ratios["sdnet"] == pytest.approx(1.3129, abs=5e-4) and ratios["matr"] == pytest.approx(1.3230, abs=5e-4)
    assert np.mean(list(ratios.values())) == pytest.approx(PAPER_FLOPS_PER_MAC, abs=5e-4)
    c = cost("mopa.v1")
    assert c["gmac"] == pytest.approx(1.1035, abs=1e-4) and c["gflops_2mac"] == pytest.approx(2.2070, abs=1e-4)
    assert c["gflops_paper"] == pytest.approx(1.1035 * 1.318, abs=1e-3)


def test_registry():
    names = fusionbench.list_methods("mopa*")
    assert set(names) == {registered_name(p) for p in PRESETS} | {seeded_name(p, s) for p in SEEDED for s in EXTRA_SEEDS}
    assert len(SEEDED) == 9 and "mopa.no_mask.seed2" in names and "mopa.seed1" in names
    assert fusionbench.method_info("mopa.no_mask.seed1").params == {**preset_params("no_mask"), "seed": 1}
    assert "seed" not in fusionbench.method_info("mopa.no_mask").params  # seed 0: method keys of stored results kept
    info = fusionbench.method_info("mopa")
    assert info.trainable and info.uses_torch and info.colour == "luma" and info.version == VERSION == "2"
    assert info.params == {"preset": "mopa", **DEFAULT_PARAMS}
    assert (info.params["width"], info.params["attention"], info.params["cem_apply"]) == (5, "cascade", "input")
    assert (info.params["loss_alpha"], info.params["loss_i1"], info.params["loss_weights"]) == (0.5, "functional", "max")
    assert fusionbench.method_info("mopa.mask_only").params["use_attention"] is False
    assert fusionbench.method_info("mopa.width6").params["width"] == 6
    assert PRESETS["no_mask"] == {"use_mask": False, "use_attention": True, "use_contrast": True,
                                  "use_decouple": True}
    cols = ("use_mask", "use_attention", "use_contrast", "use_decouple")
    rows = [tuple(preset_params(p)[c] for c in cols) for p in TABLE4]  # Table 4, columns Mask/Attention/Contrast/Decouple
    assert rows == [(True, False, False, False), (False, True, False, False), (False, False, True, False),
                    (False, False, False, True), (True, True, True, True)]
    assert LEAVE_ONE_OUT == ("no_mask", "no_attention", "no_contrast", "no_decouple")


@pytest.mark.parametrize("preset", ["mopa", "v1"])
def test_committed_weights_load(preset):
    from fusionbench.methods.mopa import WEIGHTS_DIR

    assert weights_file(preset).is_file() and weights_file(preset).parent == WEIGHTS_DIR, \
        f"weights of {preset} are not committed"
    state = load_state_dict(preset)  # sha256 sidecar checked, weights_only=True
    assert all(v.dtype == torch.float32 for v in state.values())
    build_model(preset_params(preset)).load_state_dict(state)


def test_corrupted_weights_refused(tmp_path, monkeypatch):
    from fusionbench.methods import mopa
    from fusionbench.weights import ChecksumError

    (tmp_path / "v1.pth").write_bytes(weights_file("v1").read_bytes()[:-1] + b"x")
    (tmp_path / "v1.sha256").write_text(weights_file("v1").with_suffix(".sha256").read_text())
    monkeypatch.setattr(mopa, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(ChecksumError, match="v1.pth"):
        load_state_dict("v1")


def test_fuse_harvard_pair(shared_dir):
    pair = fusionbench.create_dataset("harvard-mri-pet", data_dir=shared_dir / "data").select("test")[0]
    a, b = pair.a_path, pair.b_path
    out = fusionbench.fuse("mopa", a, b)
    assert out.shape == (256, 256, 3) and out.dtype == np.uint8
    again = fusionbench.fuse("mopa", a, b)
    np.testing.assert_array_equal(out, again)
    assert out.std() > 5  # not a blank image


def test_images_smaller_than_the_contrast_window_are_mirrored_out_not_broadcast():
    """A side under r + 1 = 4 pixels (the contrast module's reflect padding) failed at 2 pixels ("narrow():
    length must be non-negative") and at 3 pixels gave a 1-pixel window map that broadcast over the image;
    such an image is now mirrored out to 4 pixels and the result cropped back. From 4 pixels nothing changes."""
    from fusionbench.methods.mopa import MOPA

    method = MOPA()
    assert method.min_side == 4
    rng = np.random.default_rng(3)
    a, b = (rng.random((9, 60)).astype(np.float32) for _ in range(2))
    for h, w in ((2, 2), (2, 50), (9, 2), (3, 3), (1, 5)):
        out = method(a[:h, :w], b[:h, :w])
        assert out.shape == (h, w) and np.isfinite(out).all() and 0 <= out.min() <= out.max() <= 1
    pad = lambda x: np.pad(x, ((0, 1), (0, 1)), mode="symmetric")  # noqa: E731
    np.testing.assert_array_equal(method(a[:3, :3], b[:3, :3]), method(pad(a[:3, :3]), pad(b[:3, :3]))[:3, :3])
    with method.inference():  # 4 × 7: the network's own result, no padding
        direct = method.network(torch.from_numpy(network_inputs(a[:4, :7], b[:4, :7]))[None])[0]
    np.testing.assert_array_equal(method(a[:4, :7], b[:4, :7]), direct[0, 0].numpy())


def test_unavailable_reason_and_profile():
    from fusionbench import profile

    assert fusionbench.create_method("mopa").unavailable_reason() is None
    assert fusionbench.create_method("mopa.v1").unavailable_reason() is None
    reason = fusionbench.create_method("mopa.mask_only").unavailable_reason()
    assert "not committed" in reason and "architecture changed" in reason and "fusionbench train" in reason
    assert "not committed" in fusionbench.create_method("mopa.no_mask").unavailable_reason()
    assert profile.params("mopa") == 28066  # inference modules only (decoupling network dropped)
    both = profile.gflops_conventions("mopa")
    assert both["gflops_2mac"] == pytest.approx(3.569484684) and both["gmac"] == pytest.approx(1.784742342)
    assert both["gflops_paper"] == pytest.approx(1.784742342 * 1.318)  # 2.352, paper: 2.531
    assert profile.params("mopa.v1") == 17467


def test_seed_parameter_and_seed_variants_load_the_exported_names(tmp_path, monkeypatch, shared_dir):
    """`fusionbench train mopa.no_mask --seed 1 --export DIR` writes what create_method(..., seed=1) and the
    registered `mopa.no_mask.seed1` load; absent weights are unavailable with the file and the command."""
    import argparse
    import json

    from fusionbench.methods import mopa
    from fusionbench.train import cli
    from fusionbench.train.pack import read_pack, write_pack

    assert weights_file("no_mask", 1).name == "no_mask.seed1.pth" and weights_file("no_mask").name == "no_mask.pth"
    monkeypatch.setattr(mopa, "WEIGHTS_DIR", tmp_path / "w")
    reason = fusionbench.create_method("mopa.no_mask", seed=1).unavailable_reason()
    assert "no_mask.seed1.pth" in reason and "fusionbench train mopa.no_mask --seed 1" in reason
    assert fusionbench.create_method("mopa.no_mask.seed1").unavailable_reason() == reason
    pack = write_pack(["mopa.no_mask.seed2"], tmp_path / "p.fbpack", shared_dir / "data", max_pairs=1)
    assert set(read_pack(pack).variants) == {"mopa.no_mask"}  # a seed variant packs its preset's training set
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    tiny = ["--pack", str(pack), "--epochs", "1", "--patch-size", "32", "--stride", "64", "--max-patches", "4",
            "--batch-size", "2", "--no-progress", "--export", str(tmp_path / "w")]
    # the registered seed variant trains exactly `NAME --seed N`: same name, same pack entry, same stem
    assert cli.run(parser.parse_args(["mopa.no_mask.seed1", "--out", str(tmp_path / "r1"), *tiny])) == 0
    assert cli.run(parser.parse_args(["mopa.no_mask", "--seed", "1", "--out", str(tmp_path / "r2"), *tiny])) == 0
    with pytest.raises(SystemExit, match="contradicts"):
        cli.run(parser.parse_args(["mopa.no_mask.seed1", "--seed", "2", "--out", str(tmp_path / "r3"), *tiny]))
    w = tmp_path / "w"
    assert sorted(p.name for p in w.iterdir()) == ["no_mask.seed1.json", "no_mask.seed1.pth", "no_mask.seed1.sha256"]
    a = torch.load(tmp_path / "r1" / "final.pth", weights_only=True)
    b = torch.load(tmp_path / "r2" / "final.pth", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    prov = json.loads((w / "no_mask.seed1.json").read_text())
    assert prov["method"] == "mopa.no_mask" and prov["seed"] == 1 and "seed" not in prov["params"]
    for method in (fusionbench.create_method("mopa.no_mask", seed=1), fusionbench.create_method("mopa.no_mask.seed1")):
        assert method.unavailable_reason() is None
        out = method(np.full((32, 32), 0.3, np.float32), np.full((32, 32), 0.6, np.float32))
        assert out.shape == (32, 32)
    assert fusionbench.create_method("mopa.no_mask").unavailable_reason() is not None  # seed 0 still absent
    assert (fusionbench.create_method("mopa.no_mask.seed1").cache_key()
            != fusionbench.create_method("mopa.no_mask.seed2").cache_key())


@pytest.mark.parametrize("kwargs", [{}, {"use_contrast": False}, {"use_attention": False}, {"attention": "parallel"},
                                    {"cem_apply": "multiscale"}, {"use_mask": False}, {"mask_mode": "multiply"}])
def test_inference_path_equals_the_graph(kwargs):
    """Under inference mode the forward takes InferencePath (in-place activations, 1×1 convs as mm, window
    sums by slices, maxima by halving): the graph's values to float32 round-off, the same counted FLOPs,
    the same decoupled outputs; odd sizes included."""
    from fusionbench.profile import count_flops
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    net = MopaNet(**kwargs).eval()
    for size in [(37, 29), (64, 64)]:
        x = torch.rand(1, 4, *size)
        fused, (d1, d2) = net(x)  # grad enabled: the training graph
        with torch.inference_mode():
            fast, (f1, f2) = net(x)
        assert (fast - fused.detach()).abs().max().item() <= 1e-5
        assert (f1 - d1.detach()).abs().max().item() <= 1e-5 and (f2 - d2.detach()).abs().max().item() <= 1e-5
    with FlopCounterMode(display=False) as graph:
        net(x, decouple=False)
    assert count_flops(lambda t: net(t, decouple=False), x) == graph.get_total_flops()


def test_inference_path_on_a_harvard_pair(shared_dir):
    """The registered `mopa` on a real 256² pair: inference path vs the graph, ≤ 1e-5 on the fused map."""
    from fusionbench.io import load_image
    from fusionbench.methods.mopa import prepare

    pair = fusionbench.create_dataset("harvard-mri-pet", data_dir=shared_dir / "data").select("test")[0]
    x = torch.from_numpy(prepare(load_image(pair.a_path), load_image(pair.b_path)))[None]
    net = fusionbench.create_method("mopa").instance.network
    ref, _ = net(x)
    with torch.inference_mode():
        fast, _ = net(x)
    assert (fast - ref.detach()).abs().max().item() <= 1e-5


def test_inference_multiscale_layer_is_one_conv_outside_a_flop_counter():
    """InferencePath runs the CEM's four multiscale convs as one 7×7 conv with zero-padded kernels: the four
    convs' concatenation to round-off; under a FLOP counter the four convs themselves (the network's FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    from fusionbench.methods.mopa.inference import InferencePath

    torch.manual_seed(0)
    net = MopaNet().eval()
    cem = net.contrast
    x = torch.rand(1, 15, 40, 33).contiguous(memory_format=torch.channels_last)
    path = InferencePath(net)
    with torch.inference_mode():
        separate = torch.cat([s(x) for s in cem.scales], dim=1)
        merged = path.multiscale(cem, x)
        with FlopCounterMode(display=False) as counted:
            path.multiscale(cem, x)
    assert merged.shape == separate.shape
    assert (merged - separate).abs().max().item() <= 1e-5 * max(1.0, separate.abs().max().item())
    expected = sum(2 * s.weight.numel() * 40 * 33 for s in cem.scales)  # 2·Cout·Cin·k²·HW each (1×1 as mm)
    assert counted.get_total_flops() == expected


@pytest.mark.parametrize("shape", [(1, 15, 64, 64), (1, 15, 37, 29), (1, 3, 8, 7), (1, 2, 4, 5)])
def test_compiled_local_std_maximum_equals_the_torch_formulation(shape):
    """The compiled maximum of the local std (one pass, no map stored) equals ``amax(local_std(x, r))`` of the
    graph to float32 round-off, odd sizes and windows wider than half the map included."""
    from fusionbench.methods.mopa.inference import _local_std_max

    g = torch.Generator().manual_seed(0)
    x = (torch.rand(*shape, generator=g) * 2 - 0.5).contiguous(memory_format=torch.channels_last)
    r = min(3, shape[2] - 1, shape[3] - 1)
    with torch.inference_mode():
        fast = _local_std_max(x, r)
    ref = torch.amax(local_std(x.contiguous(), r), dim=(2, 3))
    assert fast.shape == ref.shape == (1, shape[1])
    assert (fast - ref).abs().max().item() <= 1e-6


@pytest.mark.parametrize("shape", [(15, 64, 64), (15, 37, 29), (3, 8, 7), (2, 4, 5)])
def test_planar_local_std_maxima_equal_the_channels_last_kernel(shape):
    """The planar kernel (session 11) gives the channels-last kernel's per-column maxima bit for bit, on the
    whole image and on a band of rows read from a view of a padded buffer."""
    from fusionbench.methods.mopa import _std_kernels

    c, h, w = shape
    r = min(3, h - 1, w - 1)
    x = (torch.rand(h, w, c, generator=torch.Generator().manual_seed(h)) * 2 - 0.5).numpy()
    padded = np.zeros((c, h + 2, w + 17), np.float32)
    padded[:, 1:h + 1, 1:w + 1] = x.transpose(2, 0, 1)
    for g0, y0, y1 in ((0, 0, h), (max(0, h // 2 - r), h // 2, h)):
        best = np.zeros(w * c, np.float32)
        _std_kernels.local_std_max_rows(x[g0:], r, g0, h, y0, y1, best)
        planar = np.zeros((c, w), np.float32)
        _std_kernels.local_std_max_rows_planar(padded, 1 + g0, 1, w, r, g0, h, y0, y1, planar)
        assert np.array_equal(planar, best.reshape(w, c).T)


_STD_ISA_SCRIPT = """
import sys
import numpy as np
from fusionbench.methods.mopa import _std_kernels
rng = np.random.default_rng(0)
x = (rng.random((37, 45, 15)) * 3 - 1).astype(np.float32)
out = np.empty(15, np.float32)
_std_kernels.local_std_max(x, 3, out)
planar = np.zeros((15, 45), np.float32)
_std_kernels.local_std_max_rows_planar(np.ascontiguousarray(x.transpose(2, 0, 1)), 0, 0, 45, 3, 0, 37, 0, 37, planar)
np.save(sys.argv[1], np.concatenate([out, planar.ravel()]))
"""


@needs_avx512
@pytest.mark.parametrize("stand_in", STAND_INS)
def test_compiled_local_std_maximum_does_not_depend_on_the_instruction_set(stand_in: str, tmp_path):
    """The kernels (channels-last and planar) give the same bits compiled for SSE2 (no FMA), AVX2 and AVX-512."""
    assert_same_bits_on_every_cpu(_STD_ISA_SCRIPT, tmp_path, cpus=(stand_in, HOST))


@pytest.mark.parametrize("kwargs", [{}, {"use_contrast": False}, {"use_attention": False}, {"attention": "parallel"},
                                    {"use_mask": False}, {"mask_mode": "multiply"}])
def test_banded_inference_equals_the_whole_image_pass(kwargs):
    """Large images run in four passes over bands of rows (methods/mopa/_banded.py): the whole-image
    inference pass's fused map and path features to float32 round-off, for bands of 1, 5 and 16 rows
    (bands narrower than the halos included) at odd sizes."""
    from fusionbench.methods.mopa._banded import banded_forward
    from fusionbench.methods.mopa.inference import InferencePath

    torch.manual_seed(0)
    net = MopaNet(**kwargs).eval()
    for size, rows in [((37, 29), 5), ((64, 50), 16), ((40, 33), 1)]:
        x = torch.rand(1, 4, *size).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            path = InferencePath(net)
            whole = path(x)
            banded = banded_forward(path, x, rows)
        for a, b in zip(whole, banded):
            assert a.shape == b.shape
            assert (a - b).abs().max().item() <= 1e-6


def test_large_images_take_the_banded_pass(monkeypatch):
    """Above BAND_PIXELS the inference path runs in bands (here with the thresholds scaled down): the
    graph's values to round-off; a FLOP counter and ``cem_apply='multiscale'`` keep the whole-image pass."""
    from fusionbench.methods._row_bands import even_bands
    from fusionbench.methods.mopa import _banded
    from fusionbench.methods.mopa.inference import InferencePath
    from fusionbench.profile import count_flops
    from torch.utils.flop_counter import FlopCounterMode

    assert _banded.band_rows((512, 512)) is None and _banded.band_rows((1024, 1024)) == 128
    assert _banded.band_rows((4096, 200)) == 655 and _banded.band_rows((600, 2000)) == 65
    for h, rows in [(1000, 128), (255, 128), (256, 128), (7, 3), (5, 9)]:
        bands = even_bands(0, h, rows)
        sizes = [r1 - r0 for r0, r1 in bands]
        assert bands[0][0] == 0 and bands[-1][1] == h and all(a[1] == b[0] for a, b in zip(bands, bands[1:]))
        assert max(sizes) <= rows and max(sizes) - min(sizes) <= 1 and len(bands) == -(-h // rows)
    monkeypatch.setattr(_banded, "BAND_PIXELS", 1000)
    monkeypatch.setattr(_banded, "BAND_PIXELS_EACH", 300)
    monkeypatch.setattr(_banded, "MIN_BAND_ROWS", 4)
    calls = []
    real = _banded.banded_forward
    monkeypatch.setattr(_banded, "banded_forward", lambda *a: calls.append(a[2]) or real(*a))
    torch.manual_seed(0)
    net = MopaNet().eval()
    x = torch.rand(1, 4, 45, 31)
    fused, _ = net(x)
    with torch.inference_mode():
        fast, _ = net(x)
    assert calls == [9] and (fast - fused.detach()).abs().max().item() <= 1e-5
    with FlopCounterMode(display=False) as graph:
        net(x, decouple=False)
    assert count_flops(lambda t: net(t, decouple=False), x) == graph.get_total_flops()
    assert calls == [9]  # the counter ran the whole image
    assert InferencePath(MopaNet(cem_apply="multiscale").eval()).band_rows(x) is None
    assert InferencePath(net).band_rows(torch.rand(1, 4, 90000, 7)) is None  # narrower than the window


@pytest.mark.parametrize("width, split", [(5, False), (5, True), (6, True)])
def test_two_threads_run_as_two_band_workers(monkeypatch, width, split):
    """With 2 torch threads the inference path runs as 2 single-threaded band workers: by default one band of
    rows each (methods/mopa/_banded.py; the one-thread result to round-off); with ``SPLIT_LAYERS`` at the
    registered width (every layer compiled) each layer's output rows split between them (methods/mopa/_split.py;
    the one-thread result bit for bit), other widths still banded.  One thread runs the whole image (at the
    registered width the compiled band passes on one band, with the split pass's sums and sigmoids: its bits,
    session 13).  The graph's to ≤ 1e-5; torch's thread count restored."""
    from fusionbench.methods.mopa import _banded, _split
    from fusionbench.methods.mopa.inference import InferencePath

    monkeypatch.setattr(InferencePath, "SPLIT_LAYERS", split)
    calls, splits = [], []
    real = _banded.banded_forward
    monkeypatch.setattr(_banded, "banded_forward",
                        lambda *a, **k: calls.append((a[2], "blocks" in k)) or real(*a, **k))
    real_split = _split.split_forward
    monkeypatch.setattr(_split, "split_forward", lambda *a: splits.append(a[3]) or real_split(*a))
    torch.manual_seed(0)
    net = MopaNet(width=width).eval()
    x = torch.rand(1, 4, 70, 45)
    fused, _ = net(x)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with torch.inference_mode():
            one, _ = net(x)
        one_thread = [(70, True)] if width == 5 else []  # the whole image as one compiled band (session 13)
        assert calls == one_thread
        torch.set_num_threads(2)
        with torch.inference_mode():
            two, _ = net(x)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    if width == 5 and split:  # the split pass at two workers: the one-thread bits
        assert calls == one_thread and splits == [2] and torch.equal(two, one)
        with torch.inference_mode():  # and at one worker
            assert torch.equal(real_split(InferencePath(net), x, workers=1)[0], one)
    else:
        assert calls == one_thread + [(35, False)] and splits == []
    assert (two - one).abs().max().item() <= 1e-6
    assert (two - fused.detach()).abs().max().item() <= 1e-5


@pytest.mark.parametrize("mode", ["cascade", "parallel"])
def test_compiled_attention_passes_equal_the_torch_steps(mode):
    """The attention's compiled passes (methods/mopa/_attention_kernels.py) against the torch steps they
    replace: pooled means and maxima over pixels, the gating products, the spatial branch's input and the
    combining conv's input (float32 round-off; products bit for bit), odd sizes."""
    from fusionbench.methods.mopa import _attention_kernels as kernels

    g = torch.Generator().manual_seed(0)
    for h, w in [(37, 29), (1, 1), (64, 50)]:
        x = (torch.rand(1, 15, h, w, generator=g) * 2 - 0.5).contiguous(memory_format=torch.channels_last)
        wc = torch.rand(15, generator=g)
        s = torch.rand(h, w, generator=g)
        hwc = x.permute(0, 2, 3, 1)[0].numpy()
        sums, peak = np.empty(15), np.empty(15, np.float32)
        kernels.pixel_sum_max(hwc, sums, peak)
        assert np.abs(sums / (h * w) - x.double().mean(dim=(0, 2, 3)).numpy()).max() <= 1e-6
        assert np.array_equal(peak, x.amax(dim=(0, 2, 3)).numpy())
        both = np.empty((h, w, 30), np.float32)
        spatial = np.empty((h, w, 2), np.float32)
        cascade = mode == "cascade"
        kernels.gate(hwc, wc.numpy(), cascade, both, spatial)
        kernels.gate_spatial(hwc, s.numpy(), cascade, both)
        xc = x * wc[None, :, None, None]
        source = xc if cascade else x
        ref_spatial = torch.cat([source.mean(dim=1, keepdim=True), source.amax(dim=1, keepdim=True)], dim=1)
        ref_both = torch.cat([xc, source * s[None, None]], dim=1)
        assert np.array_equal(both, ref_both.permute(0, 2, 3, 1)[0].numpy())
        assert np.abs(spatial - ref_spatial.permute(0, 2, 3, 1)[0].numpy()).max() <= 1e-6


@pytest.mark.parametrize("cascade", [True, False])
def test_planar_attention_passes_equal_the_channels_last_ones(cascade):
    """The planar attention kernels (session 11) give the channels-last kernels' results: gating products,
    the spatial branch's input and the maxima bit for bit, the float64 sums to 1e-12; on views of padded
    buffers, odd sizes."""
    from fusionbench.methods.mopa import _attention_kernels as kernels

    g = torch.Generator().manual_seed(1)
    for h, w in [(37, 29), (1, 1), (64, 50), (3, 131)]:
        x = (torch.rand(1, 15, h, w, generator=g) * 2 - 0.5).contiguous(memory_format=torch.channels_last)
        wc = torch.rand(15, generator=g).numpy()
        s = torch.rand(h, w, generator=g).numpy()
        hwc = x.permute(0, 2, 3, 1)[0].numpy()
        planar = np.zeros((15, h + 3, w + 19), np.float32)
        planar[:, 2:h + 2, 1:w + 1] = x[0].numpy()
        at = np.array([2, 1])
        sums, peak, psums, ppeak = np.empty(15), np.empty(15, np.float32), np.empty(15), np.empty(15, np.float32)
        kernels.pixel_sum_max(hwc, sums, peak)
        kernels.pixel_sum_max_planar(planar, 2, 1, h, w, psums, ppeak)
        assert np.array_equal(peak, ppeak) and np.abs(psums - sums).max() <= 1e-12 * np.abs(sums).max() + 1e-12
        both, spatial = np.empty((h, w, 30), np.float32), np.empty((h, w, 2), np.float32)
        kernels.gate(hwc, wc, cascade, both, spatial)
        kernels.gate_spatial(hwc, s, cascade, both)
        pboth, pspatial = np.zeros((30, h + 2, w + 3), np.float32), np.zeros((2, h + 6, w + 6), np.float32)
        kernels.gate_planar(planar, at, wc, cascade, pboth, np.array([1, 1]), pspatial, np.array([3, 3]), h, w)
        kernels.gate_spatial_planar(planar, at, s, pboth, np.array([1, 1]), cascade, h, w)
        assert np.array_equal(pboth[:, 1:h + 1, 1:w + 1], both.transpose(2, 0, 1))
        assert np.array_equal(pspatial[:, 3:h + 3, 3:w + 3], spatial.transpose(2, 0, 1))
        pboth[:, 1:h + 1, 1:w + 1] = 0
        pspatial[:, 3:h + 3, 3:w + 3] = 0
        assert not pboth.any() and not pspatial.any()  # nothing written outside the views


_ATTENTION_ISA_SCRIPT = """
import sys
import numpy as np
from fusionbench.methods.mopa import _attention_kernels as k
rng = np.random.default_rng(0)
x = (rng.random((37, 45, 15)) * 3 - 1).astype(np.float32)
wc = rng.random(15).astype(np.float32)
s = rng.random((37, 45)).astype(np.float32)
sums, peak = np.empty(15), np.empty(15, np.float32)
k.pixel_sum_max(x, sums, peak)
both, spatial = np.empty((37, 45, 30), np.float32), np.empty((37, 45, 2), np.float32)
k.gate(x, wc, True, both, spatial)
k.gate_spatial(x, s, True, both)
xp = np.ascontiguousarray(x.transpose(2, 0, 1))
psums, ppeak = np.empty(15), np.empty(15, np.float32)
k.pixel_sum_max_planar(xp, 0, 0, 37, 45, psums, ppeak)
pboth, pspatial = np.empty((30, 37, 45), np.float32), np.empty((2, 37, 45), np.float32)
o = np.zeros(2, np.int64)
k.gate_planar(xp, o, wc, False, pboth, o, pspatial, o, 37, 45)
k.gate_spatial_planar(xp, o, s, pboth, o, False, 37, 45)
np.save(sys.argv[1], np.concatenate([sums, peak, both.ravel(), spatial.ravel(), psums, ppeak, pboth.ravel(),
                                     pspatial.ravel()]))
"""


@needs_avx512
@pytest.mark.parametrize("stand_in", STAND_INS)
def test_compiled_attention_passes_do_not_depend_on_the_instruction_set(stand_in: str, tmp_path):
    """The attention kernels give the same bits compiled for SSE2 (no FMA), AVX2 and AVX-512."""
    assert_same_bits_on_every_cpu(_ATTENTION_ISA_SCRIPT, tmp_path, cpus=(stand_in, HOST))


def test_a_torch_whose_pointwise_conv_refuses_the_calls_gets_the_plain_path(monkeypatch):
    """``_pointwise_works`` probes the private oneDNN operator once; if it raises (another torch's signature)
    the inference path runs the separate operations, with the same fused map to round-off."""
    import torch

    from fusionbench.methods.mopa import inference

    def refusing(*args, **kwargs):
        raise RuntimeError("unexpected arguments")

    refusing.binary = refusing
    inference._pointwise_works.cache_clear()
    try:
        monkeypatch.setattr(inference, "_CONV_POINTWISE", refusing)
        assert inference._pointwise_works() is False
        x = torch.rand(1, 4, 9, 11).contiguous(memory_format=torch.channels_last)
        assert inference._onednn_ready(x) is False
    finally:
        monkeypatch.undo()
        inference._pointwise_works.cache_clear()
    assert inference._pointwise_works() is (inference._CONV_POINTWISE is not None)


@pytest.mark.parametrize("kwargs", [{}, {"use_contrast": False}, {"use_attention": False}, {"attention": "parallel"},
                                    {"use_mask": False}])
def test_rows_split_over_workers_give_the_same_bits(kwargs):
    """The whole-image planar pass with each layer's output rows split among workers (methods/mopa/_split.py):
    any number of workers (here run in reverse order on one thread: each worker reads only rows its neighbours
    wrote in an earlier step) gives the one-worker bits at odd sizes; the workers' rows are whole blocks of
    SUM_ROWS rows (the attention's sums over a fixed cut)."""
    from fusionbench.methods.mopa import _split
    from fusionbench.methods.mopa.inference import InferencePath

    def backwards(fn, spans):
        for span in reversed(spans):
            fn(span)

    blocks, spans = _split.worker_rows(101, 2)
    assert len(blocks) == 4 and spans == [(0, blocks[1][1]), (blocks[2][0], 101)]
    assert _split.worker_rows(20, 4)[1] == [(0, 20)]
    torch.manual_seed(0)
    net = MopaNet(**kwargs).eval()
    for size in [(101, 37), (70, 45), (9, 40)]:
        x = torch.rand(1, 4, *size).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            path = InferencePath(net)
            assert path.planar_ready(x)
            one = _split.split_forward(path, x)
            for workers in (2, 3, 4):
                many = _split.split_forward(path, x, backwards, workers)
                assert all(torch.equal(a, b) for a, b in zip(one, many))
        fused, _ = net(x)
        assert (one[0] - fused.detach()).abs().max().item() <= 1e-5


def test_band_workers_keep_their_planar_maps(monkeypatch):
    """With one band per worker the banded passes' planar maps are the workers' kept maps of the last call
    (methods/mopa/_planar.py ``scratch``, session 12): within a block ``bordered`` hands each kept map out once,
    with its padding still 0 after a use; outside a block it keeps nothing; a thread keeps at most SCRATCH_BYTES
    (a map that does not fit is not kept; a full thread drops only the shapes no recent block took).  Two-thread calls after the first give the first call's bits
    (the one-thread result to round-off)."""
    from fusionbench.methods.mopa import _planar

    def padding_is_zero(buf, h, w, p=1):
        inside = torch.zeros_like(buf, dtype=torch.bool)
        inside[:, p:p + h, p:p + w] = True
        return bool((buf[~inside] == 0).all())

    outside = _planar.bordered(3, 5, 20)
    assert _planar.bordered(3, 5, 20).data_ptr() != outside.data_ptr()
    with _planar.scratch():
        a, b = _planar.bordered(3, 5, 20), _planar.bordered(3, 5, 20)
        assert a.data_ptr() != b.data_ptr()
        a[:, 1:6, 1:21] = 7.0  # a writer of the interior
        b[:, 1:6, 1:21] = -1.0
    with _planar.scratch():
        again = [_planar.bordered(3, 5, 20), _planar.bordered(3, 5, 20), _planar.bordered(3, 5, 20)]
        assert [t.data_ptr() for t in again[:2]] == [a.data_ptr(), b.data_ptr()]
        assert again[2].data_ptr() not in (a.data_ptr(), b.data_ptr())
        assert all(padding_is_zero(t, 5, 20) for t in again)
    size = a.numel() * a.element_size()
    monkeypatch.setattr(_planar, "_SCRATCH", _planar._Scratch())
    monkeypatch.setattr(_planar, "SCRATCH_BYTES", 2 * size)
    with _planar.scratch():
        first = [_planar.bordered(3, 5, 20) for _ in range(3)]  # the third is not kept
    assert _planar._SCRATCH.kept == 2 * size
    with _planar.scratch():
        assert _planar.bordered(3, 5, 20).data_ptr() == first[0].data_ptr()
        other = _planar.bordered(3, 4, 20)  # does not fit: not kept, the kept ones stay
    assert _planar._SCRATCH.kept == 2 * size
    for _ in range(_planar.SCRATCH_STALE + 1):  # blocks that take only the other shape: the first one goes stale
        with _planar.scratch():
            other = _planar.bordered(3, 4, 20)
    assert _planar._SCRATCH.kept == other.numel() * other.element_size() <= _planar.SCRATCH_BYTES
    with _planar.scratch():
        assert _planar.bordered(3, 4, 20).data_ptr() == other.data_ptr()
        assert padding_is_zero(other, 4, 20)
    monkeypatch.undo()

    torch.manual_seed(0)
    net = MopaNet().eval()
    x = torch.rand(1, 4, 70, 45)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with torch.inference_mode():
            one, _ = net(x)
        torch.set_num_threads(2)
        with torch.inference_mode():
            runs = [net(x)[0] for _ in range(3)]
    finally:
        torch.set_num_threads(threads)
    assert 0 < _planar._SCRATCH.kept <= _planar.SCRATCH_BYTES  # the calling thread ran the first band
    assert all(torch.equal(runs[0], r) for r in runs[1:])
    assert (runs[0] - one).abs().max().item() <= 1e-6


def test_channel_weights_as_linear_layers():
    """The CEM's FCs and the attention's channel branch (1×1 convs of an N×C×1×1 map) as ``F.linear`` of the
    vectors without module calls (methods/mopa/inference.py ``_vector_layers``, session 12): the same bits as the
    modules' own Sequential and :meth:`InferencePath.seq`; another structure falls back to them."""
    from fusionbench.methods.mopa.inference import InferencePath, _vector_layers

    torch.manual_seed(0)
    net = MopaNet().eval()
    path = InferencePath(net)
    nn = torch.nn
    cem, att = path.contrast_module(), path.attention_module()
    ch = cem.fc[0].in_features
    assert _vector_layers(cem.fc, nn.Linear) is not None and _vector_layers(att.channel, nn.Conv2d) is not None
    g = torch.Generator().manual_seed(3)
    with torch.inference_mode():
        for k in range(200):
            std_max = torch.rand(1, ch, generator=g) * (k % 5 + 0.1)
            assert torch.equal(path.contrast_weights(cem, std_max), cem.fc(std_max)[:, :, None, None])
            mean, peak = torch.rand(1, ch, generator=g) - 0.3, torch.rand(1, ch, generator=g) * 4
            pooled = torch.cat([mean, peak], dim=1)[:, :, None, None]
            wc = path.channel_weights(att, mean, peak)
            assert torch.equal(wc, path.seq(att.channel, pooled)) and torch.equal(wc, att.channel(pooled))
    # other structures: the module's own path
    att.channel[1] = nn.ReLU()
    assert _vector_layers(att.channel, nn.Conv2d) is None
    with torch.inference_mode():
        assert torch.equal(path.channel_weights(att, mean, peak), att.channel(pooled))
    cem.fc[1] = nn.Tanh()
    assert _vector_layers(cem.fc, nn.Linear) is None
    with torch.inference_mode():
        assert torch.equal(path.contrast_weights(cem, std_max), cem.fc(std_max)[:, :, None, None])


def _per_kernel(monkeypatch):
    """The banded passes with their compiled one-call-per-band passes switched off (session 12's per-kernel calls)."""
    from fusionbench.methods.mopa import _banded

    monkeypatch.setattr(_banded, "features_plan", lambda *a: None)


@pytest.mark.parametrize("kwargs", [{}, {"use_mask": False}, {"use_attention": False}, {"attention": "parallel"},
                                    {"mask_mode": "multiply"}, {"use_contrast": False}])
def test_compiled_band_passes_give_the_per_kernel_bits(monkeypatch, kwargs):
    """Each band pass as one compiled call (methods/mopa/_pass_kernels.py, session 13) runs the same kernels on the
    same maps as the per-kernel passes: the same bits (fused map and path features) at odd sizes, with bands of 1,
    5 and 16 rows and one band per worker at 2 threads; at one thread the whole image as one band gives the split
    pass's bits (methods/mopa/_split.py, one worker); the configurations it does not cover (multiplied masks, no
    contrast module, a channels-last sample) keep the per-kernel passes."""
    from fusionbench.methods.mopa import _banded, _pass_kernels, _split
    from fusionbench.methods.mopa.inference import InferencePath

    calls = []
    real = _pass_kernels.features_contrast
    monkeypatch.setattr(_pass_kernels, "features_contrast", lambda *a: calls.append(1) or real(*a))
    covered = kwargs.get("mask_mode") != "multiply" and kwargs.get("use_contrast", True)
    torch.manual_seed(0)
    net = MopaNet(**kwargs).eval()
    runs = []
    for size, rows in [((37, 29), 5), ((64, 50), 16), ((40, 33), 1), ((70, 45), 35)]:
        x = torch.rand(1, 4, *size)
        with torch.inference_mode():
            for compiled in (True, False):
                with monkeypatch.context() as m:
                    if not compiled:
                        _per_kernel(m)
                    runs.append(_banded.banded_forward(InferencePath(net), x, rows))
            cl = _banded.banded_forward(InferencePath(net), x.contiguous(memory_format=torch.channels_last), rows)
            one = net(x)[0]  # (one thread: the whole image)
            assert torch.equal(one, _split.split_forward(InferencePath(net), x, workers=1)[0])
        new, old = runs[-2:]
        assert all(torch.equal(a, b) for a, b in zip(new, old)) and all(torch.equal(a, b) for a, b in zip(cl, old))
    assert bool(calls) == bool(covered)
    with monkeypatch.context() as m, torch.inference_mode():  # the later passes' plan refused: their per-kernel passes
        m.setattr(_banded, "rest_plan", lambda *a: None)
        assert all(torch.equal(a, b) for a, b in zip(_banded.banded_forward(InferencePath(net), x, 35), old))
        assert torch.equal(net(x)[0], one)  # (one thread: the split pass)
    calls.clear()
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with torch.inference_mode():
            two = net(x)
            with monkeypatch.context() as m:
                _per_kernel(m)
                assert torch.equal(two[0], net(x)[0])
    finally:
        torch.set_num_threads(threads)
    assert len(calls) == (2 if covered else 0)


def test_compiled_band_passes_follow_the_parameters(monkeypatch):
    """The compiled passes' weights are read at every call (methods/mopa/_banded.py ``_plan``): after a parameter
    changed in place, its ``data`` replaced, a parameter or a module replaced, or a slope changed, they give the
    per-kernel passes' bits for the network as it is now."""
    from fusionbench.methods.mopa import _banded
    from fusionbench.methods.mopa.inference import InferencePath

    torch.manual_seed(0)
    net = MopaNet().eval()
    x = torch.rand(1, 4, 41, 37)

    def same() -> None:
        with torch.inference_mode():
            new = _banded.banded_forward(InferencePath(net), x, 21)
            with monkeypatch.context() as m:
                _per_kernel(m)
                old = _banded.banded_forward(InferencePath(net), x, 21)
        assert all(torch.equal(a, b) for a, b in zip(new, old))
        return new[0]

    first = same()
    nn = torch.nn
    with torch.no_grad():
        net.path_a[0][0].weight.mul_(1.5)  # in place
    assert not torch.equal(same(), first)
    changes = [
        lambda: net.detail.fuse.bias.data.add_(0.1),  # in place through .data (no version bump)
        lambda: setattr(net.head[1].weight, "data", net.head[1].weight.data * 0.5),  # data replaced
        lambda: setattr(net.attention.combine[0], "weight", nn.Parameter(net.attention.combine[0].weight * -1)),
        lambda: net.contrast.scales.__setitem__(2, nn.Conv2d(15, 3, 5, padding=2)),  # a module replaced
        lambda: setattr(net.detail.paths[1][0][2], "negative_slope", 0.5),  # a slope
        lambda: setattr(net.path_ab[1][1], "negative_slope", 0.3),
    ]
    for change in changes:
        before = same()
        with torch.no_grad():
            change()
        assert not torch.equal(same(), before)


_PASSES_ISA_SCRIPT = """
import sys
import numpy as np
import torch
from fusionbench.methods.mopa import _pass_kernels
from fusionbench.methods.mopa.network import MopaNet
calls = []
real = _pass_kernels.detail
_pass_kernels.detail = lambda *a: calls.append(1) or real(*a)
torch.manual_seed(0)
net = MopaNet().eval()
torch.set_num_threads(2)
with torch.inference_mode():
    fused = net(torch.rand(1, 4, 70, 45))[0]
assert calls == [1, 1]
np.save(sys.argv[1], fused.numpy())
"""


# slow (≈ 30 s: every pass compiled three more times): the default run keeps the smaller tests of the same property
# on the kernels these passes link, in the same IR (explicit fused multiply-adds, no fastmath) —
# test_mopa_conv_kernels.py::test_direct_convolutions_do_not_depend_on_the_instruction_set (every conv, residual
# conv and DSCB), test_compiled_local_std_maximum_... and test_compiled_attention_passes_... above
@pytest.mark.slow
@needs_avx512
def test_compiled_band_passes_do_not_depend_on_the_instruction_set(tmp_path):
    """A two-thread forward through the compiled band passes (which link the kernels into their own code) gives
    the same bits compiled for SSE2 (no FMA), AVX2 and AVX-512."""
    assert_same_bits_on_every_cpu(_PASSES_ISA_SCRIPT, tmp_path)


def test_the_calling_thread_keeps_its_stored_detail_map():
    """Where every worker has one band, the calling thread's stored detail map is its map of the last call of that
    shape (methods/mopa/_banded.py ``_kept_detail``, session 13: no heap trimming, no page faults), one shape at a
    time and none above KEPT_DETAIL_BYTES; the calls' bits do not change."""
    from fusionbench.methods.mopa import _banded

    torch.manual_seed(0)
    net = MopaNet().eval()
    x, y = torch.rand(1, 4, 70, 45), torch.rand(1, 4, 66, 20)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with torch.inference_mode():
            first = net(x)[0]
            kept = _banded._KEPT.map
            assert kept is not None and kept.shape == (15, 72, 50)
            other = net(y)[0]
            assert _banded._KEPT.map.shape == (15, 68, 34)
            assert torch.equal(net(x)[0], first) and _banded._KEPT.map.shape == (15, 72, 50)
            assert torch.equal(net(y)[0], other)
    finally:
        torch.set_num_threads(threads)
    assert _banded._kept_detail((15, 4000, 4000)) is None


def test_otsu_mask_is_strictly_above_the_threshold():
    """Eq. 1-6: mask = image > T; a pixel exactly at Otsu's T (a histogram bin centre) is background."""
    img = np.zeros((8, 8), np.float32)
    img[:, 4:] = 1.0
    img[0, 0] = 0.5 / 256
    img[1, 1] = 100.5 / 256  # a bin centre of skimage's 256-bin histogram over [0, 1]: Otsu's T here
    t = threshold_otsu(img)
    assert (img == t).sum() == 1  # the test has a pixel at T
    mask = otsu_mask(img)
    np.testing.assert_array_equal(mask, (img > t).astype(np.float32))
    assert mask[1, 1] == 0


def test_network_inputs_are_a_b_and_their_own_masks():
    """The four input channels are [a, b, otsu(a), otsu(b)], each mask from its own source."""
    rng = np.random.default_rng(11)
    a = rng.random((12, 10), dtype=np.float32)
    b = (rng.random((12, 10)) ** 3).astype(np.float32)  # another distribution: another mask
    x = network_inputs(a, b)
    assert x.shape == (4, 12, 10) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0], a)
    np.testing.assert_array_equal(x[1], b)
    np.testing.assert_array_equal(x[2], otsu_mask(a))
    np.testing.assert_array_equal(x[3], otsu_mask(b))
    assert not np.array_equal(x[2], x[3])


def test_a_trained_file_that_does_not_match_its_sidecar_makes_the_preset_unavailable(tmp_path, monkeypatch):
    """Before session 32 the preset was available and every pair of a run failed with the same ChecksumError."""
    import os
    import shutil

    from fusionbench.methods import mopa

    monkeypatch.setenv("FUSIONBENCH_HOME", str(tmp_path / "home"))
    mine = tmp_path / "home" / "trained" / "mopa"
    mine.mkdir(parents=True)
    for suffix in (".pth", ".sha256", ".json"):
        shutil.copy(weights_file("v1").with_suffix(suffix), mine / f"v1{suffix}")
    monkeypatch.setattr(mopa, "WEIGHTS_DIR", tmp_path / "empty")  # yours, not the committed file, is the one used
    assert fusionbench.create_method("mopa.v1").unavailable_reason() is None
    before = (mine / "v1.pth").stat()
    data = bytearray((mine / "v1.pth").read_bytes())
    data[-5] ^= 1
    (mine / "v1.pth").write_bytes(bytes(data))
    os.utime(mine / "v1.pth", ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))  # past the checked clock tick
    reason = fusionbench.create_method("mopa.v1").unavailable_reason()
    assert str(mine / "v1.pth") in reason and "does not match" in reason and "re-export with `fusionbench train" in reason
    (mine / "v1.sha256").unlink()
    assert "no sha256 sidecar" in fusionbench.create_method("mopa.v1").unavailable_reason()


def test_weights_you_train_live_in_fusionbench_home_and_never_shadow_committed_ones(tmp_path, monkeypatch):
    """An installed package told you to ``--export`` into its own folder in site-packages (read-only for a system
    install, lost on reinstall, left behind by ``pip uninstall``; the packaging audit of session 26).  Now the
    command names ``$FUSIONBENCH_HOME/trained/mopa``, weights found there run, and a committed file wins."""
    import shutil

    from fusionbench.methods import mopa
    from fusionbench.weights_provenance import provenance_file

    monkeypatch.setenv("FUSIONBENCH_HOME", str(tmp_path / "home"))
    committed = weights_file("v1")
    mine = tmp_path / "home" / "trained" / "mopa"
    assert mopa.trained_dir() == mine
    assert f"--export {mine}`" in fusionbench.create_method("mopa.no_mask.seed2").unavailable_reason()
    mine.mkdir(parents=True)
    for suffix in (".pth", ".sha256", ".json"):
        shutil.copy(committed.with_suffix(suffix), mine / f"v1{suffix}")
    assert weights_file("v1") == committed  # the committed file is the one a run of mopa.v1 uses
    assert provenance_file("mopa.v1")[0] == committed.with_suffix(".json")
    monkeypatch.setattr(mopa, "WEIGHTS_DIR", tmp_path / "empty")
    assert weights_file("v1") == mine / "v1.pth"
    assert provenance_file("mopa.v1")[0] == mine / "v1.json"  # the report's provenance: beside the weights used
    method = fusionbench.create_method("mopa.v1")
    assert method.unavailable_reason() is None
    assert method(np.full((32, 32), 0.3, np.float32), np.full((32, 32), 0.6, np.float32)).shape == (32, 32)


def test_rest_plan_declines_a_head_the_compiled_passes_do_not_cover(monkeypatch):
    """``rest_plan`` returns None (the per-kernel passes then run) when the head has no compiled layers, as its
    docstring says, instead of failing on ``None * 2`` (the static audit, session 33)."""
    from fusionbench.methods.mopa import _banded, _planar

    monkeypatch.setattr(_planar, "head_layers", lambda head: None)
    for attention in (True, False):
        net = MopaNet(4, use_attention=attention).eval()
        assert _banded.rest_plan(net, net.attention if attention else None) is None


def _doc_cost_rows() -> list[list[str]]:
    """The rows of docs/paper_network.md's cost table: ``[names, inference params, training params, GMAC,
    GFLOPs (2×MAC), GFLOPs paper convention]``."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "paper_network.md").read_text()
    section = doc.split("### Cost in both conventions", 1)[1].split("\n## ", 1)[0]
    return [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| `mopa")]


def test_cost_gives_every_row_of_the_documented_cost_table():
    """``methods.mopa.flops.cost(name)`` counts every preset, also those whose weights are not trained yet (it
    loaded them, so 9 of the table's 11 rows raised FileNotFoundError; the paper-network audit, session 33), and
    the table says what it gives."""
    from fusionbench.methods.mopa.flops import cost

    rows = _doc_cost_rows()
    assert len(rows) == 11
    for names, inference, training, gmac, two_mac, paper in rows:
        for name in names.replace("`", "").split(", "):
            got = cost(name)
            assert f"{got['gmac']:.3f}" == gmac and f"{got['gflops_2mac']:.3f}" == two_mac, name
            assert f"{got['gflops_paper']:.3f}" == paper.replace("*", "").split(" ")[0], name
            net = build_model(fusionbench.method_info(name).params)
            assert f"{sum(p.numel() for p in net.parameters()):,}" == training, name
            net.decoupler = None
            assert f"{sum(p.numel() for p in net.parameters()):,}" == inference, name
