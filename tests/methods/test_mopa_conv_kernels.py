"""``mopa``'s compiled direct convolutions on planar maps (issue 23, session 10): against torch, same bits
on every instruction set, and the inference path's output against the oneDNN layers it replaces."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fusionbench.methods.mopa import _conv_kernels as K
from fusionbench.methods.mopa import _planar
from fusionbench.methods.mopa.inference import InferencePath
from fusionbench.methods.mopa.network import MopaNet

from ._isa import HOST, STAND_INS, assert_same_bits_on_every_cpu, needs_avx512

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: odd sizes: a single pixel row, widths below one vector, between vectors, above one 64-column block
SIZES = ((1, 1), (3, 5), (7, 17), (9, 50), (37, 70), (20, 131), (4, 191))


def _planar_input(x: torch.Tensor, p: int) -> torch.Tensor:
    """The zero-padded planar buffer a kernel reads (C × (H + 2p) × (Wv + 2p), Wv the next multiple of 16)."""
    c, h, w = x.shape
    buf = torch.zeros(c, h + 2 * p, -(-w // K.LANES) * K.LANES + 2 * p)
    buf[:, p:p + h, p:p + w] = x
    return buf


@pytest.mark.parametrize("shape", sorted(K.KERNELS))
@pytest.mark.parametrize("size", SIZES)
def test_direct_convolution_equals_torch(shape, size):
    """Every compiled layer = ``leaky_relu(conv2d(x, w, b, padding=k//2))`` to float32 round-off (against the
    float64 result: within 1e-6 of the sum of the terms' magnitudes, and within 4× torch's own float32 error),
    with a slope and without (slope 1); the output's padding and the lanes past the width stay exactly 0."""
    cin, cout, k = shape
    h, w = size
    g = torch.Generator().manual_seed(cin * 100 + cout * 10 + k)
    x = torch.rand(cin, h, w, generator=g) * 2 - 0.5
    weight = torch.rand(cout, cin, k, k, generator=g) - 0.5
    bias = torch.rand(cout, generator=g) - 0.5
    inp = _planar_input(x, k // 2)
    for slope in (0.2, 1.0):
        out = torch.full((cout, h + 4, inp.shape[2] + 2), 7.0)
        out[:, 1:h + 1] = 0.0  # the rows the kernel may write (7 elsewhere)
        K.KERNELS[shape](inp.numpy(), weight.reshape(-1).numpy(), bias.numpy(), np.float32(slope), out.numpy(),
                         h, w, 1, 1)
        exact = F.leaky_relu(F.conv2d(x[None].double(), weight.double(), bias.double(), padding=k // 2), slope)[0]
        size_of_terms = F.conv2d(x[None].double().abs(), weight.double().abs(), bias.double().abs(), padding=k // 2)[0]
        torch_error = (F.leaky_relu(F.conv2d(x[None], weight, bias, padding=k // 2), slope)[0] - exact).abs()
        error = (out[:, 1:h + 1, 1:w + 1].double() - exact).abs()
        assert (error <= 1e-6 * size_of_terms).all()  # float32 round-off of the sum of |terms|
        assert error.max() <= 4 * torch_error.max() + 1e-7  # and about torch's own float32 error
        rest = out.clone()
        rest[:, 1:h + 1, 1:w + 1] = 0.0
        assert torch.equal(rest[:, 1:h + 1], torch.zeros_like(rest[:, 1:h + 1]))  # tail lanes and border: 0
        assert torch.equal(out[:, 0], torch.full_like(out[:, 0], 7.0))  # rows outside untouched
        assert torch.equal(out[:, h + 1:], torch.full_like(out[:, h + 1:], 7.0))


@pytest.mark.parametrize("shape", sorted(K.RESIDUAL_KERNELS))
@pytest.mark.parametrize("size", SIZES)
def test_residual_convolution_equals_torch(shape, size):
    """The compiled conv with a residual map = ``conv2d(x, w, b, padding=k//2) + res`` to float32 round-off,
    also in place (``res`` is ``out``); the tail lanes set to 0."""
    cin, cout, k = shape
    h, w = size
    g = torch.Generator().manual_seed(cin + h * w)
    x = torch.rand(cin, h, w, generator=g) * 2 - 0.5
    weight = torch.rand(cout, cin, k, k, generator=g) - 0.5
    bias = torch.rand(cout, generator=g) - 0.5
    res = _planar_input(torch.rand(cout, h, w, generator=g) - 0.5, 1)
    exact = F.conv2d(x[None].double(), weight.double(), bias.double(), padding=k // 2)[0] + res[:, 1:h + 1, 1:w + 1]
    size_of_terms = F.conv2d(x[None].double().abs(), weight.double().abs(), bias.double().abs(), padding=k // 2)[0]
    for in_place in (False, True):
        out = res.clone() if in_place else torch.zeros_like(res)
        K.RESIDUAL_KERNELS[shape](_planar_input(x, k // 2).numpy(), weight.reshape(-1).numpy(), bias.numpy(),
                                  np.float32(1.0), out.numpy(), (out if in_place else res).numpy(), h, w, 1, 1)
        error = (out[:, 1:h + 1, 1:w + 1].double() - exact).abs()
        assert (error <= 1e-6 * (size_of_terms + 1)).all()
        assert not out[:, 1:h + 1, w + 1:].any() and not out[:, 0].any() and not out[:, h + 1].any()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("skip", (False, True))
def test_dscb_block_equals_torch(size, skip):
    """One compiled DSCB pass = ``leaky_relu(pointwise(depthwise(x)))`` (``+ skip``) to float32 round-off (within
    1e-6 of the sum of the terms' magnitudes, against float64); the tail lanes and the padding stay 0."""
    from fusionbench.methods.mopa import _detail_kernels as D
    from fusionbench.methods.mopa.layers import DSCB

    h, w = size
    c = D.CHANNELS
    torch.manual_seed(h * w)
    block = DSCB(c, 0.2).double()
    x = torch.rand(c, h, w, dtype=torch.float64) * 2 - 0.5
    extra = torch.rand(c, h, w, dtype=torch.float64) - 0.5
    dw, pw, _ = block
    args = [t.detach().float().reshape(-1).numpy() for t in (dw.weight, dw.bias, pw.weight, pw.bias)]
    out = torch.zeros(c, h + 2, -(-w // K.LANES) * K.LANES + 2)
    inp = _planar_input(x.float(), 1)
    if skip:
        D.dscb_skip(inp.numpy(), *args, np.float32(0.2), out.numpy(), _planar_input(extra.float(), 1).numpy(), h, w, 1, 1)
    else:
        D.dscb(inp.numpy(), *args, np.float32(0.2), out.numpy(), h, w, 1, 1)
    with torch.no_grad():
        exact = block(x.float().double()[None])[0] + (extra.float().double() if skip else 0)
        depth = F.conv2d(x.float().double()[None].abs(), dw.weight.abs(), dw.bias.abs(), padding=1, groups=c)
        size_of_terms = F.conv2d(depth, pw.weight.abs(), pw.bias.abs())[0] + 1
    error = (out[:, 1:h + 1, 1:w + 1].double() - exact).abs()
    assert (error <= 1e-6 * size_of_terms).all()
    assert not out[:, 1:h + 1, w + 1:].any() and not out[:, 0].any() and not out[:, h + 1].any()


def test_planar_detail_module_equals_onednn():
    """The detail module planar with compiled layers (:func:`_planar.detail`) = the oneDNN layers, with and
    without the contrast weights, odd sizes (float32 round-off); its buffers' padding stays 0."""
    torch.manual_seed(3)
    net = MopaNet().eval()
    path = InferencePath(net)
    assert _planar.detail_supported(net.detail)
    for h, w in ((5, 7), (33, 70), (16, 129)):
        x = (torch.rand(1, 15, h, w) * 2 - 0.5).contiguous(memory_format=torch.channels_last)
        scale = torch.rand(1, 15, 1, 1)
        with torch.inference_mode():
            for s in (None, scale):
                ref = path.seq(net.detail.head, x if s is None else x * s)
                outs = torch.cat([path.seq(p, ref).add_(ref) for p in net.detail.paths], dim=1)
                ref = path.conv(net.detail.fuse, outs, add=x if s is None else x * s)
                got = _planar.detail(net.detail, x, s)
                assert got.is_contiguous(memory_format=torch.channels_last)
                assert (got - ref).abs().max() <= 2e-6
                whole = _planar.detail_planar(net.detail, x, s)
                at, n = h // 3, h - h // 3 - 1  # some rows, written straight into another buffer
                dest = _planar.bordered(15, h + 4, w)
                dest[:, 1:h + 5, 1:w + 1] = 9.0
                _planar.detail_planar(net.detail, x, s, into=(dest, 3, at, n))
                assert torch.equal(dest[:, 3:3 + n, :], whole[:, 1 + at:1 + at + n, :])  # same bits, lanes 0
                assert (dest[:, 1:3, 1:w + 1] == 9).all() and (dest[:, 3 + n:h + 5, 1:w + 1] == 9).all()


def test_scaled_planar_copy_is_torch_product():
    x = (torch.rand(1, 15, 13, 37) - 0.5).contiguous(memory_format=torch.channels_last)
    scale = torch.rand(15)
    buf = torch.zeros(15, 15, 50)
    K.to_planar_scaled(x.permute(0, 2, 3, 1)[0].numpy(), scale.numpy(), buf.numpy(), 1, 2)
    assert torch.equal(buf[:, 1:14, 2:39], (x * scale[None, :, None, None])[0])
    buf[:, 1:14, 2:39] = 0
    assert not buf.any()


def test_layout_copies_are_exact():
    x = torch.rand(1, 15, 13, 37).contiguous(memory_format=torch.channels_last)
    buf = torch.zeros(15, 15, 50)
    K.to_planar(x.permute(0, 2, 3, 1)[0].numpy(), buf.numpy(), 1, 2)
    assert torch.equal(buf[:, 1:14, 2:39], x[0])
    rest = buf.clone()
    rest[:, 1:14, 2:39] = 0
    assert not rest.any()
    out = torch.zeros(1, 45, 13, 37).contiguous(memory_format=torch.channels_last)
    K.to_channels_last(buf.numpy(), 1, 2, out.permute(0, 2, 3, 1)[0].numpy(), 15)
    assert torch.equal(out[0, 15:30], x[0]) and out[0, :15].abs().sum() == 0 and out[0, 30:].abs().sum() == 0


def _forward(net: MopaNet, x: torch.Tensor, planar: bool, monkeypatch) -> torch.Tensor:
    with monkeypatch.context() as m:
        if not planar:
            for name in ("path_layers", "multiscale_layers", "head_layers", "single_conv"):
                m.setattr(_planar, name, lambda *a: None)
            m.setattr(_planar, "detail_supported", lambda *a: False)
        with torch.inference_mode():
            return InferencePath(net)(x)[0]


@pytest.mark.parametrize("config", ({}, {"use_mask": False}, {"mask_mode": "multiply", "attention": "parallel"},
                                    {"use_attention": False, "use_contrast": False}, {"width": 4}))
def test_inference_path_with_planar_layers_equals_the_onednn_layers(config, monkeypatch):
    """Whole forward (odd size, whole image and, with a forced 9-row band, banded) with the compiled planar
    layers = with the oneDNN layers they replace, to float32 round-off; shapes without a kernel fall back."""
    torch.manual_seed(0)
    net = MopaNet(**config).eval()
    x = torch.rand(1, 4, 45, 71)
    x[:, 2:] = (x[:, 2:] > 0.5).float()
    ref = _forward(net, x, False, monkeypatch)
    assert (_forward(net, x, True, monkeypatch) - ref).abs().max() <= 1e-6
    with monkeypatch.context() as m:
        m.setattr(InferencePath, "band_rows", lambda self, x: 9)
        assert (_forward(net, x, True, monkeypatch) - ref).abs().max() <= 1e-6


def test_the_inference_path_holds_no_feature_maps_between_calls():
    """The planar copy of the features that the multiscale convs reuse is dropped when the forward returns, and
    a second call on the same path gives the same bits."""
    torch.manual_seed(0)
    net = MopaNet().eval()
    x = torch.rand(1, 4, 33, 40)
    path = InferencePath(net)
    with torch.inference_mode():
        first = path(x)[0]
        assert path._planar_features is None
        assert torch.equal(path(x)[0], first)


_ISA_SCRIPT = """
import sys
import numpy as np
from fusionbench.methods.mopa import _conv_kernels as K
from fusionbench.methods.mopa import _detail_kernels as D
rng = np.random.default_rng(0)
h, w = 19, 83
res = []
def planar(cin, p):
    inp = np.zeros((cin, h + 2 * p, 96 + 2 * p), np.float32)
    inp[:, p:p + h, p:p + w] = rng.random((cin, h, w)) * 2 - 0.5
    return inp
for (cin, cout, k), fn in sorted(K.KERNELS.items()) + sorted(K.RESIDUAL_KERNELS.items()):
    inp = planar(cin, k // 2)
    out = np.zeros((cout, h + 2, 98), np.float32)
    extra = (planar(cout, 1),) if fn in K.RESIDUAL_KERNELS.values() else ()
    fn(inp, (rng.random(cout * cin * k * k) - 0.5).astype(np.float32), rng.random(cout).astype(np.float32),
       np.float32(0.2), out, *extra, h, w, 1, 1)
    res.append(out.ravel())
c = D.CHANNELS
weights = [(rng.random(n) - 0.5).astype(np.float32) for n in (c * 9, c, c * c, c)]
for fn, extra in ((D.dscb, ()), (D.dscb_skip, (planar(c, 1),))):
    out = np.zeros((c, h + 2, 98), np.float32)
    fn(planar(c, 1), *weights, np.float32(0.2), out, *extra, h, w, 1, 1)
    res.append(out.ravel())
np.save(sys.argv[1], np.concatenate(res))
"""


@needs_avx512
@pytest.mark.parametrize("stand_in", STAND_INS)
def test_direct_convolutions_do_not_depend_on_the_instruction_set(stand_in: str, tmp_path):
    """Every compiled layer (full blocks and tails; the residual conv and the DSCB blocks too) gives the same
    bits compiled for SSE2 (no FMA), AVX2 and AVX-512."""
    assert_same_bits_on_every_cpu(_ISA_SCRIPT, tmp_path, cpus=(stand_in, HOST))


def _compiled_with_block(make, vectors: int, monkeypatch, module):
    """A freshly compiled (uncached) caller of the intrinsic ``make()`` builds, its blocks of columns forced to
    ``vectors`` 16-lane vectors on this host."""
    from numba import njit

    asked = []

    def block(context, live, most):
        asked.append((live, most))
        return vectors

    monkeypatch.setattr(module, "_block_vectors", block)
    kernel = make()

    @njit(nogil=True)
    def run(*args):  # pragma: no cover - compiled
        kernel(*args)

    run.asked = asked  # the (live values per vector, most) the kernel asked for, filled at its compile
    return run


@pytest.mark.parametrize("shape, group", [((2, 5, 3), None), ((15, 15, 3), 5), ((5, 1, 3), None)])
def test_the_block_of_columns_changes_no_bit(shape, group, monkeypatch):
    """The kernels size their blocks of columns for the compile target's registers (four 16-lane vectors with
    AVX-512, one on AVX2, where four spilled: ``mopa`` 1.8-2× faster there, session 33): a block decides which
    columns share a loop iteration, never a sum's order, so blocks of 1, 2, 3 and 4 vectors give the same bits
    (widths of 1, 4, 5, 6, 7 and 9 vectors: full blocks and tails of 1, 2 and 3)."""
    cin, cout, k = shape
    rng = np.random.default_rng(cin + cout + k)
    w = rng.standard_normal(cout * cin * k * k).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    maps = [_planar_input(torch.from_numpy(rng.standard_normal((cin, rows, width)).astype(np.float32)), k // 2).numpy()
            for rows, width in ((3, 100), (2, 16), (5, 131), (1, 64), (2, 96), (1, 80))]
    outs = []
    for vectors in (1, 2, 3, 4):
        run = _compiled_with_block(lambda: K._make_conv(cin, cout, k, group), vectors, monkeypatch, K)
        got = []
        for inp in maps:
            rows, width = inp.shape[1] - 2 * (k // 2), inp.shape[2] - 2 * (k // 2)
            out = np.full((cout, rows, width), np.nan, np.float32)
            run(inp, w, b, np.float32(0.2), out, rows, width, 0, 0)
            got.append(out)
        assert run.asked == [((cout if group is None else group) + 1, K.BLOCK)]  # the kernel sized its block
        outs.append(got)
    assert not np.isnan(outs[0][0]).any()
    for other in outs[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(outs[0], other))


@pytest.mark.parametrize("skip", [False, True])
def test_the_dscb_block_of_columns_changes_no_bit(skip, monkeypatch):
    """As for the convolutions: the DSCB pass's blocks of one or two vectors give the same bits."""
    from fusionbench.methods.mopa import _detail_kernels as D

    rng = np.random.default_rng(7)
    inp = _planar_input(torch.from_numpy(rng.standard_normal((15, 6, 131)).astype(np.float32)), 1).numpy()
    weights = [rng.standard_normal(n).astype(np.float32) for n in (135, 15, 225, 15)]
    residual = rng.standard_normal((15, 6, inp.shape[2] - 2)).astype(np.float32)
    outs = []
    for vectors in (1, 2):
        run = _compiled_with_block(lambda: D._make_dscb(15, skip), vectors, monkeypatch, D)
        out = np.full((15, 6, inp.shape[2] - 2), np.nan, np.float32)
        run(inp, *weights, np.float32(0.2), out, *((residual,) if skip else ()), 6, 131, 0, 0)
        assert run.asked == [(16, D.NV)]  # 15 depthwise sums and the input per vector
        outs.append(out)
    assert not np.isnan(outs[0]).any() and np.array_equal(outs[0], outs[1])
