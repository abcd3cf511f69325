"""What the chargeback tests check with: direct sums, the API, the store, the CLI."""

import os
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from models.money import usd_text
from streams.store import Store
from tests.integration.harness import SPENDSTREAM, WorkerProcess

Sums = dict[tuple[str, str], Decimal]
"""Amounts by (department, measure); measures: owes, owed, internal."""


def direct_sums(events: Iterable[dict[str, Any]]) -> Sums:
    """What each department owes, is owed and spends inside, straight from events."""
    sums: Sums = defaultdict(Decimal)
    for event in events:
        payer, cost = event["principal"], Decimal(event["cost_usd"])
        payee = event.get("owner") or payer
        if payer == payee:
            sums[payer, "internal"] += cost
        else:
            sums[payer, "owes"] += cost
            sums[payee, "owed"] += cost
    return sums


def answer(department: str, period: str, sums: Sums) -> dict[str, str]:
    """The chargeback API's expected answer for `department` in `period`."""
    owed, owes = sums[department, "owed"], sums[department, "owes"]
    return {
        "department": department,
        "period": period,
        "charged_to_others_usd": usd_text(owed),
        "charged_by_others_usd": usd_text(owes),
        "net_usd": usd_text(owed - owes),
        "internal_usd": usd_text(sums[department, "internal"]),
    }


def departments(sums: Sums) -> set[str]:
    return {department for department, _ in sums}


def wait_for_answers(
    worker: WorkerProcess, period: str, sums: Sums, timeout_s: float = 90
) -> None:
    """Wait until `worker` answers the expected positions for every department."""
    expected = {d: answer(d, period, sums) for d in departments(sums)}
    got: dict[str, Any] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = {
            d: worker.call(f"/v1/chargeback/{d}?period={period}")[1] for d in expected
        }
        if got == expected:
            return
        time.sleep(0.5)
    raise AssertionError(f"positions {got} never became {expected}; see {worker.log}")


def ledger_rows(store_url: str) -> dict[str, dict[str, Any]]:
    """ClickHouse `ledger_entries` as each entry's row by event id (FINAL)."""
    store = Store.open(store_url)
    try:
        names = ["event_id", "entry_id", "period", "adjusts", "debit", "credit"]
        names += ["amount_usd", "internal", "agent", "model"]
        rows = store.query(
            f"SELECT {', '.join(names)} FROM {{db}}.ledger_entries FINAL"
        )
    finally:
        store.close()
    return {row[0]: dict(zip(names, row, strict=True)) for row in rows}


def statement(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `spendstream statement` with the workers' environment."""
    return subprocess.run(
        [str(SPENDSTREAM), "statement", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def screenshot(page: Path, png: Path, profile: Path, size: str = "1200,1400") -> None:
    """A PNG of `page` as headless Chromium renders it, with a fresh profile."""
    if not CHROMIUM.exists():
        msg = f"{CHROMIUM} is missing; scripts/bootstrap installs it with apt-get"
        raise AssertionError(msg)
    done = subprocess.run(
        [
            str(CHROMIUM),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            f"--window-size={size}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert png.exists(), f"no screenshot (exit {done.returncode}): {done.stderr}"
