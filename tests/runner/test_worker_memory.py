"""A worker's resident memory between tasks is bounded: free pages are returned, then caches dropped."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from fusionbench import worker
from fusionbench.config import WORKER_MEMORY_MB_DEFAULT, worker_memory_mb
from fusionbench.method_registry import create_method
from fusionbench.worker import ImageSource, Task, run_task
from fusionbench.worker_memory import (LARGE_PIXELS, MEMORY_STATS, bound_memory, make_room, release_free_memory,
                                       resident_mb)

_AVERAGE_KEY = create_method("average").cache_key()  # a worker builds only the method the client planned
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")


def _task(data, tmp_path) -> Task:
    return Task(dataset="d", pair="p000", pair_sha256="s", method="average", method_key=_AVERAGE_KEY, metrics=("EN",),
                a=ImageSource.from_path(data / "a" / "p000.png"), b=ImageSource.from_path(data / "b" / "p000.png"),
                fused_path=str(tmp_path / "f.png"))


@linux_only
def test_resident_mb_reads_this_process() -> None:
    """Measured in a fresh interpreter: in a long-lived test worker the 64 MiB could partly reuse memory that
    earlier tests freed but the process kept resident (seen once: +22 MiB in a full-suite worker at 1.4 GiB)."""
    import subprocess

    code = ("import numpy as np; from fusionbench.worker_memory import resident_mb; before = resident_mb(); "
            "block = np.ones(64 << 20, dtype=np.uint8); after = resident_mb(); print(before, after)")
    before, after = (float(v) for v in subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                       check=True).stdout.split())
    assert after - before > 50
    assert resident_mb() is not None  # and in this process


def test_the_limit_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("FUSIONBENCH_WORKER_MEMORY_MB", raising=False)
    assert worker_memory_mb() == WORKER_MEMORY_MB_DEFAULT
    monkeypatch.setenv("FUSIONBENCH_WORKER_MEMORY_MB", "0")
    assert worker_memory_mb() == 0
    monkeypatch.setenv("FUSIONBENCH_WORKER_MEMORY_MB", "lots")
    with pytest.raises(ValueError, match="FUSIONBENCH_WORKER_MEMORY_MB must be a whole number"):
        worker_memory_mb()


@linux_only
def test_under_the_limit_nothing_is_done() -> None:
    dropped = []
    assert bound_memory(1e9, lambda: dropped.append(1)) == "none"
    assert bound_memory(0, lambda: dropped.append(1)) == "none"  # 0: no bound
    assert not dropped


@linux_only
def test_over_the_limit_caches_are_dropped_when_trimming_is_not_enough() -> None:
    dropped = []
    trims = MEMORY_STATS["trims"]
    assert bound_memory(1, lambda: dropped.append(1)) == "drop"  # no process fits in 1 MiB
    assert dropped == [1] and MEMORY_STATS["trims"] == trims + 1


@linux_only
def test_a_task_over_the_limit_leaves_the_worker_without_caches(tmp_path, make_pairs, monkeypatch) -> None:
    data = make_pairs(tmp_path / "data", 1)
    monkeypatch.setenv("FUSIONBENCH_WORKER_MEMORY_MB", str(1 << 30))
    first = run_task(_task(data, tmp_path))
    assert worker._METHOD_CACHE and worker._PAIRS  # under the limit the caches stay
    monkeypatch.setenv("FUSIONBENCH_WORKER_MEMORY_MB", "1")
    drops = MEMORY_STATS["cache_drops"]
    second = run_task(_task(data, tmp_path))
    assert MEMORY_STATS["cache_drops"] == drops + 1
    assert not worker._METHOD_CACHE and not worker._PAIRS
    assert second.scores == first.scores and second.png == first.png  # rebuilt on demand, same result


def test_a_malformed_limit_never_makes_a_task_raise(tmp_path, make_pairs, monkeypatch) -> None:
    data = make_pairs(tmp_path / "data", 1)
    monkeypatch.setenv("FUSIONBENCH_WORKER_MEMORY_MB", "lots")
    result = run_task(_task(data, tmp_path))
    assert result.png and not result.failures


def test_the_runner_refuses_a_malformed_limit_in_one_line(tmp_path, monkeypatch, capsys) -> None:
    from fusionbench.cli import main

    monkeypatch.setenv("FUSIONBENCH_WORKER_MEMORY_MB", "lots")
    assert main(["run", "--methods", "average", "--out", str(tmp_path / "out"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["fusionbench: error: $FUSIONBENCH_WORKER_MEMORY_MB must be a whole number of MiB (0: no bound), "
                   "got 'lots' instead"]
    assert not (tmp_path / "out" / "results.sqlite").exists()


def _fill_transform_cache(mib: int) -> None:
    """Put one ``mib``-MiB array into the transforms' filter-response cache (as a transform would)."""
    from fusionbench.methods._transforms import _cache

    _cache.clear()

    @_cache.bounded_cache
    def response(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.uint8)

    response(mib << 20)
    assert _cache.bytes_cached() == mib << 20


def _transform_cache_bytes() -> int:
    from fusionbench.methods._transforms import _cache

    return _cache.bytes_cached()


@linux_only
def test_after_a_task_the_transform_cache_goes_before_the_built_methods() -> None:
    _fill_transform_cache(96)
    release_free_memory()
    rss = resident_mb()
    dropped = []
    assert bound_memory(rss - 32, lambda: dropped.append(1)) == "transforms"  # 96 MiB freed: under again
    assert not dropped and _transform_cache_bytes() == 0


@linux_only
def test_room_is_made_only_before_large_pairs() -> None:
    _fill_transform_cache(8)
    checks, trims = MEMORY_STATS["room_checks"], MEMORY_STATS["trims"]
    assert make_room(768 * 576, 1) == "none"  # TNO's largest: the between-task bound alone, as before
    assert make_room(LARGE_PIXELS + 1, 0) == "none"  # bound off
    assert MEMORY_STATS["room_checks"] == checks and MEMORY_STATS["trims"] == trims
    assert make_room(1024 * 1024, 1 << 20) == "trim"  # room enough: free pages returned, the cache kept
    assert MEMORY_STATS["room_checks"] == checks + 1 and MEMORY_STATS["trims"] == trims + 1
    assert _transform_cache_bytes() == 8 << 20
    # 1 MiB + 256 MiB headroom − 1 GiB expected need at 1024²: no room; free pages first, then the cache
    assert make_room(1024 * 1024, 1) == "transforms"
    assert MEMORY_STATS["trims"] == trims + 2 and _transform_cache_bytes() == 0
    assert make_room(1024 * 1024, 1) == "trim"  # nothing left to drop; built methods stay


@linux_only
def test_a_large_pair_gets_room_before_its_fusion(tmp_path, monkeypatch) -> None:
    from PIL import Image

    side = 725  # 525,625 pixels: just above LARGE_PIXELS
    rng = np.random.default_rng(0)
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(tmp_path / sub / "p000.png")
    monkeypatch.setenv("FUSIONBENCH_WORKER_MEMORY_MB", str(1 << 30))
    checks, trims = MEMORY_STATS["room_checks"], MEMORY_STATS["trims"]
    _fill_transform_cache(8)
    roomy = run_task(_task(tmp_path, tmp_path))
    assert MEMORY_STATS["room_checks"] == checks + 1 and _transform_cache_bytes() == 8 << 20
    monkeypatch.setenv("FUSIONBENCH_WORKER_MEMORY_MB", "1")
    tight = run_task(_task(tmp_path, tmp_path))
    assert MEMORY_STATS["room_checks"] == checks + 2 and MEMORY_STATS["trims"] > trims
    assert MEMORY_STATS["transform_cache_drops"] >= 1 and _transform_cache_bytes() == 0
    assert not tight.failures and tight.scores == roomy.scores and tight.png == roomy.png
