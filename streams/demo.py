"""`spendstream demo`: a simulated fleet through a real broker, worker and store.

In this order:

1. start the local broker (`scripts/kafka up`) unless one is configured or
   already running;
2. start a worker on a fresh topic prefix, consumer group and embedded store
   under `var/demo/<run>/`, and wait until it owns the events partitions;
3. send the fleet's grant commands (`streams.demo_grants`), produce the fleet
   (`models.fleet`), then wait until the worker has read and flushed every
   record and landed every grant row;
4. stop the worker with SIGTERM, open its store and print the summary;
5. stop what step 1 and 2 started, also on Ctrl-C or an error.
"""

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from models.errors import SpendstreamError
from models.fleet import (
    TIMELINE,
    GatewayRecord,
    fleet,
    fleet_tasks,
    grant_commands,
    tally,
)
from streams import demo_grants, demo_shadow
from streams.demo_summary import (
    RunFacts,
    WorkerCounts,
    read_counts,
    stored_totals,
    summary,
)
from streams.settings import Settings
from streams.store import Store
from streams.topics import Topics

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
KAFKA_SCRIPT = ROOT / "scripts" / "kafka"
READY_TIMEOUT_S = 90.0
CATCH_UP_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0
POLL_S = 0.25
PRODUCE_CHUNK = 500


class DemoError(SpendstreamError):
    """The demo could not go on; the message says what failed and where to look."""


@dataclass(frozen=True)
class DemoRun:
    """One demo run: its folder under `var/demo/` and its worker's settings."""

    run_id: str
    folder: Path
    settings: Settings
    broker_configured: bool

    @property
    def log_path(self) -> Path:
        return self.folder / "worker.log"

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.web_host}:{self.settings.web_port}"

    @property
    def events_topic(self) -> str:
        return Topics(self.settings.topic_prefix).events


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def plan_run(settings: Settings, now: datetime) -> DemoRun:
    """A fresh prefix, group, web port and (embedded) store for this run.

    Without a configured broker, the local one of `scripts/kafka` is used, on
    the port that script uses (`SPENDSTREAM_KAFKA_PORT`, default 9092).
    """
    run_id = f"demo-{now:%Y%m%d%H%M%S}"
    folder = (Path("var/demo") / run_id).resolve()
    store = settings.clickhouse
    if store.startswith("chdb:"):
        store = f"chdb://{folder / 'store'}"
    configured = "kafka" in settings.model_fields_set
    kafka = settings.kafka
    if not configured:
        kafka = f"127.0.0.1:{os.environ.get('SPENDSTREAM_KAFKA_PORT', '9092')}"
    worker = settings.model_copy(
        update={
            "kafka": kafka,
            "topic_prefix": f"{run_id}.",
            "app_id": f"spendstream-{run_id}",
            "web_port": _free_port(settings.web_host),
            "clickhouse": store,
            "data_dir": folder / "worker",
            # A small fleet: publish often, so the summary shows versions.
            "shadow_publish_tasks": 10,
            "shadow_publish_interval_s": 1.0,
        }
    )
    return DemoRun(run_id, folder, worker, configured)


def _kafka_script(command: str) -> subprocess.CompletedProcess[str]:
    if not KAFKA_SCRIPT.exists():
        msg = f"{KAFKA_SCRIPT} is missing; set SPENDSTREAM_KAFKA to a running broker"
        raise DemoError(msg)
    done = subprocess.run(
        [str(KAFKA_SCRIPT), command],
        capture_output=True,
        text=True,
        check=False,
        start_new_session=True,
    )
    log.debug("ran scripts/kafka command=%s rc=%d", command, done.returncode)
    return done


def broker_to_start(run: DemoRun, console: Console) -> bool:
    """Whether the demo must start the local broker (and so stop it at the end)."""
    kafka = run.settings.kafka
    if run.broker_configured:
        console.print(f"broker: {kafka} (configured, left as it is)")
        return False
    if _kafka_script("status").returncode == 0:
        console.print(f"broker: {kafka} (already running, left as it is)")
        return False
    return True


def start_broker(run: DemoRun, console: Console) -> None:
    """Start the local broker with `scripts/kafka up`, which waits until ready."""
    kafka = run.settings.kafka
    with console.status("starting the local Kafka broker (scripts/kafka up)"):
        done = _kafka_script("up")
    if done.returncode != 0:
        msg = f"scripts/kafka up failed:\n{done.stdout}{done.stderr}"
        raise DemoError(msg.strip())
    console.print(f"broker: {kafka} (started by the demo)")


def stop_broker(console: Console) -> None:
    """Stop the broker the demo started."""
    done = _kafka_script("down")
    said = (done.stdout or done.stderr).strip().removeprefix("kafka: ")
    console.print(f"broker: {said}")


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a worker process exactly `settings`."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"SPENDSTREAM_{name.upper()}"] = str(value)
    return env


def worker_command() -> list[str]:
    """The `spendstream worker` command of this interpreter's environment."""
    script = Path(sys.executable).with_name("spendstream")
    if script.exists():
        return [str(script), "worker"]
    return [sys.executable, "-c", "from streams.cli import main; main()", "worker"]


def start_worker(run: DemoRun) -> subprocess.Popen[bytes]:
    """Start the worker in its own session, its output to the run's log."""
    run.folder.mkdir(parents=True, exist_ok=True)
    with run.log_path.open("wb") as out:
        return subprocess.Popen(
            worker_command(),
            env=worker_env(run.settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _get(url: str) -> str | None:
    """The body of a GET, or None while the worker does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            body: bytes = answer.read()
            return body.decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def _health(run: DemoRun) -> dict[str, Any]:
    body = _get(f"{run.base_url}/healthz")
    events: dict[str, Any] = json.loads(body)["events"] if body else {}
    return events


def _last_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines()
    return lines[-1].strip() if lines else "(empty log)"


def _check_alive(run: DemoRun, worker: subprocess.Popen[bytes]) -> None:
    code = worker.poll()
    if code is not None:
        msg = (
            f"the worker exited with code {code}: {_last_line(run.log_path)}\n"
            f"see {run.log_path}"
        )
        raise DemoError(msg)


def wait_ready(run: DemoRun, worker: subprocess.Popen[bytes]) -> None:
    """Wait until the worker answers `/healthz` with its partitions assigned."""
    deadline_s = time.monotonic() + READY_TIMEOUT_S
    while not _health(run).get("partitions"):
        _check_alive(run, worker)
        if time.monotonic() > deadline_s:
            msg = (
                f"the worker was not ready within {READY_TIMEOUT_S:.0f}s "
                f"(no partitions at {run.base_url}/healthz); see {run.log_path}"
            )
            raise DemoError(msg)
        time.sleep(POLL_S)


def stop_worker(worker: subprocess.Popen[bytes], console: Console) -> None:
    """SIGTERM (the worker flushes and exits), SIGKILL after a timeout."""
    if worker.poll() is not None:
        return
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        console.print(
            f"[yellow]worker pid {worker.pid} did not stop within "
            f"{STOP_TIMEOUT_S:.0f}s of SIGTERM; killing it[/]"
        )
        worker.kill()
    console.print(f"worker: stopped (exit code {worker.wait()})")


async def _produce(
    settings: Settings,
    records: list[GatewayRecord],
    progress: Progress,
    task: TaskID,
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka, acks="all", linger_ms=5
    )
    await producer.start()
    try:
        topics = Topics(settings.topic_prefix)
        for first in range(0, len(records), PRODUCE_CHUNK):
            chunk = records[first : first + PRODUCE_CHUNK]
            sends = [
                await producer.send(
                    topics.name(record.topic),
                    record.encode(),
                    key=record.key.encode(),
                    timestamp_ms=int(record.at.timestamp() * 1000),
                )
                for record in chunk
            ]
            await asyncio.gather(*sends)
            progress.advance(task, len(chunk))
    finally:
        await producer.stop()


def produce(
    settings: Settings,
    records: list[GatewayRecord],
    progress: Progress,
    unit: str = "events",
) -> None:
    """Send fleet records to their topics (events by session_id), with a progress
    bar counting `unit`; every send is acknowledged before the call returns."""
    task = progress.add_task("produced", total=len(records), unit=unit)
    asyncio.run(_produce(settings, records, progress, task))


def _poll_counts(run: DemoRun) -> WorkerCounts:
    body = _get(f"{run.base_url}/metrics")
    return read_counts(body) if body else WorkerCounts()


def wait_processed(
    run: DemoRun,
    worker: subprocess.Popen[bytes],
    produced: int,
    progress: Progress,
) -> WorkerCounts:
    """Wait until the worker is caught up and its counters hold still."""
    task = progress.add_task("processed", total=produced, unit="events")
    deadline_s = time.monotonic() + CATCH_UP_TIMEOUT_S
    last = -1
    while True:
        _check_alive(run, worker)
        counts = _poll_counts(run)
        progress.update(task, completed=counts.processed)
        caught_up = bool(_health(run).get("caught_up"))
        if caught_up and counts.processed >= produced and counts.processed == last:
            return counts
        last = counts.processed
        if time.monotonic() > deadline_s:
            msg = (
                f"the worker did not catch up within {CATCH_UP_TIMEOUT_S:.0f}s "
                f"({counts.processed} of {produced} processed); see {run.log_path}"
            )
            raise DemoError(msg)
        time.sleep(POLL_S)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TimeElapsedColumn(),
        console=console,
    )


def report(console: Console, run: DemoRun, facts: RunFacts) -> bool:
    """Print the summary from the run's store; True if it matches the fleet."""
    store = Store.open(run.settings.clickhouse)
    try:
        console.print(summary(store, facts))
        events, cost_usd = stored_totals(store, facts.events_topic)
    finally:
        store.close()
    return events == facts.expected.counted and cost_usd == facts.expected.cost_usd


def drive(
    run: DemoRun, worker: subprocess.Popen[bytes], sessions: int, console: Console
) -> RunFacts:
    """Produce the fleet and wait until the worker has processed all of it."""
    start = datetime.now(UTC) - TIMELINE
    records = fleet(start, sessions)
    console.print(
        f"fleet: {len(records):,} records, {TIMELINE.total_seconds() / 60:.0f} "
        f"minutes of event time from {start:%H:%M:%S} UTC, sent at once"
    )
    tasks = fleet_tasks(records)
    commands = grant_commands(records)
    if not demo_grants.send_commands(run.settings, run.base_url, commands):
        raise DemoError(
            f"the worker did not apply the grant commands; see {run.log_path}"
        )
    with _progress(console) as progress:
        produce(run.settings, records, progress)
        produce(run.settings, tasks, progress, "task records")  # after their events
        counts = wait_processed(run, worker, len(records), progress)
    debits = demo_grants.charged_events(records)
    if not demo_grants.wait_settled(run.settings, run.base_url, debits):
        raise DemoError(f"grant spend did not settle; see {run.log_path}")
    demo_shadow.wait_learnt(run.base_url, len(tasks) // 2, console)
    demo_shadow.show_estimate(run.base_url, console)
    topics = Topics(run.settings.topic_prefix)
    return RunFacts(topics.events, topics.dlq, counts, tally(records))


def run_demo(settings: Settings, sessions: int) -> int:
    """Run the demo end to end; 0 when ClickHouse holds what the fleet sent."""
    console = Console()
    started_s = time.monotonic()
    run = plan_run(settings, datetime.now(UTC))
    broker_started = False
    worker: subprocess.Popen[bytes] | None = None
    try:
        broker_started = broker_to_start(run, console)
        if broker_started:
            start_broker(run, console)
        worker = start_worker(run)
        console.print(
            f"worker: pid {worker.pid} at {run.base_url}, topics {run.run_id}.*\n"
            f"store:  {run.settings.clickhouse}\nlog:    {run.log_path}"
        )
        wait_ready(run, worker)
        facts = drive(run, worker, sessions, console)
        stop_worker(worker, console)
        matches = report(console, run, facts)
    except DemoError as exc:
        console.print(f"[red]demo failed:[/] {exc}")
        return 1
    except KeyboardInterrupt:
        console.print("interrupted: stopping what the demo started")
        return 130
    finally:
        if worker is not None:
            stop_worker(worker, console)
        if broker_started:
            stop_broker(console)
    if not matches:
        console.print(
            f"[red]ClickHouse does not hold what the fleet sent[/]; see {run.log_path}"
        )
        return 1
    console.print(f"done in {time.monotonic() - started_s:.1f}s")
    return 0
