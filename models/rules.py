"""Breaker rules, each checked on a session's `Velocity` (see `models.windows`).

Every threshold is "strictly above": spend equal to a limit, or exactly
`max_events` events, does not trip. Windows follow `models.windows`' convention:
closed at the start, open at the end, on bucket edges.

>>> from models.windows import SpendWindows
>>> w = SpendWindows()
>>> for i in range(51):
...     _ = w.add(i, Decimal("0.0001"))
>>> RuleSet.defaults().first_hit(w.velocity()).rule
'frequency'
"""

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from models.money import to_usd
from models.validation import Usd
from models.windows import (
    MAX_WINDOW_S,
    SpendWindows,
    Velocity,
    WindowSpec,
    nano_to_usd,
    usd_to_nano,
)


def _refuse_float(value: Any) -> Any:
    if isinstance(value, float):
        msg = f"binary float {value!r} is not exact; write it as a string, e.g. '0.25'"
        raise ValueError(msg)
    return value


WindowS = Annotated[int, Field(ge=1, le=MAX_WINDOW_S)]
"""A window length in whole seconds."""

ExactUsd = Annotated[Usd, BeforeValidator(_refuse_float)]
"""A non-negative USD amount given as a decimal string, integer or `Decimal`."""

ExactFactor = Annotated[
    Decimal, Field(gt=1, allow_inf_nan=False), BeforeValidator(_refuse_float)
]
"""A multiplier above 1, exact like money."""

DEFAULT_ABSOLUTE_USD = {10: to_usd("1.00"), 60: to_usd("3.00")}
"""The built-in absolute limits: window_s to the spend that may not be exceeded."""


@dataclass(frozen=True, slots=True)
class RuleHit:
    """Why a rule tripped: the window, what was in it and the threshold it crossed."""

    rule: Literal["absolute", "relative", "frequency"]
    window_s: int
    spend_usd: Decimal
    threshold_usd: Decimal
    rate_usd_per_s: Decimal
    events: int
    extra: dict[str, Any] = field(default_factory=dict)

    def record_fields(self) -> dict[str, Any]:
        """The `BreakerTrip` fields this hit fills, extras included."""
        return {
            "rule": self.rule,
            "window_s": self.window_s,
            "spend_usd": self.spend_usd,
            "threshold_usd": self.threshold_usd,
            "rate_usd_per_s": self.rate_usd_per_s,
            "events": self.events,
            **self.extra,
        }


class StrictModel(BaseModel):
    """A policy table: frozen, and unknown keys are errors (typos, not extensions)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class AbsoluteRule:
    """Trip when the spend within `window_s` is above `limit_usd`."""

    window_s: int
    limit_usd: Decimal
    limit_nano: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit_nano", usd_to_nano(self.limit_usd))

    def check(self, velocity: Velocity) -> RuleHit | None:
        totals = velocity[self.window_s]
        if totals.spend_nano <= self.limit_nano:
            return None
        return RuleHit(
            rule="absolute",
            window_s=self.window_s,
            spend_usd=totals.spend_usd,
            threshold_usd=to_usd(self.limit_usd),
            rate_usd_per_s=totals.rate_usd_per_s,
            events=totals.events,
        )


class RelativeRule(StrictModel):
    """Trip when the short-window rate is above `factor` times the session's baseline.

    The baseline is the long window's spend over the time it covers:
    `min(long_window_s, max(short_window_s, session age))`, so a young session
    is compared with its own short life, not with ten empty minutes. The
    short-window spend must also be above `floor_usd`, so a session's first
    cents never trip.
    """

    enabled: bool = True
    short_window_s: WindowS = 10
    long_window_s: WindowS = 600
    factor: ExactFactor = Decimal(10)
    floor_usd: ExactUsd = to_usd("0.25")

    @model_validator(mode="after")
    def _short_inside_long(self) -> "RelativeRule":
        if self.short_window_s >= self.long_window_s:
            msg = (
                f"short_window_s ({self.short_window_s}) must be below "
                f"long_window_s ({self.long_window_s})"
            )
            raise ValueError(msg)
        return self

    @cached_property
    def floor_nano(self) -> int:
        return usd_to_nano(self.floor_usd)

    def check(self, velocity: Velocity) -> RuleHit | None:
        short, long = velocity[self.short_window_s], velocity[self.long_window_s]
        floor_nano = self.floor_nano
        if short.spend_nano <= floor_nano:
            return None
        short_ms, long_ms = self.short_window_s * 1000, self.long_window_s * 1000
        covered_ms = min(long_ms, max(short_ms, velocity.age_ms))
        # Exact: short/short_ms > factor * long/covered_ms, cross-multiplied.
        allowed_nano = Fraction(self.factor) * long.spend_nano * short_ms / covered_ms
        if short.spend_nano <= allowed_nano:
            return None
        baseline_nano = Fraction(long.spend_nano * 1000, covered_ms)
        threshold_nano = max(allowed_nano, Fraction(floor_nano))
        return RuleHit(
            rule="relative",
            window_s=self.short_window_s,
            spend_usd=short.spend_usd,
            threshold_usd=nano_to_usd(round(threshold_nano)),
            rate_usd_per_s=short.rate_usd_per_s,
            events=short.events,
            extra={"baseline_rate_usd_per_s": nano_to_usd(round(baseline_nano))},
        )


class FrequencyRule(StrictModel):
    """Trip when more than `max_events` events fall within `window_s`, at any cost."""

    enabled: bool = True
    window_s: WindowS = 1
    max_events: int = Field(default=50, ge=1)

    def check(self, velocity: Velocity) -> RuleHit | None:
        totals = velocity[self.window_s]
        if totals.events <= self.max_events:
            return None
        return RuleHit(
            rule="frequency",
            window_s=self.window_s,
            spend_usd=totals.spend_usd,
            threshold_usd=Decimal(0),
            rate_usd_per_s=totals.rate_usd_per_s,
            events=totals.events,
            extra={"threshold_events": self.max_events},
        )


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Rules checked in order: absolute (short window first), relative, frequency."""

    absolute: tuple[AbsoluteRule, ...]
    relative: RelativeRule | None
    frequency: FrequencyRule | None
    _bounds: dict[WindowSpec, tuple[tuple[int, int], ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    """Per window spec, the `SpendWindows.exceeds` checks of `may_trip`."""

    @classmethod
    def defaults(cls) -> "RuleSet":
        """The built-in rules: $1.00 in 10 s, $3.00 in 60 s, 10x, 50 events in 1 s."""
        limits = DEFAULT_ABSOLUTE_USD.items()
        absolute = tuple(AbsoluteRule(w, usd) for w, usd in limits)
        return cls(absolute, RelativeRule(), FrequencyRule())

    def first_hit(self, velocity: Velocity) -> RuleHit | None:
        """The first rule that trips on `velocity`, or None."""
        for rule in self.absolute:
            hit = rule.check(velocity)
            if hit is not None:
                return hit
        for optional in (self.relative, self.frequency):
            hit = optional.check(velocity) if optional is not None else None
            if hit is not None:
                return hit
        return None

    def may_trip(self, windows: SpendWindows) -> bool:
        """False when no rule can trip at any end of `windows`; cheap and exact.

        Amounts are never negative, so a window holds at most what the whole
        ring it is counted in holds; a rule whose threshold is not below that
        bound cannot trip, and `first_hit` need not read the windows.
        """
        checks = self._bounds.get(windows.spec)
        if checks is None:
            checks = self._bounds[windows.spec] = self._bound_checks(windows.spec)
        return windows.exceeds(checks)

    def _bound_checks(self, spec: WindowSpec) -> tuple[tuple[int, int], ...]:
        """`(slot, limit)` per rule: the ring sum above which it might trip."""
        checks = [
            (2 * spec.ring_of(r.window_s) + 1, r.limit_nano) for r in self.absolute
        ]
        if self.relative is not None:
            short_at = spec.ring_of(self.relative.short_window_s)
            checks.append((2 * short_at + 1, self.relative.floor_nano))
        if self.frequency is not None:
            slot = 2 * spec.ring_of(self.frequency.window_s)
            checks.append((slot, self.frequency.max_events))
        return tuple(checks)

    def windows_s(self) -> set[int]:
        """Every window these rules read."""
        found = {rule.window_s for rule in self.absolute}
        if self.relative is not None:
            found |= {self.relative.short_window_s, self.relative.long_window_s}
        if self.frequency is not None:
            found.add(self.frequency.window_s)
        return found
