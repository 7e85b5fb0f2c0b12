"""Several seeds trained together (fusionbench.train.seeds): the same runs as one at a time, exact resume, limits."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from fusionbench.train import TrainConfig
from fusionbench.train.loop import train
from fusionbench.train.patches import PatchSet
from fusionbench.train.seeds import train_seeds

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SEEDS = (0, 1, 2)
CFG = TrainConfig(epochs=2, batch_size=4, lr=1e-2, patch_size=16, stride=8, progress=False, log_every=3)


from .test_loop import _build  # noqa: E402  (the loop tests' tiny network)


def _images():
    return np.random.default_rng(7).random((3, 2, 32, 32), dtype=np.float32)


def _loss(model, batch):
    out = model(batch)
    loss = torch.nn.functional.mse_loss(out, batch[:, :1])
    return loss, {"total": loss.detach(), "mean_out": out.detach().mean()}


def _configs(cfg=CFG):
    return [dataclasses.replace(cfg, seed=s) for s in SEEDS]


def _single_runs(tmp_path, cfg=CFG):
    out = {}
    for c in _configs(cfg):
        d = tmp_path / f"single{c.seed}"
        train(_build, _loss, PatchSet(_images(), c.patch_size, c.stride, c.max_patches, c.seed), c, d)
        out[c.seed] = d
    return out


def _close(s1, s2, tol=2e-5):
    return s1.keys() == s2.keys() and all(torch.allclose(s1[k], s2[k], atol=tol, rtol=tol) for k in s1)


def _losses(d):
    import csv

    with open(d / "log.csv") as f:
        return [(int(r["step"]), *(float(v) for k, v in r.items() if k.startswith("loss_")))
                for r in csv.DictReader(f)]


@pytest.mark.parametrize("max_patches", [None, 10])
def test_seeds_together_train_the_single_runs(tmp_path, max_patches):
    cfg = dataclasses.replace(CFG, max_patches=max_patches)
    singles = _single_runs(tmp_path, cfg)
    dirs = [tmp_path / f"together{s}" for s in SEEDS]
    results = train_seeds(_build, _loss, _images(), _configs(cfg), dirs)
    assert all(r.finished for r in results) and {r.perf["seeds_together"] == list(SEEDS) for r in results} == {True}
    states = []
    for s, d in zip(SEEDS, dirs):
        mine, ref = torch.load(d / "final.pth", weights_only=True), torch.load(singles[s] / "final.pth", weights_only=True)
        assert _close(mine, ref), f"seed {s}: weights differ from its single run"
        got, want = _losses(d), _losses(singles[s])
        assert [r[0] for r in got] == [r[0] for r in want]
        assert np.allclose([r[1:] for r in got], [r[1:] for r in want], rtol=1e-5, atol=1e-6)
        for name in ("checkpoint.pt", "log.csv", "loss.png", "config.json"):
            assert (d / name).exists()
        assert json.loads((d / "config.json").read_text())["meta"]["seeds_together"] == list(SEEDS)
        states.append(mine)
    # the seeds really are different runs
    assert not _close(states[0], states[1], tol=1e-3)


def test_checkpoint_layout_is_a_single_runs(tmp_path):
    dirs = [tmp_path / f"t{s}" for s in SEEDS]
    train_seeds(_build, _loss, _images(), _configs(dataclasses.replace(CFG, stop_after_steps=5)), dirs)
    single = tmp_path / "single1"
    c1 = dataclasses.replace(CFG, seed=1, stop_after_steps=5)
    train(_build, _loss, PatchSet(_images(), 16, 8), c1, single)
    mine = torch.load(dirs[1] / "checkpoint.pt", weights_only=False)
    ref = torch.load(single / "checkpoint.pt", weights_only=False)
    assert mine.keys() == ref.keys() and mine["step"] == ref["step"] == 5
    assert mine["optimiser"]["param_groups"] == ref["optimiser"]["param_groups"]
    assert mine["optimiser"]["state"].keys() == ref["optimiser"]["state"].keys()
    for i, entry in ref["optimiser"]["state"].items():
        assert mine["optimiser"]["state"][i].keys() == entry.keys()
        for key, value in entry.items():
            assert mine["optimiser"]["state"][i][key].shape == value.shape
            assert torch.allclose(mine["optimiser"]["state"][i][key], value, rtol=1e-4, atol=1e-7)
    assert torch.equal(mine["torch_rng"], ref["torch_rng"])
    assert _close(mine["model"], ref["model"])


def test_resume_together_is_exact(tmp_path):
    whole = [tmp_path / f"whole{s}" for s in SEEDS]
    train_seeds(_build, _loss, _images(), _configs(), whole)
    parts = [tmp_path / f"parts{s}" for s in SEEDS]
    train_seeds(_build, _loss, _images(), _configs(dataclasses.replace(CFG, stop_after_steps=4)), parts)
    train_seeds(_build, _loss, _images(), _configs(dataclasses.replace(CFG, stop_after_steps=7)), parts, resume=True)
    results = train_seeds(_build, _loss, _images(), _configs(), parts, resume=True)
    assert all(r.finished for r in results)
    for w, p in zip(whole, parts):
        a, b = torch.load(w / "final.pth", weights_only=True), torch.load(p / "final.pth", weights_only=True)
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert _losses(w) == _losses(p)


def test_a_seed_continues_singly_from_a_run_together(tmp_path):
    parts = [tmp_path / f"parts{s}" for s in SEEDS]
    train_seeds(_build, _loss, _images(), _configs(dataclasses.replace(CFG, stop_after_steps=5)), parts)
    c2 = dataclasses.replace(CFG, seed=2)
    result = train(_build, _loss, PatchSet(_images(), 16, 8), c2, parts[2], resume=True)
    assert result.finished and result.call_steps == result.total_steps - 5
    single = _single_runs(tmp_path)[2]
    assert _close(torch.load(parts[2] / "final.pth", weights_only=True),
                  torch.load(single / "final.pth", weights_only=True))


def test_limits_are_clear_errors(tmp_path):
    dirs = [tmp_path / f"d{s}" for s in SEEDS]
    with pytest.raises(ValueError, match="only in their seed"):
        train_seeds(_build, _loss, _images(), [CFG, dataclasses.replace(CFG, seed=1, lr=1e-3)], dirs[:2])
    with pytest.raises(ValueError, match="must differ"):
        train_seeds(_build, _loss, _images(), [CFG, CFG], dirs[:2])
    with pytest.raises(ValueError, match="channels-last"):
        train_seeds(_build, _loss, _images(), _configs(dataclasses.replace(CFG, channels_last=True)), dirs)

    def noisy(model, batch):
        loss, terms = _loss(model, batch + 0.01 * torch.randn(()))
        return loss, terms

    with pytest.raises(ValueError, match="random numbers"):
        train_seeds(_build, noisy, _images(), _configs(), dirs)
    # resuming seeds that stand at different steps
    for c, d, stop in zip(_configs(), dirs, (3, 3, 5)):
        train(_build, _loss, PatchSet(_images(), 16, 8), dataclasses.replace(c, stop_after_steps=stop), d)
    with pytest.raises(ValueError, match="different steps|steps \\[3, 3, 5\\]"):
        train_seeds(_build, _loss, _images(), _configs(), dirs, resume=True)


def test_mopa_seeds_together_match_single_runs(tmp_path):
    """The paper network and its loss (vmap over grouped convolutions, the Otsu-mask inputs, Eq. 8-13)."""
    from fusionbench.methods import mopa

    params = {**mopa.DEFAULT_PARAMS, "width": 2}
    images = np.random.default_rng(3).random((2, 4, 24, 24), dtype=np.float32)
    images[:, 2:] = images[:, 2:] > 0.5
    cfg = TrainConfig(epochs=1, batch_size=3, lr=1e-3, patch_size=12, stride=6, progress=False, log_every=2)
    configs = [dataclasses.replace(cfg, seed=s) for s in (0, 1)]
    dirs = [tmp_path / f"t{s}" for s in (0, 1)]
    train_seeds(lambda: mopa.build_model(params), mopa.make_loss(params), images, configs, dirs)
    for c, d in zip(configs, dirs):
        ref = tmp_path / f"s{c.seed}"
        train(lambda: mopa.build_model(params), mopa.make_loss(params), PatchSet(images, 12, 6), c, ref)
        assert _close(torch.load(d / "final.pth", weights_only=True), torch.load(ref / "final.pth", weights_only=True),
                      tol=1e-4)
        assert np.allclose([r[1] for r in _losses(d)], [r[1] for r in _losses(ref)], rtol=1e-4)


def test_seeds_flag_parses_and_refuses_bad_lists():
    from fusionbench.train.cli import parse_seeds

    assert parse_seeds(None) is None and parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds("3") == [3]
    for bad in ("0,0", "a,b", "-1,2", ""):
        with pytest.raises(SystemExit, match="--seeds"):
            parse_seeds(bad)
