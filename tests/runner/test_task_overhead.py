"""Issue 23: what a task spends besides fusion — pairs decoded once per worker, one ``evaluate`` call for the
scores, fast lossless PNGs, methods built once per worker."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fusionbench import worker
from fusionbench.api import scoring_view
from fusionbench.method_registry import METHODS, create_method, register_method
from fusionbench.metric_registry import METRICS, create_metric, register_metric
from fusionbench.worker import ImageSource, Task, run_task


@pytest.fixture(autouse=True)
def _no_memory_bound(monkeypatch):
    """These tests count what a worker keeps between tasks, so the worker's memory bound is off here: late in a
    full test run this pytest process (every compiled kernel of the project loaded) is above the default bound,
    and ``run_task`` would then drop the caches after each task.  The bound has its own tests
    (``tests/runner/test_worker_memory.py``)."""
    monkeypatch.setenv("FUSIONBENCH_WORKER_MEMORY_MB", "0")


def _task(data, pid: str, method: str = "average", metrics=("EN", "SF", "MI", "SSIM"), sha: str | None = None) -> Task:
    return Task(dataset="d", pair=pid, pair_sha256=sha if sha is not None else f"sha-{pid}", method=method,
                method_key=create_method(method).cache_key(), metrics=tuple(metrics),
                a=ImageSource.from_path(data / "a" / f"{pid}.png"), b=ImageSource.from_path(data / "b" / f"{pid}.png"),
                fused_path="unused.png")


def test_scores_are_the_presets_computed_one_by_one(tmp_path, make_pairs) -> None:
    data = make_pairs(tmp_path / "data", 1)
    result = run_task(_task(data, "p000", metrics=("EN", "SF", "MI", "SSIM", "Qabf", "VIFp_sum")))
    assert not result.failures
    fused = np.asarray(Image.open(io.BytesIO(result.png)))
    a = np.asarray(Image.open(data / "a" / "p000.png"))
    b = np.asarray(Image.open(data / "b" / "p000.png"))
    view = scoring_view(fused, a, b)
    alone = {m: float(create_metric(m)(view.fused, view.a, view.b)) for m in result.scores}
    assert result.scores == pytest.approx(alone, rel=1e-12, abs=1e-12)


def test_a_failing_preset_is_recorded_alone_and_the_others_are_scored(tmp_path, make_pairs) -> None:
    @register_metric("test_overhead_broken")
    def broken(fused, a, b):  # noqa: ANN001
        raise ValueError("broken on purpose")

    try:
        data = make_pairs(tmp_path / "data", 1)
        result = run_task(_task(data, "p000", metrics=("EN", "test_overhead_broken", "SF")))
    finally:
        METRICS.remove("test_overhead_broken")
    assert set(result.scores) == {"EN", "SF"}
    (failure,) = result.failures
    assert (failure.stage, failure.metric, failure.error) == ("score", "test_overhead_broken", "ValueError")
    # its traceback is the metric's (it was "NoneType: None": format_exc outside the except block)
    assert "broken on purpose" in failure.traceback and "in broken" in failure.traceback


def test_the_png_is_lossless_and_encoded_at_the_fast_level(tmp_path, make_pairs) -> None:
    img = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    png = worker.encode_png(img)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), img)
    default = io.BytesIO()
    Image.fromarray(img).save(default, format="PNG")
    assert worker.PNG_COMPRESS_LEVEL == 1 and png != default.getvalue()  # level 1, not PIL's default 6


def test_a_pair_is_decoded_once_per_worker_and_a_method_cannot_corrupt_it(tmp_path, make_pairs) -> None:
    @register_method("test_overhead_scribbler")
    def scribble(a, b):  # noqa: ANN001 - writes into its inputs, which a method should not do
        a[...] = 0.0
        b[...] = 0.0
        return a

    try:
        data = make_pairs(tmp_path / "data", 2)
        worker._PAIRS.clear()
        before = dict(worker.PAIR_CACHE_STATS)
        first = run_task(_task(data, "p000"))
        scribbled = run_task(_task(data, "p000", method="test_overhead_scribbler"))
        again = run_task(_task(data, "p000"))
        other = run_task(_task(data, "p001"))
    finally:
        METHODS.remove("test_overhead_scribbler")
    assert not (first.failures or scribbled.failures or again.failures or other.failures)
    assert worker.PAIR_CACHE_STATS["misses"] - before["misses"] == 2  # p000 once, p001 once
    assert worker.PAIR_CACHE_STATS["hits"] - before["hits"] == 2
    assert again.scores == first.scores and again.png == first.png  # the cached pair is intact
    assert other.scores != first.scores


def test_a_changed_pair_digest_is_decoded_again(tmp_path, make_pairs) -> None:
    data = make_pairs(tmp_path / "data", 1)
    worker._PAIRS.clear()
    old = run_task(_task(data, "p000", sha="v1"))
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8)).save(data / "a" / "p000.png")
    new = run_task(_task(data, "p000", sha="v2"))
    assert new.scores != old.scores


def test_the_pair_cache_is_bounded(tmp_path, make_pairs, monkeypatch) -> None:
    data = make_pairs(tmp_path / "data", 3)
    worker._PAIRS.clear()
    one = worker.load_pair(_task(data, "p000")).nbytes
    monkeypatch.setattr(worker, "PAIR_CACHE_BYTES", 2 * one)
    for pid in ("p001", "p002"):
        worker.load_pair(_task(data, pid))
    assert [k[0] for k in worker._PAIRS] == ["sha-p001", "sha-p002"]  # the least recently used went first


def test_a_method_is_built_once_per_worker(tmp_path, make_pairs, monkeypatch) -> None:
    import fusionbench.method_registry as registry

    built = []
    real = registry.create_method
    monkeypatch.setattr(registry, "create_method", lambda name, **kw: built.append(name) or real(name, **kw))
    worker._METHOD_CACHE.clear()
    data = make_pairs(tmp_path / "data", 3)
    for pid in ("p000", "p001", "p002"):
        assert not run_task(_task(data, pid, method="dwt")).failures
    assert built == ["dwt"]


def test_the_pair_cache_is_safe_across_threads(tmp_path, make_pairs, monkeypatch) -> None:
    from concurrent.futures import ThreadPoolExecutor

    data = make_pairs(tmp_path / "data", 6)
    worker._PAIRS.clear()
    one = worker.load_pair(_task(data, "p000")).nbytes
    monkeypatch.setattr(worker, "PAIR_CACHE_BYTES", 3 * one)  # evictions happen while threads read
    expected = {pid: np.asarray(Image.open(data / "a" / f"{pid}.png")) for pid in (f"p{i:03d}" for i in range(6))}
    pids = [f"p{i % 6:03d}" for i in range(240)]
    with ThreadPoolExecutor(4) as pool:
        loaded = list(pool.map(lambda pid: (pid, worker.load_pair(_task(data, pid)).a), pids))
    assert all(np.array_equal(a, expected[pid]) for pid, a in loaded)
    assert len(worker._PAIRS) <= 3 and sum(p.nbytes for p in worker._PAIRS.values()) <= 3 * one


def test_a_local_worker_does_not_import_dask(tmp_path, make_pairs) -> None:
    import subprocess
    import sys

    data = make_pairs(tmp_path / "data", 1)
    code = ("import sys; from fusionbench.worker import ImageSource, Task, run_task; "
            f"t = Task('d', 'p000', 's', 'average', {create_method('average').cache_key()!r}, ('EN',), "
            f"ImageSource.from_path({str(data / 'a' / 'p000.png')!r}), "
            f"ImageSource.from_path({str(data / 'b' / 'p000.png')!r}), 'f.png'); r = run_task(t); "
            "assert not r.failures and ':' in r.worker, r; print('distributed' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_preset_unknown_to_the_worker_is_a_score_failure_and_the_colour_one_reads_rgb(tmp_path, make_pairs) -> None:
    """run_task never raises: a preset this process does not know (a plugin not installed on a Dask worker) is
    one ``score`` failure beside the others' values; ChromaErr gets the images in colour, not the luma view."""
    data = make_pairs(tmp_path / "data", 1)
    result = run_task(_task(data, "p000", metrics=("EN", "test_not_registered_here", "ChromaErr")))
    (failure,) = result.failures
    assert (failure.stage, failure.metric, failure.error) == ("score", "test_not_registered_here", "KeyError")
    fused = np.asarray(Image.open(io.BytesIO(result.png)))
    a = np.asarray(Image.open(data / "a" / "p000.png"))
    b = np.asarray(Image.open(data / "b" / "p000.png"))
    assert result.scores["ChromaErr"] == float(create_metric("ChromaErr")(fused, a, b))
    assert np.isfinite(result.scores["ChromaErr"]) and np.isfinite(result.scores["EN"])
