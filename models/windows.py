"""Spend velocity per session over sliding event-time windows, in bounded memory.

Time is event time only: every timestamp is passed in, in integer milliseconds
since the epoch (`epoch_ms`); nothing here reads a clock.

Window convention. A window of `window_s` is counted in buckets of width
`r = bucket_ms_for(window_s)` (a hundredth of the window, at least 100 ms); a
bucket is closed-open, `[k*r, (k+1)*r)`. Read at time `t`, the window covers
the `n = window_s*1000/r` buckets up to and including the one holding `t`:
closed at its start `(t//r - n + 1)*r`, open at its end `(t//r + 1)*r`. It thus
reaches back between `window_s - r` and `window_s` from `t`, and an event at
`s` leaves it at `s//r*r + window_s*1000` (at `s + window_s` when `s` sits on a
bucket edge).

Sums are exact: money is kept as integer nano-USD and read back as `Decimal`.

>>> w = SpendWindows(WindowSpec(windows_s=(10,)))
>>> w.add(0, Decimal("0.40")), w.add(9_999, Decimal("0.60"))
(<Arrival.ON_TIME: 'on_time'>, <Arrival.ON_TIME: 'on_time'>)
>>> w.velocity().spend_usd(10)
Decimal('1.000000000')
>>> w.velocity(end_ms=10_000).spend_usd(10)
Decimal('0.600000000')
"""

import struct
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from itertools import accumulate, pairwise
from typing import Any, TypeAlias

from models.codec import int_or_none
from models.errors import StateError
from models.money import to_usd

NANO_PER_USD = 10**9
NO_MS = -(2**63)
"""An absent time in the binary form (`SpendWindows.to_bytes`)."""
_HEAD = struct.Struct("<qqH")  # newest_ms, first_ms, rings
_RING = struct.Struct("<iI")  # bucket width in ms, buckets
MIN_BUCKET_MS = 100
BUCKETS_PER_WINDOW = 100
MAX_WINDOW_S = 86_400
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


class Arrival(StrEnum):
    """How an event stood against the session's newest event time."""

    ON_TIME = "on_time"
    LATE = "late"
    TOO_LATE = "too_late"


def epoch_ms(ts: datetime) -> int:
    """Milliseconds since the epoch, exactly (no float), for an aware datetime."""
    return (ts - _EPOCH) // _ONE_MS


def from_epoch_ms(ms: int) -> datetime:
    """The aware UTC datetime `ms` milliseconds after the epoch; `epoch_ms` inverted.

    >>> from_epoch_ms(1_500)
    datetime.datetime(1970, 1, 1, 0, 0, 1, 500000, tzinfo=datetime.timezone.utc)
    """
    return _EPOCH + ms * _ONE_MS


def usd_to_nano(amount: Decimal) -> int:
    """An amount in USD as integer nano-USD, rounded half-even to 1e-9.

    >>> usd_to_nano(Decimal("0.05")), usd_to_nano(Decimal("0.0000000015"))
    (50000000, 2)
    """
    if isinstance(amount, Decimal) and amount.is_finite():
        scaled = amount.scaleb(9)
        nano = int(scaled)
        if nano == scaled:  # already to the nano-dollar, as every validated amount
            return nano
    return int(to_usd(amount).scaleb(9))


def nano_to_usd(nano: int) -> Decimal:
    """Integer nano-USD back to a `Decimal` in USD with nine decimals."""
    return to_usd(Decimal(nano).scaleb(-9))


def bucket_ms_for(window_s: int) -> int:
    """The bucket width a window is counted in: a hundredth of it, at least 100 ms.

    >>> bucket_ms_for(1), bucket_ms_for(10), bucket_ms_for(60), bucket_ms_for(600)
    (100, 100, 600, 6000)
    """
    return max(MIN_BUCKET_MS, window_s * 1000 // BUCKETS_PER_WINDOW)


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """Which windows to keep (whole seconds) and how late an event may still count.

    The default tracks 1 s (the frequency count), 10 s, 60 s and 10 min.
    `ring_spans` maps each bucket width in use to the buckets it keeps: the
    longest window counted in that width plus the lateness.
    """

    windows_s: tuple[int, ...] = (1, 10, 60, 600)
    lateness_s: int = 30
    ring_spans: dict[int, int] = field(init=False, compare=False, repr=False)
    reads: tuple[tuple[int, int, int], ...] = field(
        init=False, compare=False, repr=False
    )
    """Per window: (window_s, index of its ring in `ring_spans`, buckets it spans)."""
    rings: tuple[tuple[int, int], ...] = field(init=False, compare=False, repr=False)
    """`ring_spans` as a tuple of (bucket width in ms, buckets kept), in order."""

    def __post_init__(self) -> None:
        bad = [w for w in self.windows_s if not 1 <= w <= MAX_WINDOW_S]
        if not self.windows_s or bad:
            msg = (
                f"windows_s must be whole seconds from 1 to {MAX_WINDOW_S}, "
                f"got {self.windows_s!r}"
            )
            raise ValueError(msg)
        if self.lateness_s < 0:
            msg = f"lateness_s must be zero or more, got {self.lateness_s}"
            raise ValueError(msg)
        object.__setattr__(self, "windows_s", tuple(sorted(set(self.windows_s))))
        spans: dict[int, int] = {}
        for window_s in self.windows_s:
            width_ms = bucket_ms_for(window_s)
            buckets = window_s * 1000 // width_ms - (-self.lateness_ms // width_ms)
            spans[width_ms] = max(spans.get(width_ms, 0), buckets)
        object.__setattr__(self, "ring_spans", spans)
        widths = list(spans)
        reads = tuple(
            (w, widths.index(bucket_ms_for(w)), w * 1000 // bucket_ms_for(w))
            for w in self.windows_s
        )
        object.__setattr__(self, "reads", reads)
        object.__setattr__(self, "rings", tuple(spans.items()))

    @property
    def lateness_ms(self) -> int:
        return self.lateness_s * 1000

    def ring_of(self, window_s: int) -> int:
        """The index of the ring `window_s` is counted in; KeyError if untracked."""
        for tracked_s, ring_at, _ in self.reads:
            if tracked_s == window_s:
                return ring_at
        raise KeyError(f"window_s {window_s} is not tracked: {self.windows_s}")


DEFAULT_SPEC = WindowSpec()


@dataclass(frozen=True, slots=True)
class WindowTotals:
    """Events and spend in one window, read at one end time."""

    window_s: int
    events: int
    spend_nano: int

    @property
    def spend_usd(self) -> Decimal:
        return nano_to_usd(self.spend_nano)

    @property
    def rate_usd_per_s(self) -> Decimal:
        """Spend divided by the window's length."""
        return to_usd(self.spend_usd / self.window_s)


@dataclass(frozen=True, slots=True)
class Velocity:
    """Every tracked window read at `end_ms`; `age_ms` is time since the first event."""

    end_ms: int
    age_ms: int
    windows: dict[int, WindowTotals]

    def __getitem__(self, window_s: int) -> WindowTotals:
        try:
            return self.windows[window_s]
        except KeyError:
            tracked = sorted(self.windows)
            msg = f"window_s {window_s} is not tracked; tracked windows: {tracked}"
            raise KeyError(msg) from None

    def spend_usd(self, window_s: int) -> Decimal:
        return self[window_s].spend_usd

    def events(self, window_s: int) -> int:
        return self[window_s].events


# A ring holds the non-empty buckets of one width, oldest first, interleaved in
# one int64 array as (bucket number, events, nano-USD) triples: one array per
# ring keeps a quiet session small. A bucket holds at most 2**63 nano-USD
# (about $9.2e9); no session comes near.
_Ring: TypeAlias = "array[int]"


def _first_at_or_after(ring: _Ring, key: int) -> int:
    """The index, in buckets, of the first bucket numbered `key` or later."""
    with memoryview(ring) as view:  # released before the ring may be resized
        return bisect_left(view[::3], key)


def _ring_add(ring: _Ring, key: int, nano: int) -> None:
    """Count one event of `nano` in bucket `key`; in-order input appends."""
    if not ring or ring[-3] < key:
        ring.extend((key, 1, nano))
        return
    at = 3 * _first_at_or_after(ring, key)
    if ring[at] == key:
        ring[at + 1] += 1
        ring[at + 2] += nano
    else:
        ring[at:at] = array("q", (key, 1, nano))


def _ring_totals(ring: _Ring, end_key: int, buckets: int) -> tuple[int, int]:
    """Events and nano-USD in the `buckets` buckets ending with bucket `end_key`."""
    lo = _first_at_or_after(ring, end_key - buckets + 1)
    newest = not ring or ring[-3] <= end_key
    hi = len(ring) // 3 if newest else _first_at_or_after(ring, end_key + 1)
    return sum(ring[3 * lo + 1 : 3 * hi : 3]), sum(ring[3 * lo + 2 : 3 * hi : 3])


def _ring_lists(ring: _Ring) -> list[list[int]]:
    """Bucket numbers as first-then-gaps, counts, nano-USD: small in JSON."""
    keys = list(ring[0::3])
    gaps = keys[:1] + [b - a for a, b in pairwise(keys)]
    return [gaps, list(ring[1::3]), list(ring[2::3])]


def _ring_from_lists(lists: list[list[int]]) -> _Ring:
    gaps, events, nanos = lists
    if not len(gaps) == len(events) == len(nanos):
        raise ValueError("ring lists differ in length")
    if any(gap <= 0 for gap in gaps[1:]):
        raise ValueError("ring bucket numbers are not ascending")
    ring = array("q", bytes(24 * len(gaps)))
    ring[0::3] = array("q", accumulate(gaps))
    ring[1::3] = array("q", events)
    ring[2::3] = array("q", nanos)
    return ring


def _little_endian(ring: _Ring) -> bytes:
    if sys.byteorder == "little":
        return ring.tobytes()
    swapped = array("q", ring)
    swapped.byteswap()
    return swapped.tobytes()


def _ring_from_bytes(raw: bytes) -> _Ring:
    if len(raw) % 24:
        raise ValueError("a ring's bytes end inside a bucket")
    ring = array("q", raw)
    if sys.byteorder != "little":
        ring.byteswap()
    keys = ring[0::3]
    if any(b <= a for a, b in pairwise(keys)):
        raise ValueError("ring bucket numbers are not ascending")
    return ring


class SpendWindows:
    """One session's spend and event counts over every window of a `WindowSpec`.

    Memory is bounded: each ring keeps at most its longest window plus the
    lateness in buckets (see `WindowSpec.ring_spans`), and only non-empty ones.
    Each ring's events and nano-USD in all are kept as buckets come and go
    (`_sums`: events of ring i at 2i, nano-USD at 2i+1), a bound on every
    window counted in it (`exceeds`).
    """

    __slots__ = ("_rings", "_sums", "first_ms", "newest_ms", "spec")

    def __init__(self, spec: WindowSpec = DEFAULT_SPEC) -> None:
        self.spec = spec
        self.newest_ms: int | None = None
        self.first_ms: int | None = None
        self._rings = [array("q") for _ in spec.ring_spans]
        self._sums = array("q", bytes(16 * len(self._rings)))

    def add(
        self, ts_ms: int, cost_usd: Decimal, *, high_ms: int | None = None
    ) -> Arrival:
        """Count an event, unless it is more than the lateness behind.

        Lateness is measured against the newest event time seen, the session's
        or `high_ms` (the partition's) if that is newer. An event exactly the
        lateness behind still counts; a `TOO_LATE` one changes nothing here.
        """
        before_ms = self.newest_ms
        newest = ts_ms if before_ms is None or ts_ms > before_ms else before_ms
        if high_ms is not None and high_ms > newest:
            newest = high_ms
        if ts_ms < newest - self.spec.lateness_ms:
            return Arrival.TOO_LATE
        on_time = before_ms is None or ts_ms >= before_ms
        nano, sums, at = usd_to_nano(cost_usd), self._sums, 0
        # One pass per ring: count the event, then drop what it pushed out.
        for ring, (width_ms, span) in zip(self._rings, self.spec.rings, strict=True):
            key = ts_ms // width_ms
            if ring and ring[-3] >= key:
                _ring_add(ring, key, nano)
            else:
                ring.extend((key, 1, nano))
            sums[at] += 1
            sums[at + 1] += nano
            if on_time and ring[0] <= key - span:
                self._cut(ring, at, key - span + 1)
            at += 2
        if self.first_ms is None or ts_ms < self.first_ms:
            self.first_ms = ts_ms
        if not on_time:
            return Arrival.LATE
        self.newest_ms = ts_ms
        return Arrival.ON_TIME

    def velocity(self, end_ms: int | None = None) -> Velocity:
        """Every window read at `end_ms` (default: the newest event time)."""
        end = self.newest_ms if end_ms is None else end_ms
        if end is None:
            zero = {w: WindowTotals(w, 0, 0) for w in self.spec.windows_s}
            return Velocity(end_ms=0, age_ms=0, windows=zero)
        widths = list(self.spec.ring_spans)
        windows = {}
        for window_s, ring_at, buckets in self.spec.reads:
            end_key = end // widths[ring_at]
            events, nano = _ring_totals(self._rings[ring_at], end_key, buckets)
            windows[window_s] = WindowTotals(window_s, events, nano)
        age_ms = 0 if self.first_ms is None else max(0, end - self.first_ms)
        return Velocity(end_ms=end, age_ms=age_ms, windows=windows)

    def exceeds(self, checks: Iterable[tuple[int, int]]) -> bool:
        """Whether any `(slot, limit)` of `checks` has a ring sum above its limit.

        A slot is `2 * ring` for the ring's events, `2 * ring + 1` for its
        nano-USD. No window counted in a ring holds more than the whole ring.
        """
        sums = self._sums
        for slot, limit in checks:  # noqa: SIM110 - no generator per event
            if sums[slot] > limit:
                return True
        return False

    def clear(self) -> None:
        """Forget every counted event; the newest time stays for lateness."""
        self.first_ms = None
        self._rings = [array("q") for _ in self.spec.ring_spans]
        self._sums = array("q", bytes(16 * len(self._rings)))

    def adopt(self, spec: WindowSpec) -> None:
        """Switch to another spec; rings of new bucket widths start empty."""
        if spec is self.spec or spec == self.spec:
            return
        kept = dict(zip(self.spec.ring_spans, self._rings, strict=True))
        self.spec = spec
        self._rings = [kept.get(width, array("q")) for width in spec.ring_spans]
        self._recount()
        self._prune()

    def bucket_count(self) -> int:
        return sum(len(ring) // 3 for ring in self._rings)

    def approx_size_bytes(self) -> int:
        """Bytes held by this object, its ring list and arrays (CPython sizes)."""
        rings = sum(sys.getsizeof(ring) for ring in self._rings)
        lists = sys.getsizeof(self._rings) + sys.getsizeof(self._sums)
        return sys.getsizeof(self) + lists + rings

    def _prune(self) -> None:
        """Drop each ring's buckets older than its span behind the newest event."""
        if self.newest_ms is None:
            return
        rings = zip(self._rings, self.spec.rings, strict=True)
        for at, (ring, (width_ms, span)) in enumerate(rings):
            oldest_key = self.newest_ms // width_ms - span + 1
            if ring and ring[0] < oldest_key:
                self._cut(ring, 2 * at, oldest_key)

    def _cut(self, ring: _Ring, at: int, oldest_key: int) -> None:
        """Drop the buckets of `ring` (sums at `at`) numbered below `oldest_key`."""
        cut = 3 * _first_at_or_after(ring, oldest_key)
        self._sums[at] -= sum(ring[1:cut:3])
        self._sums[at + 1] -= sum(ring[2:cut:3])
        del ring[:cut]

    def _recount(self) -> None:
        """Every ring's sums from its buckets (after the rings were replaced)."""
        sums = self._sums = array("q", bytes(16 * len(self._rings)))
        for at, ring in enumerate(self._rings):
            sums[2 * at] = sum(ring[1::3])
            sums[2 * at + 1] = sum(ring[2::3])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: times, and per bucket width the ring's three lists."""
        widths = self.spec.ring_spans
        rings = {
            str(w): _ring_lists(r) for w, r in zip(widths, self._rings, strict=True)
        }
        return {"newest_ms": self.newest_ms, "first_ms": self.first_ms, "rings": rings}

    def to_bytes(self) -> bytes:
        """A compact binary form: times, then per ring its width and raw triples.

        Integers are little-endian int64; `from_bytes` reads it back. Several
        times cheaper to write and read than `to_dict` as JSON; 24 bytes a
        bucket, so smaller than JSON for a quiet session and up to about 1.7
        times larger for a busy one.
        """
        newest = NO_MS if self.newest_ms is None else self.newest_ms
        first = NO_MS if self.first_ms is None else self.first_ms
        parts = [_HEAD.pack(newest, first, len(self._rings))]
        for width_ms, ring in zip(self.spec.ring_spans, self._rings, strict=True):
            parts += [_RING.pack(width_ms, len(ring) // 3), _little_endian(ring)]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes, spec: WindowSpec) -> "SpendWindows":
        """Restore `to_bytes` output under `spec`; `StateError` if it is malformed."""
        windows = cls(spec)
        try:
            newest, first, count = _HEAD.unpack_from(data)
            at, stored = _HEAD.size, {}
            for _ in range(count):
                width_ms, buckets = _RING.unpack_from(data, at)
                at += _RING.size
                stored[width_ms] = _ring_from_bytes(data[at : at + 24 * buckets])
                at += 24 * buckets
            if at != len(data):
                raise ValueError(f"{len(data) - at} bytes left over")
        except (struct.error, ValueError) as exc:
            msg = f"stored session windows are malformed ({exc!r}); drop the entry"
            raise StateError(msg) from None
        windows.newest_ms = None if newest == NO_MS else newest
        windows.first_ms = None if first == NO_MS else first
        windows._rings = [stored.get(w, array("q")) for w in spec.ring_spans]
        windows._recount()
        windows._prune()
        return windows

    @classmethod
    def from_dict(cls, data: dict[str, Any], spec: WindowSpec) -> "SpendWindows":
        """Restore `to_dict` output under `spec`; `StateError` if it is malformed."""
        windows = cls(spec)
        try:
            windows.newest_ms = int_or_none(data["newest_ms"])
            windows.first_ms = int_or_none(data["first_ms"])
            stored = {int(width): lists for width, lists in data["rings"].items()}
            windows._rings = [
                _ring_from_lists(stored[width]) if width in stored else array("q")
                for width in spec.ring_spans
            ]
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as exc:
            msg = f"stored session windows are malformed ({exc!r}); drop the entry"
            raise StateError(msg) from None
        windows._recount()
        windows._prune()
        return windows
