"""The report folder's README.md: the command that made the results, the run history, provenance, files."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd

from fusionbench import __version__

from .context import ReportContext
from .selection import Selection


def figure_notes(ctx: ReportContext, repo: str | Path) -> str:
    """Where this report was built from, and which fused images its figures had to re-make or leave out."""
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True)
    parts = [f"This report was built by fusionbench {__version__}"
             + (f" at commit `{sha.stdout.strip()}`" if sha.returncode == 0 and sha.stdout.strip() else "") + "."]
    if ctx.refused:
        parts.append("The run's fused-image cache was not available, so the figures' fused images of "
                     + ", ".join(f"`{m}`" for m in sorted(ctx.refused)) + " were re-made for the figure pairs only "
                     "with the methods as registered now.")
    if ctx.missing:
        parts.append("Left out of the figures: " + "; ".join(f"`{m}` ({why})" for m, why in sorted(ctx.missing.items()))
                     + ".")
    return " ".join(parts)


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
