"""``python -m fusionbench.costs``: the prior table is measured, written and read back by the planner."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from fusionbench import costs, schedule


def _pairs():
    rng = np.random.default_rng(0)
    out = {}
    for side in costs.SIZES:
        a = rng.integers(0, 256, (side, side), dtype=np.uint8)
        b = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        out[side] = (a, b)
    return {"MRI-PET": out}


def test_the_table_is_measured_written_and_read_back(tmp_path) -> None:
    pairs, log = _pairs(), []
    fuse = costs.measure_methods(["average", "dwt"], pairs, log.append)
    score = costs.measure_metrics(["EN", "SSIM"], pairs, log.append)
    task = costs.measure_task(pairs)
    assert set(fuse) == {"average", "dwt"} and len(log) == 4
    assert [p for p, _ in fuse["dwt"]] == [256 * 256, 512 * 512] and all(s > 0 for _, s in fuse["dwt"])
    assert fuse["dwt"][1][1] > fuse["dwt"][0][1]  # 4x the pixels cost more
    assert score["SSIM"][0][1] > 0 and task[1][1] > task[0][1] > 0
    path = costs.write_table(tmp_path / "table.py", fuse, {"average": 0.5, "dwt": 0.25}, score, task, 1.5, "a test",
                             {"average": 0.0, "dwt": 2.5}, {"EN": 0.0, "SSIM": 1.25})
    spec = importlib.util.spec_from_file_location("table", path)
    table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(table)
    assert table.FUSE_SECONDS.keys() == fuse.keys() and table.WORKER_START_SECONDS == 1.5
    for name, points in table.FUSE_SECONDS.items():
        fitted = schedule.Cost.fit(points)
        assert abs(fitted.at(256 * 256) / fuse[name][0][1] - 1) < 0.01 or fitted.exponent in schedule.EXPONENT_RANGE
    assert set(table.SCORE_SECONDS) == {"EN", "SSIM"} and len(table.TASK_SECONDS) == 2
    assert table.COMPILE_SECONDS == {"average": 0.0, "dwt": 2.5} and table.SCORE_COMPILE_SECONDS["SSIM"] == 1.25
    assert table.BUILD_SECONDS == {"average": 0.5, "dwt": 0.25}


def test_an_unavailable_method_is_not_timed(monkeypatch) -> None:
    import fusionbench.method_registry as registry

    real = registry.create_method

    def unavailable(name, **kw):  # noqa: ANN001
        method = real(name, **kw)
        monkeypatch.setattr(method, "unavailable_reason", lambda: "weights missing")
        return method

    monkeypatch.setattr(registry, "create_method", unavailable)
    log = []
    fuse = costs.measure_methods(["average"], _pairs(), log.append)
    assert fuse == {} and log == ["average: unavailable, not timed"]


def test_the_committed_table_covers_the_builtin_methods_and_paper_presets() -> None:
    from fusionbench._method_costs import FUSE_SECONDS, SCORE_SECONDS
    from fusionbench.metric_registry import resolve_metrics

    assert {"average", "mdl", "mopa", "swinfusion", "u2fusion.ivf", "legff.ivf"} <= set(FUSE_SECONDS)
    assert set(resolve_metrics("paper,VIFp_sum,Qabf,SSIM")) <= set(SCORE_SECONDS)
    assert all(len(points) == 2 and points[0][0] < points[1][0] for points in FUSE_SECONDS.values())


def test_the_large_point_is_timed_on_the_tno_pair_for_methods_that_run_on_it() -> None:
    from fusionbench.method_registry import MethodInfo

    pairs = {"MRI-PET": {}, "MRI-CT": {}, "IR-VIS": {}}
    assert costs._timed_tasks(MethodInfo(name="m", display_name="M", tasks=()), pairs) == ("MRI-PET", "IR-VIS")
    assert costs._timed_tasks(MethodInfo(name="m", display_name="M", tasks=("MRI-CT",)), pairs) == ("MRI-CT", "MRI-CT")
    assert costs._timed_tasks(MethodInfo(name="m", display_name="M", tasks=("IR-VIS",)), pairs) == ("IR-VIS", "IR-VIS")
    assert costs._timed_tasks(MethodInfo(name="m", display_name="M", tasks=()), {"MRI-PET": {}}) == ("MRI-PET", "MRI-PET")


def test_a_preset_that_reads_colour_is_timed_on_the_colour_images(monkeypatch) -> None:
    """Found in review: ChromaErr was timed on the luma views, where it is undefined and returns at once."""
    import fusionbench.metrics as M

    seen = []
    real = M.evaluate

    def spy(fused, a, b, presets, **kw):
        seen.append((presets[0], np.ndim(fused), np.ndim(b)))
        return real(fused, a, b, presets, **kw)

    monkeypatch.setattr(M, "evaluate", spy)
    score = costs.measure_metrics(["ChromaErr", "EN"], _pairs(), lambda m: None)
    assert {(n, f, b) for n, f, b in seen} == {("ChromaErr", 3, 3), ("EN", 2, 2)}
    assert score["ChromaErr"][0][1] > 0


def test_the_table_is_written_only_where_asked(monkeypatch, capsys) -> None:
    """``--out`` is required: before session 28 its default was the installed package's own file."""
    import pytest

    monkeypatch.setattr(costs, "_pairs", lambda data_dir: pytest.fail("measured without --out"))
    with pytest.raises(SystemExit) as stopped:
        costs.main(["--data-dir", "nowhere"])
    assert stopped.value.code == 2 and "--out" in capsys.readouterr().err


def test_first_uses_are_measured_in_fresh_interpreters_cold_then_warm(monkeypatch) -> None:
    """Session 28: a worker's first use of a method (BUILD) is measured in a fresh interpreter on a filled kernel
    cache, and what an empty cache adds (COMPILE) by a first interpreter that fills that same cache."""
    runs = []

    def fake(spec, cache):
        runs.append(cache)
        cold = len(runs) == 1
        return {"methods": {"average": [0.5, 0.01], "cnp": [9.0 if cold else 0.6, 0.2]},
                "metrics": {"EN": [0.01, 0.01], "SSIM": [2.5 if cold else 0.3, 0.02]}}

    monkeypatch.setattr(costs, "_first_uses", fake)
    build, compiled, score_compiled = costs.measure_first_uses(["average", "cnp"], ["EN", "SSIM"], _pairs(),
                                                                lambda m: None)
    assert len(runs) == 2 and runs[0] == runs[1]  # one cache folder: empty for the first, filled for the second
    assert build == pytest.approx({"average": 0.49, "cnp": 0.4}) and compiled == pytest.approx({"average": 0.0, "cnp": 8.4})
    assert score_compiled == pytest.approx({"EN": 0.0, "SSIM": 2.2})


@pytest.mark.slow
def test_first_uses_for_real() -> None:
    """The interpreters really run (about 50 s): CNP's kernels compile on the empty cache, not on the filled one."""
    build, compiled, score_compiled = costs.measure_first_uses(["average", "cnp"], ["EN"], _pairs(), lambda m: None)
    assert compiled["cnp"] > 1.0 > build["cnp"] >= 0 and compiled["average"] < 0.5 and set(score_compiled) == {"EN"}


def test_timing_runs_at_one_thread_in_the_libraries_already_loaded(monkeypatch) -> None:
    """``costs`` caps the libraries ``import fusionbench`` loaded (NumPy's OpenBLAS read its thread count then), as a
    runner worker does; before session 28 BLAS-heavy methods were timed on two threads."""
    import fusionbench.executors as executors

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
                "FUSIONBENCH_WORKER_THREADS"):
        monkeypatch.setenv(var, "2")
    seen: list[dict[str, str]] = []
    monkeypatch.setattr(executors, "cap_loaded_libraries", lambda: seen.append(
        {v: os.environ[v] for v in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")}))
    costs._single_thread()
    assert seen == [{"OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}]
    assert os.environ["FUSIONBENCH_WORKER_THREADS"] == "1" and os.environ["NUMBA_NUM_THREADS"] == "1"


def test_first_uses_run_in_fresh_interpreters_on_one_new_kernel_cache(monkeypatch, tmp_path) -> None:
    """The cold and the warm interpreter both get the one new cache folder (``NUMBA_CACHE_DIR``), so the first
    compiles into it and the second loads: on the session's own, already filled cache the compile figures came
    out about 0 and the cold dry-run estimate far too short."""
    import json
    import subprocess

    caches: list[str] = []

    def fake_run(args, env=None, **kwargs):  # noqa: ANN001
        caches.append(env["NUMBA_CACHE_DIR"])
        spec = json.loads(args[-1])
        cold = len(caches) == 1
        out = {"methods": {m: [2.0 if cold else 1.0, 0.5] for m, _ in spec["methods"]},
               "metrics": {p: [0.3 if cold else 0.1] for p in spec["metrics"]}}
        return subprocess.CompletedProcess(args, 0, json.dumps(out) + "\n", "")

    monkeypatch.setattr(costs.subprocess, "run", fake_run)
    build, compiled, score_compiled = costs.measure_first_uses(["average"], ["EN"], _pairs(), lambda m: None)
    assert len(caches) == 2 and caches[0] == caches[1] and caches[0] != os.environ.get("NUMBA_CACHE_DIR")
    assert build == {"average": 0.5} and compiled == {"average": 1.0} and score_compiled == {"EN": pytest.approx(0.2)}
