"""The compiled LayerNorm pass of SwinFusion's inference chunks (``methods/_window_attention_norm.py``)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fusionbench.methods import _swin_blocks as blocks
from fusionbench.methods import _swin_net as swin_net
from fusionbench.methods import _window_attention_norm as wn

from ._isa import HOST, STAND_INS_WITH_SSE2, assert_same_bits_on_every_cpu, needs_avx512

C = 60


def _params(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gamma = rng.uniform(0.5, 1.5, C).astype(np.float32)
    beta = rng.uniform(-0.3, 0.3, C).astype(np.float32)
    bias = rng.standard_normal(C).astype(np.float32)
    return gamma, beta, bias


def _layer_norm64(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    return torch.nn.functional.layer_norm(torch.from_numpy(x).double(), (C,), torch.from_numpy(gamma).double(),
                                          torch.from_numpy(beta).double(), eps).numpy()


@pytest.mark.parametrize("offset, scale", [(0.0, 1.0), (5.0, 0.5), (-40.0, 3.0), (0.0, 1e-3)])
def test_gathered_rows_match_layer_norm_and_bias(offset: float, scale: float) -> None:
    """Gathered rows: LayerNorm within float32 round-off of a float64 reference, as close as torch's own
    ``LayerNorm``; the residual rows are exactly ``row + bias`` (the bits of ``t.add_(bias)``)."""
    rng = np.random.default_rng(1)
    src = (rng.standard_normal((500, C)) * scale + offset).astype(np.float32)
    index = rng.permutation(500).astype(np.int64)
    gamma, beta, bias = _params(2)
    resid, xn = np.empty((130, C), np.float32), np.empty((130, C), np.float32)
    wn.norm_rows(src, index, 40, resid, bias, xn, gamma, beta, 1e-5)
    rows = src[index[40:170]]
    ref = _layer_norm64(rows, gamma, beta)
    ours = np.abs(xn - ref).max()
    theirs = np.abs(torch.nn.functional.layer_norm(torch.from_numpy(rows), (C,), torch.from_numpy(gamma),
                                                   torch.from_numpy(beta)).numpy() - ref).max()
    assert ours <= max(2 * theirs, 2e-6), (ours, theirs)
    assert np.array_equal(resid, rows + bias)


def test_in_place_rows() -> None:
    """``resid`` the same memory as the rows read (the block's second norm): every row read before written."""
    rng = np.random.default_rng(3)
    t = (rng.standard_normal((4096, C)) * 2 + 1).astype(np.float32)
    before = t.copy()
    gamma, beta, bias = _params(4)
    xn = np.empty_like(t)
    wn.norm_rows(t, None, 0, t, bias, xn, gamma, beta, 1e-5)
    assert np.array_equal(t, before + bias)
    assert np.abs(xn - _layer_norm64(before, gamma, beta)).max() <= 2e-6
    # rows base … base + T − 1 of a larger map, written back in place
    m = before.copy()
    part = m[1000:1100]
    xn2 = np.empty((100, C), np.float32)
    wn.norm_rows(m, None, 1000, part, bias, xn2, gamma, beta, 1e-5)
    assert np.array_equal(xn2, xn[1000:1100]) and np.array_equal(m[1000:1100], before[1000:1100] + bias)
    assert np.array_equal(m[:1000], before[:1000]) and np.array_equal(m[1100:], before[1100:])


def test_norm_only_in_place_and_chained() -> None:
    """``resid=None``: only the norm, written over the rows read (the between-stage norms), twice in a row."""
    rng = np.random.default_rng(7)
    t = (rng.standard_normal((300, C)) * 4 - 2).astype(np.float32)
    before = t.copy()
    (g1, b1, _), (g2, b2, _) = _params(8), _params(9)
    wn.norm_rows(t, None, 0, None, None, t, g1, b1, 1e-5)
    once = _layer_norm64(before, g1, b1)
    assert np.abs(t - once).max() <= 2e-6
    wn.norm_rows(t, None, 0, None, None, t, g2, b2, 1e-5)
    assert np.abs(t - _layer_norm64(once.astype(np.float32), g2, b2)).max() <= 4e-6


def test_padded_rows_carry_a_bias_column() -> None:
    """64-wide ``xn`` rows: the 60 normed channels (the same bits as 60-wide rows), then 1, 0, 0, 0; a product
    with ``[W | b | 0 0 0]`` then gives ``W·x + b`` (equal to the product plus the bias added after it)."""
    rng = np.random.default_rng(10)
    src = (rng.standard_normal((256, C)) * 2 + 1).astype(np.float32)
    gamma, beta, bias = _params(11)
    r60, r64 = np.empty((256, C), np.float32), np.empty((256, C), np.float32)
    x60, x64 = np.empty((256, C), np.float32), np.empty((256, 64), np.float32)
    wn.norm_rows(src, None, 0, r60, bias, x60, gamma, beta, 1e-5)
    wn.norm_rows(src, None, 0, r64, bias, x64, gamma, beta, 1e-5)
    assert np.array_equal(x64[:, :C], x60) and np.array_equal(r64, r60)
    assert np.array_equal(x64[:, C:], np.tile(np.float32([1, 0, 0, 0]), (256, 1)))
    w, b = torch.randn(120, C), torch.randn(120)
    padded = torch.cat([w, b[:, None], torch.zeros(120, 3)], 1)
    got = torch.from_numpy(x64) @ padded.t()
    assert (got - (torch.from_numpy(x60) @ w.t() + b)).abs().max() <= 1e-5
    with pytest.raises(ValueError):
        wn.norm_rows(src, None, 0, None, None, x64, gamma, beta, 1e-5)


def test_bad_input_is_refused() -> None:
    gamma, beta, bias = _params(5)
    ok = np.zeros((8, C), np.float32)
    with pytest.raises(ValueError):
        wn.norm_rows(np.zeros((8, 59), np.float32), None, 0, ok, bias, ok.copy(), gamma, beta, 1e-5)
    with pytest.raises(ValueError):
        wn.norm_rows(np.zeros((8, C), np.float64), None, 0, ok, bias, ok.copy(), gamma, beta, 1e-5)
    with pytest.raises(ValueError):
        wn.norm_rows(np.zeros((8, C), np.float32), None, 4, ok, bias, ok.copy(), gamma, beta, 1e-5)
    with pytest.raises(ValueError, match="resid needs bias"):  # was AttributeError on None.dtype
        wn.norm_rows(np.zeros((8, C), np.float32), None, 0, ok, None, ok.copy(), gamma, beta, 1e-5)
    assert not wn.supported(59) and wn.supported(C)


def test_the_network_uses_the_pass_and_matches_torch_norms() -> None:
    """The inference chunks go through the compiled pass; ``torch_norms()`` (torch's LayerNorm, the
    session-8 code) and the official formulation agree to round-off on a map with every window group."""
    torch.manual_seed(0)
    net = swin_net.SwinFusionNet().eval()
    with torch.no_grad():          # non-trivial affine parameters
        for m in net.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    g = torch.Generator().manual_seed(9)
    a, b = torch.rand(1, 1, 40, 56, generator=g), torch.rand(1, 1, 40, 56, generator=g)
    calls = []
    real = wn.norm_rows
    wn.norm_rows = lambda *args: calls.append(1) or real(*args)
    try:
        with torch.inference_mode():
            fused = net(a, b)
            n_fused = len(calls)
            with blocks.torch_norms():
                plain = net(a, b)
            with blocks.reference_attention():
                ref = net(a, b)
    finally:
        wn.norm_rows = real
    assert n_fused == len(calls) > 0
    assert (fused - plain).abs().max() <= 1e-5 and (fused - ref).abs().max() <= 1e-5


def test_import_compiles_nothing() -> None:
    """Importing SwinFusion does not import the pass (nor numba); importing the pass compiles nothing."""
    script = ("import sys, fusionbench.methods.swinfusion, fusionbench.methods._swin_blocks\n"
              "assert 'fusionbench.methods._window_attention_norm' not in sys.modules and 'numba' not in sys.modules\n"
              "from fusionbench.methods import _window_attention_norm as wn\n"
              "assert not wn.norm_rows_kernel.signatures\n")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)


@needs_avx512
@pytest.mark.parametrize("stand_in", STAND_INS_WITH_SSE2)
def test_same_values_without_fma_and_with_avx2_and_avx512(stand_in: str, tmp_path: Path) -> None:
    """Explicit 16-lane IR with a fixed summation tree: SSE2 without FMA, AVX2 and AVX-512 give the same bits."""
    script = ("import sys, numpy as np\n"
              "from fusionbench.methods import _window_attention_norm as wn\n"
              "rng = np.random.default_rng(6)\n"
              "src = (rng.standard_normal((300, 60)) * 3 + 2).astype(np.float32)\n"
              "idx = rng.permutation(300).astype(np.int64)\n"
              "g, b, bias = (rng.standard_normal(60).astype(np.float32) for _ in range(3))\n"
              "xn, r = np.empty((300, 60), np.float32), np.empty((300, 60), np.float32)\n"
              "wn.norm_rows(src, idx, 0, r, bias, xn, g, b, 1e-5)\n"
              "np.save(sys.argv[1], np.concatenate([xn.ravel(), r.ravel()]))\n")
    assert_same_bits_on_every_cpu(script, tmp_path, cpus=(stand_in, HOST))


def test_a_second_process_loads_the_pass_from_the_disk_cache() -> None:
    """In the session's cache, as the attention kernel's twin test (``test_window_attention.py``): the first
    process compiles and saves the pass where the cache lacks it, the second loads it."""
    script = ("import numpy as np\n"
              "from fusionbench.methods import _window_attention_norm as wn\n"
              "z = np.zeros((64, 60), np.float32); v = np.ones(60, np.float32)\n"
              "wn.norm_rows(z, None, 0, z.copy(), v, z.copy(), v, v, 1e-5)\n"
              "s = wn.norm_rows_kernel.stats\n"
              "print(sum(s.cache_hits.values()), sum(s.cache_misses.values()))\n")
    first, second = [subprocess.run([sys.executable, "-c", script], check=True, timeout=300, capture_output=True,
                                    text=True).stdout.split() for _ in range(2)]
    assert first in (["0", "1"], ["1", "0"]) and second == ["1", "0"]
