r"""asv suite for the whole-run target: ``fusionbench run`` over the test split of the four released datasets.

The target (README, "Speed of a full run"): the test split of Harvard MRI-PET, MRI-SPECT, MRI-CT and TNO, every
available method, the paper's metrics, one invocation with one worker per core, within 15 minutes on an idle
2-core machine.  Run (about half an hour on 2 cores; results are saved only with ``--set-commit-hash``)::

    asv run --python=same --set-commit-hash $(git rev-parse HEAD) --bench benchmark_run

``setup_cache`` makes the one run, into a fresh folder (an empty fused-image cache; numba's kernel cache as it
is, so a first run after an installation also compiles), through :func:`fusionbench.runner.run`, the path of the
command line; the benchmarks read what it measured:

* ``track_wall_minutes``: the run's wall time (``RunSummary.seconds``), minutes; the target is 15;
* ``track_tasks``: (method, pair) tasks done, so that a figure is compared with one of the same size;
* ``track_failures``: failures the run reported (a task's fusion, or one metric of it; 0 expected: a failure is
  a bug, and its task took no full time);
* ``track_unavailable``: registered methods left out (weights not fetched: ``fusionbench fetch``).

``$FUSIONBENCH_BENCH_METHODS`` (comma-separated fnmatch patterns) restricts the methods, as for
``benchmark_methods``.  The data: the first of :func:`~._data.data_roots` holding both ``harvard`` and ``tno``;
without one the suite is skipped (asv's ``NotImplementedError``): built-in pairs are no measure of this target.
"""
from __future__ import annotations

import os
import sys

from ._settings import OneShot

DATASETS = ("harvard-mri-pet", "harvard-mri-spect", "harvard-mri-ct", "tno")


def whole_run(out: str) -> dict[str, float]:
    """Run the test split into ``out``; ``{wall_minutes, tasks, failures, unavailable}``."""
    from fusionbench.method_registry import list_methods
    from fusionbench.runner import RunConfig, run

    from ._data import data_roots

    root = next((r for r in data_roots() if (r / "harvard").is_dir() and (r / "tno").is_dir()), None)
    if root is None:
        raise NotImplementedError("no folder holds the Harvard and TNO data (fusionbench fetch harvard tno)")
    patterns = [p.strip() for p in os.environ.get("FUSIONBENCH_BENCH_METHODS", "").split(",") if p.strip()]
    methods = list_methods(patterns) if patterns else ["all"]
    config = RunConfig(methods=methods, datasets=list(DATASETS), split="test", metrics="paper", out=out,
                       data_dir=str(root), quiet=True, summary=False)
    summary = run(config, command="asv benchmark_run", log=lambda line: print(line, file=sys.stderr))  # asv --show-stderr
    return {"wall_minutes": summary.seconds / 60.0, "tasks": float(summary.completed),  # failed ones included
            "failures": float(summary.failures), "unavailable": float(len(summary.unavailable))}


class WholeTestSplitRun(OneShot):
    """One ``fusionbench run`` of the test split (see the module's docstring); its figures as tracked values."""

    timeout = 5400  # the run's own limit: three times the target

    def setup_cache(self) -> dict[str, float]:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="fusionbench-asv-run-") as out:
            return whole_run(out)

    def track_wall_minutes(self, measured: dict[str, float]) -> float:
        return measured["wall_minutes"]

    track_wall_minutes.unit = "minutes"

    def track_tasks(self, measured: dict[str, float]) -> float:
        return measured["tasks"]

    track_tasks.unit = "tasks"

    def track_failures(self, measured: dict[str, float]) -> float:
        return measured["failures"]

    track_failures.unit = "failures"

    def track_unavailable(self, measured: dict[str, float]) -> float:
        return measured["unavailable"]

    track_unavailable.unit = "methods"
