"""The statement as one self-contained HTML page: inline CSS and SVG, no scripts.

Nothing is fetched when the page opens (no fonts, scripts or images from
elsewhere), so it renders the same offline, in a mail client or in a
headless browser taking a screenshot.
"""

from html import escape

from models.statement import Statement
from models.statement_chart import flow_chart_svg
from models.statement_tables import (
    Table,
    reconciliation_sentence,
    spend_sentence,
    statement_tables,
)

_CSS = """
body { font-family: system-ui, sans-serif; color: #222; margin: 2rem; }
main { max-width: 960px; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; min-width: 50%; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.7rem; text-align: left; }
th { background: #f4f4f4; } td.num, th.num { text-align: right; }
td.num { font-variant-numeric: tabular-nums; }
.reconciliation { font-weight: bold; padding: 0.5rem 0.8rem; border-radius: 4px; }
.reconciliation.ok { background: #e6f4ea; color: #1e6b34; }
.reconciliation.bad { background: #fdecea; color: #a4231b; }
.flow-chart .node-amount { fill: #555; font-size: 12px; }
.flow-chart .band-label { font-size: 12px; paint-order: stroke;
  stroke: #fff; stroke-width: 3px; }
"""


def render_html(statement: Statement) -> str:
    """The statement as an HTML document with a chart of the flows."""
    state = "ok" if statement.reconciliation.balanced else "bad"
    body = [
        f"<h1>Chargeback statement {escape(statement.period)}</h1>",
        f'<p class="reconciliation {state}">'
        f"{escape(reconciliation_sentence(statement))}</p>",
        f"<p>{escape(spend_sentence(statement))}</p>",
        '<section id="chart"><h2>Flows between departments</h2>',
        flow_chart_svg(statement.flows),
        "</section>",
        *(_table(table) for table in statement_tables(statement)),
    ]
    return _page(f"Chargeback statement {statement.period}", body)


def _page(title: str, body: list[str]) -> str:
    head = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{_CSS}</style>\n</head>"
    )
    return "\n".join([head, "<body>", "<main>", *body, "</main>", "</body>", "</html>"])


def _table(table: Table) -> str:
    header = "".join(
        _cell("th", text, numeric=i >= table.numeric_from)
        for i, text in enumerate(table.header)
    )
    rows = "\n".join(
        "<tr>"
        + "".join(
            _cell("td", text, numeric=i >= table.numeric_from)
            for i, text in enumerate(row)
        )
        + "</tr>"
        for row in table.rows
    )
    anchor = table.title.lower().split()[0]
    return (
        f'<section id="{escape(anchor)}"><h2>{escape(table.title)}</h2>\n'
        f"<table><thead><tr>{header}</tr></thead>\n<tbody>\n{rows}\n</tbody></table>"
        "</section>"
    )


def _cell(tag: str, text: str, *, numeric: bool) -> str:
    css = ' class="num"' if numeric else ""
    return f"<{tag}{css}>{escape(text)}</{tag}>"
