"""``index.html``: one self-contained static page (no server, no CDN).

Tables are plain HTML with a few lines of inline JavaScript that sort a column
on a click; figures are linked from ``figures/`` by relative path (a light
page; ``embed=True``, used by ``fusionbench report --full``, embeds them as
base64 PNG for a single-file page); the run's provenance (command, versions,
commit, machine) is printed at the top.  Nothing is loaded from a server.
"""
from __future__ import annotations

import base64
import html
import json
import urllib.parse
from pathlib import Path

import numpy as np
import pandas as pd

from .tables import format_number

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
th,td{border-bottom:1px solid #ccc;padding:3px 8px;text-align:right}
th{cursor:pointer;background:#f3f3f3;position:sticky;top:0}
td:first-child,th:first-child{text-align:left}
td.best{font-weight:bold} td.second{text-decoration:underline}
tr.hl td{background:#fff6d5} td.worse{color:#a00} td.better{color:#070}
.foot{font-size:12px;color:#555;max-width:1100px}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
pre{background:#f7f7f7;padding:.6em;font-size:12px;white-space:pre-wrap}
"""

_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function(th){
  th.addEventListener('click',function(){
    var table=th.closest('table'),body=table.tBodies[0],idx=Array.prototype.indexOf.call(th.parentNode.children,th);
    var asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
    var rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){
      var x=a.cells[idx].dataset.v||a.cells[idx].textContent,y=b.cells[idx].dataset.v||b.cells[idx].textContent;
      var fx=parseFloat(x),fy=parseFloat(y);
      if(!isNaN(fx)&&!isNaN(fy)){return asc?fx-fy:fy-fx;}
      return asc?x.localeCompare(y):y.localeCompare(x);});
    rows.forEach(function(r){body.appendChild(r);});});});
"""


def table_html(frame: pd.DataFrame, classes: dict[tuple[int, str], str] | None = None, digits: int = 4,
               table_id: str = "", highlight_rows: set[int] | None = None,
               column_digits: dict[str, int] | None = None) -> str:
    """A sortable HTML table; ``classes[(row, column)]`` adds a CSS class (best/second); ``highlight_rows``
    marks rows (the method under study).  Numbers get ``digits`` decimals (``column_digits`` per column where
    given), by :func:`fusionbench.report.tables.format_number`, as in the Markdown and LaTeX tables."""
    classes = classes or {}
    column_digits = column_digits or {}
    highlight_rows = highlight_rows or set()
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for i, (_, row) in enumerate(frame.iterrows()):
        cells = []
        for col in frame.columns:
            value = row[col]
            cls = classes.get((i, col), "")
            if isinstance(value, (float, np.floating)):
                text = format_number(value, column_digits.get(col, digits))
                sort = "" if not np.isfinite(value) else f' data-v="{value!r}"'
            else:
                text, sort = str(value), ""
            cells.append(f'<td class="{cls}"{sort}>{html.escape(text)}</td>')
        body.append(('<tr class="hl">' if i in highlight_rows else "<tr>") + "".join(cells) + "</tr>")
    ident = f' id="{html.escape(table_id)}"' if table_id else ""
    return f'<table class="sortable"{ident}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def image_html(path: Path, caption: str, root: Path | None = None, embed: bool = False) -> str:
    """A figure with its caption: ``<img>`` linking ``path`` relative to ``root`` (the page's folder), or
    embedded as base64 with ``embed``."""
    if embed or root is None:
        src = "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()
    else:
        # a URL, not a path: a pair id's '#', '?' or '%' in a figure's file name broke the link
        src = html.escape(urllib.parse.quote(Path(path).relative_to(root).as_posix()))
    return (f'<figure><img alt="{html.escape(caption)}" loading="lazy" src="{src}">'
            f'<figcaption>{html.escape(caption)}</figcaption></figure>')


def page(title: str, provenance: dict, sections: list[tuple[str, ...]]) -> str:
    """The whole document: ``sections`` are (heading, html body) or (heading, html body, element id)."""
    prov = html.escape(json.dumps(provenance, indent=1, default=str))
    ids = [s[2] if len(s) > 2 else f"s{i}" for i, s in enumerate(sections)]
    toc = "".join(f'<li><a href="#{ident}">{html.escape(s[0])}</a></li>' for ident, s in zip(ids, sections))
    body = "".join(f'<section id="{ident}"><h2>{html.escape(s[0])}</h2>{s[1]}</section>'
                   for ident, s in zip(ids, sections))
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<details><summary>Provenance (command, versions, commit, machine)</summary><pre>{prov}</pre></details><ul>{toc}</ul>{body}"
            f"<script>{_SCRIPT}</script></body></html>")
