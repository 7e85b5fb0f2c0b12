"""``fusionbench train <method>[.<variant>]``: train a registered trainable method.

The defaults are the method's paper schedule (for ``mopa``: 180 Harvard
training pairs, 120×120 patches at stride 10, 30 epochs, batch 32, Adam 1e-4).
Every schedule field can be overridden; ``--resume`` continues the run in
``--out``; ``--export DIR`` copies the final weights to ``DIR/<name>.pth`` with
a ``<name>.sha256`` beside it.
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``train`` sub-command's arguments to ``parser``."""
    parser.add_argument("method", help="trainable method or variant, e.g. mopa or mopa.mask_only")
    parser.add_argument("--data-dir", default=None, help="dataset root (default: the datasets' own default)")
    parser.add_argument("--out", default=None, help="run folder (default: train_runs/<method>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--patch-size", type=int, default=None)
    parser.add_argument("--stride", type=int, default=None)
    parser.add_argument("--max-patches", type=int, default=None, help="train on a seeded random subset of patches")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default 1)")
    parser.add_argument("--checkpoint-minutes", type=float, default=None)
    parser.add_argument("--stop-after-steps", type=int, default=None,
                        help="stop after this many steps in total (resume later)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a model parameter of the method (repeatable; value parsed as Python literal)")
    parser.add_argument("--export", default=None, metavar="DIR",
                        help="copy final weights to DIR/<name>.pth and write DIR/<name>.sha256")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _literal(text: str):
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def export_weights(final: Path, dest_dir: Path, name: str) -> Path:
    """Copy ``final`` to ``dest_dir/<name>.pth`` and write its sha256 to ``<name>.sha256``."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{name}.pth"
    shutil.copyfile(final, dest)
    digest = hashlib.sha256(dest.read_bytes()).hexdigest()
    (dest_dir / f"{name}.sha256").write_text(f"{digest}  {name}.pth\n")
    return dest


def run(args: argparse.Namespace) -> int:
    """Run the ``train`` sub-command; returns the exit status."""
    from .data import prepare_pairs
    from .loop import train
    from .patches import PatchSet
    from .spec import get_trainer

    spec, params, name = get_trainer(args.method)
    for item in args.set:
        key, _, value = item.partition("=")
        params[key] = _literal(value)
    ckpt_s = None if args.checkpoint_minutes is None else 60.0 * args.checkpoint_minutes
    config = spec.defaults.with_overrides(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patch_size=args.patch_size, stride=args.stride,
        max_patches=args.max_patches, seed=args.seed, threads=args.threads, checkpoint_every_s=ckpt_s,
        stop_after_steps=args.stop_after_steps, progress=False if args.no_progress else None)
    out = Path(args.out) if args.out else Path("train_runs") / name
    pairs = spec.training_pairs(params, args.data_dir)
    print(f"training {name}: {len(pairs)} pairs, params {params}", file=sys.stderr)
    images = prepare_pairs(pairs, spec.prepare)
    patches = PatchSet(images, config.patch_size, config.stride, config.max_patches, config.seed)
    print(f"{len(patches)} patches of {config.patch_size}² (stride {config.stride}); {config}", file=sys.stderr)
    result = train(lambda: spec.build_model(params), spec.loss, patches, config, out, resume=args.resume,
                   meta={"method": name, "params": params, "pairs": [p.key for p in pairs]}, title=name)
    print(f"{name}: {result.steps}/{result.total_steps} steps, {result.elapsed_s:.0f} s, "
          f"{result.patches_per_s:.1f} patches/s, final {result.final_terms}", file=sys.stderr)
    if not result.finished:
        print(f"stopped early; continue with --resume --out {out}", file=sys.stderr)
        return 0
    if args.export:
        dest = export_weights(result.final_path, Path(args.export), spec.weights_name(params))
        print(f"exported {dest}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fusionbench train", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))
