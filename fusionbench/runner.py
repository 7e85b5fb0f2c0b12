"""``fusionbench run``: plan (datasets × methods), execute, store, summarise.

Resumable: the planner skips every (method, pair) whose scores for all the
requested metrics are already in ``OUT/results.sqlite`` under the same method
key (name, version, parameters) — running the same command again finishes
what is missing and writes no duplicate rows.  Fused images live in a
content-addressed cache ``OUT/fused/<method>/<method_key>/<pair_sha256>.png``
(or ``--cache DIR``), so re-scoring never re-fuses.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .data import create_dataset
from .data.synthetic import DEFAULT_DATASETS
from .external import ResultsFolder, is_results_spec, parse_results_spec
from .method_registry import create_method, list_methods
from .metric_registry import resolve_metrics
from .store import ResultsStore
from .worker import Task

Log = Callable[[str], None]


@dataclass
class RunConfig:
    """Everything that defines a run (stored as JSON in the ``runs`` table)."""

    methods: list[str] = field(default_factory=lambda: ["all"])
    datasets: list[str] = field(default_factory=list)
    split: str | None = "test"
    metrics: str = "paper"
    workers: int | None = None
    scheduler: str | None = None
    out: str = "out"
    data_dir: str | None = None
    cache: str | None = None
    timeout: float | None = 600.0
    quiet: bool = False
    summary: bool = True


@dataclass
class RunSummary:
    run_id: int
    planned: int
    skipped_done: int
    completed: int
    failures: int
    unavailable: dict[str, str]
    seconds: float
    summary_path: Path | None


@dataclass
class MethodSelection:
    """What ``--methods`` named: registered methods and folders of external results (``NAME=results:PATH``)."""

    registered: list[str] = field(default_factory=list)
    external: dict[str, ResultsFolder] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return self.registered + list(self.external)


def select_methods(patterns: Iterable[str]) -> MethodSelection:
    """``all`` → every registered method; names or fnmatch patterns (comma lists allowed);
    ``NAME=results:PATH`` → a folder of fused images scored as method ``NAME`` (:mod:`fusionbench.external`)."""
    selection = MethodSelection()
    for spec in patterns:
        for item in (s.strip() for s in spec.split(",")):
            if not item:
                continue
            if is_results_spec(item):
                folder = parse_results_spec(item)
                if folder.name in selection.external or folder.name in selection.registered:
                    raise ValueError(f"{item!r}: method name {folder.name!r} is used twice in --methods")
                selection.external[folder.name] = folder
                continue
            if item == "all":
                names = list_methods("*")
            elif any(ch in item for ch in "*?["):
                names = list_methods(item)
                if not names:
                    raise KeyError(f"no method matches {item!r} (see `fusionbench list methods`)")
            else:
                create_method(item)  # raises KeyError with suggestions
                names = [item]
            selection.registered += [n for n in names if n not in selection.registered]
    clash = set(selection.external) & set(selection.registered)
    if clash:
        raise ValueError(f"results folder name(s) {', '.join(sorted(clash))} clash with registered methods")
    return selection


def expand_methods(patterns: Iterable[str]) -> list[str]:
    """The method names ``--methods`` selects (see :func:`select_methods`)."""
    return select_methods(patterns).names


def _method_source(name: str) -> str:
    from .method_registry import METHODS

    return METHODS.get(name).source


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for dist in ("fusionbench", "numpy", "scipy", "scikit-image", "PyWavelets", "torch", "pandas", "pillow"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _git_sha() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        return sha.stdout.strip() or None if sha.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info() -> dict[str, Any]:
    """The machine a run used (stored with the run, printed in table captions)."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "hostname": platform.node(),
    }


def _progress(iterable: Iterable[Any], total: int, desc: str, quiet: bool) -> Iterator[Any]:
    if quiet:
        yield from iterable
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit="pair", dynamic_ncols=True, file=sys.stderr) as bar:
        for item in iterable:
            yield item
            bar.update(1)


def run(config: RunConfig, *, command: str = "", log: Log | None = None) -> RunSummary:
    """Execute a run described by ``config``; see the module docstring."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    started = time.perf_counter()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(config.cache) if config.cache else out / "fused"
    selection = select_methods(config.methods)
    methods = selection.names
    metrics = resolve_metrics(config.metrics)
    dataset_names = config.datasets or list(DEFAULT_DATASETS)

    store = ResultsStore(out / "results.sqlite")
    run_id = store.start_run(command or "fusionbench run", {**config.__dict__, "resolved_methods": methods,
                                                           "resolved_metrics": metrics,
                                                           "resolved_datasets": dataset_names},
                             _versions(), _git_sha(), machine_info())
    created = {name: create_method(name) for name in selection.registered}
    store.record_methods(run_id, [(name, m.cache_key(), {
        "display_name": m.info.display_name, "family": m.info.family, "citation": m.info.citation,
        "colour": m.info.colour, "source": _method_source(name)}) for name, m in created.items()]
        + [(name, folder.key, folder.metadata()) for name, folder in selection.external.items()])
    unavailable = {}
    for name, m in created.items():
        reason = m.unavailable_reason()
        if reason:
            unavailable[name] = reason
            log(f"skipping method {name}: {reason}")

    tasks: list[Task] = []
    skipped = 0
    resolved_names: list[str] = []
    for ds_name in dataset_names:
        dataset = create_dataset(ds_name, data_dir=config.data_dir)
        resolved_names.append(dataset.name)
        for problem in dataset.problems:
            log(f"{ds_name}: {problem}")
            path, _, reason = problem.partition(": ")
            store.record_failure(ds_name, Path(path).stem, "", stage="fuse", error="InputError", message=problem,
                                 run_id=run_id)
        if config.split not in (None, "all") and config.split not in dataset.splits:
            log(f"{ds_name}: no split {config.split!r} (has: {', '.join(dataset.splits) or 'none'}); skipped")
            continue
        pairs = dataset.select(config.split)
        done = store.done_index(dataset.name)
        for pair in pairs:
            for name, m in created.items():
                if name in unavailable or not m.info.applies_to(pair.task):
                    continue
                key = m.cache_key()
                if set(metrics) <= done.get((pair.id, name, key), set()):
                    skipped += 1
                    continue
                tasks.append(Task(
                    dataset=dataset.name, pair=pair.id, a_path=str(pair.a_path), b_path=str(pair.b_path),
                    pair_sha256=pair.sha256, method=name, method_key=key, metrics=tuple(metrics),
                    fused_path=str(cache / name / key / f"{pair.sha256}.png"), timeout=config.timeout,
                ))
            for name, folder in selection.external.items():
                if set(metrics) <= done.get((pair.id, name, folder.key), set()):
                    skipped += 1
                    continue
                image = folder.image_for(dataset.name, pair.id) or folder.expected_path(dataset.name, pair.id)
                tasks.append(Task(
                    dataset=dataset.name, pair=pair.id, a_path=str(pair.a_path), b_path=str(pair.b_path),
                    pair_sha256=pair.sha256, method=name, method_key=folder.key, metrics=tuple(metrics),
                    fused_path=str(cache / name / folder.key / f"{pair.sha256}.png"), timeout=config.timeout,
                    results_image=str(image), results_colour=folder.colour,
                ))
    log(f"run {run_id}: {len(tasks)} (method, pair) tasks to do, {skipped} already done; "
        f"{len(methods)} methods, {len(metrics)} metrics, datasets {', '.join(dataset_names)}")

    from . import executors

    if config.scheduler:
        results = executors.run_dask(tasks, config.scheduler)
    elif config.workers == 0:
        results = executors.run_inline(tasks)
    else:
        results = executors.run_local(tasks, config.workers)
    completed = failures = 0
    status = "interrupted"
    try:
        for result in _progress(results, len(tasks), "fuse+score", config.quiet):
            store.record_task(result, run_id)
            completed += 1
            for f in result["failures"]:
                failures += 1
                what = f"{f['stage']}{'/' + f['metric'] if f['metric'] else ''}"
                log(f"FAILED {result['method']} on {result['dataset']}/{result['pair']} ({what}): "
                    f"{f['error']}: {f['message']}")
        status = "done"
    finally:
        store.finish_run(run_id, status)
    summary_path = None
    if config.summary:
        from .summary import write_summary

        summary_path = write_summary(store, out / "summary.md", metrics=metrics,
                                     datasets=resolved_names,
                                     methods=methods)
    store.close()
    return RunSummary(run_id, len(tasks) + skipped, skipped, completed, failures, unavailable,
                      time.perf_counter() - started, summary_path)


def config_json(config: RunConfig) -> str:
    return json.dumps(config.__dict__, default=str, indent=1)
