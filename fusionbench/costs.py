"""Measure the prior cost table ``fusionbench/_method_costs.py`` (what the planner and ``run --dry-run`` use
for methods without timing history in the run's store).

``python -m fusionbench.costs --data-dir ../shared/data [--out fusionbench/_method_costs.py] [--methods ...]``

Everything is measured in this one process, single-threaded as a runner worker is on a machine with as
many workers as cores (``FUSIONBENCH_WORKER_THREADS=1``, torch and BLAS at one thread), as **CPU time**
(``time.process_time``), so that the table means "seconds of one core" even when the machine is shared:

* ``FUSE_SECONDS`` — each available registered method through :func:`fusionbench.api.fuse_arrays` (the
  runner's path, colour protocol included) on one test pair of its task resized to 256×256 (the Harvard
  size) and, for a method the runner also runs on IR-VIS pairs, on the TNO test pair resized to 512×512
  (about the median TNO size; a method's cost can depend on the content as well as the size: MLEPF took
  3.9 s on an upsampled Harvard pair against 1.1 s per TNO pair in the whole run of session 9), else on its
  own task's pair at 512×512; best of up to three calls after a first call;
* ``BUILD_SECONDS`` — the first call's extra time (building the method, loading weights, compiling
  kernels), which each worker pays once per method;
* ``SCORE_SECONDS`` — each metric preset alone (:func:`fusionbench.metrics.evaluate` with one preset) at
  both sizes (presets scored together share intermediates, so their sum is an upper bound);
* ``TASK_SECONDS`` — the rest of a task at both sizes: the fused image's luma, its PNG, the result's
  pickle (the trip from worker to client) and the client's cache write and store commit;
* ``WORKER_START_SECONDS`` — CPU time of a fresh interpreter importing what a worker imports.
"""
from __future__ import annotations

import argparse
import os
import platform
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

SIZES = (256, 512)
#: a test pair of each task (the first of the dataset's test split)
TASK_DATASETS = {"MRI-PET": "harvard-mri-pet", "MRI-SPECT": "harvard-mri-spect", "MRI-CT": "harvard-mri-ct",
                 "IR-VIS": "tno"}


def _single_thread() -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ["FUSIONBENCH_WORKER_THREADS"] = "1"


def _cpu(fn: Callable[[], Any]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def _best(fn: Callable[[], Any], budget: float = 1.0, most: int = 3) -> float:
    """Best CPU seconds of up to ``most`` calls (fewer when a call is long against ``budget``)."""
    times = [_cpu(fn)]
    while len(times) < most and sum(times) < budget:
        times.append(_cpu(fn))
    return min(times)


def _resized(image: Any, side: int) -> Any:
    import numpy as np
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((side, side), Image.BILINEAR))


def _pairs(data_dir: str | None) -> dict[str, dict[int, tuple[Any, Any]]]:
    """``{task: {side: (a, b)}}``: the first test pair of each task's dataset at each size."""
    from .data import create_dataset
    from .io import load_image

    out = {}
    for task, name in TASK_DATASETS.items():
        try:
            pair = create_dataset(name, data_dir=data_dir).select("test")[0]
        except Exception as exc:  # noqa: BLE001 - a dataset not fetched: its methods use another task's pair
            print(f"costs: no {name} pair ({exc}); its methods are timed on another task's pair", file=sys.stderr)
            continue
        a, b = load_image(pair.a_path), load_image(pair.b_path)
        out[task] = {side: (_resized(a, side), _resized(b, side)) for side in SIZES}
    if not out:
        raise RuntimeError("no dataset found: pass --data-dir (e.g. ../shared/data)")
    return out


def _timed_tasks(info: Any, pairs: dict[str, Any]) -> tuple[str, str]:
    """The task whose pair times a method at each of :data:`SIZES`: its own task (the first it applies to
    that has a pair) at 256², and at 512² the TNO pair when the runner runs it on IR-VIS pairs too (those
    are the run's large pairs)."""
    own = next((t for t in info.tasks if t in pairs), None) or next(iter(pairs))
    large = "IR-VIS" if "IR-VIS" in pairs and info.applies_to("IR-VIS") else own
    return own, large


def measure_methods(names: list[str], pairs: dict[str, dict[int, tuple[Any, Any]]],
                    log: Callable[[str], None]) -> tuple[dict[str, tuple[tuple[int, float], ...]], dict[str, float]]:
    """CPU seconds of each available method through ``fuse_arrays``, one point per size of :data:`SIZES` (its own task's
    pair at 256², the TNO pair at 512² where it runs on IR-VIS): ``({name: ((pixels, best s), …)}, {name: first-call
    extra s})``."""
    from .api import fuse_arrays
    from .method_registry import create_method

    fuse: dict[str, tuple[tuple[int, float], ...]] = {}
    build: dict[str, float] = {}
    for name in names:
        made = time.process_time()
        method = create_method(name)
        made = time.process_time() - made
        if method.unavailable_reason():
            log(f"{name}: unavailable, not timed")
            continue
        tasks = _timed_tasks(method.info, pairs)
        small = pairs[tasks[0]][SIZES[0]]
        first = _cpu(lambda: fuse_arrays(method, *small))
        points = []
        for side, task in zip(SIZES, tasks):
            a, b = pairs[task][side]
            points.append((side * side, _best(lambda: fuse_arrays(method, a, b))))
        fuse[name] = tuple(points)
        build[name] = made + max(0.0, first - points[0][1])
        log(f"{name}: {', '.join(f'{s:.3f} s at {p} px' for p, s in points)}; first call +{build[name]:.2f} s")
    return fuse, build


def measure_metrics(names: list[str], pairs: dict[str, dict[int, tuple[Any, Any]]],
                    log: Callable[[str], None]) -> dict[str, tuple[tuple[int, float], ...]]:
    """CPU seconds of each metric preset alone, best of calls after a first (compiling) one, at each of :data:`SIZES`:
    ``{name: ((pixels, s), …)}``."""
    from fusionbench.metrics import evaluate

    from .colour import luma_uint8

    from fusionbench.metric_registry import reads_colour

    views, raw = {}, {}
    for side in SIZES:
        a, b = pairs.get("MRI-PET", next(iter(pairs.values())))[side]
        fused = ((a.astype(float)[..., None] if b.ndim == 3 else a.astype(float)) + b) / 2
        raw[side] = (fused.astype("uint8"), a, b)  # a preset that reads colour is timed on these, as it is scored
        views[side] = tuple(luma_uint8(x.astype("uint8")) for x in (fused, a, b))
    out = {}
    for name in names:
        images = raw if reads_colour(name) else views
        evaluate(*images[SIZES[0]], [name])  # first call: kernels compiled or loaded
        out[name] = tuple((side * side, _best(lambda: evaluate(*images[side], [name]), budget=0.3))
                          for side in SIZES)
        log(f"{name}: {', '.join(f'{s * 1e3:.1f} ms at {p} px' for p, s in out[name])}")
    return out


def measure_task(pairs: dict[str, dict[int, tuple[Any, Any]]]) -> tuple[tuple[int, float], ...]:
    """Luma + PNG + pickle of a result + the client's cache write and store commit of one task."""
    import numpy as np

    from .colour import luma_uint8
    from .runner import write_output
    from .store import ResultsStore
    from .worker import ImageSource, Task, TaskResult, encode_png

    points = []
    with tempfile.TemporaryDirectory() as tmp, ResultsStore(Path(tmp) / "results.sqlite") as store:
        for side in SIZES:
            a, b = pairs.get("MRI-PET", next(iter(pairs.values())))[side]
            fused = np.clip((a.astype(float)[..., None] if b.ndim == 3 else a) * 0.5 + b * 0.5, 0, 255).astype("uint8")
            src = ImageSource("x.png", url="x.png")
            counter = iter(range(10**6))

            def one() -> None:
                i = next(counter)
                task = Task("d", f"p{i}", "s", "m", "k", ("EN",), src, src, str(Path(tmp) / f"{i}.png"))
                luma_uint8(fused)
                result = TaskResult.of(task, png=encode_png(fused), scores={f"M{j}": 0.5 for j in range(10)},
                                       seconds=1.0)
                result = pickle.loads(pickle.dumps(result))
                write_output(result, task)
                store.record_task(result, 1)

            points.append((side * side, _best(one, budget=0.5, most=10)))
    return tuple(points)


def measure_worker_start() -> float:
    """CPU seconds of a fresh interpreter importing a worker's modules (best of two)."""
    code = "import fusionbench.worker, fusionbench.api, fusionbench.metrics, fusionbench.method_registry, torch"
    times = []
    for _ in range(2):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", code], check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(times)


def _fmt_points(points: tuple[tuple[int, float], ...]) -> str:
    return "(" + ", ".join(f"({p}, {s:.4g})" for p, s in points) + ",)"


def write_table(out: str | Path, fuse: dict, build: dict, score: dict, task: tuple, start: float, note: str) -> Path:
    """Write the table module (format read by :mod:`fusionbench.schedule`)."""
    lines = ['"""Prior costs of the runner\'s tasks, in CPU seconds of one core (generated; do not edit).', "",
             f"Measured by ``{note}.", "See :mod:`fusionbench.costs` for what each table holds; used by",
             ":mod:`fusionbench.schedule` for methods without timing history in the run's own store.", '"""', "",
             "#: method -> ((pixels, seconds of fusion), ...)",
             "FUSE_SECONDS: dict[str, tuple[tuple[int, float], ...]] = {"]
    lines += [f"    {m!r}: {_fmt_points(v)}," for m, v in sorted(fuse.items())]
    lines += ["}", "#: method -> extra seconds of its first call in a worker (build, weights, kernels)",
              "BUILD_SECONDS: dict[str, float] = {"]
    lines += [f"    {m!r}: {v:.3g}," for m, v in sorted(build.items())]
    lines += ["}", "#: metric preset -> ((pixels, seconds of that preset alone), ...)",
              "SCORE_SECONDS: dict[str, tuple[tuple[int, float], ...]] = {"]
    lines += [f"    {m!r}: {_fmt_points(v)}," for m, v in sorted(score.items())]
    lines += ["}", "#: the rest of one task: ((pixels, seconds), ...)", f"TASK_SECONDS = {_fmt_points(task)}",
              "#: CPU seconds of a worker process's start (imports)", f"WORKER_START_SECONDS = {start:.3g}", ""]
    Path(out).write_text("\n".join(lines))
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    """``python -m fusionbench.costs``: measure single-threaded CPU times, write the table to ``--out``; returns 0."""
    parser = argparse.ArgumentParser(prog="python -m fusionbench.costs", description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None, help="the data folder (e.g. ../shared/data)")
    parser.add_argument("--out", default=str(Path(__file__).with_name("_method_costs.py")))
    parser.add_argument("--methods", default="all", help="methods to time (default all available)")
    parser.add_argument("--metrics", default="all", help="metric presets to time (default all)")
    args = parser.parse_args(argv)
    _single_thread()
    import torch

    torch.set_num_threads(1)
    from .metric_registry import resolve_metrics
    from .runner import expand_methods

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    started = time.time()
    load = os.getloadavg()[0]
    pairs = _pairs(args.data_dir)
    start = measure_worker_start()
    task = measure_task(pairs)
    score = measure_metrics(resolve_metrics(args.metrics), pairs, log)
    fuse, build = measure_methods(expand_methods([args.methods]), pairs, log)
    note = (f"python -m fusionbench.costs --data-dir {args.data_dir} --methods {args.methods} --metrics {args.metrics}``"
            f" on {platform.node()} ({os.cpu_count()} cores), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"load average {load:.1f} at the start, {time.time() - started:.0f} s")
    write_table(args.out, fuse, build, score, task, start, note)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
