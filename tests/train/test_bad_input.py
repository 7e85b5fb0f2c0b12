"""``fusionbench train`` on bad input and interruptions (session 25's audit of the training command): each
problem is one line naming the flag or file before the data is loaded, and nothing is half-written or lost.
Each test failed on the code before its fix, but the last-but-one, a guard that the atomic ``final.pth`` write
keeps identical runs byte-identical."""
from __future__ import annotations

import argparse
import dataclasses
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from fusionbench.train import TrainConfig, cli
from fusionbench.train.checkpoint import CheckpointError, TrainError, load_checkpoint
from fusionbench.train.loop import train
from fusionbench.train.patches import PatchSet

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CFG = TrainConfig(epochs=2, batch_size=4, lr=1e-2, patch_size=16, stride=8, progress=False, log_every=3)
TINY = ("--max-patches", "8", "--batch-size", "4", "--patch-size", "32", "--stride", "32", "--no-progress")
META = {"method": "toy", "params": {"alpha": 0.5}}


def _images():
    return np.random.default_rng(0).random((3, 2, 32, 32), dtype=np.float32)


def _build():
    return torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.LeakyReLU(0.2),
                               torch.nn.Conv2d(4, 1, 3, padding=1))


def _loss(model, batch):
    loss = torch.nn.functional.mse_loss(model(batch), batch[:, :1])
    return loss, {"total": loss.detach()}


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def _part(tmp_path: Path, meta=META) -> Path:
    run = tmp_path / "run"
    train(_build, _loss, PatchSet(_images(), 16, 8), dataclasses.replace(CFG, stop_after_steps=3), run, meta=meta)
    return run


# ------------------------------------------------------------------ resuming another variant's run (O04, O05, R13, R14)
def test_resume_refuses_a_run_of_other_model_params(tmp_path):
    run = _part(tmp_path)
    other = {"method": "toy", "params": {"alpha": 1.0}}  # same network, another loss: used to continue silently
    with pytest.raises(ValueError, match=r"cannot resume .*checkpoint.pt: model parameters differ .*'alpha': \(0.5, 1.0\)"):
        train(_build, _loss, PatchSet(_images(), 16, 8), CFG, run, resume=True, meta=other)
    with pytest.raises(ValueError, match="it is a run of toy, not of toy.other"):
        train(_build, _loss, PatchSet(_images(), 16, 8), CFG, run, resume=True, meta={**META, "method": "toy.other"})
    train(_build, _loss, PatchSet(_images(), 16, 8), CFG, run, resume=True, meta=META)  # its own run continues


def test_cli_resume_of_another_preset_is_one_line_before_the_data(tmp_path, small_pack):
    out = tmp_path / "r"
    assert cli.main(["mopa", "--pack", str(small_pack), *TINY, "--out", str(out), "--stop-after-steps", "1"]) == 0
    for extra in (("mopa.mask_only",), ("mopa", "--set", "loss_alpha=1.0")):  # the pack is never opened
        with pytest.raises(ValueError, match="cannot resume .*checkpoint.pt: (it is a run of mopa|model parameters)"):
            cli.run(_args(*extra, "--pack", str(tmp_path / "none.fbpack"), *TINY, "--out", str(out), "--resume"))


# ------------------------------------------------------------------ final.pth and exports never half-written (I07, X05)
def _failing_save(monkeypatch, needle: str, exc: Exception):
    real = torch.save

    def save(obj, f, *a, **k):
        if needle in str(f):
            Path(f).write_bytes(b"PK\x03\x04 partial")  # what a full disk or a kill leaves mid-write
            raise exc
        return real(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save)


def test_a_failed_final_pth_write_leaves_no_half_written_file(tmp_path, monkeypatch):
    _failing_save(monkeypatch, "final.pth", OSError(28, "No space left on device"))
    with pytest.raises(TrainError, match=r"cannot write .*final.pth"):
        train(_build, _loss, PatchSet(_images(), 16, 8), CFG, tmp_path / "run")
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert "final.pth" not in names and not [n for n in names if n.endswith(".tmp")]
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 14  # --resume writes final.pth


def test_a_full_disk_during_a_checkpoint_is_one_line_naming_it(tmp_path, monkeypatch):
    run = _part(tmp_path)
    _failing_save(monkeypatch, ".checkpoint.pt.", RuntimeError("basic_ios::clear: iostream error"))
    with pytest.raises(TrainError, match=r"cannot write .*checkpoint.pt \(basic_ios.*--resume"):
        train(_build, _loss, PatchSet(_images(), 16, 8), CFG, run, resume=True, meta=META)
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 3  # kept
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_an_interrupted_export_keeps_the_previous_weights(tmp_path, monkeypatch):
    import shutil

    final = tmp_path / "final.pth"
    final.write_bytes(b"new weights" * 100)
    dest = tmp_path / "exp"
    dest.mkdir()
    (dest / "mopa.pth").write_bytes(b"old weights")

    def copyfile(src, dst, *a, **k):
        Path(dst).write_bytes(b"new w")  # part of the copy, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", copyfile)
    with pytest.raises(OSError):
        cli.export_weights(final, dest, "mopa")
    assert (dest / "mopa.pth").read_bytes() == b"old weights"
    assert sorted(p.name for p in dest.iterdir()) == ["mopa.pth"]


# ------------------------------------------------------------------ bit rot in a checkpoint (R08)
def test_a_checkpoint_with_corrupted_tensor_bytes_is_refused(tmp_path):
    ckpt = _part(tmp_path) / "checkpoint.pt"
    with zipfile.ZipFile(ckpt) as z:
        big = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    with open(ckpt, "r+b") as f:
        f.seek(big.header_offset)
        name_len, extra_len = struct.unpack("<HH", f.read(30)[26:30])
        f.seek(big.header_offset + 30 + name_len + extra_len + big.file_size // 2)
        f.write(np.float32(1.5).tobytes() * 4)  # finite values: nothing else would notice
    with pytest.raises(CheckpointError, match="fails its CRC check"):
        load_checkpoint(ckpt)


# ------------------------------------------------------------------ temp files of killed writers (I04)
def test_temp_files_of_killed_checkpoint_writers_are_removed(tmp_path):
    run = _part(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    # the checkpoint's, and (session 26, since they are written atomically too) the log's, plot's and JSONs'
    from fusionbench.io import host_tag

    stale = [run / f".{name}.{dead}@{host_tag()}.0123456789ab.tmp"
             for name in ("checkpoint.pt", "log.csv", "loss.png", "config.json", "provenance.json")]
    for path in stale:
        path.write_bytes(b"half a file")
    mine = run / f".log.csv.{os.getpid()}@{host_tag()}.0123456789ab.tmp"  # a live writer's: kept
    mine.write_bytes(b"being written")
    train(_build, _loss, PatchSet(_images(), 16, 8), CFG, run, resume=True, meta=META)
    assert [p.name for p in stale if p.exists()] == [] and mine.exists()


# ------------------------------------------------------------------ options checked before the data (X01, X02, O01, A23, A24, A25, A26, S10)
@pytest.mark.parametrize("option, text", [
    (("--export", "{afile}"), "--export {afile}: is a file, not a folder"),
    (("--export", "{afile}/sub"), "--export {afile}/sub: {afile} is a file, not a folder"),
    (("--out", "{afile}"), "--out {afile}: is a file, not a folder"),
    (("--set", "preset=mask_only"), "--set: renames the weights from 'mopa' to 'mask_only'"),
    (("--set", "width=6", "--export", "{tmp}/exp"), "--export with --set width=6: the weights would be written as mopa.pth"),
    (("--set", "width=0"), "cannot build the model or its loss with these params (--set width=0)"),
    (("--set", "attention=bogus"), "cannot build the model or its loss with these params (--set attention=bogus)"),
    # session 39: these trained (a negative loss, a flipped LReLU) or failed at the first step, after the data
    (("--set", "loss_alpha=-3"), "(--set loss_alpha=-3): mopa: loss alpha must be a number in [0, ∞), got -3"),
    (("--set", "loss_i1=bogus"), "(--set loss_i1=bogus): loss i1 must be one of ('functional', 'mri'), not 'bogus'"),
    (("--set", "contrast_r=-1"), "(--set contrast_r=-1): mopa: contrast_r must be an integer in [1, ∞), got -1"),
    (("--set", "spatial_kernel=4"), "(--set spatial_kernel=4): mopa: spatial_kernel must be odd"),
    (("--set", "slope=-5"), "(--set slope=-5): mopa: slope must be a number in [0, 1), got -5"),
    (("--seed", str(2 ** 64)), f"--seed {2 ** 64}: must be < 2**64"),
])
def test_bad_targets_and_params_are_named_before_the_data_is_loaded(tmp_path, option, text):
    afile = tmp_path / "afile"
    afile.write_text("x")
    fill = {"afile": str(afile), "tmp": str(tmp_path)}
    option = tuple(o.format(**fill) for o in option)
    out = ("--out", str(tmp_path / "r")) if "--out" not in option else ()
    # the pack does not exist: a check made after loading would fail on the pack instead
    with pytest.raises(SystemExit) as stop:
        cli.run(_args("mopa", "--pack", str(tmp_path / "none.fbpack"), *TINY, *out, *option))
    assert text.format(**fill) in str(stop.value)
    assert not (tmp_path / "r").exists() and not (tmp_path / "exp").exists()


def test_an_ema_decay_outside_0_1_is_refused_before_the_data_is_loaded(tmp_path):
    """Session 39: ``swinfusion --set ema_decay=2`` trained, and its export was a diverged average."""
    with pytest.raises(SystemExit, match=r"\(--set ema_decay=2\): swinfusion: ema_decay must be a number in \[0, 1\), got 2"):
        cli.run(_args("swinfusion", "--pack", str(tmp_path / "none.fbpack"), "--out", str(tmp_path / "r"),
                      "--set", "ema_decay=2"))
    assert not (tmp_path / "r").exists()


def test_a_patch_larger_than_the_images_names_the_option(tmp_path, small_pack):
    with pytest.raises(SystemExit, match="--patch-size 300: patch size 300 exceeds the image size 256"):
        cli.run(_args("mopa", "--pack", str(small_pack), *TINY, "--patch-size", "300", "--out", str(tmp_path / "r")))
    assert not (tmp_path / "r").exists()


def test_a_pack_out_that_cannot_be_written_is_refused_before_reading(tmp_path, monkeypatch):
    import os

    from fusionbench.train.pack import check_pack_path

    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if Path(p) == tmp_path else real(p, mode))
    with pytest.raises(ValueError, match=f"{tmp_path} is not writable"):  # a read-only disk: after compressing, before
        check_pack_path(tmp_path / "p.fbpack")


def test_final_pth_bytes_stay_identical_between_identical_runs(tmp_path):
    """A guard for the atomic final.pth write (passes before the fix too): torch names the archive's root after the
    file it writes, so a temporary file name would make every run's final.pth (and exported sha256) differ."""
    import hashlib

    digests = []
    for name in ("a", "b"):
        train(_build, _loss, PatchSet(_images(), 16, 8), CFG, tmp_path / name)
        digests.append(hashlib.sha256((tmp_path / name / "final.pth").read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------ two runs in one folder (C01)
def test_a_second_run_in_a_folder_in_use_is_refused(tmp_path):
    import fcntl

    from fusionbench.train.seeds import train_seeds

    run = tmp_path / "run"
    run.mkdir()
    with open(run / ".lock", "a+") as other:  # another process training there (flock: per open file)
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(TrainError, match=f"{run} is in use by another training process"):
            train(_build, _loss, PatchSet(_images(), 16, 8), CFG, run)
        with pytest.raises(TrainError, match="is in use by another training process"):
            train_seeds(_build, _loss, _images(), [CFG, dataclasses.replace(CFG, seed=1)],
                        [run, tmp_path / "s1"], meta=META)
        assert not (run / "checkpoint.pt").exists() and not (run / "config.json").exists()
        with pytest.raises(TrainError, match="is in use by another training process"):  # a later folder in use:
            train_seeds(_build, _loss, _images(), [CFG, dataclasses.replace(CFG, seed=1)],  # the first untouched
                        [tmp_path / "s0", run], meta=META)
        assert not (tmp_path / "s0" / "config.json").exists() and not (tmp_path / "s0" / "log.csv").exists()
    train(_build, _loss, PatchSet(_images(), 16, 8), CFG, run)  # released: the run goes on
    train(_build, _loss, PatchSet(_images(), 16, 8), CFG, tmp_path / "again")
    train(_build, _loss, PatchSet(_images(), 16, 8), CFG, tmp_path / "again", resume=True)  # a finished call released it


# ------------------------------------------------------------------ the audit's notes N1, N2, N4, N5, N6 (session 26)
def test_a_pack_that_is_a_folder_is_named_as_a_folder(tmp_path):
    from fusionbench.train.pack import read_pack

    with pytest.raises(ValueError, match=r": is a folder, not a training pack; give the pack's file"):
        read_pack(tmp_path)  # before: "training pack not found", of a folder that is there


@pytest.mark.parametrize("argv, message", [
    (("mopa", "--pack", "p.fbpack", "--data-dir", "data"), "give --pack or --data-dir, not both"),
    (("mopa", "--export", ""), "--export '' names no file or folder"),
    (("mopa", "--out", " "), "--out ' ' names no file or folder"),
    (("mopa", "--seeds", "0,,1"), "--seeds takes comma-separated integers, not '0,,1'"),
    (("mopa", "--seeds", "0,1,"), "--seeds takes comma-separated integers, not '0,1,'"),
    (("pack", "mopa", "--out", ""), "train pack: --out '' names no file or folder"),
    (("pack", "mopa", "--epochs", "3"), "train pack: --epochs: not options of `train pack`"),
    (("pack", "mopa", "--lr", "1e-3", "--seed", "2", "--resume"), "train pack: --resume, --lr, --seed: not options"),
])
def test_options_that_would_be_ignored_are_refused(tmp_path, monkeypatch, argv, message):
    """Each used to be accepted and ignored: ``--data-dir`` beside ``--pack``, an empty ``--export`` (nothing
    exported, nothing said), an empty item of ``--seeds``, training options given to ``train pack``."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as err:
        cli.run(_args(*argv))
    assert message in str(err.value)
    assert list(tmp_path.iterdir()) == []  # refused before anything is written


def test_the_log_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """The audit's note N7: log.csv (and loss.png, config.json, provenance.json) were rewritten in place, so a
    kill while writing truncated them; now a failed write leaves the previous file and no temporary file."""
    import csv

    from fusionbench.train.progress import write_log

    log = tmp_path / "log.csv"
    write_log([{"step": 1, "loss_total": 0.5}], log)
    before = log.read_bytes()

    def fail(self, rows):
        raise OSError("No space left on device")

    monkeypatch.setattr(csv.DictWriter, "writerows", fail)
    with pytest.raises(OSError, match="No space left"):
        write_log([{"step": 1, "loss_total": 0.5}, {"step": 2, "loss_total": 0.25}], log)
    assert log.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["log.csv"]
