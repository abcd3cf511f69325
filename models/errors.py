"""The project's error tree: one root, a few domain errors under it."""


class SpendstreamError(Exception):
    """Root of every error spendstream raises on purpose."""


class InvalidRecord(SpendstreamError):
    """A record that cannot be parsed or validated; it belongs in the DLQ."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PricingError(InvalidRecord):
    """A call without `cost_usd` whose model the price catalogue does not know."""


class GrantError(SpendstreamError):
    """A grant operation given an amount or a duration it cannot take."""


class LedgerImbalance(SpendstreamError):
    """Money was created or lost in a wallet tree: a bug, never bad input."""
