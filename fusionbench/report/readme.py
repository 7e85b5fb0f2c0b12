"""The report folder's README.md: the command that made the results, the run history, provenance, files."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from fusionbench import __version__
from fusionbench.checkout import short_commit
from fusionbench.machine import cpu_words

from .context import ReportContext
from .provenance import json_dict
from .selection import Selection


def figure_notes(ctx: ReportContext) -> str:
    """Where this report was built from (fusionbench's version, and its commit where the code runs from a
    checkout: :func:`fusionbench.checkout.short_commit`, never the current folder's repository), and which fused
    images its figures had to re-make or leave out."""
    sha = short_commit()
    parts = [f"This report was built by fusionbench {__version__}" + (f" at commit `{sha}`" if sha else "") + "."]
    if ctx.refused:
        parts.append("The run's fused-image cache was not available, so the figures' fused images of "
                     + ", ".join(f"`{m}`" for m in sorted(ctx.refused)) + " were re-made for the figure pairs only "
                     "with the methods as registered now." + remade_note(ctx.remade))
    if ctx.missing:
        parts.append("Left out of the figures: " + "; ".join(f"`{m}` ({why})" for m, why in sorted(ctx.missing.items()))
                     + ".")
    return " ".join(parts)


#: what each status of :attr:`ReportContext.remade` says of a method's re-made figure images
_REMADE_WORDS = {
    "identical": "are pixel for pixel the images the run scored",
    "different": "differ from the images the run scored (another CPU or code made them; the figures do not show "
                 "the scored images)",
    "other version": "come from another version of the method than the run's",
    "not recorded": "cannot be checked (the run recorded no pixel digest; runs before session 31 did not)",
}


def remade_note(remade: dict[tuple[str, str, str], str]) -> str:
    """One sentence per status of the re-made figure images (``{(method, dataset, pair): status}``), checked
    against the pixel digests the run recorded; a method with images of several statuses is named under the
    worst (different, other version, not recorded, identical)."""
    worst: dict[str, str] = {}
    order = ("identical", "not recorded", "other version", "different")
    for (method, _, _), status in remade.items():
        if order.index(status) >= order.index(worst.get(method, "identical")):
            worst[method] = status
    sentences = []
    for status in reversed(order):
        named = sorted(m for m, s in worst.items() if s == status)
        if named:
            sentences.append(f" The re-made images of {', '.join(f'`{m}`' for m in named)} {_REMADE_WORDS[status]}.")
    return "".join(sentences)


def reproducibility_note(methods: list[str], families: dict[str, str], runs: pd.DataFrame) -> str:
    """Which of the report's ``methods`` give the same fused images on any CPU, and on which CPU the others' were
    made (``families``: method → registered family; ``runs``: the store's runs, ``machine`` as JSON).

    The ``deep`` family runs float32 networks (torch's oneDNN/MKL, numba kernels): their fused images can differ
    by one grey level on a few pixels from one CPU to another (docs/cpu_independence.md), so their numbers are
    reproducible bit for bit only on a CPU like the run's.  The other families' built-in methods gave the same
    images under every instruction set measured (stand-ins on one host, and the audit below); a plugin's method
    is not covered by that sentence, whatever its family.  An audit in session 30 re-made samples of the committed report on another CPU than
    the one that made it: 25 of its 30 methods reproduced every score (the deep ``sdnet``, ``swinfusion`` and
    ``u2fusion`` among them); ``cnn``, ``ifcnn``, ``matr``, ``mopa`` and ``mopa.v1`` moved per-pair scores by up to
    7e-4 relative, dataset means by up to 2e-5."""
    deep = [m for m in methods if families.get(m) == "deep"]
    if not deep:
        return ""
    named, unrecorded = set(), False
    for text in runs["machine"] if "machine" in runs else []:
        machine = json_dict(text)
        if machine.get("cpu_model"):
            named.add(cpu_words(machine))
        else:
            unrecorded = True
    if not named:
        where = ("the run's, whose model was not recorded (runs made before session 30 record the processor as "
                 "x86_64 only)")
    else:
        where = "the run's (" + "; ".join(sorted(named)) + ("; older runs: not recorded" if unrecorded else "") + ")"
    return ("Reproducing these numbers: " + ", ".join(f"`{m}`" for m in deep) + " are float32 networks whose fused "
            "images can differ by one grey level on a few pixels from one CPU to another (docs/cpu_independence.md), "
            "so their scores reproduce bit for bit only on a CPU like " + where + "; the built-in methods of the other "
            "families gave the same fused images, hence the same scores, under every instruction set measured "
            "(AVX-512, AVX2, SSE4 on one host, and a re-run of the committed report on another CPU).")


def readme_text(run: dict, out: Path, written: list[Path], sel: Selection, runs: pd.DataFrame, time_label: str,
                notes: str = "") -> str:
    """The report folder's ``README.md``: the command and run behind the results, the main-table methods, the
    Table 5 time label, ``notes``, how to rebuild, and the files written under ``out``."""
    files = sorted({str(p.relative_to(out)) for p in written if p.is_relative_to(out)})
    cmd = run.get("command", "(unknown)")
    machine = run.get("machine", {})
    versions = run.get("versions", {})
    all_runs = runs[["command", "status"]].to_dict("records") if not runs.empty and "command" in runs else []
    history = ""
    if len(all_runs) > 1:
        history = ("Every invocation recorded in the results (a run resumes the previous ones; finished "
                   "(method, pair) units are skipped):\n\n" + "".join(
                       f"{i}. `{r['command']}` — {r['status']}\n" for i, r in enumerate(all_runs, 1)) + "\n")
    return ("# fusionbench report\n\n"
            f"Results made by:\n\n```bash\n{cmd}\n```\n\n" + history +
            f"Run {run.get('run_id')}, commit `{run.get('git_sha') or 'unknown'}`, machine "
            f"`{json.dumps(machine)}`, versions `{json.dumps(versions)}`.\n\n"
            f"Methods in the main tables: {sel.note}: {', '.join(f'`{m}`' for m in sel.main)}"
            + (f" (highlighted: `{sel.highlight}`)" if sel.highlight else "") + ".\n\n"
            f"Table 5 {time_label}.\n\n"
            + (notes + "\n\n" if notes else "") +
            "The results are in `results/` (current rows only, gzip CSV); `fusionbench report DIR` rebuilds this "
            "folder from them, and `fusionbench report DIR --out FULL --full` writes a full-resolution copy "
            "(200 dpi figures with PDF twins, embedded in a single-file page).\n\n"
            "Open `index.html` for everything on one page. Files:\n\n" + "".join(f"- `{f}`\n" for f in files))
