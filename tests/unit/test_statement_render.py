"""Rendered statements carry the statement's figures: md and csv parse back."""

import csv
import dataclasses
import io
import re
from datetime import UTC, datetime
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from hypothesis import given

from models.events import CostEvent
from models.ledger import Bookkeeper
from models.statement import Reconciliation, Statement, build_statement
from models.statement_render import FORMATS, render_statement
from models.statement_tables import NO_MODEL
from tests.unit.strategies import cost_event_lists, event


def _statement(events: list[CostEvent], period: str = "2026-11") -> Statement:
    keeper = Bookkeeper()
    return build_statement(period, [keeper.book(item) for item in events])


def _busiest(events: list[CostEvent]) -> Statement:
    """The statement of the month with most events (or an empty one)."""
    months = [f"{item.ts:%Y-%m}" for item in events]
    period = max(set(months), key=months.count) if months else "2026-11"
    return _statement(sorted(events, key=lambda e: e.ts), period)


def _md_tables(text: str) -> dict[str, list[list[str]]]:
    """Each `## title`'s table as rows of cells, header and rule dropped."""
    tables: dict[str, list[list[str]]] = {}
    for section in text.split("\n## ")[1:]:
        title, _, body = section.partition("\n")
        rows = [line for line in body.splitlines() if line.startswith("|")]
        tables[title] = [_md_cells(line) for line in rows[2:]]
    return tables


def _md_cells(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
    return [re.sub(r"\\(.)", r"\1", cell.strip()) for cell in cells]


def _csv_rows(text: str, section: str) -> list[dict[str, str]]:
    return [r for r in csv.DictReader(io.StringIO(text)) if r["section"] == section]


@given(events=cost_event_lists)
def test_markdown_parses_back_to_the_statement_figures(events: list[CostEvent]) -> None:
    statement = _busiest(events)
    tables = _md_tables(render_statement(statement, "md"))
    assert {
        row[0]: tuple(Decimal(cell) for cell in row[1:])
        for row in tables["Departments"]
    } == {
        d.department: (d.owes_usd, d.owed_usd, d.net_usd, d.internal_usd)
        for d in statement.departments
    }
    assert [(r[0], r[1], int(r[2]), Decimal(r[3])) for r in tables["Flows"]] == [
        (f.debit, f.credit, f.entries, f.amount_usd) for f in statement.flows
    ]
    assert [
        (r[0], r[1], r[2], None if r[3] == NO_MODEL else r[3], Decimal(r[5]))
        for r in tables["Agents and models behind each flow"]
    ] == _source_figures(statement)
    recon = dict(tables["Reconciliation"])
    assert Decimal(recon["debits"]) == statement.reconciliation.debits_usd
    assert Decimal(recon["credits"]) == statement.reconciliation.credits_usd
    assert Decimal(recon["chargeable spend"]) == statement.reconciliation.chargeable_usd
    assert recon["balanced"] == "yes"


@given(events=cost_event_lists)
def test_csv_parses_back_to_the_statement_figures(events: list[CostEvent]) -> None:
    statement = _busiest(events)
    text = render_statement(statement, "csv")
    departments: dict[str, dict[str, Decimal]] = {}
    for row in _csv_rows(text, "department"):
        departments.setdefault(row["department"], {})[row["measure"]] = Decimal(
            row["amount_usd"]
        )
    assert departments == {
        d.department: {
            "owes": d.owes_usd,
            "owed": d.owed_usd,
            "net": d.net_usd,
            "internal": d.internal_usd,
        }
        for d in statement.departments
    }
    flows = [
        (
            r["debit"],
            r["credit"],
            r["agent"],
            r["model"] or None,
            Decimal(r["amount_usd"]),
        )
        for r in _csv_rows(text, "flow")
    ]
    assert flows == _source_figures(statement)
    recon = {
        r["measure"]: Decimal(r["amount_usd"])
        for r in _csv_rows(text, "reconciliation")
    }
    assert recon == {
        "debits": statement.reconciliation.debits_usd,
        "credits": statement.reconciliation.credits_usd,
        "chargeable": statement.reconciliation.chargeable_usd,
        "total_spend": statement.total_spend_usd,
        "internal": statement.internal_usd,
    }


def test_csv_keeps_nine_decimals_and_lists_adjustments() -> None:
    keeper = Bookkeeper(cutoff_s=0)
    entries = [
        keeper.book(event(event_id="dec", ts=datetime(2026, 12, 2, tzinfo=UTC))),
        keeper.book(event(event_id="late", ts=datetime(2026, 11, 2, tzinfo=UTC))),
    ]
    text = render_statement(build_statement("2026-12", entries), "csv")
    (adjusted,) = [
        r for r in _csv_rows(text, "adjustment") if r["measure"] == "chargeable"
    ]
    assert (adjusted["adjusts"], adjusted["amount_usd"]) == ("2026-11", "0.050000000")


@given(events=cost_event_lists)
def test_html_has_an_svg_with_one_band_per_flow(events: list[CostEvent]) -> None:
    statement = _busiest(events)
    page = _Page.parse(render_statement(statement, "html"))
    assert page.svgs == 1
    assert sorted(page.bands) == sorted(
        (f.debit, f.credit, f.amount_usd) for f in statement.flows
    )


def test_html_states_the_figures_and_fetches_nothing() -> None:
    text = render_statement(_statement([event()]), "html")
    assert "Reconciled: debits = credits = chargeable spend = 0.05 USD" in text
    assert "<td>marketing</td>" in text and '<td class="num">-0.05</td>' in text
    for outside in ("<script", "src=", "href=", "url(", "@import"):
        assert outside not in text


def test_html_escapes_department_names() -> None:
    text = render_statement(_statement([event(principal="<b>R&D</b>")]), "html")
    assert "<b>R&D" not in text
    assert "&lt;b&gt;R&amp;D&lt;/b&gt;" in text
    assert _Page.parse(text).bands == [("<b>R&D</b>", "engineering", Decimal("0.05"))]


def test_an_unbalanced_statement_says_so_in_every_format() -> None:
    statement = _statement([event()])
    broken = dataclasses.replace(
        statement,
        reconciliation=Reconciliation(
            Decimal("0.05"), Decimal("0.04"), Decimal("0.05")
        ),
    )
    assert "NOT RECONCILED: debits 0.05 USD, credits 0.04 USD" in render_statement(
        broken, "md"
    )
    assert 'class="reconciliation bad"' in render_statement(broken, "html")
    recon = _csv_rows(render_statement(broken, "csv"), "reconciliation")
    assert {r["measure"]: r["amount_usd"] for r in recon}["credits"] == "0.040000000"


def test_a_period_without_chargebacks_renders_an_empty_chart() -> None:
    statement = _statement([event(owner=None)])  # internal only
    page = _Page.parse(render_statement(statement, "html"))
    assert (page.svgs, page.bands) == (1, [])
    assert "No chargebacks between departments" in render_statement(statement, "html")


def test_markdown_keeps_a_pipe_in_a_name_inside_its_cell() -> None:
    tables = _md_tables(render_statement(_statement([event(agent="a|b_c")]), "md"))
    (row,) = tables["Agents and models behind each flow"]
    assert row[2] == "a|b_c" and len(row) == 6


def test_csv_defuses_a_name_a_spreadsheet_would_run() -> None:
    text = render_statement(_statement([event(principal="=HYPERLINK(1)")]), "csv")
    (flow,) = _csv_rows(text, "flow")
    assert flow["debit"] == "'=HYPERLINK(1)"


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_carries_the_seed_amount(fmt: str) -> None:
    assert "0.05" in render_statement(_statement([event()]), fmt)


def test_an_unknown_format_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"'pdf'.*md, csv, html"):
        render_statement(_statement([event()]), "pdf")


def _source_figures(
    statement: Statement,
) -> list[tuple[str, str, str, str | None, Decimal]]:
    return [
        (flow.debit, flow.credit, line.agent, line.model, line.amount_usd)
        for flow in statement.flows
        for line in flow.lines
    ]


class _Page(HTMLParser):
    """Counts `<svg>` elements and reads each flow band's data attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.svgs = 0
        self.bands: list[tuple[str, str, Decimal]] = []

    @classmethod
    def parse(cls, text: str) -> "_Page":
        page = cls()
        page.feed(text)
        page.close()
        return page

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "svg":
            self.svgs += 1
        if tag == "path" and values.get("class") == "flow":
            amount = Decimal(values["data-amount-usd"])
            self.bands.append((values["data-debit"], values["data-credit"], amount))
