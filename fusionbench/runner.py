"""``fusionbench run``: plan (datasets × methods), execute, store, summarise.

Resumable: the planner skips every (method, pair) whose scores for all the
requested metrics are already in ``OUT/results.sqlite`` under the same method
key (name, version, parameters) and pair sha256 — running the same command
again finishes what is missing and writes no duplicate rows.  Fused images live
in a content-addressed cache ``OUT/fused/<method>/<method_key>/<pair_sha256>.png``
(or ``--cache DIR``), so re-scoring never re-fuses.  Only this process (the
client) writes the cache and the store; workers get everything in the
:class:`~fusionbench.worker.Task` and return a :class:`~fusionbench.worker.TaskResult`.

No silent skips: every (method, dataset) not run — weights unavailable, a
method restricted to other tasks (a ``folder:`` dataset without a task in its
``dataset.json`` included), no such split — is printed and recorded in the
``skipped`` table.  Tasks start slowest first (:mod:`fusionbench.schedule`).
A new method version leaves the older rows as history; the run says how many
rows are superseded, and readers use current rows only (:mod:`fusionbench.store`).
"""
from __future__ import annotations

import difflib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from .checkout import code_commit
from .config import kill_grace_s, numba_cache_is_empty, numba_cache_space_problem, worker_memory_mb
from .data import create_dataset
from .data.folder import earlier_names, folder_dataset_name
from .data.synthetic import DEFAULT_DATASETS
from .executors import local_cluster_size
from .external import ResultsFolder, is_results_spec, parse_results_spec
from .fused_cache import cache_file
from .io import writable_folder
from .machine import machine_info
from .method_registry import METHODS, create_method, list_methods
from .metric_registry import metric_versions, resolve_metrics
from .schedule import slowest_first
from .store import ResultsStore, check_store
from .task_warnings import WarningReport
from .weights_provenance import weights_record
from .definitions import Definitions
from .worker import ImageSource, Task, TaskResult, unreadable_cache_note

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
    superseded: int = 0  # score rows of older method keys or pair files, kept as history
    skipped: int = 0  # (method, dataset) combinations not run (the ``skipped`` table)
    input_failures: int = 0  # files of the datasets that could not form a pair (not in ``failures``, one line each)


@dataclass
class MethodSelection:
    """What ``--methods`` named: registered methods and folders of external results (``NAME=results:PATH``)."""

    registered: list[str] = field(default_factory=list)
    external: dict[str, ResultsFolder] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """All selected names: the registered methods, then the external results folders' names."""
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
                if folder.name in selection.external:
                    raise ValueError(f"{item!r}: method name {folder.name!r} is used twice in --methods")
                if folder.name in METHODS:  # its rows would mix with the registered method's in one store
                    raise ValueError(f"{item!r}: {folder.name!r} is a registered method; name the results folder "
                                     f"otherwise (e.g. {folder.name}_theirs=results:...)")
                selection.external[folder.name] = folder
                continue
            if item == "all":
                names = list_methods("*")
            elif any(ch in item for ch in "*?["):
                names = list_methods(item)
                if not names:
                    raise METHODS.with_plugin_failures(
                        KeyError(f"no method matches {item!r} (see `fusionbench list methods`)"))
            else:
                create_method(item)  # raises KeyError with suggestions
                names = [item]
            selection.registered += [n for n in names if n not in selection.registered]
    return selection


def expand_methods(patterns: Iterable[str]) -> list[str]:
    """The method names ``--methods`` selects (see :func:`select_methods`)."""
    return select_methods(patterns).names


def _method_rows(created: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """``(name, method_key, metadata)`` of created methods, for the store's ``methods`` table (and, under
    ``weights``, for its ``method_weights`` table: the weights each has now,
    :func:`~fusionbench.weights_provenance.weights_record`, as JSON)."""
    return [(name, m.cache_key(), {"display_name": m.info.display_name, "family": m.info.family,
                                   "citation": m.info.citation, "colour": m.info.colour,
                                   "source": _method_source(name),
                                   "weights": json.dumps(weights_record(name), sort_keys=True)})
            for name, m in created.items()]


def _method_source(name: str) -> str:
    return METHODS.get(name).source


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    # numba and llvmlite compile the methods' and metrics' kernels for the machine's CPU; torch bundles the oneDNN
    # and MKL that run the networks
    for dist in ("fusionbench", "numpy", "scipy", "scikit-image", "PyWavelets", "torch", "pandas", "pillow", "numba",
                 "llvmlite"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    # the distributions of the loaded plugins' methods and metrics, by version (session 37's audit: a run named a
    # plugin's distribution but not which release of it made the results)
    from .metric_registry import METRICS

    plugins = {entry.source.removeprefix("plugin ") for registry in (METHODS, METRICS)
               for entry in registry._entries.values() if entry.source.startswith("plugin ")}
    for dist in sorted(plugins):
        try:
            out[f"plugin {dist}"] = metadata.version(dist)
        except (metadata.PackageNotFoundError, ValueError):  # an entry point without its distribution
            out[f"plugin {dist}"] = "unknown"
    return out


def _stderr_line(message: str) -> None:
    """The run's default log: one line on stderr, written above the progress bar (``tqdm.write``), not into it."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


def _progress(iterable: Iterable[Any], total: int, desc: str, quiet: bool) -> Iterator[Any]:
    if quiet:
        yield from iterable
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit="pair", dynamic_ncols=True, file=sys.stderr) as bar:
        for item in iterable:
            yield item
            bar.update(1)


@dataclass
class Plan:
    """What a run will do: the tasks (slowest first), what is already done, and what it does not run."""

    tasks: list[Task] = field(default_factory=list)
    already_done: int = 0
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (dataset, method, reason)
    datasets: list[str] = field(default_factory=list)  # resolved dataset names
    added_variants: list[str] = field(default_factory=list)  # task variants run in place of a selected method
    cost_sources: dict[str, str] = field(default_factory=dict)  # method -> where its expected fusion time came from
    input_failures: int = 0  # files that could not form a pair (recorded in the store's ``failures`` table)
    #: each dataset's pair ids in the run's split as listed now: what the summary is over (the store may hold
    #: rows of other splits' runs, or of pairs since removed or renamed)
    pairs: dict[str, set[str]] = field(default_factory=dict)


def task_variant(name: str, task: str | None) -> str | None:
    """The registered variant of ``name`` made for ``task``, if any: a ``name.tag`` whose ``tasks`` are exactly
    ``(task,)`` (``legff.ivf`` for IR-VIS, ``swinfusion.ct`` for MRI-CT).  On pairs of that task the runner
    runs the variant in place of ``name`` and records ``name`` as skipped there, with the reason."""
    if not task or "." in name:
        return None
    for variant in list_methods(f"{name}.*"):
        if create_method(variant).info.tasks == (task,):
            return variant
    return None


def _task_reason(tasks: tuple[str, ...], seen: set[str | None], n_other: int, n_pairs: int) -> str:
    have = ", ".join(sorted(t or "none" for t in seen))
    if None in seen:
        have += " (a folder declares its task in PATH/dataset.json, e.g. {\"task\": \"MRI-PET\"})"
    share = "" if n_other == n_pairs else f" ({n_other} of {n_pairs} pairs)"
    return f"restricted to task {', '.join(tasks)}; the pairs have task {have}{share}"


def input_failure_pairs(paths: Sequence[str | Path]) -> list[str]:
    """The ``pair`` under which each of a dataset's input problems (one a file, in order) is recorded in
    ``failures``: the file's stem, as a pair is named; where problems share a stem (``a/x.eps`` and ``b/x.eps``,
    a ``Thumbs.db`` in both sub-folders) the file's last two path parts, else its whole path, so that each
    problem keeps its own row.  Until session 32 they shared one key and the second replaced the first: the run
    printed and counted two problems, the store held one."""
    stems = [Path(p).stem for p in paths]
    two_parts = [Path(*Path(p).parts[-2:]).as_posix() for p in paths]
    pairs = [stem if stems.count(stem) == 1 else two if two_parts.count(two) == 1 else str(p)
             for p, stem, two in zip(paths, stems, two_parts)]
    seen: dict[str, int] = {}
    unique = []
    for pair in pairs:  # the same file twice (a plugin's two lines about it): numbered, not replaced
        seen[pair] = seen.get(pair, 0) + 1
        unique.append(pair if seen[pair] == 1 else f"{pair}#{seen[pair]}")
    return unique


def run_dataset_names(config: RunConfig) -> list[str]:
    """The run's datasets, each once: ``config.datasets`` (default the built-in ones) with each ``folder:PATH``
    named by its absolute path (:func:`fusionbench.data.folder.folder_dataset_name`), so that one folder typed two
    ways (``folder:ds``, ``folder:ds/``) is one dataset."""
    names = []
    for name in config.datasets or DEFAULT_DATASETS:
        family, _, path = name.partition(":")
        names.append(folder_dataset_name(path) if family == "folder" and path.strip() else name)
    return list(dict.fromkeys(names))


def plan_run(config: RunConfig, selection: MethodSelection, created: dict[str, Any], unavailable: dict[str, str],
             metrics: list[str], store: ResultsStore, cache: Path, log: Log) -> Plan:
    """Every (method, pair) to do, in slowest-first order (:mod:`fusionbench.schedule`), and every
    (method, dataset) not run with its reason (weights unavailable, task restriction, missing split)."""
    from .schedule import expected_seconds, image_pixels, method_costs, prior_costs

    plan = Plan()
    keys = {name: m.cache_key() for name, m in created.items()} | {n: f.key for n, f in selection.external.items()}
    units: list[tuple[str, Any, str, bool]] = []  # (dataset, pair, method, fuses)
    datasets: dict[str, Any] = {}
    dataset_names = run_dataset_names(config)
    built = [create_dataset(ds_name, data_dir=config.data_dir) for ds_name in dataset_names]
    if config.split not in (None, "all") and all(config.split not in d.splits for d in built):
        have = sorted({s for d in built for s in d.splits})
        lower = {s.lower(): s for s in have}  # TEST: 'test' (difflib compares case-sensitively)
        close = [lower[config.split.lower()]] if config.split.lower() in lower else \
            difflib.get_close_matches(config.split, have, n=1)
        raise ValueError(f"no dataset of the run has split {config.split!r}"
                         + (f" (did you mean {close[0]!r}?)" if close else "") + f"; they have: {', '.join(have)}")
    known = store.dataset_names()
    for ds_name, dataset in zip(dataset_names, built):
        for earlier in earlier_names(dataset.name, known):  # a store of a run before session 28: adopted
            store.rename_dataset(earlier, dataset.name)
            log(f"{earlier}: its rows in the store are now those of {dataset.name} (a folder dataset is named by its "
                "absolute path since session 28)")
        plan.datasets.append(dataset.name)
        store.clear_input_failures(dataset.name)
        plan.input_failures += len(dataset.problems)
        paths = [getattr(problem, "path", None) or problem.partition(": ")[0]  # a plugin dataset's plain line
                 for problem in dataset.problems]
        for problem, pair in zip(dataset.problems, input_failure_pairs(paths)):
            log(f"{ds_name}: {problem}")
            store.record_failure(dataset.name, pair, "", stage="fuse", error="InputError", message=problem)
        if config.split not in (None, "all") and config.split not in dataset.splits:
            reason = f"no split {config.split!r} (has: {', '.join(dataset.splits) or 'none'})"
            plan.skipped += [(dataset.name, name, reason) for name in selection.names]
            plan.pairs[dataset.name] = set()  # none in this run's split: its summary holds no other split's rows
            continue
        datasets[dataset.name] = dataset
        pairs = dataset.select(config.split)
        plan.pairs[dataset.name] = {str(pair.id) for pair in pairs}
        if not pairs:  # a (method, dataset) not run, with its reason, as the others (session 37: only a log line)
            where = f" in split {config.split!r}" if dataset.pairs else ""
            plan.skipped += [(dataset.name, name, f"no image pairs{where}") for name in selection.names]
            continue
        for name, m in list(created.items()):
            if name in unavailable:
                plan.skipped.append((dataset.name, name, f"unavailable: {unavailable[name]}"))
                continue
            substitutes = {t: v for t in sorted({p.task for p in pairs}, key=str)
                           if (v := task_variant(name, t)) is not None}
            for task, variant in substitutes.items():
                plan.skipped.append((dataset.name, name, f"on {task} pairs its {task} variant {variant} runs instead"))
                if variant in created:
                    continue  # selected itself: it runs through its own entry
                created[variant] = create_method(variant)
                keys[variant] = created[variant].cache_key()
                plan.added_variants.append(variant)
                reason = created[variant].unavailable_reason()
                if reason:
                    unavailable[variant] = reason
                    plan.skipped.append((dataset.name, variant, f"unavailable: {reason}"))
                else:
                    units += [(dataset.name, p, variant, True) for p in pairs if p.task == task]
            other = [p for p in pairs if not m.info.applies_to(p.task) and p.task not in substitutes]
            if other:
                plan.skipped.append((dataset.name, name, _task_reason(m.info.tasks, {p.task for p in other},
                                                                      len(other), len(pairs))))
            units += [(dataset.name, p, name, True) for p in pairs
                      if m.info.applies_to(p.task) and p.task not in substitutes]
        units += [(dataset.name, p, name, False) for name in selection.external for p in pairs]

    pixels: dict[tuple[str, str], int] = {}
    done = {ds: store.done_index(ds) for ds in datasets}
    digests = {ds: store.fused_digests(ds) for ds in datasets}  # what a cached image's pixels must be
    todo: list[tuple[str, Any, str, bool]] = []
    for ds, pair, name, fuses in units:
        if set(metrics) <= done[ds].get((pair.id, name, keys[name], pair.sha256), set()):
            plan.already_done += 1
            continue
        todo.append((ds, pair, name, fuses))
        if (ds, pair.id) not in pixels:
            pixels[(ds, pair.id)] = image_pixels(pair.a_path)
    rates = method_costs(store.method_seconds(), pixels, keys)
    known = prior_costs()
    definitions = _user_definitions(config, metrics, log)
    versions = metric_versions(metrics)  # a worker scores only with the presets the client has
    for ds, pair, name, fuses in todo:
        key = keys[name]
        fused_path = cache_file(cache, name, key, pair.sha256)
        common = dict(dataset=ds, pair=pair.id, pair_sha256=pair.sha256, method=name, method_key=key,
                      metrics=tuple(metrics), a=ImageSource.from_path(pair.a_path),
                      b=ImageSource.from_path(pair.b_path), fused_path=str(fused_path), timeout=config.timeout)
        if not fuses:  # an external result: its image, checked and cached by the client
            folder = selection.external[name]
            image = folder.image_for(ds, pair.id) or folder.expected_path(ds, pair.id)
            given, colour = ImageSource.from_path(image), folder.colour
        elif _cached_image_usable(fused_path, log):  # fused before: only scored (its pixels checked)
            given, colour = ImageSource.from_path(fused_path), None
            common["given_sha256"] = digests[ds].get((pair.id, name, key, pair.sha256))
        else:
            given, colour = None, None
        cost = expected_seconds(name, pixels[(ds, pair.id)], tuple(metrics), rates, fuses=given is None)
        if given is None:
            plan.cost_sources[name] = ("this store's timings" if name in rates else
                                       "the prior table" if name in known else "no timing (median of the priors)")
        plan.tasks.append(Task(**common, given=given, results_colour=colour, expected_seconds=cost,
                               definitions=definitions(name if fuses else None), metric_versions=versions))
    plan.tasks = slowest_first(plan.tasks)
    return plan


def _user_definitions(config: RunConfig, metrics: list[str], log: Log) -> Callable[[str | None], Definitions | None]:
    """The user registrations a task needs, by method (:func:`fusionbench.definitions.pack`, once per method; one
    line logged for an entry that cannot be sent); nothing when the tasks run in this process (``--workers 0``)."""
    from functools import lru_cache

    from .definitions import pack

    if config.workers == 0 and not config.scheduler:
        return lambda name: None
    said: set[str] = set()

    def warn_once(line: str) -> None:  # a metric's line would come once per method otherwise
        if line not in said:
            said.add(line)
            log(line)

    return lru_cache(maxsize=None)(lambda name: pack(name, metrics, warn=warn_once))


def _cached_image_usable(path: Path, log: Log) -> bool:
    """Whether a fused image is cached at ``path`` and reads as an image (header and PNG chunk CRCs, without
    decoding, :func:`fusionbench.io.image_size`).  A truncated, zero-byte or corrupt one is logged and the pair
    is fused again; the new image replaces it (:func:`write_output`)."""
    from .io import ImageError, image_size

    if not path.is_file():
        return False
    try:
        image_size(path)
    except ImageError as exc:
        log(unreadable_cache_note(path, exc.reason))
        return False
    return True


def _log_skipped(skipped: list[tuple[str, str, str]], log: Log) -> None:
    """One line per reason: which methods on which datasets are not run."""
    by_reason: dict[str, dict[str, list[str]]] = {}
    for dataset, method, reason in skipped:
        by_reason.setdefault(reason, {}).setdefault(dataset, []).append(method)
    for reason, per_ds in by_reason.items():
        where = "; ".join(f"{', '.join(methods)} on {ds}" for ds, methods in per_ds.items())
        log(f"not run: {where}: {reason}")


def write_output(result: TaskResult, task: Task) -> None:
    """The client's side of a result: put a new fused PNG into the content-addressed cache and set ``result.path``."""
    if not result.has_output:
        return
    path = Path(task.fused_path)
    if result.png is not None:
        from .io import atomic_write

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(path) as tmp:
                tmp.write_bytes(result.png)
        except OSError as exc:  # a full disk said "[Errno 28] No space left on device", naming no file
            raise OSError(exc.errno, f"cannot write the fused image ({exc.strerror or exc})", str(path)) from None
        result.png = None
    result.path = str(path)


def _execute(tasks: list[Task], config: RunConfig, log: Log) -> Iterator[TaskResult]:
    from . import executors

    if config.scheduler:
        return executors.run_dask(tasks, config.scheduler, log=log)
    if config.workers == 0:
        return executors.run_inline(tasks)
    return executors.run_local(tasks, config.workers)


def _selected(config: RunConfig) -> tuple[MethodSelection, list[str]]:
    """What ``--methods`` and ``--metrics`` select; ``ValueError`` when either selects nothing (an empty value)."""
    selection = select_methods(config.methods)
    if not selection.names:
        raise ValueError(f"--methods {','.join(config.methods)!r} selects no method "
                         "(name methods, patterns or 'all'; `fusionbench list methods`)")
    metrics = resolve_metrics(config.metrics)
    if not metrics:
        raise ValueError(f"--metrics {config.metrics!r} selects no metric "
                         "(name presets, patterns or paper/standard/all; `fusionbench list metrics`)")
    return selection, metrics


def _log_plugin_failures(log: Log) -> None:
    """Name each plugin of methods or metrics that failed to load: what it registers is missing from ``all`` and
    from every pattern, which would otherwise go unsaid (README: no silent skips)."""
    from .metric_registry import METRICS

    for registry in (METHODS, METRICS):
        for failure in registry.plugin_failures:
            log(f"{failure.line()}; no {registry.kind} it registers is in this run")


def dry_run(config: RunConfig, *, log: Log | None = None) -> tuple["Plan", Any]:
    """Plan ``config`` without running or writing anything, and estimate its wall time.

    The plan is the one :func:`run` would make (what is already in ``OUT/results.sqlite`` is not planned
    again; the store is read from an in-memory copy).  Returns ``(plan, estimate)``: a
    :class:`fusionbench.schedule.Estimate` from the tasks' expected seconds (this store's timings where it
    has them, else the prior table of :mod:`fusionbench.costs`) simulated on the run's workers
    (``--workers``, default one per core; a Dask scheduler is not simulated: one worker per core here).
    Where numba's kernel cache is empty (a first run) and the run is local, the estimate includes compiling
    the kernels and the pool's hold on first uses (:func:`fusionbench.schedule.estimate`).
    """
    from .schedule import estimate

    log = log or (lambda msg: print(msg, file=sys.stderr))
    out = Path(config.out)
    cache = Path(config.cache) if config.cache else out / "fused"
    selection, metrics = _selected(config)
    _log_plugin_failures(log)
    created = {name: create_method(name) for name in selection.registered}
    unavailable = {name: r for name, m in created.items() if (r := m.unavailable_reason())}
    with ResultsStore.snapshot(out / "results.sqlite") as store:
        plan = plan_run(config, selection, created, unavailable, metrics, store, cache, log)
    _log_skipped(plan.skipped, log)
    workers = 1 if config.workers == 0 else (config.workers or os.cpu_count() or 1)
    return plan, estimate(plan.tasks, workers, empty_cache=not config.scheduler and numba_cache_is_empty())


def _prepare(config: RunConfig, selection: MethodSelection, metrics: list[str], store: ResultsStore, run_id: int,
             cache: Path, log: Log) -> tuple[dict[str, str], "Plan"]:
    """Create the methods, record them and the skipped (method, dataset) units, and plan the run's tasks;
    returns ``(unavailable methods with their reasons, plan)``."""
    created = {name: create_method(name) for name in selection.registered}
    store.record_methods(run_id, _method_rows(created)
                         + [(name, folder.key, folder.metadata()) for name, folder in selection.external.items()])
    unavailable = {}
    for name, m in created.items():
        reason = m.unavailable_reason()
        if reason:
            unavailable[name] = reason
            log(f"skipping method {name}: {reason}")
    plan = plan_run(config, selection, created, unavailable, metrics, store, cache, log)
    if plan.added_variants:
        store.record_methods(run_id, _method_rows({name: created[name] for name in plan.added_variants}))
    store.record_skipped(run_id, plan.skipped)
    _log_skipped(plan.skipped, log)
    return unavailable, plan


def _kernel_cache_space(config: RunConfig) -> str | None:
    """A warning line when numba's kernel cache is on a full disk (:func:`fusionbench.config.numba_cache_space_problem`),
    for a local run (remote workers have their own caches); ``None`` where there is room.  Where the cache is
    still empty (a first run: every kernel would fail to save, and with it the first pair of each method with
    kernels) the run is refused instead, in that line.  A cache that holds kernels may hold every one the run
    needs (a resume on a home at its quota): the run goes on, and the line says what may fail."""
    if config.scheduler and not config.scheduler.startswith("local:"):
        return None
    problem = numba_cache_space_problem()
    if problem is None:
        return None
    if numba_cache_is_empty():
        raise OSError(problem)
    return (f"warning: {problem}; a kernel this run compiles cannot be saved, and the first pair of its method "
            "fails (kernels already cached load as usual)")


def _sweep_killed_writes(out: Path, cache: Path) -> None:
    """Remove what a writer killed between its write and its rename left (``io.atomic_write``'s hidden
    ``.NAME.PID@HOST.HEX.tmp`` files of this machine whose process has ended) in OUT and in the fused-image cache's folders
    (``<cache>/<method>/<key>/``): a resume used to leave them for ever (session 32's chaos audit)."""
    from .io import ATOMIC_TEMP_NAME
    from .process_owner import sweep_stale

    try:
        methods = [Path(e.path) for e in os.scandir(cache) if e.is_dir(follow_symlinks=False)]
        keys = [Path(e.path) for m in methods for e in os.scandir(m) if e.is_dir(follow_symlinks=False)]
    except OSError:
        methods, keys = [], []
    for folder in [out, cache, *methods, *keys]:
        sweep_stale(folder, ATOMIC_TEMP_NAME)


def run(config: RunConfig, *, command: str = "", log: Log | None = None) -> RunSummary:
    """Execute a run described by ``config``; see the module docstring."""
    log = log or _stderr_line
    started = time.perf_counter()
    worker_memory_mb()  # a malformed $FUSIONBENCH_WORKER_MEMORY_MB stops the run here, in one line
    kill_grace_s()  # so does a malformed $FUSIONBENCH_KILL_GRACE_S (before any run row is written)
    if config.scheduler:
        local_cluster_size(config.scheduler)  # local:0 would wait for ever: refused before anything is written
    selection, metrics = _selected(config)  # before the folders: a selection error leaves no empty OUT/ behind
    kernel_cache_full = _kernel_cache_space(config)  # so does a full kernel cache on a first run
    out = writable_folder(config.out, "--out")
    check_store(out / "results.sqlite")  # another program's file there: refused before the cache folder is made
    # the cache is not probed here: a read-only cache that already holds every output is a valid resume; it is
    # once the plan has new images to write (below)
    cache = writable_folder(config.cache if config.cache else out / "fused", "--cache", probe=False)
    if kernel_cache_full:
        log(kernel_cache_full)
    _sweep_killed_writes(out, cache)
    _log_plugin_failures(log)
    methods = selection.names
    dataset_names = run_dataset_names(config)

    store = ResultsStore(out / "results.sqlite")
    run_id = store.start_run(command or "fusionbench run", {**config.__dict__, "resolved_methods": methods,
                                                           "resolved_metrics": metrics,
                                                           "resolved_datasets": dataset_names},
                             _versions(), code_commit(), machine_info())
    for other, pid in store.live_runs(exclude=run_id):
        log(f"run {other} (process {pid}) is running into {out} too: pairs neither run has stored yet are fused by "
            "both (the results stay correct: the later rows replace the earlier); let one finish first")
    try:
        unavailable, plan = _prepare(config, selection, metrics, store, run_id, cache, log)
        if any(task.given is None or task.results_colour is not None for task in plan.tasks):
            # new images to write (fused, or external results the client caches): the cache must take them (a
            # read-only one was found at the first new image, and stopped the run there; session 39's CLI audit)
            writable_folder(cache, "--cache")
    except BaseException as exc:  # a dataset not found, a split no dataset has, ...: the run did nothing, and says so
        store.finish_run(run_id, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed before any task")
        store.close()
        raise
    tasks = plan.tasks
    log(f"run {run_id}: {len(tasks)} (method, pair) tasks to do, {plan.already_done} already done; "
        f"{len(methods)} methods, {len(metrics)} metrics, datasets {', '.join(dataset_names)}")

    completed = failures = 0
    status = "interrupted"
    results: Iterator[TaskResult] | None = None
    warned = WarningReport()
    try:
        results = _execute(tasks, config, log)
        by_id = {(t.dataset, t.pair, t.method): t for t in tasks}
        for result in _progress(results, len(tasks), "fuse+score", config.quiet):
            write_output(result, by_id[(result.dataset, result.pair, result.method)])
            store.record_task(result, run_id)
            completed += 1
            for note in result.notes + warned.lines(result.method, result.dataset, result.pair, result.warnings):
                log(note)
            for f in result.failures:
                failures += 1
                what = f"{f.stage}{'/' + f.metric if f.metric else ''}"
                log(f"FAILED {result.method} on {result.dataset}/{result.pair} ({what}): {f.error}: {f.message}")
        status = "done"
    except BaseException as exc:  # Ctrl-C and SIGTERM interrupt a run; anything else (disk full, ...) fails it
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"failed: {type(exc).__name__}"
        raise
    finally:
        if results is not None:  # the executor's own clean-up (busy workers stopped) now, not when the generator
            results.close()      # is collected: a caller that keeps the exception (a notebook) kept the workers
        store.finish_run(run_id, status)
        for line in warned.counts(run_id):
            log(line)
    superseded = store.superseded(plan.datasets, methods)
    if superseded:
        log(f"run {run_id}: {superseded} older score rows of these methods and datasets (other method versions or "
            "changed pair files) are superseded: kept as history, not read by the summary or reports")
    summary_path = None
    if config.summary:
        from .summary import write_summary

        summary_path = write_summary(store, out / "summary.md", metrics=metrics, datasets=plan.datasets,
                                     methods=methods + plan.added_variants, pairs=plan.pairs)
    store.close()
    return RunSummary(run_id, len(tasks) + plan.already_done, plan.already_done, completed, failures, unavailable,
                      time.perf_counter() - started, summary_path, superseded, len(plan.skipped), plan.input_failures)
