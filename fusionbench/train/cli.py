"""``fusionbench train <method>[.<variant>]``: train a registered trainable method (``train pack``: pack its data).

The defaults are the method's paper schedule (for ``mopa``: 180 Harvard
training pairs, 120×120 patches at stride 10, 30 epochs, batch 32, Adam 1e-4).
Every schedule field can be overridden; ``--resume`` continues the run in
``--out`` (also on another machine; no checkpoint there is an error, while
``--resume-or-start`` then starts the run); ``--stop-after-steps N`` ends a call
after N steps in total; ``--device cuda`` trains on the GPU (fp32 unless
``--precision tf32|bf16``; performance options ``--channels-last``,
``--cudnn-benchmark``, ``--cuda-graph``, which a resumed run may change);
``--pack FILE`` reads the training set from a
pack instead of the data folder; ``--export DIR`` copies the final weights to
``DIR/<name>.pth`` with a ``<name>.sha256`` sidecar and a ``<name>.json``
provenance file beside it.

``fusionbench train pack NAME [NAME ...] [--out FILE]`` writes the training
sets of those variants into one compressed file (default
``packs/training.fbpack``, with ``training.sha256``).
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``train`` sub-command's arguments to ``parser``."""
    parser.add_argument("method", help="trainable method or variant, e.g. mopa or mopa.mask_only; or `pack`")
    parser.add_argument("names", nargs="*", help="`train pack` only: the variants whose training sets to pack")
    parser.add_argument("--data-dir", default=None, help="dataset root (default: the datasets' own default)")
    parser.add_argument("--pack", default=None, metavar="FILE",
                        help="read the training set from this pack (fusionbench train pack) instead of --data-dir")
    parser.add_argument("--out", default=None,
                        help="run folder (default: train_runs/<method>); for `train pack`: the pack file")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its checkpoint (an error when there is none)")
    parser.add_argument("--resume-or-start", action="store_true",
                        help="continue the run in --out if it holds a checkpoint, else start it at step 0 "
                             "(job scripts that run the same line every session)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--patch-size", type=int, default=None)
    parser.add_argument("--stride", type=int, default=None)
    parser.add_argument("--max-patches", type=int, default=None, help="train on a seeded random subset of patches")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--seeds", default=None, metavar="S1,S2,...",
                        help="train these seeds together in one process (vmap over the stacked models; "
                             "--out is then the parent of one run folder per seed, default train_runs)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default 1)")
    parser.add_argument("--device", default=None, help="cpu (default) or cuda[:N]")
    parser.add_argument("--precision", default=None, choices=("fp32", "tf32", "bf16"),
                        help="fp32 (default), or tf32 / bf16 on CUDA (faster, not bit-comparable with fp32)")
    parser.add_argument("--channels-last", action="store_true", default=None,
                        help="performance: model and batches in channels-last memory format")
    parser.add_argument("--cudnn-benchmark", action="store_true", default=None,
                        help="performance: cuDNN times its deterministic algorithms and keeps the fastest "
                             "(CUDA; runs may then differ in the last bits)")
    parser.add_argument("--cuda-graph", action="store_true", default=None,
                        help="performance: replay each full-size step as a captured CUDA graph (CUDA only; "
                             "one line and eager training where it cannot)")
    parser.add_argument("--checkpoint-minutes", type=float, default=None)
    parser.add_argument("--stop-after-steps", type=int, default=None,
                        help="stop after this many steps in total (resume later, here or on another machine)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="end this call after that much wall time, with a checkpoint (resume later)")
    parser.add_argument("--max-pairs", type=int, default=None,
                        help="`train pack` only: keep the first N pairs of each variant (smoke tests; recorded)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a model parameter of the method (repeatable; value parsed as Python literal)")
    parser.add_argument("--export", default=None, metavar="DIR",
                        help="write the final weights to DIR/<name>.pth (+ <name>.sha256, <name>.json provenance)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


_NOT_LITERAL = object()  # what _parse_literal returns for text that is not a Python literal


def _parse_literal(text: str) -> Any:
    """``text`` as a Python literal, or ``_NOT_LITERAL``."""
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _NOT_LITERAL


def _set_value_problem(parsed: Any, default: Any, known: bool) -> str | None:
    """Why ``parsed`` (a literal, or _NOT_LITERAL for bare text) cannot replace a parameter whose default is
    ``default``; None if it can.

    The type must be the default's (an int may stand for a float); a parameter without a registered default
    (``known`` False, e.g. SwinFusion's ``ema_decay``) takes any Python literal but not bare text."""
    import math

    if parsed is _NOT_LITERAL:
        if known and (default is None or isinstance(default, str)):
            return None  # bare text for a text parameter (--set attention=cascade)
        return "not a number or Python literal" if not known else f"expected {_kind(default)}"
    if not known or default is None:
        return None
    if isinstance(default, bool):
        ok = isinstance(parsed, bool)
    elif isinstance(default, int):
        ok = isinstance(parsed, int) and not isinstance(parsed, bool)
    elif isinstance(default, float):
        ok = isinstance(parsed, (int, float)) and not isinstance(parsed, bool) and math.isfinite(parsed)
    else:
        sequences = isinstance(default, (list, tuple)) and isinstance(parsed, (list, tuple))
        ok = isinstance(parsed, type(default)) or sequences
    return None if ok else f"expected {_kind(default)}"


def _kind(default: Any) -> str:
    if isinstance(default, bool):
        return "True or False"
    if isinstance(default, int):
        return f"an integer (default {default})"
    if isinstance(default, float):
        return f"a finite number (default {default})"
    if isinstance(default, str):
        return f"text (default {default!r})"
    return f"a {type(default).__name__} (default {default!r})"


def parse_set(items: list[str], name: str, allowed: set[str], defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as ``{key: literal value}``; a clear ``SystemExit`` for a malformed item, a
    key that ``name`` does not have (a typo would otherwise train the default silently), or a value of
    another type than the parameter's default in ``defaults`` (``--set width=abc`` must not reach the model)."""
    out: dict[str, Any] = {}
    defaults = defaults or {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key or not value.strip():
            raise SystemExit(f"fusionbench train: --set {item!r}: expected KEY=VALUE (e.g. --set width=6)")
        if key not in allowed:
            raise SystemExit(f"fusionbench train {name}: --set {key}: not a parameter of {name}; its parameters: "
                             f"{', '.join(sorted(allowed))}")
        parsed = _parse_literal(value)
        problem = _set_value_problem(parsed, defaults.get(key), key in defaults)
        if problem:
            raise SystemExit(f"fusionbench train {name}: --set {key}={value}: {problem}")
        out[key] = value if parsed is _NOT_LITERAL else parsed
    return out


def export_weights(final: Path, dest_dir: Path, name: str) -> Path:
    """Copy ``final`` to ``dest_dir/<name>.pth`` (atomically: an interrupted export leaves the previous file) and
    write its sha256 to the sidecar ``<name>.sha256``."""
    from fusionbench.io import atomic_write
    from fusionbench.weights import write_sidecar

    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{name}.pth"
    with atomic_write(dest) as tmp:
        shutil.copyfile(final, tmp)
    write_sidecar(dest)
    return dest


def check_folder_option(method: str, option: str, folder: Path) -> None:
    """``--out`` / ``--export``: a folder that exists or can be made, and can be written to; else one line naming
    the option, before any data is loaded (a read-only ``--export`` used to fail after the whole schedule).
    Nothing is created here (:func:`fusionbench.io.writable_folder` with ``create=False``)."""
    from fusionbench.io import writable_folder

    try:
        writable_folder(folder, option, create=False)
    except ValueError as exc:
        raise SystemExit(f"fusionbench train {method}: {exc}") from None


def weights_stem(name: str, seed: int) -> str:
    """File stem of exported weights: ``<name>`` for seed 0, ``<name>.seed<N>`` for the other seeds."""
    from .spec import seed_variant

    return seed_variant(name, seed)


def device_name(device: str) -> str:
    """A human-readable name of the training device (GPU model, or the CPU)."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({platform.processor() or platform.machine()})"


def provenance(config: Any, result: Any, *, name: str, params: dict, pairs: int, wall_s: float,
               data: dict[str, Any]) -> dict[str, Any]:
    """The provenance record of a run (the format of ``methods/mopa/weights/<preset>.json``)."""
    import torch

    return {
        "method": name,
        "schedule": {"epochs": config.epochs, "patch_size": config.patch_size, "stride": config.stride,
                     "batch_size": config.batch_size, "lr": config.lr, "steps": result.total_steps,
                     "max_patches": config.max_patches},
        "steps_done": result.steps, "finished": result.finished,
        # what this call computed in (tf32 has no effect on the CPU); the schedule's own when that differs
        "device": device_name(config.device), "precision": effective_precision(config),
        **({} if effective_precision(config) == config.precision else {"precision_requested": config.precision}),
        "threads": config.threads,
        "torch": torch.__version__, "wall_seconds": round(wall_s, 1), "train_seconds": round(result.elapsed_s, 1),
        "steps_per_s": round(result.steps_per_s, 3), "final_losses": result.final_terms, "seed": config.seed,
        "pairs": pairs, "data": data, "params": params,
        # this call alone (throughput of a device session; several processes may have shared the device)
        "call": {"steps": result.call_steps, "loop_seconds": round(result.call_seconds, 2),
                 "steady_steps_per_s": round(result.steady_steps_per_s, 4), "perf": result.perf},
    }


# What `train pack` reads; every other option is for training, and is refused beside it (it was ignored).
PACK_OPTIONS = frozenset({"method", "names", "data_dir", "out", "max_pairs", "no_progress"})


def options_given(args: argparse.Namespace, keep: frozenset[str]) -> list[str]:
    """The flags (``--epochs``) of the ``train`` options in ``args`` that differ from their defaults, other than
    those named in ``keep`` (each option's flag is its name with ``-`` for ``_``)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    defaults = vars(parser.parse_args(["method"]))  # the defaults as parsing makes them (string defaults converted)
    return [f"--{dest.replace('_', '-')}" for dest, default in defaults.items()
            if dest not in keep and getattr(args, dest, default) != default]


def refuse_empty(command: str, args: argparse.Namespace, options: tuple[str, ...]) -> None:
    """One line when one of ``options`` (``out``, ``export``, ``pack``) was given empty: ``--export ""`` exported
    nothing and said nothing, ``train pack --out ""`` wrote the default pack."""
    for dest in options:
        value = getattr(args, dest, None)
        if value is not None and not value.strip():
            raise SystemExit(f"fusionbench train {command}: --{dest} {value!r} names no file or folder")


def _pack(args: argparse.Namespace) -> int:
    from fusionbench.weights import read_sidecar

    from .pack import DEFAULT_DIR, check_pack_path, write_pack

    stray = options_given(args, PACK_OPTIONS)
    if stray:
        raise SystemExit(f"fusionbench train pack: {', '.join(stray)}: not options of `train pack` (it writes the "
                         "training pairs only; give the training options when you train from the pack)")
    refuse_empty("pack", args, ("out",))
    if not args.names:
        raise SystemExit("fusionbench train pack: name at least one trainable variant, e.g. `train pack mopa`")
    if args.max_pairs is not None and args.max_pairs < 1:
        raise SystemExit(f"fusionbench train pack: --max-pairs {args.max_pairs}: must be >= 1")
    target = Path(args.out) if args.out else DEFAULT_DIR / "training.fbpack"
    try:
        check_pack_path(target)
    except ValueError as exc:
        raise SystemExit(f"fusionbench train pack: --out {exc}") from None
    t0 = time.time()
    out = write_pack(args.names, target, args.data_dir, max_pairs=args.max_pairs)
    digest = read_sidecar(out)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.2f} MiB, sha256 {digest}) in {time.time() - t0:.0f} s",
          file=sys.stderr)
    return 0


def resolve(args: argparse.Namespace) -> tuple[Any, dict[str, Any], str, Any]:
    """``(spec, params, name, config)`` of parsed ``train`` arguments (a seed variant's seed moved into ``args``)."""
    from .spec import get_trainer, split_seed

    spec, params, name = get_trainer(args.method)
    registered = dict(params)
    if "seed" in params:  # a registered seed variant (mopa.no_mask.seed1): the same run as `NAME --seed N`
        seed = int(params.pop("seed"))
        if args.seed is not None and args.seed != seed:
            raise SystemExit(f"fusionbench train {args.method}: --seed {args.seed} contradicts the variant's "
                             f"seed {seed}")
        args.seed, name = seed, split_seed(name)[0]
    params.update(parse_set(args.set, name, allowed=set(params) | set(spec.extra_params), defaults=params))
    registered.pop("seed", None)
    check_set_identity(args, spec, registered, params, name)
    check_options(args)
    ckpt_s = None if args.checkpoint_minutes is None else 60.0 * args.checkpoint_minutes
    config = spec.schedule(params).with_overrides(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patch_size=args.patch_size, stride=args.stride,
        max_patches=args.max_patches, seed=args.seed, threads=args.threads, checkpoint_every_s=ckpt_s,
        stop_after_steps=args.stop_after_steps, progress=False if args.no_progress else None, device=args.device,
        precision=args.precision, stop_after_seconds=None if args.max_minutes is None else 60.0 * args.max_minutes,
        channels_last=args.channels_last, cudnn_benchmark=args.cudnn_benchmark, cuda_graph=args.cuda_graph)
    return spec, params, name, config


def check_set_identity(args: argparse.Namespace, spec: Any, registered: dict[str, Any], params: dict[str, Any],
                       name: str) -> None:
    """``--set`` must not rename the weights (``--set preset=mask_only`` exported mopa's network as mask_only.pth),
    and ``--export`` must not write a registered variant's file from other params (``--set width=6 --export``
    replaced mopa.pth by a network ``mopa`` cannot load)."""
    before, after = spec.weights_name(registered), spec.weights_name(params)
    if before != after:
        raise SystemExit(f"fusionbench train {name}: --set: renames the weights from {before!r} to {after!r}; train "
                         f"the registered variant instead (`fusionbench list methods '{name.split('.')[0]}*'`)")
    changed = [k for k in registered if params.get(k) != registered[k]]
    if args.export and changed:
        k = changed[0]
        raise SystemExit(f"fusionbench train {name}: --export with --set {k}={params[k]!r}: the weights would be "
                         f"written as {before}.pth, the file of the registered {name} ({k}={registered[k]!r}); "
                         "train without --export and copy final.pth from --out yourself")


#: ``fusionbench train`` integer options checked before anything is loaded: (attribute, option, lowest)
_NUMERIC_OPTIONS = (("epochs", "--epochs", 1), ("batch_size", "--batch-size", 1), ("patch_size", "--patch-size", 1),
                    ("stride", "--stride", 1), ("max_patches", "--max-patches", 1), ("seed", "--seed", 0),
                    ("threads", "--threads", 1), ("stop_after_steps", "--stop-after-steps", 1))


def check_options(args: argparse.Namespace) -> None:
    """A ``SystemExit`` naming the option for a value ``fusionbench train`` cannot use, before any data is loaded."""
    import math
    import re

    def fail(option: str, value: Any, why: str) -> None:
        raise SystemExit(f"fusionbench train {args.method}: {option} {value}: {why}")

    for attr, option, lowest in _NUMERIC_OPTIONS:
        value = getattr(args, attr, None)
        if value is not None and value < lowest:
            fail(option, value, f"must be an integer >= {lowest}")
    if args.seed is not None and args.seed >= 2**64:  # torch.manual_seed's range
        fail("--seed", args.seed, "must be < 2**64")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        fail("--lr", args.lr, "must be a finite number > 0")
    if args.checkpoint_minutes is not None and not args.checkpoint_minutes > 0:
        fail("--checkpoint-minutes", args.checkpoint_minutes, "must be > 0 (minutes between checkpoints)")
    if args.max_minutes is not None and not args.max_minutes >= 0:
        fail("--max-minutes", args.max_minutes, "must be >= 0 (minutes of this call)")
    if args.device is not None and not re.fullmatch(r"cpu|cuda(:\d+)?", args.device):
        fail("--device", args.device, "expected cpu, cuda or cuda:N")
    if getattr(args, "resume", False) and getattr(args, "resume_or_start", False):
        raise SystemExit(f"fusionbench train {args.method}: give --resume or --resume-or-start, not both")


def check_device(config: Any) -> None:
    """``--device cuda[:N]`` where torch sees no such device: one line naming the option, before data is loaded."""
    if not config.device.startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise SystemExit(f"fusionbench train: --device {config.device}: torch {torch.__version__} sees no CUDA "
                         "device here (train with --device cpu, or on a machine with a GPU)")
    index = torch.device(config.device).index
    if index is not None and index >= torch.cuda.device_count():
        raise SystemExit(f"fusionbench train: --device {config.device}: torch sees {torch.cuda.device_count()} CUDA "
                         f"device(s) (cuda:0 to cuda:{torch.cuda.device_count() - 1})")


def effective_precision(config: Any) -> str:
    """The precision a call with ``config`` computes in: ``tf32`` is a CUDA mode, so fp32 on the CPU."""
    return "fp32" if config.precision == "tf32" and not config.device.startswith("cuda") else config.precision


def resume_mode(args: argparse.Namespace) -> bool | str:
    """``train``'s ``resume`` argument for ``--resume`` (True) / ``--resume-or-start`` / neither (False)."""
    from .checkpoint import RESUME_OR_START

    return RESUME_OR_START if getattr(args, "resume_or_start", False) else bool(args.resume)


def check_run_folders_early(run_dirs: list[Path], resume: bool | str,
                            meta: dict[str, Any] | None = None) -> dict[Path, dict[str, Any]]:
    """The loop's run-folder rules (:func:`~fusionbench.train.checkpoint.check_run_folders`) before the data is loaded;
    a checkpoint to be continued is read once here too, so a corrupt one, or one of another run (``meta``: method
    and params), is one line before the data is loaded. Returns ``{checkpoint path: its schedule}`` of the
    checkpoints to be continued (:func:`schedule_from_checkpoint`)."""
    from .checkpoint import check_run_folders, check_same_run, load_checkpoint

    paths = [d / "checkpoint.pt" for d in run_dirs]
    check_run_folders(paths, resume)
    saved = {}
    if resume:
        for p in paths:
            if p.is_file():
                ckpt = load_checkpoint(p)
                check_same_run(ckpt, meta, p)
                saved[p] = dict(ckpt["config"])
    return saved


#: the schedule options a resumed run takes from its checkpoint when the command line leaves them out
#: (``TrainConfig`` field: ``train`` flag)
SCHEDULE_OPTIONS = {"epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr", "patch_size": "--patch-size",
                    "stride": "--stride", "max_patches": "--max-patches", "seed": "--seed", "precision": "--precision"}


def schedule_from_checkpoint(config: Any, saved: dict[Path, dict[str, Any]], args: argparse.Namespace,
                             keep: tuple[str, ...] = ()) -> Any:
    """``config`` with each schedule option the command line did not give taken from the checkpoint it continues
    (``saved``: :func:`check_run_folders_early`), and one line naming them.

    Until session 39 a resumed run took the method's defaults: ``--resume`` without ``--epochs`` extended a 2-epoch
    run to the default 30, and one without ``--batch-size`` was refused as another schedule. ``keep``: fields set
    otherwise (``--seeds`` sets each run's ``seed``). Checkpoints that disagree keep the defaults (the loop then
    names the difference)."""
    from dataclasses import replace

    schedules = list(saved.values())
    if not schedules:
        return config
    taken = {}
    for field, option in SCHEDULE_OPTIONS.items():
        values = {repr(s.get(field, getattr(config, field))) for s in schedules}
        if field in keep or getattr(args, field, None) is not None or len(values) != 1:
            continue
        value = schedules[0].get(field, getattr(config, field))
        if value != getattr(config, field):
            taken[field] = value
    if taken:
        where = ", ".join(str(p.parent) for p in saved)
        print(f"train: resuming {where} with its checkpoint's "
              + ", ".join(f"{SCHEDULE_OPTIONS[f]} {v}" for f, v in taken.items())
              + " (not given on the command line)", file=sys.stderr, flush=True)
    return replace(config, **taken)


def training_pairs(args: argparse.Namespace, spec: Any, params: dict[str, Any], name: str) -> tuple[list, dict]:
    """The training pairs (from ``--pack`` or ``--data-dir``) and the provenance's ``data`` record."""
    if args.pack:
        from .pack import read_pack

        pack = read_pack(args.pack)
        return pack.pairs_of(name), {"pack": str(args.pack), "pack_sha256": pack.sha256,
                                     "pack_max_pairs": pack.max_pairs}
    return spec.training_pairs(params, args.data_dir), {"data_dir": str(args.data_dir) if args.data_dir else None}


def run(args: argparse.Namespace) -> int:
    """Run the ``train`` sub-command; returns the exit status."""
    if args.method == "pack":
        return _pack(args)
    if args.names:
        raise SystemExit(f"fusionbench train: unexpected arguments {args.names} (only `train pack` takes several names)")
    if args.max_pairs is not None:
        raise SystemExit("fusionbench train: --max-pairs is for `train pack` only (a pack made with it keeps the first "
                         "N pairs; train from it with --pack FILE)")
    if args.pack is not None and args.data_dir is not None:
        raise SystemExit(f"fusionbench train {args.method}: give --pack or --data-dir, not both (the pack holds the "
                         "training pairs)")
    refuse_empty(args.method, args, ("out", "export", "pack"))
    from .data import prepare_pairs
    from .loop import train
    from .patches import PatchSet
    from .spec import seed_variant

    t_start = time.time()
    spec, params, name, config = resolve(args)
    seeds = parse_seeds(args.seeds)
    if seeds is not None and args.seed is not None:
        raise SystemExit(f"fusionbench train {args.method}: give --seed or --seeds, not both")
    out = Path(args.out) if args.out else Path("train_runs") / seed_variant(name, config.seed)
    resume = resume_mode(args)
    check_device(config)
    run_meta = {"method": name, "params": params}
    if seeds is None:
        check_folder_option(args.method, "--out", out)
        saved = check_run_folders_early([out], resume, run_meta)
    else:
        parent = Path(args.out) if args.out else Path("train_runs")
        check_folder_option(args.method, "--out", parent)
        saved = check_run_folders_early([parent / seed_variant(name, s) for s in seeds], resume, run_meta)
    config = schedule_from_checkpoint(config, saved, args, keep=("seed",) if seeds is not None else ())
    if args.export:
        check_folder_option(args.method, "--export", Path(args.export))
    try:  # a --set value of the right type that the model refuses (--set width=0): one line, before the data
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. torch's zero-element init warnings of a width-0 model
            spec.build_model(params)
        spec.loss_for(params)  # the loss's own params (mopa's loss_i1, loss_alpha, ...), also before the data
    except ImportError as exc:  # a module this machine lacks, not the params
        raise SystemExit(f"fusionbench train {name}: cannot build the model: {exc}") from None
    except Exception as exc:
        given = f" (--set {', '.join(args.set)})" if args.set else ""
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SystemExit(f"fusionbench train {name}: cannot build the model or its loss with these params{given}: "
                         f"{why}") from None
    if effective_precision(config) != config.precision:
        print(f"train: --precision {config.precision} has no effect on the CPU (TF32 is a CUDA mode): this call "
              f"computes in fp32, and provenance.json records fp32 (the schedule keeps {config.precision}, so the run "
              f"resumes with --precision {config.precision})", file=sys.stderr)
    pairs, data = training_pairs(args, spec, params, name)
    print(f"training {name}: {len(pairs)} pairs, params {params}", file=sys.stderr)
    images = prepare_pairs(pairs, spec.prepare)
    if seeds is not None:
        parent = Path(args.out) if args.out else Path("train_runs")
        return _run_seeds(args, spec, params, name, config, seeds, parent, pairs, data, images, t_start)
    try:
        patches = PatchSet(images, config.patch_size, config.stride, config.max_patches, config.seed)
    except ValueError as exc:  # the image size is known only now
        raise SystemExit(f"fusionbench train {name}: --patch-size {config.patch_size}: {exc}") from None
    print(f"{len(patches)} patches of {config.patch_size}² (stride {config.stride}); {config}", file=sys.stderr)
    with provenance_when_stopped(lambda results: write_provenance(config, results[0], name, params, pairs, data,
                                                                   time.time() - t_start)):
        result = train(lambda: spec.build_model(params), spec.loss_for(params), patches, config, out,
                       resume=resume, meta={"method": name, "params": params, "pairs": [p.key for p in pairs]},
                       title=name)
    _finish(args, spec, params, name, config, result, pairs, data, time.time() - t_start)
    return 0


@contextmanager
def provenance_when_stopped(write: Callable[[list[Any]], None]) -> Iterator[None]:
    """A first Ctrl-C or SIGTERM stops training with a checkpoint, and the loop attaches its result(s) to the
    interrupt (``train_result``): ``write`` them (the run folder's ``provenance.json``: ``finished`` false, the
    steps done) before the interrupt goes on to exit 130 / 143. Until session 39 an interrupted call wrote none,
    and a folder kept the provenance of an earlier call."""
    try:
        yield
    except KeyboardInterrupt as exc:
        results = getattr(exc, "train_result", None)
        if results is not None:
            write(results if isinstance(results, list) else [results])
        raise


def write_provenance(config: Any, result: Any, name: str, params: dict, pairs: list, data: dict,
                     wall_s: float) -> dict[str, Any]:
    """Write ``provenance.json`` of a call into its run folder; returns the record (:func:`provenance`)."""
    from fusionbench.io import write_text_atomic

    record = provenance(config, result, name=name, params=params, pairs=len(pairs), wall_s=wall_s, data=data)
    write_text_atomic(result.out_dir / "provenance.json", json.dumps(record, indent=2, default=str) + "\n")
    return record


def parse_seeds(text: str | None) -> list[int] | None:
    """``--seeds 0,1,2`` as a list of ints (``None`` when not given); a clear ``SystemExit`` when malformed."""
    if text is None:
        return None
    try:  # an empty item (`0,,1`, `0,1,`) is a typo, not a seed to skip
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise SystemExit(f"fusionbench train: --seeds takes comma-separated integers, not {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0 or max(seeds) >= 2**64:
        raise SystemExit(f"fusionbench train: --seeds needs distinct seeds >= 0, got {text!r}")
    return seeds


def _finish(args: argparse.Namespace, spec: Any, params: dict, name: str, config: Any, result: Any, pairs: list,
            data: dict, wall_s: float) -> None:
    """Write a run's provenance, report it, and export its weights when finished and asked to."""
    from fusionbench.io import write_text_atomic

    record = write_provenance(config, result, name, params, pairs, data, wall_s)
    out = result.out_dir
    print(f"{name} seed {config.seed}: {result.steps}/{result.total_steps} steps, {result.elapsed_s:.0f} s, "
          f"{result.patches_per_s:.1f} patches/s, final {result.final_terms}", file=sys.stderr)
    if not result.finished:
        # the same options: --resume checks the schedule (session 38's training audit: the bare "--resume --out X"
        # this printed before failed, without --data-dir or with another schedule)
        print(f"stopped early; continue with the same command and options plus --resume (--out {out}), with a "
              "larger --stop-after-steps/--max-minutes or none", file=sys.stderr)
        return
    if args.export:
        dest_dir, stem = Path(args.export), weights_stem(spec.weights_name(params), config.seed)
        earlier = keep_earlier_export(dest_dir, stem)
        dest = (spec.export or (lambda final, d, n, p: export_weights(final, d, n)))(
            result.final_path, dest_dir, stem, params)
        write_text_atomic(dest_dir / f"{stem}.json", json.dumps(record, indent=2, default=str) + "\n")
        print(f"exported {dest}", file=sys.stderr)
        report_replaced_export(Path(dest), earlier)
        shadow = _committed_twin(spec, Path(dest))
        if shadow is not None:
            print(f"note: runs of {weights_stem(name, config.seed)} load the committed {shadow}, not these weights (a "
                  "committed file always wins); this export is used only where no committed file exists. Compare "
                  "models trained on one schedule only (docs/training.md)", file=sys.stderr)


#: the files of one export (``DIR/<stem>.pth``, its sha256 sidecar and provenance JSON)
EXPORT_SUFFIXES = (".pth", ".sha256", ".json")


def keep_earlier_export(dest_dir: Path, stem: str) -> tuple[str, list[Path]] | None:
    """Before ``--export`` writes ``dest_dir/<stem>.*``: copies of the weights already there (and their sidecar and
    provenance) in ``dest_dir/replaced/<stem>.<UTC time>.*``, with the earlier file's sha256; ``None`` when there
    are none. Until session 39 a second export replaced the first silently (session 38's training audit).
    :func:`report_replaced_export` removes the copies again when the new weights are the same bytes."""
    from fusionbench.io import sha256_file

    old = dest_dir / f"{stem}.pth"
    if not old.is_file():
        return None
    aside = dest_dir / "replaced"
    aside.mkdir(exist_ok=True)
    stamp = base = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    n = 1
    while (aside / f"{stem}.{stamp}.pth").exists():  # two exports in one second: never over an earlier copy
        n += 1
        stamp = f"{base}-{n}"
    copies = []
    for suffix in EXPORT_SUFFIXES:
        if (dest_dir / f"{stem}{suffix}").is_file():
            copies.append(aside / f"{stem}.{stamp}{suffix}")
            shutil.copy2(dest_dir / f"{stem}{suffix}", copies[-1])
    return sha256_file(old), copies


def report_replaced_export(dest: Path, earlier: tuple[str, list[Path]] | None) -> None:
    """One ``note:`` line when ``dest`` replaced other weights (kept by :func:`keep_earlier_export`); the copies of
    an earlier export of the same bytes are removed without a word (and ``replaced/`` with them when it is left
    empty)."""
    from fusionbench.io import sha256_file

    if earlier is None:
        return
    digest, copies = earlier
    if sha256_file(dest) == digest:
        for copy in copies:
            copy.unlink(missing_ok=True)
        if copies and not any(copies[0].parent.iterdir()):
            copies[0].parent.rmdir()  # the folder made for them
        return
    print(f"note: {dest} replaced other weights (sha256 {digest[:12]}…); those are kept as {copies[0]}"
          + (f" with their {', '.join(c.suffix[1:] for c in copies[1:])} file" + ("s" if len(copies) > 2 else "")
             if len(copies) > 1 else ""), file=sys.stderr)


def _committed_twin(spec: Any, exported: Path) -> Path | None:
    """The committed weights file of the same name as ``exported`` in ``spec.weights_dir``, when it exists and is
    another file: the method loads it, never the export (session 38's training audit: ``mopa`` exported to
    ``$FUSIONBENCH_HOME/trained/mopa`` was silently unused, and Table 4 set the committed ``mopa`` of another
    schedule beside the ablations trained on this one)."""
    if spec.weights_dir is None:
        return None
    committed = Path(spec.weights_dir) / exported.name
    if not committed.is_file() or committed.resolve() == exported.resolve():
        return None
    return committed


def _run_seeds(args, spec, params, name, config, seeds, parent, pairs, data, images, t_start) -> int:
    """``--seeds``: one process trains every seed (:func:`fusionbench.train.seeds.train_seeds`)."""
    from dataclasses import replace

    from .seeds import train_seeds
    from .spec import seed_variant

    configs = [replace(config, seed=s) for s in seeds]
    dirs = [parent / seed_variant(name, s) for s in seeds]
    print(f"seeds {seeds} together into {', '.join(map(str, dirs))}; {config}", file=sys.stderr)
    with provenance_when_stopped(lambda stopped: [write_provenance(c, r, name, params, pairs, data,
                                                                   time.time() - t_start)
                                                  for c, r in zip(configs, stopped)]):
        results = train_seeds(lambda: spec.build_model(params), spec.loss_for(params), images, configs, dirs,
                              resume=resume_mode(args),
                              meta={"method": name, "params": params, "pairs": [p.key for p in pairs]},
                              title=name)
    wall = time.time() - t_start
    for c, result in zip(configs, results):
        _finish(args, spec, params, name, c, result, pairs, data, wall)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``fusionbench train`` as a stand-alone parser: parse ``argv`` and :func:`run`; returns the exit status."""
    parser = argparse.ArgumentParser(prog="fusionbench train", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    from .checkpoint import TrainError

    try:
        return run(args)
    except TrainError as exc:  # NaN loss, unreadable checkpoint, --resume without one: one line, no traceback
        print(f"fusionbench train: error: {exc}", file=sys.stderr)
        return 1
