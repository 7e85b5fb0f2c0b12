"""A run records the weights each method used (the store's ``method_weights`` table), and a report built later
describes those, not the weights installed when it is built (session 35; before, the weights footnote and the
claims CSV always read the live registry and provenance files)."""
from __future__ import annotations

import json
import sqlite3

import pandas as pd

from fusionbench.report.provenance import NOT_RECORDED, NOT_RECORDED_ROW, weights_notes
from fusionbench.runner import RunConfig, run
from fusionbench.store import ResultsStore
from fusionbench.weights_provenance import OFFICIAL, recorded_weights, weights_record

ELSEWHERE = json.dumps({"note": "trained by someone, 3 steps", "trained_on": "ten CT slices",
                        "trained_for": ["MRI-CT"]})


def test_a_run_records_the_weights_each_method_used(tmp_path, make_pairs) -> None:
    data = make_pairs(tmp_path / "data", 2)
    run(RunConfig(methods=["mopa,average"], datasets=[f"folder:{data}"], metrics="EN", out=str(tmp_path / "out"),
                  workers=0, quiet=True), log=lambda m: None)
    with ResultsStore(tmp_path / "out" / "results.sqlite") as store:
        meta = store.method_metadata()
    mopa = recorded_weights(meta["mopa"])
    assert mopa == weights_record("mopa")
    assert mopa["note"].startswith("trained by fusionbench") and "methods/mopa/weights/" in mopa["note"]
    assert mopa["trained_for"] == ["MRI-PET", "MRI-SPECT"]
    assert recorded_weights(meta["average"]) == {"note": "", "trained_on": "", "trained_for": []}


def test_the_footnote_describes_the_recorded_weights_not_the_installed_ones() -> None:
    names = {"mopa": "Ours", "sdnet": "SDNet"}
    notes, sentence = weights_notes(["mopa", "sdnet"], names, task="IR-VIS", meta={"mopa": {"weights": ELSEWHERE}})
    assert notes["mopa"] == "trained by someone, 3 steps (trained for MRI-CT pairs, not IR-VIS); trained on ten CT slices"
    assert "Ours: trained by someone, 3 steps" in sentence and "Ours, trained for MRI-CT pairs" in sentence
    # SDNet's row recorded nothing: described from the registry, and the sentence says so for it alone
    assert notes["sdnet"].startswith(OFFICIAL) and notes["sdnet"].endswith(f"; {NOT_RECORDED_ROW}")  # a CSV value
    assert NOT_RECORDED_ROW not in notes["mopa"]
    assert sentence.endswith(f"The weights of SDNet are described {NOT_RECORDED}.")
    # every method recorded: nothing to own up to; no store at all (meta=None, a direct call): nor either
    _, recorded = weights_notes(["mopa"], names, task="IR-VIS", meta={"mopa": {"weights": ELSEWHERE}})
    assert NOT_RECORDED not in recorded
    assert NOT_RECORDED not in weights_notes(["sdnet"], names, task="MRI-PET")[1]
    assert weights_notes(["sdnet"], names, task="MRI-PET", meta={})[1].endswith(
        f"The weights are described {NOT_RECORDED}.")


def test_a_record_that_does_not_parse_is_read_as_none() -> None:
    for text in ("", "   ", "{", "[1]", json.dumps({"note": 3}), json.dumps({"note": "x", "trained_for": "MRI-CT"})):
        assert recorded_weights({"weights": text}) is None
    assert recorded_weights(None) is None and recorded_weights({}) is None
    assert recorded_weights({"weights": json.dumps({"note": "x"})}) == {"note": "x", "trained_on": "",
                                                                        "trained_for": []}


def test_an_older_store_gains_the_table_and_older_versions_still_write_it(tmp_path) -> None:
    """The record is a table of its own: fusionbench before session 35 inserts into ``methods`` by position (eight
    values), and still writes to a store this version has opened (a column added to ``methods`` broke that)."""
    db = tmp_path / "results.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE methods (method TEXT NOT NULL, method_key TEXT NOT NULL, display_name TEXT NOT NULL, "
                "family TEXT NOT NULL DEFAULT '', citation TEXT NOT NULL DEFAULT '', colour TEXT NOT NULL DEFAULT "
                "'', source TEXT NOT NULL DEFAULT '', run_id INTEGER, PRIMARY KEY (method, method_key))")
    con.execute("INSERT INTO methods VALUES ('mopa', 'k1', 'Ours', 'deep', '', '', 'builtin', 1)")
    con.commit()
    con.close()
    with ResultsStore.snapshot(db) as store:  # the report's read-only path migrates its in-memory copy
        assert store.method_metadata()["mopa"]["weights"] == ""
    with ResultsStore(db) as store:
        assert store.method_metadata()["mopa"]["weights"] == ""
        store.record_methods(2, [("mopa", "k2", {"display_name": "Ours", "weights": ELSEWHERE})])
        assert store.method_metadata()["mopa"]["weights"] == ELSEWHERE  # the latest run's row
    con = sqlite3.connect(db)  # an older fusionbench's write, as its record_methods makes it
    con.execute("INSERT OR REPLACE INTO methods VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                ("mopa", "k3", "Ours", "deep", "", "", "builtin", 3))
    con.commit()
    con.close()
    with ResultsStore(db) as store:  # its key is now current, and it recorded no weights
        assert store.current_keys()["mopa"] == "k3" and store.method_metadata()["mopa"]["weights"] == ""


def test_a_report_built_later_keeps_the_run_s_weights(tmp_path, make_pairs, monkeypatch) -> None:
    """The run's record survives the report's export (``methods.csv``) and is what the tables print, though the
    installed weights now read differently."""
    from fusionbench import weights_provenance
    from fusionbench.report.build import build_report
    from fusionbench.report.data import ReportData

    data = make_pairs(tmp_path / "data", 2)
    out = tmp_path / "out"
    config = RunConfig(methods=["mopa,average"], datasets=[f"folder:{data}"], metrics="EN", out=str(out), workers=0,
                       quiet=True)
    run(config, log=lambda m: None)
    assert run(config, log=lambda m: None).completed == 0  # run 2: nothing to do
    used = weights_record("mopa")["note"]
    monkeypatch.setattr(weights_provenance, "weights_note", lambda method, root=None: "retrained since")
    report = build_report(out / "results.sqlite", tmp_path / "report", metrics="EN", quiet=True, profile=False,
                          data_dir=tmp_path / "no-data")
    tables = [pd.read_csv(p) for p in sorted((report / "tables").glob("*.csv"))]
    notes = {note for t in tables if "weights" in t.columns for note in t.loc[t["method"] == "mopa", "weights"]}
    assert notes == {used}
    claims = pd.read_csv(report / "tables" / "claims.csv")
    assert set(claims["ours_weights"]) == {used}
    assert (f"Training state of the `mopa` weights used: {used} (as the run recorded them). The weights committed "
            "now: ") in (report / "tables" / "claims.md").read_text()
    exported = ReportData.load(report / "results")
    assert recorded_weights(exported.methods_meta["mopa"])["note"] == used
    # the report's README names the run that made the results, not the later one that had nothing to do
    assert "\nRun 1, commit" in (report / "README.md").read_text() and exported.last_run()["run_id"] == 1
    assert ReportData.load(out).last_run()["run_id"] == 1


def test_a_run_that_only_scores_is_the_run_behind_the_results(tmp_path, make_pairs) -> None:
    """A later run that scores a new metric from the cached images (its outputs keep the fusing run) made
    results: the report names it, from the store and from the export alike."""
    from fusionbench.report.data import ReportData

    data = make_pairs(tmp_path / "data", 2)
    base = dict(methods=["average"], datasets=[f"folder:{data}"], out=str(tmp_path / "out"), workers=0, quiet=True)
    run(RunConfig(metrics="EN", **base), log=lambda m: None)
    run(RunConfig(metrics="EN,SD", **base), log=lambda m: None)  # run 2: SD scored, nothing fused
    run(RunConfig(metrics="EN,SD", **base), log=lambda m: None)  # run 3: nothing to do
    loaded = ReportData.load(tmp_path / "out")
    assert loaded.last_run()["run_id"] == 2
    assert set(loaded.outputs["run_id"]) == {1}  # the outputs alone would have named run 1
    assert ReportData.load(loaded.export(tmp_path / "export")).last_run()["run_id"] == 2


def test_a_seed_variant_finds_the_provenance_beside_its_own_weights(tmp_path, monkeypatch) -> None:
    """Session 38's training audit (F2): the exported JSON of seed 1 says ``"method": "mopa.no_attention",
    "seed": 1``; the lookup compared ``method`` with the registered ``mopa.no_attention.seed1`` and never matched
    (the run recorded "no provenance file beside the weights"), and seed 0 took any seed's file of its preset."""
    from fusionbench.methods import mopa
    from fusionbench.weights_provenance import provenance_file

    trained = tmp_path / "trained"
    trained.mkdir()
    monkeypatch.setattr(mopa, "trained_dir", lambda: trained)
    for stem, seed, steps in (("no_attention.seed1", 1, 11), ("no_attention.seed2", 2, 12)):
        (trained / f"{stem}.json").write_text(json.dumps({"method": "mopa.no_attention", "seed": seed,
                                                          "schedule": {"steps": steps}}))
    for name, steps in (("mopa.no_attention.seed1", 11), ("mopa.no_attention.seed2", 12)):
        path, doc = provenance_file(name)
        assert doc["schedule"]["steps"] == steps and path.name == f"{name.split('.', 1)[1]}.json"
    if provenance_file("mopa.no_attention") is not None:  # seed 0: its own (committed) file, never seed 1's
        assert provenance_file("mopa.no_attention")[1].get("seed", 0) == 0


def test_methods_with_the_same_weights_note_are_named_together_once() -> None:
    """Table 4 may hold 27 models whose notes repeat: the sentence gives each note once, after the methods that
    have it, and official weights last (session 39; before, every method repeated its note)."""
    three = json.dumps({"note": "trained by someone, 3 steps", "trained_on": "", "trained_for": []})
    nine = json.dumps({"note": "trained by someone, 9 steps", "trained_on": "", "trained_for": []})
    meta = {"a": {"weights": three}, "b": {"weights": nine}, "c": {"weights": three},
            "sdnet": {"weights": json.dumps({"note": OFFICIAL, "trained_on": "", "trained_for": []})}}
    notes, sentence = weights_notes(["sdnet", "a", "b", "c"], {"a": "A", "b": "B", "c": "C"}, meta=meta)
    assert sentence == (f"Weights: A, C: trained by someone, 3 steps; B: trained by someone, 9 steps; sdnet: {OFFICIAL}.")
    assert notes == {"a": "trained by someone, 3 steps", "b": "trained by someone, 9 steps",
                     "c": "trained by someone, 3 steps", "sdnet": OFFICIAL}


def test_an_unknown_metric_names_the_plugins_the_runs_used(tmp_path, make_pairs, capsys) -> None:
    """Session 39's API audit: a report asking for the metric of a plugin no longer installed said only "unknown
    metric", though the store's runs record the plugin."""
    from fusionbench.cli import main

    data = make_pairs(tmp_path / "data", 2)
    run(RunConfig(methods=["average"], datasets=[f"folder:{data}"], metrics="EN", out=str(tmp_path / "out"),
                  workers=0, quiet=True), log=lambda m: None)
    with sqlite3.connect(tmp_path / "out" / "results.sqlite") as con:
        versions = json.loads(con.execute("SELECT versions FROM runs").fetchone()[0])
        con.execute("UPDATE runs SET versions = ?", (json.dumps({**versions, "plugin fakeplug": "0.3"}),))
    capsys.readouterr()
    assert main(["report", str(tmp_path / "out"), "--metrics", "EN,PLMG", "--no-bench", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "unknown metric 'PLMG'" in err and "the results' runs used plugin fakeplug 0.3" in err
