"""fusionbench.train.throughput: per-job summary, batch throughput and the PARALLEL sweep (no training)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fusionbench.train import throughput as tp


def _job(out: Path, label: str, *, done: int, steps: int, call: int, steady: float) -> None:
    run = out / "runs" / label
    run.mkdir(parents=True)
    (run / "provenance.json").write_text(json.dumps({
        "steps_done": done, "schedule": {"steps": steps, "batch_size": 32}, "finished": done >= steps,
        "steps_per_s": steady, "train_seconds": 1.0, "final_losses": {"total": 0.5}, "device": "NVIDIA H200",
        "precision": "fp32", "call": {"steps": call, "loop_seconds": call / steady, "steady_steps_per_s": steady}}))


def _batch(out: Path, parallel: int, steady: list[float], wall: float, lost: bool = False) -> dict:
    for i, r in enumerate(steady):
        _job(out, f"m{i}", done=100, steps=1000, call=100, steady=r)
    return tp.write_batch(out, [f"m{i}" for i in range(len(steady))] + ["lost"] * lost, parallel, wall)


def test_batch_record_and_summary(tmp_path):
    rec = _batch(tmp_path, 4, [2.0, 3.0, 4.0], wall=60.0, lost=True)
    assert rec["jobs"] == 4 and rec["failed"] == 1 and rec["parallel"] == 4 and rec["device"] == "NVIDIA H200"
    assert rec["per_model_steady_steps_per_s_median"] == 3.0 and rec["per_model_steady_steps_per_s_min"] == 2.0
    assert rec["aggregate_steps_per_s"] == 5.0 and rec["aggregate_steady_steps_per_s"] == 9.0  # 300 steps / 60 s
    assert rec["remaining_steps"] == 2700 and rec["remaining_seconds_at_aggregate"] == 540.0
    lines = (tmp_path / "summary.csv").read_text().splitlines()
    assert lines[0] == ",".join(tp.SUMMARY_COLUMNS) and lines[-1].startswith("lost,") and ",failed," in lines[-1]
    assert json.loads((tmp_path / "throughput.json").read_text()) == rec
    # more jobs than PARALLEL: they did not all run at once, so no steady aggregate is claimed
    assert _batch(tmp_path / "queue", 2, [2.0, 3.0, 4.0], wall=60.0)["aggregate_steady_steps_per_s"] is None


def test_a_probe_with_a_failed_job_is_not_chosen(tmp_path):
    _batch(tmp_path / "p1", 1, [5.0], wall=30.0)
    _batch(tmp_path / "p9", 9, [2.0] * 8, wall=100.0, lost=True)
    assert tp.write_sweep(tmp_path, [tmp_path / "p1", tmp_path / "p9"]) == 1


def test_sweep_picks_the_highest_steady_aggregate_and_runs_as_a_file(tmp_path):
    _batch(tmp_path / "p1", 1, [5.0], wall=30.0)
    _batch(tmp_path / "p3", 3, [4.0, 4.0, 3.5], wall=90.0)  # 11.5 steps/s once started
    _batch(tmp_path / "p9", 9, [1.0] * 9, wall=200.0)
    # the module imports only the standard library, so the device scripts run it as a file
    out = subprocess.run([sys.executable, tp.__file__, str(tmp_path), "--sweep", *(str(tmp_path / p) for p in
                                                                                    ("p1", "p3", "p9"))],
                         capture_output=True, text=True, cwd="/", check=True)
    assert out.stdout.strip() == "3" == (tmp_path / "best_parallel.txt").read_text().strip()
    rows = (tmp_path / "throughput_sweep.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("jobs,failed,parallel,")


def test_seeds_trained_together_count_as_one_process(tmp_path):
    # one `--seeds 0,1,2` job (three run folders, one process) beside a single job, PARALLEL 2
    for label, steady in (("m", 3.0), ("m.seed1", 3.0), ("m.seed2", 3.0), ("solo", 5.0)):
        _job(tmp_path, label, done=100, steps=1000, call=100, steady=steady)
        if label != "solo":
            prov = tmp_path / "runs" / label / "provenance.json"
            record = json.loads(prov.read_text())
            record["call"]["perf"] = {"seeds_together": [0, 1, 2]}
            prov.write_text(json.dumps(record))
    rec = tp.write_batch(tmp_path, ["m", "m.seed1", "m.seed2", "solo"], 2, 50.0)
    assert rec["jobs"] == 4 and rec["processes"] == 2 and rec["parallel"] == 2
    assert rec["aggregate_steady_steps_per_s"] == 14.0 and rec["aggregate_steps_per_s"] == 8.0
    assert tp.write_batch(tmp_path, ["m", "m.seed1", "m.seed2", "solo"], 1, 50.0)["aggregate_steady_steps_per_s"] is None


def test_a_job_that_failed_after_resuming_is_failed_not_its_previous_calls_numbers(tmp_path):
    """A resumed run folder brings the previous call's provenance.json; a job that fails this time (a refused
    resume, out of memory) never replaces it.  Before, the batch reported the old steps and rates as this call's,
    with 0 failures; given the batch's start (``--since``), an older provenance is a failed job."""
    import os
    import time

    _job(tmp_path, "mopa", done=7939, steps=33090, call=1731, steady=26.3)  # copied in from the last call
    old = time.time() - 3600
    os.utime(tmp_path / "runs" / "mopa" / "provenance.json", (old, old))
    _job(tmp_path, "ran_now", done=100, steps=1000, call=100, steady=2.0)
    since = time.time() - 60
    assert tp.write_batch(tmp_path, ["mopa", "ran_now"], 2, 60.0)["failed"] == 0  # what the script said before
    subprocess.run([sys.executable, tp.__file__, str(tmp_path), "mopa", "ran_now", "--parallel", "2",
                    "--wall-seconds", "60", "--since", str(since)], check=True, capture_output=True, cwd="/")
    record = json.loads((tmp_path / "throughput.json").read_text())
    assert record["failed"] == 1 and record["steps_this_call"] == 100
    assert (tmp_path / "summary.csv").read_text().splitlines()[1].startswith("mopa,") and ",failed," in \
        (tmp_path / "summary.csv").read_text().splitlines()[1]
