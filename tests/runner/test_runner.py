"""The runner: scores every method, records failures, resumes without duplicates, survives bad input."""
from __future__ import annotations

from pathlib import Path

import pytest

import numpy as np
from PIL import Image

import fusionbench
from fusionbench.method_registry import METHODS, register_method
from fusionbench.runner import RunConfig, run

from _db import rows as _rows


def test_run_scores_every_method_and_resumes(tmp_path, make_pairs) -> None:
    data = make_pairs(tmp_path / "data", 3)
    cfg = RunConfig(methods=["average,maximum"], datasets=[f"folder:{data}"], metrics="EN,SD",
                    out=str(tmp_path / "out"), workers=0, quiet=True)
    first = run(cfg, log=lambda m: None)
    db = tmp_path / "out" / "results.sqlite"
    assert first.completed == 6 and first.failures == 0
    assert _rows(db, "SELECT COUNT(*) FROM scores") == [(12,)]
    assert _rows(db, "SELECT COUNT(*) FROM outputs") == [(6,)]
    second = run(cfg, log=lambda m: None)
    assert second.completed == 0 and second.skipped_done == 6
    assert _rows(db, "SELECT COUNT(*) FROM scores") == [(12,)]
    # the saved PNG is exactly what fusionbench.fuse returns
    path, = _rows(db, "SELECT path FROM outputs WHERE method='maximum' AND pair='p000'")[0]
    saved = np.asarray(Image.open(path))
    assert np.array_equal(saved, fusionbench.fuse("maximum", data / "a" / "p000.png", data / "b" / "p000.png"))
    # a new metric only scores, it never re-fuses, and keeps the fusing run's time and run id
    fused_by = _rows(db, "SELECT pair, method, seconds, run_id, path FROM outputs ORDER BY pair, method")
    assert all(seconds is not None and seconds >= 0 for _, _, seconds, _, _ in fused_by)
    cfg.metrics = "EN,SD,MI"
    third = run(cfg, log=lambda m: None)
    assert third.completed == 6
    assert _rows(db, "SELECT COUNT(*) FROM scores") == [(18,)]
    assert _rows(db, "SELECT pair, method, seconds, run_id, path FROM outputs ORDER BY pair, method") == fused_by
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "Maximum (`maximum`)" in summary and "EN ↑" in summary


def test_failing_methods_are_recorded_and_the_run_goes_on(tmp_path, make_pairs) -> None:
    @register_method("test_raises")
    def raises(a, b):
        raise RuntimeError("boom")

    @register_method("test_nan")
    def nan(a, b):
        return np.full_like(a, np.nan)

    @register_method("test_shape")
    def shape(a, b):
        return a[:-1]

    try:
        data = make_pairs(tmp_path / "data", 2)
        logs: list[str] = []
        summary = run(RunConfig(methods=["test_*,average"], datasets=[f"folder:{data}"], metrics="EN",
                                out=str(tmp_path / "out"), workers=0, quiet=True), log=logs.append)
        db = tmp_path / "out" / "results.sqlite"
        assert summary.failures == 6
        failures = _rows(db, "SELECT method, stage, error, message FROM failures ORDER BY method, pair")
        assert {f[0] for f in failures} == {"test_raises", "test_nan", "test_shape"}
        assert all(f[1] == "fuse" for f in failures)
        messages = " ".join(f[3] for f in failures)
        assert "boom" in messages and "NaN" in messages and "shape" in messages
        assert _rows(db, "SELECT COUNT(*) FROM scores WHERE method='average'") == [(2,)]
        assert any("FAILED test_raises on" in line for line in logs)
        # re-running retries the failures but never duplicates them
        run(RunConfig(methods=["test_*"], datasets=[f"folder:{data}"], metrics="EN",
                      out=str(tmp_path / "out"), workers=0, quiet=True), log=lambda m: None)
        assert _rows(db, "SELECT COUNT(*) FROM failures") == [(6,)]
    finally:
        for name in ("test_raises", "test_nan", "test_shape"):
            METHODS.remove(name)


def test_bad_inputs_get_one_line_each_and_the_rest_runs(tmp_path, make_pairs) -> None:
    data = make_pairs(tmp_path / "data", 2)
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(data / "a" / "size.png")      # size mismatch
    Image.fromarray(np.zeros((48, 48, 3), np.uint8)).save(data / "b" / "size.png")
    (data / "a" / "trunc.png").write_bytes((data / "a" / "p000.png").read_bytes()[:80])  # truncated
    Image.fromarray(np.zeros((48, 48, 3), np.uint8)).save(data / "b" / "trunc.png")
    Image.fromarray(np.zeros((48, 48), np.uint16) + 999).save(data / "a" / "deep.png")  # 16-bit
    Image.fromarray(np.zeros((48, 48, 3), np.uint8)).save(data / "b" / "deep.png")
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(data / "a" / "alpha.png")        # RGBA partner
    Image.fromarray(np.zeros((48, 48, 4), np.uint8)).save(data / "b" / "alpha.png")
    (data / "a" / "notes.txt").write_text("not an image")                                # non-image file
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(data / "a" / "lonely.png")       # missing partner
    for side in "ab":                                                                   # too small to score
        Image.fromarray(np.zeros((1, 1), np.uint8)).save(data / side / "tiny.png")
    logs: list[str] = []
    summary = run(RunConfig(methods=["average", "maximum"], datasets=[f"folder:{data}"], metrics="EN",
                            out=str(tmp_path / "out"), workers=0, quiet=True), log=logs.append)
    text = "\n".join(logs)
    assert "notes.txt: not an image file" in text
    assert "lonely.png: missing partner" in text
    assert "size.png: size 48x48 differs" in text
    assert "trunc.png: unreadable or truncated" in text
    assert "deep.png: 16-bit image" in text
    assert "alpha.png: image has an alpha channel" in text
    assert "tiny.png: size 1x1 is too small to score" in text  # was one FAILED line per metric and method
    # each bad file is named in one line, not once per method: the folder drops the pair before any method runs
    for name in ("notes.txt", "lonely.png", "size.png", "trunc.png", "deep.png", "alpha.png", "tiny.png"):
        assert sum(name in line for line in logs) == 1, name
    assert summary.completed == 4 and summary.failures == 0  # 2 methods x the 2 good pairs
    assert summary.input_failures == 7  # the final line counts them too (it used to say "0 failures")
    db = tmp_path / "out" / "results.sqlite"
    assert _rows(db, "SELECT COUNT(*) FROM scores") == [(4,)]
    inputs = _rows(db, "SELECT pair, error FROM failures WHERE method = '' ORDER BY pair")
    assert inputs == [("alpha", "InputError"), ("deep", "InputError"), ("lonely", "InputError"),
                      ("notes", "InputError"), ("size", "InputError"), ("tiny", "InputError"),
                      ("trunc", "InputError")]


def test_bad_files_sharing_a_stem_keep_a_failures_row_each(tmp_path, make_pairs) -> None:
    """``a/x.eps`` and ``b/x.eps`` (or a ``notes.txt`` in both sub-folders) were recorded under one key, the second
    replacing the first: the run said 3 failures, ``failures`` held 2 (the docs audit of session 32)."""
    from fusionbench.runner import input_failure_pairs

    data = make_pairs(tmp_path / "data", 2)
    for rel in ("a/x.eps", "b/x.eps", "a/notes.txt", "b/notes.txt", "a/once.txt"):
        (data / rel).write_bytes(b"not an image")
    summary = run(RunConfig(methods=["average"], datasets=[f"folder:{data}"], metrics="EN", out=str(tmp_path / "out"),
                            workers=0, quiet=True), log=lambda m: None)
    assert summary.input_failures == 5
    rows = _rows(tmp_path / "out" / "results.sqlite", "SELECT pair, message FROM failures WHERE method = '' ORDER BY pair")
    assert [pair for pair, _ in rows] == ["a/notes.txt", "a/x.eps", "b/notes.txt", "b/x.eps", "once"]
    assert all(pair.split("/")[-1] in message for pair, message in rows if "/" in pair)
    assert input_failure_pairs(["/d/a/x.png", "/d/a/x.png", "/e/a/x.png"]) == ["/d/a/x.png", "/d/a/x.png#2", "/e/a/x.png"]


def test_a_run_that_selects_nothing_says_so(tmp_path, make_pairs) -> None:
    """``--methods ''`` / ``--metrics ''`` used to run 0 tasks with no word (rc 0): now an error before any run
    row and before any folder (``OUT/`` and ``OUT/fused/`` were left empty); a dataset without pairs gets one
    line saying there is nothing to run on it, and a `skipped` row per method."""
    data = make_pairs(tmp_path / "data", 1)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"^--methods '' selects no method"):
        run(RunConfig(methods=[""], datasets=[f"folder:{data}"], out=str(out), workers=0, quiet=True), log=print)
    with pytest.raises(ValueError, match=r"^--metrics '' selects no metric"):
        run(RunConfig(methods=["average"], datasets=[f"folder:{data}"], metrics="", out=str(out), workers=0,
                      quiet=True), log=print)
    with pytest.raises(ValueError, match=r"^--methods '' selects no method"):
        run(RunConfig(methods=[""], datasets=[f"folder:{data}"], out=str(out), cache=str(tmp_path / "cache"),
                      workers=0, quiet=True), log=print)
    assert not out.exists() and not (tmp_path / "cache").exists()
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "b").mkdir()
    logs: list[str] = []
    summary = run(RunConfig(methods=["average"], datasets=[f"folder:{tmp_path / 'empty'}"], metrics="EN",
                            out=str(out), workers=0, quiet=True), log=logs.append)
    assert summary.planned == 0
    assert f"not run: average on folder:{tmp_path / 'empty'}: no image pairs" in logs
    # recorded in `skipped` like any (method, dataset) not run (session 37's audit: only the log line)
    assert _rows(out / "results.sqlite", "SELECT dataset, method, reason FROM skipped") == [
        (f"folder:{tmp_path / 'empty'}", "average", "no image pairs")]


def test_a_file_that_fails_only_when_decoded_is_a_failure_per_method(tmp_path, make_pairs) -> None:
    """A JPEG cut short passes the header check (PIL's ``verify`` does not read JPEG data): each method
    then fails on it in one line naming the file, and the other pairs run."""
    import io

    data = make_pairs(tmp_path / "data", 1)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)).save(buf, "JPEG")
    (data / "a" / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(data / "b" / "cut.png")
    logs: list[str] = []
    summary = run(RunConfig(methods=["average", "maximum"], datasets=[f"folder:{data}"], metrics="EN",
                            out=str(tmp_path / "out"), workers=0, quiet=True), log=logs.append)
    assert summary.completed == 4 and summary.failures == 2
    cut = [line for line in logs if "cut.jpg" in line]
    assert len(cut) == 2 and all(line.startswith("FAILED") and "truncated" in line for line in cut)


def test_an_unreadable_cached_fused_image_is_fused_again(tmp_path, make_pairs) -> None:
    """A truncated or zero-byte cached PNG (disk full, a killed copy) is logged once and replaced by fusing the
    pair again, instead of failing that (method, pair) in every later run."""
    data = make_pairs(tmp_path / "data", 3)
    cfg = RunConfig(methods=["average"], datasets=[f"folder:{data}"], metrics="EN", out=str(tmp_path / "out"),
                    workers=0, quiet=True)
    run(cfg, log=lambda m: None)
    db = tmp_path / "out" / "results.sqlite"
    paths = dict(_rows(db, "SELECT pair, path FROM outputs"))
    good = Path(paths["p000"]).read_bytes()
    Path(paths["p000"]).write_bytes(good[: len(good) // 2])
    Path(paths["p001"]).write_bytes(b"")
    cfg.metrics = "EN,SD"  # every pair is scored again from its cached image
    logs: list[str] = []
    summary = run(cfg, log=logs.append)
    assert summary.completed == 3 and summary.failures == 0, logs
    unreadable = [line for line in logs if line.startswith("cached fused image")]
    assert len(unreadable) == 2 and all("fusing the pair again" in line for line in unreadable), unreadable
    assert Path(paths["p000"]).read_bytes() == good and Path(paths["p001"]).stat().st_size > 0
    assert _rows(db, "SELECT COUNT(*) FROM scores") == [(6,)] and _rows(db, "SELECT COUNT(*) FROM failures") == [(0,)]


def test_local_pool_matches_inline(tmp_path, make_pairs) -> None:
    data = make_pairs(tmp_path / "data", 2)
    base = dict(methods=["dwt"], datasets=[f"folder:{data}"], metrics="EN,SD", quiet=True)
    run(RunConfig(out=str(tmp_path / "a"), workers=0, **base), log=lambda m: None)
    run(RunConfig(out=str(tmp_path / "b"), workers=2, **base), log=lambda m: None)
    q = "SELECT pair, metric, value FROM scores ORDER BY pair, metric"
    assert _rows(tmp_path / "a" / "results.sqlite", q) == _rows(tmp_path / "b" / "results.sqlite", q)


def test_timeout_is_a_failure(tmp_path, make_pairs) -> None:
    import time

    @register_method("test_sleepy")
    def sleepy(a, b):
        time.sleep(5)
        return a

    try:
        data = make_pairs(tmp_path / "data", 1)
        summary = run(RunConfig(methods=["test_sleepy"], datasets=[f"folder:{data}"], metrics="EN",
                                out=str(tmp_path / "out"), workers=0, quiet=True, timeout=0.5), log=lambda m: None)
        assert summary.failures == 1
        assert _rows(tmp_path / "out" / "results.sqlite", "SELECT error FROM failures") == [("PairTimeout",)]
    finally:
        METHODS.remove("test_sleepy")


def test_a_split_no_dataset_has_is_one_error_and_the_run_is_marked_failed(tmp_path, make_pairs, shared_dir) -> None:
    """``--split tset``: before, the run "finished" with 0 tasks and exit 0 (and a report then had nothing to
    show); now one error with the closest split, and the store's run row says it failed before any task."""
    import sqlite3

    data = make_pairs(tmp_path / "data", 2)
    with pytest.raises(ValueError, match=r"no dataset of the run has split 'tset' \(did you mean 'test'\?\); they "
                                         r"have: test"):
        run(RunConfig(methods=["average"], datasets=[f"folder:{data}"], split="tset", metrics="EN",
                      out=str(tmp_path / "out"), workers=0, quiet=True), log=lambda m: None)
    with sqlite3.connect(tmp_path / "out" / "results.sqlite") as conn:
        assert conn.execute("SELECT status FROM runs").fetchall() == [("failed before any task",)]
    with pytest.raises(ValueError, match=r"split 'TEST' \(did you mean 'test'\?\)"):  # session 37: case alone
        run(RunConfig(methods=["average"], datasets=[f"folder:{data}"], split="TEST", metrics="EN",
                      out=str(tmp_path / "out"), workers=0, quiet=True), log=lambda m: None)
    # a dataset that lacks the split beside one that has it: that dataset is skipped with a line, as before
    logs: list[str] = []
    summary = run(RunConfig(methods=["average"], datasets=[f"folder:{data}", "harvard-mri-pet"], split="paper20",
                            data_dir=str(shared_dir / "data"), metrics="EN", out=str(tmp_path / "out2"), workers=0,
                            quiet=True), log=logs.append)
    assert summary.completed > 0 and any("no split 'paper20'" in line for line in logs)


def test_summary_marks_a_mean_over_fewer_pairs(tmp_path, make_pairs) -> None:
    """A pair whose fused image is constant leaves CC undefined (NULL): the summary's CC mean is over the other
    pairs, marked † and listed with its n."""
    data = make_pairs(tmp_path / "data", 2)
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(data / "a" / "flat.png")
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(data / "b" / "flat.png")
    run(RunConfig(methods=["average"], datasets=[f"folder:{data}"], metrics="EN,CC", out=str(tmp_path / "out"),
                  workers=0, quiet=True), log=lambda m: None)
    text = (tmp_path / "out" / "summary.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| Average"))
    en, cc = row.split("|")[3].strip(), row.split("|")[4].strip()
    assert row.split("|")[2].strip() == "3" and not en.endswith("†") and cc.endswith("†")
    assert "† Mean over fewer than the 3 pairs scored" in text and "`average` CC: n = 2" in text



def test_summary_says_why_a_cell_has_no_value(tmp_path, make_pairs) -> None:
    """Every fused image constant: CC undefined on every pair (–, said so); a second method scored with EN only:
    its CC not scored (–, said so)."""
    data = make_pairs(tmp_path / "data", 2, colour=False)
    for side in "ab":
        for path in (data / side).glob("*.png"):
            Image.fromarray(np.full((48, 48), 9, np.uint8)).save(path)
    out = str(tmp_path / "out")
    run(RunConfig(methods=["average"], datasets=[f"folder:{data}"], metrics="EN,CC", out=out, workers=0,
                  quiet=True), log=lambda m: None)
    run(RunConfig(methods=["maximum"], datasets=[f"folder:{data}"], metrics="EN", out=out, workers=0, quiet=True),
        log=lambda m: None)
    from fusionbench.store import ResultsStore
    from fusionbench.summary import summary_table

    with ResultsStore(tmp_path / "out" / "results.sqlite") as store:
        text = summary_table(store, f"folder:{data}", ["EN", "CC"], ["average", "maximum"])
    assert "– No value, the metric is undefined on every pair: `average` CC." in text
    assert "– No value, not scored (not computed for this method, or its scoring failed): `maximum` CC." in text


def test_a_skip_for_another_split_is_not_current_beside_the_methods_scores(tmp_path, make_pairs) -> None:
    """Session 37's review: after a test-split run, a ``--split train`` run recorded ``average`` as skipped
    ("no split 'train'"), and the next report listed it as skipped beside its test scores."""
    from fusionbench.store import ResultsStore

    data = make_pairs(tmp_path / "data", 2)
    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    (empty / "b").mkdir()
    common = dict(methods=["average"], metrics="EN", out=str(tmp_path / "out"), workers=0, quiet=True)
    run(RunConfig(datasets=[f"folder:{data}"], **common), log=lambda m: None)
    with pytest.raises(ValueError, match="no dataset of the run has split 'train'"):
        run(RunConfig(datasets=[f"folder:{data}"], split="train", **common), log=lambda m: None)
    run(RunConfig(datasets=[f"folder:{data}", "builtin-mri-pet"], split="train", **common), log=lambda m: None)
    run(RunConfig(datasets=[f"folder:{empty}"], **common), log=lambda m: None)
    with ResultsStore.snapshot(tmp_path / "out" / "results.sqlite") as store:
        skipped = store.skipped_frame()
        recorded = _rows(tmp_path / "out" / "results.sqlite", "SELECT dataset, reason FROM skipped ORDER BY run_id")
    assert (f"folder:{data}", "no split 'train' (has: test)") in recorded  # recorded, as before
    # current only where the method has no scores on the dataset
    assert sorted(zip(skipped["dataset"], skipped["reason"])) == [
        ("builtin-mri-pet", "no image pairs in split 'train'"), (f"folder:{empty}", "no image pairs")]
