"""Which pairs asv's Table 5 suite times, and what the caption says of them (session 34).

Before, ``bench_pairs`` did not look in ``$FUSIONBENCH_HOME/data`` (where ``fusionbench fetch`` puts the data);
a folder with some files of both tasks missing had the pairs left timed and their sum divided by 20 (one with a
task's folder absent failed the suite with FileNotFoundError); and the caption said "20 pairs" whether they were
the paper's or built-in ones."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from fusionbench.report.asv_results import method_costs
from fusionbench.report.sections.table5 import ASV_PAIRS_WORDS, asv_pairs_words, asv_where_words

REPO = Path(__file__).resolve().parents[2]


def benchmarks_module(name: str):
    """The module ``benchmarks.<name>`` of this checkout's asv suite, imported as asv does: the ``benchmarks``
    package loaded from its folder, without putting the checkout's root on ``sys.path`` (there its
    ``fusionbench/`` folder would shadow the installed package, which alone holds ``fusionbench.methods``: the
    runner's worker processes inherit ``sys.path`` and failed to import it in CI's non-editable install)."""
    import importlib.util
    import sys

    init = REPO / "benchmarks" / "__init__.py"
    if getattr(sys.modules.get("benchmarks"), "__file__", None) != str(init):
        spec = importlib.util.spec_from_file_location("benchmarks", init,
                                                      submodule_search_locations=[str(init.parent)])
        package = importlib.util.module_from_spec(spec)
        sys.modules["benchmarks"] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"benchmarks.{name}")


@pytest.fixture
def bench(monkeypatch):
    """``benchmarks.benchmark_methods`` with ``$FUSIONBENCH_BENCH_METHODS`` set to one cheap method."""
    monkeypatch.setenv("FUSIONBENCH_BENCH_METHODS", "average")
    return benchmarks_module("benchmark_methods")


def test_data_roots_look_where_fetch_puts_the_data(monkeypatch, tmp_path) -> None:
    data_roots = benchmarks_module("_data").data_roots

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



def test_a_folder_missing_one_of_the_20_pairs_is_passed_over(bench, monkeypatch, tmp_path, shared_dir) -> None:
    """Both tasks present but one MRI-SPECT pair of the 20 missing: 19 pairs would have been timed and their sum
    divided by 20 (before session 34); now the folder is passed over."""
    import fusionbench.data as data

    shared = shared_dir / "data"
    missing = next(p for p in data.paper20_pairs(shared) if p.dataset == "harvard-mri-spect")
    holey = tmp_path / "holey"
    (holey / "harvard").mkdir(parents=True)
    (holey / "harvard" / "MRI-PET").symlink_to(shared / "harvard" / "MRI-PET")
    for source in (shared / "harvard" / "MRI-SPECT").rglob("*.png"):
        if source.resolve() not in {Path(missing.a_path).resolve(), Path(missing.b_path).resolve()}:
            target = holey / source.relative_to(shared)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source)
    assert len(data.paper20_pairs(holey)) == 19
    monkeypatch.setattr(bench, "data_roots", lambda: [holey])
    source, pairs = bench.bench_pairs()
    assert source.startswith("built-in") and len(pairs) == 20
    monkeypatch.setattr(bench, "data_roots", lambda: [holey, shared])
    assert bench.bench_pairs()[0] == f"paper20 (Harvard, {shared})"


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


def test_the_caption_says_where_asv_timed_each_method() -> None:
    """A results folder holding several commits and machines: each benchmark's newest result is read, so two
    methods' times can come from different ones; the caption says so per method (before session 35 it named the
    CPU of the folder's first row alone, and no commit)."""
    rows = [_row("time_fuse", "a", 2.0) | {"commit": "aaaaaaa1234", "cpu": "AMD EPYC", "num_cpu": "2", "date": 2},
            _row("time_fuse", "b", 3.0) | {"commit": "bbbbbbb5678", "cpu": "Intel Xeon", "num_cpu": "4", "date": 1},
            _row("time_fuse", "a", 9.0) | {"commit": "ccccccc0000", "cpu": "old CPU", "num_cpu": "1", "date": 0},
            _row("track_gflops", "c", 1.0)]
    costs = method_costs(pd.DataFrame(rows)).set_index("method")
    assert costs.loc["a", "seconds_per_pair"] == pytest.approx(0.1)  # the newest of a's two results
    assert costs.loc["a", "commit"] == "aaaaaaa1234" and costs.loc["c", "commit"] == ""  # c: no time
    costs = costs.reset_index()
    names = {"a": "A", "b": "B"}
    assert asv_where_words(costs, ["a"], names) == "at commit aaaaaaa on AMD EPYC (2 CPU threads)"
    assert asv_where_words(costs, ["a", "b"], names) == ("at commit aaaaaaa on AMD EPYC (2 CPU threads) for A; "
                                                         "at commit bbbbbbb on Intel Xeon (4 CPU threads) for B")
    assert asv_where_words(costs, ["c"], names) == "at an unrecorded commit on asv machine unknown (? CPU threads)"


def _report_with_asv(tmp_path: Path, methods: tuple[str, ...]) -> Path:
    """A report of a small store of ``methods`` built with ``--asv-results`` (this project's results file, made
    before the pairs were recorded, for average, dwt and ifcnn)."""
    from fusionbench.report.build import build_report

    from ._exports import small_export

    results = small_export(tmp_path, methods)
    return build_report(results, tmp_path / "report", metrics="EN", quiet=True, profile=False,
                        asv_results=Path(__file__).parent / "data" / "asv_results", data_dir=tmp_path / "no-data")


def test_asv_results_of_other_methods_leave_the_run_label(tmp_path) -> None:
    """asv results that time none of the methods shown: the caption says the run timed them (before, it said
    "asv time_fuse / 20 pairs" above the run's own times)."""
    caption = (_report_with_asv(tmp_path, ("maximum", "nsct")) / "tables" / "table5_cost.md").read_text()
    assert "asv time_fuse" not in caption and "measured by the run itself" in caption


def test_the_table5_caption_says_which_pairs_asv_timed(tmp_path) -> None:
    """End to end: a report built with ``--asv-results`` (results made before the pairs were recorded) says so in
    Table 5's caption."""
    report = _report_with_asv(tmp_path, ("average", "dwt", "ifcnn"))
    caption = (report / "tables" / "table5_cost.md").read_text().splitlines()[0]
    assert (f"time: asv time_fuse / 20 pairs, {ASV_PAIRS_WORDS[None]}, at commit 1678533 on AMD EPYC (2 CPU "
            "threads);") in caption
    table = pd.read_csv(report / "tables" / "table5_cost.csv").set_index("method")
    # not profiled here (profile=False): GFLOPs and parameters are asv's counts, not n/a
    assert float(table.loc["ifcnn", "GFLOPs"]) == pytest.approx(16.99, abs=0.01)
    assert float(table.loc["ifcnn", "Params (M)"]) == pytest.approx(0.083587)
    assert pd.isna(table.loc["dwt", "GFLOPs"])  # not a torch method: n/a


def test_the_whole_run_benchmark_runs_the_test_split(monkeypatch, tmp_path, shared_dir) -> None:
    """``benchmark_run`` (the whole-run target) on one method and one dataset: the figures it tracks come from
    a real run through the runner's path."""
    run_bench = benchmarks_module("benchmark_run")
    monkeypatch.setenv("FUSIONBENCH_BENCH_METHODS", "average")
    monkeypatch.setenv("FUSIONBENCH_DATA_DIR", str(shared_dir / "data"))
    monkeypatch.setattr(run_bench, "DATASETS", ("tno",))
    measured = run_bench.whole_run(str(tmp_path / "out"))
    import fusionbench

    test_pairs = len(fusionbench.create_dataset("tno", data_dir=str(shared_dir / "data")).select("test"))
    assert measured["tasks"] == test_pairs and measured["failures"] == 0 and measured["unavailable"] == 0
    assert 0 < measured["wall_minutes"] < 10
    assert (tmp_path / "out" / "results.sqlite").is_file()
    monkeypatch.setattr(benchmarks_module("_data"), "data_roots", lambda: [tmp_path / "none"])
    with pytest.raises(NotImplementedError, match="Harvard and TNO"):
        run_bench.whole_run(str(tmp_path / "out2"))
