"""Ctrl-C and SIGTERM while a model trains: the first one stops the loop at the end of the step in flight with a
checkpoint of that step (no steps lost, the resumed run ends bitwise where an uninterrupted one ends); a second
one interrupts at once; the handlers are put back afterwards.  Before, every steps since the last periodic
checkpoint (up to ``--checkpoint-minutes``, 3 by default) were lost.

The signals are sent by the loss itself at a chosen step, so each test is deterministic."""
from __future__ import annotations

import dataclasses
import os
import signal

import numpy as np
import pytest
import torch

from fusionbench.interrupts import StopRequest, Terminated
from fusionbench.train import TrainConfig
from fusionbench.train.checkpoint import load_checkpoint
from fusionbench.train.loop import train
from fusionbench.train.patches import PatchSet
from fusionbench.train.seeds import train_seeds

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CFG = TrainConfig(epochs=2, batch_size=4, lr=1e-2, patch_size=16, stride=8, progress=False, log_every=3)


def _images():
    return np.random.default_rng(0).random((3, 2, 32, 32), dtype=np.float32)


def _build():
    return torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.LeakyReLU(0.2),
                               torch.nn.Conv2d(4, 1, 3, padding=1))


def _signalling_loss(signals: dict[int, int | tuple[int, ...]]):
    """The toy loss; at its n-th call (1-based) it sends itself ``signals[n]`` (one signal or several), as a
    Ctrl-C or a batch scheduler's SIGTERM arriving while that step runs would."""
    calls = [0]

    def loss(model, batch):
        calls[0] += 1
        for signum in np.atleast_1d(signals.get(calls[0], ())):
            os.kill(os.getpid(), int(signum))
        out = torch.nn.functional.mse_loss(model(batch), batch[:, :1])
        return out, {"total": out.detach()}

    return loss


def _final(run):
    return torch.load(run / "final.pth", weights_only=True)


@pytest.mark.usefixtures("sigint_delivered")
@pytest.mark.parametrize("signum, error", [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)])
def test_a_first_interrupt_checkpoints_the_step_it_stops_at(tmp_path, signum, error, capfd):
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    run = tmp_path / "run"
    with pytest.raises(error) as raised:
        train(_build, _signalling_loss({5: signum}), PatchSet(_images(), 16, 8), CFG, run)
    assert type(raised.value) is error
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 5  # before: no checkpoint (none was due yet)
    assert not (run / "final.pth").exists()
    assert "stopping at the end of this step, after writing a checkpoint" in capfd.readouterr().err
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers

    done = train(_build, _signalling_loss({}), PatchSet(_images(), 16, 8), CFG, run, resume=True)
    whole = train(_build, _signalling_loss({}), PatchSet(_images(), 16, 8), CFG, tmp_path / "whole")
    assert done.finished and done.steps == whole.steps == 14
    resumed, uninterrupted = _final(run), _final(tmp_path / "whole")
    assert resumed.keys() == uninterrupted.keys() and all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)


@pytest.mark.usefixtures("sigint_delivered")
def test_the_interrupt_carries_the_calls_result_and_a_stop_at_the_last_step_writes_no_final(tmp_path):
    """The loop attaches what the stopped call did to the interrupt (session 39: the command writes provenance.json
    from it). Stopped at the very last step, the run is not finished: no final.pth until --resume, as when
    stopped a step earlier."""
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt) as raised:
        train(_build, _signalling_loss({14: signal.SIGINT}), PatchSet(_images(), 16, 8), CFG, run)
    result = raised.value.train_result
    assert (result.steps, result.total_steps, result.finished, result.call_steps) == (14, 14, False, 14)
    assert not (run / "final.pth").exists() and load_checkpoint(run / "checkpoint.pt")["step"] == 14
    done = train(_build, _signalling_loss({}), PatchSet(_images(), 16, 8), CFG, run, resume=True)
    assert done.finished and done.call_steps == 0 and (run / "final.pth").is_file()
    with pytest.raises(Terminated) as raised:
        train_seeds(_build, _signalling_loss({4: signal.SIGTERM}), _images(),
                    [CFG, dataclasses.replace(CFG, seed=1)], [tmp_path / "s0", tmp_path / "s1"])
    assert [(r.out_dir.name, r.steps, r.finished) for r in raised.value.train_result] == [("s0", 4, False),
                                                                                         ("s1", 4, False)]


@pytest.mark.usefixtures("sigint_delivered")
def test_an_interrupted_command_writes_the_calls_provenance(tmp_path, small_pack, monkeypatch):
    """Until session 39 ``fusionbench train`` stopped by Ctrl-C or SIGTERM wrote no provenance.json (and a folder
    kept an earlier call's, which said fewer steps)."""
    import argparse
    import json

    from fusionbench.train import cli
    from fusionbench.train.spec import TrainSpec

    real = TrainSpec.loss_for
    calls = [0]

    def loss_for(self, params):
        loss = real(self, params)

        def signalling(model, batch):
            calls[0] += 1
            if calls[0] == 2:
                os.kill(os.getpid(), signal.SIGINT)
            return loss(model, batch)

        return signalling

    monkeypatch.setattr(TrainSpec, "loss_for", loss_for)
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    with pytest.raises(KeyboardInterrupt):
        cli.run(parser.parse_args(["mopa.mask_only", "--pack", str(small_pack), "--out", str(tmp_path / "run"),
                                   "--epochs", "1", "--patch-size", "32", "--stride", "32", "--batch-size", "4",
                                   "--no-progress"]))
    record = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert (record["steps_done"], record["finished"], record["call"]["steps"]) == (2, False, 2)
    assert record["schedule"]["steps"] > 2 and load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 2


@pytest.mark.usefixtures("sigint_delivered")
def test_a_second_interrupt_stops_at_once(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):  # both arrive in step 3: the loop never reaches its checkpoint
        train(_build, _signalling_loss({3: (signal.SIGINT, signal.SIGINT)}), PatchSet(_images(), 16, 8),
              dataclasses.replace(CFG, epochs=1), run)
    assert not (run / "checkpoint.pt").exists()


def test_seeds_trained_together_checkpoint_every_seed_where_they_stop(tmp_path):
    dirs = [tmp_path / "s0", tmp_path / "s1"]
    with pytest.raises(Terminated):
        train_seeds(_build, _signalling_loss({4: signal.SIGTERM}), _images(),
                    [CFG, dataclasses.replace(CFG, seed=1)], dirs)
    assert [load_checkpoint(d / "checkpoint.pt")["step"] for d in dirs] == [4, 4]


def test_a_stop_request_outside_the_main_thread_installs_nothing():
    import threading

    before = signal.getsignal(signal.SIGINT)
    seen = []

    def in_thread():
        with StopRequest() as request:
            seen.append((request.requested, signal.getsignal(signal.SIGINT)))

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert seen == [(False, before)]


def test_a_request_after_the_loops_last_look_is_raised_when_the_block_ends(capfd):
    """A signal noted after the loop's last check used to be dropped: "stopping ..." was printed and the
    command went on and exited 0."""
    with pytest.raises(Terminated):
        with StopRequest():
            os.kill(os.getpid(), signal.SIGTERM)
    assert "stopping at the end of this step" in capfd.readouterr().err


def test_an_ignored_signal_stays_ignored():
    """A job started in the background by a non-interactive shell ignores SIGINT: a Ctrl-C in the terminal
    must not stop it (``scripts/device_train.sh`` starts its trainings so)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopRequest() as request:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            assert not request.requested
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_an_error_raised_after_a_noted_interrupt_propagates(capfd):
    """An error of the loop after a first Ctrl-C or SIGTERM (a full disk while the checkpoint is written) must not
    be replaced by the noted interrupt: its traceback is what says what went wrong."""
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(BaseException) as raised:
        with StopRequest() as request:
            os.kill(os.getpid(), signal.SIGTERM)
            assert request.requested
            raise OSError(28, "No space left on device")
    assert type(raised.value) is OSError and raised.value.errno == 28, repr(raised.value)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    assert "stopping at the end of this step" in capfd.readouterr().err


@pytest.mark.usefixtures("sigint_delivered")
@pytest.mark.parametrize("first, second, error", [(signal.SIGTERM, signal.SIGINT, KeyboardInterrupt),
                                                  (signal.SIGINT, signal.SIGTERM, Terminated)])
def test_a_second_interrupt_raises_its_own_kind(first, second, error):
    """A Ctrl-C after a scheduler's SIGTERM is a Ctrl-C (exit 130, not 143), and the reverse: the second signal,
    which interrupts at once, is raised as what it is, not as the first one."""
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt) as raised:
        with StopRequest() as request:
            os.kill(os.getpid(), first)
            assert request.signum == first
            os.kill(os.getpid(), second)
            pytest.fail("the second signal did not interrupt")
    assert type(raised.value) is error
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers


def _sigterm_self_then_go_on():
    os.kill(os.getpid(), signal.SIGTERM)
    os._exit(3)  # reached only if the SIGTERM was noted instead of killing this process


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_child_forked_inside_a_stop_request_dies_of_sigterm():
    """A child forked while the loop runs inherits its handler; SIGTERM must kill the child as without it, not be
    noted for a loop the child does not run (the child went on with the parent's code)."""
    import multiprocessing

    with StopRequest() as request:
        child = multiprocessing.get_context("fork").Process(target=_sigterm_self_then_go_on)
        child.start()
        try:
            child.join(timeout=60)
        finally:
            if child.exitcode is None:
                child.kill()
                child.join(timeout=60)
    assert child.exitcode == -signal.SIGTERM and not request.requested


@pytest.mark.slow
def test_the_command_stops_on_sigterm_with_a_checkpoint_and_resumes_bitwise(small_pack, tmp_path):
    """End to end through ``fusionbench train``: SIGTERM once the progress bar shows steps; exit status 143,
    the resume line, a checkpoint at the step it stopped at (no periodic one was due: ``--checkpoint-minutes
    100``), and the resumed run's ``final.pth`` equals an uninterrupted run's bit for bit."""
    import re
    import subprocess
    import sys

    common = ["train", "mopa", "--pack", str(small_pack), "--epochs", "1", "--patch-size", "32", "--stride", "16",
              "--batch-size", "4", "--threads", "1", "--checkpoint-minutes", "100"]
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "fusionbench", *common, "--out", str(run)], stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path)
    seen = ""
    while not re.search(r"\b([3-9]|\d\d+)/\d+ \[", seen):  # the bar's "k/113 [" with k >= 3: the loop is running
        char = proc.stderr.read(1)
        assert char, f"the run ended before its third step: {seen[-2000:]}"
        seen += char
    proc.send_signal(signal.SIGTERM)
    err = seen + proc.stderr.read()
    assert proc.wait(timeout=300) == 143, err[-2000:]
    assert "fusionbench: terminated; the run keeps its last checkpoint" in err
    stopped = load_checkpoint(run / "checkpoint.pt")["step"]
    assert 3 <= stopped < 113 and not (run / "final.pth").exists()
    for out, extra in ((run, ["--resume"]), (tmp_path / "whole", [])):
        done = subprocess.run([sys.executable, "-m", "fusionbench", *common, "--no-progress", "--out", str(out),
                               *extra], capture_output=True, text=True, cwd=tmp_path, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    resumed, uninterrupted = _final(run), _final(tmp_path / "whole")
    assert resumed.keys() == uninterrupted.keys() and all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)
