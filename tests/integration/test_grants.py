"""Budget grants through a real broker, real workers and the real ClickHouse engine."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from rich.console import Console

from models.codec import dumps
from models.fleet import fleet, grant_commands
from models.grant_cycle import GrantCycle
from models.grant_ops import CommandOp, TransferOp, debit_value, decode_op, encode_op
from models.money import to_usd, usd_text
from models.records import GrantCommand
from streams import demo_grants
from streams.grant_landing import outbox_rows
from streams.store import Store
from tests.integration.grant_client import (
    Gateway,
    call,
    command,
    grant,
    send_commands,
    settled,
    wait_for,
    wait_grants_ready,
    wait_landed,
    with_gateway,
)
from tests.integration.harness import WorkerProcess, consume, event, produce, totals

pytestmark = pytest.mark.integration

StartWorker = Callable[..., WorkerProcess]
LINK_USD = "0.10"
CALL_USD = "0.05"
ZERO = "0.000000000"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def ready_worker(start_worker: StartWorker, **env: str) -> WorkerProcess:
    worker = start_worker(**env)
    wait_grants_ready(worker)
    return worker


def open_grant(kafka: str, prefix: str, worker: WorkerProcess, **fields: Any) -> None:
    send_commands(kafka, prefix, [command("open", **fields)])
    wait_for(lambda: grant(worker, fields["grant_id"]), f"grant {fields['grant_id']}")


async def visit_link(
    gw: Gateway, grant_id: str, link: int
) -> tuple[int, dict[str, Any]]:
    """Authorize $0.10, then report a browser call and a summary at $0.05 each."""
    rid = f"{grant_id}-link-{link}"
    status, answer = await gw.authorize(grant_id, LINK_USD, rid)
    if status == 200:
        for call_name in ("browser", "summary"):
            await gw.spend(
                f"{rid}-{call_name}", CALL_USD, grant_id=grant_id, reservation_id=rid
            )
    return status, answer


def activity(store_url: str, sql: str) -> list[Any]:
    store = Store.open(store_url)
    try:
        return store.query(sql)
    finally:
        store.close()


def test_the_research_agent_finds_50_links_and_gets_402_on_the_51st(
    kafka: str, prefix: str, worker_env: dict[str, str], start_worker: StartWorker
) -> None:
    worker = ready_worker(start_worker)
    open_grant(kafka, prefix, worker, grant_id="research", limit_usd="5.00")

    async def research(gw: Gateway) -> tuple[int, int, dict[str, Any]]:
        found: list[int] = []
        for link in range(1, 61):
            status, answer = await visit_link(gw, "research", link)
            if status != 200:
                return len(found), link, answer
            found.append(link)
        raise AssertionError("the grant never said 402")

    found, refused_link, refusal = with_gateway(kafka, prefix, worker, research)
    report = f"found {found} links; link {refused_link} was refused"

    assert report == "found 50 links; link 51 was refused"
    assert refusal["approved"] is False and refusal["balance_usd"] == ZERO
    assert "research" in refusal["reason"]
    settled(
        worker,
        "research",
        spent_usd="5.000000000",
        reserved_usd=ZERO,
        balance_usd=ZERO,
        status="exhausted",
    )
    statuses = consume(kafka, f"{prefix}grant-status", 102, timeout_s=10)
    exhausted = [s for s in statuses if s["status"] == "exhausted"]
    assert [s["grant_id"] for s in exhausted] == ["research"]
    wait_landed(kafka, prefix)
    assert worker.stop() == 0

    [(spent, reserves, exhaustions)] = activity(
        worker_env["SPENDSTREAM_CLICKHOUSE"],
        "SELECT sumIf(amount_usd, kind = 'spend'), countIf(kind = 'reserve'),"
        " countIf(kind = 'exhausted') FROM {db}.grant_activity FINAL"
        " WHERE grant_id = 'research'",
    )
    assert (spent, reserves, exhaustions) == (Decimal("5.00"), 50, 1)


def test_twenty_concurrent_callers_are_approved_5_usd_in_all(
    kafka: str, prefix: str, start_worker: StartWorker
) -> None:
    worker = ready_worker(start_worker)
    open_grant(kafka, prefix, worker, grant_id="crowd", limit_usd="5.00")

    async def caller(gw: Gateway, n: int) -> int:
        approved = 0
        for link in range(n * 100, n * 100 + 60):
            status, _ = await visit_link(gw, "crowd", link)
            if status != 200:
                assert status == 402
                return approved
            approved += 1
        return approved

    async def crowd(gw: Gateway) -> list[int]:
        return list(await asyncio.gather(*(caller(gw, n) for n in range(20))))

    approvals = with_gateway(kafka, prefix, worker, crowd)

    assert to_usd(LINK_USD) * sum(approvals) == to_usd("5.00")
    view = settled(worker, "crowd", spent_usd="5.000000000", reserved_usd=ZERO)
    assert view["overspent_usd"] == ZERO


def test_a_manager_hires_coders_and_its_balance_falls_by_their_price(
    kafka: str, prefix: str, start_worker: StartWorker
) -> None:
    worker = ready_worker(start_worker)
    open_grant(kafka, prefix, worker, grant_id="manager", limit_usd="10.00")

    hires = [
        ("premium-coder", "2.00", "8.000000000"),
        ("cheap-coder", "0.50", "7.500000000"),
    ]
    for coder, price, left in hires:
        hire = command("open", coder, parent_id="manager", limit_usd=price)
        send_commands(kafka, prefix, [hire])
        manager = settled(worker, "manager", balance_usd=left)
        hired = wait_for(lambda c=coder: grant(worker, c), coder)
        assert hired["balance_usd"] == usd_text(to_usd(price))
        assert hired["parent_id"] == "manager"

    assert sorted(manager["children"]) == ["cheap-coder", "premium-coder"]
    assert manager["limit_usd"] == "7.500000000"


def test_a_worker_killed_between_authorize_and_settle_keeps_the_hold(
    kafka: str, prefix: str, start_worker: StartWorker
) -> None:
    worker = ready_worker(start_worker)
    open_grant(kafka, prefix, worker, grant_id="g", limit_usd="1.00")

    async def hold(gw: Gateway) -> list[int]:
        settle_later = await gw.authorize("g", "0.10", "r-settle", hold_s=120)
        time_out = await gw.authorize("g", "0.10", "r-timeout", hold_s=20)
        return [settle_later[0], time_out[0]]

    assert with_gateway(kafka, prefix, worker, hold) == [200, 200]
    worker.kill()

    again = ready_worker(start_worker)
    view = settled(again, "g", reserved_usd="0.200000000", balance_usd="0.800000000")
    assert view["spent_usd"] == ZERO

    async def settle(gw: Gateway) -> None:
        for part in ("a", "b"):
            await gw.spend(
                f"e-{part}", CALL_USD, grant_id="g", reservation_id="r-settle"
            )

    with_gateway(kafka, prefix, again, settle)
    settled(again, "g", spent_usd="0.100000000")
    view = settled(again, "g", reserved_usd=ZERO, balance_usd="0.900000000")
    held = sum(to_usd(view[k]) for k in ("spent_usd", "reserved_usd", "balance_usd"))
    assert held == to_usd("1.00")


def test_events_charged_to_an_unknown_grant_are_metered_and_flagged(
    kafka: str, prefix: str, worker_env: dict[str, str], start_worker: StartWorker
) -> None:
    worker = ready_worker(start_worker)
    charged = [event(i, "0.05", grant_id="nobody") for i in range(5)]
    plain = [event(i, "0.05") for i in range(5, 10)]
    produce(kafka, f"{prefix}events", charged + plain)
    worker.wait_caught_up(10)

    wait_for(
        lambda: (
            worker.metric("spendstream_grant_flagged_events_total", flag="unknown") == 5
        ),
        "5 events flagged unknown",
    )
    wait_landed(kafka, prefix)
    assert worker.stop() == 0
    events, cost_usd, _, _ = totals(worker_env["SPENDSTREAM_CLICKHOUSE"])
    assert (events, cost_usd) == (10, Decimal("0.50"))
    [(rows, overspent)] = activity(
        worker_env["SPENDSTREAM_CLICKHOUSE"],
        "SELECT count(), sum(amount_usd) FROM {db}.grant_activity FINAL"
        " WHERE grant_id = 'nobody' AND kind = 'overspend'",
    )
    assert (rows, overspent) == (5, Decimal("0.25"))


def test_bad_commands_go_to_the_dlq_and_bad_bodies_get_400(
    kafka: str, prefix: str, start_worker: StartWorker
) -> None:
    worker = ready_worker(start_worker)
    send_commands(
        kafka,
        prefix,
        [
            command("mint", "g", amount_usd="1"),
            command("fund", "child", amount_usd="1"),
            command("open", "g", limit_usd="1.00"),
        ],
    )
    wait_for(lambda: grant(worker, "g"), "grant g")

    letters = consume(kafka, f"{prefix}dlq", 2, timeout_s=15)
    reasons = sorted(letter["reason"] for letter in letters)
    assert len(reasons) == 2
    assert "command: input should be 'open'" in reasons[0]
    assert "a fund command needs parent_id" in reasons[1]
    status, body = call(worker, "/v1/grants/g/authorize", {"amount_usd": "-1"})
    assert status == 400 and "amount_usd" in body["error"]
    status, body = call(worker, "/v1/grants/nobody/authorize", {"amount_usd": "0.1"})
    assert status == 402 and body["reason"] == "unknown grant nobody; open it first"


def test_any_worker_answers_for_any_grant(
    kafka: str, prefix: str, tmp_path: Any, start_worker: StartWorker
) -> None:
    first = ready_worker(start_worker, SPENDSTREAM_CLICKHOUSE=f"chdb://{tmp_path}/a")
    second = ready_worker(start_worker, SPENDSTREAM_CLICKHOUSE=f"chdb://{tmp_path}/b")
    ids = [f"g{n}" for n in range(8)]
    send_commands(kafka, prefix, [command("open", g, limit_usd="1.00") for g in ids])

    for gid in ids:
        views = [wait_for(lambda w=w, g=gid: grant(w, g), gid) for w in (first, second)]
        assert views[0] == views[1]
    for n, gid in enumerate(ids):
        worker = (first, second)[n % 2]
        body = {"amount_usd": "0.25", "reservation_id": f"r-{gid}"}
        assert call(worker, f"/v1/grants/{gid}/authorize", body)[0] == 200
    for gid in ids:
        other = grant(second, gid) or {}
        assert other["reserved_usd"] == "0.250000000"


def test_a_killed_worker_applies_each_command_and_event_once(
    kafka: str, prefix: str, worker_env: dict[str, str], start_worker: StartWorker
) -> None:
    worker = ready_worker(start_worker)
    open_grant(kafka, prefix, worker, grant_id="g", limit_usd="5.00")
    top_ups = [command("top_up", "g", amount_usd="0.01") for _ in range(200)]
    retried = [command("top_up", "g", amount_usd="1.00", command_id="once")] * 3
    spend = [event(i, "0.001", grant_id="g") for i in range(1000)]
    send_commands(kafka, prefix, top_ups + retried)
    produce(kafka, f"{prefix}events", spend)
    wait_for(
        lambda: (
            worker.metric("spendstream_grant_ops_total", op="debit", outcome="charged")
            > 0
        ),
        "the first debits",
    )
    worker.kill()

    again = ready_worker(start_worker)
    again.wait_caught_up(1000)
    view = settled(again, "g", spent_usd="1.000000000", balance_usd="7.000000000")
    assert view["overspent_usd"] == ZERO
    wait_landed(kafka, prefix)
    assert again.stop() == 0
    [(top_up_rows, top_up_usd, spend_usd)] = activity(
        worker_env["SPENDSTREAM_CLICKHOUSE"],
        "SELECT countIf(kind = 'top_up'), sumIf(amount_usd, kind = 'top_up'),"
        " sumIf(amount_usd, kind = 'spend') FROM {db}.grant_activity FINAL"
        " WHERE grant_id = 'g'",
    )
    assert (top_up_rows, top_up_usd, spend_usd) == (
        201,
        Decimal("3.00"),
        Decimal("1.000"),
    )


def test_the_demo_summary_shows_what_each_grant_was_paid_and_spent(
    tmp_path: Any,
) -> None:
    records = fleet(datetime(2026, 11, 2, 9, 0, tzinfo=UTC), sessions=0)
    cycle = GrantCycle({}, now=datetime(2026, 11, 2, tzinfo=UTC))
    for n, sent in enumerate(grant_commands(records)):
        op = CommandOp(
            command=GrantCommand.model_validate(sent.value),
            source_partition=0,
            source_offset=n,
        )
        cycle.apply(op)
    for transfer in cycle.emitted.transfers:
        cycle.apply(TransferOp(transfer=transfer))
    hire = next(r.value for r in records if r.scenario == "hiring")
    assert isinstance(hire, dict)
    cycle.apply(
        decode_op(encode_op(debit_value("e-1", hire["grant_id"], to_usd("0.20"), T0)))
    )
    landed = [
        row
        for value in cycle.changed().values()
        if value
        for row in outbox_rows(dumps(value))
    ]
    store = Store.open(f"chdb://{tmp_path / 'store'}")
    try:
        store.write_grant_activity(landed)
        console = Console(width=100, record=True)
        console.print(demo_grants.grants(store, None))
    finally:
        store.close()

    cells = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
        for line in console.export_text().splitlines()
        if line.startswith("│")
    }
    assert cells["eng-team"] == ["0.50", "0.50", "0.00", "0.00", "0.00", "1"]
    assert cells["└ task 0"] == ["0.14", "0.00", "0.14", "0.00", "0.06", "0"]
    assert cells["└ task 1"] == ["0.12", "0.00", "0.00", "0.12", "0.00", "0"]
