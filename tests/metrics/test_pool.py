"""``evaluate``'s preset pool (issue 23): same values as one thread, thread caps, errors, the shared cache."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import fusionbench.metrics as M
from fusionbench.metrics import _pool
from fusionbench.metrics._cache import cached, shared_cache
from fusionbench.metrics.functional._fmi_lanes import fmi_mean
from fusionbench.metrics.functional._threads import fft_workers, inside_pool, metric_threads, pool_task
from fusionbench.metrics.synthetic import triple


def _same(x: dict, y: dict) -> bool:
    return list(x) == list(y) and all(np.array_equal(x[k], y[k], equal_nan=True) for k in x)


@pytest.mark.filterwarnings("ignore::fusionbench.metrics.UndefinedMetricWarning")
@pytest.mark.parametrize("n,rule", [(48, "avg"), (70, "max")])
def test_pool_gives_the_sequential_values_bit_for_bit(monkeypatch, n, rule):
    f, a, b = triple(n, 1, rule)
    monkeypatch.setenv("FUSIONBENCH_WORKER_THREADS", "2")
    pooled = M.evaluate(f, a, b, "all")
    again = M.evaluate(f, a, b, "all")  # second call: longest-first order from the first call's times
    monkeypatch.setenv("FUSIONBENCH_WORKER_THREADS", "1")
    sequential = M.evaluate(f, a, b, "all")
    alone = {name: M.compute(name, f, a, b) for name in sequential}  # no cache, no pool
    assert _same(pooled, sequential) and _same(again, sequential) and _same(alone, sequential)


def test_worker_cap_of_one_runs_on_the_calling_thread(monkeypatch):
    monkeypatch.setenv("FUSIONBENCH_WORKER_THREADS", "1")
    assert metric_threads() == 1
    seen = _pool.run_presets(["x", "y"], lambda name: threading.current_thread().name, (1, 1))
    assert seen == [threading.current_thread().name] * 2


def test_pool_tasks_are_single_threaded_inside(monkeypatch):
    monkeypatch.setenv("FUSIONBENCH_WORKER_THREADS", "2")
    assert not inside_pool() and fft_workers() == 2
    out = _pool.run_presets(["a", "b", "c"], lambda name: (inside_pool(), fft_workers()), (2, 2))
    assert out == [(True, 1)] * 3
    with pool_task():
        assert fft_workers() == 1


def test_serial_fmi_kernel_inside_the_pool_equals_the_parallel_one():
    rng = np.random.default_rng(3)
    ff, fa, fb = (rng.random((33, 29)) for _ in range(3))
    outside = fmi_mean(ff, fa, fb, 3)
    with pool_task():
        assert fmi_mean(ff, fa, fb, 3) == outside


def test_first_error_in_preset_order_is_raised_after_all_tasks(monkeypatch):
    monkeypatch.setenv("FUSIONBENCH_WORKER_THREADS", "2")
    done = []

    def fn(name):
        if name.startswith("bad"):
            raise ValueError(name)
        time.sleep(0.02)
        done.append(name)
        return 0.0

    with pytest.raises(ValueError, match="bad1"):
        _pool.run_presets(["ok1", "bad1", "bad2", "ok2"], fn, (3, 3))
    assert sorted(done) == ["ok1", "ok2"]


def test_bad_input_message_is_unchanged_under_the_pool(monkeypatch):
    monkeypatch.setenv("FUSIONBENCH_WORKER_THREADS", "2")
    f, a, b = triple(32, 0)
    with pytest.raises(ValueError, match="shapes differ"):
        M.evaluate(f, a[:-1], b, "all")


def test_shared_cache_computes_each_key_once_across_threads():
    calls = []
    barrier = threading.Barrier(4)

    def compute():
        calls.append(1)
        time.sleep(0.05)
        return object()

    with shared_cache():
        import contextvars

        results = []

        def worker():
            barrier.wait()
            results.append(cached(("k",), compute))

        threads = [threading.Thread(target=contextvars.copy_context().run, args=(worker,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(calls) == 1 and len({id(r) for r in results}) == 1


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_pool_works_in_a_forked_child(monkeypatch):
    import multiprocessing

    monkeypatch.setenv("FUSIONBENCH_WORKER_THREADS", "2")
    f, a, b = triple(40, 0)
    parent = M.evaluate(f, a, b, ["SSIM", "Qabf", "VIFF"])  # the parent's pool exists now
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        # a bounded wait: a child that got the parent's pool without its threads waits for ever (session 28)
        child = pool.apply_async(M.evaluate, (f, a, b, ["SSIM", "Qabf", "VIFF"])).get(timeout=120)
    assert _same(child, parent)


def test_evaluate_from_several_threads_keeps_its_warnings_to_itself() -> None:
    """``evaluate(warn=False)`` from four threads at once shows no ``UndefinedMetricWarning`` and leaves the
    process's warning filters as they were, so a later ``warn=True`` call warns.  Until session 30 it silenced
    with ``warnings.catch_warnings``, which saves and restores the process-wide filters: interleaved calls leaked
    the warnings and left an ``ignore`` filter behind (20 of 20 tries in a thread-safety audit)."""
    import warnings

    rng = np.random.default_rng(0)
    images = [tuple(rng.integers(0, 256, (64, 72), dtype=np.uint8) for _ in range(3)) for _ in range(4)]
    undefined_here = ["MS_SSIM", "ChromaErr"]  # MS-SSIM below 161 px a side; ChromaErr on grey sources
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        before = list(warnings.filters)
        barrier = threading.Barrier(4)

        def work(i: int) -> None:
            barrier.wait()
            for _ in range(3):
                M.evaluate(*images[i], undefined_here + ["EN", "SSIM"])

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert warnings.filters == before
        assert not [w for w in caught if issubclass(w.category, M.UndefinedMetricWarning)]
        values = M.evaluate(*images[0], undefined_here, warn=True)
        assert all(np.isnan(v) for v in values.values())
        assert len([w for w in caught if issubclass(w.category, M.UndefinedMetricWarning)]) == 2
