"""``fusionbench.pages.small_pages``: NumPy's huge-page advice is off inside ``evaluate`` and restored after."""
from __future__ import annotations

import threading

import pytest

from fusionbench import pages as _pages
from fusionbench.metrics import evaluate
from fusionbench.metrics.synthetic import triple

pytestmark = pytest.mark.skipif(_pages._SET is None, reason="this NumPy has no huge-page switch")


def _current() -> bool:
    old = _pages._SET(True)
    _pages._SET(old)
    return old


def test_advice_is_off_inside_and_restored_after_nesting(monkeypatch):
    monkeypatch.delenv("FUSIONBENCH_HUGEPAGES", raising=False)
    before = _current()
    with _pages.small_pages():
        assert _current() is False
        with _pages.small_pages():
            assert _current() is False
        assert _current() is False  # the inner exit does not restore early
    assert _current() is before


def test_opt_out_leaves_numpy_alone(monkeypatch):
    monkeypatch.setenv("FUSIONBENCH_HUGEPAGES", "1")
    before = _current()
    with _pages.small_pages():
        assert _current() is before


def test_restored_after_an_error_and_concurrent_calls(monkeypatch):
    monkeypatch.delenv("FUSIONBENCH_HUGEPAGES", raising=False)
    before = _current()
    with pytest.raises(ValueError):
        with _pages.small_pages():
            raise ValueError("boom")
    assert _current() is before
    f, a, b = triple(64, 0, "avg")
    want = evaluate(f, a, b, "paper")
    got = [None] * 4

    def run(i):
        got[i] = evaluate(f, a, b, "paper")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(g == want for g in got)  # NaN-free group on this triple
    assert _current() is before
    assert _pages._state["depth"] == 0


def test_for_process_turns_the_advice_off_and_a_later_exit_keeps_it_off(monkeypatch):
    monkeypatch.delenv("FUSIONBENCH_HUGEPAGES", raising=False)
    before = _current()
    try:
        _pages._SET(True)
        with _pages.small_pages():
            assert _pages.small_pages_for_process() is True
        assert _current() is False  # the block's exit restores the process setting, not the one it saved
        _pages._SET(True)
        monkeypatch.setenv("FUSIONBENCH_HUGEPAGES", "1")
        assert _pages.small_pages_for_process() is False
        assert _current() is True
    finally:
        _pages._SET(before)


def test_a_local_pool_worker_runs_with_the_advice_off(monkeypatch):
    import multiprocessing

    from fusionbench.executors import _init_worker

    monkeypatch.delenv("FUSIONBENCH_HUGEPAGES", raising=False)
    with multiprocessing.get_context("spawn").Pool(1, initializer=_init_worker, initargs=(1,)) as pool:
        assert pool.apply(_advice_in_worker) is False


def _advice_in_worker() -> bool:
    from fusionbench import pages

    old = pages._SET(True)
    pages._SET(old)
    return old
