"""What a person reads on the statement: its sentences and tables, as strings.

Markdown and HTML render the same tables; amounts are exact, trailing zeros
dropped down to cents (`usd_display`).
"""

from collections.abc import Iterator
from typing import NamedTuple

from models.money import usd_display
from models.statement import Statement

NO_MODEL = "—"
"""Shown for entries whose event named no model."""


class Table(NamedTuple):
    """A titled table; the columns from `numeric_from` on hold numbers."""

    title: str
    header: tuple[str, ...]
    rows: list[tuple[str, ...]]
    numeric_from: int


def reconciliation_sentence(statement: Statement) -> str:
    """One sentence saying whether the statement reconciles, with the figures."""
    recon = statement.reconciliation
    if recon.balanced:
        return (
            "Reconciled: debits = credits = chargeable spend = "
            f"{usd_display(recon.chargeable_usd)} USD, exactly."
        )
    return (
        f"NOT RECONCILED: debits {usd_display(recon.debits_usd)} USD, credits "
        f"{usd_display(recon.credits_usd)} USD, chargeable spend "
        f"{usd_display(recon.chargeable_usd)} USD."
    )


def spend_sentence(statement: Statement) -> str:
    """Total spend, and how much of it is chargeable and internal."""
    chargeable = statement.reconciliation.chargeable_usd
    return (
        f"Total spend {usd_display(statement.total_spend_usd)} USD in "
        f"{statement.entries} entries: chargeable {usd_display(chargeable)} USD, "
        f"internal {usd_display(statement.internal_usd)} USD."
    )


def statement_tables(statement: Statement) -> list[Table]:
    """The statement's tables in reading order; adjustments only if any."""
    tables = [
        Table("Departments", DEPARTMENT_HEADER, list(_departments(statement)), 1),
        Table("Flows", FLOW_HEADER, list(_flows(statement)), 2),
        Table(
            "Agents and models behind each flow",
            SOURCE_HEADER,
            list(_sources(statement)),
            4,
        ),
    ]
    if statement.adjustments:
        rows = list(_adjustments(statement))
        tables.append(
            Table("Adjustments of earlier periods", ADJUSTMENT_HEADER, rows, 1)
        )
    tables.append(
        Table("Reconciliation", ("figure", "USD"), list(_recon(statement)), 1)
    )
    return tables


DEPARTMENT_HEADER = ("department", "owes USD", "is owed USD", "net USD", "internal USD")
FLOW_HEADER = ("debit (pays)", "credit (is paid)", "entries", "amount USD")
SOURCE_HEADER = (
    "debit (pays)",
    "credit (is paid)",
    "agent",
    "model",
    "entries",
    "amount USD",
)
ADJUSTMENT_HEADER = ("adjusts", "chargeable USD", "internal USD", "entries")


def _departments(statement: Statement) -> Iterator[tuple[str, ...]]:
    for line in statement.departments:
        amounts = (line.owes_usd, line.owed_usd, line.net_usd, line.internal_usd)
        yield (line.department, *(usd_display(a) for a in amounts))


def _flows(statement: Statement) -> Iterator[tuple[str, ...]]:
    for flow in statement.flows:
        yield (flow.debit, flow.credit, str(flow.entries), usd_display(flow.amount_usd))


def _sources(statement: Statement) -> Iterator[tuple[str, ...]]:
    for flow in statement.flows:
        for line in flow.lines:
            model = line.model or NO_MODEL
            amount = usd_display(line.amount_usd)
            yield (
                flow.debit,
                flow.credit,
                line.agent,
                model,
                str(line.entries),
                amount,
            )


def _adjustments(statement: Statement) -> Iterator[tuple[str, ...]]:
    for adj in statement.adjustments:
        chargeable, internal = (
            usd_display(adj.chargeable_usd),
            usd_display(adj.internal_usd),
        )
        yield (adj.adjusts, chargeable, internal, str(adj.entries))


def _recon(statement: Statement) -> Iterator[tuple[str, ...]]:
    recon = statement.reconciliation
    yield ("debits", usd_display(recon.debits_usd))
    yield ("credits", usd_display(recon.credits_usd))
    yield ("chargeable spend", usd_display(recon.chargeable_usd))
    yield ("balanced", "yes" if recon.balanced else "NO")
