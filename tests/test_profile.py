"""fusionbench.profile: the FLOP convention (pinned), parameter counting, and the torch-method convention."""
from __future__ import annotations

import numpy as np
import pytest

from fusionbench import profile
from fusionbench.method_registry import METHODS, create_method, register_method

torch = pytest.importorskip("torch")


def test_flop_convention_is_pinned():
    """2·(32·32)·9·8·1 = 147,456 FLOPs (= 73,728 MACs): a torch upgrade must not change this silently."""
    conv = torch.nn.Conv2d(1, 8, 3, padding=1, bias=False)
    assert profile.count_flops(conv, torch.zeros(1, 1, 32, 32)) == 147_456


def test_linear_and_elementwise():
    lin = torch.nn.Linear(16, 4)
    assert profile.count_flops(lin, torch.zeros(10, 16)) == 2 * 10 * 16 * 4
    assert profile.count_flops(torch.relu, torch.zeros(100)) == 0


def test_count_parameters_counts_shared_tensors_once():
    a = torch.nn.Linear(3, 2)
    b = torch.nn.Sequential(a, torch.nn.BatchNorm1d(2))
    assert profile.count_parameters([a, b]) == 3 * 2 + 2 + 2 + 2  # BN running stats are buffers


class _Toy:
    """A torch method following the profiling convention."""

    def __init__(self, split: bool = False) -> None:
        self.enc = torch.nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.dec = torch.nn.Conv2d(4, 1, 1, bias=False)
        self.network = [self.enc, self.dec] if split else torch.nn.Sequential(self.enc, torch.nn.ReLU(), self.dec)

    def torch_inputs(self, size=(256, 256)):
        return (torch.zeros(1, 1, *size),)

    def torch_forward(self, x):
        return self.dec(self.enc(x))

    def __call__(self, a, b):
        return (a + b) / 2


class _ToySplit(_Toy):
    def __init__(self) -> None:
        super().__init__(split=True)


class _ToyNoForward(_Toy):
    torch_forward = None

    def __init__(self) -> None:
        super().__init__(split=True)


@pytest.fixture()
def toys():
    names = {"_profile_toy": _Toy, "_profile_toy_split": _ToySplit, "_profile_toy_bad": _ToyNoForward}
    for name, cls in names.items():
        register_method(name, uses_torch=True, override=True)(cls)
    yield names
    for name in names:
        METHODS.remove(name)


def test_torch_method_by_name_and_instance(toys):
    expected = 2 * 16 * 16 * 9 * 4 + 2 * 16 * 16 * 4
    assert profile.params("_profile_toy") == 36 + 4
    assert profile.gflops("_profile_toy", size=(16, 16)) == pytest.approx(expected / 1e9)
    m = create_method("_profile_toy_split")
    assert profile.params(m) == 40
    assert profile.gflops(m, size=(16, 16)) == pytest.approx(expected / 1e9)
    with pytest.raises(TypeError, match="torch_forward"):
        profile.gflops("_profile_toy_bad", size=(16, 16))


def test_non_torch_method_gives_none():
    @register_method("_profile_plain", override=True)
    def plain(a, b):
        return np.maximum(a, b)

    try:
        assert profile.params("_profile_plain") is None
        assert profile.gflops("_profile_plain") is None
    finally:
        METHODS.remove("_profile_plain")


# Pinned numbers of the deep methods owned with this module (see docs/fidelity.md / the final report).
EXPECTED = {"matr": 13_422, "ifcnn": 83_587, "cnn": 9 * 64 + 64 + 64 * 9 * 128 + 128 + 128 * 9 * 256 + 256 + 512 * 64 * 2}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_deep_methods_params_and_gflops(weights_home, name):
    assert profile.params(name) == EXPECTED[name]
    g = profile.gflops(name, size=(64, 64))
    assert g is not None and g > 0


def test_throughput_is_flops_over_the_timed_pass(toys, monkeypatch):
    """gflops_per_s = gflops / forward_seconds, the forward pass being the one gflops counts."""
    m = create_method("_profile_toy")
    calls = []
    monkeypatch.setattr(profile, "_best_seconds", lambda fn, *inputs, repeat: calls.append(inputs[0].shape) or 0.5)
    assert profile.forward_seconds(m, size=(16, 16)) == 0.5 and calls == [(1, 1, 16, 16)]
    assert profile.gflops_per_s(m, size=(16, 16)) == pytest.approx(profile.gflops(m, size=(16, 16)) / 0.5)
    assert profile.gflops_per_s(create_method("average")) is None


def test_fraction_of_conv_peak_is_the_median_of_interleaved_rounds(toys, monkeypatch):
    """Each round reads the yardstick, then times the forward; the result is the median of the rounds' fractions."""
    m = create_method("_profile_toy")
    flops = profile.gflops(m, size=(16, 16))
    order, peaks, seconds = [], iter([100.0, 50.0, 80.0]), iter([1.0, 1.0, 4.0])
    monkeypatch.setattr(profile, "conv_peak_gflops_per_s", lambda *a, **k: order.append("peak") or next(peaks))
    monkeypatch.setattr(profile, "forward_seconds", lambda *a, **k: order.append("forward") or next(seconds))
    fraction = profile.fraction_of_conv_peak(m, size=(16, 16), rounds=3)
    assert order == ["peak", "forward"] * 3
    # rounds: flops/1/100, flops/1/50, flops/4/80 → median flops/100
    assert fraction == pytest.approx(flops / 100.0)
    assert profile.fraction_of_conv_peak(create_method("average")) is None


def test_conv_peak_counts_two_flops_per_mac(monkeypatch):
    monkeypatch.setattr(profile, "_best_seconds", lambda fn, *inputs, repeat: 1.0)
    assert profile.conv_peak_gflops_per_s((8, 8), channels=4) == pytest.approx(2 * 4 * 4 * 9 * 64 / 1e9)
    monkeypatch.undo()
    assert profile.conv_peak_gflops_per_s((32, 32), channels=8, repeat=1) > 0


def test_gflops_conventions_of_the_toy_and_of_mopa(toys, weights_home):
    """The paper's convention is GMAC × PAPER_FLOPS_PER_MAC; mopa at 256² gives 2.352 against the paper's 2.5314."""
    toy = profile.gflops_conventions("_profile_toy", size=(16, 16))
    assert toy["gflops_2mac"] == pytest.approx(2 * toy["gmac"])
    assert toy["gflops_paper"] == pytest.approx(toy["gmac"] * profile.PAPER_FLOPS_PER_MAC)
    assert profile.gflops_conventions("average") is None
    assert profile.gflops_conventions("mopa")["gflops_paper"] == pytest.approx(2.352, abs=0.001)
