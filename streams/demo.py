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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from models.errors import SpendstreamError
from models.fleet import (
    TIMELINE,
    FleetTally,
    GatewayRecord,
    fleet,
    fleet_tasks,
    grant_commands,
    tally,
)
from models.money import ZERO_USD, usd_text
from streams import demo_grants, demo_shadow
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
CENT = Decimal("0.01")
USD_CENTS = "USD, to the cent"


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


@dataclass
class WorkerCounts:
    """The worker's counters from `/metrics`: events by outcome, DLQ by reason."""

    events: dict[str, int] = field(default_factory=dict)
    dlq: dict[str, int] = field(default_factory=dict)

    @property
    def processed(self) -> int:
        return sum(self.events.values())


def read_counts(text: str) -> WorkerCounts:
    """Parse the Prometheus text of `/metrics`."""
    counts = WorkerCounts()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "spendstream_events_total":
                counts.events[sample.labels["outcome"]] = int(sample.value)
            elif sample.name == "spendstream_dlq_records_total":
                counts.dlq[sample.labels["reason"]] = int(sample.value)
    return counts


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


# The summary: sections read back from ClickHouse. Later capabilities (breaker
# trips, grants, chargeback) append theirs to SECTIONS.


@dataclass(frozen=True)
class RunFacts:
    """What a summary section may need beside the store."""

    events_topic: str
    dlq_topic: str
    counts: WorkerCounts
    expected: FleetTally


Section = Callable[[Store, RunFacts], RenderableType]


def cents(amount: Decimal) -> str:
    """An amount for a table: dollars, rounded half-even to the cent."""
    return f"${amount.quantize(CENT, rounding=ROUND_HALF_EVEN):,}"


def exact(amount: Decimal) -> str:
    """An amount to the nano-dollar, as ClickHouse holds it."""
    return f"${usd_text(amount)}"


def _rows(store: Store, facts: RunFacts, sql: str) -> list[Any]:
    return store.query(sql, {"topic": facts.events_topic})


def spend_by_department(store: Store, facts: RunFacts) -> RenderableType:
    """Spend per paying department (the caller, `principal`)."""
    rows = _rows(
        store,
        facts,
        "SELECT principal, sum(events), uniqExact(session_id), sum(cost_usd)"
        " FROM {db}.spend_minute WHERE src_topic = {topic:String}"
        " GROUP BY principal ORDER BY sum(cost_usd) DESC",
    )
    table = Table(title="Spend by department (the caller pays)")
    for name in ("department", "events", "sessions", USD_CENTS):
        table.add_column(name, justify="left" if name == "department" else "right")
    for principal, events, sessions, cost_usd in rows:
        table.add_row(principal, f"{events:,}", f"{sessions:,}", cents(cost_usd))
    return table


def spend_by_agent(store: Store, facts: RunFacts) -> RenderableType:
    """The ten agents that spent most, with the departments that own them."""
    rows = _rows(
        store,
        facts,
        "SELECT agent, groupUniqArray(owner), groupUniqArray(principal),"
        " sum(events), sum(cost_usd) FROM {db}.spend_minute"
        " WHERE src_topic = {topic:String}"
        " GROUP BY agent ORDER BY sum(cost_usd) DESC LIMIT 10",
    )
    table = Table(title="Top 10 agents by spend")
    for name in ("agent", "owner", "paid by"):
        table.add_column(name)
    table.add_column("events", justify="right")
    table.add_column(USD_CENTS, justify="right")
    for agent, owners, payers, events, cost_usd in rows:
        table.add_row(
            agent,
            ", ".join(sorted(owners)),
            ", ".join(sorted(payers)),
            f"{events:,}",
            cents(cost_usd),
        )
    return table


def spend_by_model(store: Store, facts: RunFacts) -> RenderableType:
    """Spend and tokens per model; tool and agent calls may have no model."""
    rows = _rows(
        store,
        facts,
        "SELECT model, sum(events), sum(input_tokens), sum(output_tokens),"
        " sum(cost_usd) FROM {db}.spend_minute WHERE src_topic = {topic:String}"
        " GROUP BY model ORDER BY sum(cost_usd) DESC",
    )
    table = Table(title="Spend by model")
    for name in ("model", "events", "input tokens", "output tokens", USD_CENTS):
        table.add_column(name, justify="left" if name == "model" else "right")
    for model, events, input_tokens, output_tokens, cost_usd in rows:
        table.add_row(
            model or "(no model)",
            f"{events:,}",
            f"{input_tokens:,}",
            f"{output_tokens:,}",
            cents(cost_usd),
        )
    return table


def stored_totals(store: Store, events_topic: str) -> tuple[int, Decimal]:
    """Events and spend of the run, as ClickHouse holds them."""
    rows = store.query(
        "SELECT sum(events), sum(cost_usd) FROM {db}.spend_minute"
        " WHERE src_topic = {topic:String}",
        {"topic": events_topic},
    )
    events, cost_usd = rows[0] if rows else (0, ZERO_USD)
    return int(events), cost_usd if cost_usd is not None else ZERO_USD


def totals(store: Store, facts: RunFacts) -> RenderableType:
    """Totals from ClickHouse beside the fleet's own sums, and the outcomes."""
    events, cost_usd = stored_totals(store, facts.events_topic)
    expected = facts.expected
    table = Table(title="Totals (USD exact, to the nano-dollar)")
    for name in ("", "ClickHouse / worker", "the fleet's own sums", "match"):
        table.add_column(name, justify="left" if not name else "right")
    outcomes = facts.counts.events
    lines: list[tuple[str, int | str, int | str]] = [
        ("events counted", events, expected.counted),
        ("spend", exact(cost_usd), exact(expected.cost_usd)),
        ("duplicates dropped", outcomes.get("duplicate", 0), expected.duplicates),
        ("rejected to the DLQ", outcomes.get("rejected", 0), expected.rejected),
    ]
    for label, got, want in lines:
        mark = "[green]yes[/]" if got == want else "[red]NO[/]"
        table.add_row(label, _shown(got), _shown(want), mark)
    return table


def _shown(value: int | str) -> str:
    return f"{value:,}" if isinstance(value, int) else value


def dead_letters(store: Store, facts: RunFacts) -> RenderableType:
    """DLQ records by reason, from the worker's final metrics."""
    table = Table(title="Dead letters by reason", caption=f"on {facts.dlq_topic}")
    table.add_column("reason")
    table.add_column("records", justify="right")
    for reason, count in sorted(facts.counts.dlq.items()):
        table.add_row(reason, f"{count:,}")
    return table


def chargeback(store: Store, facts: RunFacts) -> RenderableType:
    """Net chargeback per department in the run's latest period, from the ledger."""
    rows = store.query(
        "SELECT period, debit, credit, sum(amount_usd) FROM {db}.ledger_entries FINAL"
        " WHERE startsWith(source, {source:String}) AND NOT internal"
        " GROUP BY period, debit, credit",
        {"source": f"{facts.events_topic}:"},
    )
    period = max((row[0] for row in rows), default="(none)")
    owes: dict[str, Decimal] = {}
    owed: dict[str, Decimal] = {}
    for booked_in, debit, credit, amount_usd in rows:
        if booked_in == period:
            owes[debit] = owes.get(debit, ZERO_USD) + amount_usd
            owed[credit] = owed.get(credit, ZERO_USD) + amount_usd
    debits, credits = sum(owes.values(), ZERO_USD), sum(owed.values(), ZERO_USD)
    table = Table(
        title=f"Chargeback {period}: net per department (positive: is owed)",
        caption=f"debits {exact(debits)} = credits {exact(credits)}"
        if debits == credits
        else f"[red]debits {exact(debits)} != credits {exact(credits)}[/]",
    )
    for name in ("department", "owes", "is owed", "net"):
        table.add_column(name, justify="left" if name == "department" else "right")
    departments = set(owes) | set(owed)
    net = {d: owed.get(d, ZERO_USD) - owes.get(d, ZERO_USD) for d in departments}
    for department in sorted(departments, key=lambda d: (-net[d], d)):
        table.add_row(
            department,
            cents(owes.get(department, ZERO_USD)),
            cents(owed.get(department, ZERO_USD)),
            cents(net[department]),
        )
    return table


def breaker_trips(store: Store, facts: RunFacts) -> RenderableType:
    """Sessions the velocity breaker froze, by rule, with session and agent."""
    rows = store.query(
        "SELECT rule, session_id, agent, window_s, events, spend_usd,"
        " threshold_usd, threshold_events"
        " FROM {db}.breaker_trips FINAL ORDER BY rule, ts"
    )
    table = Table(
        title="Breaker trips (sessions frozen)",
        caption=None if rows else "no session tripped the breaker",
    )
    table.add_column("rule")
    table.add_column("session", no_wrap=True)
    table.add_column("agent")
    table.add_column("tripped on")
    for rule, session_id, agent, window_s, events, spend, usd, most in rows:
        if most:
            why = f"{events:,} events in {window_s} s, over {most:,}"
        else:
            why = f"{cents(spend)} in {window_s} s, over {cents(usd)}"
        table.add_row(rule, session_id, agent, why)
    return table


SECTIONS: list[Section] = [
    spend_by_department,
    spend_by_agent,
    spend_by_model,
    totals,
    dead_letters,
    chargeback,
    breaker_trips,
    demo_grants.grants,
    demo_shadow.shadow_model,
]


def summary(store: Store, facts: RunFacts) -> RenderableType:
    """Every section, in order."""
    return Group(*(section(store, facts) for section in SECTIONS))


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
