"""A method or metric registered in the client process only (a script's ``__main__`` block, a notebook) runs in
pool workers, Dask workers and sandbox children too (:mod:`fusionbench.definitions`).  Before, each of its pairs
failed with ``KeyError: unknown method``."""
from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

_SCRIPT = '''
import sys
from fusionbench import register_method, register_metric
from fusionbench.runner import RunConfig, run

if __name__ == "__main__":  # registered in the client only: the workers never import these lines
    @register_method("script_mean")
    def script_mean(a, b):
        return (a.astype(float) + b) / 2

    @register_metric("SCRIPT_MAX", needs_sources=False, score_range=(0.0, 255.0))
    def script_max(fused, a=None, b=None, **kw):
        return float(fused.max())

    summary = run(RunConfig(methods=["script_mean"], datasets=["folder:" + sys.argv[1]], metrics="EN,SCRIPT_MAX",
                            out=sys.argv[2], workers=int(sys.argv[3]), quiet=True, summary=False))
    print("failures", summary.failures)
'''


@pytest.mark.parametrize("workers", ["1"])
def test_a_script_registered_method_and_metric_run_in_pool_workers(tmp_path, make_pairs, workers) -> None:
    import sqlite3

    data = make_pairs(tmp_path / "data", 2)
    script = tmp_path / "script.py"
    script.write_text(_SCRIPT)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(script), str(data), str(out), workers], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "failures 0" in done.stdout, done.stderr
    with sqlite3.connect(out / "results.sqlite") as con:
        rows = con.execute("SELECT metric, COUNT(*) FROM scores WHERE method = 'script_mean' GROUP BY metric")
        assert sorted(rows.fetchall()) == [("EN", 2), ("SCRIPT_MAX", 2)]


@pytest.fixture
def local_method():
    """A method defined inside a function (pickled by value, as a ``__main__`` one is), registered here only."""
    from fusionbench.method_registry import METHODS, register_method

    def inverted_maximum(a, b):  # images arrive as floats in [0, 1]
        return 1.0 - np.maximum(a, b)

    register_method("test_defs_inverted")(inverted_maximum)
    yield "test_defs_inverted"
    METHODS.remove("test_defs_inverted")


def test_a_sandbox_child_fuses_a_method_registered_in_its_parent_only(local_method) -> None:
    from fusionbench.definitions import pack
    from fusionbench.sandbox import Sandbox, SandboxError

    a = np.zeros((8, 8), np.uint8)
    b = np.full((8, 8), 9, np.uint8)
    box = Sandbox()
    try:
        with pytest.raises(SandboxError, match="unknown method 'test_defs_inverted'"):
            box.fuse(local_method, "k", {}, a, b, 60.0)  # what every pair did before
        fused, _ = box.fuse(local_method, "k", {}, a, b, 60.0, pack(local_method, ["EN"]))
    finally:
        box.close()
    assert fused.dtype == np.uint8 and (fused == 255 - 9).all()


def test_builtins_and_plugins_are_never_packed() -> None:
    from fusionbench.definitions import pack

    assert pack("average", ["EN", "SSIM"]) is None
    assert pack(None, ["EN"]) is None


def test_install_keeps_a_name_this_process_already_has(local_method) -> None:
    from fusionbench.definitions import install, pack
    from fusionbench.method_registry import METHODS
    from fusionbench.registry import Entry

    mine = METHODS.get(local_method)
    blob = pack(local_method, [])
    install(blob)
    assert METHODS.get(local_method) is mine
    assert METHODS.adopt(Entry(local_method, lambda a, b: a, mine.info, "user (elsewhere)")) is mine


def test_a_registration_that_cannot_be_sent_is_one_error_before_any_task(tmp_path, make_pairs) -> None:
    from fusionbench.method_registry import METHODS, register_method
    from fusionbench.runner import RunConfig, run

    lock = threading.Lock()

    def locked(a, b):
        with lock:
            return np.maximum(a, b)

    register_method("test_defs_locked")(locked)
    try:
        data = make_pairs(tmp_path / "data", 1)
        with pytest.raises(ValueError, match=r"method 'test_defs_locked' \(user \(.*\)\) cannot be sent to the "
                                             r"worker processes: TypeError: .*lock.*--workers 0"):
            run(RunConfig(methods=["test_defs_locked"], datasets=[f"folder:{data}"], metrics="EN",
                          out=str(tmp_path / "out"), workers=1, quiet=True, summary=False), log=lambda m: None)
        inline = run(RunConfig(methods=["test_defs_locked"], datasets=[f"folder:{data}"], metrics="EN",
                               out=str(tmp_path / "out2"), workers=0, quiet=True, summary=False), log=lambda m: None)
        assert inline.failures == 0 and inline.completed == 1  # in this process nothing needs sending
    finally:
        METHODS.remove("test_defs_locked")
