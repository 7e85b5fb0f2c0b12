"""A failed or wrong training run is one clear line, at once: NaN losses, --resume without a checkpoint, corrupt
checkpoints, option values the run cannot use (each test fails without its fix)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fusionbench.train import TrainConfig, cli
from fusionbench.train.checkpoint import CheckpointError, NoCheckpointError, NonFiniteLoss, load_checkpoint
from fusionbench.train.loop import train
from fusionbench.train.patches import PatchSet
from fusionbench.train.progress import fold_terms
from fusionbench.train.seeds import train_seeds

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("one_torch_thread")
# 27 patches, batch 4: 7 steps per epoch (a checkpoint at each epoch end), a log row every 3 steps
CFG = TrainConfig(epochs=2, batch_size=4, lr=1e-2, patch_size=16, stride=8, progress=False, log_every=3)
TINY = ("--max-patches", "8", "--batch-size", "4", "--patch-size", "32", "--stride", "32", "--no-progress")


def _images():
    return np.random.default_rng(0).random((3, 2, 32, 32), dtype=np.float32)


ARMED = [0, 0]  # [the step from which _Net multiplies its output by its `poison` buffer (0: never), step now]
# (the buffer is finite: a non-finite buffer is itself refused at the first checkpoint)


class _Net(torch.nn.Module):
    """A small network whose loss becomes infinite from step ARMED[0] on for seed 1 only: the buffer is made per
    seed (after torch.manual_seed(seed)), as the weights are, and stacked with them when seeds train together."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.LeakyReLU(0.2),
                                       torch.nn.Conv2d(4, 1, 3, padding=1))
        self.register_buffer("poison", torch.tensor(1e30 if torch.initial_seed() == 1 else 1.0))

    def forward(self, x):
        y = self.net(x)
        return y * self.poison if ARMED[0] and ARMED[1] >= ARMED[0] else y


def _poisoned_loss(model, batch):  # terms as tensors: read back at log rows and checkpoints only
    ARMED[1] += 1
    loss = torch.nn.functional.mse_loss(model(batch), batch[:, :1])
    return loss, {"total": loss.detach(), "half": 0.5 * loss.detach()}


def _nan_from(step: int):
    """A loss that is NaN from ``step`` on (every seed); its terms as tensors."""
    calls = [0]

    def loss_fn(model, batch):
        calls[0] += 1
        out = model(batch)
        loss = torch.nn.functional.mse_loss(out, batch[:, :1])
        if calls[0] >= step:
            loss = loss * float("nan")
        return loss, {"total": loss.detach(), "mse": torch.nn.functional.mse_loss(out, batch[:, :1]).detach()}

    return loss_fn


def _run_cli(*argv: str) -> int:
    return cli.main(list(argv))


# --------------------------------------------------------------------------- 2. NaN / inf losses
def test_a_nan_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint(tmp_path):
    ps = PatchSet(_images(), 16, 8)
    run = tmp_path / "run"
    with pytest.raises(NonFiniteLoss) as err:
        train(_Net, _nan_from(9), ps, CFG, run)
    line = str(err.value)
    assert "\n" not in line and "loss not finite at step 9 (total=nan)" in line  # the first bad step, its bad term
    assert "mse=" not in line  # the finite term is not named
    assert f"{run / 'checkpoint.pt'} keeps step 7" in line and "no final.pth" in line
    ck = load_checkpoint(run / "checkpoint.pt")
    assert ck["step"] == 7 and all(torch.isfinite(v).all() for v in ck["model"].values())
    assert not (run / "final.pth").exists()
    # the kept checkpoint is the uninterrupted run's at step 7: resuming with a good loss ends where that run ends
    train(_Net, _nan_from(10 ** 9), ps, CFG, tmp_path / "full")
    train(_Net, _nan_from(10 ** 9), ps, CFG, run, resume=True)
    a, b = torch.load(run / "final.pth", weights_only=True), torch.load(tmp_path / "full" / "final.pth",
                                                                        weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_weights_made_nan_by_a_finite_loss_are_not_checkpointed(tmp_path):
    """Step 8's loss is finite but its gradient is NaN (sqrt at 0 times 0): the checkpoint of step 8 is refused."""
    calls = [0]

    def loss_fn(model, batch):
        calls[0] += 1
        out = model(batch)
        loss = torch.nn.functional.mse_loss(out, batch[:, :1])
        if calls[0] == 8:
            loss = loss + torch.sqrt(0.0 * out.sum())  # value +0, gradient inf * 0 = nan
        return loss, {"total": loss.detach()}

    run = tmp_path / "run"
    with pytest.raises(NonFiniteLoss, match=r"weights or optimiser state not finite after step 8 "
                                            r"\(model\.net\.0\.weight.*checkpoint\.pt keeps step 7"):
        train(_Net, loss_fn, PatchSet(_images(), 16, 8),
              dataclasses.replace(CFG, stop_after_steps=8), run)
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 7 and not (run / "final.pth").exists()


def test_a_nan_in_the_first_steps_leaves_no_checkpoint_and_says_so(tmp_path):
    with pytest.raises(NonFiniteLoss, match="loss not finite at step 1 .*no checkpoint was written"):
        train(_Net, _nan_from(1), PatchSet(_images(), 16, 8), CFG, tmp_path / "r")
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_the_check_reads_the_terms_back_only_where_the_loop_already_does():
    """fold_terms checks the floats it reads back anyway: no extra tensor op, and without first_step no check."""
    pending = [{"total": torch.tensor(1.0)}, {"total": torch.tensor(float("inf"))}, {"total": torch.tensor(2.0)}]
    acc, last = fold_terms(pending, {})  # the old behaviour for callers that do not ask
    assert acc["total"] == float("inf")
    with pytest.raises(NonFiniteLoss, match=r"^loss not finite at step 12 \(total=inf\)$"):
        fold_terms(pending, {}, first_step=11)


def test_seeds_together_name_the_seed_whose_loss_is_nan(tmp_path):
    ARMED[:] = [9, 0]
    try:
        dirs = [tmp_path / "s0", tmp_path / "s1", tmp_path / "s2"]
        configs = [dataclasses.replace(CFG, seed=s) for s in (0, 1, 2)]
        with pytest.raises(NonFiniteLoss) as err:
            train_seeds(_Net, _poisoned_loss, _images(), configs, dirs)
    finally:
        ARMED[:] = [0, 0]
    line = str(err.value)
    assert line.startswith("train seed 1: loss not finite at step 9 (total=inf, half=inf)"), line
    assert "stopped with seeds [0, 2]" in line and f"{dirs[1] / 'checkpoint.pt'} keeps step 7" in line
    for d in dirs:  # every seed stays at the last common checkpoint, none has a final.pth
        ck = load_checkpoint(d / "checkpoint.pt")
        assert ck["step"] == 7 and all(torch.isfinite(v).all() for v in ck["model"].values())
        assert not (d / "final.pth").exists()


def test_cli_nan_run_exits_non_zero_with_one_line_and_exports_nothing(small_pack, tmp_path, capsys):
    out, exp = tmp_path / "run", tmp_path / "exp"
    rc = _run_cli("mopa", "--pack", str(small_pack), *TINY, "--out", str(out), "--lr", "1e6", "--epochs", "3",
                  "--export", str(exp))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and err[-1].startswith("fusionbench train: error: train: loss not finite at step ")
    assert not exp.exists() and not (out / "final.pth").exists() and not (out / "provenance.json").exists()


def test_lr_must_be_finite():
    with pytest.raises(ValueError, match="^lr must be finite"):
        TrainConfig(lr=float("inf"))


# --------------------------------------------------------------------------- 4. --resume without a checkpoint
def test_resume_without_a_checkpoint_is_an_error_naming_the_path(tmp_path, small_pack):
    ps = PatchSet(_images(), 16, 8)
    with pytest.raises(NoCheckpointError, match=f"--resume: no checkpoint at {tmp_path / 'typo' / 'checkpoint.pt'}"):
        train(_Net, _nan_from(10 ** 9), ps, CFG, tmp_path / "typo", resume=True)
    with pytest.raises(NoCheckpointError, match="no checkpoint at .*s0.*and 1 more"):
        train_seeds(_Net, _poisoned_loss, _images(), [CFG, dataclasses.replace(CFG, seed=1)],
                    [tmp_path / "s0", tmp_path / "s1"], resume=True)
    assert not any(tmp_path.iterdir())  # nothing made
    # the CLI says so before the data is loaded (a pack that does not exist is never opened)
    with pytest.raises(NoCheckpointError, match="no checkpoint at"):
        cli.run(_args("mopa", "--pack", str(tmp_path / "none.fbpack"), *TINY, "--out", str(tmp_path / "r"),
                      "--resume"))


def test_resume_or_start_continues_or_starts(tmp_path, capsys):
    ps = PatchSet(_images(), 16, 8)
    part = dataclasses.replace(CFG, stop_after_steps=4)
    train(_Net, _nan_from(10 ** 9), ps, part, tmp_path / "a", resume="or_start")  # starts, one line
    assert "--resume-or-start: no checkpoint in" in capsys.readouterr().err
    rest = train(_Net, _nan_from(10 ** 9), ps, CFG, tmp_path / "a", resume="or_start")  # continues
    assert rest.call_steps == rest.total_steps - 4 and "no checkpoint" not in capsys.readouterr().err
    train(_Net, _nan_from(10 ** 9), ps, CFG, tmp_path / "b")
    a, b = (torch.load(tmp_path / d / "final.pth", weights_only=True) for d in "ab")
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="resume must be"):
        train(_Net, _nan_from(10 ** 9), ps, CFG, tmp_path / "c", resume="yes")


# --------------------------------------------------------------------------- 5. corrupt checkpoints
@pytest.mark.parametrize("damage", ["garbage", "truncated", "object"])
def test_a_corrupt_checkpoint_is_one_line_naming_it(tmp_path, damage):
    ps = PatchSet(_images(), 16, 8)
    run = tmp_path / "run"
    train(_Net, _nan_from(10 ** 9), ps, dataclasses.replace(CFG, stop_after_steps=3), run)
    ckpt = run / "checkpoint.pt"
    good = ckpt.read_bytes()
    if damage == "garbage":
        ckpt.write_text("garbage\n")
    elif damage == "truncated":
        ckpt.write_bytes(good[:len(good) // 2])
    else:  # a pickled object beside the data: refused by weights_only=True, never unpickled
        state = torch.load(ckpt, weights_only=True)
        state["extra"] = _Unpicklable()
        torch.save(state, ckpt)
    with pytest.raises(CheckpointError) as err:
        train(_Net, _nan_from(10 ** 9), ps, CFG, run, resume=True)
    assert str(err.value).startswith(f"{ckpt}: not a readable training checkpoint (") and "\n" not in str(err.value)
    if damage == "object":
        assert "it holds objects such as print beside tensors and plain data" in str(err.value)
    # without --resume the folder is still kept (its file exists), and the line says why, naming the folder
    with pytest.raises(FileExistsError, match=f"^{run} holds an unreadable checkpoint.pt"):
        train(_Net, _nan_from(10 ** 9), ps, CFG, run)


class _Unpicklable:
    def __reduce__(self):
        return (print, ("a checkpoint must not run code",))


def test_checkpoints_load_with_weights_only():
    """The committed device checkpoint loads with weights_only=True (the loop's checkpoints hold plain data)."""
    ck = load_checkpoint(ROOT / "device_runs" / "mopa" / "checkpoint.pt")
    assert ck["step"] > 0 and isinstance(ck["config"], dict) and isinstance(ck["torch_rng"], torch.Tensor)


# --------------------------------------------------------------------------- 12. options named, early
def _args(*argv: str):
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize("option, text", [
    (("--set", "width=abc"), "--set width=abc: expected an integer"),
    (("--set", "use_mask=1"), "--set use_mask=1: expected True or False"),
    (("--set", "slope=inf"), "--set slope=inf: expected a finite number"),
    (("--seed", "-1"), "--seed -1: must be an integer >= 0"),
    (("--checkpoint-minutes", "-1"), "--checkpoint-minutes -1.0: must be > 0 (minutes"),
    (("--lr", "inf"), "--lr inf: must be a finite number > 0"),
    (("--device", "cuda:x"), "--device cuda:x: expected cpu, cuda or cuda:N"),
    (("--resume", "--resume-or-start"), "give --resume or --resume-or-start, not both"),
])
def test_bad_options_are_named_before_the_data_is_loaded(tmp_path, option, text):
    # the pack does not exist: an option checked after loading would fail on the pack instead
    args = _args("mopa", "--pack", str(tmp_path / "none.fbpack"), *TINY, "--out", str(tmp_path / "r"), *option)
    with pytest.raises(SystemExit) as stop:
        cli.run(args)
    assert text in str(stop.value)
    assert not (tmp_path / "r").exists()


def test_set_accepts_values_of_the_parameters_type():
    from fusionbench.train.spec import get_trainer

    spec, params, name = get_trainer("mopa")
    allowed = set(params)
    assert cli.parse_set(["width=6", "slope=1", "attention=cascade", "use_mask=False"], name, allowed, params) == \
        {"width": 6, "slope": 1, "attention": "cascade", "use_mask": False}
    spec, params, name = get_trainer("swinfusion.ct")
    allowed = set(params) | set(spec.extra_params)
    assert cli.parse_set(["ema_decay=0.9"], name, allowed, params) == {"ema_decay": 0.9}
    with pytest.raises(SystemExit, match="--set ema_decay=abc: not a number or Python literal"):
        cli.parse_set(["ema_decay=abc"], name, allowed, params)


def test_cuda_on_a_cpu_host_is_refused_before_loading_and_leaves_no_folder(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    args = _args("mopa", "--pack", str(tmp_path / "none.fbpack"), *TINY, "--out", str(tmp_path / "r"),
                 "--device", "cuda")
    with pytest.raises(SystemExit, match="--device cuda: torch .* sees no CUDA device"):
        cli.run(args)
    assert not (tmp_path / "r").exists()
    # the library call leaves no folder either
    with pytest.raises(RuntimeError, match="sees no CUDA device"):
        train(_Net, _nan_from(10 ** 9), PatchSet(_images(), 16, 8), dataclasses.replace(CFG, device="cuda"),
              tmp_path / "lib")
    assert not (tmp_path / "lib").exists()


def test_tf32_on_the_cpu_is_one_line_and_recorded_as_fp32(small_pack, tmp_path, capsys):
    common = ("mopa", "--pack", str(small_pack), *TINY, "--out", str(tmp_path / "r"), "--precision", "tf32")
    assert _run_cli(*common, "--stop-after-steps", "1") == 0
    err = capsys.readouterr().err
    assert err.count("--precision tf32 has no effect on the CPU") == 1
    prov = json.loads((tmp_path / "r" / "provenance.json").read_text())
    assert prov["precision"] == "fp32" and prov["precision_requested"] == "tf32"
    # the schedule keeps tf32 (resume rules unchanged): the run continues with --precision tf32
    assert load_checkpoint(tmp_path / "r" / "checkpoint.pt")["config"]["precision"] == "tf32"
    assert _run_cli(*common, "--stop-after-steps", "2", "--resume") == 0
    # an fp32 run records no request
    assert _run_cli("mopa", "--pack", str(small_pack), *TINY, "--out", str(tmp_path / "f"),
                    "--stop-after-steps", "1") == 0
    prov = json.loads((tmp_path / "f" / "provenance.json").read_text())
    assert prov["precision"] == "fp32" and "precision_requested" not in prov


def test_pack_out_must_be_a_file_name(tmp_path, shared_dir):
    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_text("x")
    for out, text in ((tmp_path / "folder", "is a folder; give the pack's file name"),
                      (tmp_path / "afile" / "p.fbpack", "afile is a file, not a folder")):
        with pytest.raises(SystemExit, match=f"--out {out}: .*{text}"):
            cli.run(_args("pack", "mopa", "--max-pairs", "1", "--data-dir", str(shared_dir / "data"), "--out",
                          str(out)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "folder"]
    assert not any((tmp_path / "folder").iterdir())  # no .tmp file anywhere
