"""Training SwinFusion with fusionbench's generic loop: loss, EMA, augmentation, export, schedules.

The loop (:func:`fusionbench.train.loop.train`) does seeding, Adam, patches,
checkpoints, resume, the progress bar, the CSV log and the loss curve.  This
module adds what SwinFusion's official training (KAIR ``model_plain`` with
``loss_med``) needs on top:

* :func:`fusion_loss` — the official medical loss;
* :class:`SwinFusionTrainable` — the network plus its EMA copy (KAIR ``netE``),
  kept as buffers so that the loop checkpoints and resumes it;
* :func:`training_loss` — the loop's ``loss(model, batch)``: EMA bookkeeping,
  one random flip/rotation per patch (the official 8 modes), the loss;
* :func:`export_ema` — the final EMA weights as a compact state dict;
* ``python -m fusionbench.methods._swinfusion_train`` — one command per
  schedule (``--schedule official`` or ``reduced``) and per model.

Official data pipeline vs here: the official loader takes, every epoch, one
64² crop at a uniformly random position of each training image; here the
loop's :class:`~fusionbench.train.patches.PatchSet` draws a seeded random
subset of the 64² patches on a 4-pixel grid (``stride`` 4), visited in random
order.  The 8 flips/rotations are drawn per patch as in the official code.

EMA: ``E ← d·E + (1 − d)·G`` after every optimiser step, starting from a copy
of the initial network, over parameters only (KAIR ``update_E``).  The loop
calls the loss before each step, so the update after step *k* is done at the
start of step *k + 1* and the last one by :func:`export_ema` — the same sequence.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fusionbench.train import TrainConfig

#: The official schedule (``train_swinfusion_med.json`` + logs): 10,000 iterations of batch 16 on 64² crops,
#: Adam 2e-4, EMA 0.999.  Patches: a random subset of 160,000 of the 64² patches on a 4-pixel grid.
OFFICIAL = {"iterations": 10_000, "batch": 16, "crop": 64, "lr": 2e-4, "ema_decay": 0.999}
#: The reduced schedule the committed weights were trained with (CPU, one thread each, both models in parallel, ~45 min).
REDUCED = {"iterations": 120, "batch": 4, "crop": 64, "lr": 2e-4, "ema_decay": None}
STRIDE = 4
#: training datasets (train split v1) of each committed model
MODEL_DATASETS = {"mri_pet_spect": ("harvard-mri-pet", "harvard-mri-spect"), "mri_ct": ("harvard-mri-ct",)}


# --------------------------------------------------------------------------- loss
def sobel_magnitude(x: torch.Tensor) -> torch.Tensor:
    """|Sobel_x| + |Sobel_y| of B×1×H×W, zero padding (the official ``Sobelxy``)."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=x.dtype, device=x.device)
    k = torch.stack([kx, kx.t().flip(0)])[:, None]      # x kernel; y kernel rows (1,2,1), (0,0,0), (-1,-2,-1)
    return F.conv2d(x, k, padding=1).abs().sum(1, keepdim=True)


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM of B×1×H×W images in [0, 1]: Gaussian window, zero padding, C1 = 0.01², C2 = 0.03²."""
    r = torch.arange(window, dtype=x.dtype, device=x.device) - window // 2
    g = torch.exp(-r ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    k = (g[:, None] * g[None, :])[None, None]
    stacked = torch.cat([x, y, x * x, y * y, x * y], 1)
    stats = F.conv2d(stacked.flatten(0, 1)[:, None], k, padding=window // 2)
    mx, my, mxx, myy, mxy = stats.view(x.shape[0], 5, *stats.shape[-2:]).unbind(1)
    vx, vy, cxy = mxx - mx * mx, myy - my * my, mxy - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    return (((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))).mean()


def fusion_loss(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Official ``fusion_loss_med``: returns (total, weighted terms incl. ``total``)."""
    intensity = 20 * F.l1_loss(f, torch.maximum(a, b))
    gradient = 100 * F.l1_loss(sobel_magnitude(f), torch.maximum(sobel_magnitude(a), sobel_magnitude(b)))
    structure = 50 * (1 - 0.5 * ssim(a, f) - 0.5 * ssim(b, f))
    total = intensity + gradient + structure
    terms = {"total": total, "intensity": intensity, "gradient": gradient, "ssim": structure}
    return total, {k: float(v.detach()) for k, v in terms.items()}


# --------------------------------------------------------------------------- augmentation
def dihedral(x: torch.Tensor, modes: torch.Tensor) -> torch.Tensor:
    """Per-sample flip/rotation of B×C×H×W (square): mode m = rot90 by m % 4, then vertical flip if m ≥ 4."""
    out = x.clone()
    for m in range(1, 8):   # 8 group elements, each applied to its subset at once
        sel = (modes == m).nonzero().flatten()
        if len(sel):
            t = torch.rot90(x[sel], m % 4, dims=(-2, -1))
            out[sel] = t.flip(-2) if m >= 4 else t
    return out


# --------------------------------------------------------------------------- network + EMA
class SwinFusionTrainable(nn.Module):
    """``net`` (trained) and ``ema`` (its exponential moving average, buffers only)."""

    def __init__(self, ema_decay: float = OFFICIAL["ema_decay"]):
        super().__init__()
        from .swinfusion import build_network

        self.net = build_network()
        self.ema = copy.deepcopy(self.net)
        for mod in self.ema.modules():             # parameters → buffers: not optimised, still checkpointed
            for name, p in list(mod._parameters.items()):
                del mod._parameters[name]
                mod.register_buffer(name, p.detach().clone())
        self.ema_decay = float(ema_decay)
        self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update_ema(self) -> None:
        """First call: E = G (the initial network); then E ← d·E + (1 − d)·G."""
        ema = dict(self.ema.named_buffers())
        decay = 0.0 if int(self.ema_updates) == 0 else self.ema_decay
        for name, p in self.net.named_parameters():
            ema[name].mul_(decay).add_(p.detach(), alpha=1 - decay)
        self.ema_updates += 1

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.net(a, b)


def training_loss(model: SwinFusionTrainable, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """The loop's loss on a B×2×h×w batch of (MRI, B-luma) patches."""
    model.update_ema()
    modes = torch.randint(0, 8, (batch.shape[0],))
    batch = dihedral(batch, modes)
    a, b = batch[:, 0:1], batch[:, 1:2]
    return fusion_loss(a, b, model(a, b))


def prepare(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Training channels of one loaded pair: [MRI, BT.601 luma of PET/SPECT (or CT)], 2×H×W in [0, 1]."""
    from fusionbench.colour import luma

    return np.stack([luma(a), luma(b)]).astype(np.float32)


def export_ema(final: str | Path, dest: str | Path, ema_decay: float) -> str:
    """Write the final EMA weights (after the last step's update) of a run's ``final.pth`` to ``dest``.

    ``final`` may also be the loop's ``checkpoint.pt`` of a run stopped early.

    ``dest`` holds the parameters only (see :func:`methods.swinfusion.compact_state_dict`);
    a ``<dest>.sha256`` is written beside it.  Returns the digest.
    """
    from .swinfusion import compact_state_dict

    model = SwinFusionTrainable(ema_decay)
    state = torch.load(final, map_location="cpu", weights_only=False)
    if "model" in state and "optimiser" in state:      # a loop checkpoint (run stopped before its end)
        state = state["model"]
    model.load_state_dict(state)
    model.update_ema()
    net = copy.deepcopy(model.net)
    net.load_state_dict({**net.state_dict(), **dict(model.ema.named_buffers())})
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save(compact_state_dict(net), dest)
    digest = hashlib.sha256(dest.read_bytes()).hexdigest()
    dest.with_name(dest.name + ".sha256").write_text(f"{digest}  {dest.name}\n")
    return digest


# --------------------------------------------------------------------------- schedules / command
def schedule_config(iterations: int, batch: int, crop: int, lr: float, seed: int = 0, threads: int = 1,
                    **extra: Any) -> TrainConfig:
    """The loop's config for ``iterations`` steps of ``batch`` random ``crop``² patches (one epoch)."""
    return TrainConfig(epochs=1, batch_size=batch, lr=lr, patch_size=crop, stride=STRIDE,
                       max_patches=iterations * batch, seed=seed, threads=threads, **extra)


def training_pairs(model: str, data_dir: str | Path | None) -> list:
    """Train-split (v1) pairs of the datasets of ``model``."""
    import fusionbench

    kw = {} if data_dir is None else {"data_dir": str(data_dir)}
    return [p for name in MODEL_DATASETS[model] for p in fusionbench.create_dataset(name, **kw).select("train")]


def main(argv: list[str] | None = None) -> int:
    """``python -m fusionbench.methods._swinfusion_train --model mri_ct --schedule reduced --export``."""
    from fusionbench.train.data import prepare_pairs
    from fusionbench.train.loop import train
    from fusionbench.train.patches import PatchSet

    from .swinfusion import WEIGHTS_DIR, MODELS

    p = argparse.ArgumentParser(description="Train SwinFusion (official loss, generic fusionbench loop).")
    p.add_argument("--model", choices=sorted(MODELS), required=True)
    p.add_argument("--schedule", choices=("official", "reduced"), default="official")
    p.add_argument("--iterations", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--crop", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--ema-decay", type=float, help="default: 0.999 (official), or 1 − 10/iterations if shorter")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=None, help="run folder (default train_runs/swinfusion-<model>-<schedule>)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--checkpoint-minutes", type=float, default=3.0)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--export", action="store_true", help=f"write the EMA weights to {WEIGHTS_DIR}/<model>.pth")
    args = p.parse_args(argv)

    sched = dict(OFFICIAL if args.schedule == "official" else REDUCED)
    for key in ("iterations", "batch", "crop", "lr", "ema_decay"):
        if getattr(args, key) is not None:
            sched[key] = getattr(args, key)
    if sched["ema_decay"] is None:   # keep the official EMA horizon as a share of the schedule (1,000 of 10,000)
        sched["ema_decay"] = max(0.0, min(OFFICIAL["ema_decay"], 1.0 - 10.0 / sched["iterations"]))
    config = schedule_config(sched["iterations"], sched["batch"], sched["crop"], sched["lr"], seed=args.seed,
                             threads=args.threads, checkpoint_every_s=60.0 * args.checkpoint_minutes,
                             progress=not args.no_progress)
    out = Path(args.out or f"train_runs/swinfusion-{args.model}-{args.schedule}")
    pairs = training_pairs(args.model, args.data_dir)
    images = prepare_pairs(pairs, prepare)
    patches = PatchSet(images, config.patch_size, config.stride, config.max_patches, config.seed)
    print(f"swinfusion {args.model}: {len(pairs)} pairs, {len(patches)} patches, schedule {sched}", file=sys.stderr)
    t0 = time.time()
    result = train(lambda: SwinFusionTrainable(sched["ema_decay"]), training_loss, patches, config, out,
                   resume=args.resume, title=f"SwinFusion {args.model} ({args.schedule})",
                   meta={"method": "swinfusion", "model": args.model, "schedule": sched,
                         "pairs": [p.key for p in pairs]})
    summary = {"model": args.model, "schedule_name": args.schedule, **sched, "stride": STRIDE,
               "seed": args.seed, "threads": args.threads, "pairs": len(pairs), "datasets": MODEL_DATASETS[args.model],
               "steps": result.steps, "finished": result.finished, "train_seconds": round(result.elapsed_s, 1),
               "wall_seconds_this_call": round(time.time() - t0, 1), "final_loss_terms": result.final_terms}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps(summary, default=str), file=sys.stderr)
    if result.finished and args.export:
        digest = export_ema(result.final_path, WEIGHTS_DIR / MODELS[args.model], sched["ema_decay"])
        print(f"exported {WEIGHTS_DIR / MODELS[args.model]} sha256 {digest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
