"""Records on the internal grant-ops topic: what a grant's partition applies.

Every change to a grant reaches the partition that owns it as one op, keyed by
the grant that applies it (the topic is co-partitioned with the grants table):

- `CommandOp`: a command from `spend.grants`, keyed by `route_key`, with the
  partition and offset it was read at (`models.grant_replay`);
- `TransferOp`: the receiver half of the fund protocol, keyed by `to_id`;
- `DebitOp`: a cost event charged to a grant, keyed by `grant_id`, with the
  `spend.events` partition and offset it was read at.

Each op names its `cause`, from which the ids of its `grant_activity` rows are
derived, so a replayed op writes the same rows again.

>>> op = decode_op(encode_op(debit_value(
...     "e-1", "g-1", to_usd("0.05"), datetime(2026, 11, 1, tzinfo=UTC),
...     source=(3, 41), reservation_id="r-1")))
>>> op.key, op.cause, op.cost_usd, op.origin
('g-1', 'ev/e-1', Decimal('0.050000000'), Origin(source='events', partition=3, \
offset=41, command_id=None))
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, TypeAdapter, ValidationError

from models.codec import dumps, loads
from models.errors import InvalidRecord
from models.grant_replay import Origin
from models.money import to_usd
from models.records import GrantCommand
from models.transfers import Transfer
from models.validation import Name, Record, Usd, explain
from models.wallet import route_key

Offset = Annotated[int, Field(ge=0, strict=True)]


class CommandOp(Record):
    """A grant command on its way to the partition of `route_key`."""

    op: Literal["command"] = "command"
    command: GrantCommand
    source_partition: Offset
    source_offset: Offset

    @property
    def key(self) -> str:
        return route_key(self.command)

    @property
    def origin(self) -> Origin:
        cid = self.command.command_id
        return Origin("grants", self.source_partition, self.source_offset, cid)

    @property
    def cause(self) -> str:
        if self.command.command_id is not None:
            return f"cmd/{self.command.command_id}"
        return f"cmd/{self.source_partition}/{self.source_offset}"


class TransferOp(Record):
    """A transfer of the fund protocol, for the partition of its receiver."""

    op: Literal["transfer"] = "transfer"
    transfer: Transfer

    @property
    def key(self) -> str:
        return self.transfer.to_id

    @property
    def cause(self) -> str:
        return f"tr/{self.transfer.from_id}/{self.transfer.seq}"


class DebitOp(Record):
    """One cost event's charge to its grant, for the grant's partition."""

    op: Literal["debit"] = "debit"
    grant_id: Name
    event_id: Name
    ts: AwareDatetime
    cost_usd: Usd
    reservation_id: Name | None = None
    reservation_final: bool = False
    source_partition: Offset | None = None
    source_offset: Offset | None = None

    @property
    def key(self) -> str:
        return self.grant_id

    @property
    def origin(self) -> Origin | None:
        if self.source_partition is None or self.source_offset is None:
            return None
        return Origin("events", self.source_partition, self.source_offset)

    @property
    def cause(self) -> str:
        return f"ev/{self.event_id}"


GrantOp = CommandOp | TransferOp | DebitOp

_OPS: TypeAdapter[GrantOp] = TypeAdapter(Annotated[GrantOp, Field(discriminator="op")])


def decode_op(raw: bytes) -> GrantOp:
    """Parse one grant-ops value; `InvalidRecord` with the reason if it is not one."""
    try:
        return _OPS.validate_python(loads(raw))
    except ValidationError as exc:
        raise InvalidRecord(f"invalid grant op: {explain(exc)}") from None


def encode_op(op: GrantOp | dict[str, Any]) -> bytes:
    """The Kafka value of an op (or of an op already written as a dict)."""
    return dumps(op if isinstance(op, dict) else op.to_json_dict())


def debit_value(
    event_id: str,
    grant_id: str,
    cost_usd: Decimal,
    ts: datetime,
    *,
    source: tuple[int, int] | None = None,
    reservation_id: str | None = None,
    final: bool = False,
) -> dict[str, Any]:
    """A `DebitOp` as a dict, built without validation: the events path's form.

    `source` is the event's partition and offset on `spend.events`.
    """
    value: dict[str, Any] = {
        "op": "debit",
        "grant_id": grant_id,
        "event_id": event_id,
        "ts": ts.astimezone(UTC).isoformat(),
        "cost_usd": to_usd(cost_usd),
    }
    if source is not None:
        value["source_partition"], value["source_offset"] = source
    if reservation_id is not None:
        value["reservation_id"] = reservation_id
    if final:
        value["reservation_final"] = True
    return value
