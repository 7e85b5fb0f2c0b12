"""The one training loop (Adam, seeded, checkpointed, exactly resumable).

Files written to ``out_dir``:

* ``checkpoint.pt`` — model, optimiser, step, log rows, elapsed time and the
  config (written atomically every ``checkpoint_every_s``, at each epoch end
  and at the end; what it holds and how it is checked:
  :mod:`fusionbench.train.checkpoint`);
* ``log.csv`` — one row every ``log_every`` steps, and ``loss.png`` — the
  loss curves (:mod:`fusionbench.train.progress`);
* ``final.pth`` — the trained fp32 ``state_dict`` only (loadable with
  ``torch.load(..., weights_only=True)``), written when the schedule ends;
* ``config.json`` — the config and the method's params.

Determinism: the model is built on the CPU after ``torch.manual_seed(seed)``
(the same initial weights on every machine) and then moved to
``config.device``; epoch ``e`` visits the patches in the order
``np.random.default_rng([seed, e])`` permutes them (the data order is a pure
function of seed, epoch and patch count, so it needs no saved state beyond
the step); deterministic algorithms are enforced (:func:`configure_torch`),
the thread count is fixed, and any randomness a loss draws comes from torch's
CPU generator, whose state the checkpoint holds.  A resumed run continues at
the saved step with the saved model, optimiser and RNG states, so it ends with
the same weights as an uninterrupted run (bitwise on the same device type and
thread count; ``tests/train`` pins it on CPU).  The checkpoint holds CPU
tensors only, so a run can stop on one machine and resume on another, and it
refuses to resume on other data (:mod:`fusionbench.train.checkpoint`).

A failed run is one line (:class:`TrainError`; the failures and their
classes: :mod:`fusionbench.train.checkpoint`, whose public names this module
re-exports).

Performance options (``config.channels_last``, ``cudnn_benchmark``,
``cuda_graph``; see :class:`~fusionbench.train.config.TrainConfig`) change how
a step is computed, not the schedule: a run may change them when it resumes,
and each call records them, with what the CUDA graph did, in
:attr:`TrainResult.perf`.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..io import write_text_atomic
from .checkpoint import (NonFiniteLoss, atomic_save, check_finite_state, check_run_folders, checked_resume,
                         continue_checkpoint, data_fingerprint, fp32_state, load_resumable, lock_run_folder,
                         nonfinite_stop, remove_stale_temps, run_identity, to_cpu)
# Public names of this module before checkpoint.py was split out of it (a plugin may catch the errors, or pass
# RESUME_OR_START to train): still importable from here.
from .checkpoint import RESUME_OR_START, CheckpointError, NoCheckpointError, TrainError  # noqa: F401
from .config import TrainConfig
from .patches import PatchSet
from .progress import CallSchedule, fold_terms, log_row, patches_seen, plot_losses, progress_bar, write_log

if TYPE_CHECKING:  # pragma: no cover
    import torch


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
    call_steps: int = 0  # steps of this call (a resumed run's earlier calls excluded)
    call_seconds: float = 0.0  # wall time of this call's loop, checkpoints included
    steady_steps_per_s: float = 0.0  # this call's wall rate after its first WARMUP_STEPS steps (0: too few steps)
    perf: dict[str, Any] = field(default_factory=dict)  # this call's performance options and CUDA-graph status

    @property
    def final_path(self) -> Path:
        """The run's ``final.pth`` (trained fp32 ``state_dict``) in ``out_dir``."""
        return self.out_dir / "final.pth"

    @property
    def steps_per_s(self) -> float:
        """Optimiser steps per second of training compute (all calls of a resumed run together)."""
        return min(self.steps, self.total_steps) / self.elapsed_s if self.elapsed_s > 0 else 0.0


def configure_torch(config: TrainConfig) -> torch.device:
    """Threads, deterministic algorithms and precision flags for ``config``; returns the ``torch.device``.

    On CUDA: ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (cuBLAS needs it for
    deterministic matmuls; set before the first CUDA call), cuDNN
    benchmarking as ``config.cudnn_benchmark`` (off by default), TF32 off unless
    ``precision == "tf32"``.  Deterministic algorithms stay enforced with
    benchmarking on: cuDNN then times only deterministic algorithms, so a run
    is deterministic given the algorithms chosen, but the choice (by timing)
    may differ between runs, and with it the last bits.
    """
    import torch

    device = torch.device(config.device)
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {config.device!r} requested but torch {torch.__version__} sees no CUDA device")
        torch.backends.cudnn.benchmark = bool(config.cudnn_benchmark)
        tf32 = config.precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(True)
    return device


def make_optimiser(model: Any, lr: float, *, capturable: bool = False) -> Any:
    """Adam over ``model``'s parameters; ``capturable=True`` (its step count on the device) for a CUDA graph.

    Checkpoints hold the state on the CPU either way: ``load_state_dict``
    moves a saved ``step`` onto the parameters' device for a capturable Adam
    and keeps it on the CPU for the plain one, so a run checkpointed with
    ``--cuda-graph`` resumes without it and the other way round (tested on the
    CPU in ``tests/train/test_perf.py``).
    """
    import torch

    return torch.optim.Adam(model.parameters(), lr=lr, capturable=capturable)


def load_optimiser_state(optimiser: Any, state: dict[str, Any]) -> None:
    """Load a checkpoint's optimiser ``state`` into ``optimiser``, keeping ``optimiser``'s own ``capturable``.

    ``Optimizer.load_state_dict`` would take ``capturable`` from the saved
    param groups: a checkpoint of a ``--cuda-graph`` call would make a plain
    Adam capturable (which cannot step on the CPU), and a plain checkpoint a
    graph's Adam uncapturable (its capture would fail).  The flag says where
    the step count lives, not what Adam computes.
    """
    own = [group.get("capturable", False) for group in optimiser.param_groups]
    groups = [{**group, "capturable": flag} for group, flag in zip(state["param_groups"], own)]
    optimiser.load_state_dict({**state, "param_groups": groups})


def graph_usable(config: TrainConfig, device: Any) -> tuple[bool, str]:
    """Whether ``config.cuda_graph`` can be honoured on ``device``, and the status to record when not."""
    if not config.cuda_graph:
        return False, "off"
    if device.type != "cuda":
        return False, f"not used: CUDA graphs need a CUDA device (training eagerly on {device.type})"
    return True, "pending"


class _SyncWatch:
    """Count the host-device synchronisations torch reports (``set_sync_debug_mode("warn")``) inside ``with``."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.count = enabled, 0

    def __enter__(self) -> "_SyncWatch":
        if self.enabled:
            import warnings

            import torch

            self._caught = warnings.catch_warnings(record=True)
            self._log = self._caught.__enter__()
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            import torch

            torch.cuda.set_sync_debug_mode("default")
            self._caught.__exit__(*exc)
            self.count += sum("synchroniz" in str(w.message) for w in self._log)


def call_perf(config: TrainConfig, graph: Any, graph_status: str) -> dict[str, Any]:
    """What a call computed with (:attr:`TrainResult.perf`): the performance options and what the CUDA graph
    did (``graph``: the :class:`~fusionbench.train.graph.CudaGraphStep`, or ``None`` with ``graph_status``
    saying why there was none)."""
    if graph is not None:
        graph_status = graph.status if graph.status != "pending" else "not captured (no full-size step after warm-up)"
    return {**{k: getattr(config, k) for k in TrainConfig.PERF_OPTIONS}, "cuda_graph_status": graph_status,
            "cuda_graph_steps": graph.replays if graph is not None else 0}


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order in which epoch ``epoch`` visits ``n`` patches."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def train(
    build_model: Callable[[], Any],
    loss_fn: Callable[[Any, Any], tuple[Any, dict[str, float]]],
    patches: PatchSet,
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool | str = False,
    meta: dict[str, Any] | None = None,
    title: str = "",
    count_syncs: bool = False,
) -> TrainResult:
    """Train ``build_model()`` on ``patches`` with Adam under ``config``; see the module docstring.

    ``loss_fn(model, batch)`` returns ``(scalar tensor, {term: float or 0-d tensor})``
    (tensor terms are read back every ``log_every`` steps, not every step).
    With ``resume=True``, continue the ``checkpoint.pt`` in ``out_dir`` (the
    schedule fields of ``config`` must match the checkpoint's; no checkpoint
    there is a :class:`NoCheckpointError`); with ``resume="or_start"``
    (:data:`RESUME_OR_START`) continue it if it is there, else start at step 0
    (one line says so).  A loss term that is NaN or infinite stops the run with
    :class:`NonFiniteLoss` at the next log row or checkpoint (where the terms are
    read back anyway), before any checkpoint or ``final.pth`` holds it.  The torch
    thread count and deterministic-algorithms flag are restored afterwards.
    ``count_syncs=True`` (CUDA; for the probe) counts the host-device
    synchronisations torch reports inside the steps (batch gather and step;
    not the log read-backs or checkpoints) into ``perf["host_syncs_in_steps"]``.
    """
    import torch

    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    held: list[Any] = []  # the run folder's lock (lock_run_folder), released here
    try:
        return _train(build_model, loss_fn, patches, config, out_dir, resume=resume, meta=meta, title=title,
                      count_syncs=count_syncs, held=held)
    finally:
        for lock in held:
            lock.close()
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _train(
    build_model: Callable[[], Any],
    loss_fn: Callable[[Any, Any], tuple[Any, dict[str, float]]],
    patches: PatchSet,
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool | str = False,
    meta: dict[str, Any] | None = None,
    title: str = "",
    count_syncs: bool = False,
    held: list[Any] | None = None,
) -> TrainResult:
    """:func:`train` without restoring torch's thread count and deterministic flag (it does that around this)."""
    import torch

    out_dir = Path(out_dir)
    ckpt_path = out_dir / "checkpoint.pt"
    resume = checked_resume(resume)
    check_run_folders([ckpt_path], resume)
    device = configure_torch(config)  # before the folder is made: a missing CUDA device leaves nothing behind
    torch.manual_seed(config.seed)
    model = build_model().to(device)  # before the folder is made too: a model that cannot be built leaves nothing
    out_dir.mkdir(parents=True, exist_ok=True)
    (held if held is not None else []).append(lock_run_folder(out_dir))  # before the checkpoint is read
    remove_stale_temps(out_dir)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    use_graph, graph_status = graph_usable(config, device)
    if config.cuda_graph and not use_graph:
        print(f"train: --cuda-graph {graph_status}", file=sys.stderr, flush=True)
    optimiser = make_optimiser(model, config.lr, capturable=use_graph)
    patches.to(config.device)
    fingerprint = data_fingerprint(patches.images)
    steps_per_epoch = math.ceil(len(patches) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    step, elapsed, rows = 0, 0.0, []
    ckpt_step: int | None = None  # the step checkpoint.pt holds (None: none written yet)
    acc: dict[str, float] = {}  # loss terms summed since the last log row
    n_acc, seen_acc = 0, 0
    if resume and ckpt_path.exists():
        ckpt = load_resumable(ckpt_path, config, len(patches), fingerprint, meta)
        continue_checkpoint(ckpt, ckpt_path, config, total_steps, steps_per_epoch)
        model.load_state_dict(ckpt["model"])
        load_optimiser_state(optimiser, ckpt["optimiser"])
        torch.set_rng_state(ckpt["torch_rng"])
        step, elapsed, rows = ckpt["step"], ckpt["elapsed_s"], ckpt["rows"]
        ckpt_step = step
        pending = ckpt.get("pending", ({}, 0, 0))
        acc, n_acc, seen_acc = dict(pending[0]), pending[1], pending[2]
    elif resume:
        print(f"train: --resume-or-start: no checkpoint in {out_dir}; starting a new run at step 0", file=sys.stderr,
              flush=True)
    write_text_atomic(out_dir / "config.json", json.dumps({"config": config.to_dict(), "meta": meta or {},
                                                           "patches": len(patches), "data_fingerprint": fingerprint},
                                                          indent=2, default=str))
    write_log(rows, out_dir / "log.csv")

    def checkpoint() -> None:
        nonlocal ckpt_step
        state = {"model": to_cpu(model.state_dict()), "optimiser": to_cpu(optimiser.state_dict())}
        try:  # a NaN model is never written over the last good checkpoint
            check_finite_state(state, step)
        except NonFiniteLoss as exc:
            raise nonfinite_stop(exc, "", ckpt_path, ckpt_step) from None
        ckpt_step = step
        atomic_save({**state, "step": step, "elapsed_s": elapsed, "rows": rows, "config": config.to_dict(),
                     "torch_rng": torch.get_rng_state(), "pending": (acc, n_acc, seen_acc),
                     "data": {"patches": len(patches), "fingerprint": fingerprint}, "run": run_identity(meta)},
                    ckpt_path)
        write_log(rows, out_dir / "log.csv")
        plot_losses(rows, out_dir / "loss.png", title)

    stop = total_steps if config.stop_after_steps is None else min(total_steps, config.stop_after_steps)
    model.train()
    bar = progress_bar(config.progress, total_steps, step)
    t_log = time.perf_counter()
    last_terms: dict[str, float] = {}
    bf16 = config.precision == "bf16"

    def body(batch: Any) -> dict[str, Any]:
        """One step without zero_grad: forward and loss (bf16 autocast if asked), backward, Adam."""
        # autocast's cast cache must be off while a graph is captured (PyTorch's CUDA-graphs notes)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16, cache_enabled=not use_graph):
            loss, terms = loss_fn(model, batch)
        loss.backward()
        optimiser.step()
        return terms

    watch = _SyncWatch(count_syncs and device.type == "cuda")
    graph = None
    if use_graph:
        from .graph import CudaGraphStep

        graph = CudaGraphStep(body, optimiser, config.batch_size)
    pending: list[dict[str, Any]] = []  # loss terms not yet read back from the device (see fold_terms)

    def fold_pending() -> None:
        nonlocal acc, last_terms
        if pending:  # NonFiniteLoss at the first non-finite step (before any checkpoint holds it)
            try:
                acc, last_terms = fold_terms(pending, acc, first_step=step - len(pending) + 1)
            except NonFiniteLoss as exc:
                raise nonfinite_stop(exc, "", ckpt_path, ckpt_step) from None
            pending.clear()

    def save() -> None:
        fold_pending()
        checkpoint()

    order_epoch = -1
    with CallSchedule(config, steps_per_epoch, total_steps, stop, step) as call:  # Ctrl-C: stop, checkpointed
        while step < stop:
            epoch, pos = divmod(step, steps_per_epoch)
            if epoch != order_epoch:  # the epoch's order, on the device once (a step then copies nothing from the host)
                order_epoch = epoch
                order = torch.from_numpy(epoch_order(len(patches), config.seed, epoch).astype(np.int64)).to(device)
            t0 = time.perf_counter()
            with watch:
                batch = patches.batch_tensor(order[pos * config.batch_size:(pos + 1) * config.batch_size])
                if config.channels_last:
                    batch = batch.contiguous(memory_format=memory_format)
                if graph is not None:
                    terms = graph(batch, step + 1)
                else:
                    optimiser.zero_grad(set_to_none=True)
                    terms = body(batch)
            step += 1
            pending.append(terms)
            n_acc += 1
            seen_acc += batch.shape[0]
            logging = call.logs_at(step)
            if logging:
                fold_pending()  # waits for the device: the steps since the last row are timed up to here
            elapsed += time.perf_counter() - t0
            if logging:
                dt = time.perf_counter() - t_log
                row = log_row(step, steps_per_epoch, len(patches), config.batch_size, acc, n_acc, config.lr,
                              seen_acc / dt if dt > 0 else 0.0, elapsed)
                rows.append(row)
                bar.set_postfix(loss=f"{row.get('loss_total', float('nan')):.4g}", pps=f"{row['patches_per_s']:.1f}")
                acc, n_acc, seen_acc, t_log = {}, 0, 0, time.perf_counter()
            bar.update(1)
            if call.end_step(step, save, bar):  # this call's time is up
                break
    bar.close()
    fold_pending()
    finished = step >= total_steps and call.interrupt is None  # stopped at the last step: --resume writes it
    if finished:
        checkpoint()  # checks the weights first: no final.pth of a model that is not finite
        atomic_save(fp32_state(model.state_dict()), out_dir / "final.pth")  # never a half-written final.pth
    t_end = time.monotonic()
    # the patches trained on (an epoch's short last batch counted as it is; session 39: steps × batch size)
    pps = (patches_seen(min(step, total_steps), steps_per_epoch, len(patches), config.batch_size) / elapsed
           if elapsed > 0 else 0.0)
    final = {k[5:]: v for k, v in rows[-1].items() if k.startswith("loss_")} if rows else last_terms
    steady = call.steady_rate(step, t_end)
    perf = call_perf(config, graph, graph_status)
    if count_syncs:
        perf["host_syncs_in_steps"] = watch.count if watch.enabled else None
    result = TrainResult(out_dir, step, total_steps, finished, elapsed, final, pps, step - call.start_step,
                         t_end - call.t_call, steady, perf)
    call.raise_kept(result)  # a first Ctrl-C or SIGTERM, with this call's result
    return result
