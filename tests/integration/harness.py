"""Driving real workers and a real broker from tests."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from models.codec import dumps
from streams.settings import Settings
from streams.store import Store
from streams.topics import ensure_topics, topic_specs

SPENDSTREAM = Path(sys.executable).with_name("spendstream")


def isolated_env(kafka: str, prefix: str, folder: Path) -> dict[str, str]:
    """Worker environment with its own topics, group and store under `folder`."""
    return {
        "SPENDSTREAM_KAFKA": kafka,
        "SPENDSTREAM_TOPIC_PREFIX": prefix,
        "SPENDSTREAM_APP_ID": prefix.rstrip("."),
        "SPENDSTREAM_CLICKHOUSE": f"chdb://{folder / 'store'}",
        "SPENDSTREAM_DATA_DIR": str(folder / "worker"),
        "SPENDSTREAM_FLUSH_INTERVAL_S": "0.2",
        "SPENDSTREAM_EVENTS_PARTITIONS": "3",
    }


def settings_of(env: dict[str, str]) -> Settings:
    """The settings a worker with environment `env` runs with."""
    return Settings(
        **{k.removeprefix("SPENDSTREAM_").lower(): v for k, v in env.items()}
    )


def create_topics(env: dict[str, str]) -> None:
    """Create a test's topics as a worker with environment `env` would."""
    settings = settings_of(env)
    asyncio.run(ensure_topics(settings, topic_specs(settings)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WorkerProcess:
    """One `spendstream worker` process and its HTTP port."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc = proc
        self.port = port
        self.log = log
        self.health_before_kill_caught_up = False

    @classmethod
    def start(cls, env: dict[str, str], port: int, log: Path) -> "WorkerProcess":
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [str(SPENDSTREAM), "worker", "--web-port", str(port)],
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        worker = cls(proc, port, log)
        worker.wait_until(lambda h: h["events"]["partitions"], "partitions assigned")
        return worker

    def get(self, path: str) -> bytes:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return bytes(response.read())

    def call(self, path: str) -> tuple[int, Any]:
        """GET `path`: the status and the JSON body, errors included."""
        try:
            return 200, json.loads(self.get(path))
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def health(self) -> dict[str, Any]:
        return dict(json.loads(self.get("/healthz")))

    def metric(self, name: str, **labels: str) -> float:
        """The value of one Prometheus sample, 0 when absent."""
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        sample = f"{name}{{{want}}}" if want else name
        for line in self.get("/metrics").decode().splitlines():
            if line.startswith(sample + " "):
                return float(line.split()[-1])
        return 0.0

    def wait_until(self, check: Any, what: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited; see {self.log}")
            try:
                if check(self.health()):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"worker: no {what} within {timeout_s}s; see {self.log}")

    def wait_caught_up(self, records: int, timeout_s: float = 90) -> None:
        """Wait until `records` (all of a fresh topic) are read and flushed."""

        def done(health: dict[str, Any]) -> bool:
            parts = health["events"]["partitions"].values()
            flushed = sum(p["flushed"] + 1 for p in parts)
            return bool(health["events"]["caught_up"]) and flushed >= records

        self.wait_until(done, f"{records} records flushed", timeout_s)

    def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM, and wait for a clean exit."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)

    def kill(self) -> None:
        """SIGKILL; remembers whether the worker had caught up just before."""
        if self.proc.poll() is None:
            try:
                self.health_before_kill_caught_up = self.health()["events"]["caught_up"]
            except OSError:
                self.health_before_kill_caught_up = False
            self.proc.kill()
            self.proc.wait()


def event(i: int, cost_usd: str = "0.10", **fields: Any) -> dict[str, Any]:
    """A valid cost event; `fields` override or add fields."""
    return {
        "event_id": f"ev-{i}",
        "ts": f"2026-11-30T12:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "session_id": f"session-{i % 7}",
        "agent": "researcher",
        "principal": "research",
        "cost_usd": cost_usd,
        **fields,
    }


async def _produce(
    kafka: str, topic: str, records: Iterable[tuple[bytes | None, bytes]]
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka, max_request_size=4 * 1024 * 1024, linger_ms=5
    )
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def produce(kafka: str, topic: str, records: Iterable[Any]) -> None:
    """Send records with a plain aiokafka producer: dicts as JSON, bytes as they are."""
    encoded = []
    for record in records:
        if isinstance(record, dict):
            encoded.append((str(record.get("session_id", "")).encode(), dumps(record)))
        else:
            encoded.append((b"raw", record))
    asyncio.run(_produce(kafka, topic, encoded))


def produce_keyed(kafka: str, topic: str, records: Iterable[tuple[str, Any]]) -> None:
    """Send `(key, record)` pairs, records as JSON, in the order given."""
    encoded = [(key.encode(), dumps(record)) for key, record in records]
    asyncio.run(_produce(kafka, topic, encoded))


async def _consume(
    kafka: str, topic: str, count: int, timeout_s: float, keyed: bool = False
) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    got: list[Any] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(got) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for r in records:
                    value = json.loads(r.value)
                    got.append((r.key.decode(), value) if keyed else value)
    finally:
        await consumer.stop()
    return got


def consume(kafka: str, topic: str, count: int, timeout_s: float = 30) -> list[Any]:
    """Read up to `count` JSON records from the start of `topic`."""
    return asyncio.run(_consume(kafka, topic, count, timeout_s))


def consume_keyed(
    kafka: str, topic: str, count: int, timeout_s: float = 30
) -> list[tuple[str, Any]]:
    """Read up to `count` records from the start of `topic`: (key, JSON value)."""
    return asyncio.run(_consume(kafka, topic, count, timeout_s, keyed=True))


def totals(store_url: str) -> tuple[int, Decimal, int, int]:
    """Events, cost, input and output tokens summed over `spend_minute`."""
    store = Store.open(store_url)
    try:
        [row] = store.query(
            "SELECT sum(events), sum(cost_usd), sum(input_tokens), sum(output_tokens)"
            " FROM {db}.spend_minute"
        )
        return int(row[0]), Decimal(row[1]), int(row[2]), int(row[3])
    finally:
        store.close()
