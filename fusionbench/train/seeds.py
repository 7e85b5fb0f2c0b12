"""Several seeds of one model trained together in one process (``fusionbench train NAME --seeds 0,1,2``).

Small networks leave an accelerator mostly idle: a ``mopa`` step is about a
thousand small kernels, and their launches, not their arithmetic, set the
pace.  K runs that differ only in their seed have the same architecture, so
they can run as one: the K models' parameters are stacked
(``torch.func.stack_module_state``), one copy of the module is evaluated over
the stack with ``torch.func.vmap`` (each convolution becomes one grouped
convolution K times as wide), the K losses are summed and differentiated
once, and one Adam steps the stacked parameters.

Why this is K separate runs, in maths:

* the sum's gradient with respect to model k's parameters is model k's own
  gradient (the models share nothing, and d(sum)/d(loss_k) = 1);
* Adam is elementwise with the same hyper-parameters, so one Adam over the
  stacked tensors is K Adams;
* model k is built after ``torch.manual_seed(seed_k)`` on the CPU (the same
  initial weights as its single run) and visits the patches in its own order
  ``epoch_order(n, seed_k, epoch)``.

In floating point it is not bitwise the same: grouped convolutions and the
batched reductions add in another order.  ``tests/train/test_seeds.py``
compares K = 3 batched runs with three single runs (weights and losses to
float tolerance) and pins exact resume of a batched run.

Every seed gets the run folder of its single run, with the same files
(``checkpoint.pt`` in the same layout, ``log.csv``, ``loss.png``,
``config.json``, ``final.pth``): a batched run can be continued singly
(``fusionbench train NAME --seed k --resume``) and single runs at the same
step can be continued together.  The provenance records that the seeds were
trained together (``perf["seeds_together"]``).

Limits (checked, each a ``ValueError`` naming it): the configs may differ
only in ``seed``; the runs being resumed must stand at the same step; the
loss must be ``vmap``-able and return its terms as tensors, and must not draw
random numbers (SwinFusion's flips do: train its seeds singly);
``--channels-last`` is not supported here.
"""
from __future__ import annotations

import copy
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..io import write_text_atomic
from .checkpoint import (NonFiniteLoss, ResumeError, atomic_save, check_finite_state, check_run_folders,
                         checked_resume, continue_checkpoint, data_fingerprint, fp32_state, load_resumable,
                         lock_run_folder, nonfinite_stop, nonfinite_terms, remove_stale_temps, run_identity, to_cpu)
from .config import TrainConfig
from .loop import TrainResult, call_perf, configure_torch, epoch_order, graph_usable, load_optimiser_state
from .patches import PatchSet
from .progress import CallSchedule, log_row, patches_seen, plot_losses, progress_bar, write_log


def check_seed_configs(configs: Sequence[TrainConfig]) -> None:
    """``ValueError`` unless ``configs`` are at least one config that differ only in (distinct) seeds."""
    if not configs:
        raise ValueError("train_seeds needs at least one config")
    seeds = [c.seed for c in configs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds trained together must differ, got {seeds}")
    first = {k: v for k, v in configs[0].to_dict().items() if k != "seed"}
    for c in configs[1:]:
        other = {k: v for k, v in c.to_dict().items() if k != "seed"}
        if other != first:
            diff = {k: (first[k], other[k]) for k in first if first[k] != other[k]}
            raise ValueError(f"seeds trained together may differ only in their seed; also differ: {diff}")
    if configs[0].channels_last:
        raise ValueError("--channels-last is not supported with several seeds in one process")


class _Bound:
    """A module's forward with substituted (per-model, unstacked under vmap) parameters and buffers."""

    def __init__(self, base: Any, params: dict[str, Any], buffers: dict[str, Any]) -> None:
        self.base, self.params, self.buffers = base, params, buffers

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from torch.func import functional_call

        return functional_call(self.base, (self.params, self.buffers), args, kwargs)


def make_stacked_optimiser(params: list[Any], lr: float, *, capturable: bool = False) -> Any:
    """Adam over the stacked parameters (in the order of the single model's ``parameters()``)."""
    import torch

    return torch.optim.Adam(params, lr=lr, capturable=capturable)


def _stacked_optimiser_state(states: list[dict[str, Any]]) -> dict[str, Any]:
    """One optimiser state dict over stacked parameters from K single-run optimiser state dicts."""
    import torch

    merged: dict[int, dict[str, Any]] = {}
    for index, first in states[0]["state"].items():
        entry: dict[str, Any] = {}
        for key, value in first.items():
            values = [s["state"][index][key] for s in states]
            if key == "step":
                if any(float(v) != float(value) for v in values):
                    raise ValueError("the runs' optimisers stand at different steps")
                entry[key] = value.clone() if isinstance(value, torch.Tensor) else value
            else:
                entry[key] = torch.stack(values)
        merged[index] = entry
    return {"state": merged, "param_groups": states[0]["param_groups"]}


def _single_optimiser_state(stacked: dict[str, Any], k: int) -> dict[str, Any]:
    """Model ``k``'s optimiser state dict (the layout of a single run's) from the stacked one."""
    import torch

    state = {index: {key: (value.clone() if key == "step" and isinstance(value, torch.Tensor)
                           else value[k] if isinstance(value, torch.Tensor) else value)
                     for key, value in entry.items()}
             for index, entry in stacked["state"].items()}
    return {"state": state, "param_groups": stacked["param_groups"]}


def train_seeds(
    build_model: Callable[[], Any],
    loss_fn: Callable[[Any, Any], tuple[Any, dict[str, Any]]],
    images: np.ndarray,
    configs: Sequence[TrainConfig],
    out_dirs: Sequence[str | Path],
    *,
    resume: bool | str = False,
    meta: dict[str, Any] | None = None,
    title: str = "",
) -> list[TrainResult]:
    """Train one model per config (configs differing only in seed) together; see the module docstring.

    ``images`` are the prepared N×C×H×W training images (each seed cuts its
    patches with ``PatchSet(images, patch_size, stride, max_patches, seed)``,
    as its single run would).  ``out_dirs[k]`` is seed k's run folder.  With
    ``resume=True`` every folder must hold a ``checkpoint.pt``, all at the same
    step, and they are continued; with ``resume="or_start"`` the same when any
    folder holds one, else every seed starts at step 0.  A seed whose loss or
    weights become NaN or infinite stops them all (:class:`NonFiniteLoss`,
    naming the seed; the rule of :func:`fusionbench.train.loop.train`): every
    checkpoint keeps the last finite step, no ``final.pth`` is written.  Returns one
    :class:`~fusionbench.train.loop.TrainResult` per seed.
    """
    import torch

    configs = list(configs)
    check_seed_configs(configs)
    if len(out_dirs) != len(configs):
        raise ValueError(f"{len(configs)} configs but {len(out_dirs)} run folders")
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    held: list[Any] = []  # the run folders' locks (lock_run_folder), released here
    try:
        return _train_seeds(build_model, loss_fn, images, configs, [Path(d) for d in out_dirs], resume=resume,
                            meta=meta, title=title, held=held)
    finally:
        for lock in held:
            lock.close()
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _train_seeds(build_model, loss_fn, images, configs, out_dirs, *, resume, meta, title,
                 held=None) -> list[TrainResult]:
    import torch
    from torch.func import stack_module_state, vmap

    config, K = configs[0], len(configs)
    seeds = [c.seed for c in configs]
    ckpt_paths = [d / "checkpoint.pt" for d in out_dirs]
    resume = checked_resume(resume)
    check_run_folders(ckpt_paths, resume)
    device = configure_torch(config)
    # the patch sets: one shared set unless a seeded subset differs per seed
    if config.max_patches is None:
        shared = PatchSet(images, config.patch_size, config.stride).to(config.device)
        patch_sets = [shared] * K
    else:
        patch_sets = [PatchSet(images, config.patch_size, config.stride, config.max_patches, s).to(config.device)
                      for s in seeds]
    n = len(patch_sets[0])
    fingerprint = data_fingerprint(np.ascontiguousarray(images, np.float32))
    steps_per_epoch = math.ceil(n / config.batch_size)
    total_steps = steps_per_epoch * config.epochs

    # K models, each built as its single run builds it; the CPU generator state each run would hold afterwards
    models, rng_states = [], []
    for s in seeds:
        torch.manual_seed(s)
        models.append(build_model())
        rng_states.append(torch.get_rng_state())
    names = [name for name, _ in models[0].named_parameters()]
    for d in out_dirs:  # every folder locked before any is read or written: another process in one is one line
        d.mkdir(parents=True, exist_ok=True)
        (held if held is not None else []).append(lock_run_folder(d))
        remove_stale_temps(d)
    step, elapsed = 0, 0.0
    ckpt_step: int | None = None  # the step the checkpoints hold (None: none written yet)
    rows: list[list[dict[str, Any]]] = [[] for _ in range(K)]
    accs: list[dict[str, float]] = [{} for _ in range(K)]
    n_acc, seen_acc = 0, 0
    saved_opt: list[dict[str, Any]] | None = None
    present = [p.exists() for p in ckpt_paths]
    if resume and any(present):
        if not all(present):  # (resume="or_start": all or none)
            missing = [str(p) for p, ok in zip(ckpt_paths, present) if not ok]
            raise ResumeError(f"cannot resume the seeds together: no checkpoint in {missing}")
        ckpts = [load_resumable(p, c, n, fingerprint, meta) for p, c in zip(ckpt_paths, configs)]
        steps = {ck["step"] for ck in ckpts}
        if len(steps) != 1:
            raise ResumeError(f"cannot resume the seeds together: their runs stand at steps "
                             f"{[ck['step'] for ck in ckpts]} (continue them singly to one step first)")
        for p, ck in zip(ckpt_paths, ckpts):
            continue_checkpoint(ck, p, config, total_steps, steps_per_epoch)
        for model, ck in zip(models, ckpts):
            model.load_state_dict(ck["model"])
        rng_states = [ck["torch_rng"] for ck in ckpts]
        step, elapsed = ckpts[0]["step"], max(ck["elapsed_s"] for ck in ckpts)
        ckpt_step = step
        rows = [list(ck["rows"]) for ck in ckpts]
        pendings = [ck.get("pending", ({}, 0, 0)) for ck in ckpts]
        accs = [dict(p[0]) for p in pendings]
        n_acc, seen_acc = pendings[0][1], pendings[0][2]
        saved_opt = [ck["optimiser"] for ck in ckpts]
    elif resume:
        print(f"train: --resume-or-start: no checkpoint in {', '.join(map(str, out_dirs))}; starting new runs at "
              "step 0", file=sys.stderr, flush=True)

    for model in models:
        model.to(device).train()
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    key_order = list(models[0].state_dict().keys())
    del models
    use_graph, graph_status = graph_usable(config, device)
    if config.cuda_graph and not use_graph:
        print(f"train: --cuda-graph {graph_status}", file=sys.stderr, flush=True)
    optimiser = make_stacked_optimiser([params[name] for name in names], config.lr, capturable=use_graph)
    if saved_opt is not None:
        load_optimiser_state(optimiser, _stacked_optimiser_state(saved_opt))
    torch.set_rng_state(rng_states[0])
    rng_probe = torch.get_rng_state()

    for d, c in zip(out_dirs, configs):
        record = {"config": c.to_dict(), "meta": {**(meta or {}), "seeds_together": seeds}, "patches": n,
                  "data_fingerprint": fingerprint}
        write_text_atomic(d / "config.json", json.dumps(record, indent=2, default=str))
        write_log(rows[seeds.index(c.seed)], d / "log.csv")

    def model_state(k: int) -> dict[str, Any]:
        flat = {**{name: p[k] for name, p in params.items()}, **{name: b[k] for name, b in buffers.items()}}
        return {name: flat[name] for name in key_order}

    def checkpoint() -> None:
        nonlocal ckpt_step
        stacked = optimiser.state_dict()
        states = [{"model": to_cpu(model_state(k)), "optimiser": to_cpu(_single_optimiser_state(stacked, k))}
                  for k in range(K)]
        for k, state in enumerate(states):  # every seed checked before any is written (they stay at one step)
            try:
                check_finite_state(state, step)
            except NonFiniteLoss as exc:
                raise stopped(exc, k) from None
        ckpt_step = step
        for k, (d, c) in enumerate(zip(out_dirs, configs)):
            atomic_save({**states[k], "step": step, "elapsed_s": elapsed, "rows": rows[k], "config": c.to_dict(),
                         "torch_rng": rng_states[k], "pending": (accs[k], n_acc, seen_acc),
                         "data": {"patches": n, "fingerprint": fingerprint}, "run": run_identity(meta)}, ckpt_paths[k])
            write_log(rows[k], d / "log.csv")
            plot_losses(rows[k], d / "loss.png", f"{title} seed {c.seed}".strip())

    def stopped(problem: NonFiniteLoss, k: int) -> NonFiniteLoss:
        others = f" with seeds {[s for s in seeds if s != seeds[k]]}" if K > 1 else ""
        return nonfinite_stop(problem, f" seed {seeds[k]}", ckpt_paths[k], ckpt_step, others)

    def one(p: dict[str, Any], b: dict[str, Any], batch: Any) -> tuple[Any, dict[str, Any]]:
        return loss_fn(_Bound(base, p, b), batch)

    batched_loss = vmap(one)
    bf16 = config.precision == "bf16"

    def body(batch: Any) -> dict[str, Any]:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16, cache_enabled=not use_graph):
            try:
                losses, terms = batched_loss(params, buffers, batch)
            except RuntimeError as exc:  # vmap refuses random operations in its default mode
                if "random" in str(exc):
                    raise ValueError(f"the loss draws random numbers: train these seeds singly ({exc})") from exc
                raise
        losses.sum().backward()
        optimiser.step()
        return {name: v.detach() for name, v in terms.items()}

    graph = None
    if use_graph:
        from .graph import CudaGraphStep

        graph = CudaGraphStep(body, optimiser, config.batch_size, batch_dim=1)
    pending: list[dict[str, Any]] = []

    def fold_pending() -> None:
        if not pending:
            return
        term_names = list(pending[0])
        for terms in pending:
            bad = [name for name, v in terms.items() if not isinstance(v, torch.Tensor) or v.shape != (K,)]
            if bad:
                raise ValueError(f"loss terms {bad} are not one value per seed (return them as tensors, no .item())")
        values = torch.stack([torch.stack([terms[t].float() for t in term_names]) for terms in pending]).tolist()
        first = step - len(pending) + 1  # the step of pending[0]; this read-back is the check's only sync
        for i, per_step in enumerate(values):
            for k in range(K):
                if not all(math.isfinite(per_seed[k]) for per_seed in per_step):
                    terms_k = dict(zip(term_names, (v[k] for v in per_step)))
                    raise stopped(NonFiniteLoss(nonfinite_terms(first + i, terms_k)), k)
        for per_step in values:  # step order, as a single run adds them
            for t, per_seed in zip(term_names, per_step):
                for k in range(K):
                    accs[k][t] = accs[k].get(t, 0.0) + per_seed[k]
        pending.clear()

    stop = total_steps if config.stop_after_steps is None else min(total_steps, config.stop_after_steps)

    def save() -> None:
        fold_pending()
        checkpoint()

    bar = progress_bar(config.progress, total_steps, step)
    t_log = time.perf_counter()
    order_epoch = -1
    with CallSchedule(config, steps_per_epoch, total_steps, stop, step) as call:  # Ctrl-C: stop, checkpointed
        while step < stop:
            epoch, pos = divmod(step, steps_per_epoch)
            if epoch != order_epoch:
                order_epoch = epoch
                orders = np.stack([epoch_order(n, s, epoch) for s in seeds]).astype(np.int64)
                orders = torch.from_numpy(orders).to(device)
            t0 = time.perf_counter()
            rows_now = orders[:, pos * config.batch_size:(pos + 1) * config.batch_size]
            if patch_sets[0] is patch_sets[-1]:  # one gather for all seeds
                flat = patch_sets[0].batch_tensor(rows_now.reshape(-1))
                batch = flat.view(K, rows_now.shape[1], *flat.shape[1:])
            else:
                batch = torch.stack([ps.batch_tensor(r) for ps, r in zip(patch_sets, rows_now)])
            if graph is not None:
                terms = graph(batch, step + 1)
            else:
                optimiser.zero_grad(set_to_none=True)
                terms = body(batch)
            if step == call.start_step and not torch.equal(rng_probe, torch.get_rng_state()):
                raise ValueError("the loss draws random numbers from torch's CPU generator: train these seeds singly")
            step += 1
            pending.append(terms)
            n_acc += 1
            seen_acc += batch.shape[1]
            logging = call.logs_at(step)
            if logging:
                fold_pending()
            elapsed += time.perf_counter() - t0
            if logging:
                dt = time.perf_counter() - t_log
                for k in range(K):
                    rows[k].append(log_row(step, steps_per_epoch, n, config.batch_size, accs[k], n_acc, config.lr,
                                           seen_acc / dt if dt > 0 else 0.0, elapsed))
                bar.set_postfix(loss=f"{rows[0][-1].get('loss_total', float('nan')):.4g}")
                accs, n_acc, seen_acc, t_log = [{} for _ in range(K)], 0, 0, time.perf_counter()
            bar.update(1)
            if call.end_step(step, save, bar):  # this call's time is up
                break
    bar.close()
    fold_pending()
    finished = step >= total_steps and call.interrupt is None  # stopped at the last step: --resume writes it
    if finished:
        checkpoint()  # checks every seed's weights first: no final.pth of a model that is not finite
        for k, d in enumerate(out_dirs):
            atomic_save(fp32_state(model_state(k)), d / "final.pth")
    t_end = time.monotonic()
    steady = call.steady_rate(step, t_end)
    perf = {**call_perf(config, graph, graph_status), "seeds_together": seeds}
    # the patches trained on (an epoch's short last batch counted as it is; session 39: steps × batch size)
    pps = (patches_seen(min(step, total_steps), steps_per_epoch, n, config.batch_size) / elapsed
           if elapsed > 0 else 0.0)
    results = []
    for k, d in enumerate(out_dirs):
        final = {t[5:]: v for t, v in rows[k][-1].items() if t.startswith("loss_")} if rows[k] else {}
        results.append(TrainResult(d, step, total_steps, finished, elapsed, final, pps, step - call.start_step,
                                   t_end - call.t_call, steady, dict(perf)))
    call.raise_kept(results)  # a first Ctrl-C or SIGTERM, with this call's results
    return results
