"""Slowest first: the order in which the runner hands (method, pair) tasks to workers, and the run's
expected wall time (``fusionbench run --dry-run``).

With tasks of very different cost (SwinFusion ~10 s a pair, the pixel rules ~1 ms),
handing them out in plan order can leave one worker finishing a long task while
the others idle.  The runner sorts tasks by expected cost, longest first (the
LPT rule: its makespan is at most 4/3 of the optimum), so the workers finish
together.

Expected cost of a task = fusion + scoring + the rest of the task, each a :class:`Cost`: seconds at a
pixel count, scaled to the pair's pixels (read from the image header) by a power law whose exponent is
fitted where two sizes were measured (many methods grow faster or slower than the pixel count: a
Harvard 256² pair and a TNO pair of four times the pixels are not four times apart for every method).

* fusion: from this store's recorded outputs (``outputs.seconds``) of that method on pairs of the
  plan (its current key's rows when there are any, else any key's): the median seconds per pair size,
  fitted over the sizes present (:func:`method_costs`); a method without history takes its prior from
  :data:`fusionbench._method_costs.FUSE_SECONDS` (measured by ``python -m fusionbench.costs``), and a
  method in neither the median of the priors.  A task whose fused image is given fuses nothing.
* scoring: each preset's prior (``SCORE_SECONDS``), summed (an upper bound: presets scored together
  share intermediates); an unknown preset :data:`SCORE_SECONDS_PER_METRIC_MPIX`.
* the rest (the fused image's luma and PNG, the result's trip, the client's write): ``TASK_SECONDS``.

:func:`estimate` simulates the workers on the sorted tasks (each worker pays its start and each
method's first-use cost once) for ``--dry-run``.

First uses apart (:func:`next_to_hand_out`): where numba's disk cache is empty (the first run after an
installation), a method's first task compiles its kernels into it (from under 1 s to about 26 s of CPU for each
of ten methods: ``COMPILE_SECONDS`` in ``_method_costs.py``).  Slowest first puts a method's tasks side by side,
so every worker compiled the same kernels at the same time.
On such a run the local pool, while a task of a method is in flight and none has come back, hands out the next
task of another method instead (never leaving a worker idle), and the method's other tasks then load the kernels
from the cache.  Not on a warm cache: there the hold would only delay a method's second task, against the
slowest-first order; nor on Dask, whose scheduler orders the tasks itself and whose workers may have caches of
their own.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Collection, Iterable, Mapping, Sequence

if TYPE_CHECKING:
    import pandas as pd

    from .worker import Task

#: scoring cost of a preset without a prior, per megapixel: the 34 paper presets take 0.201 s on a 256²
#: triple (``docs/metrics.md``, measured after the compiled kernels): 0.201 / 34 / 0.065536 ≈ 0.09
SCORE_SECONDS_PER_METRIC_MPIX = 0.09
#: pixels assumed for a pair whose header cannot be read (the Harvard size)
DEFAULT_PIXELS = 256 * 256
#: the fitted exponent is kept within these bounds (two noisy points must not extrapolate wildly)
EXPONENT_RANGE = (0.5, 2.0)


@dataclass(frozen=True)
class Cost:
    """Seconds of one task part at ``pixels``, scaled to other sizes as ``(px / pixels) ** exponent``."""

    seconds: float
    pixels: int = 1_000_000
    exponent: float = 1.0

    def at(self, pixels: int) -> float:
        return self.seconds * (max(pixels, 1) / self.pixels) ** self.exponent

    @classmethod
    def fit(cls, points: Iterable[tuple[int, float]], exponent: float = 1.0) -> "Cost":
        """Least squares in log-log over ``(pixels, seconds)`` points; through one size (or sizes less than
        1.5x apart), the median there with ``exponent`` (default linear)."""
        pts = [(int(p), float(s)) for p, s in points if p > 0 and s > 0]
        if not pts:
            return cls(0.0)
        sizes = sorted({p for p, _ in pts})
        if len(sizes) < 2 or sizes[-1] / sizes[0] < 1.5:
            centre = round(statistics.median(p for p, _ in pts))
            return cls(statistics.median(s * (centre / p) ** exponent for p, s in pts), centre, exponent)
        x = [math.log(p) for p, _ in pts]
        y = [math.log(s) for _, s in pts]
        mx, my = statistics.fmean(x), statistics.fmean(y)
        k = sum((xi - mx) * (yi - my) for xi, yi in zip(x, y)) / sum((xi - mx) ** 2 for xi in x)
        k = min(max(k, EXPONENT_RANGE[0]), EXPONENT_RANGE[1])
        centre = round(math.exp(mx))
        return cls(math.exp(my), centre, k)


def image_pixels(path: str | Path) -> int:
    """Width × height from the image header, or :data:`DEFAULT_PIXELS` when unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            w, h = img.size
        return int(w * h)
    except Exception:  # noqa: BLE001 - a bad file is reported by the worker, not here
        return DEFAULT_PIXELS


def prior_costs() -> dict[str, Cost]:
    """Fusion cost of each built-in method from the measured table (:mod:`fusionbench.costs`)."""
    from ._method_costs import FUSE_SECONDS

    return {m: Cost.fit(points) for m, points in FUSE_SECONDS.items()}


def build_seconds(method: str) -> float:
    """A worker's first-use cost of ``method`` (building, weights, kernels) from the prior table, else 0."""
    from ._method_costs import BUILD_SECONDS

    return float(BUILD_SECONDS.get(method, 0.0))


def worker_start_seconds() -> float:
    """A worker process's start (imports), from the prior table."""
    from ._method_costs import WORKER_START_SECONDS

    return float(WORKER_START_SECONDS)


def compile_seconds(family: str) -> float:
    """Compiling the kernels of a kernel family (:func:`kernel_family`) into an empty cache, from the prior table
    (its methods' ``COMPILE_SECONDS``, measured in that order in one process: a variant after its base adds
    little), else 0."""
    from ._method_costs import COMPILE_SECONDS

    return float(sum(s for m, s in COMPILE_SECONDS.items() if kernel_family(m) == family))


def score_compile_seconds(metrics: "int | Sequence[str]") -> float:
    """Compiling the kernels of the metric presets ``metrics`` into an empty cache (``SCORE_COMPILE_SECONDS``;
    0 for a preset count or unknown presets)."""
    from ._method_costs import SCORE_COMPILE_SECONDS

    if isinstance(metrics, int):
        return 0.0
    return float(sum(SCORE_COMPILE_SECONDS.get(m, 0.0) for m in metrics))


def _timed_rows(history: "pd.DataFrame", pixels: Mapping[tuple[str, str], int],
                keys: Mapping[str, str] | None) -> "pd.DataFrame | None":
    """``history`` rows of pairs whose pixel count is known (column ``px`` added), each method's rows of its
    key in ``keys`` only where it has any; ``None`` when nothing is left."""
    import pandas as pd

    if history is None or history.empty or not pixels:
        return None
    px = pd.DataFrame([(d, p, n) for (d, p), n in pixels.items()], columns=["dataset", "pair", "px"])
    known = history.merge(px, on=["dataset", "pair"])
    if known.empty:
        return None
    is_current = known["method_key"].to_numpy() == known["method"].map(dict(keys or {})).to_numpy()
    has_current = pd.Series(is_current, index=known.index).groupby(known["method"]).transform("any").to_numpy()
    return known[is_current | ~has_current]


def method_costs(history: "pd.DataFrame", pixels: Mapping[tuple[str, str], int],
                 keys: Mapping[str, str] | None = None, exponents: Mapping[str, float] | None = None) -> dict[str, Cost]:
    """Fusion :class:`Cost` of each method in ``history`` (``dataset, pair, method, method_key, seconds``) over
    pairs whose pixel count is known: the median seconds at each pair size, fitted over the sizes
    (:meth:`Cost.fit`); a method timed at one size only grows with ``exponents[method]`` (default: its
    prior's exponent, else linear).  Rows of the method's key in ``keys`` are preferred when present."""
    if exponents is None:
        exponents = {m: c.exponent for m, c in prior_costs().items()}
    used = _timed_rows(history, pixels, keys)
    if used is None:
        return {}
    medians = used.groupby(["method", "px"])["seconds"].median()
    out: dict[str, Cost] = {}
    for method, group in medians.groupby(level="method"):
        out[str(method)] = Cost.fit(((int(px), float(sec)) for (_, px), sec in group.items()),
                                    exponents.get(str(method), 1.0))
    return out


def fuse_seconds(method: str, pixels: int, rates: Mapping[str, "float | Cost"]) -> float:
    """Expected fusion seconds: ``rates[method]`` (a :class:`Cost`, or seconds per megapixel), else the prior,
    else the median of the priors at that size."""
    rate = rates.get(method)
    if isinstance(rate, Cost):
        return rate.at(pixels)
    if rate is not None:
        return float(rate) * pixels / 1e6
    table = prior_costs()
    if method in table:
        return table[method].at(pixels)
    return statistics.median(c.at(pixels) for c in table.values()) if table else pixels / 1e6


def score_seconds(metrics: "int | Sequence[str]", pixels: int) -> float:
    """Expected scoring seconds of ``metrics`` (preset names; a bare count uses the per-preset fallback)."""
    if isinstance(metrics, int):
        return SCORE_SECONDS_PER_METRIC_MPIX * metrics * pixels / 1e6
    from ._method_costs import SCORE_SECONDS

    total = 0.0
    for name in metrics:
        points = SCORE_SECONDS.get(name)
        total += Cost.fit(points).at(pixels) if points else SCORE_SECONDS_PER_METRIC_MPIX * pixels / 1e6
    return total


def task_seconds(pixels: int) -> float:
    """Expected seconds of the rest of a task (the fused image's luma and PNG, the trip, the client's write)."""
    from ._method_costs import TASK_SECONDS

    return Cost.fit(TASK_SECONDS).at(pixels)


def expected_seconds(method: str, pixels: int, metrics: "int | Sequence[str]", rates: Mapping[str, "float | Cost"],
                     *, fuses: bool = True) -> float:
    """Expected seconds of one task: fusion (unless its image is given) + scoring + the rest (module docstring)."""
    fuse = fuse_seconds(method, pixels, rates) if fuses else 0.0
    return fuse + score_seconds(metrics, pixels) + task_seconds(pixels)


def kernel_family(method: str) -> str:
    """The methods that share compiled kernels: a registered name and its variants (``swinfusion`` and
    ``swinfusion.ct``: the name before the first dot).  Measured (session 28, a fresh process on the cache the
    other one filled): ``swinfusion.ct``'s first use 4.8 s of CPU against 25.5 s on an empty cache, ``mopa.v1``'s
    4.2 s after ``mopa`` against ``mopa``'s 29.6 s.  Used by :func:`estimate` for the compile costs; the pool's
    hold stays per method (:func:`next_to_hand_out`)."""
    return method.split(".", 1)[0]


def warming_methods(in_flight: Iterable["Task"], came_back: Collection[str]) -> set[str]:
    """The methods on their first use in this run: a task fusing with it is in flight (``in_flight``) and none
    has come back yet (``came_back``: the methods of the fusing tasks that have, whatever their outcome)."""
    return {task.method for task in in_flight if task.given is None} - set(came_back)


def next_to_hand_out(queue: Sequence["Task"], warming: Collection[str]) -> int:
    """The index in ``queue`` of the next task to hand to a worker: the first one that fuses with no method of
    ``warming`` (:func:`warming_methods`), else the first one (no worker waits for a first use to end).

    Per method, not per kernel family (:func:`kernel_family`): holding ``swinfusion`` while ``swinfusion.ct``
    compiles the kernels both use was tried in session 28 and was slower on the README's first run, two cold runs
    each way back to back (per method 112.4 s and 130.4 s, per family 123.5 s and 136.9 s; more CPU too, 216 and
    246 s against 239 and 257 s)."""
    if warming:
        for i, task in enumerate(queue):
            if task.given is not None or task.method not in warming:
                return i
    return 0


def slowest_first(tasks: Iterable["Task"]) -> list["Task"]:
    """Tasks sorted by ``expected_seconds``, longest first (ties keep plan order)."""
    return sorted(tasks, key=lambda t: -t.expected_seconds)


@dataclass
class Estimate:
    """What ``--dry-run`` prints: the plan's expected seconds and the simulated wall time on ``workers``."""

    tasks: int
    workers: int
    task_seconds: float  # sum of the tasks' expected seconds (fusion + scoring + the rest)
    start_seconds: float  # worker starts and first uses of methods, all workers together
    finish: list[float] = field(default_factory=list)  # when each worker finishes (simulated)
    longest_task: float = 0.0
    by_method: dict[str, float] = field(default_factory=dict)  # expected seconds per method, largest first
    compile_seconds: float = 0.0  # compiling kernels into an empty cache, all workers together (``empty_cache``)

    @property
    def wall_seconds(self) -> float:
        return max(self.finish, default=0.0)

    @property
    def bound(self) -> float:
        """No schedule beats this: all the work spread evenly, or the longest task."""
        spread = (self.task_seconds + self.start_seconds + self.compile_seconds) / max(self.workers, 1)
        return max(spread, self.longest_task)

    def summary(self) -> str:
        spread = (max(self.finish) - min(self.finish)) if self.finish else 0.0
        compiled = (f" + {self.compile_seconds:.0f} s of compiling kernels (numba's kernel cache is empty: a first run)"
                    if self.compile_seconds else "")
        return (f"{self.tasks} tasks, {_duration(self.task_seconds)} of work + {self.start_seconds:.0f} s of "
                f"worker starts and method builds{compiled}; on {self.workers} single-thread worker(s): about "
                f"{_duration(self.wall_seconds)} (lower bound {_duration(self.bound)}, workers finish within "
                f"{spread:.1f} s of each other, longest task {self.longest_task:.1f} s)")

    def top_methods(self, n: int = 6) -> str:
        """The ``n`` methods with the most expected work and their share of it."""
        total = self.task_seconds or 1.0
        return ", ".join(f"{m} {_duration(s)} ({100 * s / total:.0f}%)" for m, s in list(self.by_method.items())[:n])


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def estimate(tasks: Sequence["Task"], workers: int, *, empty_cache: bool = False) -> Estimate:
    """Simulate ``workers`` greedy workers taking ``tasks`` in order (as the local pool does): each worker pays
    its start once and each method's first use once, then each task's ``expected_seconds``.

    ``empty_cache`` (numba's disk cache holds no kernel: the first run after an installation): the first task of
    a kernel family also compiles its kernels (:func:`compile_seconds`), and so does a task of that family started
    before it ends (alongside, as two workers do); the local pool's hold is simulated (until a method's first task
    ends, a worker that comes free takes the first task of another method, else the first task); and each worker
    compiles the metric presets' kernels on its first task (:func:`score_compile_seconds`; the metrics are not
    held).
    """
    import heapq

    workers = max(1, workers)
    start = worker_start_seconds()
    free = [(start, w) for w in range(workers)]
    built: list[set[str]] = [set() for _ in range(workers)]
    scored = [False] * workers
    ready_at: dict[str, float] = {}  # kernel family -> when its first task ends (its kernels are in the cache)
    method_ready_at: dict[str, float] = {}  # method -> when its first task ends (the pool's hold)
    finish = [start] * workers
    first_use = compiling = 0.0
    queue = list(tasks)
    while queue:
        at, w = heapq.heappop(free)
        i = 0
        if empty_cache:
            i = next((k for k, t in enumerate(queue)
                      if t.given is not None or method_ready_at.get(t.method, 0.0) <= at), 0)
        task = queue.pop(i)
        cost = task.expected_seconds
        if empty_cache and not scored[w]:
            scored[w] = True
            extra = score_compile_seconds(task.metrics)
            cost += extra
            compiling += extra
        if task.given is None:
            family = kernel_family(task.method)
            if empty_cache and ready_at.get(family, math.inf) > at:  # the first use, or alongside it
                extra = compile_seconds(family)
                cost += extra
                compiling += extra
            if task.method not in built[w]:
                built[w].add(task.method)
                extra = build_seconds(task.method)
                cost += extra
                first_use += extra
            if empty_cache:
                ready_at.setdefault(family, at + cost)
                method_ready_at.setdefault(task.method, at + cost)
        finish[w] = at + cost
        heapq.heappush(free, (finish[w], w))
    by_method: dict[str, float] = {}
    for task in tasks:
        by_method[task.method] = by_method.get(task.method, 0.0) + task.expected_seconds
    return Estimate(len(tasks), workers, sum(t.expected_seconds for t in tasks), start * workers + first_use,
                    finish if tasks else [0.0] * workers, max((t.expected_seconds for t in tasks), default=0.0),
                    dict(sorted(by_method.items(), key=lambda kv: -kv[1])), compile_seconds=compiling)
