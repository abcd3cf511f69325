"""State saved per input partition, matched to where a restarted worker resumes.

A processor saves its state once per flush, before the flush's input offsets
are safe, with the last offset the flush covered. A worker that crashes in
between resumes from the previous high water, behind the newest saved state:
so each save keeps the state before it too, and the state that matches the
high water is one of the two.

>>> first = Checkpoint.first().next(offset=99, state={"n": 100})
>>> latest = first.next(offset=150, state={"n": 151})
>>> latest.state_at(high_water=150)
{'n': 151}
>>> latest.state_at(high_water=99)  # the flush to 150 never completed
{'n': 100}
"""

from dataclasses import dataclass
from typing import Any

from models.errors import SpendstreamError

State = dict[str, Any]


class CheckpointMismatch(SpendstreamError):
    """Neither saved state matches the high water the input resumes from."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The state after the flush ending at `offset`, and the one before it.

    `version` counts the saves: the store keeps the highest, since a replay
    can save at an offset lower than a save that never completed. An empty
    state (`{}`) is the state before anything was read; `offset` -1 means so.
    """

    version: int
    offset: int
    state: State
    prev_offset: int
    prev_state: State

    @classmethod
    def first(cls) -> "Checkpoint":
        """Nothing saved yet: the empty state, before offset 0."""
        return cls(version=0, offset=-1, state={}, prev_offset=-1, prev_state={})

    def next(self, offset: int, state: State) -> "Checkpoint":
        """The save after this one: `state` after the flush ending at `offset`."""
        if offset <= self.offset:
            msg = (
                f"offset {offset} does not follow the saved offset {self.offset}; "
                "save once per flush, after the checkpoint the flush resumed from"
            )
            raise ValueError(msg)
        return Checkpoint(self.version + 1, offset, state, self.offset, self.state)

    def at(self, high_water: int) -> "Checkpoint":
        """This checkpoint as it was when the input ended at `high_water`."""
        if self.offset <= high_water:
            return self
        if self.prev_offset <= high_water:
            return Checkpoint(self.version, self.prev_offset, self.prev_state, -1, {})
        msg = (
            f"saved state at offsets {self.prev_offset} and {self.offset} is ahead "
            f"of the high water {high_water}; the input was reset or its store "
            "lost data: restore the store, or clear the saved state to start over"
        )
        raise CheckpointMismatch(msg)

    def state_at(self, high_water: int) -> State:
        """The state that matches input read up to `high_water`."""
        return self.at(high_water).state
