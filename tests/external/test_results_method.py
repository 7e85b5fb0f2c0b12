"""``--methods NAME=results:PATH``: a folder of fused images is a method of the run like any registered one."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from fusionbench.io import load_image
from fusionbench.runner import RunConfig, run

from _db import rows as _rows

PAIRS = (2, 3, 10)



def _legff_case(official_dir: Path, root: Path) -> tuple[Path, Path]:
    """A folder dataset of LEGFF's official PET-MRI inputs and a results folder of its official outputs."""
    base = official_dir / "legff"
    data, results = root / "data", root / "results"
    for d in (data / "a", data / "b", results):
        d.mkdir(parents=True)
    for k in PAIRS:
        shutil.copy(base / "inputs" / "PET-MRI" / "MRI" / f"{k}.png", data / "a" / f"{k}.png")
        shutil.copy(base / "inputs" / "PET-MRI" / "PET" / f"{k}.png", data / "b" / f"{k}.png")
        shutil.copy(base / "outputs" / f"LEGFF-PET-MRI-{k}.png", results / f"{k}.png")
    (results / "method.json").write_text(json.dumps({"display_name": "LEGFF (official)", "citation": "Zhang 2021",
                                                     "licence": "as published"}))
    return data, results


def _config(data: Path, results: Path, out: Path, methods: str) -> RunConfig:
    return RunConfig(methods=[methods.replace("RESULTS", str(results))], datasets=[f"folder:{data}"],
                     metrics="paper", out=str(out), workers=0, quiet=True)


def test_official_outputs_as_results_folder_score_exactly_as_our_legff(official_dir: Path, tmp_path: Path) -> None:
    data, results = _legff_case(official_dir, tmp_path)
    out = tmp_path / "out"
    summary = run(_config(data, results, out, "legff,official=results:RESULTS"), log=lambda m: None)
    assert summary.failures == 0 and summary.completed == 2 * len(PAIRS)
    db = out / "results.sqlite"
    ours = dict(((p, m), v) for p, m, v in _rows(db, "SELECT pair, metric, value FROM scores WHERE method='legff'"))
    theirs = dict(((p, m), v) for p, m, v in _rows(db, "SELECT pair, metric, value FROM scores WHERE method='official'"))
    assert len(ours) == 7 * len(PAIRS) and ours == theirs
    key, = {k for (k,) in _rows(db, "SELECT method_key FROM scores WHERE method='official'")}
    assert key.startswith("results-")
    # the fused image is kept in the content-addressed cache like any method's
    path, = _rows(db, "SELECT path FROM outputs WHERE method='official' AND pair='2'")[0]
    assert np.array_equal(load_image(path), load_image(results / "2.png"))
    # the display name reaches the summary
    assert "LEGFF (official)" in (out / "summary.md").read_text()
    # resume: nothing to do; one changed image changes the key, so every pair is scored again
    assert run(_config(data, results, out, "official=results:RESULTS"), log=lambda m: None).completed == 0
    img = load_image(results / "3.png")
    Image.fromarray(255 - img).save(results / "3.png")
    again = run(_config(data, results, out, "official=results:RESULTS"), log=lambda m: None)
    assert again.completed == len(PAIRS)


def test_bad_result_images_are_named_and_the_rest_scored(official_dir: Path, tmp_path: Path) -> None:
    data, results = _legff_case(official_dir, tmp_path)
    (results / "2.png").unlink()
    Image.fromarray(load_image(results / "3.png")[:128]).save(results / "3.png")
    Image.fromarray(load_image(results / "10.png")[..., 0].astype(np.uint16) * 200).save(results / "10.png")
    shutil.copy(data / "a" / "10.png", data / "a" / "11.png")
    shutil.copy(data / "b" / "10.png", data / "b" / "11.png")
    shutil.copy(official_dir / "legff" / "outputs" / "LEGFF-PET-MRI-10.png", results / "11.png")
    out = tmp_path / "out"
    lines: list[str] = []
    summary = run(_config(data, results, out, "mine=results:RESULTS"), log=lines.append)
    db = out / "results.sqlite"
    assert {p for (p,) in _rows(db, "SELECT DISTINCT pair FROM scores WHERE method='mine'")} == {"11"}
    failures = {p: m for p, m in _rows(db, "SELECT pair, message FROM failures WHERE method='mine'")}
    assert set(failures) == {"2", "3", "10"} and summary.failures == 3
    assert str(results / "2.png") in failures["2"] and "not found" in failures["2"]
    assert str(results / "3.png") in failures["3"] and "differs" in failures["3"]
    assert str(results / "10.png") in failures["10"] and "16-bit" in failures["10"]
    assert sum(str(results / "3.png") in line for line in lines) == 1


def test_bad_spec_is_one_clear_error(tmp_path: Path) -> None:
    import pytest

    from fusionbench.runner import expand_methods

    with pytest.raises(ValueError, match="results folder not found"):
        expand_methods([f"x=results:{tmp_path / 'nope'}"])
    for missing in ("x=results:", "x=results:  "):  # session 28: scored the working directory instead
        with pytest.raises(ValueError, match="path is missing"):
            expand_methods([missing])
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "method.json").write_text('{"colour": "rgb"}')
    with pytest.raises(ValueError, match="colour must be"):
        expand_methods([f"x=results:{tmp_path / 'r'}"])


def test_a_results_folder_may_not_take_a_registered_name(tmp_path: Path, capsys) -> None:
    """``average=results:DIR`` alone was accepted: its rows then shared the method name ``average`` with the
    registered method's in the store.  Now refused, whether or not ``average`` is also selected, in one line."""
    import pytest

    from fusionbench.cli import main
    from fusionbench.runner import expand_methods

    (tmp_path / "r").mkdir()
    for spec in ([f"average=results:{tmp_path / 'r'}"], [f"average=results:{tmp_path / 'r'},average"],
                 [f"maximum,maximum=results:{tmp_path / 'r'}"]):
        with pytest.raises(ValueError, match="is a registered method; name the results folder otherwise"):
            expand_methods(spec)
    assert expand_methods([f"average_theirs=results:{tmp_path / 'r'}"]) == ["average_theirs"]
    assert main(["run", "--methods", f"x=results:{tmp_path / 'r'},x=results:{tmp_path / 'r'}",
                 "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()  # the quotes of the message kept (they were stripped from its ends)
    assert err.startswith(f"fusionbench: error: 'x=results:{tmp_path / 'r'}': method name 'x' is used twice")


def test_results_folder_appears_in_the_report(official_dir: Path, tmp_path: Path) -> None:
    from fusionbench.report import build_report

    data, results = _legff_case(official_dir, tmp_path)
    out = tmp_path / "out"
    run(_config(data, results, out, "legff,official=results:RESULTS"), log=lambda m: None)
    logs: list[str] = []
    report = build_report(out, tmp_path / "report", quiet=True, log=logs.append)
    page = (Path(report) if Path(report).is_file() else Path(report) / "index.html").read_text()
    assert "LEGFF (official)" in page
    tables = "".join(p.read_text() for p in (tmp_path / "report" / "tables").glob("*.md"))
    assert "LEGFF (official)" in tables and "LEGFF" in tables
    # Table 5 says what the folder is instead of the registry's KeyError for an unknown method
    cost = (tmp_path / "report" / "tables" / "table5_cost.md").read_text()
    assert "LEGFF (official): not profiled: external results (a folder of fused images)" in cost
    # its rows have no fusion time, but a run made them (before: "LEGFF (official): outputs not recorded")
    assert "LEGFF (official): run 1 (" in cost and "outputs not recorded" not in cost
    assert not any("KeyError" in line for line in logs), logs
    assert "official" not in (tmp_path / "report" / "results" / "profile.csv").read_text()  # notes are not cached
