"""Stand-ins for the local pool's tests: tasks that need no image, and a ``ProcessPoolExecutor`` whose futures are
decided when submitted (so a test controls what each task gives and sees the order they were handed out in)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Collection


def fake_tasks(tmp_path: Path, methods: list[str], timeout: float | None = None, given: Collection[int] = ()) -> list:
    """One task per entry of ``methods`` (pair ``p<i>``); those at the indices in ``given`` only score a given
    image (they build no method)."""
    from fusionbench.worker import ImageSource, Task

    src = ImageSource.from_path(tmp_path / "x.png")
    return [Task("ds", f"p{i}", "sha", m, "k", ("EN",), src, src, str(tmp_path / f"{m}{i}.png"), timeout=timeout,
                 given=src if i in given else None) for i, m in enumerate(methods)]


def fake_pool(outcome: Callable, submitted: list, pools: list[object],
              record: Callable = lambda task: task.method) -> type:
    """A stand-in for ``ProcessPoolExecutor``: its workers report their start at once, ``record(task)`` of each
    submitted task (its method) is appended to ``submitted``, and each future is decided when submitted by
    ``outcome(task, marker, pools made so far)``, a ``TaskResult`` or an exception to raise."""
    from concurrent.futures import Future

    class FakePool:
        def __init__(self, *args, initargs=(), **kwargs):
            initargs[0].put("")  # its workers started (:func:`fusionbench.executors._start_worker`)
            pools.append(self)

        def submit(self, fn, task, kill_after=None, marker=None):
            submitted.append(record(task))
            fut: Future = Future()
            out = outcome(task, marker, len(pools))
            if isinstance(out, BaseException):
                fut.set_exception(out)
            else:
                fut.set_result(out)
            return fut

        def shutdown(self, wait=True, cancel_futures=False):
            pass

    return FakePool
