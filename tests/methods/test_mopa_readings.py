"""Pins of the paper's structure and of the readings ``docs/paper_network.md`` chose, which the parameter and
FLOP counts of ``test_mopa.py`` cannot see (each change named in a test's docstring keeps those counts)."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import fusionbench
from fusionbench.methods.mopa import PAPER_SCHEDULE, loss
from fusionbench.methods.mopa.layers import DSCB
from fusionbench.methods.mopa.losses import decouple_loss
from fusionbench.methods.mopa.network import MopaNet, network_inputs

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "paper_network.md").read_text(encoding="utf-8")


def _batch(n: int = 2, h: int = 24, w: int = 24) -> torch.Tensor:
    rng = np.random.default_rng(0)
    return torch.from_numpy(np.stack([network_inputs(rng.random((h, w), dtype=np.float32),
                                                     rng.random((h, w), dtype=np.float32) * 0.5) for _ in range(n)]))


def test_the_registered_loss_reads_mri_from_channel_0_and_takes_the_functional_source_as_i1() -> None:
    """Eq. 11 with I₁ = PET/SPECT and α = 0.5 (swapping channels 0 and 1 would bring back version 1's I₁ = MRI)."""
    torch.manual_seed(0)
    net = MopaNet()
    x = _batch()
    _, terms = loss(net, x)
    fused, (d_mri, d_func) = net(x)
    mri, func = x[:, 0:1], x[:, 1:2]
    expected = torch.mean((fused - func) ** 2) + 0.5 * torch.mean((fused - mri) ** 2)
    assert not terms["intensity"].requires_grad  # the terms are detached (the loop holds them until it logs)
    assert float(terms["intensity"]) == pytest.approx(float(expected.detach()), rel=1e-6)
    assert float(terms["decouple"]) == pytest.approx(float(decouple_loss(d_mri, d_func, mri, func).detach()), rel=1e-6)


def test_the_paper_structure() -> None:
    """§1.2 path depths 4/4/3 (swapping the MRI and shared paths keeps every count); §1.3.2's DPM paths of 1, 2
    and 3 DSCBs with their skips (2/2/2 keeps every count); Eq. 7's r = 3 on 1/3/5/7 scales; the decoupler reads
    the fused image and both 4th-layer path features; LReLU slope 0.2 everywhere."""
    net = MopaNet()
    assert [len(p) for p in (net.path_a, net.path_b, net.path_ab)] == [4, 4, 3]
    assert [len(p) for p in net.detail.paths] == [1, 2, 3]
    assert all(isinstance(block, DSCB) for path in net.detail.paths for block in path)
    assert net.contrast.r == 3 and [s.kernel_size[0] for s in net.contrast.scales] == [1, 3, 5, 7]
    assert net.decoupler.trunk[0].body[0][0].in_channels == 1 + 2 * 5
    assert all(m.negative_slope == 0.2 for m in net.modules() if isinstance(m, nn.LeakyReLU))
    dpm, x = net.detail, torch.rand(1, 15, 9, 9)
    with torch.no_grad():  # DSCB outputs zeroed: each path is its skip alone, x + fuse(cat[h, h, h])
        for path in dpm.paths:
            for block in path:
                block[1].weight.zero_()
                block[1].bias.zero_()
        h = dpm.head(x)
        assert torch.allclose(dpm(x), x + dpm.fuse(torch.cat([h, h, h], 1)), atol=1e-6)


def test_the_attention_channel_branch_has_an_lrelu_after_each_hidden_conv() -> None:
    """The reading of "two 3×3 convolutional layers followed by an LReLU" (docs/paper_network.md): moving or
    dropping an LReLU keeps the counts but not the committed weights' function."""
    layers = [type(m).__name__ for m in MopaNet().attention.channel]
    assert layers == ["Conv2d", "LeakyReLU", "Conv2d", "LeakyReLU", "Conv2d", "Sigmoid"]


def test_the_paper_schedule_and_the_training_pairs(shared_dir) -> None:
    """§2: 30 epochs of batch 32, lr 1e-4, 120² patches at stride 10; 90 MRI-PET + 90 MRI-SPECT pairs, each
    task's paper_train pairs among them, all from the train split, none from the test split."""
    from fusionbench.methods.mopa.data import training_pairs

    data = shared_dir / "data"
    assert (PAPER_SCHEDULE.epochs, PAPER_SCHEDULE.batch_size, PAPER_SCHEDULE.lr, PAPER_SCHEDULE.patch_size,
            PAPER_SCHEDULE.stride) == (30, 32, 1e-4, 120, 10)
    pairs = training_pairs("pet_spect", data)
    assert len(pairs) == 180
    for name in ("harvard-mri-pet", "harvard-mri-spect"):
        ds = fusionbench.create_dataset(name, data_dir=str(data))
        ids = {p.id for p in pairs if p in ds.pairs}
        assert len(ids) == 90
        assert set(ds.splits["paper_train"]) <= ids <= set(ds.splits["train"]) and not ids & set(ds.splits["test"])


def test_the_documented_test_pair_count(shared_dir) -> None:
    n = sum(len(fusionbench.create_dataset(t, data_dir=str(shared_dir / "data")).splits["test"])
            for t in ("harvard-mri-pet", "harvard-mri-spect"))
    assert re.search(rf"on the {n} held-out test", DOC), f"docs/paper_network.md should say {n} test pairs"


@pytest.mark.slow
def test_the_documented_loss_balance_reproduces(shared_dir) -> None:
    """The numbers of "What these readings weigh" come from scripts/mopa_loss_balance.py (about a minute)."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from mopa_loss_balance import balance
    finally:
        sys.path.pop(0)
    from fusionbench.methods.mopa import build_model, load_state_dict, preset_params

    torch.set_num_threads(1)
    net = build_model(preset_params("mopa"))
    net.load_state_dict(load_state_dict("mopa"))
    net.eval()
    pet = balance("harvard-mri-pet", "test", str(shared_dir / "data"), net)
    spect = balance("harvard-mri-spect", "test", str(shared_dir / "data"), net)
    said = " ".join(DOC.split())
    assert (f"10·L_gradient = {pet['10*L_gradient']:.3f} against L_intensity = {pet['L_intensity']:.3f} (MRI-PET; "
            f"{spect['10*L_gradient']:.3f} against {spect['L_intensity']:.3f} on MRI-SPECT)") in said
    assert (f"{pet['Sobel/Laplacian, average']:.1f}× (MRI-PET) and {spect['Sobel/Laplacian, average']:.1f}× "
            f"(MRI-SPECT) the Laplacian one for the average") in said
    assert (f"{pet['Sobel/Laplacian, mopa output']:.1f}× and {spect['Sobel/Laplacian, mopa output']:.1f}× for the "
            "committed") in said
