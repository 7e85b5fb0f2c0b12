"""What a training run reports while it runs: its log, its loss curves, its progress bar and its rates.

* ``log.csv`` (:func:`write_log`) — one row (:func:`log_row`) every
  ``log_every`` steps: step, epoch, patches seen, the mean of each loss term
  over those steps, learning rate, patches/s and elapsed seconds.  The loss
  terms are read back from the device only there and before a checkpoint
  (:func:`fold_terms`, which also stops a run at a NaN or infinite term);
* ``loss.png`` (:func:`plot_losses`) — the loss curves;
* a tqdm bar with the loss and patches/s (:func:`progress_bar`);
* when a checkpoint is due (:func:`checkpoint_due`), and a call's steady
  rate after its first :data:`WARMUP_STEPS` steps (:func:`steady_rate`);
  both kept for a call of the loop by :class:`CallSchedule`, which also stops
  it at a Ctrl-C or SIGTERM (:class:`fusionbench.interrupts.StopRequest`).

Shared by the one-seed loop (:mod:`fusionbench.train.loop`) and the seeds
trained together (:mod:`fusionbench.train.seeds`).
"""
from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import Any, Callable

from ..interrupts import StopRequest
from ..io import atomic_write
from .checkpoint import NonFiniteLoss, nonfinite_terms
from .config import TrainConfig


#: steps of a call left out of its steady-state rate (CUDA context, kernel selection, caches warming up)
WARMUP_STEPS = 10


def fold_terms(pending: list[dict[str, Any]], acc: dict[str, float],
               first_step: int | None = None) -> tuple[dict[str, float], dict[str, float]]:
    """Add the loss terms of ``pending`` steps (floats or 0-d tensors) to ``acc``, in step order.

    A loss may return its terms as device tensors so that a step does not wait for
    the device; they are read back here in one transfer (every ``log_every`` steps
    and before a checkpoint).  The sums are those of adding the same floats one
    step at a time.  Returns the new sums and the last step's terms as floats.
    With ``first_step`` (the step of ``pending[0]``), a step with a NaN or infinite
    term raises :class:`NonFiniteLoss` (the first such step, before anything is
    added): this read-back is already a synchronisation point, so the check costs
    no extra wait for the device.
    """
    import torch

    tensors = [v for terms in pending for v in terms.values() if isinstance(v, torch.Tensor)]
    values = iter(torch.stack([t.detach().float().reshape(()) for t in tensors]).tolist() if tensors else [])
    acc = dict(acc)
    last: dict[str, float] = {}
    for i, terms in enumerate(pending):
        last = {k: (next(values) if isinstance(v, torch.Tensor) else float(v)) for k, v in terms.items()}
        if first_step is not None and not all(math.isfinite(v) for v in last.values()):
            raise NonFiniteLoss(nonfinite_terms(first_step + i, last))
        for k, v in last.items():
            acc[k] = acc.get(k, 0.0) + v
    return acc, last


def write_log(rows: list[dict[str, Any]], path: Path) -> None:
    """Write the CSV log (all rows, union of their columns in first-seen order), whole or not at all (a kill
    while it is written leaves the previous log)."""
    cols: list[str] = []
    for row in rows:
        cols += [k for k in row if k not in cols]
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols)
        writer.writeheader()
        writer.writerows(rows)


def plot_losses(rows: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """Loss curves (log scale) of every ``loss_*`` column against the step, written whole or not at all."""
    if not rows:
        return
    try:
        import matplotlib
    except ImportError:  # a bare device image: the CSV log has the same numbers
        return

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
    try:
        with atomic_write(path) as tmp:  # whole or not at all, like the log
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)


class _NoBar:
    def set_postfix(self, **_: Any) -> None: ...

    def update(self, n: int = 1) -> None: ...

    def close(self) -> None: ...


def progress_bar(enabled: bool, total: int, initial: int) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)


def patches_seen(step: int, steps_per_epoch: int, n_patches: int, batch_size: int) -> int:
    """The patches the first ``step`` steps trained on: each epoch's last batch holds the rest of the epoch's
    patches, fewer than ``batch_size`` when they do not divide evenly."""
    if step <= 0:
        return 0
    epoch, pos = divmod(step - 1, steps_per_epoch)
    return epoch * n_patches + min((pos + 1) * batch_size, n_patches)


def log_row(step: int, steps_per_epoch: int, n_patches: int, batch_size: int, terms: dict[str, float],
            n_steps: int, lr: float, patches_per_s: float, elapsed: float) -> dict[str, Any]:
    """One ``log.csv`` row: the step, epoch, patches seen, each term's mean over ``n_steps``, lr, rate, time."""
    row = {"step": step, "epoch": step / steps_per_epoch,
           "patches_seen": patches_seen(step, steps_per_epoch, n_patches, batch_size)}
    row.update({f"loss_{k}": v / n_steps for k, v in terms.items()})
    row.update({"lr": lr, "patches_per_s": patches_per_s, "elapsed_s": elapsed})
    return row


def checkpoint_due(config: TrainConfig, step: int, steps_per_epoch: int, stop: int, t_call: float,
                   t_ckpt: float) -> tuple[bool, bool]:
    """``(write a checkpoint now, this call's time is up)`` after ``step`` (monotonic clock times)."""
    now = time.monotonic()
    out_of_time = config.stop_after_seconds is not None and now - t_call >= config.stop_after_seconds
    due = now - t_ckpt >= config.checkpoint_every_s or step % steps_per_epoch == 0 or step == stop or out_of_time
    return due, out_of_time


def steady_rate(step: int, start_step: int, t_warm: float | None, t_end: float) -> float:
    """Steps/s of a call after its first :data:`WARMUP_STEPS` steps (0 when too few steps)."""
    if t_warm is not None and step - start_step > WARMUP_STEPS and t_end > t_warm:
        return (step - start_step - WARMUP_STEPS) / (t_end - t_warm)
    return 0.0


def stopped_call(exc: KeyboardInterrupt) -> bool:
    """Whether ``exc`` is the interrupt :meth:`CallSchedule.end_step` raised after checkpointing its step (the loop
    then attaches its result, ``exc.train_result``, before raising it on); a second Ctrl-C raised mid-step is not."""
    return getattr(exc, "checkpointed_step", None) is not None


class CallSchedule:
    """One call of a training loop: when it logs, checkpoints and stops, and the clocks of its steady rate.

    A context manager around the step loop (it holds a :class:`~fusionbench.interrupts.StopRequest`, so a
    first Ctrl-C or SIGTERM ends the call at the end of the step in flight, checkpointed).  After each step the
    loop asks :meth:`logs_at` whether to write a log row and calls :meth:`end_step`, which saves when a
    checkpoint is due and says when the call's time is up.  Shared by the one-seed loop and the seeds loop.
    """

    def __init__(self, config: TrainConfig, steps_per_epoch: int, total_steps: int, stop: int,
                 start_step: int) -> None:
        self.config, self.steps_per_epoch, self.total_steps = config, steps_per_epoch, total_steps
        self.stop, self.start_step = stop, start_step
        self.t_call = self.t_ckpt = time.monotonic()
        self.t_warm: float | None = None
        self.stop_request = StopRequest()
        self.interrupt: KeyboardInterrupt | None = None  # the interrupt end_step raised after its checkpoint

    def __enter__(self) -> "CallSchedule":
        self.stop_request.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        self.stop_request.__exit__(exc_type, exc, tb)
        if isinstance(exc, KeyboardInterrupt) and stopped_call(exc):
            self.interrupt = exc  # kept: the loop builds its result, then raise_kept raises it with the result
            return True
        return False

    def raise_kept(self, result: Any) -> None:
        """Raise the kept interrupt of a first Ctrl-C or SIGTERM, if any, with the call's ``result`` attached
        (``train_result``: the command writes the call's provenance from it before exiting 130 / 143)."""
        if self.interrupt is not None:
            self.interrupt.train_result = result
            raise self.interrupt

    def logs_at(self, step: int) -> bool:
        """Whether a log row is written after ``step``: every ``log_every`` steps, at each epoch end, at the end."""
        return step % self.config.log_every == 0 or step % self.steps_per_epoch == 0 or step == self.total_steps

    def end_step(self, step: int, save: Callable[[], None], bar: Any) -> bool:
        """After ``step``: ``save()`` (read the pending terms back, write the checkpoint) when one is due
        (:func:`checkpoint_due`) or a stop was asked for, and then, for a stop, close ``bar`` and raise its
        interrupt; note the end of the warm-up.  Returns whether this call's time is up."""
        due, out_of_time = checkpoint_due(self.config, step, self.steps_per_epoch, self.stop, self.t_call,
                                          self.t_ckpt)
        if due or self.stop_request.requested:
            save()
            self.t_ckpt = time.monotonic()
        if self.stop_request.requested:  # a Ctrl-C or SIGTERM during this step: it is checkpointed, now stop
            bar.close()
            try:
                self.stop_request.raise_interrupt()
            except KeyboardInterrupt as exc:
                exc.checkpointed_step = step  # the loop may describe the call (see stopped_call)
                raise
        if step - self.start_step == WARMUP_STEPS:
            self.t_warm = time.monotonic()
        return out_of_time

    def steady_rate(self, step: int, t_end: float) -> float:
        """This call's steps/s after its warm-up (:func:`steady_rate`)."""
        return steady_rate(step, self.start_step, self.t_warm, t_end)
