"""The chargeback ledger through real workers, the real broker and ClickHouse."""

import csv
import io
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from models.codec import dumps
from models.events import decode_cost_event
from models.ledger import Bookkeeper, entry_id_for
from models.statement_chart import PALETTE
from streams.batches import key_partition
from tests.integration.chargeback import (
    answer,
    direct_sums,
    ledger_rows,
    screenshot,
    statement,
    wait_for_answers,
)
from tests.integration.harness import (
    WorkerProcess,
    consume_keyed,
    create_topics,
    event,
    produce,
)
from tests.integration.png import read_png

pytestmark = pytest.mark.integration

StartWorker = Callable[..., WorkerProcess]

SEED = {
    "session_id": "copywriter-7",
    "agent": "database",
    "principal": "marketing",
    "owner": "engineering",
    "attributes": {"caller_agent": "copywriter"},
}
"""The seed's example: marketing's copywriter asks engineering's database agent."""

FAST = {"SPENDSTREAM_POSITIONS_BATCH_S": "0.2"}


def test_the_seed_example_debits_marketing_and_credits_engineering(
    kafka: str, prefix: str, worker_env: dict[str, str], start_worker: StartWorker
) -> None:
    worker = start_worker(**FAST)
    produce(kafka, f"{prefix}events", [event(1, "0.05", **SEED)])

    sums = direct_sums([event(1, "0.05", **SEED)])
    wait_for_answers(worker, "2026-11", sums)
    assert answer("marketing", "2026-11", sums)["net_usd"] == "-0.050000000"
    assert answer("engineering", "2026-11", sums)["net_usd"] == "0.050000000"

    records = consume_keyed(kafka, f"{prefix}ledger", 2)
    assert sorted(key for key, _ in records) == ["engineering", "marketing"]
    (_, entry), (_, twin) = records
    assert entry == twin
    assert entry["entry_id"] == entry_id_for("ev-1")
    assert (entry["debit"], entry["credit"], entry["amount_usd"]) == (
        "marketing",
        "engineering",
        "0.050000000",
    )
    assert (entry["period"], entry["internal"], entry.get("adjusts")) == (
        "2026-11",
        False,
        None,
    )

    assert worker.stop() == 0
    [row] = ledger_rows(worker_env["SPENDSTREAM_CLICKHOUSE"]).values()
    assert row["entry_id"] == entry_id_for("ev-1")
    assert (row["debit"], row["credit"], row["amount_usd"]) == (
        "marketing",
        "engineering",
        Decimal("0.05"),
    )
    assert (row["period"], row["adjusts"], row["internal"]) == ("2026-11", None, False)


def test_any_worker_answers_for_any_department(
    kafka: str, prefix: str, tmp_path: Path, start_worker: StartWorker
) -> None:
    flows = [
        ("marketing", "engineering"),
        ("finance", "engineering"),
        ("engineering", "research"),
        ("research", "research"),
        ("sales", "marketing"),
    ]
    records = [
        event(i, f"0.{i + 1}", principal=payer, owner=payee, session_id=f"s-{i}")
        for i, (payer, payee) in enumerate(flows * 4)
    ]
    first = start_worker(**FAST)
    # An embedded store serves one process: the second worker has its own.
    second = start_worker(
        SPENDSTREAM_CLICKHOUSE=f"chdb://{tmp_path / 'store-2'}", **FAST
    )
    produce(kafka, f"{prefix}events", records)

    sums = direct_sums(records)
    for worker in (first, second):
        wait_for_answers(worker, "2026-11", sums)
    status, body = second.call("/v1/chargeback/finance?period=11-2026")
    assert status == 400
    assert "'11-2026' is not a calendar month" in body["error"]
    status, body = first.call("/v1/chargeback/finance")
    assert status == 400
    assert "period is missing" in body["error"]


def test_late_events_past_the_cutoff_become_adjustments(
    kafka: str, prefix: str, worker_env: dict[str, str], start_worker: StartWorker
) -> None:
    # One session, so one events partition and one watermark; a cut-off of an
    # hour closes October at 2026-11-01T01:00Z of event time.
    times_costs = [
        ("2026-10-31T23:00:00Z", "1", "engineering"),  # October
        ("2026-11-01T00:30:00Z", "2", "engineering"),  # November
        ("2026-10-31T23:30:00Z", "4", "engineering"),  # late, within the cut-off
        ("2026-11-01T02:00:00Z", "8", "engineering"),  # October closes
        ("2026-10-31T23:45:00Z", "16", "engineering"),  # late: an adjustment
        ("2026-10-31T23:50:00Z", "32", "marketing"),  # late and internal
    ]
    records = [
        event(i, cost, ts=ts, principal="marketing", owner=owner, session_id="s-1")
        for i, (ts, cost, owner) in enumerate(times_costs)
    ]
    worker = start_worker(SPENDSTREAM_LEDGER_CUTOFF_S="3600", **FAST)
    produce(kafka, f"{prefix}events", records)

    wait_for_answers(worker, "2026-10", direct_sums(records[i] for i in (0, 2)))
    wait_for_answers(worker, "2026-11", direct_sums(records[i] for i in (1, 3, 4, 5)))
    assert worker.metric("spendstream_ledger_adjustments_total") == 2
    assert worker.stop() == 0

    rows = ledger_rows(worker_env["SPENDSTREAM_CLICKHOUSE"])
    placed = {
        i: (rows[f"ev-{i}"]["period"], rows[f"ev-{i}"]["adjusts"]) for i in range(6)
    }
    assert placed == {
        0: ("2026-10", None),
        1: ("2026-11", None),
        2: ("2026-10", None),
        3: ("2026-11", None),
        4: ("2026-11", "2026-10"),
        5: ("2026-11", "2026-10"),
    }
    assert rows["ev-5"]["internal"] is True
    ledger = [value for _, value in consume_keyed(kafka, f"{prefix}ledger", 11)]
    assert len(ledger) == 11  # five entries between departments twice, one once
    assert {v["event_id"] for v in ledger if v.get("adjusts")} == {"ev-4", "ev-5"}


def _replay_events(n: int) -> list[dict[str, Any]]:
    """Events that close October early, then late October events to the end.

    With a cut-off of a minute, October closes at 00:01 of event time; every
    event after the first thousand is a late October one, so a worker that
    restarted without its watermark would book them in October.
    """
    start = datetime(2026, 10, 31, 23, 59, tzinfo=UTC)
    flows = [("marketing", "engineering"), ("sales", "finance"), ("legal", "legal")]
    records = []
    for i in range(n):
        offset_s = i * 0.5 if i < 1000 else (i % 50) / 10
        ts = start + timedelta(seconds=offset_s)
        payer, payee = flows[i % 3]
        records.append(
            event(
                i,
                f"0.{i % 997:03d}000011",
                ts=ts.isoformat().replace("+00:00", "Z"),
                principal=payer,
                owner=payee,
                session_id=f"s-{i % 40}",
            )
        )
    return records


def _placements(records: list[dict[str, Any]], cutoff_s: int) -> dict[str, Any]:
    """Where each event belongs: its partition's bookkeeper, in partition order."""
    keepers: dict[int, Bookkeeper] = defaultdict(lambda: Bookkeeper(cutoff_s))
    placed = {}
    for record in records:
        partition = key_partition(record["session_id"].encode(), 3)
        entry = keepers[partition].book(decode_cost_event(dumps(record)))
        placed[record["event_id"]] = (entry.period, entry.adjusts)
    return placed


@pytest.mark.slow
def test_a_replay_after_sigkill_keeps_ledger_and_positions_exact(
    kafka: str, prefix: str, worker_env: dict[str, str], start_worker: StartWorker
) -> None:
    n = 20_000
    records = _replay_events(n)
    expected = _placements(records, cutoff_s=60)
    create_topics(worker_env)
    produce(kafka, f"{prefix}events", records)

    env = {"SPENDSTREAM_LEDGER_CUTOFF_S": "60", **FAST}
    first = start_worker(
        SPENDSTREAM_POLL_MAX_RECORDS="100", SPENDSTREAM_FLUSH_EVENTS="200", **env
    )
    first.wait_until(
        lambda h: all(p["flushed"] >= 600 for p in h["events"]["partitions"].values()),
        "600 records flushed on every partition (October closed)",
    )
    first.kill()
    assert not first.health_before_kill_caught_up

    second = start_worker(**env)
    second.wait_caught_up(n, timeout_s=180)
    for period in ("2026-10", "2026-11"):
        booked = [r for r in records if expected[r["event_id"]][0] == period]
        wait_for_answers(second, period, direct_sums(booked), timeout_s=120)
    assert second.stop() == 0

    rows = ledger_rows(worker_env["SPENDSTREAM_CLICKHOUSE"])
    assert len(rows) == n
    assert sum(r["amount_usd"] for r in rows.values()) == sum(
        Decimal(r["cost_usd"]) for r in records
    )
    placed = {event_id: (r["period"], r["adjusts"]) for event_id, r in rows.items()}
    assert placed == expected
    assert sum(1 for p in expected.values() if p[1]) > n // 2


def _statement_events() -> list[dict[str, Any]]:
    flows = [
        ("marketing", "engineering", "0.05"),
        ("marketing", "engineering", "1.25"),
        ("finance", "engineering", "0.000000003"),
        ("engineering", "research", "7.5"),
        ("research", "research", "2"),
        ("sales", "marketing", "0.33"),
    ]
    november = [
        event(i, cost, principal=payer, owner=payee, model=f"m-{i % 2}")
        for i, (payer, payee, cost) in enumerate(flows * 3)
    ]
    december = [
        event(100 + i, "9", principal="sales", owner="legal", ts="2026-12-01T00:10:00Z")
        for i in range(3)
    ]
    return november + december


def _csv_figures(text: str) -> dict[tuple[str, str, str], Decimal]:
    return {
        (row["section"], row["measure"], row["department"]): Decimal(row["amount_usd"])
        for row in csv.DictReader(io.StringIO(text))
        if row["section"] in ("department", "reconciliation")
    }


def test_the_statement_equals_a_direct_sum_over_the_events(
    kafka: str,
    prefix: str,
    worker_env: dict[str, str],
    start_worker: StartWorker,
    tmp_path: Path,
) -> None:
    records = _statement_events()
    worker = start_worker()
    produce(kafka, f"{prefix}events", records)
    worker.wait_caught_up(len(records))

    locked = statement(worker_env, "--period", "2026-11")
    assert locked.returncode == 1
    assert "locked by another process" in locked.stderr
    assert "stop the worker" in locked.stderr
    assert worker.stop() == 0

    out = tmp_path / "statement.csv"
    done = statement(
        worker_env, "--period", "2026-11", "--format", "csv", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    november = [r for r in records if r["ts"].startswith("2026-11")]
    sums = direct_sums(november)
    chargeable = sum(
        Decimal(r["cost_usd"]) for r in november if r["principal"] != r["owner"]
    )
    assert "debits = credits = chargeable spend" in done.stderr

    figures = _csv_figures(out.read_text())
    for (department, measure), amount in sums.items():
        assert figures["department", measure, department] == amount
    for department in {d for d, _ in sums}:
        net = sums[department, "owed"] - sums[department, "owes"]
        assert figures["department", "net", department] == net
    for measure in ("debits", "credits", "chargeable"):
        assert figures["reconciliation", measure, ""] == chargeable
    total = sum(Decimal(r["cost_usd"]) for r in november)
    assert figures["reconciliation", "total_spend", ""] == total
    assert ("department", "owes", "legal") not in figures  # December's only


def test_the_html_statement_shows_its_chart_in_headless_chromium(
    kafka: str,
    prefix: str,
    worker_env: dict[str, str],
    start_worker: StartWorker,
    tmp_path: Path,
) -> None:
    records = [event(1, "0.05", **SEED), event(2, "0.02", **SEED)]
    records += [event(3, "0.03", principal="finance", owner="engineering")]
    worker = start_worker()
    produce(kafka, f"{prefix}events", records)
    worker.wait_caught_up(len(records))
    assert worker.stop() == 0

    page, png = tmp_path / "statement.html", tmp_path / "statement.png"
    done = statement(
        worker_env, "--period", "2026-11", "--format", "html", "--out", str(page)
    )
    assert done.returncode == 0, done.stderr
    html = page.read_text()
    assert html.count('<path class="flow"') == 2
    screenshot(page, png, tmp_path / "chromium-profile")

    image = read_png(png.read_bytes())
    payer = tuple(int(PALETTE[0][i : i + 2], 16) for i in (1, 3, 5))
    spots = [
        (x, y)
        for y in range(image.height)
        for x in range(image.width)
        if image.rgb(x, y) == payer
    ]
    # The first payer's bar: 14 px wide, taller than a line of text.
    xs, ys = {x for x, _ in spots}, {y for _, y in spots}
    assert len(spots) > 14 * 40
    assert max(xs) - min(xs) + 1 <= 20
    assert max(ys) - min(ys) + 1 >= 40
    assert image.rgb(0, 0) == (255, 255, 255)
