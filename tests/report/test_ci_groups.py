"""The CI footnote and the page count the groups of the pairs the run scored, the groups the bootstrap resamples,
not those of the dataset's whole manifest (session 37 audit, finding 2: "resampling 15 series groups" for 10
MRI-SPECT paper20 pairs from 7 series); ``too_few`` counts the same."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from fusionbench.report.data import Groups
from fusionbench.runner import RunConfig, run


def _declare_groups(root: Path, groups: dict[str, str]) -> None:
    (root / "dataset.json").write_text(json.dumps({"groups": groups, "group_level": "subject"}))


def _report(tmp_path: Path, make_pairs, scored_groups: list[str], later_groups: list[str]) -> str:
    """Run on pairs of ``scored_groups`` (one group per pair, in order), then add pairs of ``later_groups`` to the
    folder's manifest (not scored), build the report and return its main table's Markdown and page text."""
    from fusionbench.report import build_report

    data = make_pairs(tmp_path / "data", len(scored_groups), size=32)
    _declare_groups(data, {f"p{i:03d}": g for i, g in enumerate(scored_groups)})
    out = tmp_path / "out"
    run(RunConfig(methods=["average,maximum"], datasets=[f"folder:{data}"], metrics="EN", out=str(out), workers=0,
                  quiet=True), log=lambda m: None)
    n = len(scored_groups) + len(later_groups)
    make_pairs(tmp_path / "more", n, size=32, seed=1)  # pairs added to the dataset after the run
    for i in range(len(scored_groups), n):
        for side in ("a", "b"):
            (tmp_path / "more" / side / f"p{i:03d}.png").rename(data / side / f"p{i:03d}.png")
    _declare_groups(data, {f"p{i:03d}": g for i, g in enumerate(scored_groups + later_groups)})
    report = tmp_path / "report"
    build_report(out, report, metrics="EN", quiet=True, log=lambda m: None, profile=False)
    (table,) = [p for p in (report / "tables").glob("*.md") if p.stem.startswith("folder")]
    return table.read_text() + (report / "index.html").read_text()


def test_the_footnote_counts_the_groups_of_the_scored_pairs(tmp_path, make_pairs) -> None:
    # 6 scored pairs in 5 subjects; the manifest declares 9 subjects once 4 more pairs are added
    text = _report(tmp_path, make_pairs, ["s1", "s1", "s2", "s3", "s4", "s5"], ["s6", "s7", "s8", "s9"])
    assert "resampling 5 subject groups" in text
    assert "resampling 9" not in text


def test_too_few_counts_the_groups_of_the_scored_pairs(tmp_path, make_pairs) -> None:
    # 5 scored pairs in 3 subjects (the bootstrap returns no CI), the manifest 6 subjects
    text = _report(tmp_path, make_pairs, ["s1", "s1", "s2", "s2", "s3"], ["s4", "s5", "s6"])
    assert "no CI: 3 subject groups, too few to resample" in text
    assert "No 95 % confidence intervals" in text
    assert "resampling 6" not in text


@pytest.mark.parametrize("pairs, n, too_few", [(["a", "b", "c"], 2, True), (list("abcdef"), 5, False)])
def test_of_pairs_keeps_only_the_groups_of_those_pairs(pairs: list[str], n: int, too_few: bool) -> None:
    manifest = Groups({p: g for p, g in zip("abcdefghij", "1123456789")}, "series")
    groups = manifest.of_pairs(pairs)
    assert len(set(groups.by_pair.values())) == n and groups.too_few is too_few
    assert groups.describe().startswith("no CI" if too_few else f"resampling {n} series groups")
    assert Groups(note="x").of_pairs(pairs).describe().startswith("groups unknown")
