"""Time the performance options of a training step, several variants in one process.

    python -m fusionbench.train.probe mopa --pack packs/table4.fbpack --device cuda --precision tf32 \\
        --steps 60 --variants plain,channels_last,graph,graph+channels_last --out probe.json

Each variant is a ``+``-joined set of options (:data:`OPTIONS`: ``channels_last``,
``benchmark``, ``graph``; ``plain`` is none of them), optionally with ``seedsK``
(e.g. ``graph+seeds3``): K seeds trained together in one process
(:mod:`fusionbench.train.seeds`), recorded with ``models`` = K and
``model_steps_per_s`` = K × steps/s (what issue 19's 27 models need), and never
chosen as the flags of a single run.  For each, the probe
trains the method's model from its seed for ``--steps`` steps with the real
loop (:func:`fusionbench.train.loop.train`) into a throwaway folder that is
deleted afterwards (no run folder is touched), catches any failure, and
records:

* ``steps_per_s``: the median over the log rows after the first (the first
  covers CUDA start-up, cuDNN's benchmarking and the graph's warm-up and
  capture) of the row's steps/s; each row ends at a device synchronisation and
  no checkpoint falls inside the timed rows;
* ``final_loss``: the mean total loss of the last row, and ``rel_loss_diff``
  against ``plain`` (same initial weights, same batches): a variant whose loss
  drifts more than ``--loss-tolerance`` (default 5 %) from ``plain``'s is not
  chosen.  This is a sanity check of the step (a graph replaying a stale batch
  or a frozen random draw shows up here), not a proof of equality: TF32 and
  other cuDNN algorithms change the last bits of every step;
* ``perf``: the loop's record (e.g. ``cuda_graph_status``: a graph variant
  whose capture fell back to eager training is not chosen);
* ``host_syncs`` (CUDA only): the host-device synchronisations torch reported
  inside the steps (``torch.cuda.set_sync_debug_mode("warn")``; batch gather
  and step, not the loop's log read-backs and checkpoints): 0 means no step
  waits for the device (the graph's capture synchronises explicitly, which is
  not counted); one or more per step means something in the step does.

The method's data is read and prepared once; python and CUDA start once for
all variants.  ``--max-seconds`` bounds the whole probe: variants not started
by then are recorded as skipped.  Written: ``--out`` (JSON, default
``probe.json``), the same table as CSV beside it, and ``<stem>.flags`` (the
``fusionbench train`` flags of the fastest acceptable variant, one line, empty
for ``plain``).  Exit status 0 when at least one variant ran.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: variant word -> (TrainConfig field, fusionbench train flag)
OPTIONS = {"channels_last": ("channels_last", "--channels-last"),
           "benchmark": ("cudnn_benchmark", "--cudnn-benchmark"),
           "graph": ("cuda_graph", "--cuda-graph")}
#: the most promising first (a --max-seconds budget skips the last): plain is the reference of the loss check
DEFAULT_VARIANTS = ("plain,graph,graph+channels_last,graph+seeds3,channels_last,graph+benchmark,"
                    "graph+channels_last+benchmark,seeds3,benchmark,channels_last+benchmark")


def variant_seeds(variant: str) -> int:
    """K of a ``seedsK`` word in ``variant`` (1 when there is none)."""
    words = [w for w in variant.strip().split("+") if w.startswith("seeds")]
    if not words:
        return 1
    if len(words) > 1 or not words[0][5:].isdigit() or int(words[0][5:]) < 1:
        raise ValueError(f"bad seeds word in {variant!r}: use one seedsK with K >= 1, e.g. graph+seeds3")
    return int(words[0][5:])


def parse_variant(variant: str) -> dict[str, bool]:
    """TrainConfig overrides of a variant name, e.g. ``graph+channels_last`` (``plain``: all options off)."""
    words = [w for w in variant.strip().split("+") if w and w != "plain" and not w.startswith("seeds")]
    variant_seeds(variant)
    unknown = [w for w in words if w not in OPTIONS]
    if unknown:
        raise ValueError(f"unknown probe option(s) {unknown} in {variant!r}; known: plain, {', '.join(OPTIONS)}")
    return {field: word in words for word, (field, _) in OPTIONS.items()}


def variant_flags(variant: str) -> str:
    """The ``fusionbench train`` flags of a variant (``""`` for ``plain``)."""
    on = parse_variant(variant)
    return " ".join(flag for word, (field, flag) in OPTIONS.items() if on[field])


def _rate(log_csv: Path, batch_size: int) -> float:
    """Median steps/s over the log rows after the first (NaN when there are none)."""
    with open(log_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    rates = [float(r["patches_per_s"]) / batch_size for r in rows[1:] if float(r.get("patches_per_s") or 0) > 0]
    return statistics.median(rates) if rates else math.nan


def probe_variant(build_model: Any, loss_fn: Any, patches: Any, config: Any, variant: str, steps: int) -> dict:
    """Train ``steps`` steps of one variant in a throwaway folder; its record (see the module docstring)."""
    from .loop import train

    log_every = 10 if steps >= 40 else max(1, steps // 4)
    cfg = dataclasses.replace(config, **parse_variant(variant), stop_after_steps=steps, stop_after_seconds=None,
                              checkpoint_every_s=1e9, log_every=log_every, progress=False)
    k = variant_seeds(variant)
    record: dict[str, Any] = {"variant": variant, "flags": variant_flags(variant), "ok": False, "steps": 0,
                              "steps_per_s": math.nan, "final_loss": math.nan, "rel_loss_diff": math.nan,
                              "perf": {}, "host_syncs": None, "error": "", "seconds": 0.0, "models": k,
                              "model_steps_per_s": math.nan}
    tmp = Path(tempfile.mkdtemp(prefix="fb_probe_"))
    t0 = time.monotonic()
    try:
        if k > 1:  # seed 0 is plain's seed: its loss is compared with plain's like any variant's
            from .seeds import train_seeds

            configs = [dataclasses.replace(cfg, seed=cfg.seed + i) for i in range(k)]
            result = train_seeds(build_model, loss_fn, patches.images, configs,
                                 [tmp / ("run" if i == 0 else f"run{i}") for i in range(k)])[0]
        else:
            result = train(build_model, loss_fn, patches, cfg, tmp / "run", count_syncs=True)
        record["host_syncs"] = result.perf.get("host_syncs_in_steps")
        record.update(steps=result.steps, perf=result.perf, final_loss=float(result.final_terms.get("total", math.nan)),
                      steps_per_s=_rate(tmp / "run" / "log.csv", cfg.batch_size))
        if math.isnan(record["steps_per_s"]):
            record["steps_per_s"] = result.steady_steps_per_s
        record["model_steps_per_s"] = k * record["steps_per_s"]
        record["ok"] = True
    except Exception as exc:  # noqa: BLE001 - a failing variant is a result, not the end of the probe
        record["error"] = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:300]}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        _release(config.device)
    record["seconds"] = round(time.monotonic() - t0, 2)
    return record


def _release(device: str) -> None:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


def choose(records: list[dict], tolerance: float = 0.05) -> dict | None:
    """Mark each record ``acceptable`` and return the fastest acceptable one (None: none).

    Acceptable: it ran, its steps/s is finite, a graph variant really replayed a
    graph, and its final loss is within ``tolerance`` (relative) of ``plain``'s
    when ``plain`` ran.
    """
    plain = next((r for r in records if r["variant"] == "plain" and r["ok"]), None)
    for r in records:
        if plain is not None and r["ok"] and plain["final_loss"] and not math.isnan(plain["final_loss"]):
            r["rel_loss_diff"] = abs(r["final_loss"] - plain["final_loss"]) / abs(plain["final_loss"])
        graph_ok = not parse_variant(r["variant"])["cuda_graph"] or r["perf"].get("cuda_graph_steps", 0) > 0
        loss_ok = plain is None or (not math.isnan(r["rel_loss_diff"]) and r["rel_loss_diff"] <= tolerance)
        # a rate of 0 (no timed step: a schedule shorter than the probe's warm-up) measures nothing
        r["acceptable"] = bool(r["ok"] and math.isfinite(r["steps_per_s"]) and r["steps_per_s"] > 0 and graph_ok
                               and loss_ok)
    # K seeds together are measured for issue 19's plan; their flags cannot continue a single run
    good = [r for r in records if r["acceptable"] and variant_seeds(r["variant"]) == 1]
    return max(good, key=lambda r: r["steps_per_s"]) if good else None


def write_results(records: list[dict], best: dict | None, head: dict, out: Path) -> None:
    """``out`` (JSON), ``out`` with ``.csv`` (one row per variant) and ``.flags`` (the best variant's flags)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    plain = next((r for r in records if r["variant"] == "plain" and r.get("acceptable")), None)
    summary = None
    if best is not None:
        summary = {"variant": best["variant"], "flags": best["flags"], "steps_per_s": best["steps_per_s"],
                   "speedup_vs_plain": (best["steps_per_s"] / plain["steps_per_s"]) if plain and plain["steps_per_s"] > 0
                   else None}
    out.write_text(json.dumps({**head, "variants": records, "best": summary}, indent=2, default=str) + "\n")
    cols = ["variant", "flags", "ok", "acceptable", "steps", "steps_per_s", "models", "model_steps_per_s",
            "final_loss", "rel_loss_diff", "cuda_graph_status", "host_syncs", "seconds", "error"]
    with open(out.with_suffix(".csv"), "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        for r in records:
            writer.writerow({**r, "cuda_graph_status": r["perf"].get("cuda_graph_status", "")})
    out.with_suffix(".flags").write_text((best["flags"] if best else "") + "\n")


def main(argv: list[str] | None = None) -> int:
    """``python -m fusionbench.train.probe``: train each variant for ``--steps`` steps, write the records and
    the best variant to ``--out``; returns 0 when at least one variant ran, else 1."""
    from . import cli

    parser = argparse.ArgumentParser(prog="python -m fusionbench.train.probe", description=__doc__.splitlines()[0])
    cli.add_arguments(parser)  # the same schedule/data options as `fusionbench train` (--out: the JSON file)
    parser.add_argument("--steps", type=int, default=60, help="steps per variant (default 60)")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"comma-separated (default {DEFAULT_VARIANTS})")
    parser.add_argument("--max-seconds", type=float, default=None, help="start no variant after this many seconds")
    parser.add_argument("--loss-tolerance", type=float, default=0.05,
                        help="largest relative difference of a variant's final loss from plain's (default 0.05)")
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        parse_variant(v)  # unknown words: one clear error before any work
    from .data import prepare_pairs
    from .patches import PatchSet

    spec, params, name, config = cli.resolve(args)
    pairs, data = cli.training_pairs(args, spec, params, name)
    images = prepare_pairs(pairs, spec.prepare)
    patches = PatchSet(images, config.patch_size, config.stride, config.max_patches, config.seed)
    loss_fn = spec.loss_for(params)
    print(f"probe {name}: {len(patches)} patches, {len(variants)} variants of {args.steps} steps, "
          f"{config.device} {config.precision} (data ready after {time.monotonic() - t0:.1f} s)", file=sys.stderr)
    records = []
    for variant in variants:
        if args.max_seconds is not None and time.monotonic() - t0 > args.max_seconds:
            records.append({"variant": variant, "flags": variant_flags(variant), "ok": False, "steps": 0,
                            "steps_per_s": math.nan, "final_loss": math.nan, "rel_loss_diff": math.nan, "perf": {},
                            "error": f"skipped: {args.max_seconds:g} s budget spent", "seconds": 0.0,
                            "models": variant_seeds(variant), "model_steps_per_s": math.nan})
        else:
            records.append(probe_variant(lambda: spec.build_model(params), loss_fn, patches, config, variant,
                                         args.steps))
        r = records[-1]
        print(f"probe {variant}: {r['steps_per_s']:.2f} steps/s ({r['model_steps_per_s']:.2f} model steps/s), loss {r['final_loss']:.4g}, "
              f"{r['perf'].get('cuda_graph_status', '')} {r['error']} ({r['seconds']:.1f} s)", file=sys.stderr)
    best = choose(records, args.loss_tolerance)
    import torch

    head = {"method": name, "device": cli.device_name(config.device), "torch": torch.__version__,
            "precision": config.precision, "batch_size": config.batch_size, "patch_size": config.patch_size,
            "steps": args.steps, "loss_tolerance": args.loss_tolerance, "data": data,
            "seconds": round(time.monotonic() - t0, 1)}
    out = Path(args.out or "probe.json")
    write_results(records, best, head, out)
    print(f"probe best: {best['variant']} ({best['steps_per_s']:.2f} steps/s, flags '{best['flags']}')"
          if best else "probe best: none", file=sys.stderr)
    return 0 if any(r["ok"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
