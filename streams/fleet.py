"""`spendstream fleet`: the demo fleet sent to the configured topics, no worker.

Unlike `spendstream demo`, this starts nothing: the workers already running
(for instance those of `docker-compose.yml`) read the fleet from the events
topic, and Grafana shows it.
"""

import asyncio
import random
from datetime import UTC, datetime

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from models.fleet import TIMELINE, GatewayRecord, fleet, fleet_tasks, grant_commands
from streams.demo import produce
from streams.grant_commands import send_commands_in_order
from streams.settings import Settings
from streams.topics import Topics, ensure_topics, topic_specs


def fresh_seed() -> int:
    """A seed for a new fleet: another seed gives other session and event ids."""
    return random.SystemRandom().randrange(2**31)


def send_fleet(
    settings: Settings, sessions: int, seed: int, console: Console
) -> list[GatewayRecord]:
    """Send a fleet's grant commands, its events, then its tasks; return the events.

    The fleet's ids follow from `seed`: the same seed sent twice is the
    gateways retrying, and the workers drop every event as a duplicate.
    """
    asyncio.run(ensure_topics(settings, topic_specs(settings)))
    records = fleet(datetime.now(UTC) - TIMELINE, sessions, seed)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    tasks = fleet_tasks(records)
    commands = grant_commands(records)
    with console.status(f"{len(commands)} grant commands, each once answered"):
        if not send_commands_in_order(settings, commands):
            console.print(
                "[yellow]grant commands went unanswered: are workers running?[/]"
            )
    with Progress(*columns, console=console) as progress:
        produce(settings, records, progress)
        produce(settings, tasks, progress, "task records")  # after their events
    topics = Topics(settings.topic_prefix)
    console.print(
        f"sent {len(records):,} records (seed {seed}) to {topics.events} "
        f"and {len(tasks):,} to {topics.tasks}"
    )
    return records
