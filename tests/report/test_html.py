"""The report end to end on a small real run, and the HTML page rendered by headless Chromium."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from fusionbench.runner import RunConfig, run


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    from fusionbench.report import build_report

    root = tmp_path_factory.mktemp("report")
    data = root / "data"
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    (data / "a").mkdir(parents=True)
    (data / "b").mkdir(parents=True)
    for i in range(5):
        base = rng.integers(0, 256, (40, 40)).astype(np.uint8)
        Image.fromarray(base).save(data / "a" / f"p{i}.png")
        Image.fromarray(np.stack([base, 255 - base, base // 2], -1)).save(data / "b" / f"p{i}.png")
    run(RunConfig(methods=["average,maximum,dwt"], datasets=[f"folder:{data}"], metrics="EN,SD",
                  out=str(root / "out"), workers=0, quiet=True), log=lambda m: None)
    build_report(root / "out", root / "report", metrics="EN,SD", asv_results=root / "none", quiet=True,
                 log=lambda m: None)
    return root / "report"


def test_report_files(report_dir) -> None:
    ds = next((report_dir / "tables").glob("folder_*.md"))
    text = ds.read_text()
    assert "| Method | EN ↑ | SD ↑ |" in text and "**" in text and "<u>" in text
    assert ds.with_suffix(".tex").is_file() and ds.with_suffix(".csv").is_file()
    assert list((report_dir / "figures").glob("grid_*.png")) and list((report_dir / "figures").glob("grid_*.pdf"))
    assert list((report_dir / "figures").glob("cd_*_EN.png")) and list((report_dir / "figures").glob("box_*.png"))
    assert list((report_dir / "stats").glob("*_ranks.csv"))
    assert "fusionbench run" in (report_dir / "README.md").read_text() or "Results made by" in (report_dir / "README.md").read_text()


def test_html_is_self_contained(report_dir) -> None:
    page = (report_dir / "index.html").read_text()
    assert "http://" not in page and "https://" not in page  # no CDN, no server
    assert "data:image/png;base64," in page and "<table class=\"sortable\"" in page


def test_html_renders_in_headless_chromium(report_dir, tmp_path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no headless Chromium installed (apt-get install chromium)")
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(args + ["--dump-dom", (report_dir / "index.html").as_uri()], capture_output=True,
                         text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-500:]
    assert dom.stdout.count("<tr>") >= 4 and "Maximum" in dom.stdout and "DWT" in dom.stdout
    shot = tmp_path / "shot.png"
    subprocess.run(args + [f"--screenshot={shot}", "--window-size=1200,900", (report_dir / "index.html").as_uri()],
                   capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000
