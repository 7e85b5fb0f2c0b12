"""Thread caps of the methods' own parallel loops (``methods/_planes.py``): a runner worker capped to one thread
runs CNP's, DTNP's, MLEPF's and NSST-PAPCNN's planes on its own thread (the session-28 regression fixed for MDL:
N capped workers on N cores running 2N busy threads)."""
from __future__ import annotations

import threading

from fusionbench.methods._planes import map_planes, method_threads


def test_a_capped_worker_maps_every_plane_on_its_own_thread(monkeypatch, pool_sizes) -> None:
    monkeypatch.setenv("FUSIONBENCH_WORKER_THREADS", "1")
    threads: list[int] = []
    map_planes(lambda i: threads.append(threading.get_ident()), 4)
    assert method_threads() == 1 and pool_sizes == [] and threads == [threading.get_ident()] * 4


def test_planes_run_on_two_threads_outside_a_worker_and_on_the_cap_inside_one(monkeypatch, pool_sizes) -> None:
    monkeypatch.delenv("FUSIONBENCH_WORKER_THREADS", raising=False)
    both = threading.Barrier(2, timeout=30)  # passes only when two planes run at the same time
    map_planes(lambda i: both.wait(), 2)
    assert method_threads() == 2 and pool_sizes == [2]
    monkeypatch.setenv("FUSIONBENCH_WORKER_THREADS", "3")
    map_planes(lambda i: None, 5)
    assert pool_sizes == [2, 3]
    map_planes(lambda i: None, 5, workers=4)  # an explicit count wins over the cap
    assert pool_sizes == [2, 3, 4]
