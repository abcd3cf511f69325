"""Breaker benchmark: trip latency under load, and memory per session.

latency: one `spendstream worker` process reads a background load of calm
sessions (default 10,000 events/s from 20,000 sessions, produced by a second
process); every `--probe-every-ms` a probe session sends one $1.50 event,
above the default $1.00 in 10 s. Its latency runs from just before the probe
is produced until its trip is read from `spend.breaker-trips`, both on this
process's clock. Also printed: the worker's flush times and how far behind
the load it ended.

memory: in this process, with the models only: a million sessions (the
worker's `SessionState`, in a dict by session id as the worker keeps them),
each with a few events in its windows, measured with tracemalloc.

Usage: scripts/bench breaker [latency|memory] [options]. Needs the broker for
latency (`scripts/kafka up`, or SPENDSTREAM_KAFKA). The machine is shared:
quote figures of one run, with the load it had.
"""

import argparse
import asyncio
import gc
import json
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.error
import urllib.request
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from bench_worker import bench_settings, free_port, spawn_worker
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from models.breaker import Breaker, SessionState
from models.codec import dumps
from models.windows import epoch_ms
from streams.routing import partition_for
from streams.settings import Settings
from streams.topics import ensure_topics, topic_specs

console = Console()
TICK_S = 0.02


def load_value(i: int, sessions: int, ts: str) -> bytes:
    """A calm background event: $0.0001, never near a limit."""
    s = i % sessions
    return (
        b'{"event_id":"bg-%d","ts":"%s","session_id":"bg-%d","agent":"agent-%d",'
        b'"principal":"research","model":"gpt-4o-mini","cost_usd":"0.0001"}'
        % (i, ts.encode(), s, s % 50)
    )


async def produce_load(
    kafka: str, topic: str, rate: int, sessions: int, seconds: float
) -> None:
    """`rate` events/s for `seconds`, in ticks; event time is the wall clock.

    Records go in batches built here (`send_batch`, about 2 us a record
    against 40 us for `send`), so the load takes little of the CPU the worker
    needs on a small machine. Keys pick partitions as the default partitioner.
    """
    producer = AIOKafkaProducer(bootstrap_servers=kafka, max_batch_size=1 << 20)
    await producer.start()
    partitions = sorted(await producer.partitions_for(topic))
    try:
        i, started = 0, time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            due = min(int(elapsed * rate) + int(TICK_S * rate), i + rate // 4)
            batches = {p: producer.create_batch() for p in partitions}
            ts = datetime.now(UTC).isoformat()
            for n in range(i, due):
                key = b"bg-%d" % (n % sessions)
                batch = batches[partition_for(key.decode(), len(partitions))]
                added = batch.append(
                    key=key, value=load_value(n, sessions, ts), timestamp=None
                )
                assert added is not None, "a tick's batch is full; lower --rate"
            i = max(i, due)
            sends = [
                await producer.send_batch(b, topic, partition=p)
                for p, b in batches.items()
            ]
            await asyncio.gather(*sends)
            await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
        print(f"load: {i:,} events in {time.monotonic() - started:.1f}s", flush=True)
    finally:
        await producer.stop()


def load_process(
    kafka: str, topic: str, rate: int, sessions: int, seconds: float
) -> None:
    asyncio.run(produce_load(kafka, topic, rate, sessions, seconds))


def probe_value(n: int) -> bytes:
    ts = datetime.now(UTC).isoformat()
    return dumps(
        {
            "event_id": f"probe-{n}",
            "ts": ts,
            "session_id": f"probe-{n}",
            "agent": "runaway",
            "principal": "research",
            "cost_usd": "1.50",
        }
    )


async def probe(kafka: str, prefix: str, count: int, every_s: float) -> list[float]:
    """Trip latencies in ms of `count` probes, one every `every_s`."""
    consumer = AIOKafkaConsumer(
        f"{prefix}breaker-trips", bootstrap_servers=kafka, auto_offset_reset="latest"
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka)
    await consumer.start()
    await producer.start()
    await consumer.seek_to_end()
    sent_s: dict[str, float] = {}
    latencies_ms: list[float] = []
    reader = asyncio.create_task(read_trips(consumer, sent_s, latencies_ms, count))
    try:
        for n in range(count):
            sent_s[f"probe-{n}"] = time.perf_counter()
            await producer.send(f"{prefix}events", probe_value(n), key=b"probe-%d" % n)
            await asyncio.sleep(every_s)
        await asyncio.wait_for(reader, timeout=30)
    except TimeoutError:
        console.print(f"[yellow]{count - len(latencies_ms)} probes never tripped[/]")
    finally:
        reader.cancel()
        await producer.stop()
        await consumer.stop()
    return latencies_ms


async def read_trips(
    consumer: AIOKafkaConsumer, sent_s: dict[str, float], out: list[float], count: int
) -> None:
    while len(out) < count:
        batches = await consumer.getmany(timeout_ms=100)
        now_s = time.perf_counter()
        for records in batches.values():
            for record in records:
                trip = json.loads(record.value)
                started = sent_s.get(trip["session_id"])
                if started is not None and trip["state"] == "frozen":
                    out.append((now_s - started) * 1000)


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Until the worker owns its partitions and the breaker has restored them."""
    while True:
        if proc.poll() is not None:
            sys.exit(f"bench: the worker exited; see {log}")
        try:
            if get(port, "/v1/sessions/warm-up")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)


def worker_metrics(ports: list[int]) -> dict[str, float]:
    """A few of the workers' Prometheus samples, summed over labels and workers."""
    wanted = {
        "spendstream_flush_seconds_sum",
        "spendstream_flush_seconds_count",
        "spendstream_consumer_lag",
        "spendstream_breaker_trips_total",
        "spendstream_events_total",
    }
    found = dict.fromkeys(wanted, 0.0)
    for port in ports:
        text = get(port, "/metrics")[1].decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in wanted:
                    found[sample.name] += sample.value
    return found


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def latency(opts: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="spendstream-bench-breaker-"))
    settings = bench_settings("benchbrk", work, events_partitions=opts.partitions)
    kafka, prefix = settings.kafka, settings.topic_prefix
    asyncio.run(ensure_topics(settings, topic_specs(settings)))
    workers = [
        start_worker(settings, work / f"worker-{n}") for n in range(opts.workers)
    ]
    try:
        for proc, port, log in workers:
            wait_ready(proc, port, log)
        measure(opts, kafka, prefix, [port for _, port, _ in workers])
    finally:
        for proc, _, _ in workers:
            proc.terminate()
        for proc, _, _ in workers:
            proc.wait(timeout=60)


def start_worker(
    settings: Settings, folder: Path
) -> tuple[subprocess.Popen[bytes], int, Path]:
    """A worker with its own embedded store (one process per chdb folder)."""
    folder.mkdir(parents=True)
    log, port = folder / "worker.log", free_port()
    own = {
        "clickhouse": f"chdb://{folder / 'store'}",
        "data_dir": folder / "data",
        "web_port": port,
    }
    return spawn_worker(settings.model_copy(update=own), log), port, log


def keep_up(ports: list[int], rate: int, opts: argparse.Namespace) -> None:
    """Wait the warm-up, then until the workers are less than 0.2 s of load behind."""
    time.sleep(opts.warm_up_s)
    deadline_s = time.monotonic() + opts.catch_up_s
    while worker_metrics(ports)["spendstream_consumer_lag"] > rate / 5:
        if time.monotonic() > deadline_s:
            console.print(f"[yellow]the workers are behind after {opts.catch_up_s}s[/]")
            return
        time.sleep(0.5)


def measure(
    opts: argparse.Namespace, kafka: str, prefix: str, ports: list[int]
) -> None:
    probing_s = opts.probes * opts.probe_every_ms / 1000
    seconds = opts.warm_up_s + opts.catch_up_s + probing_s + 5
    load = multiprocessing.Process(
        target=load_process,
        args=(kafka, f"{prefix}events", opts.rate, opts.sessions, seconds),
    )
    load.start()
    keep_up(ports, opts.rate, opts)
    before = worker_metrics(ports)
    with console.status(f"{opts.probes} probes over {probing_s:.0f}s under load"):
        got = asyncio.run(probe(kafka, prefix, opts.probes, opts.probe_every_ms / 1000))
    after = worker_metrics(ports)
    load.terminate()
    load.join()
    report(opts, got, before, after)


def report(
    opts: argparse.Namespace,
    latencies_ms: list[float],
    before: dict[str, float],
    after: dict[str, float],
) -> None:
    flushes = (
        after["spendstream_flush_seconds_count"]
        - before["spendstream_flush_seconds_count"]
    )
    flush_s = (
        after["spendstream_flush_seconds_sum"] - before["spendstream_flush_seconds_sum"]
    )
    table = Table(
        title=f"trip latency: {opts.rate:,} events/s from {opts.sessions:,} sessions, "
        f"{opts.partitions} partitions, {opts.workers} worker(s)"
    )
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("probes tripped", f"{len(latencies_ms)} of {opts.probes}")
    table.add_row("p50", f"{statistics.median(latencies_ms):.1f} ms")
    table.add_row("p99", f"{percentile(latencies_ms, 99):.1f} ms")
    table.add_row("max", f"{max(latencies_ms):.1f} ms")
    table.add_row("flushes landed (while probing)", f"{flushes:.0f}")
    table.add_row("mean landing", f"{1000 * flush_s / max(flushes, 1):.1f} ms")
    read = after["spendstream_events_total"] - before["spendstream_events_total"]
    table.add_row("events read (while probing)", f"{read:,.0f}")
    table.add_row(
        "consumer lag at the end", f"{after['spendstream_consumer_lag']:,.0f}"
    )
    console.print(table)


def memory(opts: argparse.Namespace) -> None:
    """Bytes per session held by a million sessions' breaker states."""
    breaker, start_ms = Breaker(), epoch_ms(datetime(2026, 11, 30, tzinfo=UTC))
    cost, wall_ms = Decimal("0.002"), time.time_ns() // 1_000_000
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    sessions: dict[str, SessionState] = {}
    with console.status(f"{opts.sessions:,} sessions, {opts.events} events each"):
        for n in range(opts.sessions):
            state = sessions[f"sess-{n:08x}"] = breaker.restore(f"sess-{n:08x}", None)
            state.touched_wall_ms = wall_ms
            for k in range(opts.events):
                state.windows.add(start_ms + n % 600_000 + k * 2_500, cost)
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    started_s = time.perf_counter()
    gc.collect()
    full_gc_s = time.perf_counter() - started_s
    sample = next(iter(sessions.values()))
    table = Table(
        title=f"memory: {opts.sessions:,} sessions, {opts.events} events each"
    )
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("held (tracemalloc)", f"{held / 2**20:,.0f} MiB")
    table.add_row("per session", f"{held / opts.sessions:,.0f} bytes")
    table.add_row("changelog value per session", f"{len(sample.to_bytes()):,} bytes")
    table.add_row("objects the collector tracks", f"{len(gc.get_objects()):,}")
    table.add_row("one full collection", f"{full_gc_s * 1000:,.0f} ms")
    console.print(table)


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = args.add_subparsers(dest="what")
    lat = sub.add_parser("latency", help="trip latency under load (default)")
    lat.add_argument("--rate", type=int, default=10_000, help="background events/s")
    lat.add_argument("--sessions", type=int, default=20_000, help="background sessions")
    lat.add_argument("--partitions", type=int, default=4)
    lat.add_argument("--workers", type=int, default=1, help="worker processes")
    lat.add_argument("--probes", type=int, default=300)
    lat.add_argument("--probe-every-ms", type=int, default=100)
    lat.add_argument("--warm-up-s", type=float, default=10)
    lat.add_argument(
        "--catch-up-s", type=float, default=60, help="then at most this for lag"
    )
    mem = sub.add_parser("memory", help="memory per session, in process")
    mem.add_argument("--sessions", type=int, default=1_000_000)
    mem.add_argument("--events", type=int, default=3, help="events per session")
    argv = sys.argv[1:]
    if not argv or argv[0] not in ("latency", "memory", "-h", "--help"):
        argv = ["latency", *argv]
    opts = args.parse_args(argv)
    memory(opts) if opts.what == "memory" else latency(opts)


if __name__ == "__main__":
    main()
