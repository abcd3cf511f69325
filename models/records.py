"""The contract's other records: commands in, decisions and entries out.

Field names are fixed by the contract (DESIGN.md); more fields may be added,
and unknown ones are kept.
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, Field, field_validator, model_validator

from models.validation import Name, PeriodText, Record, SignedUsd, Tokens, Usd


class _Timed(Record):
    ts: AwareDatetime

    @field_validator("ts")
    @classmethod
    def _in_utc(cls, ts: datetime) -> datetime:
        return ts.astimezone(UTC)


class GrantCommand(_Timed):
    """A command on `spend.grants`: open, top up, fund a child, close.

    `command_id` (beyond the contract's fields) is optional: a gateway that may
    send a command twice gives both copies the same id, and it is applied once.
    """

    command: Literal["open", "top_up", "fund", "close"]
    grant_id: Name
    command_id: Name | None = None
    limit_usd: Usd | None = None
    amount_usd: Usd | None = None
    parent_id: Name | None = None
    principal: Name | None = None
    expires_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _amounts_fit_the_command(self) -> "GrantCommand":
        if self.command == "open" and self.limit_usd is None:
            raise ValueError("an open command needs limit_usd")
        if self.command in ("top_up", "fund") and self.amount_usd is None:
            raise ValueError(f"a {self.command} command needs amount_usd")
        if self.command == "fund" and self.parent_id is None:
            raise ValueError("a fund command needs parent_id, the grant that pays")
        return self


class TaskRecord(_Timed):
    """A task on `spend.tasks`: `started` with its features, or `finished`.

    A `finished` record may carry the task's totals (`steps`, `tokens`,
    `cost_usd`) where the gateway has them; `models.tasks` says which wins.
    """

    status: Literal["started", "finished"]
    task_id: Name
    prompt: str | None = None
    agent: Name | None = None
    model: Name | None = None
    user: Name | None = None
    principal: Name | None = None
    outcome: str | None = None
    steps: Tokens | None = None
    tokens: Tokens | None = None
    cost_usd: Usd | None = None


class AdminCommand(_Timed):
    """A command on `spend.admin`: unfreeze a session or replace the policy."""

    command: Literal["unfreeze", "set_policy"]
    session_id: Name | None = None
    policy: dict[str, Any] | None = None
    by: Name | None = None

    @model_validator(mode="after")
    def _subject_present(self) -> "AdminCommand":
        if self.command == "unfreeze" and self.session_id is None:
            raise ValueError("an unfreeze command needs session_id")
        if self.command == "set_policy" and self.policy is None:
            raise ValueError("a set_policy command needs policy")
        return self


class BreakerTrip(_Timed):
    """A breaker decision on `spend.breaker-trips`: frozen, or unfrozen.

    `ts` is the event time of the event that tripped (or the unfreeze
    command's time); `detected_at`, beyond the contract's fields, is when the
    worker tripped by its own clock.
    """

    trip_id: Name
    session_id: Name
    agent: str | None = None
    principal: str | None = None
    state: Literal["frozen", "unfrozen"]
    rule: str
    window_s: float
    spend_usd: Usd
    threshold_usd: Usd
    rate_usd_per_s: Usd
    detected_at: AwareDatetime | None = None


class GrantStatus(_Timed):
    """A grant's balance change on `spend.grant-status`.

    `limit_usd` is what the grant may spend itself: spent + reserved + balance.
    A refused command is reported on the grant that refused it (the payer of a
    fund), with that grant's unchanged numbers and the reason.
    """

    grant_id: Name
    parent_id: Name | None = None
    status: Literal["open", "exhausted", "closed", "refused"]
    limit_usd: Usd
    spent_usd: Usd
    reserved_usd: Usd = Decimal(0)
    balance_usd: SignedUsd
    reason: str | None = None


GrantActivityKind = Literal[
    "open",
    "top_up",
    "fund_out",
    "fund_in",
    "return_out",
    "return_in",
    "refund_out",
    "refund_in",
    "returned",
    "spend",
    "overspend",
    "reserve",
    "release",
    "exhausted",
    "closed",
    "refused",
]


class GrantActivity(_Timed):
    """One row of ClickHouse `grant_activity`: money moved on a grant, or a status.

    `balance_usd` is the grant's balance after the row. `overspend` is spend
    metered against a grant that could not cover it (flagged, outside the
    tree's money).
    """

    grant_id: Name
    parent_id: Name | None = None
    kind: GrantActivityKind
    amount_usd: Usd
    balance_usd: Usd


class LedgerEntry(_Timed):
    """One double-entry line on `spend.ledger`: `debit` pays `credit`.

    `ts` is the event's time; `period` is where the entry is booked, and for a
    late event `adjusts` names the earlier, closed period it belongs to.
    Beyond the contract's fields: `model` lets the statement say which models
    a flow paid for; `source` and `source_seq` name the input the entry was
    booked from and its number there (see `models.ledger.Bookkeeper`).
    """

    entry_id: Name
    period: PeriodText
    debit: Name
    credit: Name
    amount_usd: Usd
    event_id: Name
    agent: Name
    internal: bool
    adjusts: PeriodText | None = None
    model: Name | None = None
    source: Name | None = None
    source_seq: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> "LedgerEntry":
        if self.internal != (self.debit == self.credit):
            msg = (
                f"internal is {self.internal} but debit {self.debit!r} and credit "
                f"{self.credit!r} say otherwise; internal means the same department"
            )
            raise ValueError(msg)
        if self.adjusts is not None and self.adjusts >= self.period:
            msg = f"adjusts ({self.adjusts}) must be a period before {self.period}"
            raise ValueError(msg)
        return self


class DlqRecord(_Timed):
    """A rejected record on `spend.dlq`, with where it came from and why."""

    source_topic: str
    partition: int
    offset: int
    key: str | None
    value: str
    value_encoding: Literal["text", "base64"] = "text"
    reason: str
