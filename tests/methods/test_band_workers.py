"""The band workers of :mod:`methods._band_workers` (SwinFusion's, MATR's and mopa's inference threading).

The methods' own tests pin that their outputs are the same on 1 and 2 threads; these pin the machinery:
every span once, each worker's spans in order (and MATR's contiguous runs), the caller's grad/inference mode
on the worker threads, exceptions raised only once every span has finished, no workers on one thread, with
autograd or under a dispatch mode (FLOP counter), torch's thread count restored.
"""
from __future__ import annotations

import threading
import time

import pytest

torch = pytest.importorskip("torch")

from fusionbench.methods import _band_workers as bw  # noqa: E402


@pytest.fixture
def threads():
    """Sets torch's thread count for the test (restored afterwards)."""
    old = torch.get_num_threads()

    def set_threads(n: int) -> None:
        torch.set_num_threads(n)

    yield set_threads
    torch.set_num_threads(old)


def _record(spans, *, contiguous, n, mode=torch.no_grad):
    """Runs ``run_spans`` on ``n`` workers; ``[(thread ident, span)]`` in the order each thread ran them."""
    seen, lock = [], threading.Lock()

    def fn(span) -> None:
        time.sleep(0.001)  # let the other workers take spans meanwhile
        with lock:
            seen.append((threading.get_ident(), span))

    torch.set_num_threads(n)
    with mode(), bw.band_workers():
        assert bw.workers() == n and torch.get_num_threads() == 1
        bw.run_spans(fn, spans, contiguous=contiguous)
    assert torch.get_num_threads() == n
    return seen


@pytest.mark.parametrize("contiguous", [False, True])
@pytest.mark.parametrize("n,count", [(2, 7), (3, 10), (2, 1), (3, 2), (2, 0)])
def test_every_span_runs_once_each_worker_in_order(threads, contiguous, n, count):
    spans = [(i, i + 1) for i in range(count)]
    seen = _record(spans, contiguous=contiguous, n=n)
    assert sorted(span for _, span in seen) == spans
    by_thread: dict[int, list] = {}
    for ident, span in seen:
        by_thread.setdefault(ident, []).append(span)
    for runs in by_thread.values():
        assert runs == sorted(runs)
    assert len(by_thread) <= min(n, max(count, 1))


@pytest.mark.parametrize("n,count", [(2, 7), (3, 10), (3, 3), (4, 6)])
def test_contiguous_runs_first_on_the_caller(threads, n, count):
    """``contiguous=True``: N runs of consecutive spans, ``spans[round(i·L/N):round((i+1)·L/N)]``, each run
    in order on one thread, the first on the calling thread and the others as tasks of the pool of N − 1
    threads (a pool thread that finishes its run early may take another run: on a loaded machine one did)."""
    spans = list(range(count))
    seen = _record(spans, contiguous=True, n=n)
    by_thread: dict[int, list] = {}
    for ident, span in seen:
        by_thread.setdefault(ident, []).append(span)
    expected = [spans[round(i * count / n):round((i + 1) * count / n)] for i in range(n)]
    caller = threading.get_ident()
    assert by_thread[caller] == expected[0]
    assert len(by_thread) <= n  # the caller and at most N − 1 pool threads
    for run in expected[1:]:
        thread = by_thread[next(ident for ident, span in seen if span == run[0])]
        start = thread.index(run[0])
        assert thread[start:start + len(run)] == run, (run, by_thread)  # the whole run, in order, on one thread
    assert sorted(span for _, span in seen) == spans


@pytest.mark.parametrize("contiguous", [False, True])
def test_one_thread_runs_in_order_on_the_caller(threads, contiguous):
    threads(1)
    seen = []
    with torch.no_grad(), bw.band_workers():
        assert bw.workers() == 1
        bw.run_spans(lambda s: seen.append((threading.get_ident(), s)), list(range(6)), contiguous=contiguous)
    assert seen == [(threading.get_ident(), s) for s in range(6)]
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("contiguous", [False, True])
@pytest.mark.parametrize("mode,inference", [(torch.inference_mode, True), (torch.no_grad, False)])
def test_the_callers_mode_is_carried_to_the_workers(threads, contiguous, mode, inference):
    threads(2)
    modes, idents = [], set()

    def fn(span) -> None:
        time.sleep(0.002)
        modes.append((torch.is_inference_mode_enabled(), torch.is_grad_enabled()))
        idents.add(threading.get_ident())

    with mode(), bw.band_workers():
        bw.run_spans(fn, list(range(8)), contiguous=contiguous)
    assert len(modes) == 8 and set(modes) == {(inference, False)}
    if contiguous:  # the first run on the caller, the second on the pool thread
        assert len(idents) == 2 and threading.get_ident() in idents
    else:  # every span on the pool's threads
        assert threading.get_ident() not in idents


@pytest.mark.parametrize("contiguous", [False, True])
@pytest.mark.parametrize("bad", [0, 3, 7])
def test_an_exception_is_raised_once_every_span_has_finished(threads, contiguous, bad):
    threads(2)
    done, lock = [], threading.Lock()

    def fn(span) -> None:
        if span == bad:
            raise ValueError(f"span {span}")
        time.sleep(0.005)
        with lock:
            done.append(span)

    with torch.no_grad(), bw.band_workers():
        with pytest.raises(ValueError, match=f"span {bad}"):
            bw.run_spans(fn, list(range(8)), contiguous=contiguous)
        finished = sorted(done)
    if contiguous:
        # the run that raised stops there; every other run is complete, the raising run up to the bad span
        run = [0, 1, 2, 3] if bad < 4 else [4, 5, 6, 7]
        assert finished == sorted([s for s in range(8) if s not in run] + [s for s in run if s < bad])
    else:
        assert finished == [s for s in range(8) if s != bad]
    assert torch.get_num_threads() == 2


def test_torch_threads_restored_after_an_exception(threads):
    threads(2)
    with pytest.raises(RuntimeError), torch.no_grad(), bw.band_workers():
        assert torch.get_num_threads() == 1
        raise RuntimeError("inside")
    assert torch.get_num_threads() == 2 and bw.workers() == 1


def test_no_workers_with_autograd_or_under_a_dispatch_mode(threads):
    from torch.utils.flop_counter import FlopCounterMode

    threads(2)
    with bw.band_workers():  # grad mode: training keeps torch's threading
        assert bw.workers() == 1 and torch.get_num_threads() == 2
    with torch.no_grad(), FlopCounterMode(display=False), bw.band_workers():
        assert bw.workers() == 1 and torch.get_num_threads() == 2
        seen = []
        bw.run_spans(lambda s: seen.append(threading.get_ident()), list(range(4)), contiguous=True)
        assert seen == [threading.get_ident()] * 4
    assert torch.get_num_threads() == 2


def test_workers_do_not_nest_and_the_count_is_per_thread(threads):
    """A worker thread sees one worker (its spans run in order); another thread is unaffected by the block."""
    threads(2)
    inner, other = [], []
    with torch.no_grad(), bw.band_workers():
        bw.run_spans(lambda s: inner.append(bw.workers()), list(range(4)))
        t = threading.Thread(target=lambda: other.append(bw.workers()))
        t.start()
        t.join()
        assert bw.workers() == 2
    assert inner == [1] * 4 and other == [1]


def test_both_runs_the_two_calls_side_by_side_on_two_workers(threads):
    threads(2)
    with torch.inference_mode(), bw.band_workers():
        first, second = bw.both(lambda: (threading.get_ident(), bw.workers(), torch.is_inference_mode_enabled()),
                                lambda: (threading.get_ident(), bw.workers()))
        assert bw.workers() == 2
    assert first[0] != threading.get_ident() and first[1:] == (1, True)
    assert second == (threading.get_ident(), 1)
    threads(3)  # other worker counts: one after the other on the caller
    with torch.no_grad(), bw.band_workers():
        assert bw.both(threading.get_ident, threading.get_ident) == (threading.get_ident(),) * 2


def test_both_waits_for_the_first_call_when_the_second_raises(threads):
    threads(2)
    done = []

    def slow() -> None:
        time.sleep(0.02)
        done.append(1)

    def fail() -> None:
        raise ValueError("second")

    with torch.no_grad(), bw.band_workers():
        with pytest.raises(ValueError):
            bw.both(slow, fail)
        assert done == [1] and bw.workers() == 2


def test_all_cores_gives_torch_the_workers_threads(threads):
    threads(2)
    with torch.no_grad(), bw.band_workers():
        with bw.all_cores():
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 1
    threads(1)
    with bw.all_cores():
        assert torch.get_num_threads() == 1


def test_one_pool_per_size_kept():
    assert bw.pool(2) is bw.pool(2) and bw.pool(1) is not bw.pool(2)
    assert bw.pool(3)._max_workers == 3


def _spans_on_two_workers() -> list[int]:
    torch.set_num_threads(2)
    seen: list[int] = []
    with torch.no_grad(), bw.band_workers():
        bw.run_spans(seen.append, list(range(8)))
    return sorted(seen)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_runs_its_spans():
    """A child forked after the parent used the pool has the pool object but none of its threads: the spans
    waited there for ever (session 28: the band workers kept their own pool cache, not emptied at fork)."""
    import multiprocessing

    old = torch.get_num_threads()
    try:
        assert _spans_on_two_workers() == list(range(8))  # the parent's pool of two exists now
        with multiprocessing.get_context("fork").Pool(1) as child:
            assert child.apply_async(_spans_on_two_workers).get(timeout=60) == list(range(8))
    finally:
        torch.set_num_threads(old)
