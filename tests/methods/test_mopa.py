"""mopa (Di et al. 2025): network shapes, switches, gradients, determinism, cost, registry, weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import fusionbench
from fusionbench.methods.mopa import PRESETS, TABLE4, build_model, load_state_dict, weights_file
from fusionbench.methods.mopa.network import MopaNet, local_std, network_inputs, otsu_mask
from fusionbench.methods.mopa.presets import registered_name


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


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_shapes_and_switches(preset):
    net = build_model({"width": 4, **PRESETS[preset]})
    x = _batch()
    fused, dec = net(x)
    assert fused.shape == (2, 1, 37, 45)
    assert fused.min().item() >= 0 and fused.max().item() <= 1
    sw = PRESETS[preset]
    if sw["use_decouple"]:
        assert [d.shape for d in dec] == [(2, 1, 37, 45)] * 2
        assert net(x, decouple=False)[1] is None
    else:
        assert dec is None and net.decoupler is None
    assert net.path_a[0][0].in_channels == (2 if sw["use_mask"] else 1)
    assert isinstance(net.contrast, torch.nn.Identity) != sw["use_contrast"]
    assert isinstance(net.attention, torch.nn.Identity) != sw["use_attention"]


def test_mask_channels_matter_only_with_mask():
    x = _batch()
    x2 = x.clone()
    x2[:, 2:] = 1 - x2[:, 2:]
    torch.manual_seed(0)
    with_mask = MopaNet(4).eval()
    torch.manual_seed(0)
    without = MopaNet(4, use_mask=False).eval()
    with torch.no_grad():
        assert not torch.equal(with_mask(x)[0], with_mask(x2)[0])
        assert torch.equal(without(x)[0], without(x2)[0])


def test_gradients_reach_every_parameter():
    from fusionbench.methods.mopa import loss

    torch.manual_seed(0)
    net = MopaNet(4)
    total, terms = loss(net, _batch(2, 24, 24))
    total.backward()
    assert set(terms) == {"gradient", "intensity", "decouple", "total"}
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_deterministic_forward():
    torch.manual_seed(3)
    n1 = MopaNet(4).eval()
    torch.manual_seed(3)
    n2 = MopaNet(4).eval()
    x = _batch()
    with torch.no_grad():
        assert torch.equal(n1(x)[0], n2(x)[0])
        assert torch.equal(n1(x)[0], n1(x)[0])


def test_cost():
    """Inference cost of the default width (paper: 2.531 GFLOPs at 256², Table 5).

    Counted at 64² to keep the test fast: conv FLOPs scale with the pixel
    count, and the size-independent layers (on pooled vectors) cost 648
    FLOPs, so 256² costs 16·F(64²) − 15·648 = 2,206,990,984 FLOPs (2.207 GFLOPs,
    as ``fusionbench.profile.gflops('mopa')`` reports).
    """
    from torch.utils.flop_counter import FlopCounterMode

    net = MopaNet(4).eval()
    n_inference = sum(p.numel() for n, p in net.named_parameters() if not n.startswith("decoupler"))
    assert n_inference == 17467
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, 4, 64, 64), decouple=False)
    assert counter.get_total_flops() == 137_937_544
    assert 16 * 137_937_544 - 15 * 648 == 2_206_990_984


def test_registry():
    names = fusionbench.list_methods("mopa*")
    assert set(names) == {registered_name(p) for p in PRESETS}
    info = fusionbench.method_info("mopa")
    assert info.trainable and info.uses_torch and info.colour == "luma"
    assert fusionbench.method_info("mopa.mask_only").params["use_attention"] is False
    assert PRESETS["no_mask"] == {"use_mask": False, "use_attention": True, "use_contrast": True,
                                  "use_decouple": True}
    rows = [tuple(PRESETS[p].values()) for p in TABLE4]  # Table 4, columns Mask/Attention/Contrast/Decouple
    assert rows == [(True, False, False, False), (False, True, False, False), (False, False, True, False),
                    (False, False, False, True), (True, True, True, True)]


@pytest.mark.parametrize("preset", TABLE4)
def test_committed_weights_load(preset):
    assert weights_file(preset).is_file(), f"weights of {preset} are not committed"
    state = load_state_dict(preset)  # sha256 checked, weights_only=True
    assert all(v.dtype == torch.float32 for v in state.values())
    net = build_model({"width": 4, **PRESETS[preset]})
    net.load_state_dict(state)


def test_fuse_harvard_pair(shared_dir):
    pair = fusionbench.create_dataset("harvard-mri-pet", data_dir=shared_dir / "data").select("test")[0]
    a, b = pair.a_path, pair.b_path
    out = fusionbench.fuse("mopa", a, b)
    assert out.shape == (256, 256, 3) and out.dtype == np.uint8
    again = fusionbench.fuse("mopa", a, b)
    np.testing.assert_array_equal(out, again)
    assert out.std() > 5  # not a blank image


def test_unavailable_reason_and_profile():
    from fusionbench import profile

    assert fusionbench.create_method("mopa").unavailable_reason() is None
    assert "not committed" in fusionbench.create_method("mopa.no_mask").unavailable_reason()
    assert profile.params("mopa") == 17467  # inference modules only (decoupling network dropped)
    assert profile.params("mopa.mask_only") == 8749
