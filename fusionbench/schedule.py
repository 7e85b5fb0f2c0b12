"""Slowest first: the order in which the runner hands (method, pair) tasks to workers.

With tasks of very different cost (SwinFusion ~10 s a pair, the pixel rules ~1 ms),
handing them out in plan order can leave one worker finishing a long task while
the others idle.  The runner sorts tasks by expected cost, longest first (the
LPT rule: its makespan is at most 4/3 of the optimum), so the workers finish
together.

Expected cost of a task = fusion seconds + scoring seconds:

* fusion: the method's rate in seconds per megapixel × the pair's pixels.  The
  rate is the median over this store's recorded outputs (``outputs.seconds``) of
  that method on pairs of the plan (its current key's rows when there are any,
  else any key's); a method without history takes its prior from
  :data:`fusionbench._method_costs.SECONDS_PER_MPIX` (measured from the committed
  run's store, see :func:`write_prior`), and a method in neither the median of the
  priors.  A task whose fused image is given (cached or external) fuses nothing.
* scoring: :data:`SCORE_SECONDS_PER_METRIC_MPIX` × metrics × megapixels.

Pixels are read from the image headers (no decoding).
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping

if TYPE_CHECKING:
    import pandas as pd

    from .worker import Task

#: scoring cost per preset per megapixel: the 34 paper presets take 0.201 s on a 256² triple
#: (``docs/metrics.md``, measured after the compiled kernels): 0.201 / 34 / 0.065536 ≈ 0.09
SCORE_SECONDS_PER_METRIC_MPIX = 0.09
#: pixels assumed for a pair whose header cannot be read (the Harvard size)
DEFAULT_PIXELS = 256 * 256


def image_pixels(path: str | Path) -> int:
    """Width × height from the image header, or :data:`DEFAULT_PIXELS` when unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            w, h = img.size
        return int(w * h)
    except Exception:  # noqa: BLE001 - a bad file is reported by the worker, not here
        return DEFAULT_PIXELS


def priors() -> dict[str, float]:
    """Seconds per megapixel of each built-in method, measured from the committed run (see :func:`write_prior`)."""
    from ._method_costs import SECONDS_PER_MPIX

    return dict(SECONDS_PER_MPIX)


def method_rates(history: "pd.DataFrame", pixels: Mapping[tuple[str, str], int],
                 keys: Mapping[str, str] | None = None) -> dict[str, float]:
    """Median seconds per megapixel of each method in ``history`` (``dataset, pair, method, method_key, seconds``)
    over pairs whose pixel count is known; rows of the method's key in ``keys`` are preferred when present."""
    import pandas as pd

    if history is None or history.empty or not pixels:
        return {}
    px = pd.DataFrame([(d, p, n) for (d, p), n in pixels.items()], columns=["dataset", "pair", "px"])
    known = history.merge(px, on=["dataset", "pair"])
    if known.empty:
        return {}
    is_current = known["method_key"].to_numpy() == known["method"].map(dict(keys or {})).to_numpy()
    has_current = pd.Series(is_current, index=known.index).groupby(known["method"]).transform("any").to_numpy()
    used = known[is_current | ~has_current]
    per_mpix = used["seconds"] / (used["px"].astype(float) / 1e6)
    return {str(m): float(v) for m, v in per_mpix.groupby(used["method"]).median().items()}


def expected_seconds(method: str, pixels: int, n_metrics: int, rates: Mapping[str, float], *,
                     fuses: bool = True) -> float:
    """Expected fusion + scoring seconds of one task (module docstring)."""
    mpix = pixels / 1e6
    fuse = 0.0
    if fuses:
        rate = rates.get(method)
        if rate is None:
            table = priors()
            rate = table.get(method, statistics.median(table.values()) if table else 1.0)
        fuse = rate * mpix
    return fuse + SCORE_SECONDS_PER_METRIC_MPIX * n_metrics * mpix


def slowest_first(tasks: Iterable["Task"]) -> list["Task"]:
    """Tasks sorted by ``expected_seconds``, longest first (ties keep plan order)."""
    return sorted(tasks, key=lambda t: -t.expected_seconds)


def makespan(costs: Iterable[float], workers: int) -> float:
    """When ``workers`` greedy workers (each takes the next task when free) finish ``costs`` in that order."""
    import heapq

    free = [0.0] * workers
    for cost in costs:
        heapq.heapreplace(free, free[0] + cost)
    return max(free)


def write_prior(store: str | Path, out: str | Path, datasets: Iterable[str] = ("harvard-mri-ct", "harvard-mri-pet",
                                                                                  "harvard-mri-spect")) -> Path:
    """Write ``_method_costs.py``: median seconds per megapixel of each method over ``datasets`` in ``store``.

    The default datasets are the Harvard ones, all of whose images are 256×256,
    so no image file is needed.  Usage:
    ``python -m fusionbench.schedule reports/results.sqlite fusionbench/_method_costs.py``.
    """
    from .store import ResultsStore

    with ResultsStore(store) as st:
        df = st.method_seconds()
    df = df[df["dataset"].isin(list(datasets))]
    rates = (df["seconds"] / (DEFAULT_PIXELS / 1e6)).groupby(df["method"]).median().sort_index()
    lines = ['"""Prior fusion cost of each built-in method, seconds per megapixel (median over pairs).',
             "", f"Generated by ``python -m fusionbench.schedule {store} {out}`` from the outputs table",
             f"(datasets {', '.join(datasets)}, 256x256 images); used by :mod:`fusionbench.schedule` only",
             'for methods without timing history in the run\'s own store."""', "",
             "SECONDS_PER_MPIX: dict[str, float] = {"]
    lines += [f"    {m!r}: {v:.4g}," for m, v in rates.items()]
    lines.append("}")
    Path(out).write_text("\n".join(lines) + "\n")
    return Path(out)


if __name__ == "__main__":
    write_prior(sys.argv[1], sys.argv[2])
