"""Issue 23: tasks start slowest first (expected cost from the store's history, else priors), so workers finish
together."""
from __future__ import annotations

import sqlite3

import numpy as np
import pytest
import pandas as pd
from PIL import Image

from fusionbench import schedule
from fusionbench.method_registry import create_method
from fusionbench.metric_registry import resolve_metrics
from fusionbench.runner import RunConfig, plan_run, run, select_methods
from fusionbench.store import ResultsStore

from ._fakes import fake_pool, fake_tasks


def _plan(cfg, out):
    selection = select_methods(cfg.methods)
    created = {n: create_method(n) for n in selection.registered}
    with ResultsStore(out / "results.sqlite") as store:
        return plan_run(cfg, selection, created, {}, resolve_metrics(cfg.metrics), store, out / "fused",
                        lambda m: None)


def test_priors_order_a_fresh_run_slowest_first(tmp_path, make_pairs) -> None:
    data = make_pairs(tmp_path / "data", 2)
    big = np.random.default_rng(1).integers(0, 256, (96, 96), dtype=np.uint8)  # a pair with 4x the pixels
    Image.fromarray(big).save(data / "a" / "p002.png")
    Image.fromarray(np.dstack([big] * 3)).save(data / "b" / "p002.png")
    cfg = RunConfig(methods=["average,dwt,mlepf"], datasets=[f"folder:{data}"], metrics="EN", out=str(tmp_path))
    tasks = _plan(cfg, tmp_path).tasks
    order = [(t.method, t.pair) for t in tasks]
    prior = {m: c.at(schedule.DEFAULT_PIXELS) for m, c in schedule.prior_costs().items()}
    assert prior["mlepf"] > prior["dwt"] > prior["average"]
    assert order[0] == ("mlepf", "p002") and order[-1][0] == "average"
    assert [t.method for t in tasks[:3]] == ["mlepf"] * 3
    costs = [t.expected_seconds for t in tasks]
    assert costs == sorted(costs, reverse=True)


def test_history_in_the_store_overrides_the_priors(tmp_path, make_pairs) -> None:
    data = make_pairs(tmp_path / "data", 3)
    out = tmp_path / "out"
    run(RunConfig(methods=["average,maximum"], datasets=[f"folder:{data}"], metrics="EN", out=str(out),
                  workers=0, quiet=True), log=lambda m: None)
    con = sqlite3.connect(out / "results.sqlite")  # pretend `average` took 5 s a pair, `maximum` 1 ms
    con.execute("UPDATE outputs SET seconds = CASE method WHEN 'average' THEN 5.0 ELSE 0.001 END")
    con.execute("DELETE FROM scores")
    con.commit()
    con.close()
    import shutil

    shutil.rmtree(out / "fused")  # so that both are fused again
    tasks = _plan(RunConfig(methods=["maximum,average"], datasets=[f"folder:{data}"], metrics="EN", out=str(out)),
                  out).tasks
    assert [t.method for t in tasks] == ["average"] * 3 + ["maximum"] * 3
    rest = schedule.score_seconds(("EN",), 48 * 48) + schedule.task_seconds(48 * 48)
    assert abs(tasks[0].expected_seconds - 5.0 - rest) < 1e-9


def _wall(tasks, workers, monkeypatch) -> float:
    """The estimate's simulated wall time of ``tasks`` taken in that order, without worker starts or builds."""
    monkeypatch.setattr(schedule, "worker_start_seconds", lambda: 0.0)
    monkeypatch.setattr(schedule, "build_seconds", lambda m: 0.0)
    return schedule.estimate(tasks, workers).wall_seconds


def test_slowest_first_evens_out_two_workers(monkeypatch) -> None:
    # a run where the planner's order puts one long task last: LPT finishes both workers together
    tasks = _tasks([1.0] * 10 + [10.0])
    assert _wall(tasks, 2, monkeypatch) == 15.0
    assert _wall(schedule.slowest_first(tasks), 2, monkeypatch) == 10.0


def test_method_costs_prefer_the_current_key() -> None:
    hist = pd.DataFrame({"dataset": ["d"] * 3, "pair": ["p", "p", "q"], "method": ["m"] * 3,
                         "method_key": ["old", "new", "old"], "seconds": [9.0, 1.0, 9.0]})
    pixels = {("d", "p"): 1_000_000, ("d", "q"): 1_000_000}
    costs = schedule.method_costs(hist, pixels, {"m": "new"})
    assert list(costs) == ["m"] and costs["m"].at(1_000_000) == 1.0
    assert schedule.method_costs(hist, pixels)["m"].at(1_000_000) == 9.0


def test_on_the_benchmark_mix_two_workers_finish_within_one_percent_of_the_bound(monkeypatch) -> None:
    # every built-in method with a prior on 56 Harvard-sized pairs (the MRI-PET test split), paper metrics
    methods = list(schedule.prior_costs())
    tasks = _tasks([schedule.expected_seconds(m, 256 * 256, 7, {}) for _ in range(56) for m in methods])
    costs = [t.expected_seconds for t in tasks]
    bound = max(sum(costs) / 2, max(costs))
    lpt = _wall(schedule.slowest_first(tasks), 2, monkeypatch)
    assert lpt <= 1.01 * bound
    assert _wall(tasks, 2, monkeypatch) >= lpt  # plan order (pair by pair) is never better here


# --------------------------------------------------------------------------- costs that scale with the pair
def test_a_cost_fitted_at_two_sizes_follows_their_power_law() -> None:
    quad = schedule.Cost.fit([(65536, 1.0), (262144, 16.0)])  # 4x the pixels, 16x the time
    assert abs(quad.exponent - 2.0) < 1e-12 and abs(quad.at(65536) - 1.0) < 1e-9 and abs(quad.at(262144) - 16) < 1e-9
    flat = schedule.Cost.fit([(65536, 1.0), (262144, 1.2)])
    assert flat.exponent == schedule.EXPONENT_RANGE[0]  # clamped, through the points' geometric centre
    assert abs(flat.at(131072) - 1.2 ** 0.5) < 1e-9
    near_linear = schedule.Cost.fit([(65536, 1.0), (262144, 4.4)])
    assert 1.0 < near_linear.exponent < 1.1 and abs(near_linear.at(262144) - 4.4) < 1e-9
    wild = schedule.Cost.fit([(65536, 1.0), (262144, 1000.0)])
    assert wild.exponent == schedule.EXPONENT_RANGE[1]  # two noisy points do not extrapolate wildly
    one = schedule.Cost.fit([(65536, 2.0), (65536, 4.0)])
    assert one.exponent == 1.0 and abs(one.at(131072) - 6.0) < 1e-9  # one size: linear through the median
    steep = schedule.Cost.fit([(65536, 2.0), (65536, 4.0)], exponent=1.5)
    assert abs(steep.at(65536) - 3.0) < 1e-9 and abs(steep.at(4 * 65536) - 24.0) < 1e-9


def test_store_history_at_two_sizes_gives_each_method_its_own_growth() -> None:
    hist = pd.DataFrame({"dataset": ["h", "h", "t", "t"], "pair": ["p", "q", "x", "y"], "method": ["m"] * 4,
                         "method_key": ["k"] * 4, "seconds": [1.0, 1.0, 8.0, 8.0]})
    pixels = {("h", "p"): 65536, ("h", "q"): 65536, ("t", "x"): 262144, ("t", "y"): 262144}
    cost = schedule.method_costs(hist, pixels, {"m": "k"})["m"]
    assert abs(cost.exponent - 1.5) < 1e-12 and abs(cost.at(262144) - 8.0) < 1e-9
    assert abs(schedule.fuse_seconds("m", 65536, {"m": cost}) - 1.0) < 1e-9


def test_a_method_timed_at_one_size_grows_like_its_prior() -> None:
    # history at the Harvard size only (a run of the Harvard datasets): a TNO-sized pair of the same method
    # is priced with the exponent its prior measured, not linearly
    hist = pd.DataFrame({"dataset": ["h"], "pair": ["p"], "method": ["matr"], "method_key": ["k"], "seconds": [2.0]})
    cost = schedule.method_costs(hist, {("h", "p"): 65536})["matr"]
    prior = schedule.prior_costs()["matr"]
    assert cost.exponent == prior.exponent != 1.0 and abs(cost.at(65536) - 2.0) < 1e-9
    assert schedule.method_costs(hist, {("h", "p"): 65536}, exponents={})["matr"].exponent == 1.0


def test_the_prior_table_scales_with_the_pairs_pixels() -> None:
    priors = schedule.prior_costs()
    for method in ("mdl", "mopa", "dwt"):
        small, big = (schedule.fuse_seconds(method, px, {}) for px in (256 * 256, 4 * 256 * 256))
        assert big > 1.5 * small  # a TNO-sized pair costs more than a Harvard one, by the measured growth
        assert abs(big / small - 4 ** priors[method].exponent) < 1e-9


def test_scoring_costs_are_per_preset() -> None:
    from fusionbench._method_costs import SCORE_SECONDS

    assert {"EN", "VIFp_sum", "SSIM"} <= set(SCORE_SECONDS)
    px = 256 * 256
    assert schedule.score_seconds(("VIFp_sum",), px) > schedule.score_seconds(("EN",), px)
    both = schedule.score_seconds(("EN", "VIFp_sum"), px)
    assert abs(both - schedule.score_seconds(("EN",), px) - schedule.score_seconds(("VIFp_sum",), px)) < 1e-12
    assert schedule.score_seconds(("no_such_preset",), 10**6) == schedule.SCORE_SECONDS_PER_METRIC_MPIX


# --------------------------------------------------------------------------- the wall-time estimate
def _tasks(costs, method="m"):
    from fusionbench.worker import ImageSource, Task

    src = ImageSource("x.png", url="x.png")
    return [Task("d", f"p{i}", "s", method if isinstance(method, str) else method[i], "k", (), src, src, "f.png",
                 expected_seconds=c) for i, c in enumerate(costs)]


def test_the_estimate_simulates_slowest_first_workers(monkeypatch) -> None:
    monkeypatch.setattr(schedule, "worker_start_seconds", lambda: 2.0)
    monkeypatch.setattr(schedule, "build_seconds", lambda m: {"slow": 3.0}.get(m, 0.0))
    costs = [10.0, 6.0, 5.0, 4.0, 3.0, 2.0]
    est = schedule.estimate(_tasks(costs, ["slow", "fast", "fast", "fast", "fast", "fast"]), 2)
    # w0: start 2 + build 3 + 10 -> 15; w1: 2 + 6 -> 8, + 5 -> 13, + 4 -> 17; w0 (free at 15): + 3 -> 18;
    # w1 (free at 17): + 2 -> 19
    assert sorted(est.finish) == [18.0, 19.0]
    assert est.wall_seconds == 19.0 and est.start_seconds == 2 * 2.0 + 3.0 and est.task_seconds == sum(costs)
    assert est.bound == (sum(costs) + 7.0) / 2 and est.longest_task == 10.0
    assert "2 single-thread worker(s)" in est.summary()
    assert est.by_method == {"fast": 20.0, "slow": 10.0} and est.top_methods(1) == "fast 20.0 s (67%)"


def test_each_worker_builds_a_method_once(monkeypatch) -> None:
    monkeypatch.setattr(schedule, "worker_start_seconds", lambda: 0.0)
    monkeypatch.setattr(schedule, "build_seconds", lambda m: 1.0)
    est = schedule.estimate(_tasks([1.0] * 8), 2)
    assert est.start_seconds == 2.0 and sorted(est.finish) == [5.0, 5.0]


def test_on_an_empty_cache_the_estimate_compiles_each_family_once_and_holds_each_method(monkeypatch) -> None:
    """A first run (session 28): a kernel family's first task compiles its kernels, and so does a task of the family
    started before that one ends; while a method's first task runs, the other worker takes other methods' tasks, as
    the local pool's hold makes it; each worker compiles the metrics' kernels on its first task."""
    monkeypatch.setattr(schedule, "worker_start_seconds", lambda: 0.0)
    monkeypatch.setattr(schedule, "build_seconds", lambda m: 0.0)
    monkeypatch.setattr(schedule, "compile_seconds", lambda family: {"slow": 10.0}.get(family, 0.0))
    monkeypatch.setattr(schedule, "score_compile_seconds", lambda metrics: 1.0)
    tasks = _tasks([4.0, 4.0, 4.0, 1.0, 1.0, 1.0], ["slow", "slow", "slow.ct", "fast", "fast", "fast"])
    warm = schedule.estimate(tasks, 2)
    assert warm.wall_seconds == 8.0 and warm.compile_seconds == 0.0 and "compiling" not in warm.summary()
    cold = schedule.estimate(tasks, 2, empty_cache=True)
    # w0: metrics 1 + compile 10 + slow 4 -> 15; w1 (slow held): metrics 1 + slow.ct alongside, compiling too:
    # + 10 + 4 -> 15; w0 at 15: slow 4 -> 19; w1 at 15: fast, fast, fast -> 18
    assert sorted(cold.finish) == [18.0, 19.0] and cold.compile_seconds == 22.0
    assert "22 s of compiling kernels" in cold.summary() and cold.bound == (15.0 + 22.0) / 2
    # slow.ct after slow's first task ended compiles nothing: fast tasks first, then slow.ct at 15 loads the cache
    later = _tasks([4.0, 4.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5],
                   ["slow", "slow"] + ["fast"] * 15 + ["slow.ct"])
    assert schedule.estimate(later, 2, empty_cache=True).compile_seconds == 1.0 + 10.0 + 1.0


def test_dry_run_plans_what_run_does_and_writes_nothing(tmp_path, make_pairs, capsys) -> None:
    from fusionbench.cli import main
    from fusionbench.runner import dry_run

    data = make_pairs(tmp_path / "data", 3)
    out = tmp_path / "out"
    cfg = RunConfig(methods=["average,dwt"], datasets=[f"folder:{data}"], metrics="EN,SF", out=str(out), workers=2)
    plan, est = dry_run(cfg, log=lambda m: None)
    assert not out.exists()  # nothing created
    assert len(plan.tasks) == 6 and est.tasks == 6 and est.wall_seconds > 0
    assert set(plan.cost_sources.values()) == {"the prior table"}
    run(RunConfig(methods=["average"], datasets=[f"folder:{data}"], metrics="EN,SF", out=str(out), workers=0,
                  quiet=True), log=lambda m: None)
    before = (out / "results.sqlite").read_bytes()
    plan, est = dry_run(cfg, log=lambda m: None)
    assert plan.already_done == 3 and [t.method for t in plan.tasks] == ["dwt"] * 3
    assert plan.cost_sources == {"dwt": "the prior table"}
    assert (out / "results.sqlite").read_bytes() == before  # the store is read, never written
    assert main(["run", "--methods", "average,dwt", "--datasets", f"folder:{data}", "--metrics", "EN,SF",
                 "--out", str(out), "--workers", "2", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "dry run: 3 (method, pair) tasks to do, 3 already done" in printed and "estimate: 3 tasks" in printed


def test_a_family_compiles_the_kernels_of_all_its_methods(monkeypatch) -> None:
    """``compile_seconds`` sums the prior table over a kernel family (a variant measured after its base adds what
    it compiles more), not the named method alone."""
    import fusionbench._method_costs as table

    monkeypatch.setattr(table, "COMPILE_SECONDS", {"mopa": 10.0, "mopa.v1": 2.0, "mdl": 5.0, "mdl.fast": 0.5})
    assert schedule.compile_seconds("mopa") == 12.0 and schedule.compile_seconds("mdl") == 5.5
    assert schedule.compile_seconds("average") == 0.0


@pytest.mark.parametrize(("cold", "scheduler", "compiles"), [(True, None, True), (False, None, False),
                                                             (True, "local:2", False)])
def test_the_dry_run_adds_compiling_on_an_empty_kernel_cache_of_a_local_run(tmp_path, make_pairs, monkeypatch, cold,
                                                                            scheduler, compiles) -> None:
    """The dry run estimates a first run's compiling where numba's cache here is empty, and not for a Dask cluster,
    whose workers have caches of their own (``runner.dry_run``'s ``empty_cache``)."""
    import fusionbench.runner as runner

    monkeypatch.setattr(runner, "numba_cache_is_empty", lambda: cold)
    monkeypatch.setattr(schedule, "compile_seconds", lambda family: 7.0)
    data = make_pairs(tmp_path / "data", 2)
    cfg = RunConfig(methods=["average,dwt"], datasets=[f"folder:{data}"], metrics="EN", out=str(tmp_path / "out"),
                    workers=2, scheduler=scheduler)
    _, est = runner.dry_run(cfg, log=lambda m: None)
    assert (est.compile_seconds > 0) == compiles


def test_the_next_task_fuses_with_a_method_not_on_its_first_use(tmp_path) -> None:
    """While a method's first task is in flight (none come back), the next task handed out is the first of another
    method, or one that only scores a given image; when every queued task waits on a first use, the first goes."""
    queue = fake_tasks(tmp_path, ["a", "a", "b", "a", "c"], given={1})
    assert schedule.warming_methods(queue[:1], came_back=set()) == {"a"}
    assert schedule.warming_methods(queue[:2], came_back={"a"}) == set()
    assert schedule.warming_methods(queue[1:2], came_back=set()) == set()  # a given image builds no method
    assert schedule.next_to_hand_out(queue, set()) == 0
    assert schedule.next_to_hand_out(queue, {"a"}) == 1
    assert schedule.next_to_hand_out([queue[0], queue[3], queue[2]], {"a"}) == 2
    assert schedule.next_to_hand_out([queue[0], queue[3]], {"a"}) == 0  # no worker waits
    assert schedule.next_to_hand_out([queue[0], queue[2], queue[4]], {"a", "b"}) == 2


def test_the_hold_is_per_method_and_a_family_compiles_once_in_the_estimate(tmp_path) -> None:
    """``swinfusion`` and ``swinfusion.ct`` share their kernels (one :func:`schedule.kernel_family`), but the pool
    holds per method: holding the family was measured slower on the README's first run (session 28)."""
    queue = fake_tasks(tmp_path, ["swinfusion.ct", "swinfusion", "nsst_papcnn"])
    assert schedule.kernel_family("swinfusion.ct") == "swinfusion" == schedule.kernel_family("swinfusion")
    assert schedule.kernel_family("nsst_papcnn") == "nsst_papcnn"
    warming = schedule.warming_methods(queue[:1], came_back=set())
    assert warming == {"swinfusion.ct"} and schedule.next_to_hand_out(queue[1:], warming) == 0


def _scored(task, marker, pools):
    from fusionbench.worker import TaskResult

    return TaskResult.of(task, scores={"EN": 1.0})


def _method_pair(task) -> tuple[str, str]:
    return task.method, task.pair


@pytest.mark.parametrize("cold", [True, False])
def test_the_pool_hands_out_first_uses_apart_on_an_empty_kernel_cache(monkeypatch, tmp_path, cold) -> None:
    """Two workers, slowest-first order a, a, b, b, c: on an empty kernel cache the second task handed out is b's
    first, not a's second (every worker used to compile a's kernels at once); on a warm cache the plan's order
    stands.  No task is lost or run twice."""
    from fusionbench import executors

    submitted: list[tuple[str, str]] = []
    monkeypatch.setattr(executors, "ProcessPoolExecutor", fake_pool(_scored, submitted, [], record=_method_pair))
    monkeypatch.setattr(executors, "numba_cache_is_empty", lambda: cold)
    tasks = fake_tasks(tmp_path, ["a", "a", "b", "b", "c"])
    results = list(executors.run_local(tasks, workers=2, kill_grace_s=1.0))
    order = [("a", "p0"), ("b", "p2"), ("c", "p4")] if cold else [("a", "p0"), ("a", "p1"), ("b", "p2")]
    assert submitted[:3] == order
    assert sorted(submitted) == sorted((t.method, t.pair) for t in tasks)
    assert sorted(r.pair for r in results) == [t.pair for t in tasks]


def test_a_scoring_task_that_comes_back_does_not_end_a_first_use(monkeypatch, tmp_path) -> None:
    """a's first fusing task is still in flight when a task that only scores a given image of a comes back: that
    built nothing, so a's next fusing task still waits behind b's first (the review of session 27 found it did
    not)."""
    from fusionbench import executors

    submitted: list[tuple[str, str]] = []

    def given_first(fs, return_when=None):
        given = {f for f in fs if f.result().pair == "p1"}
        done = given or set(fs)
        return done, set(fs) - done

    monkeypatch.setattr(executors, "ProcessPoolExecutor", fake_pool(_scored, submitted, [], record=_method_pair))
    monkeypatch.setattr(executors, "numba_cache_is_empty", lambda: True)
    monkeypatch.setattr(executors, "wait", given_first)
    tasks = fake_tasks(tmp_path, ["a", "a", "a", "b"], given={1})
    list(executors.run_local(tasks, workers=1, kill_grace_s=1.0))
    assert submitted == [("a", "p0"), ("a", "p1"), ("b", "p3"), ("a", "p2")]


def test_an_empty_kernel_cache_is_told_from_a_used_one(monkeypatch, tmp_path) -> None:
    from fusionbench.config import numba_cache_is_empty

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    assert numba_cache_is_empty()  # not even created yet
    (tmp_path / "numba" / "methods_0123").mkdir(parents=True)
    assert numba_cache_is_empty()
    (tmp_path / "numba" / "methods_0123" / "_kernels.plane-12.py311.nbi").write_bytes(b"")
    assert not numba_cache_is_empty()
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    assert not numba_cache_is_empty()  # numba's cache beside the sources: nothing assumed
