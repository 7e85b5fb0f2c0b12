"""A method or metric registered in the client process only (a script's ``__main__`` block, a notebook) runs in
pool workers, Dask workers and sandbox children too (:mod:`fusionbench.definitions`).  Before, each of its pairs
failed with ``KeyError: unknown method``."""
from __future__ import annotations

import subprocess
import sys
import threading

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


def test_a_sandbox_child_fuses_with_an_override_at_every_request() -> None:
    """Session 39's second review: a child sent the override's blob once got nothing with the next pairs, and a
    method it built again (another key, or its cache cleared for memory) was its own built-in under the override's
    name. The digest now travels with every request, and the override is in effect for each."""
    from fusionbench.definitions import pack
    from fusionbench.method_registry import METHODS, register_method
    from fusionbench.sandbox import Sandbox

    builtin = METHODS.get("average")

    def average(a, b, level=0.0):  # the MRI source, whatever the key
        return a

    register_method("average", override=True, params={"level": 0.0})(average)
    try:
        definitions = pack("average", [])
    finally:
        METHODS._entries["average"] = builtin
    a = np.zeros((8, 8), np.uint8)
    b = np.full((8, 8), 200, np.uint8)
    box = Sandbox()
    try:
        first, _ = box.fuse("average", "k1", {}, a, b, 60.0, definitions)
        again, _ = box.fuse("average", "k2", {"level": 1.0}, a, b, 60.0, definitions)  # built again in the child
    finally:
        box.close()
    assert (first == 0).all() and (again == 0).all()  # the built-in average would give 100


def test_builtins_and_plugins_are_never_packed() -> None:
    from fusionbench.definitions import pack

    assert pack("average", ["EN", "SSIM"]) is None
    assert pack(None, ["EN"]) is None


def test_install_replaces_a_user_entry_and_keeps_a_builtin(local_method) -> None:
    """A worker that already has a user registration of that name (imported from the script, or received from an
    earlier version of a notebook cell on a long-lived cluster) takes the one received; built-ins stay."""
    from fusionbench.definitions import installed, pack
    from fusionbench.method_registry import METHODS
    from fusionbench.registry import Entry

    mine = METHODS.get(local_method)
    definitions = pack(local_method, [])
    assert definitions is not None and len(definitions.digest) == 64
    with installed(definitions):
        received = METHODS.get(local_method)
    assert received is not mine and received.obj.__name__ == "inverted_maximum"  # the copy received replaced it
    assert METHODS.get(local_method) is received  # registered in the process too (a sandbox child's lookups)
    with installed(definitions):
        assert METHODS.get(local_method) is received  # the same digest again: not unpickled again
    newer = Entry(local_method, lambda a, b: a, mine.info, "user (__main__)")
    assert METHODS.adopt(newer) is newer and METHODS.get(local_method) is newer
    builtin = METHODS.get("average")  # an override of a built-in is never adopted for the whole process
    assert METHODS.adopt(Entry("average", lambda a, b: a, builtin.info, "user (__main__)")) is builtin


def test_a_received_override_is_in_effect_for_its_task_only() -> None:
    """Session 39's API audit: a user ``override=True`` of a built-in, sent with the tasks, was never installed in a
    worker (adopt kept the built-in), so the workers ran the built-in under the override's name. Now it is what the
    registries return within its task (and the metric pool's threads), while another thread of the same worker (a
    Dask worker running another run's task) sees the built-in at the same time (the review of the first fix: a
    global swap leaked between them); the override's cache key is not the built-in's."""
    from concurrent.futures import ThreadPoolExecutor
    import contextvars

    from fusionbench.definitions import installed, pack
    from fusionbench.method_registry import METHODS, create_method, register_method
    from fusionbench.metric_registry import METRICS, register_metric

    builtin, builtin_sd = METHODS.get("average"), METRICS.get("SD")
    builtin_key = create_method("average").cache_key()

    def first_source(a, b):
        return a

    def constant(fused, a=None, b=None, **kw):
        return 12345.0

    register_method("average", override=True)(first_source)
    register_metric("SD", override=True, needs_sources=False)(constant)
    try:
        assert METHODS.get("average").replaces == "builtin"
        override_key = create_method("average").cache_key()
        assert override_key != builtin_key
        definitions = pack("average", ["EN", "SD"])
        assert definitions is not None
    finally:  # this process back to the built-ins, as a worker that never saw the override
        METHODS._entries["average"], METRICS._entries["SD"] = builtin, builtin_sd
    inside, outside = threading.Event(), threading.Event()

    def other_run() -> tuple:  # another thread while the task below holds its override
        inside.wait(10)
        seen = (METHODS.get("average"), METRICS.get("SD"), create_method("average").cache_key())
        outside.set()
        return seen

    with ThreadPoolExecutor(1) as threads:
        other = threads.submit(other_run)
        with installed(definitions):
            assert METHODS.get("average").obj.__name__ == "first_source"
            assert METRICS.get("SD").obj.__name__ == "constant"
            assert create_method("average").cache_key() == override_key  # the client's key: no MethodMismatch
            with ThreadPoolExecutor(1) as pool:  # the metrics' pool copies the task's context
                seen = pool.submit(contextvars.copy_context().run, lambda: METRICS.get("SD").obj).result()
                assert seen.__name__ == "constant"  # (the copy unpickled from the task)
            inside.set()
            assert outside.wait(10)
        assert other.result() == (builtin, builtin_sd, builtin_key)
    assert METHODS.get("average") is builtin and METRICS.get("SD") is builtin_sd  # after the task too
    with installed(definitions):  # the blob's entries again, unpickled once
        assert METHODS.get("average").obj.__name__ == "first_source"


_OVERRIDE_SCRIPT = '''
import sys
from fusionbench import register_method, register_metric
from fusionbench.runner import RunConfig, run

if __name__ == "__main__":  # a notebook's override: the workers never import these lines
    @register_method("average", display_name="My average", override=True)
    def average(a, b):
        return a

    @register_metric("SD", override=True, needs_sources=False)
    def sd(fused, a=None, b=None, **kw):
        return 12345.0

    summary = run(RunConfig(methods=["average"], datasets=["folder:" + sys.argv[1]], metrics="SD",
                            out=sys.argv[2], workers=int(sys.argv[3]), quiet=True, summary=False))
    print("failures", summary.failures)
'''


@pytest.mark.parametrize("workers", ["0", "1"])
def test_an_override_of_a_builtin_runs_in_the_pool_workers_as_inline(tmp_path, make_pairs, workers) -> None:
    """The audit's reproduction: the default pool stored the built-in ``average``'s images and the built-in SD
    under the override's name, ``--workers 0`` the override's."""
    import sqlite3

    from fusionbench.io import load_image

    data = make_pairs(tmp_path / "data", 2, colour=False)  # grey: no recolouring of the fused luma
    script = tmp_path / "script.py"
    script.write_text(_OVERRIDE_SCRIPT)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(script), str(data), str(out), workers], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0 and "failures 0" in done.stdout, done.stderr
    with sqlite3.connect(out / "results.sqlite") as con:
        assert con.execute("SELECT DISTINCT value FROM scores WHERE metric = 'SD'").fetchall() == [(12345.0,)]
    fused = sorted((out / "fused").rglob("*.png"))
    assert len(fused) == 2
    sources = [load_image(p) for p in sorted((data / "a").iterdir())]
    for path in fused:  # the override returns the MRI source unchanged (the built-in averages it with b)
        assert any(np.array_equal(load_image(path), source) for source in sources), path


def test_a_registration_that_cannot_be_sent_is_said_once_and_the_run_goes_on(tmp_path, make_pairs) -> None:
    """An entry cloudpickle refuses is not sent, with one line naming it; the run goes on (a worker that imports
    the registering module itself still has it: a script registering at its top level).  Here the workers lack
    it, so its pairs fail with the usual unknown-method line; with --workers 0 nothing needs sending."""
    from fusionbench.method_registry import METHODS, register_method
    from fusionbench.runner import RunConfig, run

    lock = threading.Lock()

    def locked(a, b):
        with lock:
            return np.maximum(a, b)

    register_method("test_defs_locked")(locked)
    try:
        data = make_pairs(tmp_path / "data", 2)
        lines: list[str] = []
        pooled = run(RunConfig(methods=["test_defs_locked"], datasets=[f"folder:{data}"], metrics="EN",
                               out=str(tmp_path / "out"), workers=1, quiet=True, summary=False), log=lines.append)
        said = [line for line in lines if "cannot be sent to the worker processes" in line]
        assert len(said) == 1 and "method 'test_defs_locked' (user (" in said[0] and "--workers 0" in said[0]
        assert pooled.failures == 2
        inline = run(RunConfig(methods=["test_defs_locked"], datasets=[f"folder:{data}"], metrics="EN",
                               out=str(tmp_path / "out2"), workers=0, quiet=True, summary=False), log=lambda m: None)
        assert inline.failures == 0 and inline.completed == 2
    finally:
        METHODS.remove("test_defs_locked")


def test_a_sandbox_child_imports_the_users_own_module_from_the_parents_path(tmp_path, monkeypatch) -> None:
    """A method from the user's module beside the script travels by reference: the fusion child of a Dask worker
    thread must import that module from the parent's sys.path (it started with -P and without it: every pair
    failed with ModuleNotFoundError)."""
    from fusionbench.definitions import pack
    from fusionbench.method_registry import METHODS, register_method
    from fusionbench.sandbox import Sandbox

    (tmp_path / "fb_test_user_module.py").write_text("def halved_sum(a, b):\n    return (a + b) / 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import fb_test_user_module

    register_method("test_defs_module")(fb_test_user_module.halved_sum)
    box = Sandbox()
    try:
        definitions = pack("test_defs_module", [])
        a, b = np.full((8, 8), 10, np.uint8), np.full((8, 8), 30, np.uint8)
        fused, _ = box.fuse("test_defs_module", "k", {}, a, b, 60.0, definitions)
        assert (fused == 20).all()
        again, _ = box.fuse("test_defs_module", "k", {}, a, b, 60.0, definitions)  # sent once per child
        assert (again == 20).all() and box._installed == {definitions.digest}
    finally:
        box.close()
        METHODS.remove("test_defs_module")


def test_two_versions_of_a_user_method_with_one_key_are_built_apart() -> None:
    """Session 39's second review: the worker's method cache was keyed by (name, cache key), so two notebook versions
    of a method with the same version and params shared the first one built."""
    from fusionbench.definitions import installed, pack
    from fusionbench.method_registry import METHODS, register_method
    from fusionbench.worker import _method

    packs = []
    for value in (0.0, 1.0):
        def constant(a, b, _value=value):  # the same name, version and params: the same cache key
            return np.full_like(a, _value, dtype=float)

        register_method("test_defs_versions", override=True)(constant)
        packs.append(pack("test_defs_versions", []))
    METHODS.remove("test_defs_versions")
    a = np.zeros((4, 4))
    built = []
    for definitions in packs:
        with installed(definitions):
            built.append(_method("test_defs_versions", "k", {}, definitions=definitions))
    METHODS.remove("test_defs_versions")
    assert [float(m(a, a).max()) for m in built] == [0.0, 1.0]
