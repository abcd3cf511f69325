"""The demo's grants: the hiring commands before the fleet, and the summary.

`send_commands` produces the fleet's grant commands in order
(`streams.grant_commands`), then waits until no money is in transit.
`wait_settled` waits until every grant event is debited and its rows are in
ClickHouse. `grants` is the summary's section.
"""

import asyncio
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal

from prometheus_client.parser import text_string_to_metric_families
from rich.console import RenderableType
from rich.table import Table

from models.errors import InvalidRecord
from models.events import decode_cost_event
from models.fleet import TEAM_GRANT_ID, GatewayRecord
from streams.grant_commands import send_commands_in_order
from streams.grant_landing import rows_behind
from streams.settings import Settings
from streams.store import Store

SETTLE_TIMEOUT_S = 60.0
POLL_S = 0.1
CENT = Decimal("0.01")


def grant_counts(base_url: str) -> Counter[str]:
    """Grant ops applied by op, and transfers sent, from the worker's metrics."""
    counts: Counter[str] = Counter()
    try:
        with urllib.request.urlopen(f"{base_url}/metrics", timeout=2) as answer:
            text = answer.read().decode()
    except (urllib.error.URLError, OSError):
        return counts
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "spendstream_grant_ops_total":
                counts[sample.labels["op"]] += int(sample.value)
            elif sample.name == "spendstream_grant_transfers_sent_total":
                counts["transfers_sent"] += int(sample.value)
    return counts


def _until(check: Callable[[], bool]) -> bool:
    deadline_s = time.monotonic() + SETTLE_TIMEOUT_S
    while not check():
        if time.monotonic() > deadline_s:
            return False
        time.sleep(POLL_S)
    return True


def send_commands(
    settings: Settings, base_url: str, commands: list[GatewayRecord]
) -> bool:
    """Send the commands in order, then wait for their transfers; False on a timeout."""
    if not send_commands_in_order(settings, commands):
        return False

    def settled() -> bool:
        counts = grant_counts(base_url)
        return counts["transfer"] >= counts["transfers_sent"]

    return _until(settled)


def charged_events(records: list[GatewayRecord]) -> int:
    """Events the worker accepts that name a grant (each id once)."""
    ids = set()
    for record in records:
        try:
            event = decode_cost_event(record.encode())
        except InvalidRecord:
            continue
        if event.grant_id is not None:
            ids.add(event.event_id)
    return len(ids)


def wait_settled(settings: Settings, base_url: str, debits: int) -> bool:
    """Wait until `debits` are applied and ClickHouse holds every grant row."""
    if not _until(lambda: grant_counts(base_url)["debit"] >= debits):
        return False
    return _until(lambda: asyncio.run(rows_behind(settings)) == 0)


def short_name(grant_id: str, parent_id: str) -> str:
    """`eng-team`, `└ task 3` for a hire's grant, `task 4 (refused)` if unopened."""
    name = grant_id.removeprefix("grant-")
    if name.startswith("task-"):
        name = "task " + name.rsplit("-", 1)[-1]
    if parent_id:
        return f"└ {name}"
    return name if grant_id == TEAM_GRANT_ID else f"{name} (refused)"


def grants(store: Store, facts: object) -> RenderableType:
    """Each grant: funded, paid to hires, spent, balance, flagged spend, refusals."""
    rows = store.query(
        "SELECT grant_id, max(parent_id),"
        " sumIf(amount_usd, kind IN ('open', 'top_up', 'fund_in')),"
        " sumIf(amount_usd, kind = 'fund_out'), sumIf(amount_usd, kind = 'spend'),"
        " sumIf(amount_usd, kind = 'overspend'), countIf(kind = 'refused')"
        " FROM {db}.grant_activity FINAL GROUP BY grant_id"
        " ORDER BY grant_id != {team:String}, max(parent_id) = '', grant_id",
        {"team": TEAM_GRANT_ID},
    )
    table = Table(
        title="Grants: the manager pays each hire (USD, to the cent)",
        caption="flagged: spend a grant could not cover, metered, never dropped",
    )
    table.add_column("grant", no_wrap=True)
    for name in ("funded", "paid out", "spent", "balance", "flagged"):
        table.add_column(name, justify="right")
    table.add_column("refused", justify="right")
    for grant_id, parent, funded, paid, spent, over, refusals in rows:
        balance: Decimal = funded - paid - spent
        amounts = [_cents(v) for v in (funded, paid, spent, balance, over)]
        table.add_row(short_name(grant_id, parent), *amounts, str(refusals))
    return table


def _cents(amount: Decimal) -> str:
    return f"{amount.quantize(CENT, rounding=ROUND_HALF_EVEN):,}"
