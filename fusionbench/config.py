"""Paths and environment: the one place that reads fusionbench's environment variables.

* ``FUSIONBENCH_HOME`` — the cache root (default ``$XDG_CACHE_HOME/fusionbench``, else ``~/.cache/fusionbench``):
  downloaded datasets under ``data/``, third-party weights under ``weights/``, weights you train under ``trained/``,
  and numba's disk cache of compiled kernels under ``numba/`` (:func:`use_numba_cache_home`).
* ``FUSIONBENCH_WORKER_THREADS`` — the per-worker thread cap the runner sets in each
  worker process (so that N workers do not oversubscribe N cores); unset outside a worker.
* ``FUSIONBENCH_WORKER_THREADS_FIXED`` — set (non-empty) in a Dask worker's environment by whoever starts
  it: the worker keeps its own ``FUSIONBENCH_WORKER_THREADS`` instead of the cap the client computes.
* ``FUSIONBENCH_WORKER_MEMORY_MB`` — the resident memory a worker may keep between tasks before it gives
  memory back (default :data:`WORKER_MEMORY_MB_DEFAULT`; ``0`` switches the bound off;
  :mod:`fusionbench.worker_memory`).
* ``FUSIONBENCH_HUGEPAGES`` — ``1`` leaves NumPy's huge-page advice as it is in ``evaluate`` and in runner
  workers (:mod:`fusionbench.pages`).
* ``FUSIONBENCH_KILL_GRACE_S`` — seconds a local pool worker may run past a task's ``--timeout`` before it
  stops itself (default :data:`KILL_GRACE_S_DEFAULT`; :func:`fusionbench.executors.run_local`).
* ``FUSIONBENCH_MAX_PIXELS`` — the largest image (width × height) fusionbench reads (default
  :data:`MAX_PIXELS_DEFAULT`; ``0`` switches the limit off): a larger one is refused from its header, naming
  the file, before it is decoded (:func:`fusionbench.io.image_size`).

Every function reads the environment when called (tests and workers change it at run time), but for numba's
cache folder, fixed when ``fusionbench`` is imported and inherited by child processes (:func:`use_numba_cache_home`).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

HOME_ENV = "FUSIONBENCH_HOME"
WORKER_THREADS_ENV = "FUSIONBENCH_WORKER_THREADS"
WORKER_THREADS_FIXED_ENV = "FUSIONBENCH_WORKER_THREADS_FIXED"
WORKER_MEMORY_ENV = "FUSIONBENCH_WORKER_MEMORY_MB"
HUGEPAGES_ENV = "FUSIONBENCH_HUGEPAGES"
KILL_GRACE_ENV = "FUSIONBENCH_KILL_GRACE_S"
MAX_PIXELS_ENV = "FUSIONBENCH_MAX_PIXELS"
#: the largest image read by default: 5000×5000.  A fusion method and the metrics hold tens of float64 copies of
#: an image (the pixel rules and the paper's metrics: about 80 bytes a pixel, 11 GB for a 12000² pair), so a small
#: file whose header claims a huge image (PNG compresses a blank 12000² image to 140 kB) would take a worker's
#: memory and then the machine's; Pillow's own limit (179 M pixels) is far above what a worker holds
MAX_PIXELS_DEFAULT = 25_000_000
#: seconds past a task's timeout before its pool worker stops itself: the per-pair SIGALRM cannot interrupt
#: compiled code that keeps the interpreter, and the task's scoring comes after its fusion
KILL_GRACE_S_DEFAULT = 30.0
#: MiB a worker keeps resident between tasks (issue 23: a worker stays under 2 GB; a task's own peak comes on top)
WORKER_MEMORY_MB_DEFAULT = 1536


def home() -> Path:
    """``$FUSIONBENCH_HOME``, else ``$XDG_CACHE_HOME/fusionbench``, else ``~/.cache/fusionbench``."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "fusionbench"


def numba_cache_dir() -> Path:
    """Where numba keeps the compiled kernels of the methods and metrics: ``<home>/numba``."""
    return home() / "numba"


def use_numba_cache_home() -> None:
    """Point numba's disk cache at :func:`numba_cache_dir` unless ``NUMBA_CACHE_DIR`` is set (called when
    ``fusionbench`` is imported, before any kernel is defined; child processes inherit the variable).

    numba's default puts the cache beside each source file: in an installed package, 10 MB of ``.nbi``/``.nbc``
    files in site-packages that ``pip uninstall`` leaves behind, and whose folder then makes ``import
    fusionbench`` succeed as an empty namespace package.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    try:  # absolute: a relative FUSIONBENCH_HOME must not mean another folder in a child with another cwd
        folder = os.path.abspath(numba_cache_dir())
    except (RuntimeError, KeyError, OSError):  # no home folder (an arbitrary uid in a container): numba's default
        return
    os.environ["NUMBA_CACHE_DIR"] = folder
    numba_config = sys.modules.get("numba.core.config")  # numba imported first: its config read the env already
    if numba_config is not None:
        numba_config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]


#: bytes :func:`numba_cache_space_problem` writes to tell a full disk (a kernel's index and data files are
#: 10 kB to 1 MB; creating an empty file still works on a full disk, which numba's own check does)
NUMBA_CACHE_PROBE_BYTES = 256 * 1024


def numba_cache_space_problem() -> str | None:
    """One line when numba's disk cache (``NUMBA_CACHE_DIR``) is on a full disk or over quota, else ``None``.

    numba checks only that it can create a file there, so a full disk made the first pair of each kernel's method
    fail with a bare ``OSError: [Errno 28] No space left on device`` from inside numba (session 32's chaos
    audit), blamed on the method.  An unwritable folder is not a problem here: numba then compiles without
    saving (a shared read-only installation)."""
    import errno
    import tempfile

    folder = os.environ.get("NUMBA_CACHE_DIR")
    if not folder:
        return None
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as probe:
            probe.write(b"\0" * NUMBA_CACHE_PROBE_BYTES)
            probe.flush()  # ext4 (delayed allocation) and tmpfs refuse the blocks here; no fsync: a run start stays cheap
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return (f"numba's kernel cache {folder}: {exc.strerror} (compiled kernels could not be saved); free "
                    "space there, or point FUSIONBENCH_HOME or NUMBA_CACHE_DIR at another folder")
    return None


def numba_cache_is_empty() -> bool:
    """Whether numba's disk cache (``NUMBA_CACHE_DIR``, set by :func:`use_numba_cache_home`) holds no compiled
    kernel yet (no ``*.nbi`` index file): the first run after an installation, or with a new
    ``FUSIONBENCH_HOME``, compiles every kernel it uses.  ``False`` where the variable is unset (numba's cache
    then lies beside the source files) or the folder cannot be read: nothing is assumed."""
    folder = os.environ.get("NUMBA_CACHE_DIR")
    if not folder:
        return False
    try:
        return not any(Path(folder).rglob("*.nbi"))
    except OSError:
        return False


def data_dir() -> Path:
    """Where ``fusionbench fetch`` puts datasets and released datasets are read by default."""
    return home() / "data"


def weights_dir() -> Path:
    """The third-party weights cache, ``<home>/weights/<method_dir>/<file>``."""
    return home() / "weights"


def worker_threads() -> int | None:
    """The per-worker thread cap set by the runner, or ``None`` outside a capped worker."""
    cap = os.environ.get(WORKER_THREADS_ENV, "")
    return int(cap) if cap.isdigit() and int(cap) > 0 else None


def worker_threads_fixed() -> bool:
    """Whether this worker's thread cap was fixed by its own start-up options (``$FUSIONBENCH_WORKER_THREADS_FIXED``)."""
    return bool(os.environ.get(WORKER_THREADS_FIXED_ENV))


def worker_memory_mb() -> int:
    """``$FUSIONBENCH_WORKER_MEMORY_MB`` (MiB; ``0``: no bound), else :data:`WORKER_MEMORY_MB_DEFAULT`."""
    value = os.environ.get(WORKER_MEMORY_ENV, "").strip()
    if not value:
        return WORKER_MEMORY_MB_DEFAULT
    try:
        return max(0, int(value))
    except ValueError:
        raise ValueError(f"${WORKER_MEMORY_ENV} must be a whole number of MiB (0: no bound), "
                         f"got {value!r} instead") from None


def hugepages() -> bool:
    """Whether ``$FUSIONBENCH_HUGEPAGES`` is ``1``: leave NumPy's huge-page advice alone (:mod:`fusionbench.pages`)."""
    return os.environ.get(HUGEPAGES_ENV) == "1"


def kill_grace_s() -> float:
    """``$FUSIONBENCH_KILL_GRACE_S`` (seconds, > 0), else :data:`KILL_GRACE_S_DEFAULT`."""
    value = os.environ.get(KILL_GRACE_ENV, "").strip()
    if not value:
        return KILL_GRACE_S_DEFAULT
    try:
        grace = float(value)
    except ValueError:
        grace = float("nan")
    if not grace > 0 or grace == float("inf"):
        raise ValueError(f"${KILL_GRACE_ENV} must be a positive number of seconds, got {value!r} instead")
    return grace


def max_pixels() -> int:
    """``$FUSIONBENCH_MAX_PIXELS`` (a whole number of pixels; ``0``: no limit), else :data:`MAX_PIXELS_DEFAULT`."""
    value = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
    if not value:
        return MAX_PIXELS_DEFAULT
    try:
        limit = int(value)
    except ValueError:
        limit = -1
    if limit < 0:
        raise ValueError(f"${MAX_PIXELS_ENV} must be a whole number of pixels (0: no limit), "
                         f"got {value!r} instead")
    return limit
