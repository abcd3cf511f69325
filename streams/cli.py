"""The `spendstream` command."""

import argparse
import json
import logging
import sys
from pathlib import Path

from streams.settings import Settings


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
