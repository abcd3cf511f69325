"""What a grant operation hands back: records to publish, rows to land, answers."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

from models.grants import Grant
from models.money import ZERO_USD, usd_text
from models.records import GrantActivity, GrantStatus
from models.transfers import Transfer

SpendFlag = Literal["duplicate", "unknown", "closed", "exhausted", "over_limit"]
"""Why a debit was not charged in full: `duplicate` is not counted at all; the
others are metered as overspend on the grant (or, `unknown`, on no grant)."""


@dataclass(slots=True)
class Outcome:
    """Records for `spend.grant-status`, rows for `grant_activity`, transfers.

    `transfers` are the follow-up messages of the fund protocol still to be
    delivered, keyed by `Transfer.to_id` (see `models.transfers`).
    """

    statuses: list[GrantStatus] = field(default_factory=list)
    activity: list[GrantActivity] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)

    def extend(self, other: "Outcome") -> None:
        self.statuses.extend(other.statuses)
        self.activity.extend(other.activity)
        self.transfers.extend(other.transfers)

    def report(self, grant: Grant, ts: datetime, reason: str | None = None) -> None:
        """Publish the grant's new numbers; an exhaustion also gets its row."""
        if grant.status == "exhausted":
            self.activity.append(grant.activity("exhausted", ZERO_USD, ts))
            spent, limit = usd_text(grant.spent_usd), usd_text(grant.limit_usd)
            reason = reason or f"spent {spent} has reached the limit {limit}"
        self.statuses.append(grant.status_record(ts, reason=reason))

    def refuse(
        self, grant_id: str, grant: Grant | None, ts: datetime, reason: str
    ) -> None:
        """Report a refused command on the grant that refused it."""
        if grant is None:
            grant = Grant(grant_id=grant_id, root_id=grant_id, opened_at=ts)
        self.statuses.append(grant.status_record(ts, refused=True, reason=reason))
        self.activity.append(grant.activity("refused", ZERO_USD, ts))


@dataclass(slots=True)
class SpendResult:
    """How one cost event was debited: charged, overspent, and why if flagged."""

    grant_id: str
    event_id: str
    charged_usd: Decimal
    overspend_usd: Decimal
    flag: SpendFlag | None
    outcome: Outcome


@dataclass(slots=True)
class AuthorizeResult:
    """The gateway's answer: a held reservation (200) or a refusal (402)."""

    grant_id: str
    reservation_id: str
    amount_usd: Decimal
    approved: bool
    balance_usd: Decimal
    reserved_usd: Decimal
    reason: str | None
    expires_at: datetime | None
    outcome: Outcome

    @property
    def http_status(self) -> int:
        """200 for a held reservation, 402 Payment Required for a refusal."""
        return 200 if self.approved else 402
