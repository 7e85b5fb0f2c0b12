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
tensors only, so a run can stop on one machine and resume on another
(``--stop-after-steps``, then ``--resume``), e.g. across device sessions; it
also records the patch count and a fingerprint of the prepared images, and
refuses to resume on other data.

A failed run is one line (:class:`TrainError`): a NaN or infinite loss term
stops it at the next log row or checkpoint (where the terms are read back
anyway, so a step never waits for the device), before any checkpoint or
``final.pth`` holds it, and a checkpoint whose weights or Adam state are not
finite is never written (:class:`NonFiniteLoss`); ``resume=True`` without a
checkpoint is a :class:`NoCheckpointError` (``resume="or_start"`` starts
instead); a checkpoint that cannot be read, a :class:`CheckpointError` naming
it (checkpoints are loaded with ``weights_only=True``).

Performance options (``config.channels_last``, ``cudnn_benchmark``,
``cuda_graph``; see :class:`~fusionbench.train.config.TrainConfig`) change how
a step is computed, not the schedule: a run may change them when it resumes,
and each call records them, with what the CUDA graph did, in
:attr:`TrainResult.perf`.
"""
from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .config import TrainConfig
from .patches import PatchSet

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


#: steps of a call left out of its steady-state rate (CUDA context, kernel selection, caches warming up)
WARMUP_STEPS = 10


def _atomic_save(obj: Any, path: Path) -> None:
    import torch

    from fusionbench.io import atomic_write

    with atomic_write(path) as tmp:
        torch.save(obj, tmp)


class TrainError(Exception):
    """A training problem reported as one line (``python -m fusionbench.train`` prints it without a traceback)."""


class CheckpointError(TrainError, ValueError):
    """A ``checkpoint.pt`` that cannot be read (corrupt, truncated, not a checkpoint); the message names the file."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: not a readable training checkpoint ({reason}); restore it from a copy, or start "
                         "again in another --out (or after deleting the file)")
        self.path, self.reason = path, reason


class NoCheckpointError(TrainError, FileNotFoundError):
    """``resume=True`` (``--resume``) but the run folder holds no checkpoint; the message names the expected path."""


class NonFiniteLoss(TrainError, FloatingPointError):
    """A loss term (or, at a checkpoint, a weight) became NaN or infinite: the run stops without writing it."""


#: ``resume`` value of :func:`train` (``--resume-or-start``): continue the checkpoint when there is one, else start
RESUME_OR_START = "or_start"


def _resume_mode(resume: bool | str) -> bool | str:
    if resume not in (False, True, RESUME_OR_START):
        raise ValueError(f"resume must be False, True or {RESUME_OR_START!r}, not {resume!r}")
    return resume


def load_checkpoint(path: Path) -> dict[str, Any]:
    """``checkpoint.pt`` at ``path`` on the CPU, or a one-line :class:`CheckpointError` naming it.

    Loaded with ``weights_only=True``: a checkpoint holds tensors, dicts, lists,
    tuples, numbers, strings and ``None`` only (the data order needs no saved
    RNG state, and torch's CPU generator state is a tensor), so a checkpoint
    from another machine cannot run code when it is read.
    """
    import pickle
    import zipfile

    import torch

    try:
        size = path.stat().st_size
        if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; its directory is at the end
            raise CheckpointError(path, f"not a torch checkpoint: {size} bytes without a zip directory "
                                        "(truncated or overwritten?)")
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except pickle.UnpicklingError as exc:  # weights_only refused an object: not what the loop writes
        import re

        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        what = f" such as {found.group(1)}" if found else ""
        raise CheckpointError(path, f"it holds objects{what} beside tensors and plain data, which are not "
                                    "unpickled: a checkpoint of this loop holds none") from None
    except Exception as exc:  # zip and torch errors alike: corrupt, not a checkpoint
        why = (str(exc).strip().splitlines() or [""])[0][:160]
        raise CheckpointError(path, f"{type(exc).__name__}: {why}") from None
    missing = [k for k in ("model", "optimiser", "step", "config", "torch_rng") if not isinstance(ckpt, dict)
               or k not in ckpt]
    if missing:
        raise CheckpointError(path, f"no {', '.join(missing)}")
    return ckpt


def check_run_folders(ckpt_paths: list[Path], resume: bool | str) -> None:
    """Before anything is loaded: may a run with ``resume`` start in the folders of ``ckpt_paths``?

    Without ``resume``, a folder that holds a checkpoint is not started afresh over it (its steps would be
    lost at the first checkpoint): a ``FileExistsError`` says how far that run got and how to go on (a
    checkpoint that cannot be read is reported as such, never loaded further).  With ``resume=True``
    (``--resume``) every folder must hold one: a mistyped ``--out`` must not restart a long run from step 0
    (:class:`NoCheckpointError`, naming the path).  ``RESUME_OR_START`` (``--resume-or-start``, for job
    scripts that run the same line every session) accepts either.
    """
    resume = _resume_mode(resume)
    held = [p for p in ckpt_paths if p.is_file()]
    if resume is True:
        missing = [p for p in ckpt_paths if not p.is_file()]
        if missing:
            where = str(missing[0]) if len(missing) == 1 else f"{missing[0]} (and {len(missing) - 1} more)"
            raise NoCheckpointError(f"--resume: no checkpoint at {where}; check --out (to start a new run there, "
                                    "leave out --resume, or use --resume-or-start)")
        return
    if resume or not held:
        return
    more = f" and {len(held) - 1} more" if len(held) > 1 else ""
    try:
        step = load_checkpoint(held[0]).get("step", "?")
    except CheckpointError as exc:  # reported, not loaded further: existence alone keeps the folder
        raise FileExistsError(f"{held[0].parent} holds an unreadable {held[0].name}{more} ({exc.reason}): restore it "
                              "from a copy and --resume, or give another --out (or delete the folder to start "
                              "again)") from None
    raise FileExistsError(f"{held[0].parent} holds a run at step {step} ({held[0].name}{more}): continue it with "
                          "--resume, or give another --out (or delete the folder to start again)")


def check_finite_state(state: dict[str, Any], step: int) -> None:
    """:class:`NonFiniteLoss` if a floating tensor of the (nested, CPU) ``state`` holds a NaN or an infinity."""
    import torch

    def bad(obj: Any, prefix: str) -> list[str]:
        if isinstance(obj, torch.Tensor):
            return [prefix] if obj.is_floating_point() and not bool(torch.isfinite(obj).all()) else []
        if isinstance(obj, dict):
            return [n for k, v in obj.items() for n in bad(v, f"{prefix}.{k}" if prefix else str(k))]
        if isinstance(obj, (list, tuple)):
            return [n for i, v in enumerate(obj) for n in bad(v, f"{prefix}[{i}]")]
        return []

    names = bad(state, "")
    if names:
        raise NonFiniteLoss(f"weights or optimiser state not finite after step {step} "
                            f"({', '.join(names[:3])}{' ...' if len(names) > 3 else ''})")


def nonfinite_terms(step: int, terms: dict[str, float]) -> str:
    """What is wrong when a loss is not finite at ``step``: the step and its non-finite terms."""
    return f"loss not finite at step {step} ({', '.join(f'{k}={v}' for k, v in terms.items() if not math.isfinite(v))})"


def nonfinite_stop(problem: NonFiniteLoss, what: str, ckpt_path: Path, ckpt_step: int | None,
                   more: str = "") -> NonFiniteLoss:
    """The one line of a run stopped by ``problem``: which step and terms, and what its folder keeps."""
    kept = (f"{ckpt_path} keeps step {ckpt_step} (finite)" if ckpt_step is not None
            else f"no checkpoint was written ({ckpt_path.parent} holds nothing to resume)")
    return NonFiniteLoss(f"train{what}: {problem}; stopped{more}: {kept}, no final.pth, nothing exported "
                         "(lower --lr, or check the data)")


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


def data_fingerprint(images: np.ndarray) -> str:
    """sha256 (first 16 hex digits) of the prepared images' bytes and shape: the training data's identity."""
    import hashlib

    h = hashlib.sha256(str(images.shape).encode())
    h.update(np.ascontiguousarray(images, np.float32).tobytes())
    return h.hexdigest()[:16]


def _to_cpu(obj: Any) -> Any:
    """A copy of a (nested) state dict with every tensor on the CPU."""
    import torch

    if isinstance(obj, torch.Tensor):  # contiguous: a channels-last run's checkpoint is like any other
        return obj.detach().cpu().contiguous()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _fold_terms(pending: list[dict[str, Any]], acc: dict[str, float],
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


def load_resumable(ckpt_path: Path, config: TrainConfig, n_patches: int, fingerprint: str) -> dict[str, Any]:
    """The checkpoint at ``ckpt_path``, if ``config`` may continue it; else ``ValueError`` saying why.

    Only the fields of :attr:`TrainConfig.RESUMABLE_CHANGES` may differ, and the
    training data (patch count, fingerprint of the prepared images) must be the same.
    """
    ckpt = load_checkpoint(ckpt_path)
    defaults = TrainConfig().to_dict()
    saved = {k: v for k, v in {**{k: defaults[k] for k in ("precision",)}, **ckpt["config"]}.items()
             if k not in TrainConfig.RESUMABLE_CHANGES}
    now = {k: v for k, v in config.to_dict().items() if k not in TrainConfig.RESUMABLE_CHANGES}
    if saved != now:
        diff = {k: (saved.get(k), now.get(k)) for k in set(saved) | set(now) if saved.get(k) != now.get(k)}
        raise ValueError(f"cannot resume {ckpt_path}: schedule differs (saved, now): {diff}")
    data = ckpt.get("data", {"patches": n_patches, "fingerprint": fingerprint})
    if data != {"patches": n_patches, "fingerprint": fingerprint}:
        raise ValueError(f"cannot resume {ckpt_path}: other training data (saved {data}, now "
                         f"{ {'patches': n_patches, 'fingerprint': fingerprint} })")
    return ckpt


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
    fig.savefig(path, dpi=100)
    plt.close(fig)


class _NoBar:
    def set_postfix(self, **_: Any) -> None: ...

    def update(self, n: int = 1) -> None: ...

    def close(self) -> None: ...


def _progress_bar(enabled: bool, total: int, initial: int) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)


def log_row(step: int, steps_per_epoch: int, n_patches: int, batch_size: int, terms: dict[str, float],
            n_steps: int, lr: float, patches_per_s: float, elapsed: float) -> dict[str, Any]:
    """One ``log.csv`` row: the step, epoch, patches seen, each term's mean over ``n_steps``, lr, rate, time."""
    epoch, pos = divmod(step - 1, steps_per_epoch)
    row = {"step": step, "epoch": step / steps_per_epoch,
           "patches_seen": epoch * n_patches + min((pos + 1) * batch_size, n_patches)}
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


def fp32_state(state: dict[str, Any]) -> dict[str, Any]:
    """A ``final.pth`` state dict: CPU, contiguous copies, floating tensors as float32."""
    import torch

    return {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).contiguous().clone()
            for k, v in state.items()}


def steady_rate(step: int, start_step: int, t_warm: float | None, t_end: float) -> float:
    """Steps/s of a call after its first :data:`WARMUP_STEPS` steps (0 when too few steps)."""
    if t_warm is not None and step - start_step > WARMUP_STEPS and t_end > t_warm:
        return (step - start_step - WARMUP_STEPS) / (t_end - t_warm)
    return 0.0


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
    try:
        return _train(build_model, loss_fn, patches, config, out_dir, resume=resume, meta=meta, title=title,
                      count_syncs=count_syncs)
    finally:
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
) -> TrainResult:
    """:func:`train` without restoring torch's thread count and deterministic flag (it does that around this)."""
    import torch

    out_dir = Path(out_dir)
    ckpt_path = out_dir / "checkpoint.pt"
    resume = _resume_mode(resume)
    check_run_folders([ckpt_path], resume)
    device = configure_torch(config)  # before the folder is made: a missing CUDA device leaves nothing behind
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    model = build_model().to(device)
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
        ckpt = load_resumable(ckpt_path, config, len(patches), fingerprint)
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
    (out_dir / "config.json").write_text(json.dumps({"config": config.to_dict(), "meta": meta or {},
                                                     "patches": len(patches), "data_fingerprint": fingerprint},
                                                    indent=2, default=str))
    write_log(rows, out_dir / "log.csv")

    def checkpoint() -> None:
        nonlocal ckpt_step
        state = {"model": _to_cpu(model.state_dict()), "optimiser": _to_cpu(optimiser.state_dict())}
        try:  # a NaN model is never written over the last good checkpoint
            check_finite_state(state, step)
        except NonFiniteLoss as exc:
            raise nonfinite_stop(exc, "", ckpt_path, ckpt_step) from None
        ckpt_step = step
        _atomic_save({**state, "step": step, "elapsed_s": elapsed, "rows": rows, "config": config.to_dict(),
                      "torch_rng": torch.get_rng_state(), "pending": (acc, n_acc, seen_acc),
                      "data": {"patches": len(patches), "fingerprint": fingerprint}}, ckpt_path)
        write_log(rows, out_dir / "log.csv")
        plot_losses(rows, out_dir / "loss.png", title)

    stop = total_steps if config.stop_after_steps is None else min(total_steps, config.stop_after_steps)
    model.train()
    bar = _progress_bar(config.progress, total_steps, step)
    t_call = time.monotonic()
    t_log = time.perf_counter()
    t_ckpt = time.monotonic()
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
    pending: list[dict[str, Any]] = []  # loss terms not yet read back from the device (see _fold_terms)

    def fold_pending() -> None:
        nonlocal acc, last_terms
        if pending:  # NonFiniteLoss at the first non-finite step (before any checkpoint holds it)
            try:
                acc, last_terms = _fold_terms(pending, acc, first_step=step - len(pending) + 1)
            except NonFiniteLoss as exc:
                raise nonfinite_stop(exc, "", ckpt_path, ckpt_step) from None
            pending.clear()

    start_step, t_warm = step, None
    order_epoch = -1
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
        logging = step % config.log_every == 0 or step % steps_per_epoch == 0 or step == total_steps
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
        due, out_of_time = checkpoint_due(config, step, steps_per_epoch, stop, t_call, t_ckpt)
        if due:
            fold_pending()
            checkpoint()
            t_ckpt = time.monotonic()
        if step - start_step == WARMUP_STEPS:
            t_warm = time.monotonic()
        if out_of_time:
            break
    bar.close()
    fold_pending()
    finished = step >= total_steps
    if finished:
        checkpoint()  # checks the weights first: no final.pth of a model that is not finite
        torch.save(fp32_state(model.state_dict()), out_dir / "final.pth")
    t_end = time.monotonic()
    pps = (min(step, total_steps) * config.batch_size / elapsed) if elapsed > 0 else 0.0
    final = {k[5:]: v for k, v in rows[-1].items() if k.startswith("loss_")} if rows else last_terms
    steady = steady_rate(step, start_step, t_warm, t_end)
    if graph is not None:
        graph_status = graph.status if graph.status != "pending" else "not captured (no full-size step after warm-up)"
    perf = {**{k: getattr(config, k) for k in TrainConfig.PERF_OPTIONS}, "cuda_graph_status": graph_status,
            "cuda_graph_steps": graph.replays if graph is not None else 0}
    if count_syncs:
        perf["host_syncs_in_steps"] = watch.count if watch.enabled else None
    return TrainResult(out_dir, step, total_steps, finished, elapsed, final, pps, step - start_step,
                       t_end - t_call, steady, perf)
