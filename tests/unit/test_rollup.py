from datetime import UTC, datetime, timedelta
from decimal import Decimal

from models.dedup import DedupWindow
from models.events import CostEvent
from models.rollup import MinuteRollup, minute_of

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def ev(i: int, at: datetime, cost: str = "0.10", **extra: str) -> CostEvent:
    fields = {"agent": "a", "principal": "p", "session_id": "s", **extra}
    return CostEvent(event_id=f"e{i}", ts=at, cost_usd=Decimal(cost), **fields)


def test_minute_buckets_are_closed_open() -> None:
    last_ms = T0 + timedelta(seconds=59, microseconds=999_000)
    assert minute_of(last_ms) == T0
    assert minute_of(T0 + timedelta(minutes=1)) == T0 + timedelta(minutes=1)


def test_rollup_sums_exactly_per_minute_and_dimensions() -> None:
    rollup = MinuteRollup()
    rollup.add(ev(1, T0, "0.1"))
    rollup.add(ev(2, T0 + timedelta(seconds=30), "0.2"))
    rollup.add(ev(3, T0 + timedelta(seconds=61), "0.3"))
    rollup.add(ev(4, T0, "0.4", owner="engineering"))
    assert len(rollup) == 3
    by_minute: dict[datetime, Decimal] = {}
    for key, totals in rollup.items():
        by_minute[key.minute] = by_minute.get(key.minute, Decimal(0)) + totals.cost_usd
    assert by_minute == {T0: Decimal("0.7"), T0 + timedelta(minutes=1): Decimal("0.3")}


def test_dedup_keeps_ids_for_the_horizon_of_event_time() -> None:
    t0_s = T0.timestamp()
    window = DedupWindow(horizon_s=3600)
    assert not window.check_and_add("a", t0_s)
    assert window.check_and_add("a", t0_s + 59 * 60)
    window.add("b", t0_s + 61 * 60)
    assert "a" not in window
    assert window.check_and_add("b", t0_s)


def test_dedup_memory_is_bounded() -> None:
    window = DedupWindow(horizon_s=86_400, max_ids=100)
    for i in range(250):
        window.add(f"id-{i}", T0.timestamp() + i)
    assert len(window) == 100
    assert window.evicted_early == 150
    assert "id-249" in window and "id-149" not in window
