"""Which pairs asv's Table 5 suite times, and what the caption says of them (session 34).

Before, ``bench_pairs`` did not look in ``$FUSIONBENCH_HOME/data`` (where ``fusionbench fetch`` puts the data),
timed a folder holding only some of the paper's 20 pairs while dividing by 20, and the caption said "20 pairs"
whether they were the paper's or built-in ones."""
from __future__ import annotations

import importlib
import math
from pathlib import Path

import pandas as pd
import pytest

from fusionbench.report.asv_results import method_costs
from fusionbench.report.sections.table5 import ASV_PAIRS_WORDS, asv_pairs_words

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(monkeypatch):
    """``benchmarks.benchmark_methods`` with ``$FUSIONBENCH_BENCH_METHODS`` set to one cheap method."""
    monkeypatch.syspath_prepend(str(REPO))
    monkeypatch.setenv("FUSIONBENCH_BENCH_METHODS", "average")
    return importlib.import_module("benchmarks.benchmark_methods")


def test_data_roots_look_where_fetch_puts_the_data(monkeypatch, tmp_path) -> None:
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks._data import data_roots

    monkeypatch.setenv("FUSIONBENCH_DATA_DIR", str(tmp_path / "given"))
    monkeypatch.setenv("FUSIONBENCH_HOME", str(tmp_path / "home"))
    assert data_roots() == [tmp_path / "given", tmp_path / "home" / "data", REPO.parent / "shared" / "data"]
    monkeypatch.delenv("FUSIONBENCH_DATA_DIR")
    assert data_roots()[0] == tmp_path / "home" / "data"


def test_a_folder_with_only_some_of_the_20_pairs_is_passed_over(bench, monkeypatch, tmp_path, shared_dir) -> None:
    partial = tmp_path / "partial"
    (partial / "harvard").mkdir(parents=True)
    (partial / "harvard" / "MRI-PET").symlink_to(shared_dir / "data" / "harvard" / "MRI-PET")  # no MRI-SPECT
    monkeypatch.setattr(bench, "data_roots", lambda: [partial, shared_dir / "data"])
    source, pairs = bench.bench_pairs()
    assert source.startswith("paper20") and str(shared_dir / "data") in source
    assert len(pairs) == 20 and {p.dataset for p in pairs} == {"harvard-mri-pet", "harvard-mri-spect"}
    monkeypatch.setattr(bench, "data_roots", lambda: [partial, tmp_path / "absent"])
    source, pairs = bench.bench_pairs()
    assert source.startswith("built-in") and len(pairs) == 20
    assert all(p.dataset.startswith("builtin-") for p in pairs)


def test_the_suite_records_which_pairs_it_timed(bench, monkeypatch, tmp_path, shared_dir) -> None:
    monkeypatch.setattr(bench, "data_roots", lambda: [shared_dir / "data"])
    suite = bench.MethodSuite()
    suite.setup("average")
    assert suite.track_paper20_pairs("average") == 20.0
    monkeypatch.setattr(bench, "data_roots", lambda: [tmp_path / "absent"])
    suite.setup("average")
    assert suite.track_paper20_pairs("average") == 0.0 and len(suite.images) == 20


def _row(name: str, method: str, value: float) -> dict:
    return {"benchmark": f"benchmark_methods.MethodSuite.{name}", "name": name, "method": method, "value": value,
            "date": 1, "failed": False, "unit": "", "machine": "vm", "commit": "c", "env": "e", "cpu": "",
            "num_cpu": "", "python": ""}


def test_method_costs_carry_the_pairs_and_the_caption_names_them() -> None:
    rows = [_row("time_fuse", m, 2.0) for m in ("a", "b", "c")]
    rows += [_row("track_paper20_pairs", "a", 20.0), _row("track_paper20_pairs", "b", 0.0)]
    costs = method_costs(pd.DataFrame(rows))
    assert costs.set_index("method")["paper20_pairs"].to_dict() == pytest.approx(
        {"a": 20.0, "b": 0.0, "c": math.nan}, nan_ok=True)
    names = {"a": "A", "b": "B", "c": "C"}
    assert asv_pairs_words(costs, ["a"], names) == ASV_PAIRS_WORDS[20.0]
    assert asv_pairs_words(costs, ["b"], names) == ASV_PAIRS_WORDS[0.0]
    assert asv_pairs_words(costs, ["c"], names) == ASV_PAIRS_WORDS[None]
    mixed = asv_pairs_words(costs, ["a", "b", "c"], names)
    assert mixed == (f"{ASV_PAIRS_WORDS[20.0]} for A; {ASV_PAIRS_WORDS[0.0]} for B; "
                     f"{ASV_PAIRS_WORDS[None]} for C")
    old = method_costs(pd.DataFrame([_row("time_fuse", "a", 2.0)]))  # results from before the benchmark existed
    assert asv_pairs_words(old, ["a"], names) == ASV_PAIRS_WORDS[None]


def test_the_table5_caption_says_which_pairs_asv_timed(tmp_path) -> None:
    """End to end: a report built with ``--asv-results`` (this project's results file, made before the pairs were
    recorded) says so in Table 5's caption."""
    import numpy as np

    from fusionbench.report.build import build_report

    results = tmp_path / "results"
    results.mkdir()
    rng = np.random.default_rng(0)
    rows = [("harvard-mri-pet", f"{k:02d}", m, "EN", float(rng.random()))
            for k in range(1, 5) for m in ("average", "dwt", "ifcnn")]
    scores = pd.DataFrame(rows, columns=["dataset", "pair", "method", "metric", "value"])
    scores.to_csv(results / "scores.csv.gz", index=False)
    scores[["dataset", "pair", "method"]].drop_duplicates().assign(path="", seconds=0.01).to_csv(
        results / "outputs.csv.gz", index=False)
    report = build_report(results, tmp_path / "report", metrics="EN", quiet=True, profile=False,
                          asv_results=Path(__file__).parent / "data" / "asv_results", data_dir=tmp_path / "no-data")
    caption = (report / "tables" / "table5_cost.md").read_text().splitlines()[0]
    assert f"time: asv time_fuse / 20 pairs, {ASV_PAIRS_WORDS[None]}, on " in caption
    table = pd.read_csv(report / "tables" / "table5_cost.csv").set_index("method")
    # not profiled here (profile=False): GFLOPs and parameters are asv's counts, not n/a
    assert float(table.loc["ifcnn", "GFLOPs"]) == pytest.approx(16.99, abs=0.01)
    assert float(table.loc["ifcnn", "Params (M)"]) == pytest.approx(0.083587)
    assert pd.isna(table.loc["dwt", "GFLOPs"])  # not a torch method: n/a


def test_the_whole_run_benchmark_runs_the_test_split(monkeypatch, tmp_path, shared_dir) -> None:
    """``benchmark_run`` (the whole-run target) on one method and one dataset: the figures it tracks come from
    a real run through the runner's path."""
    monkeypatch.syspath_prepend(str(REPO))
    run_bench = importlib.import_module("benchmarks.benchmark_run")
    monkeypatch.setenv("FUSIONBENCH_BENCH_METHODS", "average")
    monkeypatch.setenv("FUSIONBENCH_DATA_DIR", str(shared_dir / "data"))
    monkeypatch.setattr(run_bench, "DATASETS", ("tno",))
    measured = run_bench.whole_run(str(tmp_path / "out"))
    import fusionbench

    test_pairs = len(fusionbench.create_dataset("tno", data_dir=str(shared_dir / "data")).select("test"))
    assert measured["tasks"] == test_pairs and measured["failures"] == 0 and measured["unavailable"] == 0
    assert 0 < measured["wall_minutes"] < 10
    assert (tmp_path / "out" / "results.sqlite").is_file()
    import benchmarks._data as data_module

    monkeypatch.setattr(data_module, "data_roots", lambda: [tmp_path / "none"])
    with pytest.raises(NotImplementedError, match="Harvard and TNO"):
        run_bench.whole_run(str(tmp_path / "out2"))
