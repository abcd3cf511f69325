"""Remembering event ids for a span of event time, in bounded memory."""

from collections import OrderedDict


class DedupWindow:
    """Event ids seen within `horizon_s` of event time, at most `max_ids` of them.

    Ids are forgotten once their event time falls more than `horizon_s` behind
    the newest event time seen. Eviction walks from the oldest *inserted* id,
    so with out-of-order input an id can be kept longer than the horizon,
    never shorter. Past `max_ids` the oldest inserted ids are dropped early and
    counted in `evicted_early`: size `max_ids` for the event rate times the
    horizon to keep the guarantee.

    Times are event times in epoch seconds.

    >>> w = DedupWindow(horizon_s=60)
    >>> w.check_and_add("a", 1000.0), w.check_and_add("a", 1030.0)
    (False, True)
    >>> w.check_and_add("b", 1061.0), "a" in w
    (False, False)
    """

    def __init__(self, horizon_s: float = 86_400, max_ids: int = 2_000_000) -> None:
        if horizon_s <= 0 or max_ids <= 0:
            msg = f"horizon_s and max_ids must be positive, got {horizon_s}, {max_ids}"
            raise ValueError(msg)
        self.horizon_s = horizon_s
        self.max_ids = max_ids
        self.evicted_early = 0
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._newest_s = float("-inf")
        self._next_expiry_s = float("-inf")

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def check_and_add(self, event_id: str, ts_s: float) -> bool:
        """Return True if `event_id` was seen already; otherwise remember it."""
        if event_id in self._seen:
            return True
        self.add(event_id, ts_s)
        return False

    def add(self, event_id: str, ts_s: float) -> None:
        """Remember `event_id` at event time `ts_s`, forgetting what has aged out."""
        self._seen[event_id] = ts_s
        if ts_s > self._newest_s:
            self._newest_s = ts_s
            if ts_s >= self._next_expiry_s:
                self._expire()
        while len(self._seen) > self.max_ids:
            self._seen.popitem(last=False)
            self.evicted_early += 1

    def _expire(self) -> None:
        # At most once per second of event time: ids then live up to a second
        # past the horizon, and in-order input does not pay a scan per event.
        self._next_expiry_s = self._newest_s + 1.0
        cutoff_s = self._newest_s - self.horizon_s
        while self._seen:
            oldest_id, oldest_s = next(iter(self._seen.items()))
            if oldest_s >= cutoff_s:
                return
            del self._seen[oldest_id]
