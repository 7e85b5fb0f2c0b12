"""Table 4 over training seeds: mean ± sd over seeds, per-component verdicts (Wilcoxon + Holm + every seed)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fusionbench.report.ablation import (LEAVE_ONE_OUT, ablation_display, ablation_table, component_display,
                                         component_table, seed_groups)
from fusionbench.report.selection import ablation_flags, select
from fusionbench.report.stats import holm
from fusionbench.train.spec import seed_variant, split_seed

METRICS = ["AG", "EN", "CE"]  # CE: lower is better
N_PAIRS = 20
VARIANTS = ["mopa", *LEAVE_ONE_OUT.values()]


def _scores(effects: dict[str, list[float]], seeds=(0, 1, 2), seed_noise: float = 0.05, rng_seed: int = 0,
            drop: dict[str, int] | None = None) -> pd.DataFrame:
    """Synthetic per-pair scores: ``value = pair base + seed offset + effect[variant][seed] + noise``.

    ``effects[variant][seed]`` is added to every pair of that model for AG and EN and subtracted for CE
    (so a positive number always makes the model better); the full model has 0.
    """
    rng = np.random.default_rng(rng_seed)
    base = {m: rng.normal(5.0, 1.0, N_PAIRS) for m in METRICS}
    rows = []
    for variant in VARIANTS:
        for seed in seeds:
            method = seed_variant(variant, seed)
            offset = rng.normal(0, seed_noise)
            shift = effects.get(variant, [0.0] * 3)[seed]
            for metric in METRICS:
                sign = -1.0 if metric == "CE" else 1.0
                values = base[metric] + offset + sign * shift + rng.normal(0, 0.3, N_PAIRS)
                for i, v in enumerate(values[: N_PAIRS - (drop or {}).get(method, 0)]):
                    rows.append({"dataset": "harvard-mri-pet" if i < 10 else "harvard-mri-spect",
                                 "pair": f"p{i:02d}", "method": method, "metric": metric, "value": float(v)})
    return pd.DataFrame(rows)


# the full model minus: no_mask is 1 worse (mask helps), no_contrast 1 better (contrast hurts),
# no_attention the same (no effect), no_decouple worse in two seeds and better in the third.
PLANTED = {"mopa.no_mask": [-1.0, -1.0, -1.0], "mopa.no_contrast": [1.0, 1.0, 1.0],
           "mopa.no_decouple": [-1.0, -1.0, 0.6]}


def _verdicts(table: pd.DataFrame) -> dict[tuple[str, str], str]:
    return {(r.component, r.metric): r.verdict for r in table.itertuples()}


def test_seed_names_round_trip():
    assert seed_variant("mopa.no_mask", 0) == "mopa.no_mask" and seed_variant("mopa", 2) == "mopa.seed2"
    assert split_seed("mopa.no_mask.seed12") == ("mopa.no_mask", 12)
    assert split_seed("mopa.no_mask") == ("mopa.no_mask", 0)
    assert split_seed("mopa.seedling") == ("mopa.seedling", 0)
    with pytest.raises(ValueError):
        seed_variant("mopa", -1)
    groups = seed_groups(["mopa", "mopa.seed2", "mopa.no_mask.seed1", "dwt"],
                         ["mopa", "mopa.no_mask", "mopa.no_contrast"])
    assert groups == {"mopa": {0: "mopa", 2: "mopa.seed2"}, "mopa.no_mask": {1: "mopa.no_mask.seed1"},
                      "mopa.no_contrast": {}}


def test_planted_effects_get_their_verdicts_and_holm_is_applied():
    scores = _scores(PLANTED)
    table = component_table(scores, METRICS)
    v = _verdicts(table)
    for metric in METRICS:  # CE is lower-better: the planted effects were mirrored, the verdicts must not be
        assert v[("mask", metric)] == "helps"
        assert v[("contrast", metric)] == "hurts"
        assert v[("attention", metric)] == "no evidence"
        assert v[("decouple", metric)] == "no evidence"  # significant on the seed average, but seed 2 disagrees
    dec = table[table["component"] == "decouple"]
    assert (dec["p_holm"] < 0.05).all() and set(dec["all_seeds"]) == {"no (2/3)"}
    assert set(table[table["component"] == "mask"]["all_seeds"]) == {"yes (3/3)"}
    assert (table["n_seeds"] == 3).all() and (table["n_pairs"] == N_PAIRS).all() and len(table) == 4 * len(METRICS)
    np.testing.assert_allclose(table["p_holm"], holm(table["p"].to_numpy()))
    mask_ag = table[(table["component"] == "mask") & (table["metric"] == "AG")].iloc[0]
    assert mask_ag["mean_diff"] == pytest.approx(1.0, abs=0.3) and mask_ag["rank_biserial"] == 1.0
    dec_ag = table[(table["component"] == "decouple") & (table["metric"] == "AG")].iloc[0]
    signs = [d[0] for d in dec_ag["seed_diffs"].split()]
    assert signs == ["+", "+", "-"]  # seeds 0 and 1: the full model 1 better; seed 2: 0.6 worse
    shown = component_display(table)
    assert shown["p"].map(lambda s: isinstance(s, str)).all()


def test_holm_turns_a_nominal_p_into_no_evidence():
    """A weak effect: p < 0.05 for that test alone, but not after Holm over the 12 tests."""
    weak = {"mopa.no_attention": [-0.12, -0.12, -0.12]}
    found = None
    for rng_seed in range(40):
        table = component_table(_scores(weak, rng_seed=rng_seed), METRICS)
        rows = table[(table["component"] == "attention") & (table["p"] < 0.05) & (table["p_holm"] >= 0.05)]
        if len(rows):
            found = (table, rows.iloc[0])
            break
    assert found is not None, "no synthetic frame with a nominal-only effect (test set-up)"
    table, row = found
    assert row["verdict"] == "no evidence" and row["all_seeds"] == "yes (3/3)"


def test_one_seed_still_works_and_never_claims_all_seeds():
    scores = _scores(PLANTED, seeds=(0,))
    table = component_table(scores, METRICS)
    assert (table["n_seeds"] == 1).all() and set(table["all_seeds"]) == {"n/a (1 seed)"}
    v = _verdicts(table)
    assert v[("mask", "AG")] == "helps" and v[("contrast", "CE")] == "hurts" and v[("attention", "EN")] == "no evidence"
    flags = {m: ablation_flags(m) for m in VARIANTS}
    t4 = ablation_table(scores, flags, METRICS)
    assert list(t4["Seeds"]) == [1] * 5 and set(t4.attrs["spread"].values()) == {"pairs"}
    sub = scores[(scores["method"] == "mopa.no_mask") & (scores["metric"] == "AG")]["value"]
    row = t4.iloc[VARIANTS.index("mopa.no_mask")]
    assert row["AG"] == pytest.approx(sub.mean()) and row["AG std"] == pytest.approx(sub.std(ddof=1))


def test_table4_is_mean_and_sd_over_seeds_of_per_pair_means():
    scores = _scores(PLANTED, drop={"mopa.no_mask.seed1": 3})  # one model scored on fewer pairs
    flags = {m: ablation_flags(m) for m in VARIANTS}
    table = ablation_table(scores, flags, METRICS, names={m: m for m in VARIANTS})
    assert list(table["Variant"]) == VARIANTS and list(table["Seeds"]) == [3] * 5
    for variant in VARIANTS:
        for metric in METRICS:
            per_seed = [scores[(scores["method"] == seed_variant(variant, s)) & (scores["metric"] == metric)]["value"]
                        .mean() for s in (0, 1, 2)]
            row = table.iloc[VARIANTS.index(variant)]
            assert row[metric] == pytest.approx(np.mean(per_seed))
            assert row[f"{metric} std"] == pytest.approx(np.std(per_seed, ddof=1))
            assert table.attrs["seed_means"][(variant, metric)] == pytest.approx(per_seed)
    assert table.attrs["n_pairs"]["mopa.no_mask"] == N_PAIRS - 3 and table.attrs["n_seeds"]["mopa"] == 3
    cell = ablation_display(table).iloc[0]["AG"]
    assert " ± " in cell
    # pairs missing in one seed are left out of that component's paired test (complete pairs only)
    comp = component_table(scores, METRICS)
    assert set(comp[comp["component"] == "mask"]["n_pairs"]) == {N_PAIRS - 3}


def test_missing_variants_and_pair_subset():
    scores = _scores(PLANTED)
    only = scores[~scores["method"].str.startswith("mopa.no_attention")]
    table = component_table(only, METRICS, pairs=[("harvard-mri-pet", f"p{i:02d}") for i in range(10)])
    assert "attention" not in set(table["component"]) and (table["n_pairs"] == 10).all()
    assert component_table(scores[scores["method"].str.startswith("mopa.no")], METRICS).empty  # no full model


def test_selection_folds_seed_variants_into_their_preset():
    run = ["dwt", "mopa", "mopa.seed1", "mopa.seed2", "mopa.no_mask.seed1", "mopa.no_mask.seed2", "mopa.width4"]
    sel = select(run)
    assert sel.ablations[-1] == "mopa" and "mopa.no_mask" in sel.ablations
    assert not any(split_seed(m)[1] for m in sel.main + sel.others + sel.ablations)


def test_fig10_bars_with_seed_points(tmp_path):
    from fusionbench.report.figures import ablation_bars

    scores = _scores(PLANTED)
    table = ablation_table(scores, {m: ablation_flags(m) for m in VARIANTS}, METRICS)
    ci = {(m, k): (table.iloc[i][k] - table.iloc[i][f"{k} std"], table.iloc[i][k] + table.iloc[i][f"{k} std"])
          for i, m in enumerate(VARIANTS) for k in METRICS}
    written = ablation_bars(table, METRICS, tmp_path / "bars", ci, title="t", points=table.attrs["seed_means"])
    assert any(p.suffix == ".png" and p.stat().st_size > 1000 for p in written)


def test_report_builds_table4_over_seeds_and_the_verdicts(tmp_path):
    """The report's ablation section end to end, from a results folder holding three seeds per preset."""
    from fusionbench.report.build import build_report

    results = tmp_path / "results"
    results.mkdir()
    scores = _scores(PLANTED)
    scores.to_csv(results / "scores.csv.gz", index=False)
    outputs = scores[["dataset", "pair", "method"]].drop_duplicates().assign(path="", seconds=0.01)
    outputs.to_csv(results / "outputs.csv.gz", index=False)
    out = build_report(results, tmp_path / "report", metrics="AG,EN", quiet=True, profile=False)
    table4 = (out / "tables" / "table4_ablation.md").read_text()
    assert "sd over training seeds" in table4 and "| Seeds |" in table4 and " ± " in table4
    rows = table4.split("**\n\n", 1)[1]  # the table below its caption (whose weights sentence names every model)
    assert ".seed1" not in rows and "seed 1" not in rows  # seed models are folded into their preset's row
    assert "Ablation presets (own table): " in (page := (out / "index.html").read_text()) and \
        "<code>mopa.no_mask</code>" in page.split("Ablation presets (own table): ")[1].split("</p>")[0]
    comp = pd.read_csv(out / "tables" / "table4_components.csv")
    v = _verdicts(comp)
    assert v[("mask", "AG")] == "helps" and v[("contrast", "EN")] == "hurts" and v[("attention", "AG")] == "no evidence"
    assert (comp["n_seeds"] == 3).all() and (out / "figures" / "ablation_bars.png").is_file()
    assert "Does each component help?" in (out / "index.html").read_text()


def test_full_network_presets_are_not_ablation_presets():
    """mopa.v1 (an older full network) and mopa.width4 have every component on: they are other methods, not Table 4
    rows; only mopa.*_only and mopa.no_* are ablation presets (with mopa as the full model)."""
    from fusionbench.report.selection import is_ablation_preset

    sel = select(["dwt", "mopa", "mopa.v1", "mopa.width4", "mopa.no_mask.seed1"])
    assert sel.ablations == ["mopa.no_mask", "mopa"]
    assert "mopa.v1" in sel.others and "mopa.width4" in sel.others
    assert is_ablation_preset("mopa.mask_only") and is_ablation_preset("mopa.no_decouple.seed2")
    assert not is_ablation_preset("mopa.v1") and not is_ablation_preset("mopa")


def test_table4_is_left_out_with_a_note_naming_the_missing_presets(tmp_path):
    """Results with mopa, mopa.v1 and one ablation preset: no Table 4 (fewer than two ablation presets), and the
    page, README and claims row name each Table 4 preset without results, with a reason."""
    from fusionbench.report.build import build_report

    results = tmp_path / "results"
    results.mkdir()
    scores = _scores(PLANTED, seeds=(0,))
    scores = scores[scores["method"].isin(["mopa", "mopa.no_mask"])]
    scores = pd.concat([scores, scores[scores["method"] == "mopa"].assign(method="mopa.v1")], ignore_index=True)
    scores.to_csv(results / "scores.csv.gz", index=False)
    outputs = scores[["dataset", "pair", "method"]].drop_duplicates().assign(path="", seconds=0.01)
    outputs.to_csv(results / "outputs.csv.gz", index=False)
    out = build_report(results, tmp_path / "report", metrics="AG,EN", quiet=True, profile=False)
    assert not (out / "tables" / "table4_ablation.md").exists() and not (out / "figures" / "ablation_bars.png").exists()
    page, readme = (out / "index.html").read_text(), (out / "README.md").read_text()
    claims = pd.read_csv(out / "tables" / "claims.csv").set_index("claim")
    row = claims.filter(like="Table 4", axis=0).iloc[0]
    assert "Ablation presets (own table): none (Table 4 left out" in page  # not mopa, the full model
    for text in (page, readme, row["measured"]):
        assert "Table 4 and Figs. 10-11 left out" in text and "only mopa.no_mask has results" in text
        for preset in ("mopa.mask_only", "mopa.attention_only", "mopa.no_attention", "mopa.no_decouple"):
            assert preset in text
    assert row["verdict"].startswith("not comparable: no results for mopa.mask_only")
    # read alone, the CSV still says which weights "Ours" was measured with (the Markdown says it in its header)
    assert claims["ours_weights"].nunique() == 1 and claims["ours_weights"].iloc[0].startswith("trained by fusionbench")
    assert "Ours (v1)" in (out / "tables" / "harvard-mri-pet_others.md").read_text()  # an other method now


def test_table4_names_the_weights_and_schedule_of_each_row(tmp_path):
    """Table 4 sets models side by side that may come from very different schedules (the committed 552-step
    ``mopa`` beside ablations trained for a few steps): its caption (md, tex, HTML) says which weights each row's
    models are, and the CSV gives them per row. A results folder records no weights, so they are described as
    installed now, and the caption says so."""
    from fusionbench.report.build import build_report
    from fusionbench.report.data import display_name
    from fusionbench.weights_provenance import weights_note

    results = tmp_path / "results"
    results.mkdir()
    scores = _scores(PLANTED, seeds=(0, 1))
    scores.to_csv(results / "scores.csv.gz", index=False)
    outputs = scores[["dataset", "pair", "method"]].drop_duplicates().assign(path="", seconds=0.01)
    outputs.to_csv(results / "outputs.csv.gz", index=False)
    out = build_report(results, tmp_path / "report", metrics="AG,EN", quiet=True, profile=False)
    full = weights_note("mopa")
    assert full.startswith("trained by fusionbench")
    for name in ("table4_ablation.md", "table4_ablation.tex"):
        text = (out / "tables" / name).read_text()
        assert "Weights: " in text and "as installed when this report was built" in text, name
    md = (out / "tables" / "table4_ablation.md").read_text()
    assert full in md and "mopa.no_mask.seed1" not in md.split("Weights: ")[0]
    page = (out / "index.html").read_text().split("Table 4 style ablation")[1].split("</p>")[0]
    assert "Weights: " in page
    csv = pd.read_csv(out / "tables" / "table4_ablation.csv")
    assert "weights" in csv.columns
    row = dict(zip(csv["Variant"], csv["weights"]))
    full_row = row[display_name("mopa")]
    assert full_row.startswith(f"seed 0: {full}") and "seed 1: " in full_row


def _report_of(tmp_path, scores):
    from fusionbench.report.build import build_report

    results = tmp_path / "results"
    results.mkdir()
    scores.to_csv(results / "scores.csv.gz", index=False)
    outputs = scores[["dataset", "pair", "method"]].drop_duplicates().assign(path="", seconds=0.01)
    outputs.to_csv(results / "outputs.csv.gz", index=False)
    return build_report(results, tmp_path / "report", metrics="AG,EN", quiet=True, profile=False)


def test_a_lone_ablation_preset_is_shown_in_the_other_methods_tables(tmp_path):
    """Session 38's training audit: a run of one ablation preset (``--methods dwt,mopa.no_mask``) had no Table 4
    (it needs two presets) and its results were in no table either, without a word. Without Table 4 the presets'
    results, seeds included, are other methods of the run, and the Table 4 note says where they are."""
    scores = _scores(PLANTED, seeds=(0, 1))
    scores = scores[scores["method"].isin(["mopa.no_mask", "mopa.no_mask.seed1"])]
    scores = pd.concat([scores, scores[scores["method"] == "mopa.no_mask"].assign(method="dwt")], ignore_index=True)
    out = _report_of(tmp_path, scores)
    others = (out / "tables" / "harvard-mri-pet_others.md").read_text()
    assert "Ours (no mask) |" in others and "Ours (no mask) [seed 1] |" in others
    page = (out / "index.html").read_text()
    assert "only mopa.no_mask has results in this run" in page
    assert "its results are in the other-methods tables" in page


def test_seed_models_of_table4_rows_are_no_other_methods(tmp_path):
    """With Table 4 written, the seed models folded into its rows are not listed again as other methods."""
    out = _report_of(tmp_path, _scores(PLANTED, seeds=(0, 1)))
    assert (out / "tables" / "table4_ablation.md").is_file()
    others = out / "tables" / "harvard-mri-pet_others.md"
    assert not others.exists() or "seed 1" not in others.read_text()
