"""Render a `Report` as one self-contained HTML page: inline CSS, figures as base64 PNG, no script.

The page opens from disk in any browser with no server and fetches nothing.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from fexprune import runs
from fexprune.report.tables import Figure, KeyValues, Report, Table, Text

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 68rem;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } .subtitle { color: #666; margin-top: 0; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; margin-top: 2.2rem; }
table { border-collapse: collapse; margin: 0.6rem 0 0.3rem; font-size: 0.84rem; max-width: 100%; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.4rem; text-align: right; }
/* Lines break between words only, never inside one ("distinctiveness" stays whole), and no hyphens are
   added; a word longer than its column (a path) breaks at the column's edge (break-word, unlike
   anywhere, leaves the column at least a word wide), and a table wider than the page scrolls. */
th, td, dd { overflow-wrap: break-word; word-break: normal; hyphens: manual; }
th { font-weight: 600; white-space: normal; vertical-align: bottom; }
td { white-space: normal; } /* a wide table (the sweep's 14 columns) wraps "mean ± sd" rather than widen the page */
.table-wrap { overflow-x: auto; max-width: 100%; }
th { background: #f3f3f3; } td.key, th.key { text-align: left; }
td.paper { color: #555; background: #fafafa; } td.difference { font-style: italic; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: 0.3rem; }
.note { color: #555; font-size: 0.88rem; margin-top: 0.1rem; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.9rem; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.15rem 1rem; font-size: 0.92rem; }
dt { font-weight: 600; } dd { margin: 0; min-width: 0; }
nav ul { columns: 2; font-size: 0.92rem; }
"""


def render_html(report: Report) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(report.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_e(report.title)}</h1>",
    ]
    if report.subtitle:
        parts.append(f'<p class="subtitle">{_e(report.subtitle)}</p>')
    parts.append("<nav><ul>")
    parts += [f'<li><a href="#s{i}">{_e(s.title)}</a></li>' for i, s in enumerate(report.sections)]
    parts.append("</ul></nav>")
    for i, section in enumerate(report.sections):
        parts.append(f'<section id="s{i}"><h2>{_e(section.title)}</h2>')
        for block in section.blocks:
            parts.append(_block(block))
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(path: Path, report: Report) -> Path:
    runs.atomic_write_bytes(Path(path), runs.printable(render_html(report)).encode("utf-8"))  # non-UTF-8 file names escaped
    return Path(path)


def _block(block) -> str:
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        return _figure(block)
    if isinstance(block, KeyValues):
        items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in block.items)
        return f"<h3>{_e(block.title)}</h3><dl>{items}</dl>"
    if isinstance(block, Text):
        return "".join(f"<p>{_e(paragraph)}</p>" for paragraph in block.body.split("\n\n"))
    raise TypeError(f"cannot render {type(block).__name__}")


def _table(table: Table) -> str:
    head = "".join(f'<th class="{c.kind}">{_e(c.label)}</th>' for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f'<td class="{c.kind}">{_e(cell).replace(" pp", "&nbsp;pp")}</td>' for c, cell in zip(table.columns, row)) + "</tr>"
        for row in table.cells()
    )
    note = f'<p class="note">{_e(table.note)}</p>' if table.note else ""
    return (f'<div class="table-wrap"><table><caption>{_e(table.title)}</caption><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>{note}")


def _figure(figure: Figure) -> str:
    path = Path(figure.path)
    if not path.is_file():
        return f'<p class="note">{_e(figure.title)}: figure missing ({_e(str(path))})</p>'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    caption = _e(figure.title) + (f" — {_e(figure.caption)}" if figure.caption else "")
    return f'<figure><img alt="{_e(figure.title)}" src="data:image/png;base64,{data}"><figcaption>{caption}</figcaption></figure>'


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)
