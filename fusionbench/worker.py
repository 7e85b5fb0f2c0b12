"""The unit of work: one (method, pair) → fused PNG + scores.

Runs in a worker process (local pool or Dask worker) and never touches the
results database: it returns a plain dict that the client writes.  Exactly
the path of :func:`fusionbench.fuse`: load and validate, split colour, fuse,
merge colour, quantise; then score the BT.601 luma with every requested preset.
"""
from __future__ import annotations

import signal
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

_METHOD_CACHE: dict[tuple[str, str], Any] = {}


@dataclass(frozen=True)
class Task:
    """Everything a worker needs, picklable."""

    dataset: str
    pair: str
    a_path: str
    b_path: str
    pair_sha256: str
    method: str
    method_key: str
    metrics: tuple[str, ...]
    fused_path: str
    timeout: float | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    results_image: str | None = None  # an external result (``NAME=results:PATH``): read this image, fuse nothing
    results_colour: str = "luma"


class PairTimeout(TimeoutError):
    """The method exceeded the per-pair time limit."""


@contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """SIGALRM-based limit; only in a process's main thread (local pool), else no limit."""
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def _raise(signum: int, frame: Any) -> None:
        raise PairTimeout(f"exceeded the per-pair timeout of {seconds:g} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _method(name: str, key: str, overrides: dict[str, Any]) -> Any:
    from .method_registry import create_method

    cached = _METHOD_CACHE.get((name, key))
    if cached is None:
        cached = create_method(name, **overrides)
        _METHOD_CACHE[(name, key)] = cached
    return cached


def _failure(stage: str, exc: BaseException, metric: str = "") -> dict[str, str]:
    return {
        "stage": stage,
        "metric": metric,
        "error": type(exc).__name__,
        "message": str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        "traceback": traceback.format_exc(),
    }


def run_task(task: Task) -> dict[str, Any]:
    """Fuse (unless the PNG is cached) and score one pair; never raises."""
    from .api import fuse_arrays, scoring_view
    from .io import check_pair, load_image, save_png

    result: dict[str, Any] = {
        "dataset": task.dataset, "pair": task.pair, "method": task.method, "method_key": task.method_key,
        "pair_sha256": task.pair_sha256, "path": None, "seconds": None, "scores": {}, "failures": [],
    }
    try:
        a = load_image(task.a_path)
        b = load_image(task.b_path)
        check_pair(a, b, task.a_path, task.b_path)
        fused_file = Path(task.fused_path)
        if task.results_image is not None:
            from .external import load_result

            fused = load_result(task.results_image, a.shape, task.results_colour)
            save_png(fused_file, fused)
        elif fused_file.is_file():
            fused = load_image(fused_file)
            if fused.ndim == 2 and b.ndim == 3:  # a colour output whose channels happen to be equal
                fused = np.repeat(fused[..., None], 3, axis=2)
        else:
            method = _method(task.method, task.method_key, task.overrides)
            reason = method.unavailable_reason()
            if reason:
                raise RuntimeError(reason)
            start = time.perf_counter()
            with _time_limit(task.timeout):
                fused = fuse_arrays(method, a, b)
            result["seconds"] = time.perf_counter() - start
            save_png(fused_file, fused)
        result["path"] = str(fused_file)
    except Exception as exc:  # recorded, never fatal
        result["failures"].append(_failure("fuse", exc))
        return result

    from .metric_registry import create_metric

    view = scoring_view(fused, a, b)
    for name in task.metrics:
        try:
            value = float(create_metric(name)(view.fused, view.a, view.b))
            result["scores"][name] = value
        except Exception as exc:
            result["failures"].append(_failure("score", exc, metric=name))
    return result
