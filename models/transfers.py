"""Money between two grants, applied as two halves: the fund protocol.

Grants are partitioned by grant id, and a parent and its child may live on
different partitions. So every move of money between two grants is split into
a *sender half*, applied where the sender lives, and a *receiver half*,
applied where the receiver lives, joined by one `Transfer` keyed by `to_id`.
The halves are in `models.funding`:

1. A command goes to the partition of the grant that pays or acts
   (`models.wallet.route_key`): the parent for `open` of a child and for
   `fund`, the grant itself for `top_up` and `close`.
2. The sender half checks and debits the sender: its balance falls by the
   amount and its `sent_usd` rises by it, in the same state update that
   numbers the outgoing `Transfer` (`seq`). A refusal (balance short, not its
   child, closed) changes nothing and is reported on the sender.
3. The worker produces the transfer keyed by `to_id`. The receiver half
   credits the receiver: `received_usd` and its balance rise by the amount.
   A receiver that cannot take it (an `open` for an id that exists, a `fund`
   to a closed grant, an unknown one or another parent's child) sends it back
   as a `refund`; money arriving at a closed grant passes on to its parent, or
   out to the minting side (`returned_usd`) at a root.

Between steps 2 and 3 the money is in transit: in the sender's `sent_usd` and
in no one's `received_usd`; `models.grant_ledger` counts it so. In one process
(`Wallet(deliver_locally=True)`) step 3 follows at once.

Each transfer is applied once: a sender numbers its transfers, and a receiver
remembers the highest `seq` it applied per sender and drops anything at or
below it. That needs the transfers from one sender to one receiver to arrive
in the order sent: produce them from the sender's partition task, keyed by
`to_id`, with an idempotent producer. A receiver that does not exist gets a
closed placeholder state that remembers the `seq` and refunds the money.
"""

from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, Field, field_validator

from models.validation import Name, Record, Usd

TransferKind = Literal["open", "fund", "return", "refund"]


class Transfer(Record):
    """Money on its way from `from_id` to `to_id`, for the receiver's partition.

    `open` creates the child with `principal` and `expires_at`; `refund` says
    which kind it sends back (`refund_of`) and why (`reason`). The `return` a
    child sends when it closes says so (`child_closed`, even for nothing
    unspent), so the parent stops counting it among its children.
    """

    ts: AwareDatetime
    kind: TransferKind
    from_id: Name
    to_id: Name
    seq: int = Field(ge=0, strict=True)
    amount_usd: Usd
    root_id: Name
    principal: Name | None = None
    expires_at: AwareDatetime | None = None
    refund_of: TransferKind | None = None
    reason: str | None = None
    child_closed: bool = False

    @field_validator("ts")
    @classmethod
    def _in_utc(cls, ts: datetime) -> datetime:
        return ts.astimezone(UTC)

    @property
    def transfer_id(self) -> str:
        return f"{self.from_id}#{self.seq}"
