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
        config_module = sys.modules["numba"].config  # restored after the test: capped in place when unstarted
        monkeypatch.setattr(config_module, "NUMBA_NUM_THREADS", config_module.NUMBA_NUM_THREADS)
    monkeypatch.delenv(config.WORKER_THREADS_FIXED_ENV, raising=False)
    monkeypatch.setenv(config.WORKER_THREADS_ENV, "3")
    for var in executors._THREAD_VARS:
        monkeypatch.setenv(var, "3")
    assert not config.worker_threads_fixed()
    assert executors._apply_thread_cap(1) == 1
    assert config.worker_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1" and limits == [1]


def test_the_cap_does_not_start_numbas_thread_pool() -> None:
    """numba imported before a worker's cap (its thread pool not started, as nothing here uses numba's parallel
    loops): capped in its config without starting the pool (session 28: ``numba.set_num_threads`` started it)."""
    import subprocess
    import sys

    script = ("import os, numba, numba.np.ufunc.parallel as layer\n"
              "os.environ['NUMBA_NUM_THREADS'] = '1'\n"
              "from fusionbench.executors import cap_loaded_libraries\n"
              "cap_loaded_libraries()\n"
              "print(numba.config.NUMBA_NUM_THREADS, layer._is_initialized)\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_NUM_THREADS"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 and done.stdout.split() == ["1", "False"], done.stderr[-2000:]


def test_the_environment_is_read_only_in_config() -> None:
    from pathlib import Path

    source = Path(executors.__file__).read_text()
    assert "FUSIONBENCH_WORKER_THREADS_FIXED\")" not in source and "os.environ.get(\"FUSIONBENCH" not in source
