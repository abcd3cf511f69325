"""A gateway's side of the grants API, for tests: commands, authorize, spend."""

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer

from models.codec import dumps
from streams.grant_landing import rows_behind
from streams.settings import Settings
from tests.integration.harness import WorkerProcess

TS = "2026-11-30T12:00:00Z"


def command(command: str, grant_id: str, **fields: Any) -> dict[str, Any]:
    """A grant command for `spend.grants`."""
    return {"command": command, "grant_id": grant_id, "ts": TS, **fields}


def send_commands(kafka: str, prefix: str, commands: list[dict[str, Any]]) -> None:
    """Produce grant commands to `spend.grants`, keyed by `grant_id`."""

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
        await producer.start()
        try:
            for value in commands:
                key = str(value.get("grant_id", "")).encode()
                await producer.send_and_wait(f"{prefix}grants", dumps(value), key=key)
        finally:
            await producer.stop()

    asyncio.run(run())


def call(
    worker: WorkerProcess, path: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    """GET (or POST `body` to) a worker: the status and the JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{worker.port}{path}",
        data=data,
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            return error.code, json.loads(text)
        except ValueError:
            return error.code, {"error": text.decode(errors="replace")}


def grant(worker: WorkerProcess, grant_id: str) -> dict[str, Any] | None:
    """`GET /v1/grants/{id}`, None for 404."""
    status, body = call(worker, f"/v1/grants/{grant_id}")
    assert status in (200, 404), (status, body)
    return body if status == 200 else None


def wait_for(check: Callable[[], Any], what: str, timeout_s: float = 60) -> Any:
    """Poll `check` until it returns something true; that value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = check()
        except (OSError, AssertionError):
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {timeout_s}s")


def wait_landed(kafka: str, prefix: str, timeout_s: float = 60) -> None:
    """Wait until the workers have landed every grant_activity row they stored."""
    settings = Settings(kafka=kafka, topic_prefix=prefix, app_id=prefix.rstrip("."))
    wait_for(
        lambda: asyncio.run(rows_behind(settings)) == 0,
        "grant_activity landed",
        timeout_s,
    )


def wait_grants_ready(worker: WorkerProcess) -> None:
    """Wait until the worker answers grant calls (its table is restored)."""
    wait_for(
        lambda: call(worker, "/v1/grants/no-such-grant")[0] == 404,
        "grants API answering",
        timeout_s=90,
    )


def settled(worker: WorkerProcess, grant_id: str, **numbers: str) -> dict[str, Any]:
    """Wait until the grant shows `numbers` (e.g. spent_usd="5.000000000")."""

    last: list[dict[str, Any] | None] = [None]

    def check() -> dict[str, Any] | None:
        view = last[0] = grant(worker, grant_id)
        if view and all(view[k] == v for k, v in numbers.items()):
            return view
        return None

    try:
        view: dict[str, Any] = wait_for(check, f"grant {grant_id} with {numbers}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen: {last[0]}") from None
    return view


@dataclass
class Gateway:
    """An agent's gateway: authorizes over HTTP, reports calls to Kafka."""

    kafka: str
    prefix: str
    worker: WorkerProcess
    session: aiohttp.ClientSession
    producer: AIOKafkaProducer

    async def authorize(
        self, grant_id: str, amount_usd: str, reservation_id: str, **extra: Any
    ) -> tuple[int, dict[str, Any]]:
        url = f"http://127.0.0.1:{self.worker.port}/v1/grants/{grant_id}/authorize"
        body = {"amount_usd": amount_usd, "reservation_id": reservation_id, **extra}
        async with self.session.post(url, json=body) as answer:
            return answer.status, await answer.json()

    async def spend(self, event_id: str, cost_usd: str, **fields: Any) -> None:
        """Report one call on `spend.events` (keyed by its session)."""
        value = {
            "event_id": event_id,
            "ts": TS,
            "session_id": fields.pop("session_id", "research-session"),
            "agent": "researcher",
            "principal": "research",
            "cost_usd": cost_usd,
            **fields,
        }
        key = value["session_id"].encode()
        await self.producer.send_and_wait(f"{self.prefix}events", dumps(value), key=key)


def with_gateway(
    kafka: str, prefix: str, worker: WorkerProcess, story: Callable[[Gateway], Any]
) -> Any:
    """Run the async `story` with a connected gateway; its result."""

    async def run() -> Any:
        producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
        await producer.start()
        try:
            async with aiohttp.ClientSession() as session:
                return await story(Gateway(kafka, prefix, worker, session, producer))
        finally:
            await producer.stop()

    return asyncio.run(run())
