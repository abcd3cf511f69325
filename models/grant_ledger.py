"""Conservation of money in wallet trees: the totals, and the check on them.

For every tree (the grants sharing a `root_id`), exactly:

    minted = balance + reserved + spent + returned + in transit

where in transit is what senders booked out and receivers have not booked in
yet (sent - received over the tree): zero in one process once every transfer
is delivered. Each grant also keeps its own identity (`models.grants`), and no
amount is negative. Overspend is metered beside the tree's money, not in it.

Pass every grant of a tree: given one partition's grants, transfers to grants
elsewhere show as in transit (and receipts from elsewhere as negative).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from models.errors import LedgerImbalance
from models.grants import Grant
from models.money import ZERO_USD, usd_text


@dataclass(frozen=True, slots=True)
class LedgerTotals:
    """The money of one wallet tree, summed over its grants."""

    root_id: str
    grants: int
    minted_usd: Decimal
    balance_usd: Decimal
    reserved_usd: Decimal
    spent_usd: Decimal
    returned_usd: Decimal
    in_transit_usd: Decimal
    overspent_usd: Decimal

    @property
    def accounted_usd(self) -> Decimal:
        """Where the minted money is: held, reserved, spent, returned, moving."""
        return (
            self.balance_usd
            + self.reserved_usd
            + self.spent_usd
            + self.returned_usd
            + self.in_transit_usd
        )

    @property
    def balanced(self) -> bool:
        return self.minted_usd == self.accounted_usd and self.in_transit_usd >= 0


def ledger_totals(grants: Iterable[Grant]) -> dict[str, LedgerTotals]:
    """Totals per tree, keyed by root grant id."""
    sums: dict[str, list[Decimal]] = {}
    counts: dict[str, int] = {}
    for g in grants:
        row = sums.setdefault(g.root_id, [ZERO_USD] * 7)
        counts[g.root_id] = counts.get(g.root_id, 0) + 1
        parts = (
            g.minted_usd,
            g.balance_usd,
            g.reserved_usd,
            g.spent_usd,
            g.returned_usd,
            g.sent_usd - g.received_usd,
            g.overspent_usd,
        )
        for i, amount in enumerate(parts):
            row[i] += amount
    return {root: LedgerTotals(root, counts[root], *row) for root, row in sums.items()}


def grant_problems(grant: Grant) -> list[str]:
    """What is wrong with one grant's books; empty when they hold."""
    g, problems = grant, []
    held_in = g.minted_usd + g.received_usd
    held_out = (
        g.balance_usd + g.reserved_usd + g.spent_usd + g.sent_usd + g.returned_usd
    )
    if held_in != held_out:
        problems.append(
            f"grant {g.grant_id}: minted + received {usd_text(held_in)} != balance"
            f" + reserved + spent + sent + returned {usd_text(held_out)}"
        )
    for name in ("minted", "received", "sent", "returned", "spent", "balance"):
        if getattr(g, f"{name}_usd") < 0:
            problems.append(f"grant {g.grant_id}: {name}_usd is negative")
    if any(r.amount_usd <= 0 for r in g.reservations.values()):
        problems.append(f"grant {g.grant_id}: a reservation holds nothing")
    if g.closed and (g.balance_usd != 0 or g.reservations):
        problems.append(f"grant {g.grant_id}: closed but still holds money")
    return problems


def ledger_problems(grants: Iterable[Grant], *, settled: bool = False) -> list[str]:
    """Every broken identity, per grant and per tree; `settled`: none in transit."""
    grants = list(grants)
    problems = [p for g in grants for p in grant_problems(g)]
    for t in ledger_totals(grants).values():
        if not t.balanced:
            problems.append(
                f"tree {t.root_id}: minted {usd_text(t.minted_usd)} != accounted "
                f"{usd_text(t.accounted_usd)} (in transit {usd_text(t.in_transit_usd)})"
            )
        if settled and t.in_transit_usd != 0:
            in_transit = usd_text(t.in_transit_usd)
            problems.append(f"tree {t.root_id}: {in_transit} still in transit")
    return problems


def assert_conserved(grants: Iterable[Grant], *, settled: bool = False) -> None:
    """Raise `LedgerImbalance` naming every broken identity, if any."""
    problems = ledger_problems(grants, settled=settled)
    if problems:
        raise LedgerImbalance("; ".join(problems))
