"""The generic training loop: patches, determinism, exact resume, logs, CLI."""
from __future__ import annotations

import argparse
import dataclasses
import hashlib

import numpy as np
import pytest
import torch

from fusionbench.train import TrainConfig
from fusionbench.train.loop import epoch_order, train
from fusionbench.train.patches import PatchSet, patch_origins


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _images(seed=0):
    return np.random.default_rng(seed).random((3, 2, 32, 32), dtype=np.float32)


def _build():
    return torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.LeakyReLU(0.2),
                               torch.nn.Conv2d(4, 1, 3, padding=1))


def _loss(model, batch):
    out = model(batch)
    loss = torch.nn.functional.mse_loss(out, batch[:, :1])
    return loss, {"total": loss.item()}


CFG = TrainConfig(epochs=2, batch_size=4, lr=1e-2, patch_size=16, stride=8, progress=False, log_every=3)


def _state(path):
    return torch.load(path, weights_only=True)


def _same(s1, s2):
    return s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)


def test_patch_origins_and_paper_count():
    assert list(patch_origins(256, 120, 10)) == list(range(0, 131, 10))
    assert 180 * len(patch_origins(256, 120, 10)) ** 2 == 35280  # §2: 35,280 patches of 120×120
    with pytest.raises(ValueError):
        patch_origins(10, 16, 1)


def test_patchset_batches_are_the_patches():
    imgs = _images()
    ps = PatchSet(imgs, 16, 8)
    assert len(ps) == 3 * 3 * 3 and ps.grid == (3, 3)
    rows = np.array([0, 13, 26])
    got = ps.batch(rows)
    for k, r in enumerate(rows):
        i, y, x = ps.index[r]
        np.testing.assert_array_equal(got[k], imgs[i, :, 8 * y:8 * y + 16, 8 * x:8 * x + 16])
    sub = PatchSet(imgs, 16, 8, max_patches=10, seed=1)
    assert len(sub) == 10 and np.array_equal(sub.index, PatchSet(imgs, 16, 8, 10, seed=1).index)
    assert np.all(np.diff(sub.index[:, 0] * 9 + sub.index[:, 1] * 3 + sub.index[:, 2]) > 0)


def test_training_is_deterministic_and_writes_outputs(tmp_path):
    ps = PatchSet(_images(), 16, 8)
    r1 = train(_build, _loss, ps, CFG, tmp_path / "a")
    r2 = train(_build, _loss, ps, CFG, tmp_path / "b")
    assert r1.finished and r1.steps == r1.total_steps == 2 * 7
    assert _same(_state(r1.final_path), _state(r2.final_path))
    log = (tmp_path / "a" / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,epoch,patches_seen,loss_total") and log[-1].startswith("14,")
    assert (tmp_path / "a" / "loss.png").stat().st_size > 1000
    assert set(r1.final_terms) == {"total"}
    first = float(log[1].split(",")[3])
    assert r1.final_terms["total"] < first  # it learns the identity-like map


def test_resume_continues_exactly(tmp_path):
    ps = PatchSet(_images(), 16, 8)
    full = train(_build, _loss, ps, CFG, tmp_path / "full")
    part = train(_build, _loss, ps, dataclasses.replace(CFG, stop_after_steps=5), tmp_path / "part")
    assert not part.finished and part.steps == 5 and not part.final_path.exists()
    rest = train(_build, _loss, ps, CFG, tmp_path / "part", resume=True)
    assert rest.finished and rest.steps == 14
    assert _same(_state(full.final_path), _state(rest.final_path))
    a = (tmp_path / "full" / "log.csv").read_text().splitlines()
    b = (tmp_path / "part" / "log.csv").read_text().splitlines()
    assert [r.split(",")[:4] for r in a] == [r.split(",")[:4] for r in b]


def _tensor_loss(model, batch):
    out = model(batch)
    loss = torch.nn.functional.mse_loss(out, batch[:, :1])
    return loss, {"total": loss.detach(), "half": 0.5 * loss.detach()}


def _float_loss(model, batch):
    loss, terms = _tensor_loss(model, batch)
    return loss, {k: v.item() for k, v in terms.items()}


def test_tensor_terms_are_logged_as_the_same_floats(tmp_path):
    """A loss may return its terms as tensors (read back every log_every steps): same log, same resume."""
    ps = PatchSet(_images(), 16, 8)
    as_floats = train(_build, _float_loss, ps, CFG, tmp_path / "f")
    as_tensors = train(_build, _tensor_loss, ps, CFG, tmp_path / "t")
    assert (tmp_path / "f" / "log.csv").read_text().split("\n")[0] == (tmp_path / "t" / "log.csv").read_text().split("\n")[0]
    strip = lambda p: [r.split(",")[:5] for r in p.read_text().splitlines()]   # step..loss_half (no timings)
    assert strip(tmp_path / "f" / "log.csv") == strip(tmp_path / "t" / "log.csv")
    assert as_floats.final_terms == as_tensors.final_terms and isinstance(as_tensors.final_terms["total"], float)
    # a checkpoint taken between two log rows (stop after 4 steps, log_every 3) keeps the pending terms
    train(_build, _tensor_loss, ps, dataclasses.replace(CFG, stop_after_steps=4), tmp_path / "r")
    train(_build, _tensor_loss, ps, CFG, tmp_path / "r", resume=True)
    assert strip(tmp_path / "r" / "log.csv") == strip(tmp_path / "t" / "log.csv")


def test_resume_extends_epochs_and_refuses_other_changes(tmp_path):
    ps = PatchSet(_images(), 16, 8)
    full = train(_build, _loss, ps, CFG, tmp_path / "full")
    train(_build, _loss, ps, dataclasses.replace(CFG, epochs=1), tmp_path / "ext")
    ext = train(_build, _loss, ps, CFG, tmp_path / "ext", resume=True)
    assert _same(_state(full.final_path), _state(ext.final_path))
    with pytest.raises(ValueError, match="schedule differs"):
        train(_build, _loss, ps, dataclasses.replace(CFG, lr=1e-3), tmp_path / "ext", resume=True)


def test_cli_trains_and_exports(tmp_path, small_pack):
    from fusionbench.train import cli, spec

    base, params, name = spec.get_trainer("mopa.mask_only")
    assert name == "mopa.mask_only" and params["use_mask"] and not params["use_attention"]
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["mopa.mask_only", "--pack", str(small_pack), "--out", str(tmp_path / "run"),
                              "--epochs", "1", "--patch-size", "32", "--stride", "224", "--batch-size", "4",
                              "--no-progress", "--export", str(tmp_path / "w")])
    assert cli.run(args) == 0
    pth = tmp_path / "w" / "mask_only.pth"
    digest = (tmp_path / "w" / "mask_only.sha256").read_text().split()[0]
    assert digest == hashlib.sha256(pth.read_bytes()).hexdigest()
    from fusionbench.methods.mopa import build_model

    build_model(params).load_state_dict(torch.load(pth, weights_only=True))


@pytest.mark.parametrize("field, value", [("epochs", 0), ("epochs", -1), ("batch_size", 0), ("patch_size", 0),
                                          ("stride", 0), ("threads", 0), ("log_every", 0), ("max_patches", 0),
                                          ("stop_after_steps", 0), ("epochs", 1.5), ("epochs", True), ("lr", 0.0),
                                          ("lr", -1e-4), ("lr", float("nan")), ("lr", float("inf")), ("seed", -1),
                                          ("seed", True), ("checkpoint_every_s", 0.0),
                                          ("stop_after_seconds", -1.0), ("stop_after_seconds", float("nan"))])
def test_a_schedule_that_cannot_train_is_refused(field, value):
    """Before: epochs 0 trained '0/0 steps' silently, batch size or stride 0 ended in 'division by zero'."""
    with pytest.raises(ValueError, match=f"^{field} must be "):
        TrainConfig(**{field: value})


def test_train_cli_refuses_what_it_would_otherwise_ignore(small_pack, tmp_path, capsys):
    """``--set`` with a typo'd key or without ``=`` and ``--max-pairs`` outside ``train pack`` stop with one line
    (before: a typo trained the default silently; ``--set width`` failed deep inside the model)."""
    from fusionbench.train import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)

    def refused(*argv: str) -> str:
        args = parser.parse_args([*argv, "--pack", str(small_pack), "--out", str(tmp_path / "run"), "--no-progress"])
        with pytest.raises(SystemExit) as stop:
            cli.run(args)
        return str(stop.value)

    assert "--set widht: not a parameter of mopa; its parameters: " in refused("mopa", "--set", "widht=6")
    assert "expected KEY=VALUE" in refused("mopa", "--set", "width")
    assert "--max-pairs is for `train pack` only" in refused("mopa", "--max-pairs", "2")
    assert not (tmp_path / "run").exists()
    # a key the trainer reads beyond the registered params (SwinFusion's EMA decay) is accepted
    from fusionbench.train.spec import get_trainer

    spec, params, name = get_trainer("swinfusion.ct")
    assert cli.parse_set(["ema_decay=0.9"], name, set(params) | set(spec.extra_params)) == {"ema_decay": 0.9}


def test_pack_with_no_pairs_is_refused(tmp_path, shared_dir):
    from fusionbench.train.pack import write_pack

    with pytest.raises(ValueError, match="max_pairs must be >= 1"):
        write_pack(["mopa"], tmp_path / "empty.fbpack", shared_dir / "data", max_pairs=0)


def test_a_run_folder_with_a_checkpoint_is_not_started_afresh(tmp_path):
    """Without --resume, training into a folder that holds a run stops with one line instead of overwriting its
    checkpoint (a second `fusionbench train mopa` would otherwise lose the first run's steps)."""
    from fusionbench.train.seeds import train_seeds

    ps = PatchSet(_images(), 16, 8)
    train(_build, _loss, ps, dataclasses.replace(CFG, stop_after_steps=3), tmp_path / "run")
    before = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    with pytest.raises(FileExistsError, match="holds a run at step 3 .*--resume"):
        train(_build, _loss, ps, CFG, tmp_path / "run")
    with pytest.raises(FileExistsError, match="holds a run at step 3"):
        train_seeds(_build, _loss, _images(), [CFG, dataclasses.replace(CFG, seed=1)],
                    [tmp_path / "run", tmp_path / "other"])
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == before and not (tmp_path / "other").exists()
    assert train(_build, _loss, ps, CFG, tmp_path / "run", resume=True).finished  # --resume goes on


def test_each_epoch_visits_the_patches_in_its_own_order():
    """T4: epoch e's order is default_rng([seed, e]).permutation(n) (module docstring): it changes from epoch to
    epoch and with the seed."""
    n = 27
    orders = [epoch_order(n, 0, e) for e in range(3)]
    for e, order in enumerate(orders):
        np.testing.assert_array_equal(order, np.random.default_rng([0, e]).permutation(n))
        assert sorted(order.tolist()) == list(range(n))
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])
    assert not np.array_equal(epoch_order(n, 1, 0), orders[0])


def _build_dropout():
    return torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.Dropout(0.3),
                               torch.nn.Conv2d(4, 1, 3, padding=1))


def test_resume_restores_the_torch_generator(tmp_path):
    """T1: a model that draws from torch's generator while training (dropout) resumes exactly too: the checkpoint's
    torch_rng is put back."""
    ps = PatchSet(_images(), 16, 8)
    full = train(_build_dropout, _loss, ps, CFG, tmp_path / "full")
    train(_build_dropout, _loss, ps, dataclasses.replace(CFG, stop_after_steps=5), tmp_path / "part")
    rest = train(_build_dropout, _loss, ps, CFG, tmp_path / "part", resume=True)
    assert rest.finished
    assert _same(_state(full.final_path), _state(rest.final_path))


def test_resume_refuses_other_data_with_the_same_patch_count(tmp_path):
    """T2: the data check compares the fingerprint of the images, not only the number of patches."""
    train(_build, _loss, PatchSet(_images(0), 16, 8), dataclasses.replace(CFG, stop_after_steps=3), tmp_path / "r")
    other = PatchSet(_images(1), 16, 8)  # same shape, same patch count, other pixels
    with pytest.raises(ValueError, match="other training data"):
        train(_build, _loss, other, CFG, tmp_path / "r", resume=True)


def test_exporting_weights_that_a_committed_file_shadows_says_so(tmp_path, small_pack, capsys):
    """Session 38's training audit (F1): ``--export $FUSIONBENCH_HOME/trained/mopa`` of ``mopa`` printed only
    "exported …", and the run then used the committed ``mopa.pth`` (another schedule) beside the ablations trained
    on this one, in Table 4."""
    from fusionbench.methods.mopa import WEIGHTS_DIR
    from fusionbench.train import cli

    assert (WEIGHTS_DIR / "mopa.pth").is_file()
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["mopa", "--pack", str(small_pack), "--out", str(tmp_path / "run"), "--epochs", "1",
                              "--patch-size", "32", "--stride", "224", "--batch-size", "4", "--no-progress",
                              "--export", str(tmp_path / "w")])
    assert cli.run(args) == 0
    err = capsys.readouterr().err
    assert f"exported {tmp_path / 'w' / 'mopa.pth'}" in err
    assert (f"note: runs of mopa load the committed {WEIGHTS_DIR / 'mopa.pth'}, not these weights (a committed "
            "file always wins)") in err


def test_the_continue_line_after_a_budget_stop_names_the_same_options(tmp_path, small_pack, capsys):
    """Session 38's training audit (F5): "continue with --resume --out X", run as written, failed (no data, or
    another schedule)."""
    from fusionbench.train import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["mopa.mask_only", "--pack", str(small_pack), "--out", str(tmp_path / "run"),
                              "--epochs", "1", "--patch-size", "32", "--stride", "32", "--batch-size", "4",
                              "--no-progress", "--stop-after-steps", "1"])
    assert cli.run(args) == 0
    assert (f"stopped early; continue with the same command and options plus --resume (--out {tmp_path / 'run'}), "
            "with a larger --stop-after-steps/--max-minutes or none") in capsys.readouterr().err


def test_resume_with_fewer_epochs_than_done_is_refused(tmp_path):
    """Session 38's training audit: resuming a 2-epoch run with --epochs 1 "finished" at once and wrote a
    final.pth of 2 epochs that the provenance called a 1-epoch schedule."""
    ps = PatchSet(_images(), 16, 8)
    done = train(_build, _loss, ps, CFG, tmp_path / "r")
    before = (tmp_path / "r" / "final.pth").read_bytes()
    from fusionbench.train.checkpoint import TrainError

    with pytest.raises(TrainError, match=rf"has done {done.steps} steps, more than --epochs 1 gives "
                                         rf"\({done.steps // 2} steps, {done.steps // 2} per epoch\); give --epochs 2"):
        train(_build, _loss, ps, dataclasses.replace(CFG, epochs=1), tmp_path / "r", resume=True)
    assert (tmp_path / "r" / "final.pth").read_bytes() == before


def test_extending_a_finished_run_sets_its_final_weights_aside(tmp_path, capsys):
    """Session 38's training audit: a finished run resumed with more epochs kept its old final.pth (and the
    provenance.json describing it) beside a checkpoint of a later step until the longer run finished: a stopped
    or interrupted extension left a folder whose final.pth was not its latest model."""
    ps = PatchSet(_images(), 16, 8)
    one = train(_build, _loss, ps, dataclasses.replace(CFG, epochs=1), tmp_path / "r")
    first = (tmp_path / "r" / "final.pth").read_bytes()
    (tmp_path / "r" / "provenance.json").write_text('{"steps_done": %d}' % one.steps)
    part = train(_build, _loss, ps, dataclasses.replace(CFG, stop_after_steps=one.steps + 1), tmp_path / "r",
                 resume=True)
    assert not part.finished and not (tmp_path / "r" / "final.pth").exists()
    assert (tmp_path / "r" / f"final.step{one.steps}.pth").read_bytes() == first
    assert (tmp_path / "r" / f"provenance.step{one.steps}.json").is_file()
    err = capsys.readouterr().err
    assert f"--epochs 2 extends the run from 1 to 2 epochs ({2 * one.steps} steps; it is at step {one.steps})" in err
    assert f"kept as final.step{one.steps}.pth and provenance.step{one.steps}.json" in err
    full = train(_build, _loss, ps, CFG, tmp_path / "r", resume=True)
    assert full.finished and _same(_state(full.final_path), _state(train(_build, _loss, ps, CFG, tmp_path / "x")
                                                                    .final_path))


@pytest.mark.parametrize("resume", [False, "or_start"])
def test_a_folder_with_final_weights_and_no_checkpoint_is_not_trained_over(tmp_path, resume):
    """Until session 39 only checkpoint.pt kept a run folder: one holding a final.pth alone was trained afresh and
    its final.pth replaced at the end."""
    from fusionbench.train.checkpoint import RESUME_OR_START

    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "final.pth").write_bytes(b"weights")
    with pytest.raises(FileExistsError, match="holds a trained final.pth and no checkpoint.pt"):
        train(_build, _loss, PatchSet(_images(), 16, 8), CFG, tmp_path / "r",
              resume=RESUME_OR_START if resume else False)
    assert (tmp_path / "r" / "final.pth").read_bytes() == b"weights"


def test_resume_takes_the_schedule_options_left_out_from_the_checkpoint(tmp_path, small_pack, capsys):
    """Session 38's training audit: ``--resume`` without ``--epochs`` took the method's default (30 epochs for
    mopa) and extended the run silently; without ``--batch-size`` it was refused as another schedule."""
    import json

    from fusionbench.train import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    run = tmp_path / "run"
    common = ["mopa.mask_only", "--pack", str(small_pack), "--out", str(run), "--no-progress"]
    assert cli.run(parser.parse_args([*common, "--epochs", "1", "--patch-size", "32", "--stride", "32",
                                      "--batch-size", "4", "--lr", "0.002", "--stop-after-steps", "1"])) == 0
    capsys.readouterr()
    assert cli.run(parser.parse_args([*common, "--resume", "--stop-after-steps", "2"])) == 0
    err = capsys.readouterr().err
    assert (f"train: resuming {run} with its checkpoint's --epochs 1, --batch-size 4, --lr 0.002, --patch-size 32, "
            "--stride 32 (not given on the command line)") in err
    schedule = json.loads((run / "provenance.json").read_text())["schedule"]
    assert schedule | {"steps": 0} == {"epochs": 1, "patch_size": 32, "stride": 32, "batch_size": 4, "lr": 0.002,
                                       "steps": 0, "max_patches": None}
    assert json.loads((run / "provenance.json").read_text())["steps_done"] == 2


def test_a_second_export_keeps_the_weights_it_replaces(tmp_path, small_pack, capsys):
    """Session 38's training audit: ``--export DIR`` of a second run replaced the first run's weights, sidecar and
    provenance without a word. They are now copied to ``DIR/replaced/`` first (and the copies dropped when the new
    weights are the same bytes)."""
    from fusionbench.train import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    w = tmp_path / "w"

    def export(run: str, lr: str) -> str:
        args = parser.parse_args(["mopa.mask_only", "--pack", str(small_pack), "--out", str(tmp_path / run),
                                  "--epochs", "1", "--patch-size", "32", "--stride", "224", "--batch-size", "4",
                                  "--lr", lr, "--no-progress", "--export", str(w)])
        assert cli.run(args) == 0
        return capsys.readouterr().err

    export("a", "0.001")
    weights = (w / "mask_only.pth").read_bytes()
    assert "replaced" not in export("a2", "0.001") and not (w / "replaced").exists()  # the same bytes
    first = {s: (w / f"mask_only{s}").read_bytes() for s in (".pth", ".sha256", ".json")}  # a2's provenance
    assert first[".pth"] == weights
    err = export("b", "0.002")
    kept = sorted((w / "replaced").iterdir())
    assert [p.suffix for p in kept] == [".json", ".pth", ".sha256"]
    assert {p.suffix: p.read_bytes() for p in kept} == first
    assert (w / "mask_only.pth").read_bytes() != first[".pth"]
    digest = first[".sha256"].decode().split()[0]
    assert (f"note: {w / 'mask_only.pth'} replaced other weights (sha256 {digest[:12]}…); those are kept as "
            f"{[p for p in kept if p.suffix == '.pth'][0]} with their sha256, json files") in err


def test_patches_per_second_counts_the_short_last_batch(tmp_path):
    """An epoch of 9 patches in batches of 4 trains on 9 patches, not 12 (session 38's training audit: the rate
    counted every step as a full batch)."""
    from fusionbench.train.progress import patches_seen

    assert [patches_seen(s, 3, 9, 4) for s in range(7)] == [0, 4, 8, 9, 13, 17, 18]
    ps = PatchSet(_images(), 16, 8)
    assert len(ps) % 4 != 0
    result = train(_build, _loss, ps, CFG, tmp_path / "r")
    assert result.patches_per_s == pytest.approx(2 * len(ps) / result.elapsed_s)


def test_seeds_resumed_together_take_their_checkpoints_schedule(tmp_path, small_pack, capsys):
    """``--seeds`` and ``--resume`` without the schedule options: the seeds' checkpoints give them (each seed's own
    seed stays its own)."""
    import json

    from fusionbench.train import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    common = ["mopa.mask_only", "--pack", str(small_pack), "--out", str(tmp_path), "--seeds", "0,1", "--no-progress"]
    assert cli.run(parser.parse_args([*common, "--epochs", "1", "--patch-size", "32", "--stride", "112",
                                      "--batch-size", "3", "--stop-after-steps", "1"])) == 0
    capsys.readouterr()
    assert cli.run(parser.parse_args([*common, "--resume"])) == 0
    assert "with its checkpoint's --epochs 1, --batch-size 3, --patch-size 32, --stride 112" in capsys.readouterr().err
    for seed, folder in ((0, "mopa.mask_only"), (1, "mopa.mask_only.seed1")):
        record = json.loads((tmp_path / folder / "provenance.json").read_text())
        assert record["finished"] and record["seed"] == seed and record["schedule"]["batch_size"] == 3
