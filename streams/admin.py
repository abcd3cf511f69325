"""Admin commands on `spend.admin`: sent by the HTTP API and the CLI, read by all.

Every worker follows the whole topic (`streams.follow`), so each one sees
every `set_policy` and every `unfreeze`; the topic is kept for good, and at
start a worker reads it from the beginning: the newest `set_policy` wins over
the policy file, and unfreezes are applied by the rule in `models.breaker`
(a command never clears a freeze detected after it was issued).
"""

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from models.codec import dumps, loads
from models.errors import InvalidRecord
from models.records import AdminCommand
from models.validation import validate
from streams import metrics
from streams.follow import Record, TopicFollower
from streams.settings import Settings
from streams.topics import Topics

log = logging.getLogger(__name__)

POLICY_KEY = "policy"
"""The key of `set_policy` commands (an unfreeze is keyed by its session)."""

Apply = Callable[[AdminCommand, bool], None]
Invalid = Callable[[Record, InvalidRecord, bool], None]


def unfreeze_command(session_id: str, by: str | None) -> AdminCommand:
    """An unfreeze of `session_id` issued now; `InvalidRecord` if a field is bad."""
    fields = {"command": "unfreeze", "session_id": session_id, "by": by}
    return validate(AdminCommand, {**fields, "ts": datetime.now(UTC)})


def policy_command(policy: dict[str, object], by: str | None) -> AdminCommand:
    """A `set_policy` command issued now, `policy` in the policy file's shape."""
    fields = {"command": "set_policy", "policy": policy, "by": by}
    return validate(AdminCommand, {**fields, "ts": datetime.now(UTC)})


async def send_command(
    producer: AIOKafkaProducer, settings: Settings, command: AdminCommand
) -> None:
    """Produce `command` to `spend.admin` and wait until Kafka has it."""
    key = command.session_id or POLICY_KEY
    topic = Topics(settings.topic_prefix).admin
    await producer.send_and_wait(topic, dumps(command.to_json_dict()), key=key.encode())
    log.info("sent admin command=%s key=%s by=%s", command.command, key, command.by)


async def send_alone(settings: Settings, command: AdminCommand) -> None:
    """Send one command with a producer of its own (the CLI's way)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka)
    await producer.start()
    try:
        await send_command(producer, settings, command)
    finally:
        await producer.stop()


class AdminReader:
    """Follows `spend.admin` and hands each valid command to `apply`."""

    def __init__(self, settings: Settings, apply: Apply, invalid: Invalid) -> None:
        topic = Topics(settings.topic_prefix).admin
        self.follower = TopicFollower(settings.kafka, topic, self._handle)
        self.apply = apply
        self.invalid = invalid

    async def start(self) -> None:
        await self.follower.start()

    async def stop(self) -> None:
        await self.follower.stop()

    def _handle(self, record: Record, live: bool) -> None:
        try:
            command = validate(AdminCommand, loads(record.value or b""))
        except InvalidRecord as exc:
            metrics.ADMIN_COMMANDS.labels("unknown", "invalid").inc()
            log.warning(
                "invalid admin command offset=%d reason=%s", record.offset, exc.reason
            )
            self.invalid(record, exc, live)
            return
        self.apply(command, live)
