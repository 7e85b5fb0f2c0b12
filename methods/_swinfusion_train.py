"""SwinFusion's trainer for ``fusionbench train swinfusion[.ct]``: loss, EMA, augmentation, export, schedule.

The generic loop (:func:`fusionbench.train.loop.train`) does seeding, Adam,
patches, checkpoints, exact resume, devices, the CSV log and the loss curve;
this module registers SwinFusion's :class:`~fusionbench.train.TrainSpec`
(``swinfusion``: the MRI-PET/SPECT model, ``swinfusion.ct``: the MRI-CT
model) with what the official training (KAIR ``model_plain`` with
``loss_med``) needs on top:

* :func:`fusion_loss` — the official medical loss;
* :class:`SwinFusionTrainable` — the network plus its EMA copy (KAIR ``netE``),
  kept as buffers so that the loop checkpoints and resumes it;
* :func:`training_loss` — the loop's ``loss(model, batch)``: EMA bookkeeping,
  one random flip/rotation per patch (the official 8 modes, drawn from torch's
  CPU generator, which the checkpoint holds), the loss;
* :func:`export_ema` — the final EMA weights as a compact state dict (the
  spec's ``export``, used by ``fusionbench train swinfusion --export DIR``).

The official schedule is the default (``OFFICIAL``: 10,000 iterations of batch
16, 64² crops, Adam 2e-4, EMA 0.999); the committed weights used the reduced
one (``REDUCED``, ``docs/swinfusion.md``), e.g.::

    fusionbench train swinfusion.ct --max-patches 480 --batch-size 4 --set ema_decay=0.9167 --export DIR

This module imports :mod:`methods.swinfusion` (the network); the inference
module never imports this one.

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

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fusionbench.train import TrainConfig
from fusionbench.weights import write_sidecar

#: The official schedule (``train_swinfusion_med.json`` + logs): 10,000 iterations of batch 16 on 64² crops,
#: Adam 2e-4, EMA 0.999.  Patches: a random subset of 160,000 of the 64² patches on a 4-pixel grid.
OFFICIAL = {"iterations": 10_000, "batch": 16, "crop": 64, "lr": 2e-4, "ema_decay": 0.999}
#: The reduced schedule the committed weights were trained with (CPU, one thread each, both models in parallel, ~45 min).
REDUCED = {"iterations": 120, "batch": 4, "crop": 64, "lr": 2e-4, "ema_decay": None}
STRIDE = 4
#: training datasets (train split v1) of each committed model
MODEL_DATASETS = {"mri_pet_spect": ("harvard-mri-pet", "harvard-mri-spect"), "mri_ct": ("harvard-mri-ct",)}


# --------------------------------------------------------------------------- loss
def sobel_l1(x: torch.Tensor) -> torch.Tensor:
    """|Sobel_x| + |Sobel_y| of B×1×H×W, zero padding (the official ``Sobelxy``; an L1 sum, unlike the
    Euclidean :func:`methods.mopa.losses.sobel_magnitude` of the paper network's loss)."""
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


def fusion_loss(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Official ``fusion_loss_med``: returns (total, weighted terms incl. ``total``)."""
    intensity = 20 * F.l1_loss(f, torch.maximum(a, b))
    gradient = 100 * F.l1_loss(sobel_l1(f), torch.maximum(sobel_l1(a), sobel_l1(b)))
    structure = 50 * (1 - 0.5 * ssim(a, f) - 0.5 * ssim(b, f))
    total = intensity + gradient + structure
    terms = {"total": total, "intensity": intensity, "gradient": gradient, "ssim": structure}
    return total, {k: v.detach() for k, v in terms.items()}   # 0-d tensors: read back by the loop, no sync here


# --------------------------------------------------------------------------- augmentation
def dihedral(x: torch.Tensor, modes: torch.Tensor) -> torch.Tensor:
    """Per-sample flip/rotation of B×C×H×W (square): mode m = rot90 by m % 4, then vertical flip if m ≥ 4."""
    out = x.clone()
    modes = modes.cpu()     # the subsets are found on the host: no device sync when modes are CPU draws
    for m in range(1, 8):   # 8 group elements, each applied to its subset at once
        sel = (modes == m).nonzero().flatten()
        if len(sel):
            sel = sel.to(x.device)
            t = torch.rot90(x[sel], m % 4, dims=(-2, -1))
            out[sel] = t.flip(-2) if m >= 4 else t
    return out


# --------------------------------------------------------------------------- network + EMA
class SwinFusionTrainable(nn.Module):
    """``net`` (trained) and ``ema`` (its exponential moving average, buffers only)."""

    def __init__(self, ema_decay: float = OFFICIAL["ema_decay"]):
        super().__init__()
        from .swinfusion import build_network

        from fusionbench.checks import number

        # the old average's weight per step (official 0.999); 1 never updates it, above 1 it diverges
        # (session 39: --set ema_decay=2 trained and exported a diverged average)
        number("swinfusion", "ema_decay", ema_decay, low=0, high=1)

        self.net = build_network()
        self.ema = copy.deepcopy(self.net)
        for mod in self.ema.modules():             # parameters → buffers: not optimised, still checkpointed
            for name, p in list(mod._parameters.items()):
                del mod._parameters[name]
                mod.register_buffer(name, p.detach().clone())
        self.ema_decay = float(ema_decay)
        self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))
        self._host_updates: int | None = None      # host copy of ema_updates (None: read it once)
        self.register_load_state_dict_post_hook(SwinFusionTrainable._forget_host_updates)

    def state_dict(self, *args, **kwargs):
        """The state without the derived buffers (attention masks, position indices: 100 MB that the
        configuration rebuilds), so a training checkpoint is the 23 MB of networks and EMA only."""
        from ._swin_blocks import DERIVED_BUFFERS

        state = super().state_dict(*args, **kwargs)
        for key in [k for k in state if k.endswith(DERIVED_BUFFERS)]:
            del state[key]
        return state

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Load a state with or without the derived buffers (missing ones keep the rebuilt values)."""
        from ._swin_blocks import DERIVED_BUFFERS

        derived = {k: v for k, v in super().state_dict().items() if k.endswith(DERIVED_BUFFERS)}
        return super().load_state_dict({**derived, **state_dict}, strict=strict, assign=assign)

    @staticmethod
    def _forget_host_updates(module: nn.Module, _incompatible) -> None:
        if isinstance(module, SwinFusionTrainable):
            module._host_updates = None

    @torch.no_grad()
    def update_ema(self) -> None:
        """First call: E = G (the initial network); then E ← d·E + (1 − d)·G.

        The update count is read from the device once (after construction or
        loading) and then counted on the host, so a step does not wait for the device.
        """
        if self._host_updates is None:
            self._host_updates = int(self.ema_updates)
        ema = dict(self.ema.named_buffers())
        decay = 0.0 if self._host_updates == 0 else self.ema_decay
        names = [name for name, _ in self.net.named_parameters()]
        targets = [ema[name] for name in names]
        torch._foreach_mul_(targets, decay)
        torch._foreach_add_(targets, [p.detach() for p in self.net.parameters()], alpha=1 - decay)
        self.ema_updates += 1
        self._host_updates += 1

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.net(a, b)


def training_loss(model: SwinFusionTrainable, batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loop's loss on a B×2×h×w batch of (MRI, B-luma) patches."""
    model.update_ema()
    modes = torch.randint(0, 8, (batch.shape[0],))   # CPU generator: device-independent draws
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
    from fusionbench.train.checkpoint import atomic_save

    from .swinfusion import compact_state_dict

    model = SwinFusionTrainable(ema_decay)
    # tensors only, as the loop writes them: a file from another machine cannot run code when it is loaded
    state = torch.load(final, map_location="cpu", weights_only=True)
    if "model" in state and "optimiser" in state:      # a loop checkpoint (run stopped before its end)
        state = state["model"]
    model.load_state_dict(state)
    model.update_ema()
    net = copy.deepcopy(model.net)
    net.load_state_dict({**net.state_dict(), **dict(model.ema.named_buffers())})
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(compact_state_dict(net), dest)  # an interrupted export leaves the previous file
    return write_sidecar(dest)


# --------------------------------------------------------------------------- schedule / trainer spec
def schedule_config(iterations: int, batch: int, crop: int, lr: float, seed: int = 0, threads: int = 1,
                    **extra: Any) -> TrainConfig:
    """The loop's config for ``iterations`` steps of ``batch`` random ``crop``² patches (one epoch)."""
    return TrainConfig(epochs=1, batch_size=batch, lr=lr, patch_size=crop, stride=STRIDE,
                       max_patches=iterations * batch, seed=seed, threads=threads, **extra)


#: the loop's config of the official schedule (the trainer's default)
OFFICIAL_CONFIG = schedule_config(OFFICIAL["iterations"], OFFICIAL["batch"], OFFICIAL["crop"], OFFICIAL["lr"])


def training_pairs(model: str, data_dir: str | Path | None) -> list:
    """Train-split (v1) pairs of the datasets of ``model``."""
    import fusionbench

    kw = {} if data_dir is None else {"data_dir": str(data_dir)}
    return [p for name in MODEL_DATASETS[model] for p in fusionbench.create_dataset(name, **kw).select("train")]


def build_model(params: dict[str, Any]) -> SwinFusionTrainable:
    """The trainable network + EMA of a registered SwinFusion variant (``ema_decay`` param, default 0.999)."""
    return SwinFusionTrainable(float(params.get("ema_decay", OFFICIAL["ema_decay"])))


def _pairs_for(params: dict[str, Any], data_dir: str | Path | None) -> list:
    return training_pairs(params.get("model", "mri_pet_spect"), data_dir)


def _export(final: Path, dest_dir: Path, stem: str, params: dict[str, Any]) -> Path:
    dest = Path(dest_dir) / f"{stem}.pth"
    export_ema(final, dest, float(params.get("ema_decay", OFFICIAL["ema_decay"])))
    return dest


def _weights_name(params: dict[str, Any]) -> str:
    from .swinfusion import MODELS

    return Path(MODELS[params.get("model", "mri_pet_spect")]).stem


def _register() -> None:
    from fusionbench.train import TrainSpec, register_trainer

    from .swinfusion import WEIGHTS_DIR

    register_trainer(TrainSpec(
        method="swinfusion", build_model=build_model, prepare=prepare, loss=training_loss,
        default_pairs=lambda data_dir: training_pairs("mri_pet_spect", data_dir), defaults=OFFICIAL_CONFIG,
        weights_name=_weights_name, weights_dir=WEIGHTS_DIR, pairs_for=_pairs_for, export=_export,
        extra_params=("ema_decay",),
        description="SwinFusion official medical loss and schedule (EMA 0.999); swinfusion: MRI-PET/SPECT model "
                    "(PET + SPECT train pairs), swinfusion.ct: MRI-CT model"))


_register()
