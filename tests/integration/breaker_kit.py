"""What the breaker's tests use: spend patterns, HTTP calls, a webhook, trips."""

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from streams.store import Store
from tests.integration.harness import WorkerProcess, consume

START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TOKEN = "test-admin-token"


def spend(
    session_id: str,
    count: int,
    every_ms: int,
    cost_usd: str,
    *,
    start_ms: int = 0,
    agents: tuple[str, ...] = ("alice",),
    principal: str = "support",
) -> list[dict[str, Any]]:
    """`count` events of `cost_usd`, one every `every_ms`, agents taking turns."""
    return [
        {
            "event_id": f"{session_id}-{start_ms}-{i}",
            "ts": (START + timedelta(milliseconds=start_ms + i * every_ms)).isoformat(),
            "session_id": session_id,
            "agent": agents[i % len(agents)],
            "principal": principal,
            "cost_usd": cost_usd,
        }
        for i in range(count)
    ]


def politeness_loop(session_id: str, seconds: int = 120) -> list[dict[str, Any]]:
    """Two agents answering each other once a second each, $0.03 a message."""
    return spend(session_id, 2 * seconds, 500, "0.03", agents=("alice", "bob"))


def call(
    worker: WorkerProcess,
    method: str,
    path: str,
    token: str | None = None,
    body: dict[str, Any] | None = None,
) -> tuple[int, dict[str, Any]]:
    """An HTTP call to `worker`: the status and the JSON answer."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{worker.port}{path}", data, headers, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def session(
    worker: WorkerProcess, session_id: str, timeout_s: float = 30
) -> dict[str, Any]:
    """`GET /v1/sessions/{id}`, asked again while the answer is 503 (moving)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status, body = call(worker, "GET", f"/v1/sessions/{session_id}")
        if status != 503 or time.monotonic() > deadline:
            assert status == 200, body
            return body
        time.sleep(0.2)


def wait_for_state(
    worker: WorkerProcess, session_id: str, state: str, timeout_s: float = 30
) -> dict[str, Any]:
    """The session's answer once it shows `state`."""
    deadline = time.monotonic() + timeout_s
    while True:
        body = session(worker, session_id)
        if body["state"] == state:
            return body
        assert time.monotonic() < deadline, f"{session_id} not {state}: {body}"
        time.sleep(0.2)


def trip_records(kafka: str, prefix: str, at_least: int) -> list[dict[str, Any]]:
    """Every record on the trip topic: waits for `at_least`, then a moment more."""
    got = consume(kafka, f"{prefix}breaker-trips", at_least, timeout_s=30)
    assert len(got) >= at_least, got
    return consume(kafka, f"{prefix}breaker-trips", at_least + 1_000, timeout_s=2)


def stored_trips(store_url: str) -> tuple[list[tuple[Any, ...]], int]:
    """Rows of `breaker_trips` as a query with FINAL sees them, and the raw count."""
    store = Store.open(store_url)
    try:
        rows = store.query(
            "SELECT session_id, rule, window_s, spend_usd, threshold_usd, trip_id"
            " FROM {db}.breaker_trips FINAL ORDER BY session_id"
        )
        [(raw,)] = store.query("SELECT count() FROM {db}.breaker_trips")
        return rows, int(raw)
    finally:
        store.close()


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@contextmanager
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local webhook: its URL and the JSON bodies posted to it."""
    bodies: list[dict[str, Any]] = []
    handler = type("Receiver", (_Receiver,), {"bodies": bodies})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    finally:
        server.shutdown()
        server.server_close()
