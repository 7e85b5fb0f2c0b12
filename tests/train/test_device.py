"""Device-ready training: trainer registry, training pack, exact resume of a real model, CUDA guards, device script."""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fusionbench.train import TrainConfig, cli, spec
from fusionbench.train.pack import read_pack

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(list(argv)))


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def _equal(a, b) -> bool:
    """Nested state dicts / lists equal, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


# --------------------------------------------------------------------------- registry
def test_trainers_are_a_registry_and_a_clash_is_an_error():
    from fusionbench.registry import Registry

    assert isinstance(spec.TRAINERS, Registry)
    assert {"mopa", "swinfusion"} <= set(spec.list_trainers())
    mopa = spec.TRAINERS.get("mopa").obj
    assert spec.register_trainer(mopa) is mopa  # the same spec again: no-op
    other = dataclasses.replace(mopa, description="another mopa trainer")
    with pytest.raises(ValueError, match="already registered"):
        spec.register_trainer(other)
    assert spec.TRAINERS.get("mopa").obj is mopa
    with pytest.raises(KeyError, match="not trainable"):
        spec.get_trainer("ifcnn")


def test_swinfusion_inference_module_does_not_import_its_trainer():
    code = ("import sys, fusionbench.methods.swinfusion; "
            "print('fusionbench.methods._swinfusion_train' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", check=True)
    assert out.stdout.strip() == "False"
    trainer, params, name = spec.get_trainer("swinfusion.ct")
    assert name == "swinfusion.ct" and params["model"] == "mri_ct" and trainer.export is not None


# --------------------------------------------------------------------------- pack
def test_pack_holds_the_loaded_images_and_each_variants_pairs(small_pack, shared_dir):
    from fusionbench.io import load_image
    from fusionbench.methods.mopa.data import training_pairs

    pack = read_pack(small_pack)
    side = small_pack.with_suffix(".sha256").read_text().split()[0]
    assert pack.sha256 == side == hashlib.sha256(small_pack.read_bytes()).hexdigest()
    assert pack.max_pairs == 2 and set(pack.variants) == {"mopa", "mopa.mask_only", "swinfusion.ct"}
    expected = training_pairs("pet_spect", shared_dir / "data")[:2]
    got = pack.pairs_of("mopa")
    assert [p.key for p in got] == [p.key for p in expected]
    for p, q in zip(got, expected):
        for arr, path in ((p.a, q.a_path), (p.b, q.b_path)):
            want = load_image(path)
            assert arr.dtype == want.dtype == np.uint8 and np.array_equal(arr, want)
    assert len(pack.pairs) == 4  # mopa and mopa.mask_only share their pairs; the CT pairs are stored once
    with pytest.raises(KeyError, match="no training set for 'mopa.no_mask'"):
        pack.pairs_of("mopa.no_mask")


def test_corrupted_pack_is_refused_with_one_line(small_pack, tmp_path):
    bad = tmp_path / "bad.fbpack"
    bad.write_bytes(small_pack.read_bytes()[:-10] + b"0123456789")
    bad.with_suffix(".sha256").write_text(small_pack.with_suffix(".sha256").read_text())
    with pytest.raises(ValueError, match="bad.fbpack: sha256 .* does not match"):
        read_pack(bad)
    bad.with_suffix(".sha256").unlink()
    with pytest.raises(ValueError, match="bad.fbpack: not a readable training pack"):
        read_pack(bad)


ARGS = ("--epochs", "1", "--patch-size", "32", "--stride", "64", "--batch-size", "4", "--no-progress")


def test_training_from_the_pack_equals_training_from_the_data_folder(small_pack, shared_dir, tmp_path, monkeypatch):
    from fusionbench.methods.mopa.data import training_pairs

    base = spec.TRAINERS.get("mopa").obj
    two = dataclasses.replace(base, pairs_for=lambda params, d: training_pairs(params["train_tasks"], d)[:2])
    monkeypatch.setattr(spec.TRAINERS.get("mopa"), "obj", two)
    assert _run_cli("mopa", "--data-dir", str(shared_dir / "data"), "--out", str(tmp_path / "dir"), *ARGS,
                    "--stop-after-steps", "3") == 0
    assert _run_cli("mopa", "--pack", str(small_pack), "--out", str(tmp_path / "pack"), *ARGS,
                    "--stop-after-steps", "3") == 0
    a, b = _state(tmp_path / "dir" / "checkpoint.pt"), _state(tmp_path / "pack" / "checkpoint.pt")
    assert a["data"] == b["data"] and _equal(a["model"], b["model"])
    prov = json.loads((tmp_path / "pack" / "provenance.json").read_text())
    assert prov["data"]["pack_sha256"] == read_pack(small_pack).sha256 and prov["data"]["pack_max_pairs"] == 2


# --------------------------------------------------------------------------- exact resume
def test_n_plus_n_resumed_steps_equal_2n_steps_bit_for_bit(small_pack, tmp_path):
    """The paper network: N steps, stop, resume (as on another machine) for N more == 2N uninterrupted."""
    n = 4
    common = ("mopa", "--pack", str(small_pack), *ARGS)
    assert _run_cli(*common, "--out", str(tmp_path / "full"), "--stop-after-steps", str(2 * n)) == 0
    assert _run_cli(*common, "--out", str(tmp_path / "split"), "--stop-after-steps", str(n)) == 0
    half = _state(tmp_path / "split" / "checkpoint.pt")
    assert half["step"] == n and half["optimiser"]["state"]
    assert all(v.device.type == "cpu" for v in half["model"].values())  # machine-independent checkpoint
    assert _run_cli(*common, "--out", str(tmp_path / "split"), "--stop-after-steps", str(2 * n), "--resume") == 0
    full, split = _state(tmp_path / "full" / "checkpoint.pt"), _state(tmp_path / "split" / "checkpoint.pt")
    assert full["step"] == split["step"] == 2 * n
    assert _equal(full["model"], split["model"])
    assert _equal(full["optimiser"], split["optimiser"])
    assert torch.equal(full["torch_rng"], split["torch_rng"])
    assert [r["loss_total"] for r in full["rows"]] == [r["loss_total"] for r in split["rows"]]


def test_resume_refuses_other_data(small_pack, tmp_path, shared_dir):
    from fusionbench.train.pack import write_pack

    one = write_pack(["mopa"], tmp_path / "one.fbpack", shared_dir / "data", max_pairs=1)
    common = ("--out", str(tmp_path / "run"), *ARGS)
    assert _run_cli("mopa", "--pack", str(small_pack), *common, "--stop-after-steps", "1") == 0
    with pytest.raises(ValueError, match="other training data"):
        _run_cli("mopa", "--pack", str(one), *common, "--stop-after-steps", "2", "--resume")


def test_stop_after_seconds_checkpoints_and_stops(small_pack, tmp_path):
    assert _run_cli("mopa", "--pack", str(small_pack), "--out", str(tmp_path / "r"), *ARGS, "--max-minutes", "0") == 0
    ck = _state(tmp_path / "r" / "checkpoint.pt")
    assert ck["step"] == 1 and not (tmp_path / "r" / "final.pth").exists()


# --------------------------------------------------------------------------- device guards
def test_cuda_requested_without_cuda_is_one_clear_error(small_pack, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit, match="--device cuda: .*sees no CUDA device"):  # before the data is loaded
        _run_cli("mopa", "--pack", str(small_pack), "--out", str(tmp_path / "r"), *ARGS, "--device", "cuda")
    assert not (tmp_path / "r").exists()


def test_config_validates_device_and_precision():
    assert TrainConfig().device == "cpu" and TrainConfig().precision == "fp32"
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp16")
    with pytest.raises(ValueError, match="device"):
        TrainConfig(device="tpu")
    assert "device" in TrainConfig.RESUMABLE_CHANGES and "precision" not in TrainConfig.RESUMABLE_CHANGES


def test_swinfusion_trains_from_the_pack_and_exports_ema(small_pack, tmp_path):
    assert _run_cli("swinfusion.ct", "--pack", str(small_pack), "--out", str(tmp_path / "sf"), "--patch-size", "32",
                    "--stride", "32", "--max-patches", "2", "--batch-size", "1", "--set", "ema_decay=0.5",
                    "--no-progress", "--export",
                    str(tmp_path / "w")) == 0
    pth = tmp_path / "w" / "mri_ct.pth"
    assert (tmp_path / "w" / "mri_ct.sha256").read_text().split()[0] == hashlib.sha256(pth.read_bytes()).hexdigest()
    prov = json.loads((tmp_path / "w" / "mri_ct.json").read_text())
    assert prov["schedule"]["steps"] == 2 and prov["finished"] and prov["method"] == "swinfusion.ct"
    from fusionbench.methods import swinfusion as sf

    sf.load_weights(sf.build_network(), pth)


# --------------------------------------------------------------------------- the device script
def test_device_script_smoke_training_on_cpu(small_pack, tmp_path):
    """scripts/device_train.sh as the device runs it (PYTHONPATH shim, no install), 20 steps on the CPU."""
    out = tmp_path / "out"
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("# smoke\nmopa --epochs 1 --patch-size 32 --stride 32 --max-patches 80 --batch-size 4\n"
                    "mopa --seed 1 --epochs 1 --patch-size 32 --stride 32 --max-patches 80 --batch-size 4 "
                    "--stop-after-steps 5\n"
                    "mopa.mask_only --seeds 1,2 --epochs 1 --patch-size 32 --stride 32 --max-patches 80 --batch-size 4 "
                    "--stop-after-steps 4\n")
    env = {**os.environ, "OUT": str(out), "DEVICE": "cpu", "PACK": str(small_pack), "PARALLEL": "3",
           "PYTHON": sys.executable, "FB_INSTALL": "shim", "OMP_NUM_THREADS": "1", "TRAIN_ARGS": "--lr 2e-4"}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "device_train.sh"), str(jobs)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    pth = out / "weights" / "mopa.pth"
    assert (out / "weights" / "mopa.sha256").read_text().split()[0] == hashlib.sha256(pth.read_bytes()).hexdigest()
    prov = json.loads((out / "weights" / "mopa.json").read_text())
    assert prov["schedule"] == {"epochs": 1, "patch_size": 32, "stride": 32, "batch_size": 4, "lr": 2e-4,
                                "steps": 20, "max_patches": 80}
    assert prov["finished"] and prov["steps_done"] == 20 and prov["seed"] == 0 and prov["torch"] == torch.__version__
    assert set(prov["final_losses"]) == {"total", "gradient", "intensity", "decouple"}
    for f in ("log.csv", "loss.png", "provenance.json", "checkpoint.pt", "final.pth"):
        assert (out / "runs" / "mopa" / f).is_file(), f
    log = (out / "runs" / "mopa" / "log.csv").read_text().splitlines()
    assert log[-1].startswith("20,")
    assert not (out / "weights" / "mopa.seed1.pth").exists()  # stopped at 5 of 20 steps: nothing exported
    assert json.loads((out / "runs" / "mopa.seed1" / "provenance.json").read_text())["steps_done"] == 5
    summary = (out / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("label,") and summary[1].startswith("mopa,20,20,True")
    assert summary[0].endswith("call_steps,call_loop_seconds,steady_steps_per_s,parallel,together")
    thr = json.loads((out / "throughput.json").read_text())  # what a device session reads to choose PARALLEL
    # four models in three processes (the --seeds line trains seeds 1 and 2 of mopa.mask_only in one)
    assert thr["jobs"] == 4 and thr["processes"] == 3 and thr["parallel"] == 3 and thr["failed"] == 0
    assert thr["steps_this_call"] == 25 + 2 * 4
    assert thr["per_model_steady_steps_per_s_median"] > 0 and thr["aggregate_steps_per_s"] > 0
    assert thr["remaining_steps"] == 15 + 2 * 16 and thr["remaining_seconds_at_aggregate"] > 0
    for label in ("mopa.mask_only.seed1", "mopa.mask_only.seed2"):
        together = json.loads((out / "runs" / label / "provenance.json").read_text())
        assert together["steps_done"] == 4 and together["call"]["perf"]["seeds_together"] == [1, 2]
    assert (out / "logs" / "mopa.mask_only.seeds1-2.log").is_file()
    assert (out / "throughput.csv").read_text().startswith("jobs,failed,parallel,")
    assert prov["call"]["steps"] == 20 and prov["call"]["steady_steps_per_s"] > 0
    assert "fusionbench from a PYTHONPATH shim" in proc.stderr
    build = __import__("fusionbench.methods.mopa", fromlist=["build_model"])
    build.build_model(build.preset_params("mopa")).load_state_dict(torch.load(pth, weights_only=True))


@pytest.mark.slow  # ~55 s on the shared CPU (two probes, three trainings, the script set-up twice)
def test_throughput_sweep_on_cpu(small_pack, tmp_path):
    """scripts/device_throughput.sh: PARALLEL 1 and 2 on two tiny jobs; the sweep table and the best level."""
    out = tmp_path / "out"
    jobs = tmp_path / "jobs.txt"
    tiny = "--epochs 1 --patch-size 32 --stride 32 --max-patches 80 --batch-size 4"
    jobs.write_text(f"mopa --seed 3 {tiny} --max-minutes 8\nmopa.mask_only --seed 4 {tiny}\n")
    env = {**os.environ, "OUT": str(out), "DEVICE": "cpu", "PACK": str(small_pack), "PYTHON": sys.executable,
           "FB_INSTALL": "shim", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "device_throughput.sh"), str(jobs), "1 2", "12"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = (out / "throughput_sweep.csv").read_text().splitlines()
    assert rows[0].startswith("jobs,failed,parallel,") and [r.split(",")[2] for r in rows[1:]] == ["1", "2"]
    best = int((out / "best_parallel.txt").read_text())
    assert best in (1, 2) and f"best PARALLEL={best}" in proc.stderr
    p2 = json.loads((out / "probe" / "p2" / "throughput.json").read_text())
    assert p2["steps_this_call"] == 24 and p2["remaining_steps"] == 2 * 20 - 24
    assert not list((out / "probe" / "p2" / "weights").glob("*.pth"))  # probes export nothing
    run = out / "probe" / "p2" / "runs" / "mopa.mask_only.seed4"
    assert (run / "provenance.json").is_file() and not (run / "checkpoint.pt").exists()  # nothing heavy comes back


@pytest.mark.parametrize("jobs", sorted((ROOT / "scripts" / "device_jobs").glob("*.txt")), ids=lambda p: p.stem)
def test_prepared_device_job_lists_parse(jobs):
    """Every job of the prepared device lists names a trainable variant and parses as `fusionbench train` options."""
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    labels, stems = [], []
    for line in jobs.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        args = parser.parse_args(words)
        trainer, params, _ = spec.get_trainer(args.method)
        labels.append(args.method if not args.seed else f"{args.method}.seed{args.seed}")
        seed = args.seed or 0
        stems.append((params.get("preset"), seed, cli.weights_stem(trainer.weights_name(params), seed)))
    assert labels and len(set(labels)) == len(labels)
    if jobs.stem == "issue19_table4":
        from fusionbench.method_registry import list_methods
        from fusionbench.methods.mopa import SEEDED, seeded_name, weights_file

        assert len(labels) == 27
        # each job's run label is the registered name that scores it, and its exported stem is the file that name loads
        assert set(labels) == {seeded_name(p, s) for p in SEEDED for s in (0, 1, 2)} <= set(list_methods("mopa*"))
        assert all(weights_file(preset, seed).name == f"{stem}.pth" for preset, seed, stem in stems)


def test_list_trainers_takes_the_registry_wildcards() -> None:
    """``list_trainers`` filters like ``list_methods``: fnmatch, case ignored, excludes."""
    assert spec.list_trainers("SWIN*") == ["swinfusion"]
    assert "swinfusion" not in spec.list_trainers(exclude_filters="swin*")
    assert spec.list_trainers("nothing*") == []
