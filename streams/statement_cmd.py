"""`spendstream statement`: the month-end chargeback statement, from ClickHouse.

It reads the entries booked in the period from `ledger_entries` (each once),
builds the statement (`models.statement`), renders it and says whether it
reconciles: debits = credits = chargeable spend, exactly.
"""

import fcntl
import sys
from pathlib import Path
from urllib.parse import urlparse

from rich.console import Console

from models.errors import SpendstreamError
from models.statement import Statement, build_statement
from models.statement_render import render_statement
from models.statement_tables import reconciliation_sentence
from streams.settings import Settings
from streams.store import Store

LOCKED_HINT = (
    "an embedded store is opened by one process at a time: stop the worker "
    "(SIGTERM; it flushes first) and run this again, or set "
    "SPENDSTREAM_CLICKHOUSE to a ClickHouse server that workers and the CLI share"
)


class StoreLocked(SpendstreamError):
    """The embedded store is held by another process, most likely a worker."""


def chdb_locked(url: str) -> bool:
    """Whether another process holds the embedded store at `url` (chdb only).

    ClickHouse locks `<dir>/status` for as long as it runs; a lock we can take
    (and drop at once) means nobody holds it.
    """
    if not url.startswith("chdb:"):
        return False
    status = Path(urlparse(url).path) / "status"
    if not status.exists():
        return False
    with status.open("rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def read_statement(url: str, period: str) -> Statement:
    """The statement of `period` from the store at `url`."""
    if chdb_locked(url):
        msg = f"the store {url} is locked by another process; {LOCKED_HINT}"
        raise StoreLocked(msg)
    store = Store.open(url)
    try:
        return build_statement(period, store.ledger_entries(period))
    finally:
        store.close()


def run_statement(settings: Settings, period: str, fmt: str, out: Path | None) -> int:
    """Write the statement; 0 when it reconciles, 1 when not or on an error."""
    console = Console(stderr=True, soft_wrap=True)
    try:
        statement = read_statement(settings.clickhouse, period)
    except StoreLocked as exc:
        console.print(f"[red]statement:[/] {exc}", highlight=False)
        return 1
    if statement.entries == 0:
        console.print(f"[yellow]no ledger entries are booked in {period}[/]")
    text = render_statement(statement, fmt)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(
            f"wrote the {period} statement ({fmt}, {statement.entries} entries) "
            f"to {out}",
            highlight=False,
        )
    balanced = statement.reconciliation.balanced
    colour = "green" if balanced else "red"
    console.print(f"[{colour}]{reconciliation_sentence(statement)}[/]", highlight=False)
    return 0 if balanced else 1
