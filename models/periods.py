"""Chargeback periods: calendar months in UTC by event time, and late events.

A period `P` holds the events with `start(P) <= ts < start(next(P))`
(closed-open). It stays open for late events until the watermark (the highest
event time seen, never the wall clock) reaches `start(next(P)) + cutoff_s`; from
that instant on it is closed, and an event of `P` is booked as an adjustment in
the oldest period still open, naming `P` in `adjusts`.

>>> from datetime import UTC, datetime
>>> late = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
>>> place_in_period(late, watermark=datetime(2026, 11, 2, tzinfo=UTC))
Placement(period='2026-10', adjusts=None)
>>> place_in_period(late, watermark=datetime(2026, 11, 4, tzinfo=UTC))
Placement(period='2026-11', adjusts='2026-10')
"""

import re
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from models.errors import InvalidPeriod
from models.validation import PERIOD_PATTERN

DEFAULT_CUTOFF_S = 72 * 3600
"""Grace after month end for late events: a weekend plus retries and backfills."""

_PERIOD = re.compile(PERIOD_PATTERN)


class Placement(NamedTuple):
    """Where an event is booked: its period, and the closed period it adjusts."""

    period: str
    adjusts: str | None


def parse_period(text: str) -> str:
    """Check that `text` names a calendar month, `YYYY-MM`, and return it.

    >>> parse_period("2026-13")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    models.errors.InvalidPeriod: period '2026-13' is not a calendar month...
    """
    if not _PERIOD.fullmatch(text) or text.startswith("0000"):
        msg = f"period {text!r} is not a calendar month; write YYYY-MM, e.g. 2026-11"
        raise InvalidPeriod(msg)
    return text


def period_of(ts: datetime) -> str:
    """The period holding event time `ts` (which must carry a time zone)."""
    utc = _in_utc(ts)
    return f"{utc.year:04d}-{utc.month:02d}"


def period_start(period: str) -> datetime:
    """The first instant of `period`, in UTC."""
    year, month = parse_period(period).split("-")
    return datetime(int(year), int(month), 1, tzinfo=UTC)


def next_period(period: str) -> str:
    """The month after `period`.

    >>> next_period("2026-12")
    '2027-01'
    """
    start = period_start(period)
    if start.month == 12:
        return f"{start.year + 1:04d}-01"
    return f"{start.year:04d}-{start.month + 1:02d}"


def closes_at(period: str, cutoff_s: float = DEFAULT_CUTOFF_S) -> datetime:
    """The watermark from which `period` takes no more events of its own."""
    check_cutoff(cutoff_s)
    return period_start(next_period(period)) + timedelta(seconds=cutoff_s)


def oldest_open_period(watermark: datetime, cutoff_s: float = DEFAULT_CUTOFF_S) -> str:
    """The oldest period still open at `watermark`; every later one is open too."""
    check_cutoff(cutoff_s)
    return period_of(_in_utc(watermark) - timedelta(seconds=cutoff_s))


def place_in_period(
    ts: datetime, watermark: datetime, cutoff_s: float = DEFAULT_CUTOFF_S
) -> Placement:
    """Decide where an event at `ts` is booked, given the partition's watermark.

    An event of an open period is booked there; an event of a closed period
    goes to the oldest open period as an adjustment of its own period. A
    watermark behind `ts` changes nothing: `ts`'s own period is then open.
    """
    own = period_of(ts)
    oldest_open = oldest_open_period(watermark, cutoff_s)
    if own >= oldest_open:
        return Placement(period=own, adjusts=None)
    return Placement(period=oldest_open, adjusts=own)


def _in_utc(ts: datetime) -> datetime:
    if ts.tzinfo is None or ts.utcoffset() is None:
        msg = f"time {ts.isoformat()} has no time zone; event times must be aware"
        raise ValueError(msg)
    return ts.astimezone(UTC)


def check_cutoff(cutoff_s: float) -> None:
    """Refuse a negative (or NaN) cut-off."""
    if not cutoff_s >= 0:
        msg = f"cutoff_s must be zero or more seconds, got {cutoff_s}"
        raise ValueError(msg)
