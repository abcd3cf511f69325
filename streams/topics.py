"""Topic names under the configured prefix, and their creation when absent."""

import logging
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
        TopicSpec(topics.admin, 1),
        TopicSpec(topics.breaker_trips, outputs),
        TopicSpec(topics.grant_status, outputs),
        TopicSpec(topics.ledger, outputs),
        TopicSpec(topics.dlq, 1, big),
        TopicSpec(topics.grant_ops, inputs),
        TopicSpec(topics.grants_changelog, inputs, grants_changelog_config()),
    ]


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
        return [spec.name for spec in missing]
    finally:
        await admin.close()
