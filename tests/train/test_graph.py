"""--cuda-graph on the CPU: the step's control flow with a stand-in for torch.cuda's streams and graphs.

A real capture needs CUDA (the device probe runs it: fusionbench.train.probe).  Here the stand-in's
capture records the step and runs nothing (model and Adam state are put back), and its replay runs the
recorded step on the static batch, writing the gradients anew as a replayed graph does.  What is pinned:
warm-up count, capture step, static-batch copies, cloned loss terms, eager short batches, the fall-backs
(one line each) and that the whole sequence trains exactly like the eager loop.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch

from fusionbench.train import TrainConfig, graph as graph_mod, loop
from fusionbench.train.loop import train
from fusionbench.train.patches import PatchSet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class FakeBackend:
    """CudaBackend stand-in (see the module docstring)."""

    def __init__(self, optimiser, fail: Exception | None = None):
        self.optimiser, self.fail, self.captures, self.replays = optimiser, fail, 0, 0

    def on_side_stream(self, fn):
        return fn()

    def _tensors(self):
        params = [p for g in self.optimiser.param_groups for p in g["params"]]
        return params + [v for st in self.optimiser.state.values() for v in st.values() if isinstance(v, torch.Tensor)]

    def capture(self, fn):
        if self.fail is not None:
            raise self.fail
        saved = [t.detach().clone() for t in self._tensors()]
        out = fn()  # only to get the static outputs: its effect on weights and Adam state is undone below
        with torch.no_grad():
            for t, v in zip(self._tensors(), saved):
                t.copy_(v)
        self.captures += 1
        static = {k: (v.detach().clone() if isinstance(v, torch.Tensor) else v) for k, v in out.items()}
        return (fn, static), static

    def replay(self, graph):
        fn, static = graph
        self.optimiser.zero_grad(set_to_none=False)  # a replayed backward writes its gradients anew
        for k, v in fn().items():
            static[k].copy_(v)
        self.replays += 1


from .test_loop import _build, _images  # noqa: E402  (the loop tests' tiny network and images)
from .test_loop import _tensor_loss as _loss  # noqa: E402  (terms as 0-d tensors, as a graph needs)


def _noisy_loss(model, batch):  # draws from torch's CPU generator, as SwinFusion's flips do
    noise = torch.rand(batch.shape[0], 1, 1, 1)
    loss = torch.nn.functional.mse_loss(model(batch) * (1 + 0.01 * noise), batch[:, :1])
    return loss, {"total": loss.detach()}


def _float_loss(model, batch):
    loss, terms = _loss(model, batch)
    return loss, {k: v.item() for k, v in terms.items()}


CFG = TrainConfig(epochs=2, batch_size=4, lr=1e-2, patch_size=16, stride=8, progress=False, log_every=3)
GRAPH = dataclasses.replace(CFG, cuda_graph=True)


@pytest.fixture
def fake_cuda(monkeypatch):
    """The loop builds its CudaGraphStep on the CPU, with the stand-in backend; returns the steps built."""
    built = []
    real = graph_mod.CudaGraphStep

    def factory(body, optimiser, batch_size, fail=None):
        step = real(body, optimiser, batch_size, backend=FakeBackend(optimiser, fail))
        built.append(step)
        return step

    _pretend_cuda(monkeypatch)
    monkeypatch.setattr(graph_mod, "CudaGraphStep", factory)
    return built


def _pretend_cuda(monkeypatch):
    """The loop takes the graph path on the CPU (with a plain Adam: a capturable one cannot step on the CPU)."""
    plain = loop.make_optimiser
    monkeypatch.setattr(loop, "graph_usable", lambda config, device: (config.cuda_graph, "pending" if config.cuda_graph
                                                                       else "off"))
    monkeypatch.setattr(loop, "make_optimiser", lambda model, lr, capturable=False: plain(model, lr))


def _same_run(a, b):
    sa, sb = torch.load(a / "checkpoint.pt", weights_only=False), torch.load(b / "checkpoint.pt", weights_only=False)
    assert sa["step"] == sb["step"]
    for k in sa["model"]:
        assert torch.equal(sa["model"][k], sb["model"][k]), k
    for p in sa["optimiser"]["state"]:
        for k, v in sa["optimiser"]["state"][p].items():
            assert torch.equal(v, sb["optimiser"]["state"][p][k]), (p, k)
    assert [r["loss_total"] for r in sa["rows"]] == [r["loss_total"] for r in sb["rows"]]


def test_graph_steps_train_exactly_like_the_eager_loop(tmp_path, fake_cuda):
    ps = PatchSet(_images(), 16, 8)  # 27 patches: 7 steps per epoch, the 7th of 3 patches (eager)
    eager = train(_build, _loss, ps, CFG, tmp_path / "eager")
    graphed = train(_build, _loss, ps, GRAPH, tmp_path / "graph")
    assert eager.perf["cuda_graph_status"] == "off" and eager.perf["cuda_graph_steps"] == 0
    (step,) = fake_cuda
    # steps 1-3 warm up, step 4 is captured and replayed, 5-6 replay, 7 is short (eager), 8-13 replay, 14 short
    assert graphed.perf["cuda_graph_status"] == "captured at step 4" and graphed.perf["cuda_graph"] is True
    assert step.backend.captures == 1 and step.replays == graphed.perf["cuda_graph_steps"] == 9
    _same_run(tmp_path / "eager", tmp_path / "graph")
    assert eager.final_terms == graphed.final_terms and set(graphed.final_terms) == {"total", "half"}


def test_graph_run_resumes_with_and_without_the_graph(tmp_path, fake_cuda):
    ps = PatchSet(_images(), 16, 8)
    train(_build, _loss, ps, CFG, tmp_path / "full")
    train(_build, _loss, ps, dataclasses.replace(GRAPH, stop_after_steps=5), tmp_path / "a")
    train(_build, _loss, ps, CFG, tmp_path / "a", resume=True)                   # graph -> eager
    train(_build, _loss, ps, dataclasses.replace(CFG, stop_after_steps=9), tmp_path / "b")
    rest = train(_build, _loss, ps, GRAPH, tmp_path / "b", resume=True)         # eager -> graph
    assert rest.perf["cuda_graph_status"] == "captured at step 13"  # 10-12 warm up; 13 full, 14 short
    _same_run(tmp_path / "full", tmp_path / "a")
    _same_run(tmp_path / "full", tmp_path / "b")


@pytest.mark.parametrize("loss, why", [(_noisy_loss, "off from step 1: the loss draws from torch's CPU generator"),
                                       (_float_loss, "off from step 4: capture failed (RuntimeError: loss terms "
                                                     "['half', 'total'] are not tensors)")])
def test_graph_falls_back_to_eager_with_one_line(tmp_path, fake_cuda, capsys, loss, why):
    ps = PatchSet(_images(), 16, 8)
    eager = train(_build, loss, ps, CFG, tmp_path / "eager")
    graphed = train(_build, loss, ps, GRAPH, tmp_path / "graph")
    assert graphed.perf["cuda_graph_status"].startswith(why) and graphed.perf["cuda_graph_steps"] == 0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "--cuda-graph" in ln]
    assert len(lines) == 1 and lines[0].startswith("train: --cuda-graph off from step")
    assert "training eagerly" in lines[0]
    _same_run(tmp_path / "eager", tmp_path / "graph")  # nothing lost or repeated; the CPU generator restored
    assert eager.final_terms == graphed.final_terms


def test_a_failing_capture_loses_no_step(tmp_path, monkeypatch, capsys):
    real = graph_mod.CudaGraphStep
    _pretend_cuda(monkeypatch)
    monkeypatch.setattr(graph_mod, "CudaGraphStep", lambda body, opt, bs: real(
        body, opt, bs, backend=FakeBackend(opt, fail=RuntimeError("operation not permitted when stream is capturing"))))
    ps = PatchSet(_images(), 16, 8)
    eager = train(_build, _loss, ps, CFG, tmp_path / "eager")
    graphed = train(_build, _loss, ps, GRAPH, tmp_path / "graph")
    assert graphed.perf["cuda_graph_status"] == ("off from step 4: capture failed (RuntimeError: operation not "
                                                 "permitted when stream is capturing)")
    assert capsys.readouterr().err.count("--cuda-graph off") == 1
    _same_run(tmp_path / "eager", tmp_path / "graph")


def test_cuda_graph_on_the_cpu_is_a_logged_no_op(tmp_path, capsys):
    ps = PatchSet(_images(), 16, 8)
    eager = train(_build, _loss, ps, CFG, tmp_path / "eager")
    graphed = train(_build, _loss, ps, GRAPH, tmp_path / "graph")
    assert graphed.perf["cuda_graph_status"].startswith("not used: CUDA graphs need a CUDA device")
    err = [ln for ln in capsys.readouterr().err.splitlines() if "cuda-graph" in ln]
    assert err == ["train: --cuda-graph not used: CUDA graphs need a CUDA device (training eagerly on cpu)"]
    _same_run(tmp_path / "eager", tmp_path / "graph")


def test_graph_step_copies_each_batch_into_the_static_input():
    """Replays see the new batch (not the captured one) and hand out terms that later replays do not change."""
    torch.manual_seed(0)
    model = _build()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    seen = []

    def body(batch):
        seen.append(batch)
        loss, terms = _loss(model, batch)
        loss.backward()
        opt.step()
        return terms

    step = graph_mod.CudaGraphStep(body, opt, 2, warmup=1, backend=FakeBackend(opt))
    batches = [torch.full((2, 2, 4, 4), float(v)) for v in range(5)]
    terms = [step(b, i + 1) for i, b in enumerate(batches)]
    assert step.status == "captured at step 2" and step.replays == 4
    assert all(t is step.static_batch for t in seen[1:])  # captured and replayed on the static input
    assert torch.equal(step.static_batch, batches[-1])
    assert len({float(t["total"]) for t in terms}) == 5  # each step's own loss, cloned out
    assert all(t["total"] is not step.static_terms["total"] for t in terms)


def test_mopa_loss_copies_no_constant_to_the_device_per_step():
    """A captured graph cannot copy from the host: mopa's Sobel/Laplacian kernels are made once per device."""
    from fusionbench.methods.mopa import losses

    x = torch.zeros(2, 1, 8, 8, device="meta")
    losses.gradient_strength(x, "sobel"), losses.gradient_strength(x, "laplacian")
    before = dict(losses._ON_DEVICE)
    losses.gradient_loss(x, x, x, "max", "sobel"), losses.gradient_loss(x, x, x, "max", "laplacian")
    assert len(before) == 3 and losses._ON_DEVICE == before
    assert all(v.device.type == "meta" for v in before.values())


def test_seeds_together_replay_their_steps_like_eager(tmp_path, monkeypatch):
    """train --seeds with --cuda-graph: K×B batches (batch along dim 1), short batches eager, same run as eager."""
    from fusionbench.train import seeds as seeds_mod

    built = []
    real = graph_mod.CudaGraphStep

    def factory(body, optimiser, batch_size, batch_dim=0):
        step = real(body, optimiser, batch_size, backend=FakeBackend(optimiser), batch_dim=batch_dim)
        built.append(step)
        return step

    monkeypatch.setattr(graph_mod, "CudaGraphStep", factory)
    monkeypatch.setattr(seeds_mod, "graph_usable", lambda config, device: (config.cuda_graph, "pending"
                                                                           if config.cuda_graph else "off"))
    plain = seeds_mod.make_stacked_optimiser
    monkeypatch.setattr(seeds_mod, "make_stacked_optimiser", lambda params, lr, capturable=False: plain(params, lr))
    configs = [dataclasses.replace(CFG, seed=s) for s in (0, 1)]
    eager = seeds_mod.train_seeds(_build, _loss, _images(), configs, [tmp_path / "e0", tmp_path / "e1"])
    graphed = seeds_mod.train_seeds(_build, _loss, _images(), [dataclasses.replace(c, cuda_graph=True) for c in configs],
                                    [tmp_path / "g0", tmp_path / "g1"])
    (step,) = built
    assert step.batch_dim == 1 and step.batch_size == CFG.batch_size
    assert graphed[0].perf["cuda_graph_status"] == "captured at step 4" and graphed[0].perf["cuda_graph_steps"] == 9
    assert eager[0].perf["cuda_graph_steps"] == 0
    for e, g in (("e0", "g0"), ("e1", "g1")):
        _same_run(tmp_path / e, tmp_path / g)
