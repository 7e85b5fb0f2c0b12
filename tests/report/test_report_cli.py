"""`fusionbench run` passes --order/--highlight/--exclude-variants to its report; `fusionbench report` takes
--methods/--order/--highlight/--exclude-variants/--mean-only/--roi/--full."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fusionbench.cli import main


@pytest.fixture
def pairs(tmp_path):
    data = tmp_path / "data"
    rng = np.random.default_rng(2)
    for side in ("a", "b"):
        (data / side).mkdir(parents=True)
    for i in range(4):
        base = rng.integers(0, 256, (36, 44)).astype(np.uint8)
        Image.fromarray(base).save(data / "a" / f"k{i}.png")
        Image.fromarray(np.flipud(base)).save(data / "b" / f"k{i}.png")
    return data


def test_run_and_report_selection_flags(tmp_path, pairs, capsys) -> None:
    out = tmp_path / "out"
    assert main(["run", "--methods", "average,maximum,dwt,dwt.vifb", "--datasets", f"folder:{pairs}", "--metrics",
                 "EN,SD", "--out", str(out), "--workers", "0", "--quiet", "--no-bench", "--order", "dwt,average",
                 "--highlight", "average"]) == 0
    md = next(p for p in (out / "tables").glob("folder_*.md") if not p.stem.endswith("_others")).read_text()
    rows = [line.split("|")[1].strip() for line in md.splitlines() if line.startswith("| ") and "Method" not in line]
    assert rows == ["DWT", "**Average**"]  # --order, --highlight
    assert "Maximum" in next((out / "tables").glob("folder_*_others.md")).read_text()

    report = tmp_path / "report"
    assert main(["report", str(out), "--out", str(report), "--metrics", "EN,SD", "--methods", "dwt*,max*",
                 "--exclude-variants", "--mean-only", "--roi", "2,3,16", "--no-profile", "--quiet"]) == 0
    tex = next(p for p in (report / "tables").glob("folder_*.tex") if not p.stem.endswith("_others")).read_text()
    assert "DWT &" in tex and "Maximum &" in tex
    assert "VIFB" not in tex  # --exclude-variants
    assert r"\pm" not in tex  # --mean-only: no std columns, footnote says "Mean over pairs"
    page = (report / "index.html").read_text()
    assert "placed on the given ROI" in page
    capsys.readouterr()
    assert main(["report", str(out), "--out", str(report), "--roi", "2,3", "--quiet"]) != 0
    assert "ROW,COL,SIZE" in capsys.readouterr().err  # one clear line
    assert main(["report", str(out), "--out", str(report), "--roi", "2,x,16", "--quiet"]) != 0
    assert "--roi '2,x,16': expected ROW,COL,SIZE" in capsys.readouterr().err  # not int()'s message
    # `run` has --no-bench; `report` accepts it too (its asv run is off unless --bench)
    assert main(["report", str(out), "--out", str(report), "--no-bench", "--no-profile", "--quiet"]) == 0


def test_a_run_with_nothing_scored_says_so_in_one_line(tmp_path, pairs, capsys) -> None:
    """A method that fails on every pair leaves the store without scores: the report stage says that in one line
    (exit 1) instead of failing inside a table (a mistyped split, the first way here, is now refused by the run)."""
    from fusionbench import register_method
    from fusionbench.method_registry import METHODS

    @register_method("test_always_nan")
    def always_nan(a, b):
        return np.full_like(a, np.nan)

    out = tmp_path / "out"
    try:
        assert main(["run", "--methods", "test_always_nan", "--datasets", f"folder:{pairs}", "--metrics", "EN",
                     "--out", str(out), "--workers", "0", "--quiet", "--no-bench"]) == 1
    finally:
        METHODS.remove("test_always_nan")
    err = capsys.readouterr().err
    assert "FAILED test_always_nan on folder:" in err
    assert f"error: {out / 'results.sqlite'}: no scores to report" in err
    assert main(["report", str(out), "--quiet"]) == 1
    assert "no scores to report" in capsys.readouterr().err
    assert main(["run", "--methods", "average", "--datasets", f"folder:{pairs}", "--split", "tset",
                 "--out", str(tmp_path / "out2"), "--quiet"]) == 1
    assert "no dataset of the run has split 'tset' (did you mean 'test'?)" in capsys.readouterr().err


def test_report_options_that_match_nothing_are_one_error(tmp_path, pairs, capsys) -> None:
    """Before: --methods with a typo gave empty main tables, --highlight with one highlighted nothing, and
    --metrics naming only metrics the run did not score ended in 'division by zero' (in the box plots)."""
    out = tmp_path / "out"
    assert main(["run", "--methods", "average,maximum", "--datasets", f"folder:{pairs}", "--metrics", "EN,SD",
                 "--out", str(out), "--workers", "0", "--quiet", "--no-report"]) == 0
    capsys.readouterr()
    for flags, message in ((["--methods", "averag"], "--methods 'averag': no method of the results matches (they "
                                                     "have: average, maximum)"),
                           (["--highlight", "dwt"], "--highlight 'dwt' is not a method of the main tables"),
                           (["--metrics", "SSIM"], "none of the metrics SSIM was scored (the results have EN, SD)")):
        assert main(["report", str(out), "--out", str(tmp_path / "rep"), "--no-profile", "--quiet", *flags]) == 1
        assert message in capsys.readouterr().err
    assert main(["report", str(out), "--out", str(tmp_path / "rep"), "--no-profile", "--quiet", "--metrics",
                 "EN,SSIM"]) == 0  # some scored: the others are named in one line and left out
    assert "report: SSIM not scored in" in capsys.readouterr().err
    assert "| Method | EN ↑ |" in next((tmp_path / "rep" / "tables").glob("folder_*.md")).read_text()


def test_cost_table_of_no_methods_has_its_columns() -> None:
    from fusionbench.report.cost import COST_COLUMNS, cost_table

    table = cost_table([], {}, pd.DataFrame(), pd.Series(dtype=float))
    assert list(table.columns) == COST_COLUMNS and table.empty
    assert list(table.drop(columns=["method"]).columns) == COST_COLUMNS[:-1]


def test_a_report_rebuilt_in_place_stays_in_its_folder(tmp_path, pairs, capsys) -> None:
    """Before: ``fusionbench report REPORT`` (its ``results/`` export) wrote one level too high, over the files
    of the folder above (from the checkout root, ``fusionbench report reports`` replaced the project README)."""
    import shutil

    out = tmp_path / "out"
    assert main(["run", "--methods", "average,maximum", "--datasets", f"folder:{pairs}", "--metrics", "EN,SD",
                 "--out", str(out), "--workers", "0", "--quiet", "--no-report"]) == 0
    project = tmp_path / "project"
    assert main(["report", str(out), "--out", str(project / "rep"), "--no-profile", "--quiet"]) == 0
    (project / "README.md").write_text("the project's own README\n")
    assert main(["report", str(project / "rep"), "--no-profile", "--quiet"]) == 0
    assert (project / "README.md").read_text() == "the project's own README\n"
    assert sorted(p.name for p in project.iterdir()) == ["README.md", "rep"]
    assert "fusionbench report" in (project / "rep" / "README.md").read_text()
    shutil.copytree(project / "rep" / "results", tmp_path / "export_copy")
    capsys.readouterr()
    assert main(["report", str(tmp_path / "export_copy"), "--no-profile", "--quiet"]) == 1
    assert "say where the report goes with --out" in capsys.readouterr().err


def test_bad_report_inputs_and_options_are_one_line(tmp_path, pairs, capsys) -> None:
    """A --roi outside the image is moved inside (before: numpy's zero-size error halfway through the report);
    a corrupt export table, --asv-results naming no folder and an --order naming no method are one line each."""
    out = tmp_path / "out"
    assert main(["run", "--methods", "average,maximum", "--datasets", f"folder:{pairs}", "--metrics", "EN,SD",
                 "--out", str(out), "--workers", "0", "--quiet", "--no-report"]) == 0
    rep = tmp_path / "rep"
    assert main(["report", str(out), "--out", str(rep), "--roi", "100,100,10", "--no-profile", "--quiet"]) == 0
    assert "moved inside the 44x36 image" in (rep / "index.html").read_text()
    capsys.readouterr()
    for flags, message in ((["--roi=-5,0,10"], "ROW and COL >= 0"),
                           (["--asv-results", str(tmp_path / "none")], "no such folder"),
                           (["--order", "zzz,yyy"], "--order 'zzz,yyy': no method of the results is named")):
        assert main(["report", str(out), "--out", str(rep), "--no-profile", "--quiet", *flags]) == 1
        assert message in capsys.readouterr().err
    scores = rep / "results" / "scores.csv.gz"
    scores.write_bytes(scores.read_bytes()[:50])
    assert main(["report", str(rep), "--out", str(tmp_path / "rep2"), "--no-profile", "--quiet"]) == 1
    assert f"{scores}: unreadable export table" in capsys.readouterr().err


def test_paper_beside_tables_say_how_our_columns_were_made(tmp_path, capsys) -> None:
    """The paper-beside-ours tables carry the provenance footnote of the run's own tables: pairs averaged,
    weights, runs, commits, machine (before: only the note on the paper's numbers)."""
    rng = np.random.default_rng(5)
    task = tmp_path / "data" / "harvard" / "MRI-SPECT"
    for i in (10007, 10008, 10009):
        base = rng.integers(0, 256, (32, 32)).astype(np.uint8)
        for modality, image in (("MRI", base), ("SPECT", np.stack([np.flipud(base)] * 3, axis=-1))):
            (task / modality).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(task / modality / f"{i}.png")
    out = tmp_path / "out"
    assert main(["run", "--methods", "cnp,average", "--datasets", "harvard-mri-spect", "--split", "all",
                 "--data-dir", str(tmp_path / "data"), "--metrics", "EN,SD", "--out", str(out), "--workers", "0",
                 "--quiet", "--no-bench"]) == 0
    table1 = (out / "tables" / "paper_vs_ours_table1.md").read_text()
    assert "Ours: mean over 3 pairs of harvard-mri-spect (all split)" in table1
    assert "fused outputs from CNP: run 1 (" in table1 and "machine:" in table1
    assert "Average" not in table1  # not a method of the paper
    table3 = (out / "tables" / "paper_vs_ours_table3.md").read_text()
    assert "Ours: no method of the paper was scored on harvard-mri-pet in this run." in table3
    assert "Ours: Table 5 style:" in (out / "tables" / "paper_vs_ours_table5.md").read_text()
    assert "no warm-up: the first call of a method in each worker process" in \
        (out / "tables" / "table5_cost.md").read_text()  # run times include one-off costs: said
    assert "FLOPs per multiply-accumulate" in (out / "index.html").read_text()


def test_provenance_names_the_run_that_fused_each_output(tmp_path, pairs) -> None:
    """Outputs carry the id of the run that fused them, in the store and the export, so a table's provenance
    line names that run exactly; an export without the column (older) falls back to the out-folder match."""
    out = tmp_path / "out"
    common = ["--datasets", f"folder:{pairs}", "--metrics", "EN", "--out", str(out), "--workers", "0", "--quiet"]
    assert main(["run", "--methods", "average", "--no-report", *common]) == 0
    assert main(["run", "--methods", "average,maximum", "--no-bench", *common]) == 0
    exported = pd.read_csv(out / "results" / "outputs.csv.gz")
    assert dict(zip(exported["method"], exported["run_id"])) == {"average": 1, "maximum": 2}
    md = next(p for p in (out / "tables").glob("folder_*.md") if not p.stem.endswith("_others")).read_text()
    assert "Average: run 1 (" in md and "Maximum: run 2 (" in md
    assert "where the outputs carry no run id" not in md

    old = tmp_path / "old_export"
    import shutil

    shutil.copytree(out / "results", old)
    exported.drop(columns=["run_id"]).to_csv(old / "outputs.csv.gz", index=False)
    assert main(["report", str(old), "--out", str(tmp_path / "rep"), "--no-profile", "--quiet"]) == 0
    md = next(p for p in (tmp_path / "rep" / "tables").glob("folder_*.md") if not p.stem.endswith("_others"))
    text = md.read_text()
    assert "Average: run 1 or 2 (" in text and "Maximum: run 2 (" in text
    assert "where the outputs carry no run id" in text
