"""The statement as text: Markdown for people, CSV for spreadsheets.

Amounts are exact in both: Markdown drops trailing zeros down to cents, CSV
keeps nine decimals.
"""

import csv
import io
from collections.abc import Iterator
from decimal import Decimal

from models.money import usd_text
from models.statement import Statement
from models.statement_tables import (
    Table,
    reconciliation_sentence,
    spend_sentence,
    statement_tables,
)


def render_markdown(statement: Statement) -> str:
    """The statement as a Markdown document: two sentences and its tables."""
    parts = [
        f"# Chargeback statement {statement.period}",
        reconciliation_sentence(statement),
        spend_sentence(statement),
    ]
    for table in statement_tables(statement):
        parts += [f"## {table.title}", _md_table(table)]
    return "\n\n".join(parts) + "\n"


def _md_table(table: Table) -> str:
    rule = tuple(
        "---:" if index >= table.numeric_from else "---"
        for index in range(len(table.header))
    )
    lines = [_md_row(table.header), _md_row(rule)]
    lines += [_md_row(tuple(_md_cell(cell) for cell in row)) for row in table.rows]
    return "\n".join(lines)


def _md_row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"


def _md_cell(text: str) -> str:
    """Escape what would end a cell or turn into formatting; keep one line."""
    text = " ".join(text.splitlines())
    for char in "\\|*_`[]<>":
        text = text.replace(char, "\\" + char)
    return text


CSV_COLUMNS = (
    "period",
    "section",
    "measure",
    "department",
    "debit",
    "credit",
    "agent",
    "model",
    "adjusts",
    "entries",
    "amount_usd",
)


def render_csv(statement: Statement) -> str:
    """The statement as one long CSV table: a row per figure, `section` says which.

    Sections: `department` (measures owes, owed, net, internal), `flow` (one row
    per debit, credit, agent and model), `adjustment` (chargeable, internal) and
    `reconciliation` (debits, credits, chargeable, total_spend, internal).
    Summing `amount_usd` within one section and measure is meaningful; across
    sections it counts the same money twice.
    """
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in _csv_rows(statement):
        writer.writerow({"period": statement.period} | _csv_safe(row))
    return out.getvalue()


def _csv_rows(statement: Statement) -> Iterator[dict[str, str]]:
    for d in statement.departments:
        for measure, amount in (
            ("owes", d.owes_usd),
            ("owed", d.owed_usd),
            ("net", d.net_usd),
            ("internal", d.internal_usd),
        ):
            yield _figure("department", measure, amount, department=d.department)
    for flow in statement.flows:
        for line in flow.lines:
            yield _figure(
                "flow",
                "charge",
                line.amount_usd,
                debit=flow.debit,
                credit=flow.credit,
                agent=line.agent,
                model=line.model or "",
                entries=str(line.entries),
            )
    for adj in statement.adjustments:
        for measure, amount in (
            ("chargeable", adj.chargeable_usd),
            ("internal", adj.internal_usd),
        ):
            entries = str(adj.entries)
            yield _figure(
                "adjustment", measure, amount, adjusts=adj.adjusts, entries=entries
            )
    yield from _csv_reconciliation(statement)


def _csv_reconciliation(statement: Statement) -> Iterator[dict[str, str]]:
    recon = statement.reconciliation
    for measure, amount in (
        ("debits", recon.debits_usd),
        ("credits", recon.credits_usd),
        ("chargeable", recon.chargeable_usd),
        ("total_spend", statement.total_spend_usd),
        ("internal", statement.internal_usd),
    ):
        yield _figure("reconciliation", measure, amount)


def _figure(
    section: str, measure: str, amount: Decimal, **cells: str
) -> dict[str, str]:
    return {
        "section": section,
        "measure": measure,
        "amount_usd": usd_text(amount),
    } | cells


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(row: dict[str, str]) -> dict[str, str]:
    """Quote names a spreadsheet would run as a formula (CSV injection).

    A name starting with `=`, `+`, `-`, `@` or a tab gets a leading `'`,
    which spreadsheets show as text; amounts are left as they are.
    """
    return {
        column: "'" + value
        if column != "amount_usd" and value.startswith(_FORMULA_STARTS)
        else value
        for column, value in row.items()
    }
