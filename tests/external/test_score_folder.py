"""``fusionbench score`` / ``fusionbench.metrics.evaluate_folder``: a folder of fused images scored without a run."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fusionbench
from fusionbench.cli import main
from fusionbench.io import load_image
from fusionbench.metrics import evaluate
from fusionbench.score_folder import evaluate_folder

LEGFF_PET = (2, 3, 10)


def _official_legff_folders(official_dir: Path, root: Path) -> tuple[Path, Path, Path]:
    """LEGFF's official PET-MRI inputs and outputs, renamed to one stem per pair in a temporary folder."""
    base = official_dir / "legff"
    dirs = [root / d for d in ("fused", "a", "b")]
    for d in dirs:
        d.mkdir(parents=True)
    for k in LEGFF_PET:
        shutil.copy(base / "outputs" / f"LEGFF-PET-MRI-{k}.png", dirs[0] / f"{k}.png")
        shutil.copy(base / "inputs" / "PET-MRI" / "MRI" / f"{k}.png", dirs[1] / f"{k}.png")
        shutil.copy(base / "inputs" / "PET-MRI" / "PET" / f"{k}.png", dirs[2] / f"{k}.png")
    return dirs[0], dirs[1], dirs[2]


def test_official_outputs_score_as_our_reimplementation(official_dir: Path, tmp_path: Path) -> None:
    fused, a, b = _official_legff_folders(official_dir, tmp_path)
    result = evaluate_folder(fused, a, b, "paper")
    assert result.problems == []
    table = result.table()
    assert list(table.index) == ["2", "3", "10", "mean", "n"]
    assert list(table.loc["n"]) == [3.0] * len(table.columns) and result.coverage_note() is None
    for k in LEGFF_PET:
        ours = fusionbench.fuse("legff", a / f"{k}.png", b / f"{k}.png")  # bit-exact with the official output
        view = fusionbench.scoring_view(ours, load_image(a / f"{k}.png"), load_image(b / f"{k}.png"))
        expected = evaluate(view.fused, view.a, view.b, "paper")
        assert {m: table.loc[str(k), m] for m in expected} == expected


def test_bad_images_are_named_and_the_rest_scored(official_dir: Path, tmp_path: Path) -> None:
    fused, a, b = _official_legff_folders(official_dir, tmp_path)
    (fused / "2.png").unlink()  # missing
    img = load_image(fused / "3.png")
    Image.fromarray(img[:100]).save(fused / "3.png")  # mis-sized
    shutil.copy(a / "10.png", a / "11.png")
    shutil.copy(b / "10.png", b / "11.png")
    Image.fromarray(load_image(fused / "10.png")[..., 0].astype(np.uint16) * 200).save(fused / "11.png")  # 16-bit
    result = evaluate_folder(fused, a, b, ["AG", "EN"])
    assert sorted(result.scores["image"].unique()) == ["10"]
    text = "\n".join(result.problems)
    assert len(result.problems) == 3, text
    assert str(fused / "2.png") in text and "not found" in text
    assert str(fused / "3.png") in text and "differs" in text
    assert str(fused / "11.png") in text and "16-bit" in text


def test_cli_prints_table_and_writes_csv(official_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    fused, a, b = _official_legff_folders(official_dir, tmp_path)
    csv = tmp_path / "new" / "scores.csv"  # its folder is made
    assert main(["score", "--fused", str(fused), "--a", str(a), "--b", str(b), "--metrics", "AG,EN",
                 "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "mean" in out and "AG ↑" in out and "EN ↑" in out  # each metric's direction in its header
    assert "\n  AG: central-difference gradient" in out and "\n  EN: 256-bin histogram" in out  # its convention
    import pandas as pd

    frame = pd.read_csv(csv, index_col="image")
    assert list(frame.columns) == ["AG", "EN"] and list(frame.index) == ["2", "3", "10", "mean", "n"]
    assert list(frame.loc["n"]) == [3, 3] and "\nn " in out and " 3 " in out.split("\nn ")[1].splitlines()[0]


def test_cli_fails_when_nothing_scores(tmp_path: Path) -> None:
    for d in ("f", "a", "b"):
        (tmp_path / d).mkdir()
    assert main(["score", "--fused", str(tmp_path / "f"), "--a", str(tmp_path / "a"), "--b", str(tmp_path / "b")]) == 1


def test_cli_says_which_images_a_mean_leaves_out(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A fused image equal to its MRI source leaves SCD undefined (NaN) there: the mean row is over the other
    images, and the command says so in one line naming them."""
    rng = np.random.default_rng(4)
    for d in ("f", "a", "b"):
        (tmp_path / d).mkdir()
    for name in ("p1", "p2"):
        a, b = (rng.random((24, 30)) * 255).astype(np.uint8), (rng.random((24, 30)) * 255).astype(np.uint8)
        Image.fromarray(a).save(tmp_path / "a" / f"{name}.png")
        Image.fromarray(b).save(tmp_path / "b" / f"{name}.png")
        fused = a if name == "p2" else ((a.astype(int) + b) // 2).astype(np.uint8)
        Image.fromarray(fused).save(tmp_path / "f" / f"{name}.png")
    result = evaluate_folder(tmp_path / "f", tmp_path / "a", tmp_path / "b", ["EN", "SCD"])
    assert result.undefined() == {"SCD": ["p2"]}
    assert result.table().loc["mean", "SCD"] == result.table().loc["p1", "SCD"]
    assert main(["score", "--fused", str(tmp_path / "f"), "--a", str(tmp_path / "a"), "--b", str(tmp_path / "b"),
                 "--metrics", "EN,SCD"]) == 0
    assert "SCD: undefined (NaN) on 1 of 2 images (p2); its mean is over the others" in capsys.readouterr().err


def test_tiny_empty_and_duplicate_images_are_one_clear_line_each(tmp_path: Path, capsys) -> None:
    """Before: a 1×1 triple gave one line per metric, empty folders printed pandas' "Empty DataFrame", an
    empty --metrics counted every image as not scored, and ``s.jpg`` was scored instead of ``s.png``."""
    rng = np.random.default_rng(0)
    dirs = [tmp_path / d for d in ("fused", "a", "b")]
    for d in dirs:
        d.mkdir()
        Image.fromarray(np.zeros((1, 1), np.uint8)).save(d / "tiny.png")
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(d / "s.png")
    Image.fromarray(np.full((16, 16), 200, np.uint8)).save(dirs[0] / "s.jpg")  # same stem, lossy
    result = evaluate_folder(*dirs, ["EN", "SD"])
    text = "\n".join(result.problems)
    assert len(result.problems) == 2, text
    assert "tiny.png: size 1x1 is too small to score" in text
    assert "s.jpg: a second image named 's' (using s.png)" in text
    assert result.table().loc["s", "SD"] > 0  # the PNG was scored, not the constant JPEG
    with pytest.raises(ValueError, match="selects no metric"):
        evaluate_folder(*dirs, "")
    empty = [tmp_path / "e" / d for d in ("fused", "a", "b")]
    for d in empty:
        d.mkdir(parents=True)
    assert main(["score", "--fused", str(empty[0]), "--a", str(empty[1]), "--b", str(empty[2])]) == 1
    out, err = capsys.readouterr()
    assert "Empty DataFrame" not in out + err and "no fused image in" in err


def _write_pairs(root: Path, names: list[str], *, fused: list[str] | None = None) -> list[Path]:
    """Random 24×30 grey pairs ``a/NAME.png``, ``b/NAME.png`` and their average ``f/NAME.png`` (for ``fused`` names
    only, when given)."""
    rng = np.random.default_rng(7)
    dirs = [root / d for d in ("f", "a", "b")]
    for d in dirs:
        d.mkdir(parents=True)
    for name in names:
        a, b = (rng.integers(0, 256, (24, 30), dtype=np.uint8) for _ in range(2))
        Image.fromarray(a).save(dirs[1] / f"{name}.png")
        Image.fromarray(b).save(dirs[2] / f"{name}.png")
        if fused is None or name in fused:
            Image.fromarray(((a.astype(int) + b) // 2).astype(np.uint8)).save(dirs[0] / f"{name}.png")
    return dirs


def test_a_mean_over_fewer_images_than_the_source_pairs_is_counted_and_said(tmp_path: Path, capsys) -> None:
    """Session 38's metrics audit (F1): 4 fused images against a folder of 245 pairs gave a mean row over 4, with
    no count in the table or the CSV; a method whose worst images are missing gets a better mean."""
    dirs = _write_pairs(tmp_path, ["p1", "p2", "p3", "p4"], fused=["p1", "p2"])
    result = evaluate_folder(*dirs, ["EN", "SD"])
    assert result.pairs == ["p1", "p2", "p3", "p4"] and list(result.table().loc["n"]) == [2.0, 2.0]
    csv = tmp_path / "s.csv"
    assert main(["score", "--fused", str(dirs[0]), "--a", str(dirs[1]), "--b", str(dirs[2]), "--metrics", "EN,SD",
                 "--csv", str(csv)]) == 0
    err = capsys.readouterr().err
    assert ("the means are over fewer images than the 4 source pairs (as few as 2; row 'n'): fused images missing, "
            "skipped or undefined are left out, so compare them only with means over the same pairs") in err
    assert "2 images scored, 2 problems" in err
    import pandas as pd

    assert pd.read_csv(csv, index_col="image").loc["n"].tolist() == [2, 2]


def test_an_image_named_mean_keeps_its_row(tmp_path: Path, capsys) -> None:
    """Session 38's metrics audit (F3): the mean row overwrote an image named ``mean``, and the count lost one."""
    dirs = _write_pairs(tmp_path, ["mean", "n", "p1"])
    result = evaluate_folder(*dirs, ["EN"])
    table = result.table()
    assert list(table.index) == ["mean", "n", "p1", "(mean)", "(n)"]
    assert table.loc["(mean)", "EN"] == pytest.approx(table.loc[["mean", "n", "p1"], "EN"].mean())
    assert main(["score", "--fused", str(dirs[0]), "--a", str(dirs[1]), "--b", str(dirs[2]), "--metrics", "EN"]) == 0
    assert "3 images scored, 0 problems" in capsys.readouterr().err


def test_sub_folders_other_files_and_unmatched_names_are_said(tmp_path: Path) -> None:
    """Session 38's metrics audit (F6): images in a sub-folder of --fused (the run's per-dataset layout), ``.npy``
    results and names that do not match the sources' (``p1_fused.png``) were each just "fused image not found"."""
    dirs = _write_pairs(tmp_path, ["p1", "p2"], fused=[])
    (dirs[0] / "harvard-mri-pet").mkdir()
    Image.fromarray(np.zeros((24, 30), np.uint8)).save(dirs[0] / "harvard-mri-pet" / "p1.png")
    np.save(dirs[0] / "p2.npy", np.zeros((24, 30)))
    Image.fromarray(np.zeros((24, 30), np.uint8)).save(dirs[0] / "p1_fused.png")
    text = "\n".join(evaluate_folder(*dirs, ["EN"]).problems)
    assert f"{dirs[0] / 'harvard-mri-pet'}: is a sub-folder, not read" in text
    assert f"{dirs[0] / 'p2.npy'}" in text and "skipped" in text
    assert f"{dirs[0]}: none of its 1 images has the name of a source pair: images pair by file stem" in text


def test_a_metric_undefined_on_every_image_says_there_is_no_mean(tmp_path: Path, capsys) -> None:
    dirs = _write_pairs(tmp_path, ["p1", "p2"])
    assert main(["score", "--fused", str(dirs[0]), "--a", str(dirs[1]), "--b", str(dirs[2]), "--metrics",
                 "EN,ChromaErr"]) == 0
    err = capsys.readouterr().err
    assert "ChromaErr: undefined (NaN) on 2 of 2 images (p1, p2); no mean" in err


def test_a_bad_csv_path_is_refused_before_scoring(tmp_path: Path, capsys) -> None:
    """Session 38's metrics audit: a --csv that cannot be written failed after every image was scored, with a
    bare errno message."""
    dirs = _write_pairs(tmp_path, ["p1"])
    (tmp_path / "blocker").write_text("a file where the CSV's folder should be")
    for csv, reason in ((tmp_path, "is a folder; give a file name"),
                        (tmp_path / "blocker" / "s.csv", "cannot make its folder")):
        assert main(["score", "--fused", str(dirs[0]), "--a", str(dirs[1]), "--b", str(dirs[2]), "--metrics", "EN",
                     "--csv", str(csv)]) == 1
        out, err = capsys.readouterr()
        assert f"--csv {csv}: {reason}" in err and "images scored" not in err and out == "", err


def test_a_metric_failing_on_every_image_keeps_the_other_metrics_table_and_csv(tmp_path: Path, capsys) -> None:
    """Session 39's API audit: a metric that raised on every image had no row, and ``FolderScores.table()`` failed
    with pandas' ``KeyError: "['X'] not in index"``: the other metrics' table and the ``--csv`` file were lost."""
    import pandas as pd

    from fusionbench.metric_registry import METRICS, register_metric

    @register_metric("TEST_SCORE_BOOM")
    def boom(fused, a, b, *, data_range=None):
        raise ValueError("boom")

    try:
        dirs = _write_pairs(tmp_path, ["p1", "p2"])
        csv = tmp_path / "s.csv"
        assert main(["score", "--fused", str(dirs[0]), "--a", str(dirs[1]), "--b", str(dirs[2]), "--metrics",
                     "EN,TEST_SCORE_BOOM", "--csv", str(csv)]) == 0
        err = capsys.readouterr().err
        assert "metric TEST_SCORE_BOOM failed (ValueError: boom)" in err
        table = pd.read_csv(csv, index_col=0)
        assert table.loc["n", "EN"] == 2 and table.loc["n", "TEST_SCORE_BOOM"] == 0
        assert table.loc[["p1", "p2"], "EN"].notna().all() and table["TEST_SCORE_BOOM"].iloc[:2].isna().all()
    finally:
        METRICS.remove("TEST_SCORE_BOOM")
