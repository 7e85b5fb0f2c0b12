"""The one training loop (Adam, seeded, checkpointed, exactly resumable).

Files written to ``out_dir``:

* ``checkpoint.pt`` — model, optimiser, step, log rows, elapsed time and the
  config (written atomically every ``checkpoint_every_s``, at each epoch end
  and at the end);
* ``log.csv`` — one row every ``log_every`` steps: step, epoch, patches seen,
  the mean of each loss term over those steps, learning rate, patches/s and
  elapsed seconds;
* ``loss.png`` — the loss curves;
* ``final.pth`` — the trained fp32 ``state_dict`` only (loadable with
  ``torch.load(..., weights_only=True)``), written when the schedule ends;
* ``config.json`` — the config and the method's params.

Determinism: the model is built after ``torch.manual_seed(seed)``; epoch ``e``
visits the patches in the order ``np.random.default_rng([seed, e])``
permutes them; deterministic algorithms are enforced and the thread count is
fixed.  A resumed run recomputes the same order and continues at the saved
step, so it ends with the same weights as an uninterrupted run (bitwise, at
the same thread count).
"""
from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .config import TrainConfig
from .patches import PatchSet


@dataclass
class TrainResult:
    """What a run left behind."""

    out_dir: Path
    steps: int
    total_steps: int
    finished: bool
    elapsed_s: float
    final_terms: dict[str, float] = field(default_factory=dict)
    patches_per_s: float = 0.0

    @property
    def final_path(self) -> Path:
        return self.out_dir / "final.pth"


def _atomic_save(obj: Any, path: Path) -> None:
    import torch

    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order in which epoch ``epoch`` visits ``n`` patches."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def write_log(rows: list[dict[str, Any]], path: Path) -> None:
    """Write the CSV log (all rows, union of their columns in first-seen order)."""
    cols: list[str] = []
    for row in rows:
        cols += [k for k in row if k not in cols]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols)
        writer.writeheader()
        writer.writerows(rows)


def plot_losses(rows: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """Loss curves (log scale) of every ``loss_*`` column against the step."""
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    steps = [r["step"] for r in rows]
    for key in [k for k in rows[0] if k.startswith("loss_")]:
        vals = [r.get(key, float("nan")) for r in rows]
        ax.plot(steps, vals, label=key[5:])
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def train(
    build_model: Callable[[], Any],
    loss_fn: Callable[[Any, Any], tuple[Any, dict[str, float]]],
    patches: PatchSet,
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    meta: dict[str, Any] | None = None,
    title: str = "",
) -> TrainResult:
    """Train ``build_model()`` on ``patches`` with Adam under ``config``; see the module docstring.

    ``loss_fn(model, batch)`` returns ``(scalar tensor, {term: float})``.
    With ``resume=True`` and a ``checkpoint.pt`` in ``out_dir``, continue it
    (the schedule fields of ``config`` must match the checkpoint's).
    """
    import torch
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / "checkpoint.pt"
    torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(config.seed)
    model = build_model()
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    steps_per_epoch = math.ceil(len(patches) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    step, elapsed, rows = 0, 0.0, []
    acc: dict[str, float] = {}  # loss terms summed since the last log row
    n_acc, seen_acc = 0, 0
    if resume and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=False)
        saved = {k: v for k, v in ckpt["config"].items() if k not in TrainConfig.RESUMABLE_CHANGES}
        now = {k: v for k, v in config.to_dict().items() if k not in TrainConfig.RESUMABLE_CHANGES}
        if saved != now:
            diff = {k: (saved.get(k), now.get(k)) for k in set(saved) | set(now) if saved.get(k) != now.get(k)}
            raise ValueError(f"cannot resume {ckpt_path}: schedule differs (saved, now): {diff}")
        model.load_state_dict(ckpt["model"])
        optimiser.load_state_dict(ckpt["optimiser"])
        torch.set_rng_state(ckpt["torch_rng"])
        step, elapsed, rows = ckpt["step"], ckpt["elapsed_s"], ckpt["rows"]
        pending = ckpt.get("pending", ({}, 0, 0))
        acc, n_acc, seen_acc = dict(pending[0]), pending[1], pending[2]
    (out_dir / "config.json").write_text(json.dumps({"config": config.to_dict(), "meta": meta or {},
                                                     "patches": len(patches)}, indent=2, default=str))
    write_log(rows, out_dir / "log.csv")

    def checkpoint() -> None:
        _atomic_save({"model": model.state_dict(), "optimiser": optimiser.state_dict(), "step": step,
                      "elapsed_s": elapsed, "rows": rows, "config": config.to_dict(),
                      "torch_rng": torch.get_rng_state(), "pending": (acc, n_acc, seen_acc)}, ckpt_path)
        write_log(rows, out_dir / "log.csv")
        plot_losses(rows, out_dir / "loss.png", title)

    stop = total_steps if config.stop_after_steps is None else min(total_steps, config.stop_after_steps)
    model.train()
    bar = tqdm(total=total_steps, initial=step, disable=not config.progress, unit="step", dynamic_ncols=True)
    t_log = time.perf_counter()
    t_ckpt = time.monotonic()
    last_terms: dict[str, float] = {}
    while step < stop:
        epoch, pos = divmod(step, steps_per_epoch)
        order = epoch_order(len(patches), config.seed, epoch)
        rows_idx = order[pos * config.batch_size:(pos + 1) * config.batch_size]
        t0 = time.perf_counter()
        batch = torch.from_numpy(patches.batch(rows_idx))
        loss, terms = loss_fn(model, batch)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        step += 1
        elapsed += time.perf_counter() - t0
        last_terms = terms
        for k, v in terms.items():
            acc[k] = acc.get(k, 0.0) + v
        n_acc += 1
        seen_acc += len(rows_idx)
        if step % config.log_every == 0 or step % steps_per_epoch == 0 or step == total_steps:
            dt = time.perf_counter() - t_log
            row = {"step": step, "epoch": step / steps_per_epoch,
                   "patches_seen": epoch * len(patches) + min((pos + 1) * config.batch_size, len(patches))}
            row.update({f"loss_{k}": v / n_acc for k, v in acc.items()})
            row.update({"lr": config.lr, "patches_per_s": seen_acc / dt if dt > 0 else 0.0, "elapsed_s": elapsed})
            rows.append(row)
            bar.set_postfix(loss=f"{row.get('loss_total', float('nan')):.4g}", pps=f"{row['patches_per_s']:.1f}")
            acc, n_acc, seen_acc, t_log = {}, 0, 0, time.perf_counter()
        bar.update(1)
        if time.monotonic() - t_ckpt >= config.checkpoint_every_s or step % steps_per_epoch == 0 or step == stop:
            checkpoint()
            t_ckpt = time.monotonic()
    bar.close()
    finished = step >= total_steps
    if finished:
        state = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in model.state_dict().items()}
        torch.save(state, out_dir / "final.pth")
        checkpoint()
    pps = (min(step, total_steps) * config.batch_size / elapsed) if elapsed > 0 else 0.0
    final = {k[5:]: v for k, v in rows[-1].items() if k.startswith("loss_")} if rows else last_terms
    return TrainResult(out_dir, step, total_steps, finished, elapsed, final, pps)
