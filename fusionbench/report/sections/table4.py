"""Table 4 style: the ablation presets over training seeds, the per-component verdicts, Figs. 10–11."""
from __future__ import annotations

import pandas as pd

from fusionbench.summary import markdown_text

from .. import ablation as ablationmod, figures, html as htmlmod
from ..context import ReportContext, write_file
from ..cost import paper_pairs_words
from ..provenance import weights_notes
from ..stats import group_bootstrap_ci
from ..tables import ablation_table, ablation_to_latex, frame_to_markdown
from .fused_figures import fused_output


def row_weights(seed_methods: dict[int, str], notes: dict[str, str]) -> str:
    """The CSV's ``weights`` cell of one Table 4 row: ``seed 0: <note>; seed 1: <note>`` over the row's models
    (``""`` for a model without learned weights)."""
    return "; ".join(f"seed {seed}: {notes.get(m, '')}" for seed, m in seed_methods.items())


def ablation_section(ctx: ReportContext, variants: dict[str, dict[str, bool]], metrics: list[str],
                     pairs20: list[tuple[str, str]]) -> tuple[tuple[str, str], pd.DataFrame]:
    """Table 4 over training seeds and the per-component verdicts (:mod:`fusionbench.report.ablation`)."""
    data, out, names = ctx.data, ctx.out, ctx.names
    present = {(d, str(p)) for d, p in zip(data.scores["dataset"], data.scores["pair"])}
    pairs = [k for k in pairs20 if k in present] or None
    seeds = ablationmod.seed_groups(data.scores["method"].unique(), variants)
    table = ablation_table(data.scores, variants, metrics, pairs, names, seeds=seeds)
    # the pairs counted, as Table 5's label (until session 28 it named all 20 whenever any of them was scored)
    over = (paper_pairs_words(set(pairs), pairs20) if pairs
            else "every scored pair (the paper's 20 pairs are not in this run)")
    n, k = table.attrs["n_pairs"], table.attrs["n_seeds"]
    multi = [m for m in variants if k[m] >= 2]
    spread = ("± is the sd over training seeds of the per-seed means (rows with Seeds ≥ 2)" if multi else "")
    if len(multi) < len(variants):
        spread += ("; " if spread else "") + "± is the sd over pairs where Seeds = 1 (one trained model: no seed spread)"
    caption = (f"Table 4 style ablation: per variant the mean over {over} of each trained model (seed), then the "
               f"mean over its seeds; {spread}. Pairs: " + ", ".join(f"{names[m]} {n[m]}" for m in variants) + ".")
    # the rows may set side by side models of very different schedules (a committed full model beside ablations
    # trained for a few steps): say which weights each row's models are (until session 39 Table 4 did not)
    weights, weights_line = weights_notes([m for v in variants for m in seeds[v].values()], names,
                                          meta=data.methods_meta)
    caption += f" {weights_line}" if weights_line else ""
    md = ablationmod.ablation_display(table)
    csv = table.assign(weights=[row_weights(seeds[v], weights) for v in variants])
    ctx.written += [write_file(out / "tables" / "table4_ablation.md", f"**{markdown_text(caption)}**\n\n" + frame_to_markdown(md)),
                     write_file(out / "tables" / "table4_ablation.tex", ablation_to_latex(table, caption)),
                     write_file(out / "tables" / "table4_ablation.csv", csv.to_csv(index=False))]
    df = data.scores[data.scores["method"].isin(variants) & data.scores["metric"].isin(metrics)]
    if pairs:
        keys = set(pairs)
        df = df[[(d, str(p)) in keys for d, p in zip(df["dataset"], df["pair"])]]
    ci = {(m, metric): group_bootstrap_ci(part["value"].to_numpy(), None)
          for (m, metric), part in df.groupby(["method", "metric"]) if k.get(m, 0) < 2}
    for m in multi:  # several seeds: the bar's interval is mean ± sd over seeds
        row = table.iloc[list(variants).index(m)]
        ci.update({(m, metric): (row[metric] - row[f"{metric} std"], row[metric] + row[f"{metric} std"])
                   for metric in metrics})
    bars = ("± sd over training seeds with each seed's mean as a dot where a variant has several seeds, "
            "95 % bootstrap CIs over pairs where it has one" if multi else
            "95 % bootstrap CIs (over pairs; one training seed per variant, so no seed spread)")
    ctx.written += figures.ablation_bars(table, metrics, out / "figures" / "ablation_bars", ci,
                                          title="Fig. 10 style: ablation means",
                                          points=table.attrs["seed_means"] if multi else None,
                                          bars=("± sd over seeds (dots: each seed), 95 % CI over pairs for one seed"
                                                if multi else "95 % bootstrap CI over pairs"))
    means = table.set_index(pd.Index(list(variants)))[metrics]
    body = [htmlmod.table_html(md), f'<p class="foot">{htmlmod.html.escape(caption)}</p>',
            ctx.img(out / "figures" / "ablation_bars.png",
                     f"Fig. 10 style: mean of each metric per ablation variant over {over}, with {bars}, and the "
                     "value on each bar. Each panel's y axis spans the values and does not start at 0.")]
    verdicts = ablationmod.component_table(data.scores, metrics, pairs, seeds=seeds)
    if not verdicts.empty:
        n_seeds = sorted(set(verdicts["n_seeds"]))
        vcap = (f"Per component: full model (mopa) minus the model without it (mopa.no_<component>) over {over}, "
                "each pair's value averaged over the seeds both have (n_seeds "
                + "/".join(map(str, n_seeds)) + "); two-sided Wilcoxon signed-rank over pairs, Holm-corrected over "
                f"the {len(verdicts)} component × metric tests; seed_diffs: each seed's mean difference; all_seeds: "
                "whether every seed's own difference has the same sign (with 3 seeds a weak guard: a component "
                "without effect passes it with probability 1/4). Verdict: helps / hurts (full model better / worse in the metric's direction) when "
                "p_holm < 0.05 and, with two or more seeds, every seed agrees; otherwise no evidence"
                + (". With one seed a verdict cannot separate the component from the training seed." if 1 in n_seeds
                   else "."))
        shown = ablationmod.component_display(verdicts)
        ctx.written += [write_file(out / "tables" / "table4_components.md", f"**{markdown_text(vcap)}**\n\n" + frame_to_markdown(shown)),
                         write_file(out / "tables" / "table4_components.csv", verdicts.to_csv(index=False))]
        body += ["<h3>Does each component help?</h3>", htmlmod.table_html(shown),
                 f'<p class="foot">{htmlmod.html.escape(vcap)}</p>']
    rows = []
    for dataset, (title, pair, task) in ctx.figure_pairs.items():
        outputs = {m: p for m in variants if (p := fused_output(ctx, dataset, pair, m)) is not None}
        if len(outputs) > 1:
            rows.append((f"{title}\npair {pair.id}", pair.a_path, pair.b_path, task, outputs))
    if rows:
        stem = out / "figures" / "ablation_outputs"
        ctx.written += figures.ablation_outputs(rows, "Fig. 11 style: outputs of the ablation variants", stem,
                                                 names)
        body.append(ctx.img(stem.with_suffix(".png"),
                             "Fig. 11 style: per row one pair (dataset and pair id at the left): the two sources "
                             "and each ablation variant's fused image."))
    return ("Table 4 style: ablation", "".join(body)), means
