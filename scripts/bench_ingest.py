"""Events/s through one spendstream worker, beside a bare aiokafka ceiling.

Both read the same pre-produced backlog from the same broker in the same run:

- ceiling: a plain aiokafka consumer that decodes and validates every event
  (`models.events.decode_cost_event`) and does nothing else;
- spendstream: one `spendstream worker` process, timed from its partitions
  being assigned until ClickHouse holds every event (its health reports the
  flushed offsets only after the ClickHouse write and the commit).

Usage: scripts/bench [--events N] [--partitions P]. Needs the broker
(`scripts/kafka up`, or SPENDSTREAM_KAFKA). This machine is shared: quote the
ratio of one run, not absolute figures from different runs.
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from bench_worker import bench_settings, free_port, spawn_worker
from rich.console import Console
from rich.table import Table

from models.codec import dumps
from models.events import decode_cost_event
from streams.settings import Settings
from streams.topics import ensure_topics, topic_specs

console = Console()
START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def backlog(n: int) -> list[tuple[bytes, bytes]]:
    """N cost events over 10 minutes of event time from a thousand sessions.

    A session keeps its agent, departments and model, as a real one does.
    """
    records = []
    for i in range(n):
        s = i % 1000
        session = f"bench-session-{s}"
        value = {
            "event_id": f"bench-{i}",
            "ts": (START + timedelta(seconds=600 * i / n)).isoformat(),
            "session_id": session,
            "agent": f"agent-{s % 25}",
            "principal": ("research", "marketing", "engineering")[s % 3],
            "owner": ("research", "engineering")[s % 2],
            "model": ("gpt-4o", "claude-sonnet-4-5", "gpt-4o-mini")[s % 3],
            "input_tokens": 800 + i % 400,
            "output_tokens": 120 + i % 80,
            "cost_usd": f"0.{i % 100000:06d}",
        }
        records.append((session.encode(), dumps(value)))
    return records


async def produce(kafka: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        pending = []
        for key, value in records:
            pending.append(await producer.send(topic, value, key=key))
        await producer.flush()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def ceiling(kafka: str, topic: str, n: int) -> float:
    """Events/s of a bare consumer that decodes and validates each event."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka,
        group_id=f"{topic}-ceiling",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=5000,
    )
    await consumer.start()
    try:
        seen, started = 0, 0.0
        while seen < n:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            if batches and not started:
                started = time.perf_counter()
            for records in batches.values():
                for record in records:
                    decode_cost_event(record.value)
                seen += len(records)
        return n / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
        return json.loads(r.read())


def worker_rate(settings: Settings, n: int, log: Path) -> float:
    """Events/s of one worker from assignment until ClickHouse holds all N."""
    port = settings.web_port
    proc = spawn_worker(settings, log)
    try:
        started = flushed = 0.0
        while True:
            if proc.poll() is not None:
                sys.exit(f"bench: the worker exited; see {log}")
            try:
                parts = health(port)["events"]["partitions"]
            except OSError:
                time.sleep(0.05)
                continue
            if parts and not started:
                started = time.perf_counter()
            flushed = sum(p["flushed"] + 1 for p in parts.values())
            if flushed >= n:
                return n / (time.perf_counter() - started)
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--events", type=int, default=200_000)
    args.add_argument("--partitions", type=int, default=4)
    opts = args.parse_args()
    work = Path(tempfile.mkdtemp(prefix="spendstream-bench-"))
    settings = bench_settings(
        "bench", work, events_partitions=opts.partitions, web_port=free_port()
    )
    kafka, prefix = settings.kafka, settings.topic_prefix
    asyncio.run(ensure_topics(settings, topic_specs(settings)))
    topic = f"{prefix}events"

    with console.status(f"producing {opts.events:,} events to {topic}"):
        asyncio.run(produce(kafka, topic, backlog(opts.events)))
    with console.status("ceiling: bare aiokafka consumer, decode and validate"):
        raw = asyncio.run(ceiling(kafka, topic, opts.events))
    with console.status("spendstream: one worker, until ClickHouse holds all"):
        ours = worker_rate(settings, opts.events, work / "worker.log")

    table = Table(title=f"{opts.events:,} events, {opts.partitions} partitions")
    table.add_column("path")
    table.add_column("events/s", justify="right")
    table.add_row("bare aiokafka: decode + validate", f"{raw:,.0f}")
    table.add_row("spendstream worker: into ClickHouse", f"{ours:,.0f}")
    table.add_row("ratio", f"{ours / raw:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
