"""Throughput of a batch of training jobs run side by side (``scripts/device_train.sh``, ``device_throughput.sh``).

``python -m fusionbench.train.throughput OUT --parallel P --wall-seconds W LABEL ...`` reads each job's
``OUT/runs/LABEL/provenance.json`` and writes

* ``OUT/summary.csv``: one row per job (steps, finished, steps/s, final loss, this call's steps and its
  steady-state wall rate);
* ``OUT/throughput.json`` and ``OUT/throughput.csv``: how many processes ran at once (``parallel`` =
  min(P, processes); a ``--seeds`` job is one process training several models, each its own row, so
  ``jobs`` counts models and ``processes`` the processes), the per-model steady-state rate (median and min over jobs, steps/s of wall time after
  each call's first :data:`fusionbench.train.progress.WARMUP_STEPS` steps), the aggregate rate (all jobs'
  steps of this call / the batch's wall seconds W, start-up included), the steady aggregate (the sum of
  the per-model steady rates; only when every process ran at once, processes ≤ P), and the time the remaining
  steps of the jobs need at the aggregate rate.

``--sweep DIR ...``: the probe folders of ``scripts/device_throughput.sh`` (one ``throughput.json``
each) → ``throughput_sweep.csv`` and the ``PARALLEL`` with the highest steady aggregate rate (short
probes are dominated by start-up, which a 30-minute run pays once; printed, and written to
``best_parallel.txt``).

The rates are those of this batch on this device: for the paper schedule of ``n`` models,
``T = n × steps / aggregate`` (docs/training.md).
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path
from typing import Any

SUMMARY_COLUMNS = ("label", "steps_done", "steps", "finished", "steps_per_s", "train_seconds", "final_total", "device",
                   "call_steps", "call_loop_seconds", "steady_steps_per_s", "parallel", "together")


def job_rows(out: Path, labels: list[str], parallel: int, since: float | None = None) -> list[dict[str, Any]]:
    """One summary row per job label (``device`` ``failed`` where the job left no provenance, or, given the
    batch's start ``since`` (seconds since the epoch), only one written before it: a resumed run folder brings
    its previous call's ``provenance.json``, which a job that failed this time never replaced)."""
    rows = []
    for label in labels:
        p = out / "runs" / label / "provenance.json"
        if not p.is_file() or (since is not None and p.stat().st_mtime < since):
            rows.append({"label": label, "device": "failed", "parallel": parallel})
            continue
        r = json.loads(p.read_text())
        call = r.get("call", {})
        rows.append({"label": label, "steps_done": r["steps_done"], "steps": r["schedule"]["steps"],
                     "finished": r["finished"], "steps_per_s": r["steps_per_s"], "train_seconds": r["train_seconds"],
                     "final_total": r["final_losses"].get("total", ""), "device": r["device"],
                     "call_steps": call.get("steps", ""), "call_loop_seconds": call.get("loop_seconds", ""),
                     "steady_steps_per_s": call.get("steady_steps_per_s", ""), "parallel": parallel,
                     "precision": r.get("precision", ""), "batch_size": r["schedule"]["batch_size"],
                     # models trained in the same process (fusionbench train --seeds): 1 for a job of its own
                     "together": len(call.get("perf", {}).get("seeds_together") or [label])})
    return rows


def throughput(rows: list[dict[str, Any]], parallel: int, wall_seconds: float) -> dict[str, Any]:
    """The batch's throughput record (see the module docstring)."""
    ok = [r for r in rows if r.get("device") != "failed"]
    steady = [float(r["steady_steps_per_s"]) for r in ok if r.get("steady_steps_per_s") not in ("", None)
              and float(r["steady_steps_per_s"]) > 0]
    call_steps = sum(int(r["call_steps"] or 0) for r in ok)
    remaining = sum(max(0, int(r["steps"]) - int(r["steps_done"])) for r in ok)
    aggregate = call_steps / wall_seconds if wall_seconds > 0 else 0.0
    # processes: a `--seeds` job trains several models (rows) in one process
    processes = round(sum(1.0 / int(r.get("together") or 1) for r in rows))
    return {
        "jobs": len(rows), "failed": len(rows) - len(ok), "parallel": min(parallel, processes),
        "parallel_setting": parallel, "processes": processes, "device": ok[0]["device"] if ok else "",
        "precision": ok[0].get("precision", "") if ok else "", "batch_size": ok[0].get("batch_size", "") if ok else "",
        "per_model_steady_steps_per_s_median": round(statistics.median(steady), 4) if steady else 0.0,
        "per_model_steady_steps_per_s_min": round(min(steady), 4) if steady else 0.0,
        "aggregate_steps_per_s": round(aggregate, 4),
        # every model's steady rate summed: the batch's rate once start-up is paid (when all jobs ran at once)
        "aggregate_steady_steps_per_s": round(sum(steady), 4) if processes <= parallel else None,
        "steps_this_call": call_steps, "wall_seconds": round(wall_seconds, 1),
        "remaining_steps": remaining,
        "remaining_seconds_at_aggregate": round(remaining / aggregate, 1) if aggregate > 0 else None,
    }


def write_batch(out: Path, labels: list[str], parallel: int, wall_seconds: float,
                since: float | None = None) -> dict[str, Any]:
    """Write ``summary.csv``, ``throughput.json`` and ``throughput.csv`` under ``out``; returns the record
    (``since``: as :func:`job_rows`)."""
    rows = job_rows(out, labels, parallel, since)
    with open(out / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, SUMMARY_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    record = throughput(rows, parallel, wall_seconds)
    (out / "throughput.json").write_text(json.dumps(record, indent=2) + "\n")
    with open(out / "throughput.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, list(record))
        writer.writeheader()
        writer.writerow(record)
    return record


def write_sweep(out: Path, probes: list[Path]) -> int:
    """``throughput_sweep.csv`` from the probes' ``throughput.json``; returns (and writes) the best ``parallel``."""
    records = [json.loads((p / "throughput.json").read_text()) for p in probes if (p / "throughput.json").is_file()]
    records = [r for r in records if not r["failed"]]
    if not records:
        raise SystemExit("throughput sweep: no probe finished without failures")
    with open(out / "throughput_sweep.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    best = max(records, key=lambda r: r["aggregate_steady_steps_per_s"] or r["aggregate_steps_per_s"])["parallel"]
    (out / "best_parallel.txt").write_text(f"{best}\n")
    return best


def main(argv: list[str] | None = None) -> int:
    """``python -m fusionbench.train.throughput``: write the batch's summary and throughput files (with
    ``--sweep``: the sweep CSV instead); returns 0."""
    parser = argparse.ArgumentParser(prog="python -m fusionbench.train.throughput", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("labels", nargs="*")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--wall-seconds", type=float, default=0.0)
    parser.add_argument("--since", type=float, default=None, metavar="EPOCH_SECONDS",
                        help="the batch's start: a provenance.json older than this is a failed job's stale one")
    parser.add_argument("--sweep", nargs="+", type=Path, default=None, metavar="PROBE_DIR")
    args = parser.parse_intermixed_args(argv)
    if args.sweep:
        print(write_sweep(args.out, args.sweep))
        return 0
    record = write_batch(args.out, args.labels, args.parallel, args.wall_seconds, args.since)
    print(json.dumps(record), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
