"""The report end to end on a small real run: selection, statistics on the page, claims, light output,
skipped methods, and the HTML page rendered by headless Chromium."""
from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from fusionbench.runner import RunConfig, run


def _folder(root, n: int = 6):
    data = root / "data"
    rng = np.random.default_rng(0)
    (data / "a").mkdir(parents=True)
    (data / "b").mkdir(parents=True)
    for i in range(n):
        base = rng.integers(0, 256, (40, 40)).astype(np.uint8)
        Image.fromarray(base).save(data / "a" / f"p{i}.png")
        Image.fromarray(np.stack([base, 255 - base, base // 2], -1)).save(data / "b" / f"p{i}.png")
    (data / "dataset.json").write_text(json.dumps({
        "title": "Test pairs", "groups": {f"p{i}": f"s{i % 5}" for i in range(n)}, "group_level": "subject"}))
    return data


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    from fusionbench.report import build_report

    root = tmp_path_factory.mktemp("report")
    data = _folder(root)
    run(RunConfig(methods=["average,maximum,dwt,dwt.vifb,swinfusion"], datasets=[f"folder:{data}"],
                  metrics="EN,SD", out=str(root / "out"), workers=0, quiet=True), log=lambda m: None)
    build_report(root / "out", root / "report", metrics="EN,SD", quiet=True, log=lambda m: None,
                 methods="average,maximum,dwt,swinfusion", highlight="dwt")
    return root / "report"


def test_report_files(report_dir) -> None:
    ds = next(p for p in (report_dir / "tables").glob("folder_*.md") if not p.stem.endswith("_others"))
    text = ds.read_text()
    assert "| Method | EN ↑ | SD ↑ |" in text and "**" in text and "<u>" in text
    assert text.startswith("**Test pairs: ") and "6 pairs**" in text  # the title of dataset.json, not folder:PATH
    assert "| **DWT** |" in text and "DWT (VIFB)" not in text  # highlighted; the variant in its own table
    assert "DWT (VIFB)" in ds.with_name(ds.stem + "_others.md").read_text()
    assert ds.with_suffix(".tex").is_file() and ds.with_suffix(".csv").is_file()
    figures = report_dir / "figures"
    assert list(figures.glob("grid_*.png")) and not list(figures.glob("*.pdf"))  # light: no PDF twins
    assert list(figures.glob("cd_*_EN.png")) and list(figures.glob("cd_*_SD.png")) and list(figures.glob("box_*.png"))
    assert (figures / "masks.png").is_file()
    assert list((report_dir / "stats").glob("*_ranks.csv")) and list((report_dir / "stats").glob("*_vs_dwt.csv"))
    assert (report_dir / "results" / "scores.csv.gz").is_file() and not (report_dir / "results.sqlite").exists()
    assert "Results made by" in (report_dir / "README.md").read_text()
    table5 = (report_dir / "tables" / "table5_cost.md").read_text()
    assert "measured by the run itself" in table5 and "| DWT |" in table5


def test_page_has_statistics_claims_and_skips(report_dir) -> None:
    page = (report_dir / "index.html").read_text()
    assert "http://" not in page and "https://" not in page  # no CDN, no server
    assert 'src="figures/' in page and "data:image/png;base64," not in page  # light page links its figures
    assert '<section id="claims">' in page and "not in this run: no claim" in page  # no mopa in this run
    assert "95 % bootstrap" in page and "resampling 5 subject groups" in page
    assert "against each other method (Wilcoxon signed-rank" in page and "rank-biserial r" in page
    assert "p (Holm)" in page and '<tr class="hl">' in page
    assert "SwinFusion" in page.split("Skipped methods and failures")[-1]  # skipped, with its reason
    assert "Friedman" in page


def test_report_rebuilds_from_its_results_folder(report_dir, tmp_path) -> None:
    from fusionbench.report import build_report

    again = build_report(report_dir, tmp_path / "again", metrics="EN,SD", quiet=True, log=lambda m: None,
                         methods="average,maximum,dwt", highlight="dwt", profile=False)
    first = next(p for p in (report_dir / "tables").glob("folder_*.csv") if not p.stem.endswith("_others"))
    assert (again / "tables" / first.name).read_text() == first.read_text()


def test_full_resolution_embeds_and_writes_pdf(report_dir, tmp_path) -> None:
    from fusionbench.report import build_report

    full = build_report(report_dir / "results", tmp_path / "full", metrics="EN", quiet=True, log=lambda m: None,
                        full=True, profile=False)
    assert list((full / "figures").glob("*.pdf"))
    assert "data:image/png;base64," in (full / "index.html").read_text()


def test_html_renders_in_headless_chromium(report_dir, tmp_path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no headless Chromium installed (apt-get install chromium)")
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(args + ["--dump-dom", (report_dir / "index.html").as_uri()], capture_output=True,
                         text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-500:]
    assert dom.stdout.count("<tr") >= 4 and "Maximum" in dom.stdout and "DWT" in dom.stdout
    shot = tmp_path / "shot.png"
    subprocess.run(args + [f"--screenshot={shot}", "--window-size=1200,900", (report_dir / "index.html").as_uri()],
                   capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_figures_remake_fused_images_when_the_cache_is_gone(tmp_path, monkeypatch) -> None:
    """A report rebuilt without the run's fused images re-makes them for the figure pair only and says so;
    a method that cannot be re-made here is left out of the grid, named in the README with its reason."""
    import fusionbench.api
    from fusionbench.report import build_report

    monkeypatch.setenv("FUSIONBENCH_HOME", str(tmp_path / "home"))  # the re-made images' folder
    (tmp_path / "tmp").mkdir()
    data = _folder(tmp_path, n=3)
    run(RunConfig(methods=["average,maximum"], datasets=[f"folder:{data}"], metrics="EN", out=str(tmp_path / "out"),
                  workers=0, quiet=True), log=lambda m: None)
    shutil.rmtree(tmp_path / "out" / "fused")
    real_fuse = fusionbench.api.fuse

    def fuse(method, a, b, **kwargs):
        if getattr(method, "name", method) == "maximum":  # the report passes the created method
            raise RuntimeError("weights gone")
        return real_fuse(method, a, b, **kwargs)

    monkeypatch.setattr(fusionbench.api, "fuse", fuse)
    logged: list[str] = []
    build_report(tmp_path / "out", tmp_path / "report", metrics="EN", quiet=True, log=logged.append,
                 methods="average,maximum", profile=False)
    readme = (tmp_path / "report" / "README.md").read_text()
    assert "were re-made for the figure pairs only" in readme and "`average`" in readme
    assert "Left out of the figures: `maximum` (weights gone)" in readme
    assert any(line.startswith("figure: maximum on folder:") and "not available" in line for line in logged)
    assert list((tmp_path / "report" / "figures").glob("grid_*.png"))
    remade = list((tmp_path / "home" / "report-fused" / "average").rglob("*.png"))
    assert len(remade) == 1  # the figure pair only, not every pair of the run


def test_report_builds_without_the_source_images(tmp_path) -> None:
    """The sources gone (another machine, a deleted folder): tables and statistics still build, the figures
    that need the sources are left out in one log line, and the groups are said to be unknown."""
    from fusionbench.report import build_report

    data = _folder(tmp_path, n=4)
    run(RunConfig(methods=["average,maximum"], datasets=[f"folder:{data}"], metrics="EN", out=str(tmp_path / "out"),
                  workers=0, quiet=True), log=lambda m: None)
    shutil.rmtree(data)
    logged: list[str] = []
    build_report(tmp_path / "out", tmp_path / "report", metrics="EN", quiet=True, log=logged.append, profile=False)
    assert [line for line in logged if line.startswith("figures for folder:") and "skipped" in line]
    assert list((tmp_path / "report" / "tables").glob("folder_*.md"))
    assert not list((tmp_path / "report" / "figures").glob("grid_*.png"))
    assert "groups unknown" in (tmp_path / "report" / "index.html").read_text()


def test_a_selected_method_without_results_on_a_dataset_is_listed_with_why(tmp_path) -> None:
    """Two runs on two datasets, ``maximum`` only on the first: the report's skipped table names it on the second,
    with the reason derived from the store (the run recorded none), and builds both datasets' tables."""
    from fusionbench.report import build_report

    first, second = _folder(tmp_path / "one", n=3), _folder(tmp_path / "two", n=3)
    out = str(tmp_path / "out")
    run(RunConfig(methods=["average,maximum"], datasets=[f"folder:{first}"], metrics="EN", out=out, workers=0,
                  quiet=True), log=lambda m: None)
    run(RunConfig(methods=["average"], datasets=[f"folder:{second}"], metrics="EN", out=out, workers=0, quiet=True),
        log=lambda m: None)
    build_report(out, tmp_path / "report", metrics="EN", quiet=True, log=lambda m: None, methods="average,maximum",
                 profile=False)
    skipped = (tmp_path / "report" / "tables" / "skipped.csv").read_text().splitlines()
    assert skipped[0] == "dataset,method,name,reason" and len(skipped) == 2
    assert skipped[1].startswith(f"folder:{second},Maximum,maximum,") and "no results for this dataset" in skipped[1]
    assert len([p for p in (tmp_path / "report" / "tables").glob("folder_*.md") if "_others" not in p.stem]) == 2
