"""Authorize on one spendstream worker: round trip p50/p99 and authorizations/s.

One `spendstream worker` on a fresh topic prefix, with a pool of open grants
(per-request budgets: each holds a few authorizations at a time). Measured in
the same run, over loopback:

- a bare Kafka round trip (one produce, acks=all) from this process: the
  floor under an authorization, which waits for one such acknowledgement;
- the authorize round trip, one call at a time (p50, p99);
- authorizations/s with many callers at once (they share the worker's cycles).

Usage: scripts/bench grants [--calls N] [--callers C] [--grants G] [--hold-s S]
(holds time out after S and are released by the worker's sweep). Needs the
broker (`scripts/kafka up`, or SPENDSTREAM_KAFKA). The machine is shared and
noisy: quote ratios from one run.
"""

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaProducer
from bench_worker import bench_settings, free_port, spawn_worker
from rich.console import Console
from rich.table import Table

from models.codec import dumps
from streams.topics import ensure_topics, topic_specs

console = Console()
PORT = free_port()


def percentile_ms(samples_s: list[float], q: float) -> float:
    ordered = sorted(samples_s)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


async def kafka_round_trips(kafka: str, topic: str, n: int) -> list[float]:
    """Seconds per produce-and-ack, one at a time."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
    await producer.start()
    try:
        took = []
        for i in range(n):
            started = time.perf_counter()
            await producer.send_and_wait(topic, b"{}", key=f"bench-{i % 50}".encode())
            took.append(time.perf_counter() - started)
        return took
    finally:
        await producer.stop()


async def open_grants(kafka: str, prefix: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
    await producer.start()
    try:
        for n in range(count):
            command = {
                "command": "open",
                "grant_id": f"bench-{n}",
                "ts": "2026-11-30T12:00:00Z",
                "limit_usd": "1000000",
            }
            await producer.send(
                f"{prefix}grants", dumps(command), key=command["grant_id"].encode()
            )
        await producer.flush()
    finally:
        await producer.stop()


def wait_open(count: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until the worker shows the last grant of the pool."""
    url = f"http://127.0.0.1:{PORT}/v1/grants/bench-{count - 1}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bench: the worker exited; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    sys.exit(f"bench: the grants did not open within 120s; see {log}")


async def authorize(
    session: aiohttp.ClientSession, n: int, grants: int, hold_s: float
) -> float:
    """Seconds for one authorization of a millionth of a dollar."""
    url = f"http://127.0.0.1:{PORT}/v1/grants/bench-{n % grants}/authorize"
    body = {"amount_usd": "0.000001", "hold_s": hold_s}
    started = time.perf_counter()
    async with session.post(url, json=body) as answer:
        await answer.read()
        if answer.status != 200:
            sys.exit(f"bench: authorize answered {answer.status}")
    return time.perf_counter() - started


async def one_at_a_time(calls: int, grants: int, hold_s: float) -> list[float]:
    async with aiohttp.ClientSession() as session:
        for n in range(200):  # warm up: connections, decoded entries
            await authorize(session, n, grants, hold_s)
        return [await authorize(session, n, grants, hold_s) for n in range(calls)]


async def many_at_once(calls: int, callers: int, grants: int, hold_s: float) -> float:
    """Authorizations/s with `callers` calling at once."""
    pending = iter(range(calls))

    async def caller(session: aiohttp.ClientSession) -> None:
        for n in pending:
            await authorize(session, n, grants, hold_s)

    connector = aiohttp.TCPConnector(limit=callers)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(caller(session) for _ in range(callers)))
        return calls / (time.perf_counter() - started)


def report(
    opts: argparse.Namespace, floor: list[float], single: list[float], rate: float
) -> None:
    title = f"authorize on one worker, {opts.grants} grants, {opts.hold_s:g}s holds"
    table = Table(title=title)
    for name in ("measure", "p50 ms", "p99 ms", "mean ms"):
        table.add_column(name, justify="left" if name == "measure" else "right")
    for name, samples in (
        ("bare Kafka produce + ack", floor),
        ("authorize round trip", single),
    ):
        table.add_row(
            name,
            f"{percentile_ms(samples, 0.50):.2f}",
            f"{percentile_ms(samples, 0.99):.2f}",
            f"{statistics.fmean(samples) * 1000:.2f}",
        )
    console.print(table)
    console.print(f"authorizations/s, {opts.callers} callers at once: {rate:,.0f}")
    ratio = percentile_ms(single, 0.5) / percentile_ms(floor, 0.5)
    console.print(f"authorize p50 / bare Kafka p50: {ratio:.1f}")


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--calls", type=int, default=3_000)
    args.add_argument("--callers", type=int, default=32)
    args.add_argument("--grants", type=int, default=100)
    args.add_argument(
        "--hold-s", type=float, default=2.0, help="holds time out, swept each second"
    )
    opts = args.parse_args()
    work = Path(tempfile.mkdtemp(prefix="spendstream-bench-grants-"))
    settings = bench_settings("benchg", work, web_port=PORT)
    kafka, prefix = settings.kafka, settings.topic_prefix
    asyncio.run(ensure_topics(settings, topic_specs(settings)))

    log = work / "worker.log"
    proc = spawn_worker(settings, log)
    try:
        with console.status(f"opening {opts.grants} grants on a fresh worker"):
            asyncio.run(open_grants(kafka, prefix, opts.grants))
            wait_open(opts.grants, proc, log)
        with console.status("bare Kafka round trips"):
            floor = asyncio.run(kafka_round_trips(kafka, f"{prefix}dlq", opts.calls))
        with console.status(f"{opts.calls:,} authorizations, one at a time"):
            single = asyncio.run(one_at_a_time(opts.calls, opts.grants, opts.hold_s))
        with console.status(f"{opts.calls:,} authorizations, {opts.callers} callers"):
            rate = asyncio.run(
                many_at_once(opts.calls, opts.callers, opts.grants, opts.hold_s)
            )
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    report(opts, floor, single, rate)


if __name__ == "__main__":
    main()
