"""The velocity circuit breaker: one state machine per session, on event time.

    active --a rule trips--> frozen   one `frozen` BreakerTrip, the only one
    frozen --any event-----> frozen   metered and counted after-trip; no trip
    frozen --unfreeze------> active   one `unfrozen` BreakerTrip; windows cleared

An unfreeze clears only a freeze detected (by the worker's clock, the trip's
`detected_at`) at or before the command was issued (its `ts`), so an old
command read again never clears a later freeze (`Breaker.on_unfreeze`).

Rules are checked on each counted event of an active session, on its windows
read at the event's own time and at the session's newest event time (one end
for an in-order event). Windows are closed at the start and open at the end,
on bucket edges (`models.windows`).

Known shortcoming: a late event is checked at those two ends only, not at
every end between them, so a burst that only a window ending in between would
show is missed. Check every bucket end in between if out-of-order input turns
out to be common.

>>> from datetime import UTC, datetime
>>> from decimal import Decimal
>>> from models.events import CostEvent
>>> breaker, session = Breaker(), SessionState.new("s1")
>>> def spend(n: int, usd: str) -> Decision:
...     ts = datetime(2026, 11, 1, 12, 0, n, tzinfo=UTC)
...     return breaker.on_event(session, CostEvent(event_id=f"e{n}", ts=ts,
...         session_id="s1", agent="bot", principal="hr", cost_usd=Decimal(usd)))
>>> spend(0, "0.60").trip, spend(1, "0.60").trip.rule, session.state
(None, 'absolute', 'frozen')
>>> spend(2, "5.00").trip, session.after_trip_events
(None, 1)
"""

import struct
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import ValidationError

from models.codec import dumps, int_or_none
from models.errors import StateError
from models.events import CostEvent
from models.money import ZERO_USD, usd_display, usd_text
from models.policy import DEFAULT_POLICY, Policy
from models.records import BreakerTrip
from models.rules import RuleHit
from models.windows import (
    NO_MS,
    Arrival,
    SpendWindows,
    WindowSpec,
    epoch_ms,
    from_epoch_ms,
)

_TRIP_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "spendstream:breaker-trip")
_STATE_HEAD = struct.Struct("<BqQI")  # version, touched_wall_ms, after_trip, windows
_STATE_VERSION = 1


def trip_id_for(session_id: str, cause: str, state: str) -> str:
    """A trip id that a replay of the same input reproduces (a UUID 5)."""
    return str(uuid.uuid5(_TRIP_NAMESPACE, f"{session_id}\x1f{cause}\x1f{state}"))


def describe_trip(trip: BreakerTrip) -> str:
    """Why a session was frozen (or who unfroze it), in one line for people.

    >>> trip = BreakerTrip(trip_id="t1", ts="2026-11-01T09:00:51Z", session_id="s1",
    ...     state="frozen", rule="absolute", window_s=60, spend_usd="3.03",
    ...     threshold_usd="3", rate_usd_per_s="0.0505")
    >>> describe_trip(trip)
    'absolute: $3.03 within 60 s is above $3.00'
    """
    extra = trip.model_extra or {}
    window = f"{trip.window_s:g} s"
    if trip.state == "unfrozen":
        return f"unfrozen by {extra.get('by') or 'an admin'}"
    if trip.rule == "frequency":
        limit = extra.get("threshold_events", "the limit")
        return f"frequency: {extra.get('events')} events within {window}, over {limit}"
    spend, limit = usd_display(trip.spend_usd), usd_display(trip.threshold_usd)
    reason = f"{trip.rule}: ${spend} within {window} is above ${limit}"
    baseline = extra.get("baseline_rate_usd_per_s")
    if trip.rule == "relative" and baseline is not None:
        reason += f" (its own rate was ${usd_display(Decimal(baseline))}/s)"
    return reason


@dataclass(slots=True)
class SessionState:
    """One session's breaker state: its windows and, while frozen, its trip."""

    session_id: str
    windows: SpendWindows
    trip: BreakerTrip | None = None
    after_trip_events: int = 0
    touched_wall_ms: int | None = None

    @classmethod
    def new(cls, session_id: str, spec: WindowSpec | None = None) -> "SessionState":
        windows = SpendWindows(spec or DEFAULT_POLICY.window_spec)
        return cls(session_id=session_id, windows=windows)

    @property
    def state(self) -> Literal["active", "frozen"]:
        return "active" if self.trip is None else "frozen"

    def view(self) -> dict[str, Any]:
        """What `GET /v1/sessions/{id}` shows: state, trip and every window."""
        velocity = self.windows.velocity()
        windows = [
            {
                "window_s": t.window_s,
                "events": t.events,
                "spend_usd": usd_text(t.spend_usd),
                "rate_usd_per_s": usd_text(t.rate_usd_per_s),
            }
            for t in velocity.windows.values()
        ]
        trip = self.trip.to_json_dict() if self.trip else None
        return {
            "session_id": self.session_id,
            "state": self.state,
            "as_of_ms": self.windows.newest_ms,
            "windows": windows,
            "trip": trip,
            "after_trip_events": self.after_trip_events,
        }

    def approx_size_bytes(self) -> int:
        """Bytes held by this state in memory (CPython sizes; the trip if frozen)."""
        trip = 0
        if self.trip is not None:
            fields = self.trip.__dict__
            trip = sys.getsizeof(fields) + sum(map(sys.getsizeof, fields.values()))
        return sys.getsizeof(self) + self.windows.approx_size_bytes() + trip

    def to_dict(self) -> dict[str, Any]:
        """A small JSON-able dict, for a Faust table."""
        return {
            "session_id": self.session_id,
            "trip": self.trip.to_json_dict() if self.trip else None,
            "after_trip_events": self.after_trip_events,
            "touched_wall_ms": self.touched_wall_ms,
            "windows": self.windows.to_dict(),
        }

    def to_bytes(self) -> bytes:
        """A compact binary form for the changelog; the trip, if any, as JSON."""
        windows = self.windows.to_bytes()
        touched = NO_MS if self.touched_wall_ms is None else self.touched_wall_ms
        head = _STATE_HEAD.pack(
            _STATE_VERSION, touched, self.after_trip_events, len(windows)
        )
        trip = dumps(self.trip.to_json_dict()) if self.trip is not None else b""
        return head + windows + trip

    @classmethod
    def from_bytes(
        cls, session_id: str, data: bytes, spec: WindowSpec
    ) -> "SessionState":
        """Restore `to_bytes` output; `StateError` if it is malformed."""
        try:
            version, touched, after_trip, size = _STATE_HEAD.unpack_from(data)
            if version != _STATE_VERSION:
                raise ValueError(f"version {version}, expected {_STATE_VERSION}")
            start = _STATE_HEAD.size
            windows = SpendWindows.from_bytes(data[start : start + size], spec)
            raw_trip = data[start + size :]
            trip = BreakerTrip.model_validate_json(raw_trip) if raw_trip else None
        except (struct.error, ValueError) as exc:  # ValidationError is a ValueError
            msg = f"stored breaker state is malformed ({exc!r}); drop the entry"
            raise StateError(msg) from None
        return cls(
            session_id=session_id,
            windows=windows,
            trip=trip,
            after_trip_events=after_trip,
            touched_wall_ms=None if touched == NO_MS else touched,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any], spec: WindowSpec) -> "SessionState":
        """Restore `to_dict` output; `StateError` if it is malformed."""
        try:
            trip = data["trip"]
            return cls(
                session_id=str(data["session_id"]),
                windows=SpendWindows.from_dict(data["windows"], spec),
                trip=None if trip is None else BreakerTrip.model_validate(trip),
                after_trip_events=int(data["after_trip_events"]),
                touched_wall_ms=int_or_none(data["touched_wall_ms"]),
            )
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            msg = f"stored breaker state is malformed ({exc!r}); drop the entry"
            raise StateError(msg) from None


@dataclass(frozen=True, slots=True)
class Decision:
    """What one event did: how it arrived, the trip it caused, if it was after-trip."""

    arrival: Arrival
    trip: BreakerTrip | None = None
    after_trip: bool = False


class Breaker:
    """Applies a `Policy` to sessions: checks events, trips, unfreezes, expires."""

    def __init__(self, policy: Policy = DEFAULT_POLICY) -> None:
        self.policy = policy

    def restore(self, session_id: str, data: dict[str, Any] | None) -> SessionState:
        """The stored state of `session_id`, or a new one where there is none."""
        spec = self.policy.window_spec
        if data is None:
            return SessionState.new(session_id, spec)
        return SessionState.from_dict(data, spec)

    def on_event(
        self,
        session: SessionState,
        event: CostEvent,
        *,
        partition_high_ms: int | None = None,
        wall_ms: int | None = None,
    ) -> Decision:
        """Count a priced event in `session` and trip the breaker if a rule says so.

        `partition_high_ms` is the newest event time seen on the event's
        partition (lateness is measured against it too); `wall_ms`, if given,
        stamps the state for `is_expired(wall_now_ms=...)` and a trip's
        `detected_at`.
        """
        ts_ms = epoch_ms(event.ts)
        if wall_ms is not None:
            session.touched_wall_ms = wall_ms
        session.windows.adopt(self.policy.window_spec)
        if self.is_expired(session, event_now_ms=ts_ms):
            session.trip, session.after_trip_events = None, 0
            session.windows.clear()
        arrival = session.windows.add(ts_ms, event.cost, high_ms=partition_high_ms)
        if session.trip is not None:
            session.after_trip_events += 1
            return Decision(arrival, after_trip=True)
        if arrival is Arrival.TOO_LATE:
            return Decision(arrival)
        hit = self._first_hit(session, event, ts_ms)
        if hit is None:
            return Decision(arrival)
        session.trip = self._frozen_record(session, event, hit, wall_ms)
        return Decision(arrival, trip=session.trip)

    def _first_hit(
        self, session: SessionState, event: CostEvent, ts_ms: int
    ) -> RuleHit | None:
        rules = self.policy.rules_for(event.agent, event.principal, session.session_id)
        if not rules.may_trip(session.windows):
            return None
        newest_ms = session.windows.newest_ms
        ends = [ts_ms] if newest_ms in (None, ts_ms) else [ts_ms, newest_ms]
        for end_ms in ends:
            hit = rules.first_hit(session.windows.velocity(end_ms))
            if hit is not None:
                return hit
        return None

    def _frozen_record(
        self,
        session: SessionState,
        event: CostEvent,
        hit: RuleHit,
        wall_ms: int | None,
    ) -> BreakerTrip:
        detected = None if wall_ms is None else from_epoch_ms(wall_ms)
        record = {
            "trip_id": trip_id_for(session.session_id, event.event_id, "frozen"),
            "ts": event.ts,
            "session_id": session.session_id,
            "agent": event.agent,
            "principal": event.principal,
            "state": "frozen",
            "event_id": event.event_id,
            "detected_at": detected,
            **hit.record_fields(),
        }
        return BreakerTrip.model_validate(record)

    def unfreeze(
        self,
        session: SessionState | None,
        session_id: str,
        ts: datetime,
        by: str | None,
    ) -> BreakerTrip:
        """Clear a freeze: the `unfrozen` record to publish, and the state made active.

        The record is returned even when no freeze is known (the state may have
        expired), so a gateway still holding the session lets it go. Its id
        depends only on the session and `ts`, so replaying the command repeats it.
        """
        cleared = session.trip if session is not None else None
        if session is not None:
            session.trip, session.after_trip_events = None, 0
            session.windows.clear()
        record = {
            "trip_id": trip_id_for(session_id, str(epoch_ms(ts)), "unfrozen"),
            "ts": ts,
            "session_id": session_id,
            "agent": cleared.agent if cleared else None,
            "principal": cleared.principal if cleared else None,
            "state": "unfrozen",
            "rule": "unfreeze",
            "window_s": 0,
            "spend_usd": ZERO_USD,
            "threshold_usd": ZERO_USD,
            "rate_usd_per_s": ZERO_USD,
            "cleared_trip_id": cleared.trip_id if cleared else None,
            "by": by,
        }
        return BreakerTrip.model_validate(record)

    def on_unfreeze(
        self,
        session: SessionState | None,
        session_id: str,
        issued_at: datetime,
        by: str | None,
        *,
        live: bool = True,
    ) -> BreakerTrip | None:
        """Apply an unfreeze command issued at `issued_at`; the record to publish.

        A freeze is cleared only if it was detected at or before `issued_at`
        (a trip without `detected_at` always is): a later freeze stays and
        nothing is published. A session that is not frozen is left as it is;
        a `live` command still gets its `unfrozen` record, so that gateways
        holding the session let it go, and a command read again at start
        (`live=False`) gets None.
        """
        trip = session.trip if session is not None else None
        if trip is None:
            return self.unfreeze(None, session_id, issued_at, by) if live else None
        if trip.detected_at is not None and trip.detected_at > issued_at:
            return None
        return self.unfreeze(session, session_id, issued_at, by)

    def ttl_ms(self, session: SessionState) -> int:
        """Idle time after which `session` is forgotten.

        Active: the longest window plus the lateness, when nothing it holds can
        count any more. Frozen: the policy's `frozen_ttl_s`; a freeze forgotten
        this way is not announced, so gateways hold it until an unfreeze.
        """
        if session.trip is not None:
            return self.policy.frozen_ttl_s * 1000
        spec = self.policy.window_spec
        return (spec.windows_s[-1] + spec.lateness_s) * 1000

    def is_expired(
        self,
        session: SessionState,
        *,
        event_now_ms: int | None = None,
        wall_now_ms: int | None = None,
    ) -> bool:
        """Whether `session` has been idle for longer than its ttl.

        By event time (`event_now_ms`, e.g. the partition's newest event time,
        against the session's newest) or by the wall clock (`wall_now_ms`
        against the last `wall_ms` stamp) for an idle sweep; either suffices.
        """
        ttl_ms, newest_ms = self.ttl_ms(session), session.windows.newest_ms
        if event_now_ms is not None:
            if newest_ms is None:
                return session.trip is None
            if event_now_ms - newest_ms > ttl_ms:
                return True
        touched_ms = session.touched_wall_ms
        return (
            wall_now_ms is not None
            and touched_ms is not None
            and (wall_now_ms - touched_ms > ttl_ms)
        )
