"""The unit of work: one (method, pair) → fused PNG bytes + scores.

Runs in a worker process (local pool or Dask worker, possibly on another
machine) and touches no file of the client: the inputs come with the
:class:`Task` (as bytes, or as a path or fsspec URL the worker can read), and
the worker returns a :class:`TaskResult` with the fused image encoded as PNG;
the client alone writes the content-addressed cache and the results store.
Exactly the path of :func:`fusionbench.fuse`: load and validate, split colour,
fuse, merge colour, quantise; then score the BT.601 luma with every requested
preset.

Per task, a worker process decodes the pair once and keeps it (with the
source lumas the metrics see) in a small cache (:data:`PAIR_CACHE_BYTES`), so
the other methods' tasks on that pair neither decode nor convert it again;
methods are built (weights loaded) once per worker; the scores come from one
:func:`fusionbench.metrics.evaluate` call (intermediates shared between
presets); the output is encoded at zlib level 1 (lossless, 2.5x faster to
encode than level 6, about the same size).  ``docs/runner.md`` has the timings.
After each task the worker's resident memory is bounded
(:func:`fusionbench.worker_memory.bound_memory`, ``$FUSIONBENCH_WORKER_MEMORY_MB``), and before
fusing a pair larger than any TNO image room is made for it (:func:`fusionbench.worker_memory.make_room`).

Per-pair timeout: in a process's main thread (local pool, ``--workers 0``) a
``SIGALRM`` timer; in any other thread (a Dask worker runs tasks in threads,
where signals cannot reach) the fusion runs in a child process that is killed
when the time is up (:mod:`fusionbench.sandbox`).  The timer cannot interrupt
compiled code that keeps the interpreter; a local pool worker therefore also
stops itself a grace period later (:func:`fusionbench.executors.run_local`).

A method (or metric) that raises any ``Exception`` or ``SystemExit`` (it called
``sys.exit()``) is a recorded failure of that task; ``KeyboardInterrupt`` is
left to interrupt the run, as Ctrl-C does.
"""
from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .config import worker_memory_mb
from .definitions import Definitions
from .process_owner import tagged_tempdir
from .registry import module_being_imported
from .sandbox import PairTimeout
from .worker_memory import bound_memory, make_room

_METHOD_CACHE: dict[tuple[str, str, str | None], Any] = {}
_METHOD_CACHE_LOCK = threading.Lock()


# --------------------------------------------------------------------------- inputs
#: the name of a worker's scratch folder in the system's temp folder: ``<prefix><pid>-<random>``
SCRATCH_PREFIX = "fusionbench-worker-"
_SCRATCH: Path | None = None


def _scratch_dir() -> Path:
    """This process's folder for images received as bytes (created once, removed at exit)."""
    global _SCRATCH
    if _SCRATCH is None or not _SCRATCH.is_dir():
        import atexit
        import shutil

        _SCRATCH = tagged_tempdir(SCRATCH_PREFIX)
        atexit.register(shutil.rmtree, _SCRATCH, True)
    return _SCRATCH


@dataclass(frozen=True)
class ImageSource:
    """One image a task needs: its bytes, or a path / fsspec URL the worker reads.

    ``name`` is how messages name the image (the client's path), whatever the
    worker reads it from, so that a bad file is one line naming the client's file.
    """

    name: str
    url: str | None = None  # a local path, or an fsspec URL (``s3://…``, ``https://…``)
    data: bytes | None = None  # the file's bytes, carried with the task

    @classmethod
    def from_path(cls, path: str | Path) -> "ImageSource":
        return cls(str(path), url=str(path))

    @property
    def is_remote_url(self) -> bool:
        """Whether ``url`` is read through fsspec (any protocol but a plain/``file://`` path)."""
        return self.url is not None and "://" in self.url and not self.url.startswith("file://")

    def portable(self) -> "ImageSource":
        """The same image, readable on a machine that shares no files with this one.

        A remote URL stays a URL (the worker reads it); a local file is carried
        as bytes (an unreadable one stays a path: the worker then reports it,
        naming the file).
        """
        if self.data is not None or self.url is None or self.is_remote_url:
            return self
        try:
            return replace(self, data=Path(self.url).read_bytes(), url=None)
        except OSError:
            return self

    @property
    def nbytes(self) -> int:
        return len(self.data) if self.data is not None else 0

    @contextmanager
    def local_file(self) -> Iterator[Path]:
        """A local path holding the image (a temporary file for bytes or a remote URL)."""
        if self.data is None and not self.is_remote_url:
            yield Path(self.url or self.name)
            return
        data = self.data
        if data is None:
            import fsspec

            with fsspec.open(self.url, "rb") as fh:
                data = fh.read()
        path = _scratch_dir() / f"{uuid.uuid4().hex}-{Path(self.name).name or 'image'}"
        path.write_bytes(data)
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def load(self, loader: Callable[[Path], np.ndarray] | None = None) -> np.ndarray:
        """Load with ``loader`` (default :func:`fusionbench.io.load_image`); errors name ``self.name``."""
        from .io import ImageError, load_image

        loader = loader or load_image
        with self.local_file() as path:
            try:
                return loader(path)
            except ImageError as exc:
                if exc.path == self.name:
                    raise
                raise ImageError(self.name, exc.reason) from None


@dataclass(frozen=True)
class Task:
    """Everything a worker needs for one (method, pair), picklable.

    ``given`` is an already-fused image (a cached output, or an image of an
    external results folder when ``results_colour`` is set): the worker fuses
    nothing and scores it; an external result is checked with
    :func:`fusionbench.external.load_result` and returned as PNG for the cache.
    ``fused_path`` is where the *client* caches the output; workers never write it.
    ``given_sha256`` is the pixel digest the store recorded for a cached output
    (:func:`fusionbench.io.pixel_sha256`; ``None`` where none was recorded): a cached
    image whose pixels are not those is fused again.
    """

    dataset: str
    pair: str
    pair_sha256: str
    method: str
    method_key: str
    metrics: tuple[str, ...]
    a: ImageSource
    b: ImageSource
    fused_path: str
    given: ImageSource | None = None
    results_colour: str | None = None
    timeout: float | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    expected_seconds: float = 0.0  # the planner's estimate (slowest first, :mod:`fusionbench.schedule`)
    definitions: Definitions | None = None  # the user registrations it needs (:mod:`fusionbench.definitions`)
    metric_versions: dict[str, str] = field(default_factory=dict)  # the client's preset versions: checked here
    given_sha256: str | None = None

    def portable(self) -> "Task":
        """This task with its images as bytes (or remote URLs), for a worker that shares no files."""
        return replace(self, a=self.a.portable(), b=self.b.portable(),
                       given=self.given.portable() if self.given is not None else None)

    @property
    def nbytes(self) -> int:
        """Bytes of image data the task carries."""
        return self.a.nbytes + self.b.nbytes + (self.given.nbytes if self.given is not None else 0)


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Failure:
    """One failed stage: ``fuse`` (loading, fusing, timeouts, crashes) or ``score`` (one metric)."""

    stage: str
    error: str
    message: str
    metric: str = ""
    traceback: str = ""

    @classmethod
    def from_exception(cls, stage: str, exc: BaseException, metric: str = "") -> "Failure":
        from .sandbox import SandboxError

        if isinstance(exc, SandboxError):  # raised in the fusion child: keep its type name and traceback
            return cls(stage, exc.error, exc.message, metric, exc.remote_traceback)
        text = str(exc)
        # format_exception, not format_exc: a score failure is built after score_pair returned, outside the
        # except block, where format_exc gave "NoneType: None"
        return cls(stage, type(exc).__name__, text.splitlines()[0] if text else type(exc).__name__, metric,
                   "".join(traceback.format_exception(exc)))


@dataclass
class TaskResult:
    """What a worker returns for one task (built only by :meth:`of`, :meth:`crashed` and :func:`run_task`).

    ``png`` holds a newly fused (or external) image for the client to cache;
    ``path`` is set by the client once the output is in its cache.
    ``fused_sha256`` is the pixel digest of the image scored (:func:`fusionbench.io.pixel_sha256`;
    ``None`` when there is none).
    """

    dataset: str
    pair: str
    method: str
    method_key: str
    pair_sha256: str
    scores: dict[str, float] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    png: bytes | None = None
    seconds: float | None = None  # fusion wall time (None when nothing was fused)
    worker: str = ""
    path: str | None = None
    notes: list[str] = field(default_factory=list)  # lines for the run's log that are not failures
    fused_sha256: str | None = None
    warnings: list[str] = field(default_factory=list)  # raised while fusing and scoring (fusionbench.task_warnings)

    @classmethod
    def of(cls, task: Task, **fields: Any) -> "TaskResult":
        return cls(task.dataset, task.pair, task.method, task.method_key, task.pair_sha256, **fields)

    @classmethod
    def crashed(cls, task: Task, message: str, error: str = "WorkerCrash") -> "TaskResult":
        """The result of a task whose worker died or could not run it (a fuse failure with ``message``)."""
        return cls.of(task, failures=[Failure("fuse", error, message)])

    @property
    def has_output(self) -> bool:
        """Whether the pair was fused (or its given image loaded): no ``fuse`` failure."""
        return not any(f.stage == "fuse" for f in self.failures)


# --------------------------------------------------------------------------- fusing
class WeightsUnavailable(RuntimeError):
    """The method's weights are not usable on this worker (the message names the worker)."""


def worker_name() -> str:
    """This worker's name in messages: its Dask address, else ``host:pid``.

    Dask is looked up only where it is already imported (a Dask worker): importing it in a local pool
    worker would cost each worker about 0.3 s of CPU for nothing."""
    if "distributed" in sys.modules:
        try:
            from distributed import get_worker

            return get_worker().address
        except ValueError:  # not inside a Dask worker
            pass
    return f"{socket.gethostname()}:{os.getpid()}"


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGALRM")


#: a local pool worker's watchdog for the task in hand, ``(grace seconds, file for the stack dump)``, set by
#: :func:`watchdog` (:func:`fusionbench.executors._run_guarded`); ``None`` elsewhere
_WATCHDOG: tuple[float, Any] | None = None


@contextmanager
def watchdog(grace_s: float, dump: Any) -> Iterator[None]:
    """While the block runs, a fusion under a per-pair timeout also arms a C watchdog
    (:func:`faulthandler.dump_traceback_later`, ``exit=True``) that ends this process ``grace_s`` seconds after
    the timeout, writing its stack dump to ``dump``: the stop of a method stuck in compiled code, which the
    SIGALRM cannot interrupt.  It covers the fusion only: decoding the pair and scoring are never stopped
    (before, a pair whose fusion took most of the timeout and whose scoring was slow was killed and recorded
    as a PairTimeout)."""
    global _WATCHDOG
    _WATCHDOG = (grace_s, dump)
    try:
        yield
    finally:
        _WATCHDOG = None


#: seconds between looks, once the timer has expired, for the end of an import or a kernel compile that holds
#: back the :class:`PairTimeout` (:func:`_alarm`)
HOLD_BACK_RECHECK_S = 0.02


def _depth(frame: Any) -> int:
    """The number of frames from ``frame`` down to the bottom of its thread's stack."""
    depth = 0
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    return depth


def unsafe_to_interrupt(frame: Any = None, newer_than: int = 0) -> str:
    """What the thread of ``frame`` (default: the caller's) is doing, in its frames above the ``newer_than``
    deepest ones (the call that armed the timer), that an exception raised into it would leave half-done for
    the rest of the process: ``"importing MODULE"`` (a module's top level running, or importlib's own steps:
    importlib drops the module it fails but keeps the submodules it has imported, so the package comes back
    without them as attributes, e.g. ``module 'numba' has no attribute 'core'``), ``"compiling a kernel"``
    (numba's compiler lock held by this thread: its registries and caches are filled in steps), or ``""``.
    Only this thread's frames above the armed call count (session 37's review: an import in another thread,
    or one around the whole run, held the timeout back too).  Reads code objects and module dicts only, so
    it runs no hook and imports nothing (it runs in a signal handler)."""
    frame = frame if frame is not None else sys._getframe(1)
    for _ in range(max(_depth(frame) - newer_than, 0)):
        if frame.f_code.co_filename.startswith("<frozen importlib") or module_being_imported(frame) is not None:
            return f"importing {frame.f_globals.get('__name__', '?')}"
        frame = frame.f_back
    locks = sys.modules.get("numba.core.compiler_lock")
    lock = getattr(locks, "global_compiler_lock", None)
    if lock is not None and lock.is_locked():
        return "compiling a kernel"
    return ""


@contextmanager
def _alarm(seconds: float | None) -> Iterator[None]:
    """A SIGALRM timer (only in a process's main thread), and in a pool worker its :func:`watchdog`.

    A timer that expires while the method imports a module or numba compiles a kernel
    (:func:`unsafe_to_interrupt`) holds its :class:`PairTimeout` back until that is over, looking again every
    :data:`HOLD_BACK_RECHECK_S`: raised there, it left every later task of the process failing on the
    half-imported package, other methods' included (session 37's audit: a 0.5 s timeout on ``mlepf``'s first
    pair, then ``module 'numba' has no attribute 'core'`` for every task after it).  A kernel that compiles
    once for a pair then serves the next pairs instead of being stopped and started again on each.  The pool
    worker's watchdog still ends the process ``grace`` seconds after the timeout whatever it is doing.
    """
    if not seconds:
        yield
        return

    # the frames of the block (the method's call) are those above the caller of this context manager, whose
    # frame lies two below this generator's (contextlib's __enter__ between): the caller's own frame does not
    # count (it may be a module's top level that armed the timer)
    armed_depth = _depth(sys._getframe()) - 2

    def _raise(signum: int, frame: Any) -> None:
        if unsafe_to_interrupt(frame, armed_depth):
            signal.setitimer(signal.ITIMER_REAL, HOLD_BACK_RECHECK_S)
            return
        raise PairTimeout(f"exceeded the per-pair timeout of {seconds:g} s")

    guard = _WATCHDOG
    if guard is not None:
        import faulthandler

        faulthandler.dump_traceback_later(seconds + guard[0], exit=True, file=guard[1])
    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        try:  # a timer expiring from here on is discarded (a Python handler set to SIG_IGN never runs) ...
            signal.signal(signal.SIGALRM, signal.SIG_IGN)
        finally:  # ... and if it raised just before, the cleanup still runs: never a C watchdog left armed
            signal.setitimer(signal.ITIMER_REAL, 0)
            if guard is not None:
                faulthandler.cancel_dump_traceback_later()
            signal.signal(signal.SIGALRM, old)


class MethodMismatch(RuntimeError):
    """The method a worker builds under a task's name is not the one the client planned: another version,
    other parameters or other weights (its cache key differs), so its output would be stored under the
    client's key as if the client's method had made it."""


def _method_cache_key(name: str, key: str, definitions: Any) -> tuple[str, str, str | None]:
    """Where :func:`_method` keeps a built method: its name, cache key and the user registrations' digest."""
    return name, key, definitions.digest if definitions is not None else None


def _method(name: str, key: str, overrides: dict[str, Any], *, verify_key: bool = False,
            definitions: Any = None) -> Any:
    """The method ``name`` built with ``overrides``, once per process, ``key`` and the user registrations in effect
    (``definitions``: their digest, so two versions of a user method with the same key, or two overrides of one
    built-in, are built apart; session 39's review); with ``verify_key`` a
    :class:`MethodMismatch` unless its :meth:`~fusionbench.method_registry.FusionMethod.cache_key` here is
    ``key`` (a Dask worker with another fusionbench, plugin or weights file than the client)."""
    from .method_registry import create_method

    cache_key = _method_cache_key(name, key, definitions)
    cached = _METHOD_CACHE.get(cache_key)
    if cached is None:
        with _METHOD_CACHE_LOCK:  # the threads of a Dask worker share one method (and so one build of it)
            cached = _METHOD_CACHE.get(cache_key)
            if cached is None:
                cached = create_method(name, **overrides)
                if verify_key and cached.cache_key() != key:
                    raise MethodMismatch(
                        f"on worker {worker_name()}: method {name!r} is not the client's (cache key "
                        f"{cached.cache_key()} here, {key} on the client: another version, parameters or weights); "
                        "install the same fusionbench, plugins and weights where the workers run")
                _METHOD_CACHE[cache_key] = cached
    return cached


def fuse_task(task: Task, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    """Fuse one pair with the task's method under its timeout; returns (uint8 image, seconds)."""
    from .api import fuse_arrays

    method = _method(task.method, task.method_key, task.overrides, verify_key=True, definitions=task.definitions)
    reason = method.unavailable_reason()
    if reason:
        raise WeightsUnavailable(f"on worker {worker_name()}: {reason}")
    if task.timeout and not _in_main_thread():
        from .sandbox import fuse_in_sandbox

        return fuse_in_sandbox(task.method, task.method_key, task.overrides, a, b, task.timeout, task.definitions)
    start = time.perf_counter()
    try:
        with _alarm(task.timeout if _in_main_thread() else None):
            fused = fuse_arrays(method, a, b)
    except Exception as exc:
        timeout = _timeout_behind(exc)
        if timeout is None:
            raise
        # stopped anywhere in its call, the instance may be half-way through changing its state: the next pair
        # gets a new one
        _METHOD_CACHE.pop(_method_cache_key(task.method, task.method_key, task.definitions), None)
        if timeout is exc:
            raise
        raise PairTimeout(str(timeout)) from exc
    return fused, time.perf_counter() - start


def _timeout_behind(exc: BaseException) -> PairTimeout | None:
    """The :class:`PairTimeout` ``exc`` is, or was raised from: the timer can fire in a Python callback of
    compiled code (numba's ``_numba_unpickle``), which then reports ``SystemError: … returned a result with an
    exception set`` caused by it (seen in session 37's final read: recorded as a ``SystemError`` of the method,
    and its instance kept)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, PairTimeout):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


#: zlib level of the fused PNGs: level 1 encodes a fused 256² RGB image in ~3 ms where the default 6 takes
#: ~7.5 ms, and the files are within a few per cent of the same size (lossless either way; docs/runner.md)
PNG_COMPRESS_LEVEL = 1


def encode_png(image: np.ndarray) -> bytes:
    """Lossless PNG bytes of a uint8 grey or RGB image (zlib level :data:`PNG_COMPRESS_LEVEL`; the pixels
    :func:`fusionbench.io.save_png` would write, in a faster-to-encode file)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


#: bytes of decoded pairs a worker keeps (least recently used dropped first)
PAIR_CACHE_BYTES = 256 << 20


@dataclass(frozen=True)
class _LoadedPair:
    a: np.ndarray
    b: np.ndarray
    luma_a: np.ndarray  # the uint8 greys the metrics see (:func:`fusionbench.api.scoring_view`)
    luma_b: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.a.nbytes + self.b.nbytes + self.luma_a.nbytes + self.luma_b.nbytes


_PAIRS: "OrderedDict[tuple[str, str, str, str | None, str | None], _LoadedPair]" = OrderedDict()
PAIR_CACHE_STATS = {"hits": 0, "misses": 0}
_PAIRS_LOCK = threading.Lock()


def _pair_key(task: Task) -> tuple[str, str, str, str | None, str | None] | None:
    """What identifies a task's decoded pair in this worker (``None``: not cached, the pair has no digest)."""
    if not task.pair_sha256:
        return None
    return (task.pair_sha256, task.a.name, task.b.name, task.a.url, task.b.url)


def load_pair(task: Task) -> _LoadedPair:
    """The task's two images, decoded and checked, with their scoring lumas (cached per worker process).

    Keyed by the pair's sha256 and the two sources' names, so a changed file (a new digest) is decoded
    again; the arrays are never handed to a method (callers get copies, see :func:`run_task`)."""
    from .colour import luma_uint8
    from .io import check_pair

    key = _pair_key(task)
    with _PAIRS_LOCK:  # a Dask worker runs tasks in several threads
        if key is not None and key in _PAIRS:
            _PAIRS.move_to_end(key)
            PAIR_CACHE_STATS["hits"] += 1
            return _PAIRS[key]
    a = task.a.load()
    b = task.b.load()
    check_pair(a, b, task.a.name, task.b.name)
    pair = _LoadedPair(a, b, luma_uint8(a), luma_uint8(b))
    for arr in (pair.a, pair.b, pair.luma_a, pair.luma_b):
        arr.flags.writeable = False
    with _PAIRS_LOCK:
        PAIR_CACHE_STATS["misses"] += 1
        if key is not None and pair.nbytes <= PAIR_CACHE_BYTES:
            _PAIRS[key] = pair
            total = sum(p.nbytes for p in _PAIRS.values())
            while total > PAIR_CACHE_BYTES:
                total -= _PAIRS.popitem(last=False)[1].nbytes
    return pair


def _given_image(task: Task, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, bytes | None]:
    assert task.given is not None
    if task.results_colour is not None:  # an external result: checked, then cached by the client
        from .external import load_result

        fused = task.given.load(lambda p: load_result(p, a.shape, task.results_colour or "luma"))
        return fused, encode_png(fused)
    fused = task.given.load()
    if fused.ndim == 2 and (a.ndim == 3 or b.ndim == 3):  # a colour output whose channels happen to be equal
        fused = np.repeat(fused[..., None], 3, axis=2)
    return fused, None


class MetricMismatch(RuntimeError):
    """A preset whose version on this worker is not the client's: its score would be stored under the client's
    version as if the client's preset had computed it."""


def _metric_mismatches(expected: dict[str, str]) -> dict[str, MetricMismatch]:
    """The presets of ``expected`` (``{name: the client's version}``) registered here under another version."""
    from .metric_registry import metric_versions

    here = metric_versions(expected)
    return {name: MetricMismatch(f"on worker {worker_name()}: metric {name!r} is version {here[name]} here, "
                                 f"{version} on the client; install the same fusionbench and plugins where the "
                                 "workers run")
            for name, version in expected.items() if name in here and here[name] != version}


def score(fused: np.ndarray, luma_a: np.ndarray, luma_b: np.ndarray, metrics: tuple[str, ...],
          result: TaskResult, a: np.ndarray | None = None, b: np.ndarray | None = None,
          versions: dict[str, str] | None = None) -> None:
    """Score the fused image against the pair with every preset into ``result``
    (:func:`fusionbench.scoring.score_pair`: the luma presets in one :func:`fusionbench.metrics.evaluate` call,
    a preset that reads colour on the images as they are); each preset that fails is a ``score`` failure.
    ``a``/``b``: the sources as decoded (their lumas where not given).  ``versions``: the client's versions of
    the presets; one registered here under another version is a ``MetricMismatch`` failure, not scored."""
    from .scoring import score_pair

    errors: dict[str, BaseException] = dict(_metric_mismatches(versions or {}))
    scores = score_pair(fused, luma_a if a is None else a, luma_b if b is None else b,
                        tuple(m for m in metrics if m not in errors), luma_a=luma_a, luma_b=luma_b)
    result.scores.update(scores.values)
    errors.update(scores.errors)
    result.failures.extend(Failure.from_exception("score", exc, metric=name) for name, exc in errors.items())


def drop_caches() -> None:
    """Forget this worker's built methods and decoded pairs (they are rebuilt on demand)."""
    _METHOD_CACHE.clear()
    with _PAIRS_LOCK:
        _PAIRS.clear()


def bound_worker_memory() -> None:
    """After a task: keep this process's resident set under ``$FUSIONBENCH_WORKER_MEMORY_MB``
    (:func:`fusionbench.worker_memory.bound_memory`, dropping the built methods and decoded pairs last); a pool
    worker, a Dask worker and a sandbox's fusion child each call it for themselves."""
    try:
        bound_memory(worker_memory_mb(), drop_caches)
    except ValueError:  # a malformed limit: the runner refuses it before any task; a bare worker skips it
        pass


def run_task(task: Task) -> TaskResult:
    """Fuse (unless given an image) and score one pair, then bound the worker's memory; never raises.  The
    warnings raised meanwhile are the result's :attr:`TaskResult.warnings` (:mod:`fusionbench.task_warnings`),
    for the client to report: never printed here, over its progress bar."""
    from .task_warnings import collecting

    try:
        with collecting() as warned:
            result = _run_task(task)
        result.warnings = warned
        return result
    finally:
        bound_worker_memory()


def _make_room(pixels: int) -> None:
    """Before fusing a large pair, free memory for it (:func:`fusionbench.worker_memory.make_room`)."""
    try:
        make_room(pixels, worker_memory_mb())
    except ValueError:  # a malformed limit: as in run_task
        pass


def unreadable_cache_note(path: str | Path, reason: str) -> str:
    """The log line of a cached fused image that does not read, whichever side finds it (the planner by its
    header, :func:`fusionbench.runner._cached_image_usable`; the worker by decoding it): it is fused again."""
    return f"cached fused image {path} is unreadable ({reason}): fusing the pair again to replace it"


def changed_cache_note(path: str | Path, found: str, recorded: str) -> str:
    """The log line of a cached fused image that decodes but whose pixels are not those the store recorded
    (edited, replaced or copied over from another run): it is fused again."""
    return (f"cached fused image {path} holds other pixels than the store recorded (sha256 {found[:12]}…, "
            f"recorded {recorded[:12]}…): fusing the pair again to replace it")


def _fuse_into(result: TaskResult, task: Task, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Fuse the pair for ``result`` (its PNG, time and digest set); the fused image."""
    from .io import pixel_sha256

    _make_room(a.shape[0] * a.shape[1])
    fused, result.seconds = fuse_task(task, a, b)
    result.png = encode_png(fused)
    result.fused_sha256 = pixel_sha256(fused)
    return fused


def _run_task(task: Task) -> TaskResult:
    from .definitions import installed

    result = TaskResult.of(task, worker=worker_name())
    with contextlib.ExitStack() as stack:
        try:
            # what the client registered at run time (a script's method, a notebook's, its overrides of built-ins
            # included), in effect for this task
            stack.enter_context(installed(task.definitions))
        except (Exception, SystemExit) as exc:  # the definitions could not be unpickled (a module this worker lacks)
            result.failures.append(Failure.from_exception("fuse", exc))
            return result
        return _run_installed(task, result)  # its own errors are handled there, or propagate as before


def _run_installed(task: Task, result: TaskResult) -> TaskResult:
    """:func:`_run_task` with the task's registrations in effect."""
    from .io import ImageError, pixel_sha256

    try:
        pair = load_pair(task)
        a, b = pair.a.copy(), pair.b.copy()  # a method may write into its inputs: never into the cached pair
        if task.given is None:
            fused = _fuse_into(result, task, a, b)
        else:
            try:
                fused, result.png = _given_image(task, a, b)
                result.fused_sha256 = pixel_sha256(fused)
            except ImageError as exc:
                if task.results_colour is not None:  # an external result: the user's file, its failure
                    raise
                # a cached image whose header and checksums pass the planner's check but that does not
                # decode: fused again, and the new PNG replaces it (it was a 'fuse' failure on every run)
                result.notes.append(unreadable_cache_note(exc.path, exc.reason))
                fused = _fuse_into(result, task, a, b)
            else:
                if task.given_sha256 and task.results_colour is None and result.fused_sha256 != task.given_sha256:
                    result.notes.append(changed_cache_note(task.given.name, result.fused_sha256,
                                                           task.given_sha256))
                    fused = _fuse_into(result, task, a, b)
    except (Exception, SystemExit) as exc:  # recorded, never fatal (a method calling sys.exit() included)
        result.failures.append(Failure.from_exception("fuse", exc))
        return result
    score(fused, pair.luma_a, pair.luma_b, task.metrics, result, pair.a, pair.b, task.metric_versions)
    return result
