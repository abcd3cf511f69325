"""`spendstream emit`: one cost event from the command line, checked, then sent.

The event is validated (and, without `--cost-usd`, priced) by `models.events`
before anything is sent, so a mistake is told at once instead of landing in
the DLQ. What is sent is the event as given: the worker prices it again.
"""

import argparse
import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from models.codec import dumps
from models.events import CostEvent, decode_cost_event
from models.fleet import rfc3339
from streams.settings import Settings
from streams.topics import Topics

SEND_TIMEOUT_S = 30.0

_OPTIONAL_TEXT = ("owner", "user", "grant_id", "task_id", "model", "provider")
_TOKENS = ("input_tokens", "output_tokens", "cached_input_tokens")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `emit` flags: one per cost event field."""
    required = parser.add_argument_group("required")
    for name in ("session", "agent", "principal"):
        required.add_argument(f"--{name}", required=True)
    parser.add_argument("--cost-usd", help="decimal USD; omit to price from tokens")
    parser.add_argument("--kind", choices=["llm", "tool", "agent"], default="llm")
    for name in _OPTIONAL_TEXT:
        parser.add_argument(f"--{name.replace('_', '-')}")
    for name in _TOKENS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=int)
    parser.add_argument("--event-id", help="default: a new UUID")
    parser.add_argument("--ts", help="RFC 3339 event time (default: now)")
    parser.add_argument(
        "--attribute",
        action="append",
        default=[],
        type=attribute_pair,
        metavar="KEY=VALUE",
        help="a free-form attribute (repeatable)",
    )


def event_value(args: argparse.Namespace) -> dict[str, Any]:
    """The cost event the flags describe, as the JSON object a gateway sends."""
    value: dict[str, Any] = {
        "event_id": args.event_id or str(uuid.uuid4()),
        "ts": args.ts or rfc3339(datetime.now(UTC)),
        "session_id": args.session,
        "agent": args.agent,
        "principal": args.principal,
        "kind": args.kind,
    }
    for name in (*_OPTIONAL_TEXT, *_TOKENS, "cost_usd"):
        if getattr(args, name) is not None:
            value[name] = getattr(args, name)
    if args.attribute:
        value["attributes"] = dict(args.attribute)
    return value


def attribute_pair(item: str) -> tuple[str, str]:
    """`KEY=VALUE` as a pair; argparse reports anything else."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        msg = f"--attribute {item!r} is not KEY=VALUE"
        raise argparse.ArgumentTypeError(msg)
    return key, value


def check(value: dict[str, Any]) -> CostEvent:
    """The event as a worker would read it; `InvalidRecord` says what is wrong."""
    return decode_cost_event(dumps(value))


async def _send(settings: Settings, key: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka, acks="all")
    try:
        await producer.start()
        topic = Topics(settings.topic_prefix).events
        send = await producer.send(topic, value, key=key.encode())
        await asyncio.wait_for(send, SEND_TIMEOUT_S)
    finally:
        await producer.stop()


def emit(settings: Settings, value: dict[str, Any]) -> CostEvent:
    """Check the event, send it keyed by its session, wait for the broker's ack."""
    event = check(value)
    asyncio.run(_send(settings, event.session_id, dumps(value)))
    return event
