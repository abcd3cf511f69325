"""A cycle's write-back copy of the stored grant entries: a `GrantStore`.

`live` maps grant ids to stored entries (`models.grant_replay.GrantEntry`
dicts); the store only reads it. A cycle changes its own decoded copies and
hands back the values to store (`changed`), None for an entry to delete.
"""

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from models.grant_replay import (
    UNKNOWN_MARKS_S,
    GrantEntry,
    Origin,
    stored_deadline,
)
from models.grants import Grant

Decoded = dict[str, tuple[dict[str, Any], GrantEntry]]
"""Entries decoded in earlier cycles, each with the stored value it came from."""


class EntryStore:
    """Stored entries, decoded once per cycle and written back as dicts.

    `owned_ids` lists the grants this worker owns, for sweeps. `decoded`
    spares decoding an entry again while `live` still holds the very value it
    was decoded from; a cycle changes those entries in place, so the caller
    keeps them only for cycles it stored (`decoded_after`).
    """

    def __init__(
        self,
        live: Mapping[str, dict[str, Any]],
        owned_ids: Callable[[], Iterable[str]] | None = None,
        decoded: Decoded | None = None,
    ) -> None:
        self._live = live
        self._owned_ids = owned_ids or (lambda: list(live))
        self._decoded: Decoded = decoded if decoded is not None else {}
        self._entries: dict[str, GrantEntry | None] = {}
        self.dirty: set[str] = set()

    def entry(self, grant_id: str) -> GrantEntry | None:
        if grant_id not in self._entries:
            self._entries[grant_id] = self._load(grant_id)
        return self._entries[grant_id]

    def _load(self, grant_id: str) -> GrantEntry | None:
        value = self._live.get(grant_id)
        if value is None:
            return None
        known = self._decoded.get(grant_id)
        if known is not None and known[0] is value:
            return known[1]
        return GrantEntry.from_dict(value)

    def get(self, grant_id: str) -> Grant | None:
        entry = self.entry(grant_id)
        return None if entry is None else entry.grant

    def put(self, grant: Grant) -> None:
        """Store `grant`; one created now keeps the marks of its unknown days."""
        entry = self.entry(grant.grant_id)
        if entry is None:
            self._entries[grant.grant_id] = GrantEntry(grant)
        else:
            entry.grant, entry.forget_at = grant, None
        self.dirty.add(grant.grant_id)

    def grant_ids(self) -> list[str]:
        return list(self._owned_ids())

    def deadline(self, grant_id: str) -> datetime | None:
        """When the entry is next due, decoding it only if this cycle did."""
        entry = self._entries.get(grant_id)
        if entry is not None:
            return entry.deadline
        value = self._live.get(grant_id)
        return None if value is None else stored_deadline(value)

    def seen(self, grant_id: str, origin: Origin) -> bool:
        entry = self.entry(grant_id)
        return entry is not None and entry.marks.seen(origin)

    def mark(self, grant_id: str, origin: Origin, now: datetime) -> None:
        """Record an op as applied on `grant_id`, which may not exist (yet)."""
        self.keep(grant_id, now).marks.mark(origin)

    def keep(self, grant_id: str, now: datetime) -> GrantEntry:
        """The entry of `grant_id`, marks-only if there is none; to be stored."""
        entry = self.entry(grant_id)
        if entry is None:
            forget_at = now + timedelta(seconds=UNKNOWN_MARKS_S)
            entry = self._entries[grant_id] = GrantEntry(None, forget_at=forget_at)
        self.dirty.add(grant_id)
        return entry

    def forget(self, grant_id: str) -> None:
        """Delete an entry that holds marks only."""
        self._entries[grant_id] = None
        self.dirty.add(grant_id)

    def changed(self) -> dict[str, dict[str, Any] | None]:
        """The entries this cycle changed, as values to store (None: delete)."""
        return {
            gid: None if (entry := self._entries.get(gid)) is None else entry.to_dict()
            for gid in sorted(self.dirty)
        }

    def decoded_after(self, stored: Mapping[str, dict[str, Any] | None]) -> None:
        """Keep the entries whose values (from `changed`) the caller stored.

        Every other entry this cycle touched is dropped: it may have changed
        in memory without being stored. Pass `{}` after a failed cycle.
        """
        for gid, entry in self._entries.items():
            value = stored.get(gid)
            if value is None or entry is None:
                self._decoded.pop(gid, None)
            else:
                self._decoded[gid] = (value, entry)
