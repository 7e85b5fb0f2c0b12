"""``fusionbench export-fused``: a run's fused images under readable names, with a manifest."""
from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pandas as pd
from PIL import Image

from fusionbench.cli import main
from fusionbench.external import dataset_dirname


def test_export_writes_each_current_image_by_name_with_its_run(tmp_path, make_pairs, capsys) -> None:
    data = make_pairs(tmp_path / "data", 3, colour=False)
    out = tmp_path / "out"
    common = ["--datasets", f"folder:{data}", "--metrics", "EN", "--out", str(out), "--workers", "0", "--quiet",
              "--no-report"]
    assert main(["run", "--methods", "average", *common]) == 0
    assert main(["run", "--methods", "average,maximum", *common]) == 0
    dest = tmp_path / "release"
    assert main(["export-fused", str(out), str(dest)]) == 0
    manifest = pd.read_csv(dest / "manifest.csv")
    assert len(manifest) == 6 and set(manifest["method"]) == {"average", "maximum"}
    assert dict(zip(manifest["method"], manifest["run_id"])) == {"average": 1, "maximum": 2}
    pairs = sorted(p.stem for p in (data / "a").iterdir())
    for row in manifest.itertuples():
        image = dest / row.file
        assert row.file == f"{row.method}/{dataset_dirname(row.dataset)}/{row.pair}.png"
        assert hashlib.sha256(image.read_bytes()).hexdigest() == row.sha256
    # the image is the method's output on that pair: average of the two sources (grey pairs)
    first = pairs[0]
    a = np.asarray(Image.open(data / "a" / f"{first}.png"), dtype=float)
    b = np.asarray(Image.open(data / "b" / f"{first}.png"), dtype=float)
    dataset = dataset_dirname(manifest["dataset"].iloc[0])
    fused = np.asarray(Image.open(dest / "average" / dataset / f"{first}.png"), dtype=float)
    assert np.abs(fused - (a + b) / 2).max() <= 1.0
    assert np.array_equal(np.asarray(Image.open(dest / "maximum" / dataset / f"{first}.png"), dtype=float),
                          np.maximum(a, b))

    # DEST/<method> is a results folder another user can score as a method of their own run: the same scores
    assert main(["run", "--methods", f"again=results:{dest / 'average'}", *common]) == 0
    from fusionbench.report.data import ReportData

    scores = ReportData.load(out).scores.pivot_table(index="pair", columns="method", values="value")
    assert np.array_equal(scores["again"].to_numpy(), scores["average"].to_numpy())

    # a report's results/ export as OUT, and an older export without run ids
    from fusionbench.report.data import ReportData as RD

    export = RD.load(out).export(tmp_path / "exported")
    assert main(["export-fused", str(tmp_path / "exported"), str(tmp_path / "from_export"), "--methods",
                 "average,maximum"]) == 0
    again = pd.read_csv(tmp_path / "from_export" / "manifest.csv")
    assert dict(zip(again["file"], again["sha256"])) == dict(zip(manifest["file"], manifest["sha256"]))
    outputs = pd.read_csv(export / "outputs.csv.gz").drop(columns=["run_id"])
    outputs.to_csv(export / "outputs.csv.gz", index=False)
    assert main(["export-fused", str(tmp_path / "exported"), str(tmp_path / "old"), "--methods", "AVER*"]) == 0
    old = pd.read_csv(tmp_path / "old" / "manifest.csv")  # patterns ignore case, as the registry's
    assert set(old["method"]) == {"average"} and old["run_id"].isna().all()

    # --methods, a moved out folder, a gone cache file (named, the rest written), nothing matching (one line)
    moved = tmp_path / "moved"
    shutil.move(out, moved)
    gone, truncated = sorted((moved / "fused" / "maximum").rglob("*.png"))[:2]
    gone.unlink()
    truncated.write_bytes(truncated.read_bytes()[:60])  # a corrupt cache file is named, not published
    capsys.readouterr()
    assert main(["export-fused", str(moved), str(tmp_path / "only_max"), "--methods", "max*"]) == 1
    err = capsys.readouterr().err
    assert "cached image" in err and "is gone" in err and "1 fused images written" in err and "2 problems" in err
    assert str(truncated) in err
    assert len(pd.read_csv(tmp_path / "only_max" / "manifest.csv")) == 1
    assert main(["export-fused", str(moved), str(tmp_path / "none"), "--methods", "nsct"]) == 1
    assert "no fused image matches --methods nsct" in capsys.readouterr().err
    assert main(["export-fused", str(tmp_path / "nowhere"), str(tmp_path / "x")]) == 1
    assert "no such folder" in capsys.readouterr().err


def test_a_dest_that_is_a_file_is_one_line_before_any_copy(tmp_path, make_pairs, capsys) -> None:
    """DEST a file used to give one line per image, each naming the cached source as the culprit."""
    data = make_pairs(tmp_path / "data", 3, colour=False)
    out = tmp_path / "out"
    assert main(["run", "--methods", "average", "--datasets", f"folder:{data}", "--metrics", "EN", "--out", str(out),
                 "--workers", "0", "--quiet", "--no-report"]) == 0
    dest = tmp_path / "a_file"
    dest.write_text("")
    capsys.readouterr()
    assert main(["export-fused", str(out), str(dest)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"DEST {dest}: is a file, not a folder") and len(err.splitlines()) == 1


def test_two_datasets_whose_names_differ_in_slashes_keep_apart(tmp_path, make_pairs, capsys) -> None:
    """``folder:…/x/y`` and ``folder:…/x_y`` both had the sub-folder ``folder_…_x_y``: the second dataset's
    images overwrote the first's, whose manifest rows then named files with other contents (session 28)."""
    first = make_pairs(tmp_path / "x" / "y", 2, colour=False, seed=1)
    second = make_pairs(tmp_path / "x_y", 2, colour=False, seed=2)
    out, dest = tmp_path / "out", tmp_path / "release"
    assert main(["run", "--methods", "average", "--datasets", f"folder:{first},folder:{second}", "--metrics", "EN",
                 "--out", str(out), "--workers", "0", "--quiet"]) == 0
    assert main(["export-fused", str(out), str(dest)]) == 0
    manifest = pd.read_csv(dest / "manifest.csv")
    assert len(manifest) == 4 and manifest["file"].nunique() == 4
    for row in manifest.itertuples():  # every file is the one its row describes
        assert hashlib.sha256((dest / row.file).read_bytes()).hexdigest() == row.sha256
    # the report's per-dataset tables and figures too: one set per dataset
    stems = {f"folder_y-{hashlib.sha256(f'folder:{first.resolve()}'.encode()).hexdigest()[:8]}",
             f"folder_x_y-{hashlib.sha256(f'folder:{second.resolve()}'.encode()).hexdigest()[:8]}"}
    assert {p.stem for p in (out / "tables").glob("folder_*.csv") if not p.stem.endswith("_others")} == stems


def test_a_results_folder_of_an_older_export_is_still_read(tmp_path, make_pairs) -> None:
    """An ``export-fused`` before session 28 named a folder dataset's sub-folder by the path as typed
    (``folder:ds`` → ``folder_ds``, ``folder:ds/`` → ``folder_ds_``): such a results folder is still found (the
    review of session 28)."""
    from fusionbench.external import parse_results_spec

    data = make_pairs(tmp_path / "ds", 1, colour=False)
    dataset = f"folder:{data.resolve()}"
    for old in ("folder_ds", "folder_._ds", "folder_ds_"):
        root = tmp_path / old / "average"
        (root / old).mkdir(parents=True)
        shutil.copy(data / "a" / "p000.png", root / old / "p000.png")
        assert parse_results_spec(f"mine=results:{root}").image_for(dataset, "p000") == root / old / "p000.png"


def test_a_copied_out_folder_exports_its_own_images_first(tmp_path, make_pairs, monkeypatch, capsys) -> None:
    """A run with a relative ``--out`` records relative cache paths, which the export resolved from the working
    folder first: a copy of OUT exported the original's images (session 32's docs audit).  Now OUT's own copy
    comes first, and the recorded path only where OUT lacks the image (a ``--cache`` outside OUT)."""
    monkeypatch.chdir(tmp_path)
    data = make_pairs(tmp_path / "data", 2, colour=False)
    assert main(["run", "--methods", "average", "--datasets", f"folder:{data}", "--metrics", "EN", "--out", "o6",
                 "--workers", "0", "--quiet", "--no-report"]) == 0
    shutil.copytree("o6", "o6b")
    assert main(["export-fused", "o6b", "exp"]) == 0
    sources = pd.read_csv(tmp_path / "exp" / "manifest.csv")["source"]
    assert len(sources) == 2 and all(str(s).startswith("o6b/fused/") for s in sources), list(sources)
    gone = sorted((tmp_path / "o6b" / "fused").rglob("*.png"))[0]
    gone.unlink()
    assert main(["export-fused", "o6b", "exp2"]) == 0  # the recorded path (the original's) is the fallback
    sources = sorted(pd.read_csv(tmp_path / "exp2" / "manifest.csv")["source"].astype(str))
    assert sum(s.startswith("o6b/fused/") for s in sources) == 1 and sum(s.startswith("o6/fused/") for s in sources) == 1
