"""Which process owns a run row or a temporary folder, and whether that process is gone.

A process killed with ``kill -9`` (or by the kernel's out-of-memory killer, or a power cut) runs no clean-up:
its ``runs`` row stays ``running`` and the temporary folders it made stay in the system's temp folder.  This
module lets a later process on the same machine recognise them:

* :func:`current_owner` is what a run records about its process (host name, pid, and the process's start
  time, so that a pid reused by another process is not taken for the run's);
* :func:`owner_gone` says whether such a record names a process that has ended.  It answers only for this
  machine: a run recorded by another host (a store on a shared disk) is never declared gone;
* :func:`tagged_tempdir` makes a temporary folder whose name carries the pid, and :func:`sweep_tempdirs`
  removes the ones whose process no longer exists (a reused pid keeps its folder: never a wrong removal).
"""
from __future__ import annotations

import os
import platform
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

#: start times of one process read twice differ by well under this (psutil derives them from boot time + ticks)
START_TIME_TOLERANCE_S = 1.0


def _start_time(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or ``None`` if there is no such process."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.Error:  # access denied: the process exists
        return float("nan")


def _start_ticks(pid: int) -> str | None:
    """Linux: ``<boot id>:<start time in clock ticks since boot>`` of process ``pid`` (``/proc``), or ``None``.

    Unlike a start time in seconds since the epoch (psutil derives it from the boot time, which moves when the
    clock is stepped), this never changes while the process lives, so a live run is never taken for a dead one."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
        return f"{boot}:{stat.rsplit(')', 1)[1].split()[19]}"  # field 22 of stat, counted after the name
    except (OSError, IndexError):
        return None


def current_owner() -> dict[str, Any]:
    """This process, as a run records it: ``{"hostname", "pid", "started", "start_ticks"}`` (``start_ticks``:
    :func:`_start_ticks`, on Linux)."""
    pid = os.getpid()
    return {"hostname": platform.node(), "pid": pid, "started": _start_time(pid), "start_ticks": _start_ticks(pid)}


def owner_gone(owner: Mapping[str, Any] | None) -> bool:
    """Whether ``owner`` (a :func:`current_owner` record) names a process of this machine that has ended.

    ``False`` when it cannot tell: no record (a row written before owners were recorded), another host, or a
    process whose start time cannot be read.  A live process with the same pid but a different start time is
    another process: the owner is gone."""
    if not owner or owner.get("hostname") != platform.node() or not isinstance(owner.get("pid"), int):
        return False
    started = _start_time(owner["pid"])
    if started is None:
        return True
    ticks = owner.get("start_ticks")
    if ticks:  # Linux: exact, and immune to clock steps
        now = _start_ticks(owner["pid"])
        if now is not None:
            return now != ticks
    recorded = owner.get("started")
    if recorded is None or started != started:  # not recorded, or not readable (NaN): assume it is the owner
        return False
    return abs(started - float(recorded)) > START_TIME_TOLERANCE_S


def tagged_tempdir(prefix: str) -> Path:
    """A new folder in the system's temp folder named ``<prefix><pid>-<random>``; :func:`sweep_tempdirs` removes
    it once this process is gone, if nothing else did (``prefix`` ends with ``-``)."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))


#: an entry named without a host (``fusionbench.io.ATOMIC_TEMP_NAME`` before session 32) is removed by
#: :func:`sweep_stale` only when it is older than this: its writer may be another machine's live process
UNTAGGED_MIN_AGE_S = 3600.0


def sweep_stale(folder: str | Path, pattern: re.Pattern[str], *, folders_only: bool = False) -> list[Path]:
    """Remove the entries of ``folder`` whose whole name matches ``pattern`` (its first group: the pid of the
    process that made it) and whose process no longer exists; the removed paths.

    Only this user's entries are touched (others cannot be removed anyway), and an entry is left where its pid is
    running, whatever that process is now: never a wrong removal.  Where ``pattern`` has a ``host`` group
    (:func:`fusionbench.io.host_tag` of the writer's machine), only this machine's entries are judged: on a disk
    several machines share, another host's pid says nothing here; an entry without the tag (an older writer) is
    removed only when it is older than :data:`UNTAGGED_MIN_AGE_S`."""
    import time

    import psutil

    from .io import host_tag

    tagged = "host" in pattern.groupindex
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    uid = os.getuid()
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if not match:
            continue
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
            info = entry.stat(follow_symlinks=False)
            if (folders_only and not is_dir) or info.st_uid != uid:
                continue
            if tagged:
                host = match.group("host")
                if host is not None and host != host_tag():
                    continue  # another machine's writer: alive or not, not for this one to say
                if host is None and time.time() - info.st_mtime < UNTAGGED_MIN_AGE_S:
                    continue
            if psutil.pid_exists(int(match.group(1))):
                continue
            if is_dir:
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except (OSError, OverflowError):
            continue
        if not os.path.lexists(entry.path):
            removed.append(Path(entry.path))
    return removed


def sweep_tempdirs(prefixes: Iterable[str]) -> list[Path]:
    """Remove the :func:`tagged_tempdir` folders of ``prefixes`` in the system's temp folder whose process no
    longer exists (:func:`sweep_stale`); the removed paths."""
    pattern = re.compile("(?:" + "|".join(re.escape(p) for p in prefixes) + r")(\d+)-[^/]+")
    return sweep_stale(tempfile.gettempdir(), pattern, folders_only=True)
