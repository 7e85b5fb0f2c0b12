"""A training run's checkpoint state: writing, reading and checking it, and the one-line errors of a run.

``checkpoint.pt`` holds the model, optimiser, step, log rows, elapsed time and
the config (:func:`~fusionbench.train.loop.train` writes it atomically with
:func:`atomic_save` every ``checkpoint_every_s``, at each epoch end and at the
end; :func:`load_checkpoint` reads it).  It holds CPU tensors only
(:func:`to_cpu`), so a run can stop on one machine and resume on another
(``--stop-after-steps``, then ``--resume``), e.g. across device sessions; it
also records the patch count and a fingerprint of the prepared images
(:func:`data_fingerprint`), and :func:`load_resumable` refuses to resume on
other data.  ``final.pth`` is the trained fp32 ``state_dict`` only
(:func:`fp32_state`).

A failed run is one line (:class:`TrainError`): a NaN or infinite loss term
stops it at the next log row or checkpoint (where the terms are read back
anyway, so a step never waits for the device), before any checkpoint or
``final.pth`` holds it, and a checkpoint whose weights or Adam state are not
finite is never written (:class:`NonFiniteLoss`); ``resume=True`` without a
checkpoint is a :class:`NoCheckpointError` (``resume="or_start"``,
:data:`RESUME_OR_START`, starts instead); a checkpoint that cannot be read, a
:class:`CheckpointError` naming it (checkpoints are loaded with
``weights_only=True``).
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .config import TrainConfig


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` atomically; a failed write (a full disk, an I/O error) is one
    :class:`CheckpointWriteError` naming the file, and the file keeps its previous contents.

    Written by :func:`fusionbench.io.atomic_write` with ``keep_name``: torch names the archive's root folder after
    the file, so the bytes are those of a direct ``torch.save(obj, path)`` (a ``final.pth`` and its exported copy
    stay byte-identical between identical runs)."""
    import shutil

    import torch

    from fusionbench.io import atomic_write

    path = Path(path)
    try:
        with atomic_write(path, keep_name=True) as tmp:
            torch.save(obj, tmp)
    except (OSError, RuntimeError) as exc:  # torch reports ENOSPC as "basic_ios::clear: iostream error" or so
        failure = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        try:
            free = f", {shutil.disk_usage(path.parent).free / 2**20:.2f} MiB free there"
        except OSError:
            free = ""
        then = " and continue with --resume" if path.name in ("checkpoint.pt", "final.pth") else ""
        raise CheckpointWriteError(f"cannot write {path} ({failure}{free}); it keeps its previous contents (if any): "
                                   f"check the disk (full? writable?){then}") from None


class TrainError(Exception):
    """A training problem reported as one line (``python -m fusionbench.train`` prints it without a traceback)."""


class CheckpointWriteError(TrainError, OSError):
    """``checkpoint.pt`` or ``final.pth`` could not be written (a full disk?); the message names the file."""


class CheckpointError(TrainError, ValueError):
    """A ``checkpoint.pt`` that cannot be read (corrupt, truncated, not a checkpoint); the message names the file."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: not a readable training checkpoint ({reason}); restore it from a copy, or start "
                         "again in another --out (or after deleting the file)")
        self.path, self.reason = path, reason


class ResumeError(TrainError, ValueError):
    """A checkpoint this call cannot continue: another run, schedule or training data, or more steps than the
    schedule has; the message names the checkpoint (a ``ValueError`` too, as it was before session 39)."""


class NoCheckpointError(TrainError, FileNotFoundError):
    """``resume=True`` (``--resume``) but the run folder holds no checkpoint; the message names the expected path."""


class RunInUse(TrainError, RuntimeError):
    """Another process is training in the run folder (it holds the folder's ``.lock``)."""


def lock_run_folder(folder: Path) -> Any:
    """Hold ``folder/.lock`` (``flock``) for the calling run: a second run in the same folder (two job lines with
    one label, a job started twice) is one :class:`RunInUse` line instead of two runs overwriting each other's
    checkpoints.  Returns the open lock file; closing it releases the lock (so does the process's end, even
    ``kill -9``).  A file system without locks is not locked."""
    import fcntl
    import os

    lock = open(Path(folder) / ".lock", "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "?"
        lock.close()
        raise RunInUse(f"{folder} is in use by another training process (pid {holder}, holding {folder}/.lock); "
                       "wait for it to end, or give another --out") from None
    except OSError:
        return lock
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


class NonFiniteLoss(TrainError, FloatingPointError):
    """A loss term (or, at a checkpoint, a weight) became NaN or infinite: the run stops without writing it."""


#: ``resume`` value of :func:`train` (``--resume-or-start``): continue the checkpoint when there is one, else start
RESUME_OR_START = "or_start"


def checked_resume(resume: bool | str) -> bool | str:
    """``resume`` itself if it is a value :func:`~fusionbench.train.loop.train` accepts, else ``ValueError``."""
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
        with zipfile.ZipFile(path) as archive:  # torch.load does not check the members' CRC-32s: bit rot would load
            bad = archive.testzip()
        if bad is not None:
            raise CheckpointError(path, f"its member {bad.split('/', 1)[-1]} fails its CRC check (corrupted on "
                                        "disk or in a copy)")
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
    resume = checked_resume(resume)
    held = [p for p in ckpt_paths if p.is_file()]
    # a trained final.pth without its checkpoint (deleted to save room, or copied in): only --resume's missing-
    # checkpoint line may follow; starting afresh would replace it at the end (session 39; until then only
    # checkpoint.pt kept a folder)
    bare = [p.parent for p in ckpt_paths if not p.is_file() and (p.parent / "final.pth").is_file()]
    if bare and resume is not True:
        more = f" (and {len(bare) - 1} more)" if len(bare) > 1 else ""
        raise FileExistsError(f"{bare[0]} holds a trained final.pth and no checkpoint.pt{more}: a new run there would "
                              "replace it; give another --out (or move final.pth away to train there again)")
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


def data_fingerprint(images: np.ndarray) -> str:
    """sha256 (first 16 hex digits) of the prepared images' bytes and shape: the training data's identity."""
    import hashlib

    h = hashlib.sha256(str(images.shape).encode())
    h.update(np.ascontiguousarray(images, np.float32).tobytes())
    return h.hexdigest()[:16]


def to_cpu(obj: Any) -> Any:
    """A copy of a (nested) state dict with every tensor on the CPU."""
    import torch

    if isinstance(obj, torch.Tensor):  # contiguous: a channels-last run's checkpoint is like any other
        return obj.detach().cpu().contiguous()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def run_identity(meta: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a run trains (its ``method`` and model ``params``, from the loop's ``meta``), as a checkpoint records it."""
    ident = {k: meta[k] for k in ("method", "params") if k in (meta or {})}
    return ident or None


def check_same_run(ckpt: dict[str, Any], meta: dict[str, Any] | None, ckpt_path: Path) -> None:
    """``ValueError`` unless the checkpoint's run (method, params) is the one ``meta`` describes.

    A checkpoint written before runs were recorded (no ``run``), or a call without ``meta``, is not checked."""
    saved, now = ckpt.get("run"), run_identity(meta)
    if not saved or not now:
        return
    if saved.get("method") != now.get("method"):
        raise ResumeError(f"cannot resume {ckpt_path}: it is a run of {saved.get('method')}, not of "
                         f"{now.get('method')}; give another --out")
    old, new = saved.get("params", {}), now.get("params", {})
    diff = {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)}
    if diff:
        raise ResumeError(f"cannot resume {ckpt_path}: model parameters differ (saved, now): {diff}; resume with the "
                         "run's own --set values, or give another --out")


def load_resumable(ckpt_path: Path, config: TrainConfig, n_patches: int, fingerprint: str,
                   meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The checkpoint at ``ckpt_path``, if ``config`` may continue it; else ``ValueError`` saying why.

    Only the fields of :attr:`TrainConfig.RESUMABLE_CHANGES` may differ, the
    training data (patch count, fingerprint of the prepared images) must be the same, and so must the
    run (method and params, :func:`check_same_run`) when both the checkpoint and ``meta`` name it.
    """
    ckpt = load_checkpoint(ckpt_path)
    check_same_run(ckpt, meta, ckpt_path)
    defaults = TrainConfig().to_dict()
    saved = {k: v for k, v in {**{k: defaults[k] for k in ("precision",)}, **ckpt["config"]}.items()
             if k not in TrainConfig.RESUMABLE_CHANGES}
    now = {k: v for k, v in config.to_dict().items() if k not in TrainConfig.RESUMABLE_CHANGES}
    if saved != now:
        diff = {k: (saved.get(k), now.get(k)) for k in set(saved) | set(now) if saved.get(k) != now.get(k)}
        raise ResumeError(f"cannot resume {ckpt_path}: schedule differs (saved, now): {diff}")
    data = ckpt.get("data", {"patches": n_patches, "fingerprint": fingerprint})
    if data != {"patches": n_patches, "fingerprint": fingerprint}:
        raise ResumeError(f"cannot resume {ckpt_path}: other training data (saved {data}, now "
                         f"{ {'patches': n_patches, 'fingerprint': fingerprint} })")
    return ckpt


def continue_checkpoint(ckpt: dict[str, Any], ckpt_path: Path, config: TrainConfig, total_steps: int,
                        steps_per_epoch: int) -> None:
    """Before a resumed run trains on: may ``config`` continue the checkpoint's step, and what changes.

    ``ValueError`` when the run has done more steps than ``config.epochs`` gives (the loop used to call such a run
    finished, and wrote a ``final.pth`` of more steps than its provenance said); one line when ``--epochs`` changes
    the run's length; and when a finished run is extended, its ``final.pth`` (and the ``provenance.json`` that
    describes it) are kept as ``final.step<S>.pth`` and ``provenance.step<S>.json`` (:func:`set_aside_final`)."""
    step, saved = int(ckpt["step"]), ckpt["config"].get("epochs")
    if step > total_steps:
        raise ResumeError(f"cannot resume {ckpt_path}: the run has done {step} steps, more than --epochs "
                         f"{config.epochs} gives ({total_steps} steps, {steps_per_epoch} per epoch); give --epochs "
                         f"{math.ceil(step / steps_per_epoch)} or more (the run's own: {saved})")
    if saved is not None and saved != config.epochs:
        how = "extends" if config.epochs > saved else "shortens"
        print(f"train: {ckpt_path.parent}: --epochs {config.epochs} {how} the run from {saved} to {config.epochs} "
              f"epochs ({total_steps} steps; it is at step {step})", file=sys.stderr, flush=True)
    if step < total_steps:
        set_aside_final(ckpt_path.parent, step)


def set_aside_final(folder: Path, step: int) -> None:
    """A finished run being extended: its ``final.pth`` and ``provenance.json`` renamed ``final.step<S>.pth`` and
    ``provenance.step<S>.json`` (``S``: the step they were written at), so that the folder's ``final.pth`` is
    never the weights of an earlier schedule while the longer one runs (or after it is interrupted), and nothing
    is lost. The run's folder lock is held."""
    final = folder / "final.pth"
    if not final.is_file():
        return
    kept = [final.name]
    os.replace(final, folder / f"final.step{step}.pth")
    if (folder / "provenance.json").is_file():
        os.replace(folder / "provenance.json", folder / f"provenance.step{step}.json")
        kept.append("provenance.json")
    print(f"train: {folder}: the finished run's {' and '.join(kept)} (step {step}) kept as final.step{step}.pth"
          + (f" and provenance.step{step}.json" if len(kept) > 1 else "")
          + "; final.pth is written when the longer run finishes", file=sys.stderr, flush=True)


def remove_stale_temps(folder: Path) -> None:
    """Remove the temporary files and folders (``.<name>.<pid>@<host>.<hex>.tmp``, :func:`fusionbench.io.atomic_write`'s)
    that killed writers (``kill -9`` while a checkpoint, ``final.pth``, the log, the loss plot, ``config.json`` or
    ``provenance.json`` was written) left in a run folder; those of a live process are kept
    (:func:`fusionbench.process_owner.sweep_stale`)."""
    from fusionbench.io import ATOMIC_TEMP_NAME
    from fusionbench.process_owner import sweep_stale

    sweep_stale(folder, ATOMIC_TEMP_NAME)


def fp32_state(state: dict[str, Any]) -> dict[str, Any]:
    """A ``final.pth`` state dict: CPU, contiguous copies, floating tensors as float32."""
    import torch

    return {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).contiguous().clone()
            for k, v in state.items()}
