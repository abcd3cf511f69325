"""A grant's stored entry: its state, and the commands it has applied already.

A grant command reaches the partition that applies it through a repartition
hop (`spend.grants` to the grant-ops topic, keyed by `models.wallet.route_key`),
so after a crash it can arrive twice: forwarded again from the same source
offset, or sent twice by a gateway that retried (a new offset, the same
`command_id`). `ReplayMarks` remembers, per source partition, the highest
offset applied, and the last `RECENT_COMMAND_IDS` command ids, and says which
commands to skip. It lives beside the grant in one table value (`GrantEntry`),
so the state and the marks are written together or not at all.

>>> marks = ReplayMarks()
>>> marks.mark(CommandOrigin(partition=2, offset=7, command_id="c-1"))
>>> marks.seen(CommandOrigin(2, 7)), marks.seen(CommandOrigin(2, 8))
(True, False)
>>> marks.seen(CommandOrigin(0, 99, command_id="c-1"))
True
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from models.grants import Grant

RECENT_COMMAND_IDS = 64
"""Command ids each grant remembers; a retry further back is applied again."""


@dataclass(frozen=True, slots=True)
class CommandOrigin:
    """Where a command was read on `spend.grants`, and its id if it has one."""

    partition: int
    offset: int
    command_id: str | None = None


@dataclass(slots=True)
class ReplayMarks:
    """The commands a grant has applied: high water per source partition, ids."""

    high_water: dict[int, int] = field(default_factory=dict)
    command_ids: list[str] = field(default_factory=list)

    def seen(self, origin: CommandOrigin) -> bool:
        """True if the command at `origin` was applied here already."""
        if origin.offset <= self.high_water.get(origin.partition, -1):
            return True
        return origin.command_id is not None and origin.command_id in self.command_ids

    def mark(self, origin: CommandOrigin) -> None:
        """Remember the command at `origin` as applied."""
        done = self.high_water.get(origin.partition, -1)
        self.high_water[origin.partition] = max(done, origin.offset)
        if origin.command_id is not None:
            self.command_ids.append(origin.command_id)
            del self.command_ids[:-RECENT_COMMAND_IDS]

    def to_dict(self) -> dict[str, Any]:
        return {
            "high_water": {str(p): o for p, o in self.high_water.items()},
            "command_ids": list(self.command_ids),
        }

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> "ReplayMarks":
        return cls(
            high_water={int(p): int(o) for p, o in value["high_water"].items()},
            command_ids=list(value["command_ids"]),
        )


@dataclass(slots=True)
class GrantEntry:
    """One grant's table value: its state and its replay marks.

    `deadline` is stored beside them so a sweep finds the grants due without
    decoding every state.
    """

    grant: Grant
    marks: ReplayMarks = field(default_factory=ReplayMarks)

    def to_dict(self) -> dict[str, Any]:
        deadline = self.grant.next_deadline()
        return {
            "grant": self.grant.to_dict(),
            "marks": self.marks.to_dict(),
            "deadline": None if deadline is None else deadline.isoformat(),
        }

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> "GrantEntry":
        return cls(
            Grant.from_dict(value["grant"]), ReplayMarks.from_dict(value["marks"])
        )


def stored_deadline(value: dict[str, Any]) -> datetime | None:
    """When the stored entry `value` next times out, read without decoding it."""
    text = value.get("deadline")
    return None if text is None else datetime.fromisoformat(text)
