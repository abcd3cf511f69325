"""The project's error tree: one root, a few domain errors under it."""


class SpendstreamError(Exception):
    """Root of every error spendstream raises on purpose."""


class InvalidRecord(SpendstreamError):
    """A record that cannot be parsed or validated; it belongs in the DLQ."""

    def __init__(self, reason: str, kind: str = "invalid_field") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        """A short, fixed category of the reason, fit for a metric label."""


class PricingError(InvalidRecord):
    """A call without `cost_usd` whose model the price catalogue does not know."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, kind="unpriceable")


class InvalidPeriod(SpendstreamError):
    """A chargeback period that is not a calendar month written `YYYY-MM`."""


class InvalidTask(InvalidRecord):
    """Task features the shadow model cannot take: answer 4xx, learn nothing."""


class SnapshotError(SpendstreamError):
    """A shadow model snapshot that cannot be loaded."""


class PolicyError(SpendstreamError):
    """A breaker policy that cannot be read, parsed or validated."""


class StateError(SpendstreamError):
    """Stored breaker state that cannot be restored (corrupt or from another shape)."""


class GrantError(SpendstreamError):
    """A grant operation given an amount or a duration it cannot take."""


class LedgerImbalance(SpendstreamError):
    """Money was created or lost in a wallet tree: a bug, never bad input."""
