"""A report whose Table 5 times come from asv exports the asv result file(s) it used under ``results/asv/``, and a
rebuild from that export reads them without ``--asv-results`` (session 37 audit, finding 4: the committed report's
Table 5 and the SDNet-fastest verdict came from the git-ignored ``.asv/results`` and could not be rebuilt from
``reports/results``)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path


from ._exports import small_export

ASV = Path(__file__).parent / "data" / "asv_results"
USED = "vm/16785330-existing-py_work_venv_bin_python.json"


def _export(tmp_path: Path, methods: tuple[str, ...]) -> Path:
    """A small ``results/`` export of ``methods`` on four MRI-PET pairs, with the run's own times (0.01 s)."""
    return small_export(tmp_path, methods)


def _build(results: Path, out: Path, asv: Path | None, tmp_path: Path) -> Path:
    from fusionbench.report.build import build_report

    return build_report(results, out, metrics="EN", quiet=True, profile=False, asv_results=asv,
                        data_dir=tmp_path / "no-data", log=lambda m: None)


def test_the_export_carries_the_asv_results_table5_used_and_a_rebuild_reads_them(tmp_path) -> None:
    asv = tmp_path / "asv"
    shutil.copytree(ASV, asv)
    other = asv / "other-machine"  # a machine whose results time none of the methods shown: not exported
    other.mkdir()
    (other / "machine.json").write_text((ASV / "vm" / "machine.json").read_text())
    data = json.loads((ASV / USED).read_text())
    data["results"] = {k: v for k, v in data["results"].items() if "MethodSuite" not in k}
    (other / "00000000-env.json").write_text(json.dumps(data))

    report = _build(_export(tmp_path, ("average", "dwt", "ifcnn")), tmp_path / "report", asv, tmp_path)
    exported = report / "results" / "asv"
    files = sorted(str(p.relative_to(exported)) for p in exported.rglob("*") if p.is_file())
    assert files == ["benchmarks.json", USED, "vm/machine.json"], files
    assert (exported / USED).read_text() == (ASV / USED).read_text()
    kept = json.loads((exported / "benchmarks.json").read_text())
    assert set(kept) - {"version"} <= set(json.loads((ASV / USED).read_text())["results"])
    caption = (report / "tables" / "table5_cost.md").read_text().splitlines()[0]
    assert f"results/asv/{USED}" in caption and "asv time_fuse" in caption
    assert f"`results/asv/{USED}`" in (report / "README.md").read_text()

    for table in (report / "results").glob("*.csv"):  # this bare export has no runs (nor failures, ...): an
        if table.stat().st_size <= 1:                 # empty table has no header to read back
            table.unlink()
    rebuilt = _build(report / "results", tmp_path / "rebuilt", None, tmp_path)  # no --asv-results
    for name in ("table5_cost.csv", "table5_cost.md", "paper_vs_ours_table5.csv"):
        assert (rebuilt / "tables" / name).read_text() == (report / "tables" / name).read_text(), name
    assert (rebuilt / "results" / "asv" / USED).is_file()

    shutil.rmtree(report / "results" / "asv")  # the test can fail: without them the run's own times stand
    bare = _build(report / "results", tmp_path / "bare", None, tmp_path)
    assert "asv time_fuse" not in (bare / "tables" / "table5_cost.md").read_text()
    assert not (bare / "results" / "asv").exists()


def test_a_report_without_asv_times_exports_no_asv_folder(tmp_path) -> None:
    """asv results that time none of the methods shown are not exported (and an old export's asv folder goes)."""
    results = _export(tmp_path, ("maximum", "nsct"))
    report = _build(results, tmp_path / "report", ASV, tmp_path)
    assert not (report / "results" / "asv").exists()
    (report / "results" / "asv").mkdir()
    again = _build(results, report, None, tmp_path)
    assert not (again / "results" / "asv").exists()


def test_a_no_bench_rebuild_of_a_run_folder_says_it_removed_the_earlier_exports_asv_results(
        tmp_path, make_pairs, capsys) -> None:
    """``fusionbench report OUT --no-bench`` on a run folder whose earlier build exported asv results: Table 5 takes
    the run's own times, and the export's ``asv/`` folder, which a rebuild from the export would read instead, is
    removed with one line saying so (until session 38 it went without a word)."""
    from fusionbench.cli import main

    data = make_pairs(tmp_path / "data", 3, size=32)
    out = tmp_path / "out"
    assert main(["run", "--methods", "average,dwt", "--datasets", f"folder:{data}", "--metrics", "EN", "--out",
                 str(out), "--workers", "0", "--quiet", "--no-report"]) == 0
    _build(out, out, ASV, tmp_path)  # an earlier build, its Table 5 from asv: exported
    assert (out / "results" / "asv" / USED).is_file()
    capsys.readouterr()
    assert main(["report", str(out), "--no-bench", "--no-profile", "--metrics", "EN", "--data-dir",
                 str(tmp_path / "no-data"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert not (out / "results" / "asv").exists()
    assert "asv time_fuse" not in (out / "tables" / "table5_cost.md").read_text()
    said = [line for line in err.splitlines() if "asv" in line]
    assert said == [f"report: removed {out / 'results' / 'asv'}, the asv results an earlier build exported: this "
                    "report's Table 5 takes the run's own times, and a rebuild from the export would read them "
                    "instead (--bench or --asv-results DIR times Table 5 with asv)"], err
