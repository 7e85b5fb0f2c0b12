"""The pixel digest of every fused image: recorded by the run, checked when a cached image is used again or
exported, kept by the report's export, and compared between two runs by ``fusionbench compare-fused``."""
from __future__ import annotations

import hashlib
import sqlite3

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fusionbench.cli import main
from fusionbench.compare_fused import compare_fused
from fusionbench.io import load_image, pixel_sha256
from fusionbench.report.data import ReportData

from _db import rows as _rows


# --------------------------------------------------------------------------- the convention
def test_the_digest_is_the_documented_header_and_row_major_bytes() -> None:
    grey = np.arange(6 * 4, dtype=np.uint8).reshape(6, 4)
    assert pixel_sha256(grey) == hashlib.sha256(b"6x4x1\n" + grey.tobytes()).hexdigest()
    colour = np.random.default_rng(0).integers(0, 256, (3, 5, 3), dtype=np.uint8)
    assert pixel_sha256(colour) == hashlib.sha256(b"3x5x3\n" + colour.tobytes()).hexdigest()
    # a view in another memory order digests its pixels, not its buffer
    assert pixel_sha256(np.asfortranarray(colour)) == pixel_sha256(colour)


def test_the_digest_is_of_the_pixels_as_load_image_reads_them(tmp_path) -> None:
    grey = np.random.default_rng(1).integers(0, 256, (7, 9), dtype=np.uint8)
    as_rgb = np.repeat(grey[..., None], 3, axis=2)
    assert pixel_sha256(as_rgb) == pixel_sha256(grey)  # equal channels are grey, as load_image returns them
    Image.fromarray(as_rgb).save(tmp_path / "rgb.png")
    Image.fromarray(grey).save(tmp_path / "grey.png", compress_level=9)
    assert pixel_sha256(load_image(tmp_path / "rgb.png")) == pixel_sha256(load_image(tmp_path / "grey.png"))
    # the same bytes in another shape, and one grey level, are other images
    assert pixel_sha256(grey.reshape(9, 7)) != pixel_sha256(grey)
    changed = grey.copy()
    changed[3, 4] ^= 1
    assert pixel_sha256(changed) != pixel_sha256(grey)


@pytest.mark.parametrize("bad", [np.zeros((4, 4)), np.zeros((4, 4, 4), np.uint8), np.zeros(4, np.uint8)])
def test_the_digest_refuses_what_is_not_an_8bit_image(bad) -> None:
    with pytest.raises(ValueError, match="uint8"):
        pixel_sha256(bad)


# --------------------------------------------------------------------------- the run records and checks it
def _run(data, out, methods="average,maximum", metrics="EN") -> int:
    return main(["run", "--methods", methods, "--datasets", f"folder:{data}", "--metrics", metrics, "--out",
                 str(out), "--workers", "0", "--quiet", "--no-report"])


def test_each_fused_image_has_the_digest_of_its_cached_pixels(tmp_path, make_pairs) -> None:
    data, out = make_pairs(tmp_path / "data", 3), tmp_path / "out"
    assert _run(data, out) == 0
    rows = _rows(out / "results.sqlite", "SELECT path, fused_sha256 FROM outputs")
    assert len(rows) == 6
    for path, digest in rows:
        assert digest == pixel_sha256(load_image(path))
    exported = pd.read_csv(ReportData.load(out).export(tmp_path / "results") / "outputs.csv.gz")
    assert sorted(exported["fused_sha256"]) == sorted(d for _, d in rows)
    assert {"method_key", "pair_sha256"} <= set(exported.columns)


def test_a_store_from_before_digests_learns_them_when_its_images_are_scored_again(tmp_path, make_pairs) -> None:
    data, out = make_pairs(tmp_path / "data", 2), tmp_path / "out"
    assert _run(data, out, methods="average") == 0
    db = out / "results.sqlite"
    fused = _rows(db, "SELECT pair, path, seconds, run_id, fused_sha256 FROM outputs ORDER BY pair")
    with sqlite3.connect(db) as conn:  # the table as an older fusionbench wrote it: no digest column
        conn.executescript("ALTER TABLE outputs DROP COLUMN fused_sha256;")
    assert _run(data, out, methods="average", metrics="EN,SD") == 0  # a new metric: scored from the cache
    assert _rows(db, "SELECT pair, path, seconds, run_id, fused_sha256 FROM outputs ORDER BY pair") == fused


def test_a_cached_image_with_other_pixels_is_fused_again(tmp_path, make_pairs, capsys) -> None:
    data, out = make_pairs(tmp_path / "data", 2), tmp_path / "out"
    assert _run(data, out, methods="average") == 0
    db = out / "results.sqlite"
    (path, recorded), = _rows(db, "SELECT path, fused_sha256 FROM outputs WHERE pair='p000'")
    original = load_image(path)
    edited = original.copy()
    edited[0, 0] ^= 0xFF  # still a valid PNG: only the digest can tell
    Image.fromarray(edited).save(path)
    capsys.readouterr()
    assert _run(data, out, methods="average", metrics="EN,SD") == 0
    err = capsys.readouterr().err
    assert f"cached fused image {path} holds other pixels than the store recorded" in err
    assert np.array_equal(load_image(path), original)  # the cache holds the method's image again
    assert _rows(db, "SELECT fused_sha256 FROM outputs WHERE pair='p000'") == [(recorded,)]
    assert err.count("holds other pixels") == 1  # the untouched pair is not fused again


def test_export_fused_refuses_an_image_whose_pixels_changed(tmp_path, make_pairs, capsys) -> None:
    data, out = make_pairs(tmp_path / "data", 2, colour=False), tmp_path / "out"
    assert _run(data, out, methods="average") == 0
    (path,), = _rows(out / "results.sqlite", "SELECT path FROM outputs WHERE pair='p001'")
    image = load_image(path)
    image[5, 5] ^= 1
    Image.fromarray(image).save(path)
    assert main(["export-fused", str(out), str(tmp_path / "release")]) == 1
    err = capsys.readouterr().err
    assert f"cached image {path} holds other pixels than the store recorded" in err
    manifest = pd.read_csv(tmp_path / "release" / "manifest.csv", dtype={"pair": str})
    assert manifest["pair"].tolist() == ["p000"]  # the changed one is not published
    assert manifest["fused_sha256"].tolist() == [pixel_sha256(load_image(tmp_path / "release" / manifest["file"][0]))]


# --------------------------------------------------------------------------- two runs compared
def test_two_runs_of_the_same_command_make_identical_images(tmp_path, make_pairs, capsys) -> None:
    data = make_pairs(tmp_path / "data", 3)
    assert _run(data, tmp_path / "one") == 0 and _run(data, tmp_path / "two") == 0
    export = ReportData.load(tmp_path / "one").export(tmp_path / "results")
    capsys.readouterr()
    assert main(["compare-fused", str(export), str(tmp_path / "two"), "--csv", str(tmp_path / "c.csv")]) == 0
    captured = capsys.readouterr()
    assert "6 images compared: 6 identical, 0 different" in captured.err
    assert "identical" in captured.out.splitlines()[0]
    images = pd.read_csv(tmp_path / "c.csv")
    assert len(images) == 6 and set(images["status"]) == {"identical"}
    assert (images["fused_sha256_a"] == images["fused_sha256_b"]).all()


def test_a_different_image_and_what_cannot_be_compared_are_named(tmp_path, make_pairs, capsys) -> None:
    data = make_pairs(tmp_path / "data", 3)
    assert _run(data, tmp_path / "one") == 0 and _run(data, tmp_path / "two", methods="average") == 0
    db = tmp_path / "two" / "results.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE outputs SET fused_sha256 = 'f00' WHERE pair = 'p000'")
        conn.execute("UPDATE outputs SET fused_sha256 = NULL WHERE pair = 'p001'")
    comparison = compare_fused(tmp_path / "one", tmp_path / "two")
    status = {(r.pair, r.method): r.status for r in comparison.images.itertuples()}
    assert status == {("p000", "average"): "different", ("p001", "average"): "not recorded",
                      ("p002", "average"): "identical", ("p000", "maximum"): "only in A",
                      ("p001", "maximum"): "only in A", ("p002", "maximum"): "only in A"}
    assert not comparison.agrees and (comparison.compared, comparison.different) == (2, 1)
    summary = comparison.summary().set_index("method")
    assert summary.loc["average", ["identical", "different", "not recorded"]].tolist() == [1, 1, 1]
    assert summary.loc["maximum", "only in A"] == 3
    assert main(["compare-fused", str(tmp_path / "one"), str(tmp_path / "two"), "--methods", "aver*"]) == 1
    assert "2 images compared: 1 identical, 1 different; not compared: 1 not recorded" in capsys.readouterr().err


def test_another_method_version_or_other_inputs_are_not_compared(tmp_path, make_pairs) -> None:
    data = make_pairs(tmp_path / "data", 2)
    assert _run(data, tmp_path / "one", methods="average") == 0
    assert _run(data, tmp_path / "two", methods="average") == 0
    db = tmp_path / "two" / "results.sqlite"
    with sqlite3.connect(db) as conn:  # the pair p000's files changed on disk before the second run
        for table in ("outputs", "scores"):
            conn.execute(f"UPDATE {table} SET pair_sha256 = 'changed' WHERE pair = 'p000'")
    comparison = compare_fused(tmp_path / "one", tmp_path / "two")
    assert comparison.images["status"].tolist() == ["other inputs", "identical"]
    with sqlite3.connect(db) as conn:  # a run with other parameters: another method key throughout
        for table in ("outputs", "scores", "methods"):
            conn.execute(f"UPDATE {table} SET method_key = 'another'")
    comparison = compare_fused(tmp_path / "one", tmp_path / "two")
    assert comparison.images["status"].tolist() == ["other version", "other version"]
    assert not comparison.agrees and comparison.compared == 0


def test_an_export_from_before_digests_reads_as_not_recorded(tmp_path, make_pairs) -> None:
    data = make_pairs(tmp_path / "data", 2)
    assert _run(data, tmp_path / "one", methods="average") == 0
    export = ReportData.load(tmp_path / "one").export(tmp_path / "old")
    outputs = pd.read_csv(export / "outputs.csv.gz")
    outputs.drop(columns=["fused_sha256", "method_key", "pair_sha256"]).to_csv(export / "outputs.csv.gz",
                                                                               index=False)
    comparison = compare_fused(export, tmp_path / "one")
    assert comparison.images["status"].tolist() == ["not recorded", "not recorded"]
    with pytest.raises(ValueError, match="no fused image .* matches"):
        compare_fused(export, tmp_path / "one", methods="nothing*")


def test_trouble_is_status_2_and_a_bad_csv_is_said_before_the_comparison(tmp_path, make_pairs, capsys) -> None:
    """Session 39's CLI audit: an unwritable ``--csv`` failed after a table saying all images were identical, with
    a bare errno line and status 1, which also means "images differ"."""
    data = make_pairs(tmp_path / "data", 1)
    assert _run(data, tmp_path / "one") == 0
    capsys.readouterr()
    (tmp_path / "blocker").write_text("a file where the CSV's folder should be")
    assert main(["compare-fused", str(tmp_path / "one"), str(tmp_path / "one"), "--csv",
                 str(tmp_path / "blocker" / "c.csv")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and f"--csv {tmp_path / 'blocker' / 'c.csv'}: cannot make its folder" in err
    assert main(["compare-fused", str(tmp_path / "one"), str(tmp_path / "none")]) == 2
    assert "fusionbench: error: " in capsys.readouterr().err
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.sqlite").write_bytes(b"not a database at all" * 100)  # a store it cannot read
    assert main(["compare-fused", str(tmp_path / "one"), str(tmp_path / "bad")]) == 2
    assert "fusionbench: error: " in capsys.readouterr().err
