"""The comparison table as one standalone HTML page: a leaderboard sortable by clicking a column
header, then the legend, notes, metric and test signatures and the provenance of the runs.

Nothing is loaded from elsewhere (no CDN, no external CSS or JS): the style and a ~20-line
sorting script are inline, so the page works offline and can be attached to a report. Measured
rows sort; reported rows stay in their own section below. Hand-written: a page this small does
not justify a templating dependency.
"""
from __future__ import annotations

import json
from html import escape

from uarbench.compare.cells import ci_text, footer_lines, row_label, seeds_text, value_text
from uarbench.compare.table import ComparisonTable, RowInfo

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table.lb { border-collapse: collapse; }
table.lb th, table.lb td { padding: 4px 8px; border-bottom: 1px solid #ddd; white-space: nowrap; }
table.lb th { cursor: pointer; background: #f4f4f4; position: sticky; top: 0; }
table.lb th[data-dir=asc]::after { content: " \\25B2"; }
table.lb th[data-dir=desc]::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ci { color: #777; font-size: 85%; }
tr.baseline { font-weight: bold; }
tbody.reported td { color: #555; font-style: italic; }
code, pre { font-size: 12px; white-space: pre-wrap; word-break: break-all; }
"""

# Sort the first tbody by the clicked column: numeric data-v where present, missing ("—") last.
SCRIPT = """
document.querySelectorAll("table.lb thead th").forEach(function (th, i) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0];
    var asc = th.dataset.dir !== "asc";
    th.closest("tr").querySelectorAll("th").forEach(function (h) { delete h.dataset.dir; });
    th.dataset.dir = asc ? "asc" : "desc";
    function key(tr) {
      var v = tr.cells[i].dataset.v;
      if (v === undefined || v === "") return null;
      return isNaN(Number(v)) ? v.toLowerCase() : Number(v);
    }
    Array.prototype.slice.call(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b);
      if (x === null) return y === null ? 0 : 1;
      if (y === null) return -1;
      return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
    }).forEach(function (tr) { body.appendChild(tr); });
  });
});
"""


def _row_html(table: ComparisonTable, r: RowInfo, digits: int) -> str:
    cls = ' class="baseline"' if r.name == table.baseline else ""
    tds = [f'<td data-v="{escape(r.name)}">{escape(row_label(table, r))}</td>',
           f'<td class="num" data-v="{len(r.seeds) if r.kind == "measured" else ""}">'
           f"{escape(seeds_text(r))}</td>",
           f'<td data-v="{escape(r.source)}">{escape(r.source)}</td>']
    for c in table.columns:
        cell = table.cell(r.name, c.key)
        v = "" if cell.mean is None else repr(cell.mean)
        title = cell.missing or (f"p = {cell.p_value:.4g}, Holm {cell.p_holm:.4g}"
                                 if cell.p_holm is not None else "")
        ci = ci_text(cell, digits) if cell.mean is not None else ""
        tds.append(f'<td class="num" data-v="{v}" title="{escape(title)}">'
                   f"{escape(value_text(cell, digits) + cell.marker)}"
                   f'{f" <span class=ci>{escape(ci)}</span>" if ci else ""}</td>')
    return f"<tr{cls}>" + "".join(tds) + "</tr>"


def to_html(table: ComparisonTable, *, digits: int = 4) -> str:
    title = f"uarbench compare: suite {table.suite} on {table.dataset}"
    head = "".join(f"<th>{escape(h)}</th>" for h in
                   ["row", "seeds", "source"] + [c.header for c in table.columns])
    measured = [_row_html(table, r, digits) for r in table.rows if r.kind == "measured"]
    reported = [_row_html(table, r, digits) for r in table.rows if r.kind == "reported"]
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{escape(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
             f"<h1>{escape(title)}</h1>",
             f"<p>Baseline: <b>{escape(str(table.baseline))}</b>. Click a column header to "
             "sort.</p>", '<table class="lb">', f"<thead><tr>{head}</tr></thead>",
             "<tbody>", *measured, "</tbody>"]
    if reported:
        parts += ['<tbody class="reported">', *reported, "</tbody>"]
    parts.append("</table>")
    for section, lines in footer_lines(table).items():
        if section == "Provenance":
            continue
        code = "signatures" in section
        parts.append(f"<h2>{escape(section)}</h2><ul>")
        parts += [f"<li>{'<code>' if code else ''}{escape(x)}{'</code>' if code else ''}</li>"
                  for x in lines]
        parts.append("</ul>")
    parts += ["<h2>Provenance</h2>",
              f"<pre>{escape(json.dumps(table.provenance, indent=2, ensure_ascii=False))}</pre>",
              f"<script>{SCRIPT}</script>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"
