"""A store can hold rows the run's split does not: another split's run in the same out folder (two commands with
the default ``--out``), pairs since removed from or renamed in a folder dataset. The run's summary and the report are
over the pairs the dataset holds now in the run's split (session 39's CLI audit: they pooled every row, and the
report labelled the pooled table with the last run's split)."""
from __future__ import annotations

import re

from fusionbench.data import create_dataset
from fusionbench.report.build import build_report
from fusionbench.runner import RunConfig, run


def _n_pairs(summary: str, method: str) -> int:
    row = next(line for line in summary.splitlines() if f"(`{method}`)" in line or line.startswith(f"| {method} |"))
    return int(row.split("|")[2])


def test_a_run_of_another_split_in_the_same_out_is_not_pooled(tmp_path, shared_dir) -> None:
    out = tmp_path / "out"
    common = dict(datasets=["harvard-mri-ct"], data_dir=str(shared_dir / "data"), metrics="EN", out=str(out),
                  workers=0, quiet=True)
    first = run(RunConfig(methods=["average", "maximum"], split="test", **common), log=lambda m: None)
    test_pairs = _n_pairs(first.summary_path.read_text(), "average")
    second = run(RunConfig(methods=["average"], split="train", **common), log=lambda m: None)
    train_pairs = _n_pairs(second.summary_path.read_text(), "average")
    listed = create_dataset("harvard-mri-ct", data_dir=str(shared_dir / "data"))
    assert (test_pairs, train_pairs) == (len(listed.select("test")), len(listed.select("train")))  # not pooled
    lines: list[str] = []
    report = build_report(out, tmp_path / "report", metrics="EN", quiet=True, profile=False, log=lines.append)
    table = (report / "tables" / "harvard-mri-ct.md").read_text()
    assert re.search(rf"\b{train_pairs} pairs\b", table.splitlines()[0]) and "Split: train" in table
    assert any(f"harvard-mri-ct: {test_pairs} of the {test_pairs + train_pairs} pairs with results are not in its "
               "'train' split" in line for line in lines), lines


def test_a_pair_removed_from_a_folder_leaves_the_summary_and_the_report(tmp_path, make_pairs) -> None:
    data = make_pairs(tmp_path / "data", 3)
    config = RunConfig(methods=["average"], datasets=[f"folder:{data}"], metrics="EN", out=str(tmp_path / "out"),
                       workers=0, quiet=True)
    assert _n_pairs(run(config, log=lambda m: None).summary_path.read_text(), "average") == 3
    for side in ("a", "b"):
        (data / side / "p001.png").unlink()
        (data / side / "p002.png").rename(data / side / "renamed.png")
    summary = run(config, log=lambda m: None).summary_path.read_text()
    assert _n_pairs(summary, "average") == 2
    report = build_report(tmp_path / "out", tmp_path / "report", metrics="EN", quiet=True, profile=False)
    table = next((report / "tables").glob("folder*.md")).read_text()
    assert ": 1 method, 2 pairs**" in table.splitlines()[0]


def test_each_dataset_is_over_its_own_runs_split(tmp_path, shared_dir) -> None:
    """A test run of two datasets, then a train run of one: each table is over (and says) the split of the newest run
    of its dataset; the last run's split does not empty or mislabel the other (session 39's second review)."""
    out = tmp_path / "out"
    common = dict(methods=["average"], data_dir=str(shared_dir / "data"), metrics="EN", out=str(out), workers=0,
                  quiet=True)
    run(RunConfig(datasets=["harvard-mri-ct", "harvard-mri-spect"], split="test", **common), log=lambda m: None)
    run(RunConfig(datasets=["harvard-mri-ct"], split="train", **common), log=lambda m: None)
    report = build_report(out, tmp_path / "report", metrics="EN", quiet=True, profile=False)
    data = str(shared_dir / "data")
    for dataset, split in (("harvard-mri-ct", "train"), ("harvard-mri-spect", "test")):
        table = (report / "tables" / f"{dataset}.md").read_text()
        n = len(create_dataset(dataset, data_dir=data).select(split))
        assert re.search(rf"\b{n} pairs\b", table.splitlines()[0]) and f"Split: {split}" in table, (dataset, table)
