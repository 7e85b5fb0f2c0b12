"""Input files someone else made: a header that claims a huge image, a FIFO named like an image, a folder whose
path holds ": " (found by an untrusted-input audit, session 31).  Each is one line naming the file; the run goes
on with the rest."""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fusionbench.io import ImageError, check_pair_files, image_size, load_image

from _db import rows as _rows


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A valid PNG signature and IHDR claiming ``width``×``height`` grey, with one tiny IDAT: a few hundred bytes
    whose decoded image would be huge (PNG's compression makes such files real: a blank 12000² image is 140 kB)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def test_a_header_over_pillows_own_limit_is_one_error_naming_the_file(tmp_path) -> None:
    bomb = _png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    for read in (load_image, image_size):
        with pytest.raises(ImageError, match=r"bomb\.png: image too large to read"):
            read(bomb)


def test_an_image_over_the_pixel_limit_is_refused_from_its_header(tmp_path, monkeypatch) -> None:
    big = _png_header_only(tmp_path / "big.png", 6000, 6000)  # 36 M pixels: under Pillow's limit, over ours
    monkeypatch.delenv("FUSIONBENCH_MAX_PIXELS", raising=False)
    with pytest.raises(ImageError, match=r"big\.png: size 6000x6000 \(36,000,000 pixels\) is over the "
                                         r"25,000,000-pixel limit; set \$FUSIONBENCH_MAX_PIXELS"):
        image_size(big)
    monkeypatch.setenv("FUSIONBENCH_MAX_PIXELS", "40_000_000")
    assert image_size(big) == (6000, 6000)
    monkeypatch.setenv("FUSIONBENCH_MAX_PIXELS", "0")  # no limit
    assert image_size(big) == (6000, 6000)
    monkeypatch.setenv("FUSIONBENCH_MAX_PIXELS", "100")
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((10, 11), np.uint8)).save(small)
    with pytest.raises(ImageError, match="size 11x10 .* over the 100-pixel limit"):
        load_image(small)
    monkeypatch.setenv("FUSIONBENCH_MAX_PIXELS", "many")
    with pytest.raises(ValueError, match=r"\$FUSIONBENCH_MAX_PIXELS must be a whole number"):
        load_image(small)


def test_a_run_names_the_huge_pair_and_fuses_the_others(tmp_path, make_pairs, capsys) -> None:
    from fusionbench.cli import main

    data = make_pairs(tmp_path / "data", 2, colour=False)
    _png_header_only(data / "a" / "p009.png", 100_000, 100_000)
    _png_header_only(data / "b" / "p009.png", 100_000, 100_000)
    _png_header_only(data / "a" / "p010.png", 6000, 6000)
    _png_header_only(data / "b" / "p010.png", 6000, 6000)
    out = tmp_path / "out"
    assert main(["run", "--methods", "average", "--datasets", f"folder:{data}", "--metrics", "EN", "--out", str(out),
                 "--workers", "0", "--quiet", "--no-report"]) == 0
    err = capsys.readouterr().err
    assert f"{data / 'a' / 'p009.png'}: image too large to read" in err
    assert f"{data / 'a' / 'p010.png'}: size 6000x6000" in err
    db = out / "results.sqlite"
    assert _rows(db, "SELECT COUNT(*) FROM outputs") == [(2,)]
    assert sorted(_rows(db, "SELECT pair, error FROM failures")) == [("p009", "InputError"), ("p010", "InputError")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_named_like_an_image_is_not_opened_and_not_called_missing(tmp_path) -> None:
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match=r"x\.png: is not a regular file \(a FIFO, device or socket\)"):
        load_image(fifo)
    with pytest.raises(ImageError, match="not a regular file"):
        check_pair_files(fifo, fifo)


def test_a_folder_whose_path_holds_a_colon_and_space_records_the_right_pair(tmp_path, make_pairs) -> None:
    """The runner took the pair id from the problem line's text before its first ": ", here inside the folder's
    path: the failure was recorded under a wrong pair."""
    from fusionbench.cli import main

    data = make_pairs(tmp_path / "run: one", 2, colour=False)
    (data / "a" / "p001.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    assert main(["run", "--methods", "average", "--datasets", f"folder:{data}", "--metrics", "EN", "--out", str(out),
                 "--workers", "0", "--quiet", "--no-report"]) == 0
    assert _rows(out / "results.sqlite", "SELECT pair, error FROM failures") == [("p001", "InputError")]


# --------------------------------------------------------------------------- stores and names from others
def _run_two(data, out, methods: str = "average,maximum") -> None:
    from fusionbench.cli import main

    assert main(["run", "--methods", methods, "--datasets", f"folder:{data}", "--metrics", "EN",
                 "--out", str(out), "--workers", "0", "--quiet", "--no-report"]) == 0


def test_export_fused_writes_nothing_outside_dest_nor_copies_files_the_store_names(tmp_path, make_pairs,
                                                                                   capsys) -> None:
    """A received store named method ``../../x``, a pair ``../../y``, a dataset ``..`` and, as an image, any file of
    this machine: export-fused wrote outside DEST and published the file (an untrusted-input audit)."""
    import sqlite3

    from fusionbench.cli import main

    data, out = make_pairs(tmp_path / "data", 3, colour=False), tmp_path / "out"
    _run_two(data, out)
    secret = tmp_path / "private" / "scan.png"
    secret.parent.mkdir()
    Image.fromarray(np.full((8, 8), 7, np.uint8)).save(secret)
    with sqlite3.connect(out / "results.sqlite") as conn:
        conn.execute("UPDATE outputs SET path = ? WHERE method = 'maximum' AND pair = 'p000'", (str(secret),))
        conn.execute("UPDATE outputs SET pair = '../../../escaped' WHERE method = 'average' AND pair = 'p001'")
        conn.execute("UPDATE scores SET pair = '../../../escaped' WHERE method = 'average' AND pair = 'p001'")
    dest = tmp_path / "deep" / "release"
    assert main(["export-fused", str(out), str(dest)]) == 1
    err = capsys.readouterr().err
    assert f"the store names {secret} as its image, which is not a fused-image cache file" in err
    assert "'../../../escaped.png' cannot be a folder or file name" in err
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png")
                     if not p.is_relative_to(data) and not p.is_relative_to(out) and p != secret)
    assert written and all(p.startswith("deep/release/") for p in written)
    assert len(written) == 4  # the six images less the two refused
    assert not any(np.array_equal(load_image(tmp_path / p), load_image(secret)) for p in written
                   if load_image(tmp_path / p).shape == (8, 8))


def test_dataset_file_stems_are_one_short_file_name_whatever_the_name() -> None:
    from fusionbench.data.base import STEM_BYTES, dataset_file_stem, pair_file_name

    assert dataset_file_stem("harvard-mri-pet") == "harvard-mri-pet"  # registered names unchanged
    assert dataset_file_stem("folder:/x/my data") == dataset_file_stem("folder:/x/my data")
    assert dataset_file_stem("folder:/x/my data").startswith("folder_my data-")  # as before: spaces are fine
    for name in ("..", ".", "a\nb", "q}\x00", "folder:/x/" + "d" * 250, "é" * 200):
        stem = dataset_file_stem(name)
        assert stem not in (".", "..") and "/" not in stem and "\n" not in stem and "\x00" not in stem
        assert len(stem.encode()) <= STEM_BYTES
    assert dataset_file_stem("folder:/x/" + "d" * 250) != dataset_file_stem("folder:/y/" + "d" * 250)
    long = pair_file_name("grid", "folder_x-12345678", "p" * 251)
    assert len(long.encode()) <= 240 and long != pair_file_name("grid", "folder_x-12345678", "p" * 250 + "q")
    assert pair_file_name("grid", "tno", "7") == "grid_tno_7"


def test_a_latex_label_holds_no_tex_from_a_dataset_name() -> None:
    from fusionbench.report.tables import latex_label

    label = latex_label("tab:q}^^5cinput{^^2fetc^^2fpasswd}^^5cdef^^5cx{")
    assert set(label) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:._-")
    assert latex_label("tab:harvard-mri-pet") == "tab:harvard-mri-pet"


def test_the_report_page_escapes_method_names() -> None:
    from types import SimpleNamespace

    from fusionbench.report.build import _selection_html

    sel = SimpleNamespace(main=['<script>alert("m")</script>'], ablations=[], others=[], highlight=None,
                          note="main")
    page = _selection_html(sel, {}, table4_written=False)
    assert "<script>" not in page and "&lt;script&gt;" in page


@pytest.mark.parametrize("name", ["../../escaped", "a/b", "two words", "line\nbreak", "<script>", ".hidden", "-x", "+x"])
def test_a_registered_name_is_one_plain_word(name) -> None:
    from fusionbench.method_registry import register_method

    with pytest.raises(ValueError, match="names must be non-empty|use letters, digits and _ . \\+ - only"):
        register_method(name)(lambda a, b: a)


def test_plain_names_still_register() -> None:
    from fusionbench.method_registry import METHODS, register_method

    for name in ("my_rule.v2-fast+x", "règle", "_private_toy"):
        register_method(name)(lambda a, b: a)
        METHODS.remove(name)


def test_a_store_with_a_trigger_is_not_written_but_still_read(tmp_path, make_pairs) -> None:
    """A trigger in a received store ran on this machine's later writes (it set every new score to 999)."""
    import sqlite3

    from fusionbench.report.data import ReportData
    from fusionbench.store import ResultsStore, StoreError

    data, out = make_pairs(tmp_path / "data", 1, colour=False), tmp_path / "out"
    _run_two(data, out)
    db = out / "results.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TRIGGER rewrite AFTER INSERT ON scores BEGIN UPDATE scores SET value = 999; END")
    with pytest.raises(StoreError, match=r"holds 1 trigger\(s\) fusionbench does not create \('rewrite'\).*"
                                         r"remove them in sqlite3: DROP TRIGGER \"rewrite\";"):
        ResultsStore(db)
    assert len(ReportData.load(out).scores) == 2  # reading fires nothing
    with sqlite3.connect(db) as conn:
        conn.execute('DROP TRIGGER "rewrite"')
    ResultsStore(db).close()


def test_a_display_name_with_dollar_signs_is_drawn_as_text(tmp_path, make_pairs) -> None:
    """matplotlib read ``$...$`` as mathtext: a name it could not parse stopped the whole report."""
    import sqlite3

    from fusionbench.report.build import build_report

    data, out = make_pairs(tmp_path / "data", 3, colour=False), tmp_path / "out"
    _run_two(data, out, "average,maximum,dwt")  # three methods: the critical-difference diagram draws the names
    with sqlite3.connect(out / "results.sqlite") as conn:
        conn.execute("UPDATE methods SET display_name = 'Mine $\\nosuchcommand{x}$' WHERE method = 'maximum'")
    build_report(out, tmp_path / "report", metrics="EN", quiet=True, log=lambda m: None, profile=False)
    assert list((tmp_path / "report" / "figures").glob("cd_*.png"))  # the diagrams that draw the names
    assert "Mine $\\nosuchcommand{x}$" in (tmp_path / "report" / "index.html").read_text()


def test_an_error_whose_text_starts_with_a_newline_still_says_something(capsys) -> None:
    from types import SimpleNamespace

    from fusionbench.cli import _error_status

    assert _error_status(ValueError("\nParseException: Expected end of text"), SimpleNamespace(debug=False)) == 1
    assert capsys.readouterr().err.splitlines()[0] == "fusionbench: error: ParseException: Expected end of text"


def test_a_report_draws_no_file_a_store_names_outside_the_cache_layout(tmp_path, make_pairs, monkeypatch) -> None:
    """The figures used any existing file a store named as a method's image (``/home/you/scans/x.png``)."""
    monkeypatch.setenv("FUSIONBENCH_HOME", str(tmp_path / "home"))  # where the report re-makes images
    from types import SimpleNamespace

    from fusionbench.data import create_dataset
    from fusionbench.fused_cache import in_cache_layout
    from fusionbench.report.data import ReportData
    from fusionbench.report.sections import fused_figures

    data, out = make_pairs(tmp_path / "data", 1, colour=False), tmp_path / "out"
    _run_two(data, out)
    report = ReportData.load(out)
    cached = report.outputs.loc[report.outputs["method"] == "maximum", "path"].iloc[0]
    assert in_cache_layout(cached, "maximum") and not in_cache_layout(cached, "average")
    secret = tmp_path / "private" / "scan.png"
    secret.parent.mkdir()
    Image.fromarray(np.full((48, 48), 7, np.uint8)).save(secret)
    report.outputs.loc[report.outputs["method"] == "maximum", "path"] = str(secret)
    ctx = SimpleNamespace(data=report, refused=set(), remade={}, missing={}, log=lambda *a: None)
    dataset = report.outputs["dataset"].iloc[0]
    pair = create_dataset(dataset).pairs[0]
    assert fused_figures.fused_output(ctx, dataset, pair, "average") == Path(
        report.outputs.loc[report.outputs["method"] == "average", "path"].iloc[0])  # the run's own cache file
    shown = fused_figures.fused_output(ctx, dataset, pair, "maximum")
    assert shown != secret and not np.array_equal(load_image(shown), load_image(secret))  # re-made instead


def test_markdown_tables_keep_their_rows_whatever_the_names() -> None:
    import pandas as pd

    from fusionbench.report.tables import frame_to_markdown
    from fusionbench.summary import markdown_text

    name = "<img src=x onerror=alert(1)>|x|\n# Heading"
    assert markdown_text(name, cell=True) == "&lt;img src=x onerror=alert(1)>\\|x\\| # Heading"
    table = frame_to_markdown(pd.DataFrame({"method": [name, "plain"], "EN": [1.0, 2.0]}))
    rows = table.splitlines()
    import re

    assert len(rows) == 4  # header, rule, two rows: one line each
    assert all(len(re.findall(r"(?<!\\)\|", r)) == 3 for r in rows)  # two cells each: unescaped bars
    assert "<img" not in table


def test_the_cache_layout_check_accepts_every_layout_the_runner_writes(tmp_path) -> None:
    from fusionbench.fused_cache import cache_file, in_cache_layout

    sha = "ab" * 32
    for key in ("0138ca22f092a3ef", "results-" + "c" * 24):  # a registered method's key; a results folder's
        path = cache_file(tmp_path / "any cache", "m", key, sha)
        assert in_cache_layout(path, "m") and in_cache_layout(path, "m", key, sha)
        assert not in_cache_layout(path, "other") and not in_cache_layout(path, "m", "0" * 16)
    assert in_cache_layout(cache_file(tmp_path, "m", "0" * 16, ""), "m", None, "")  # a pair built without a digest
    for bad in (tmp_path / "private" / "scan.png", tmp_path / "m" / "KEY" / f"{sha}.png",
                tmp_path / "m" / ("0" * 16) / f"{sha}.jpg", tmp_path / "m" / "results-zz" / f"{sha}.png"):
        assert not in_cache_layout(bad, "m")


def test_a_results_folder_method_is_exported_again(tmp_path, make_pairs, capsys) -> None:
    """A ``NAME=results:PATH`` method's images are cached under a ``results-<hex>`` key: export-fused copies them."""
    from fusionbench.cli import main

    data, out = make_pairs(tmp_path / "data", 2, colour=False), tmp_path / "out"
    _run_two(data, out)
    assert main(["export-fused", str(out), str(tmp_path / "first")]) == 0
    assert main(["run", "--methods", f"theirs=results:{tmp_path / 'first' / 'average'}", "--datasets",
                 f"folder:{data}", "--metrics", "EN", "--out", str(out), "--workers", "0", "--quiet",
                 "--no-report"]) == 0
    capsys.readouterr()
    assert main(["export-fused", str(out), str(tmp_path / "second"), "--methods", "theirs"]) == 0, capsys.readouterr()
    assert len(list((tmp_path / "second" / "theirs").rglob("*.png"))) == 2


def test_results_folders_exported_in_sessions_28_to_30_are_still_found() -> None:
    """A long folder name is cut in a stem now; the uncut stem an earlier export-fused wrote is still looked for."""
    import hashlib

    from fusionbench.data.base import dataset_file_stem, legacy_dataset_file_stems

    name = "folder:/x/" + "d" * 150
    old = "folder_" + "d" * 150 + "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    assert dataset_file_stem(name) != old and old in legacy_dataset_file_stems(name)
