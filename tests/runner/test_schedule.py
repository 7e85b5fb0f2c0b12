"""Issue 23: tasks start slowest first (expected cost from the store's history, else priors), so workers finish
together."""
from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
from PIL import Image

from fusionbench import schedule
from fusionbench.method_registry import create_method
from fusionbench.metric_registry import resolve_metrics
from fusionbench.runner import RunConfig, plan_run, run, select_methods
from fusionbench.store import ResultsStore


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
    prior = schedule.priors()
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
    assert abs(tasks[0].expected_seconds - 5.0 - schedule.SCORE_SECONDS_PER_METRIC_MPIX * 48 * 48 / 1e6) < 1e-9


def test_slowest_first_evens_out_two_workers() -> None:
    # a run where the planner's order puts one long task last: LPT finishes both workers together
    costs = [1.0] * 10 + [10.0]
    plan_order = schedule.makespan(costs, 2)
    lpt = schedule.makespan(sorted(costs, reverse=True), 2)
    assert plan_order == 15.0 and lpt == 10.0


def test_method_rates_prefer_the_current_key() -> None:
    hist = pd.DataFrame({"dataset": ["d"] * 3, "pair": ["p", "p", "q"], "method": ["m"] * 3,
                         "method_key": ["old", "new", "old"], "seconds": [9.0, 1.0, 9.0]})
    rates = schedule.method_rates(hist, {("d", "p"): 1_000_000, ("d", "q"): 1_000_000}, {"m": "new"})
    assert rates == {"m": 1.0}
    assert schedule.method_rates(hist, {("d", "p"): 1_000_000, ("d", "q"): 1_000_000})["m"] == 9.0


def test_on_the_benchmark_mix_two_workers_finish_within_one_percent_of_the_bound() -> None:
    # every built-in method with a prior on 56 Harvard-sized pairs (the MRI-PET test split), paper metrics
    prior = schedule.priors()
    costs = [schedule.expected_seconds(m, 256 * 256, 7, {}) for _ in range(56) for m in prior]
    bound = max(sum(costs) / 2, max(costs))
    lpt = schedule.makespan(sorted(costs, reverse=True), 2)
    assert lpt <= 1.01 * bound
    assert schedule.makespan(costs, 2) >= lpt  # plan order (pair by pair) is never better here
