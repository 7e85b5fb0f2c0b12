"""The worker thread-cap settings are read through fusionbench.config (issue 23 cleanup)."""
from __future__ import annotations

import os

from fusionbench import config, executors


def test_a_fixed_worker_keeps_its_own_cap(monkeypatch) -> None:
    monkeypatch.setenv(config.WORKER_THREADS_FIXED_ENV, "1")
    monkeypatch.setenv(config.WORKER_THREADS_ENV, "3")
    assert config.worker_threads_fixed()
    assert executors._apply_thread_cap(1) == 3
    assert os.environ[config.WORKER_THREADS_ENV] == "3"


def test_an_unfixed_worker_takes_the_clients_cap(monkeypatch) -> None:
    import sys
    import types

    # the cap is applied to loaded libraries too: record it instead of changing this test process's pools
    limits = []
    monkeypatch.setitem(sys.modules, "threadpoolctl",
                        types.SimpleNamespace(threadpool_limits=lambda limits=None: limits_append(limits)))
    limits_append = limits.append
    if "numba" in sys.modules:
        monkeypatch.setattr(sys.modules["numba"], "set_num_threads", lambda n: None)
    monkeypatch.delenv(config.WORKER_THREADS_FIXED_ENV, raising=False)
    monkeypatch.setenv(config.WORKER_THREADS_ENV, "3")
    for var in executors._THREAD_VARS:
        monkeypatch.setenv(var, "3")
    assert not config.worker_threads_fixed()
    assert executors._apply_thread_cap(1) == 1
    assert config.worker_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1" and limits == [1]


def test_the_environment_is_read_only_in_config() -> None:
    from pathlib import Path

    source = Path(executors.__file__).read_text()
    assert "FUSIONBENCH_WORKER_THREADS_FIXED\")" not in source and "os.environ.get(\"FUSIONBENCH" not in source
