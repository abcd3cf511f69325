"""The `spendstream` command."""

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from models.errors import InvalidPeriod
from models.periods import parse_period
from models.statement_render import FORMATS
from streams.emit import add_arguments as add_emit_arguments
from streams.settings import Settings

if TYPE_CHECKING:
    from aiokafka.structs import ConsumerRecord

    from models.records import BreakerTrip


def _schema(args: argparse.Namespace) -> None:
    from models.schemas import json_schemas

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (out / f"{name}.schema.json").write_text(json.dumps(schema, indent=2) + "\n")
    print(f"wrote {len(json_schemas())} JSON Schemas to {out}")


def _worker(args: argparse.Namespace) -> None:
    from streams.worker import run_worker

    settings = Settings()
    if args.web_port is not None:
        settings = settings.model_copy(update={"web_port": args.web_port})
    run_worker(settings, loglevel=args.loglevel)


def _demo(args: argparse.Namespace) -> None:
    from streams.demo import run_demo

    sys.exit(run_demo(Settings(), sessions=args.sessions))


def _fleet(args: argparse.Namespace) -> None:
    from rich.console import Console

    from streams.fleet import fresh_seed, send_fleet

    seed = args.seed if args.seed is not None else fresh_seed()
    send_fleet(Settings(), args.sessions, seed, Console())


def _emit(args: argparse.Namespace) -> None:
    from aiokafka.errors import KafkaError
    from rich.console import Console

    from models.errors import InvalidRecord
    from streams.emit import emit, event_value

    settings, err = Settings(), Console(stderr=True, soft_wrap=True)
    try:
        event = emit(settings, event_value(args))
    except InvalidRecord as exc:
        err.print(f"[red]not sent:[/] {escape(exc.reason)}")
        sys.exit(2)
    except (KafkaError, TimeoutError) as exc:
        said = escape(str(exc) or type(exc).__name__)
        err.print(f"[red]not sent to {settings.kafka}:[/] {said}; is the broker up?")
        sys.exit(1)
    print(event.event_id)


def _trips(args: argparse.Namespace) -> None:
    import asyncio

    from rich.console import Console

    from streams.trip_feed import NoTripTopic, read_trips, trip_line

    out = Console(soft_wrap=True, highlight=False)
    err = Console(stderr=True, soft_wrap=True)

    def show(trip: "BreakerTrip") -> None:
        out.print(trip_line(trip))
        out.file.flush()

    def skip(record: "ConsumerRecord[bytes, bytes]", exc: Exception) -> None:
        where = f"partition {record.partition} offset {record.offset}"
        err.print(f"[yellow]skipped the record at {where}:[/] {escape(str(exc))}")

    try:
        asyncio.run(read_trips(Settings(), args.follow, show, skip))
    except NoTripTopic as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        sys.exit(1)
    except KeyboardInterrupt:
        pass


def _statement(args: argparse.Namespace) -> None:
    from streams.statement_cmd import run_statement

    sys.exit(run_statement(Settings(), args.period, args.format, args.out))


def _period(text: str) -> str:
    try:
        return parse_period(text)
    except InvalidPeriod as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_statement(sub: Any) -> None:
    statement = sub.add_parser(
        "statement",
        help="write a month's chargeback statement from ClickHouse",
        description=(
            "Write the chargeback statement of one month from ClickHouse "
            "ledger_entries, and say whether it reconciles (debits = credits = "
            "chargeable spend). An embedded store (chdb:///...) is locked by a "
            "running worker: stop the worker first, or use a ClickHouse server."
        ),
    )
    statement.add_argument(
        "--period", required=True, type=_period, help="the month, YYYY-MM (UTC)"
    )
    statement.add_argument("--format", choices=FORMATS, default="md")
    statement.add_argument(
        "--out", type=Path, help="write to this file (default: standard output)"
    )
    statement.set_defaults(run=_statement)


def _admin(args: argparse.Namespace) -> None:
    import asyncio

    from models.errors import SpendstreamError
    from models.policy import policy_table
    from streams.admin import policy_command, send_alone, unfreeze_command
    from streams.topics import Topics

    settings = Settings()
    try:
        if args.command == "unfreeze":
            command = unfreeze_command(args.session_id, args.by)
            done = f"unfreeze of session {args.session_id}"
        else:
            command = policy_command(policy_table(args.file), args.by)
            done = f"set_policy from {args.file}"
    except SpendstreamError as exc:
        sys.exit(f"spendstream: {exc}")
    asyncio.run(send_alone(settings, command))
    print(f"sent {done} to {Topics(settings.topic_prefix).admin}")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="spendstream", description="spend monitor for AI gateways, on Kafka"
    )
    sub = top.add_subparsers(dest="command", required=True)

    worker = sub.add_parser("worker", help="run a worker until SIGTERM")
    worker.add_argument("--web-port", type=int, help="HTTP port (default 6066)")
    worker.add_argument(
        "--loglevel", default="info", choices=["debug", "info", "warn", "error"]
    )
    worker.set_defaults(run=_worker)

    demo = sub.add_parser("demo", help="run a simulated fleet through a worker")
    demo.add_argument("--sessions", type=int, default=40, help="ordinary sessions")
    demo.set_defaults(run=_demo)

    fleet = sub.add_parser(
        "fleet", help="send the demo fleet to the configured topics (no worker)"
    )
    fleet.add_argument("--sessions", type=int, default=40, help="ordinary sessions")
    fleet.add_argument("--seed", type=int, help="ids follow the seed (default: new)")
    fleet.set_defaults(run=_fleet)

    emit = sub.add_parser("emit", help="send one cost event; prints its event id")
    add_emit_arguments(emit)
    emit.set_defaults(run=_emit)

    trips = sub.add_parser("trips", help="print the breaker trips on the trip topic")
    trips.add_argument(
        "--follow", action="store_true", help="keep printing trips as they arrive"
    )
    trips.set_defaults(run=_trips)

    _add_statement(sub)
    unfreeze = sub.add_parser("unfreeze", help="unfreeze a session (spend.admin)")
    unfreeze.add_argument("session_id")
    unfreeze.add_argument("--by", default="cli", help="who asks, for the record")
    unfreeze.set_defaults(run=_admin)

    policy = sub.add_parser("set-policy", help="replace the breaker policy everywhere")
    policy.add_argument("file", type=Path, help="a .toml, .yaml or .yml policy file")
    policy.add_argument("--by", default="cli", help="who asks, for the record")
    policy.set_defaults(run=_admin)

    schema = sub.add_parser("schema", help="write the records' JSON Schemas")
    schema.add_argument("--out", type=Path, default=Path("schemas"))
    schema.set_defaults(run=_schema)
    return top


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    args.run(args)
