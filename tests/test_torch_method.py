"""The torch-method base: threads by context, tensors in and out, pad/crop, verified state loading."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from fusionbench.torch_method import (TorchMethod, as_array, as_tensor, crop, load_state, pad_amounts,
                                      pad_to_multiple, torch_threads)
from fusionbench.weights import ChecksumError

torch = pytest.importorskip("torch")


def test_threads_are_set_for_the_block_only() -> None:
    old = torch.get_num_threads()
    target = 1 if old != 1 else 2
    with torch_threads(target):
        assert torch.get_num_threads() == target
    assert torch.get_num_threads() == old
    with pytest.raises(RuntimeError):
        with torch_threads(target):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == old
    with torch_threads(None):
        assert torch.get_num_threads() == old


def test_tensor_round_trip() -> None:
    grey = np.random.default_rng(0).random((5, 7)).astype(np.float32)
    rgb = np.random.default_rng(1).random((5, 7, 3))
    assert as_tensor(grey).shape == (1, 1, 5, 7) and np.array_equal(as_array(as_tensor(grey)), grey)
    t = as_tensor(rgb)
    assert t.shape == (1, 3, 5, 7) and t.dtype == torch.float32
    assert np.array_equal(as_array(t), rgb.astype(np.float32))
    with pytest.raises(ValueError, match="H×W"):
        as_tensor(np.zeros(4))


@pytest.mark.parametrize("shape", [(67, 93), (130, 101), (8, 8), (1, 9), (3, 5, 3)])
def test_pad_to_multiple_and_crop_back(shape) -> None:
    x = np.random.default_rng(2).random(shape)
    p = pad_to_multiple(x, 8)
    assert p.shape[0] % 8 == 0 and p.shape[1] % 8 == 0 and p.shape[2:] == x.shape[2:]
    assert np.array_equal(crop(p, x.shape), x)
    assert pad_amounts(67, 93, (4, 16)) == (1, 3)
    if shape[0] > 2 and shape[0] % 8:  # reflect: the first padded row mirrors the row above the last one
        assert np.array_equal(p[shape[0], : shape[1]], x[shape[0] - 2])


def test_base_class_pads_and_runs_in_inference_mode() -> None:
    class Doubler(TorchMethod):
        pad_multiple = 4

        def __init__(self) -> None:
            super().__init__(threads=1)
            self.network = torch.nn.Conv2d(1, 1, 1, bias=False)
            torch.nn.init.constant_(self.network.weight, 2.0)
            self.network.train()

        def __call__(self, a, b):
            (pa,), shape = self.pad(a)
            with self.inference():
                assert not torch.is_grad_enabled() and torch.get_num_threads() == 1
                out = self.network(as_tensor(pa))
            assert not self.network.training
            return crop(as_array(out), shape)

    a = np.random.default_rng(3).random((13, 10)).astype(np.float32)
    assert np.array_equal(Doubler()(a, a), 2 * a)


def test_load_state_verifies_the_sidecar(tmp_path) -> None:
    f = tmp_path / "m.pth"
    torch.save({"w": torch.arange(4.0)}, f)
    (tmp_path / "m.sha256").write_text(hashlib.sha256(f.read_bytes()).hexdigest() + "  m.pth\n")
    assert torch.equal(load_state(f)["w"], torch.arange(4.0))
    data = bytearray(f.read_bytes())
    data[-40] ^= 0x10
    f.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=r"m\.pth: sha256 .* does not match"):
        load_state(f)
