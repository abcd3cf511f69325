"""Topic names under the configured prefix, and their creation when absent."""

import asyncio
import logging
import time
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Topics:
    """The contract's topic names for one prefix."""

    prefix: str

    def name(self, suffix: str) -> str:
        return f"{self.prefix}{suffix}"

    @property
    def events(self) -> str:
        return self.name("events")

    @property
    def grants(self) -> str:
        return self.name("grants")

    @property
    def tasks(self) -> str:
        return self.name("tasks")

    @property
    def admin(self) -> str:
        return self.name("admin")

    @property
    def breaker_trips(self) -> str:
        return self.name("breaker-trips")

    @property
    def grant_status(self) -> str:
        return self.name("grant-status")

    @property
    def ledger(self) -> str:
        return self.name("ledger")

    @property
    def dlq(self) -> str:
        return self.name("dlq")

    @property
    def positions_changelog(self) -> str:
        """Changelog of the chargeback positions table (internal, compacted)."""
        return self.name("chargeback-positions-changelog")

    @property
    def breaker_state(self) -> str:
        """Compacted changelog of breaker sessions, co-partitioned with events."""
        return self.name("breaker-state")

    @property
    def workers(self) -> str:
        """Compacted: each worker's owned events partitions and web URL."""
        return self.name("workers")

    @property
    def task_log(self) -> str:
        """Internal: valid task records and usage batches, for the one learner."""
        return self.name("task-log")

    @property
    def shadow_model(self) -> str:
        """Internal, compacted: the shadow model's latest snapshot."""
        return self.name("shadow-model")

    @property
    def shadow_learner(self) -> str:
        """Internal, compacted: the learner's latest checkpoint."""
        return self.name("shadow-learner")

    @property
    def grant_ops(self) -> str:
        """Internal: commands, transfers and debits, keyed by the grant they change."""
        return self.name("grant-ops")

    @property
    def grants_changelog(self) -> str:
        """Internal: the grants table's changelog, co-partitioned with grant-ops."""
        return self.name("grants-changelog")


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


GRANTS_CHANGELOG_LAG_MS = 3_600_000
"""How long a superseded grants changelog record stays before compaction may
remove it: it carries activity rows (`streams.grant_landing`)."""


def grants_changelog_config() -> dict[str, str]:
    lag_ms = str(GRANTS_CHANGELOG_LAG_MS)
    return {"cleanup.policy": "compact", "min.compaction.lag.ms": lag_ms}


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic a worker reads or writes, with partitions and configuration."""
    topics = Topics(settings.topic_prefix)
    big = {"max.message.bytes": str(settings.max_message_bytes)}
    inputs = settings.events_partitions
    outputs = settings.output_partitions
    return [
        TopicSpec(topics.events, inputs, big),
        TopicSpec(topics.grants, inputs),
        TopicSpec(topics.tasks, inputs),
        # Kept for good: every worker reads it whole at start (policy, unfreezes).
        TopicSpec(topics.admin, 1, {"retention.ms": "-1"}),
        TopicSpec(topics.breaker_trips, outputs),
        TopicSpec(topics.grant_status, outputs),
        TopicSpec(topics.ledger, outputs),
        TopicSpec(topics.dlq, 1, big),
        TopicSpec(topics.positions_changelog, outputs, {"cleanup.policy": "compact"}),
        TopicSpec(topics.breaker_state, inputs, {"cleanup.policy": "compact"}),
        TopicSpec(topics.workers, 1, {"cleanup.policy": "compact"}),
        *_shadow_specs(settings, topics),
        *_grant_specs(settings, topics),
    ]


def _shadow_specs(settings: Settings, topics: Topics) -> list[TopicSpec]:
    """One partition each: one learner reads the log, one key holds the latest."""
    big = {"max.message.bytes": str(settings.max_message_bytes)}
    latest = {"cleanup.policy": "compact"}
    checkpoint = {
        **latest,
        "max.message.bytes": str(settings.shadow_checkpoint_max_bytes),
    }
    return [
        TopicSpec(topics.task_log, 1, big),
        TopicSpec(topics.shadow_model, 1, {**latest, **big}),
        TopicSpec(topics.shadow_learner, 1, checkpoint),
    ]


def _grant_specs(settings: Settings, topics: Topics) -> list[TopicSpec]:
    """Grant ops and the grants changelog are co-partitioned, by grant id."""
    inputs = settings.events_partitions
    return [
        TopicSpec(topics.grant_ops, inputs),
        TopicSpec(topics.grants_changelog, inputs, grants_changelog_config()),
    ]


TOPIC_READY_TIMEOUT_S = 30.0


async def ensure_topics(settings: Settings, specs: list[TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        if not missing:
            return []
        new = [
            NewTopic(
                s.name,
                s.partitions,
                settings.replication_factor,
                topic_configs=s.config,
            )
            for s in missing
        ]
        try:
            await admin.create_topics(new)
        except TopicAlreadyExistsError:
            log.info("topics created meanwhile by another worker")
        for spec in missing:
            log.info("created topic=%s partitions=%d", spec.name, spec.partitions)
        names = [spec.name for spec in missing]
        await _wait_until_led(admin, names)
        return names
    finally:
        await admin.close()


async def _wait_until_led(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """Wait until the broker's metadata shows every partition of `names` with a leader.

    A topic just created is unknown to metadata for a moment. A consumer that
    subscribes then joins its group with no partitions of it, and learns of
    them only at its next metadata refresh (five minutes by default).
    """
    deadline_s = time.monotonic() + TOPIC_READY_TIMEOUT_S
    pending = list(names)
    while pending:
        described = await admin.describe_topics(pending)
        pending = [
            t["topic"]
            for t in described
            if t["error_code"] != 0
            or not t["partitions"]
            or any(p["leader"] < 0 for p in t["partitions"])
        ]
        if not pending:
            return
        if time.monotonic() > deadline_s:
            log.warning(
                "topics without leaders after %ss: %s", TOPIC_READY_TIMEOUT_S, pending
            )
            return
        await asyncio.sleep(0.1)
