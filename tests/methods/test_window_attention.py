"""The compiled window-attention kernel of SwinFusion's inference path (``methods/_window_attention.py``)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fusionbench.methods import _swin_blocks as blocks
from fusionbench.methods import _swin_fused as fused
from fusionbench.methods import _swin_net as swin_net
from fusionbench.methods import _swin_windows as windows
from fusionbench.methods import _window_attention as wa

from ._isa import HOST, STAND_INS, assert_same_bits_on_every_cpu, needs_avx512

HEADS, N, D = 6, 64, 10


def _explicit(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, scale: float) -> torch.Tensor:
    """The official formulation in float64: (q·scale)@kᵀ + mask, softmax, @v; q, k, v (B, heads, N, D)."""
    q, k, v, mask = q.double(), k.double(), v.double(), mask.double()
    attn = (q * scale) @ k.transpose(-2, -1) + mask
    return attn.softmax(-1) @ v


def _heads(t: torch.Tensor) -> torch.Tensor:
    """(T, heads·D) token rows → (T/N, heads, N, D)."""
    return t.view(-1, N, HEADS, D).transpose(1, 2)


def _rows(t: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_heads`."""
    return t.transpose(1, 2).reshape(-1, HEADS * D)


def _masks(shifted: bool, seed: int) -> torch.Tensor:
    """(heads, N, N) relative-position bias as SwinFusion's (a random table, the official index), plus the
    shifted-window mask of a corner window (−100 between regions) when ``shifted``."""
    g = torch.Generator().manual_seed(seed)
    table = torch.randn(15 * 15, HEADS, generator=g) * 0.5
    bias = table[windows.relative_position_index(8).reshape(-1)].reshape(N, N, HEADS).permute(2, 0, 1)
    return bias + windows.kind_masks(8, 4)[3] if shifted else bias


@pytest.mark.parametrize("shifted", [False, True])
@pytest.mark.parametrize("spread", [1.0, 8.0])
def test_self_attention_equals_sdpa_and_the_official_formulation(shifted, spread):
    """Queries, keys and values as column blocks of one ``qkv`` array (the self-attention layout); scores of
    unit size and ≈ 8× larger (sharper softmax); measured max |Δ| ≈ 5e-7 against float64."""
    g = torch.Generator().manual_seed(11)
    windows = 7
    qkv = torch.randn(windows * N, 3 * HEADS * D, generator=g)
    qkv[:, : HEADS * D] *= spread
    mask = _masks(shifted, 2)
    scale = D ** -0.5
    qkv_t = np.ascontiguousarray(qkv.numpy().T)                  # channel-major, as the kernel takes it
    out = np.full((HEADS * D, windows * N), np.nan, np.float32)
    wa.attend(qkv_t, 0, qkv_t, HEADS * D, qkv_t, 2 * HEADS * D, mask.numpy(), scale, out)
    out = out.T
    q, k, v = (_heads(qkv[:, i * HEADS * D:(i + 1) * HEADS * D]) for i in range(3))
    sdpa = _rows(torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask[None], scale=scale))
    exact = _rows(_explicit(q, k, v, mask[None], scale))
    assert np.abs(out - exact.numpy()).max() <= 1e-5
    assert np.abs(out - sdpa.numpy()).max() <= 1e-5


def test_cross_attention_layout_and_extreme_masks():
    """Queries from one array, keys/values from another (``kv``, the cross blocks' layout); a mask with −100
    and −1e4 entries (weights flushed to 0) and a row whose every score is masked alike."""
    g = torch.Generator().manual_seed(5)
    q = torch.randn(3 * N, HEADS * D, generator=g)
    kv = torch.randn(3 * N, 2 * HEADS * D, generator=g)
    mask = _masks(True, 7)
    mask[:, :, 50:] -= 1e4
    mask[0, 3, :] = -100.0                                        # one query: every key equally masked
    q_t, kv_t = np.ascontiguousarray(q.numpy().T), np.ascontiguousarray(kv.numpy().T)
    out = wa.attend(q_t, 0, kv_t, 0, kv_t, HEADS * D, mask.numpy(), 0.3, np.empty((HEADS * D, 3 * N), np.float32)).T
    exact = _rows(_explicit(_heads(q), _heads(kv[:, :HEADS * D]), _heads(kv[:, HEADS * D:]), mask[None], 0.3))
    assert np.isfinite(out).all() and np.abs(out - exact.numpy()).max() <= 1e-5


def test_unsupported_windows_are_refused():
    assert wa.supported(64, 10) and not wa.supported(49, 10) and not wa.supported(64, 16)
    with pytest.raises(ValueError, match="not supported"):
        wa.attend(*(np.zeros((60, 100), np.float32), 0) * 3, np.zeros((6, 64, 64), np.float32), 1.0,
                  np.empty((60, 100), np.float32))


def test_exp2_is_accurate_to_two_ulp():
    """The vectorisable softmax weight 2ˣ on [CUT·log₂e, 0] (the scores whose weights are kept) against float64
    ``np.exp2`` rounded to float32 (measured ≤ 0.93 ulp); exact at the integers (powers of two); exactly 0 below
    the cut, down to scores of −1e4 and −inf."""
    cut = np.float32(wa.CUT * np.log2(np.e))
    x = np.concatenate([np.linspace(cut, 0.0, 2_000_001, dtype=np.float32),
                        -np.logspace(-8, 0, 10_001, dtype=np.float32), np.float32([0.0, -0.0, cut])])
    got = wa.exp2_f32(x).astype(np.float64)
    exact = np.exp2(x.astype(np.float64))
    ulp = np.spacing(exact.astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(got - exact) / ulp) <= 2.0
    ints = -np.arange(int(np.floor(-cut)) + 1, dtype=np.float32)
    assert ints[-1] >= cut and np.array_equal(wa.exp2_f32(ints), np.exp2(ints))
    below = np.concatenate([np.float32([np.nextafter(cut, np.float32(-np.inf))]),
                            np.linspace(cut - 1, -1e4, 10_001, dtype=np.float32), np.float32([-np.inf])])
    assert np.array_equal(wa.exp2_f32(below), np.zeros_like(below))


def test_the_network_uses_the_kernel_and_matches_sdpa(net):
    """Inference chunks go through the kernel (not inside a FLOP counter); SDPA (``sdpa_attention``) and the
    official formulation agree to round-off on a map with every window group."""
    g = torch.Generator().manual_seed(9)
    a, b = torch.rand(1, 1, 40, 56, generator=g), torch.rand(1, 1, 40, 56, generator=g)
    calls = []
    # the fused chunks call the compiled kernel directly, or (session 13) inside the one-call chunk kernels
    names = ("attend_kernel", "self_chunk_kernel", "cross_chunk_kernel")
    reals = {name: getattr(wa, name) for name in names}
    for name in names:
        setattr(wa, name, lambda *args, _real=reals[name]: calls.append(1) or _real(*args))
    try:
        with torch.inference_mode():
            fast = net(a, b)
            kernel_calls = len(calls)
            with blocks.sdpa_attention():
                sdpa = net(a, b)
            with blocks.reference_attention():
                ref = net(a, b)
    finally:
        for name in names:
            setattr(wa, name, reals[name])
    assert kernel_calls == len(calls) > 0
    assert (fast - sdpa).abs().max() <= 1e-5 and (fast - ref).abs().max() <= 1e-5


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return swin_net.SwinFusionNet().eval()


needs_gemm = pytest.mark.skipif(not wa.gemm_address(), reason="torch's sgemm_ not found (a torch build without MKL)")


@needs_gemm
def test_one_call_chunks_equal_the_chunks_step_by_step(net):
    """Session 13: with torch's ``sgemm_`` found, a chunk runs from its gather to the MLP's hidden layer in one
    compiled call (self and cross blocks), making the products as torch's ``mm`` / ``addmm_`` do: the same bits
    as the step-by-step chunks (``gemm_address`` 0), on a map with every window group, 1 and 2 threads."""
    g = torch.Generator().manual_seed(12)
    a, b = torch.rand(1, 1, 40, 56, generator=g), torch.rand(1, 1, 40, 56, generator=g)
    names = ("self_chunk_kernel", "cross_chunk_kernel")
    reals, calls = {name: getattr(wa, name) for name in names}, []
    for name in names:
        setattr(wa, name, lambda *args, _name=name: calls.append(_name) or reals[_name](*args))
    old, threads = list(wa._GEMM), torch.get_num_threads()
    try:
        outputs = []
        for n in (1, 2):
            torch.set_num_threads(n)
            with torch.inference_mode():
                one_call = net(a, b)
                wa._GEMM[:] = [0]
                steps = net(a, b)
                wa._GEMM[:] = old
            outputs.append((one_call, steps))
    finally:
        wa._GEMM[:] = old
        torch.set_num_threads(threads)
        for name in names:
            setattr(wa, name, reals[name])
    assert set(calls) == set(names)
    for one_call, steps in outputs:
        assert torch.equal(one_call, steps)
    assert torch.equal(outputs[0][0], outputs[1][0])


@needs_gemm
def test_reduced_precision_products_keep_the_chunks_step_by_step(net):
    """With torch's float32 products allowed in bf16 (``torch.backends.mkldnn.matmul.fp32_precision``), the chunks
    keep torch's own calls, which follow that setting, instead of the one-call kernels' ``sgemm_``."""
    matmul = torch.backends.mkldnn.matmul
    calls, real = [], wa.self_chunk_kernel
    wa.self_chunk_kernel = lambda *args: calls.append(1) or real(*args)
    old = matmul.fp32_precision
    a, b = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    try:
        matmul.fp32_precision = "bf16"
        with torch.inference_mode():
            net(a, b)
        assert not calls
        matmul.fp32_precision = old
        with torch.inference_mode():
            net(a, b)
        assert calls
    finally:
        matmul.fp32_precision = old
        wa.self_chunk_kernel = real


@needs_gemm
def test_the_found_gemm_gives_torch_products():
    """The ``sgemm_`` found in torch's library gives ``torch.mm`` / ``addmm_``'s bits on the three product shapes
    of a chunk (q/k/v, ``proj`` accumulated, ``fc1`` with the bias column), through :func:`_probe_gemm`'s call."""
    g = torch.Generator().manual_seed(5)
    w, x = torch.randn(180, 60, generator=g), torch.randn(4096, 60, generator=g)
    out = np.empty((180, 4096), np.float32)
    wa._probe_gemm(wa.gemm_address(), x.numpy(), w.numpy(), out)
    assert np.array_equal(out, torch.mm(w, x.t()).numpy())


def test_import_compiles_nothing():
    """Importing SwinFusion imports neither the kernel nor numba; importing the kernel compiles nothing."""
    script = ("import sys, fusionbench.methods.swinfusion, fusionbench.methods._swin_blocks\n"
              "assert 'numba' not in sys.modules and 'fusionbench.methods._window_attention' not in sys.modules\n"
              "from fusionbench.methods import _window_attention as wa\n"
              "assert not wa.attend_kernel.signatures and not wa.exp2_into.signatures\n")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)


@needs_avx512
@pytest.mark.parametrize("stand_in", STAND_INS)
def test_same_values_without_fma_and_with_avx2_and_avx512(stand_in: str, tmp_path: Path) -> None:
    """Explicit fused multiply-adds, no reassociation: the kernel compiled for SSE2 only (``fmaf`` calls),
    AVX2 (256-bit vectors) and AVX-512 (512-bit) gives the same bits, exponential included."""
    script = ("import sys, numpy as np\n"
              "from fusionbench.methods import _window_attention as wa\n"
              "rng = np.random.default_rng(4)\n"
              "qkv = rng.standard_normal((180, 3 * 64)).astype(np.float32)\n"
              "mask = (rng.standard_normal((6, 64, 64)) - 30 * (rng.random((6, 64, 64)) < 0.3)).astype(np.float32)\n"
              "out = wa.attend(qkv, 0, qkv, 60, qkv, 120, mask, 0.3, np.empty((60, 3 * 64), np.float32))\n"
              "e = wa.exp2_f32(np.linspace(-130, 0, 100_003, dtype=np.float32))\n"
              "np.save(sys.argv[1], np.concatenate([out.ravel(), e]))\n")
    assert_same_bits_on_every_cpu(script, tmp_path, cpus=(stand_in, HOST))


@needs_avx512
@needs_gemm
@pytest.mark.parametrize("stand_in", STAND_INS)
def test_one_call_chunks_give_the_same_values_with_avx2_and_avx512(stand_in: str, tmp_path: Path) -> None:
    """The one-call chunk kernels (norms, attention, and torch's ``sgemm_``, which picks its own code for the CPU
    whatever numba compiles for) give the same bits compiled for SSE2, AVX2 and AVX-512: a self and a cross chunk
    of two windows, gathered through an index."""
    script = ("import sys, numpy as np\n"
              "from fusionbench.methods import _window_attention as wa\n"
              "rng = np.random.default_rng(6)\n"
              "f = lambda *s: rng.standard_normal(s).astype(np.float32)\n"
              "t, c = 128, 60\n"
              "src, src2, x, y = f(300, c), f(300, c), f(t, c), f(t, c)\n"
              "index = rng.permutation(300)[:t].astype(np.int64)\n"
              "mask = (f(6, 64, 64) - 30 * (rng.random((6, 64, 64)) < 0.3)).astype(np.float32)\n"
              "norm = lambda: (1 + 0.1 * f(c), 0.1 * f(c), np.float32(1e-5), 0.1 * f(c))\n"
              "scratch = lambda: (f(t, c), f(3 * c * t), f(c * t), f(t, 64), f(t, 2 * c))\n"
              "w, wb, pw, w1 = 0.1 * f(3 * c, c), 0.1 * f(3 * c), 0.1 * f(c, c), 0.1 * f(2 * c, 64)\n"
              "gemm = wa.gemm_address()\n"
              "s1 = scratch()\n"
              "wa.self_chunk_kernel(gemm, src, index, 0, t, x, *norm(), w, wb, mask, np.float32(0.45), 6, pw, *norm(), w1, *s1)\n"
              "a, b = scratch(), scratch()\n"
              "wa.cross_chunk_kernel(gemm, src, src2, index, 0, t, y, x.copy(), *norm(), *norm(), w, wb, 0.1 * f(3 * c, c), 0.1 * f(3 * c),\n"
              "    mask, mask[::-1].copy(), np.float32(0.45), np.float32(0.4), 6, pw, 0.1 * f(c, c), *norm(), *norm(), w1, 0.1 * f(2 * c, 64),\n"
              "    a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3], a[4], b[4])\n"
              "np.save(sys.argv[1], np.concatenate([v.ravel() for v in (x, s1[4], y, a[4], b[4])]))\n")
    assert_same_bits_on_every_cpu(script, tmp_path, cpus=(stand_in, HOST))


def test_a_second_process_loads_the_kernel_from_the_disk_cache() -> None:
    """The compiled kernel is cached on disk and found again by a new process (a closure over the
    intrinsics was recompiled in every process: 2.3 s of CPU). In the session's cache (rule 1 of
    docs/testing.md): the first process compiles and saves the kernel where the cache lacks it, else loads it;
    the second must load it. Before session 35 in a cache of its own, which compiled it again (30 s of a test
    process on a cold CI run)."""
    script = ("import numpy as np\n"
              "from fusionbench.methods import _window_attention as wa\n"
              "q = np.zeros((180, 64), np.float32)\n"
              "wa.attend(q, 0, q, 60, q, 120, np.zeros((6, 64, 64), np.float32), 0.3, np.empty((60, 64), np.float32))\n"
              "print(sum(wa.attend_kernel.stats.cache_hits.values()), sum(wa.attend_kernel.stats.cache_misses.values()))\n")
    first, second = [subprocess.run([sys.executable, "-c", script], check=True, timeout=300, capture_output=True,
                                    text=True).stdout.split() for _ in range(2)]
    assert first in (["0", "1"], ["1", "0"]) and second == ["1", "0"]


def test_biases_added_in_the_kernel_equal_biases_added_before():
    """The projections' biases, added by the kernel as it reads each row, give the bits of adding them to the
    products first (the same float32 additions)."""
    rng = np.random.default_rng(8)
    qkv = rng.standard_normal((3 * HEADS * D, 2 * N)).astype(np.float32)
    bias = rng.standard_normal(3 * HEADS * D).astype(np.float32)
    mask = _masks(True, 3).numpy()
    args = (0, HEADS * D, 2 * HEADS * D)
    before = np.ascontiguousarray(qkv + bias[:, None])
    ref = wa.attend(before, args[0], before, args[1], before, args[2], mask, 0.3, np.empty((HEADS * D, 2 * N), np.float32))
    got = wa.attend(qkv, args[0], qkv, args[1], qkv, args[2], mask, 0.3, np.empty((HEADS * D, 2 * N), np.float32),
                    bias, bias, bias)
    assert np.array_equal(got, ref)


def test_fused_chunks_check_their_token_maps_once():
    """The fused chunks call the compiled passes without their wrappers' checks, so the token maps are checked
    once per block call: C-contiguous float32 rows of 60 channels, else one clear error."""
    ok = np.zeros((8, 60), np.float32)
    fused._FusedOps(ok, ok)
    for bad in (np.zeros((8, 120), np.float32)[:, ::2], ok.astype(np.float64), np.zeros((8, 59), np.float32)):
        with pytest.raises(ValueError, match="token maps"):
            fused._FusedOps(ok, bad)
