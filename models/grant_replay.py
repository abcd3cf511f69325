"""A grant's stored entry: its state, and the ops it has applied already.

Commands and debits reach the partition that applies them through a
repartition hop (`spend.grants` or `spend.events` to the grant-ops topic), so
after a crash they can arrive twice: forwarded again from the same source
offset, or, for a command, sent twice by a gateway that retried (a new offset,
the same `command_id`). Ops from one source partition to one grant arrive in
the order read, so `ReplayMarks` remembers per source partition the highest
offset applied, and the last `RECENT_COMMAND_IDS` command ids, and says what
to skip. It lives beside the grant in one table value (`GrantEntry`), so the
state and the marks are written together or not at all.

>>> marks = ReplayMarks()
>>> marks.mark(Origin("grants", partition=2, offset=7, command_id="c-1"))
>>> marks.seen(Origin("grants", 2, 7)), marks.seen(Origin("grants", 2, 8))
(True, False)
>>> marks.seen(Origin("events", 2, 7)), marks.seen(Origin("grants", 0, 9, "c-1"))
(False, True)
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from models.grants import Grant

RECENT_COMMAND_IDS = 64
"""Command ids each grant remembers; a retry further back is applied again."""

UNKNOWN_MARKS_S = 3_600.0
"""How long the marks of ops on a grant that does not exist are kept: far
longer than a replay after a crash takes to arrive."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an op was read: `grants` or `events`, partition, offset, command id."""

    source: str
    partition: int
    offset: int
    command_id: str | None = None

    @property
    def stream(self) -> str:
        return f"{self.source}/{self.partition}"


@dataclass(slots=True)
class ReplayMarks:
    """The ops a grant has applied: high water per source partition, command ids."""

    high_water: dict[str, int] = field(default_factory=dict)
    command_ids: list[str] = field(default_factory=list)

    def seen(self, origin: Origin) -> bool:
        """True if the op read at `origin` was applied here already."""
        if origin.offset <= self.high_water.get(origin.stream, -1):
            return True
        return origin.command_id is not None and origin.command_id in self.command_ids

    def mark(self, origin: Origin) -> None:
        """Remember the op read at `origin` as applied."""
        done = self.high_water.get(origin.stream, -1)
        self.high_water[origin.stream] = max(done, origin.offset)
        if origin.command_id is not None:
            self.command_ids.append(origin.command_id)
            del self.command_ids[:-RECENT_COMMAND_IDS]

    def to_dict(self) -> dict[str, Any]:
        return {
            "high_water": dict(self.high_water),
            "command_ids": list(self.command_ids),
        }

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> "ReplayMarks":
        return cls(
            high_water={s: int(o) for s, o in value["high_water"].items()},
            command_ids=list(value["command_ids"]),
        )


@dataclass(slots=True)
class GrantEntry:
    """One grant's table value: its state, its replay marks and its outbox.

    An op that reaches a grant that does not exist (an event flagged
    `unknown`, a refused command) leaves an entry without a grant: its marks
    only, kept until `forget_at` (`UNKNOWN_MARKS_S`). A grant created later
    starts from them, so a replay of such an op after the creation is
    skipped rather than charged or applied late; nothing in them can be newer
    than the creation.

    `outbox` holds the `grant_activity` rows (as dicts) of the cycle that
    stored this value, so whatever reads the stored values (the changelog)
    sees every row once its state is stored. `deadline` is stored too, so a
    sweep finds the entries due without decoding them all.
    """

    grant: Grant | None
    marks: ReplayMarks = field(default_factory=ReplayMarks)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    forget_at: datetime | None = None

    @property
    def deadline(self) -> datetime | None:
        if self.grant is None:
            return self.forget_at
        return self.grant.next_deadline()

    def to_dict(self) -> dict[str, Any]:
        deadline = self.deadline
        return {
            "grant": None if self.grant is None else self.grant.to_dict(),
            "marks": self.marks.to_dict(),
            "outbox": list(self.outbox),
            "forget_at": None if self.forget_at is None else self.forget_at.isoformat(),
            "deadline": None if deadline is None else deadline.isoformat(),
        }

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> "GrantEntry":
        state = value["grant"]
        forget_at = value.get("forget_at")
        return cls(
            None if state is None else Grant.from_dict(state),
            ReplayMarks.from_dict(value["marks"]),
            list(value.get("outbox", [])),
            None if forget_at is None else datetime.fromisoformat(forget_at),
        )


def stored_deadline(value: dict[str, Any]) -> datetime | None:
    """When the stored entry `value` next times out, read without decoding it."""
    text = value.get("deadline")
    return None if text is None else datetime.fromisoformat(text)
