"""scripts/device_session.sh as the device runs it, on the CPU: probe, mopa resumed with the chosen flags, step 3."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = "--epochs 1 --patch-size 32 --stride 32 --max-patches 40 --batch-size 4"


@pytest.mark.slow  # ≈ 40-60 s on the shared 2-core CPU: five python start-ups, a probe and three trainings
def test_device_session_on_cpu(small_pack, tmp_path):
    runs_from = tmp_path / "runs_from"
    # an earlier session's mopa run (3 of 10 steps) to continue
    subprocess.run([sys.executable, "-m", "fusionbench.train", "mopa", "--pack", str(small_pack), *TINY.split(),
                    "--stop-after-steps", "3", "--no-progress", "--out", str(runs_from / "mopa")],
                   check=True, capture_output=True, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"})
    out, work = tmp_path / "out", tmp_path / "tmp"
    work.mkdir()
    env = {**os.environ, "OUT": str(out), "TMPDIR": str(work), "DEVICE": "cpu", "PYTHON": sys.executable,
           "FB_INSTALL": "shim", "OMP_NUM_THREADS": "1", "PACK_MOPA": str(small_pack), "PACK_SWIN": str(small_pack),
           "RUNS_FROM": str(runs_from), "EXTRA": f"{TINY} --stop-after-steps 6", "PROBE_STEPS": "4",
           "PROBE_VARIANTS": "plain,channels_last,graph", "MIN_REST_S": "0", "T4_PRESETS": "mask_only", "T4_SEEDS": "0,1",
           "SWIN_JOBS": "", "SNAPSHOT_S": "1"}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "device_session.sh")], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    session = (out / "session.txt").read_text()
    assert "continuing mopa from" in session and "3 of 10 steps done, precision fp32 (kept)" in session
    assert "variant,flags,ok,acceptable," in session  # the probe's table
    # the final packing replaced the 1 s snapshots of mopa's run (none left half-written)
    assert sorted(p.name for p in out.iterdir()) == ["mopa.tgz", "others.tgz", "session.txt"]
    unpacked = tmp_path / "unpacked"
    for name in ("mopa.tgz", "others.tgz"):
        with tarfile.open(out / name) as tar:
            tar.extractall(unpacked, filter="data")
    probe = json.loads((unpacked / "probe" / "probe.json").read_text())
    recs = {r["variant"]: r for r in probe["variants"]}
    assert set(recs) == {"plain", "channels_last", "graph"} and recs["plain"]["ok"] and recs["plain"]["steps"] == 4
    assert not recs["graph"]["acceptable"] and probe["best"]["variant"] in ("plain", "channels_last")
    flags = probe["best"]["flags"]
    assert f"performance flags for mopa and the Table 4 presets: '{flags}'" in session
    prov = json.loads((unpacked / "mopa" / "runs" / "mopa" / "provenance.json").read_text())
    assert prov["steps_done"] == 6 and prov["call"]["steps"] == 3 and prov["precision"] == "fp32"
    assert prov["call"]["perf"]["channels_last"] is (flags == "--channels-last")
    for label in ("mopa.mask_only", "mopa.mask_only.seed1"):  # T4_SEEDS=0,1: both seeds in one process
        t4 = json.loads((unpacked / "issue19" / "runs" / label / "provenance.json").read_text())
        assert t4["steps_done"] == 6 and t4["call"]["perf"]["seeds_together"] == [0, 1]
        assert t4["call"]["perf"]["channels_last"] is False  # not with seeds together, whatever the probe chose
    assert not list((unpacked / "probe").glob("**/checkpoint.pt"))  # the probe's runs were thrown away
