"""The founding paper against this run: its claims with verdicts, and its published tables beside ours."""
from __future__ import annotations

import pandas as pd

from fusionbench.summary import markdown_text

from .. import claims as claimsmod, html as htmlmod, paper
from ..context import ReportContext, write_file
from ..data import dataset_task
from ..provenance import NOT_RECORDED_ROW, provenance_line, weights_notes, weights_records
from ..tables import frame_to_markdown


def claims_section(ctx: ReportContext, claims: pd.DataFrame) -> tuple[str, str, str]:
    """``(title, html, anchor)``: the claims table with verdicts and the training state of the weights used."""
    state = claimsmod.training_state()
    records, unrecorded = weights_records(["mopa"], ctx.data.methods_meta)
    used_note = str(records["mopa"]["note"])
    if unrecorded or not used_note:
        state += (" These are the weights committed now; the scores come from the weights the run used: a run "
                  "after a weights change re-fuses `mopa` (its method key includes the weights) and the report "
                  "then reads only those rows.")
    else:  # what the run recorded first, then the committed weights' own record
        state = f"{used_note} (as the run recorded them). The weights committed now: {state}"
    md = ("# The founding paper's claims against this run\n\n"
          f"Training state of the `mopa` weights used: {state}\n\n" + frame_to_markdown(claims))
    # the CSV is read without the Markdown's header: each row carries the weights "Ours" was measured with
    if used_note and unrecorded:  # the CSV is read alone: it says so itself
        used_note += f"; {NOT_RECORDED_ROW}"
    csv = claims.assign(ours_weights=used_note or "no weights registered for mopa")
    ctx.written += [write_file(ctx.out / "tables" / "claims.md", md),
                     write_file(ctx.out / "tables" / "claims.csv", csv.to_csv(index=False))]
    classes = {(i, "verdict"): ("better" if v == "holds" else "worse" if v == "does not hold" else "")
               for i, v in enumerate(claims["verdict"])}
    counts = claims["verdict"].map(lambda v: v.split(":")[0]).value_counts().to_dict()
    summary = ", ".join(f"{k}: {v}" for k, v in counts.items())
    return ("Claims check", f"<p><b>Training state of the <code>mopa</code> weights used:</b> "
            f"{htmlmod.html.escape(state)}</p><p>{len(claims)} claims; {htmlmod.html.escape(summary)}.</p>"
            + htmlmod.table_html(claims, classes, table_id="claims-table"), "claims")


def beside_section(ctx: ReportContext) -> tuple[str, str]:
    """``(title, html)``: the paper's Tables 1–3 beside this run's means (``tables/paper_vs_ours_*``).

    Each table's footnote says how our columns were made, as the run's own tables do: the number of pairs
    averaged, where the learned weights come from, and the runs, commits and machine behind the outputs.
    """
    frames = {key: paper.beside_table(ctx.data.scores, key) for key in paper.PAPER_TABLES}
    note = paper.note(ctx.split, list(frames.values()))  # the run's split; the SD range of these tables
    beside_html = [f'<p class="foot">{htmlmod.html.escape(note)}</p>']
    for key, frame in frames.items():
        title, dataset, _ = paper.PAPER_TABLES[key]
        foot = _ours_footnote(ctx, dataset)
        ctx.written += [write_file(ctx.out / "tables" / f"paper_vs_ours_{key}.md",
                                markdown_text(f"**{title} — paper beside our mean over {dataset} ({ctx.split_of(dataset)})**")
                                + "\n\n" + frame_to_markdown(frame)
                                + f"\n<sub>{markdown_text(f'{note} {foot}')}</sub>\n"),
                         write_file(ctx.out / "tables" / f"paper_vs_ours_{key}.csv", frame.to_csv(index=False))]
        beside_html.append(f"<h3>{htmlmod.html.escape(title)}</h3>" + htmlmod.table_html(frame)
                           + f'<p class="foot">{htmlmod.html.escape(foot)}</p>')
    return ("The paper beside us", "".join(beside_html))


def _ours_footnote(ctx: ReportContext, dataset: str) -> str:
    """How the "ours" columns of one beside-table were made: pairs, weights, runs, commits, machine, split."""
    scores = ctx.data.scores[ctx.data.scores["dataset"] == dataset]
    methods = [m for m in paper.PAPER_METHODS.values() if m in set(scores["method"])]
    if not methods:
        return f"Ours: no method of the paper was scored on {dataset} in this run."
    pairs = int(scores[scores["method"].isin(methods)]["pair"].nunique())
    outputs = ctx.data.outputs
    if not outputs.empty:
        outputs = outputs[outputs["dataset"] == dataset]
    _, weights = weights_notes(methods, ctx.names, task=dataset_task(dataset), meta=ctx.data.methods_meta)
    parts = [f"Ours: mean over {pairs} pairs of {dataset} ({ctx.split_of(dataset)} split), scored as in this run's "
             f"{dataset} table.", weights, provenance_line(outputs, ctx.data.runs, methods, ctx.names)]
    return " ".join(p for p in parts if p)
