"""A simulated fleet of gateway sessions: the records the demo sends to Kafka.

Pure generators, no I/O: the same `start` and `seed` give the same records.
Event times lie on a simulated timeline of `TIMELINE` that starts at `start`
(the demo puts it about twenty minutes before now) and is sent all at once,
so twenty minutes of a company's traffic arrive in a few seconds.

The scenarios, each tagged on its records:

- `ordinary`: sessions of a few LLM calls on catalogue models; a third of them
  carry no `cost_usd`, so the worker prices them from their tokens;
- `runaway`: a researcher that follows 1,000 links, a browser call and a summary
  at $0.05 each per link: $100.00 in about two and a half minutes;
- `politeness`: two agents thanking each other once a second each for two
  minutes, $0.03 a message, in one session;
- `hiring`: a manager agent hiring a worker agent per task, each hire with its
  own grant and task, the worker's calls charged to that grant; the grant
  commands behind it (`grant_commands`) open the manager's team grant and pay
  each hire's grant out of it, until the team grant runs dry;
- `cross-department`: marketing's copywriter calling engineering's database
  agent, $0.05 a call, paid by marketing, owned by engineering;
- `bad`: records a broken gateway sends, which belong in the DLQ;
- `duplicate`: a gateway's retry of an event already sent.

Each ordinary session is one task (its events carry its `task_id`), as is
each hire; `fleet_tasks` gives their `started` and `finished` records for
`spend.tasks`, so the shadow model has tasks to learn from.
"""

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from models.codec import dumps
from models.errors import InvalidRecord
from models.events import decode_cost_event
from models.money import ZERO_USD, to_usd
from models.pricing import price_tokens

TIMELINE = timedelta(minutes=20)
"""The span of event time the fleet covers."""

DEFAULT_SEED = 7

MODELS = (
    ("gpt-4o", "openai"),
    ("gpt-4o-mini", "openai"),
    ("gpt-4.1", "openai"),
    ("claude-sonnet-4-5", "anthropic"),
    ("claude-haiku-4-5", "anthropic"),
    ("gemini-2.5-flash", "google"),
)
"""Models the genai-prices catalogue knows, with their providers."""

AGENTS = {
    "engineering": ("code-reviewer", "ci-fixer", "incident-triage"),
    "marketing": ("copywriter", "seo-planner"),
    "research": ("lit-review", "data-analyst"),
    "finance": ("invoice-reader", "forecaster"),
    "support": ("helpdesk-bot", "ticket-summarizer"),
}
"""The ordinary agents of each department (the department pays and owns them)."""

RUNAWAY_LINKS = 1_000
RUNAWAY_CALL_USD = Decimal("0.05")
POLITENESS_S = 120
POLITENESS_MESSAGE_USD = Decimal("0.03")
HIRE_USD = Decimal("0.02")
HIRED_TASKS = 5
TEAM_GRANT_ID = "grant-eng-team"
TEAM_GRANT_USD = Decimal("0.50")
HIRE_GRANT_USD = Decimal("0.12")
BONUS_USD = Decimal("0.02")
"""The team grant pays four hires and a bonus; the fifth hire is refused."""
DB_AGENT_CALL_USD = Decimal("0.05")
DB_AGENT_CALLS = 20


@dataclass(frozen=True)
class GatewayRecord:
    """One record a gateway sends to the events topic, and its place in time.

    `value` is the cost event as a dict, or raw text where a broken gateway
    sends something that is not JSON.
    """

    key: str
    value: dict[str, Any] | str
    at: datetime
    scenario: str
    topic: str = "events"
    """The topic after the prefix: `events`, `tasks`, or `grants` for a command."""

    def encode(self) -> bytes:
        """The Kafka value: UTF-8 JSON, decimals as strings."""
        if isinstance(self.value, str):
            return self.value.encode()
        return dumps(self.value)


def rfc3339(at: datetime) -> str:
    """An event time as the contract's RFC 3339 text, to the millisecond."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


@dataclass
class Session:
    """One gateway session; it numbers the events it makes."""

    session_id: str
    agent: str
    principal: str
    user: str
    scenario: str
    calls: int = 0
    task_id: str | None = None

    def call(self, at: datetime, **fields: Any) -> GatewayRecord:
        """A cost event of this session at `at`; `fields` add to or override."""
        self.calls += 1
        value: dict[str, Any] = {
            "event_id": f"{self.session_id}-{self.calls:05d}",
            "ts": rfc3339(at),
            "session_id": self.session_id,
            "agent": self.agent,
            "principal": self.principal,
            "user": self.user,
            "kind": "llm",
        }
        if self.task_id is not None:
            value["task_id"] = self.task_id
        value.update(fields)
        return GatewayRecord(self.session_id, value, at, self.scenario)


def _session_id(rng: random.Random, label: str) -> str:
    return f"sess-{label}-{rng.getrandbits(32):08x}"


def _llm_fields(
    rng: random.Random, at: datetime, *, priced: bool, model: int | None = None
) -> dict[str, Any]:
    """Model, tokens and, where the gateway priced the call, its catalogue cost."""
    name, provider = MODELS[rng.randrange(len(MODELS)) if model is None else model]
    tokens = {
        "input_tokens": rng.randint(300, 12_000),
        "output_tokens": rng.randint(50, 1_500),
    }
    fields: dict[str, Any] = {"model": name, "provider": provider, **tokens}
    if priced:
        fields["cost_usd"] = price_tokens(
            model=name, provider=provider, cached_input_tokens=0, at=at, **tokens
        )
    return fields


def ordinary_sessions(
    rng: random.Random, start: datetime, count: int
) -> Iterator[GatewayRecord]:
    """`count` sessions of 2 to 6 LLM calls, spread over the timeline."""
    latest_s = int(TIMELINE.total_seconds()) - 6 * 60
    for n in range(count):
        department = rng.choice(sorted(AGENTS))
        session_id = _session_id(rng, "ord")
        session = Session(
            session_id,
            agent=rng.choice(AGENTS[department]),
            principal=department,
            user=f"user{n % 12:02d}@{department}",
            scenario="ordinary",
            task_id=f"task-{session_id}",
        )
        at = start + timedelta(seconds=rng.randint(0, latest_s))
        for _ in range(rng.randint(2, 6)):
            at += timedelta(seconds=rng.uniform(2, 60))
            priced = rng.random() >= 1 / 3
            yield session.call(at, **_llm_fields(rng, at, priced=priced))


def runaway_researcher(rng: random.Random, start: datetime) -> Iterator[GatewayRecord]:
    """1,000 links, a browser call and a summary per link, 150 ms per link."""
    session = Session(
        _session_id(rng, "runaway"),
        agent="deep-researcher",
        principal="research",
        user="rae@research",
        scenario="runaway",
    )
    begin = start + timedelta(minutes=4)
    for link in range(RUNAWAY_LINKS):
        at = begin + timedelta(milliseconds=150 * link)
        url = f"https://papers.example.org/p/{link:04d}"
        yield session.call(
            at,
            kind="tool",
            cost_usd=RUNAWAY_CALL_USD,
            attributes={"tool": "browser", "url": url},
        )
        summary = _llm_fields(rng, at, priced=False, model=1)
        summary["cost_usd"] = RUNAWAY_CALL_USD
        summary["attributes"] = {"summarizes": url}
        yield session.call(at + timedelta(milliseconds=100), **summary)


def politeness_loop(rng: random.Random, start: datetime) -> Iterator[GatewayRecord]:
    """Two agents in one session, each thanking the other once a second."""
    session = Session(
        _session_id(rng, "polite"),
        agent="scheduler-bot",
        principal="support",
        user="sam@support",
        scenario="politeness",
    )
    begin = start + timedelta(minutes=11)
    pair = (("scheduler-bot", "calendar-bot"), ("calendar-bot", "scheduler-bot"))
    for second in range(POLITENESS_S):
        for turn, (speaker, listener) in enumerate(pair):
            at = begin + timedelta(seconds=second, milliseconds=500 * turn)
            yield session.call(
                at,
                agent=speaker,
                kind="agent",
                model="claude-haiku-4-5",
                provider="anthropic",
                cost_usd=POLITENESS_MESSAGE_USD,
                attributes={"to": listener, "message": "thank you, you too!"},
            )


def manager_hires_worker(
    rng: random.Random, start: datetime
) -> Iterator[GatewayRecord]:
    """A manager hires a worker per task; the worker spends from the task's grant."""
    manager = Session(
        _session_id(rng, "manager"),
        agent="eng-manager",
        principal="engineering",
        user="max@engineering",
        scenario="hiring",
    )
    for task in range(HIRED_TASKS):
        task_id = f"task-{manager.session_id}-{task}"
        grant_id = f"grant-{task_id}"
        at = start + timedelta(minutes=2 + 3 * task)
        yield manager.call(
            at,
            kind="agent",
            cost_usd=HIRE_USD,
            grant_id=grant_id,
            task_id=task_id,
            attributes={"hires": "build-worker", "parent_grant_id": "grant-eng-team"},
        )
        worker = Session(
            f"{manager.session_id}.{task}",
            agent="build-worker",
            principal="engineering",
            user=manager.user,
            scenario="hiring",
        )
        yield from _hired_work(rng, at, worker, task_id, grant_id)


def _hired_work(
    rng: random.Random, at: datetime, worker: Session, task_id: str, grant_id: str
) -> Iterator[GatewayRecord]:
    """The hired worker's LLM calls, charged to the task's grant."""
    for _ in range(rng.randint(3, 6)):
        at += timedelta(seconds=rng.uniform(5, 20))
        fields = _llm_fields(rng, at, priced=rng.random() < 0.5, model=3)
        yield worker.call(at, grant_id=grant_id, task_id=task_id, **fields)


def grant_commands(records: Iterable[GatewayRecord]) -> list[GatewayRecord]:
    """For `spend.grants`, before the fleet: the team grant, then one per hire.

    Each hire's grant is opened out of the team grant (the manager pays), and
    the first hire gets a bonus (`fund`). Send them in order, each after the
    one before is applied: they are routed to the team grant's partition from
    different partitions of `spend.grants`.
    """
    hires = [r for r in records if r.scenario == "hiring" and _is_hire(r)]
    if not hires:
        return []
    at = min(r.at for r in hires) - timedelta(minutes=1)
    owner = {"principal": "engineering"}
    team = _grant_command("open", TEAM_GRANT_ID, at, limit_usd=TEAM_GRANT_USD, **owner)
    commands = [team]
    for n, hire in enumerate(hires):
        grant_id = str(hire.value["grant_id"]) if isinstance(hire.value, dict) else ""
        paid = {"parent_id": TEAM_GRANT_ID}
        commands.append(
            _grant_command(
                "open", grant_id, at, limit_usd=HIRE_GRANT_USD, **paid, **owner
            )
        )
        if n == 0:
            commands.append(
                _grant_command("fund", grant_id, at, amount_usd=BONUS_USD, **paid)
            )
    return commands


def _is_hire(record: GatewayRecord) -> bool:
    return isinstance(record.value, dict) and record.value.get("kind") == "agent"


def _grant_command(
    command: str, grant_id: str, at: datetime, **fields: Any
) -> GatewayRecord:
    value = {"command": command, "grant_id": grant_id, "ts": rfc3339(at), **fields}
    return GatewayRecord(grant_id, value, at, "hiring", topic="grants")


def cross_department_calls(
    rng: random.Random, start: datetime
) -> Iterator[GatewayRecord]:
    """Marketing's copywriter drafts, and asks engineering's database agent."""
    session = Session(
        _session_id(rng, "copy"),
        agent="copywriter",
        principal="marketing",
        user="mia@marketing",
        scenario="cross-department",
    )
    at = start + timedelta(minutes=7)
    for _ in range(DB_AGENT_CALLS):
        at += timedelta(seconds=rng.uniform(3, 15))
        yield session.call(at, **_llm_fields(rng, at, priced=True, model=0))
        yield session.call(
            at + timedelta(seconds=1),
            agent="db-agent",
            owner="engineering",
            kind="agent",
            cost_usd=DB_AGENT_CALL_USD,
            attributes={"query": "campaign conversions by region"},
        )


def bad_records(start: datetime) -> Iterator[GatewayRecord]:
    """What a broken gateway sends: each belongs in the DLQ, with its reason."""
    gateway = Session(
        "sess-broken-gateway",
        agent="legacy-proxy",
        principal="finance",
        user="fred@finance",
        scenario="bad",
    )
    at = start + timedelta(minutes=9)
    yield GatewayRecord(
        gateway.session_id, '{"event_id": "broken-1", "ts": ', at, "bad"
    )
    missing = {"event_id": "broken-2", "ts": rfc3339(at), "cost_usd": "0.01"}
    yield GatewayRecord(gateway.session_id, missing, at, "bad")
    yield gateway.call(at, cost_usd=Decimal("-0.25"), model="gpt-4o")
    yield gateway.call(
        at, model="gpt-imaginary-9", input_tokens=1_000, output_tokens=200
    )


def retried(record: GatewayRecord, after: timedelta) -> GatewayRecord:
    """The same event sent again by a gateway that retried: same `event_id`."""
    return GatewayRecord(record.key, record.value, record.at + after, "duplicate")


def fleet(
    start: datetime, sessions: int, seed: int = DEFAULT_SEED
) -> list[GatewayRecord]:
    """Every scenario's records, in event-time order."""
    rng = random.Random(seed)
    ordinary = list(ordinary_sessions(rng, start, sessions))
    records = [
        *ordinary,
        *runaway_researcher(rng, start),
        *politeness_loop(rng, start),
        *manager_hires_worker(rng, start),
        *cross_department_calls(rng, start),
        *bad_records(start),
    ]
    if ordinary:
        records.append(retried(rng.choice(ordinary), timedelta(seconds=2)))
    return sorted(records, key=lambda r: r.at)


PROMPT_WORDS = (
    "review", "the", "change", "summarise", "tickets", "draft", "copy", "for",
    "campaign", "query", "sales", "by", "region", "fix", "failing", "build",
    "read", "invoices", "forecast", "quarter", "papers", "on", "retrieval",
)  # fmt: skip
"""Words the fleet's prompts are made of."""


def fleet_tasks(records: Iterable[GatewayRecord]) -> list[GatewayRecord]:
    """A `started` and a `finished` record for each task the events carry.

    A task starts a second before its first call, with the features of that
    call and a prompt of about 25 words per call (so cost grows with the
    prompt), and finishes a second after its last call.
    """
    first: dict[str, tuple[datetime, dict[str, Any]]] = {}
    last: dict[str, datetime] = {}
    calls: dict[str, int] = {}
    for record in records:
        value = record.value
        if isinstance(value, dict) and value.get("task_id"):
            task_id = value["task_id"]
            first.setdefault(task_id, (record.at, value))
            last[task_id] = max(last.get(task_id, record.at), record.at)
            calls[task_id] = calls.get(task_id, 0) + 1
    tasks = []
    for task_id, (first_call, call) in first.items():
        began = first_call - timedelta(seconds=1)
        features = ("agent", "model", "user", "principal")
        started: dict[str, Any] = {
            "status": "started",
            "task_id": task_id,
            "ts": rfc3339(began),
            "prompt": _prompt(task_id, calls[task_id]),
            **{name: call[name] for name in features if name in call},
        }
        ended = last[task_id] + timedelta(seconds=1)
        finished = {"status": "finished", "task_id": task_id, "ts": rfc3339(ended)}
        tasks.append(GatewayRecord(task_id, started, began, "task", "tasks"))
        tasks.append(GatewayRecord(task_id, finished, ended, "task", "tasks"))
    return sorted(tasks, key=lambda r: r.at)


def _prompt(task_id: str, calls: int) -> str:
    rng = random.Random(task_id)
    return " ".join(rng.choice(PROMPT_WORDS) for _ in range(25 * calls))


@dataclass
class FleetTally:
    """What a correct worker must count for a fleet: its own sums."""

    counted: int = 0
    duplicates: int = 0
    rejected: int = 0
    cost_usd: Decimal = ZERO_USD
    by_principal_usd: dict[str, Decimal] = field(default_factory=dict)


def tally(records: Iterable[GatewayRecord]) -> FleetTally:
    """Decode, deduplicate and sum the records as the contract says to."""
    result = FleetTally()
    seen: set[str] = set()
    for record in records:
        try:
            event = decode_cost_event(record.encode())
        except InvalidRecord:
            result.rejected += 1
            continue
        if event.event_id in seen:
            result.duplicates += 1
            continue
        seen.add(event.event_id)
        result.counted += 1
        result.cost_usd = to_usd(result.cost_usd + event.cost)
        spent = result.by_principal_usd.get(event.principal, ZERO_USD)
        result.by_principal_usd[event.principal] = to_usd(spent + event.cost)
    return result
