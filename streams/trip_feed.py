"""`spendstream trips`: breaker trips on the trip topic, one line each.

The feed reads every partition from the start without a consumer group, so it
commits no offsets and moves no one else's. Without `follow` it stops at the ends the
partitions had when it started; with `follow` it goes on until interrupted.
"""

import asyncio
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition
from rich.markup import escape

from models.codec import loads
from models.errors import InvalidRecord, SpendstreamError
from models.records import BreakerTrip
from models.validation import validate
from streams.settings import Settings
from streams.topics import Topics

POLL_MS = 500
ASSIGN_TIMEOUT_S = 30.0


class NoTripTopic(SpendstreamError):
    """The trip topic does not exist yet (a worker creates it when it starts)."""


def trip_line(trip: BreakerTrip) -> str:
    """One trip as a line of rich markup: when, what, which session, why.

    Amounts are rounded for reading (cents; the rate to 1e-4 USD/s).
    """
    at = trip.ts.strftime("%Y-%m-%d %H:%M:%S")
    who = escape(f"{trip.session_id}  {trip.agent or '-'}  {trip.principal or '-'}")
    if trip.state == "unfrozen":
        return f"{at}  [green]UNFROZEN[/]  {who}"
    why = (
        f"{escape(trip.rule)}: ${trip.spend_usd:,.2f} in {trip.window_s:g}s"
        f" > ${trip.threshold_usd:,.2f} ({trip.rate_usd_per_s:.4f} USD/s)"
    )
    return f"{at}  [bold red]FROZEN[/]    {who}  {why}"


def decode_trip(record: ConsumerRecord[bytes, bytes]) -> BreakerTrip:
    """A record of the trip topic as a `BreakerTrip`; `InvalidRecord` if it is not."""
    return validate(BreakerTrip, loads(record.value or b""))


async def _subscribe(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Every partition of `topic`, assigned without a group (the earliest first)."""
    if topic not in await consumer.topics():
        msg = f"no topic {topic} at the broker yet; a worker creates it when it starts"
        raise NoTripTopic(msg)
    consumer.subscribe([topic])
    async with asyncio.timeout(ASSIGN_TIMEOUT_S):
        while not consumer.assignment():
            await asyncio.sleep(0.05)
    return sorted(consumer.assignment())


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    """Whether some partition is not yet read up to its end at the start."""
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


async def read_trips(
    settings: Settings,
    follow: bool,
    on_trip: Callable[[BreakerTrip], None],
    on_bad: Callable[[ConsumerRecord[bytes, bytes], InvalidRecord], None],
) -> None:
    """Call `on_trip` per trip (`on_bad` per bad record), each partition in order."""
    topic = Topics(settings.topic_prefix).breaker_trips
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        await consumer.start()
        tps = await _subscribe(consumer, topic)
        ends = await consumer.end_offsets(tps)
        while follow or await _behind(consumer, ends):
            batches = await consumer.getmany(timeout_ms=POLL_MS)
            for records in batches.values():
                for record in records:
                    try:
                        on_trip(decode_trip(record))
                    except InvalidRecord as exc:
                        on_bad(record, exc)
    finally:
        await consumer.stop()
