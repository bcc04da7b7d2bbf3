"""The idempotent-consumer record: what a message's handling decided, stored with its effect.

A handler records its outputs in the same transaction as its state change (state `pending`) and
publishes them. On redelivery, or when the same message comes again, it publishes the recorded
outputs again, unchanged (the same ids: every consumer downstream recognises them).

A ledger that marks published records (`marks_published`: intake's, where IN-02 drops a message
id seen before with no second record of its outcome, and the monitor's, where MN-07 sends a
statement run's pages once) turns a record `published` once its outputs are acknowledged, and a
record in that state means "already done". On the grants' path (validator, poster) the mark
would cost a write per message (the most expensive kind of write DynamoDB Local does,
BENCHMARKS.md) to save a republication that happens only after a crash, a retry round or a
replay, and that the next service absorbs by the same ids.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from caf_runtime.clock import Clock, SystemClock
from caf_runtime.dynamo import DynamoTable
from caf_runtime.envelope import Sealer
from caf_runtime.group_writer import GroupWriter
from caf_runtime.outputs import Output, Publish, dump_outputs, load_outputs

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.type_defs import TransactWriteItemTypeDef

State = Literal["pending", "published"]
MARK = "MARK"


@dataclass(frozen=True)
class Recorded:
    """A handled message: its state and the outputs its handling produced."""

    state: State
    outputs: list[Output]


class OutputLedger(Protocol):
    """What `handle_once` needs of a ledger (a service's store exposes one; test fakes too)."""

    async def recorded(self, key: str) -> Recorded | None: ...

    async def mark_published(self, key: str, outputs: list[Output]) -> None: ...


class Ledger:
    """Markers `<prefix><key>` / `MARK` in a service's own table.

    With a `retention`, records carry `expires_at` (DynamoDB TTL) that far after they are
    written. "Published" marks of concurrent handlers are written together (group commit),
    through `writer` when the store has other marks to batch with them; only with
    `marks_published` (see the module's docstring). With a `sealer`, the outputs of a record
    that holds a secret output are stored sealed (and only then).
    """

    def __init__(
        self,
        table: DynamoTable,
        prefix: str,
        *,
        retention: timedelta | None = None,
        clock: Clock | None = None,
        writer: GroupWriter | None = None,
        sealer: Sealer | None = None,
        marks_published: bool = False,
    ) -> None:
        self._table = table
        self._marks_published = marks_published
        self._sealer = sealer
        self._prefix = prefix
        self._retention = retention
        self._clock = clock or SystemClock()
        self._marks = writer or GroupWriter(table)  # shared with the store's other marks

    def _key(self, key: str) -> dict[str, Any]:
        return {"pk": {"S": f"{self._prefix}{key}"}, "sk": {"S": MARK}}

    async def recorded(self, key: str) -> Recorded | None:
        item = await self._table.get(f"{self._prefix}{key}", MARK)
        if not item:
            return None
        state: State = "published" if item["state"].get("S") == "published" else "pending"
        text = str(item["outputs"].get("S"))
        if item.get("sealed", {}).get("BOOL"):
            text = (self._sealer_or_refuse().open(text.encode()).value or b"").decode()
        return Recorded(state, load_outputs(text))

    def put(self, key: str, outputs: list[Output]) -> TransactWriteItemTypeDef:
        """The transaction item that records `outputs` unless `key` is already recorded."""
        return {
            "Put": {
                "TableName": self._table.name,
                "Item": self._item(key, "pending", outputs),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    async def mark_published(self, key: str, outputs: list[Output]) -> None:
        """The record of `key`, whose `outputs` are published now (rewritten whole: the
        outputs are the recorded ones, so only the state changes); nothing without
        `marks_published`."""
        if not self._marks_published:
            return
        await self._marks.put(self._item(key, "published", outputs))

    def _item(self, key: str, state: State, outputs: list[Output]) -> dict[str, Any]:
        text = dump_outputs(outputs)
        item: dict[str, Any] = {**self._key(key), "state": {"S": state}, "outputs": {"S": text}}
        if any(output.secret for output in outputs):
            sealed = self._sealer_or_refuse().seal(None, text.encode(), {})
            item |= {"outputs": {"S": sealed.decode()}, "sealed": {"BOOL": True}}
        if self._retention is not None:
            expires_at = self._clock.now() + self._retention
            item["expires_at"] = {"N": str(int(expires_at.timestamp()))}
        return item

    def _sealer_or_refuse(self) -> Sealer:
        if self._sealer is None:
            msg = "a secret output is recorded only sealed, and this ledger has no sealer"
            raise RuntimeError(msg)
        return self._sealer


async def transact(table: DynamoTable, items: list[TransactWriteItemTypeDef]) -> list[str] | None:
    """Write `items` in one transaction (group-committed with concurrent ones,
    `caf_runtime.group_transactions`). None on success; on a failed condition, the cancellation
    code of each item (`ConditionalCheckFailed` or `None`). Other errors raise."""
    return await table.transact(items)


async def handle_once(
    ledger: OutputLedger,
    key: str,
    decide_and_record: Callable[[], Awaitable[list[Output] | None]],
    publish: Publish,
    *,
    decide_first: bool = False,
) -> bool:
    """Handle the message `key` exactly once in effect.

    Marked published: nothing to do (returns False). Recorded (a redelivery, or the same
    message again where the ledger does not mark): publish the recorded outputs unchanged.
    Otherwise `decide_and_record` decides from fresh state and records atomically, returning
    the outputs, or None when its write failed a condition (the message was recorded meanwhile,
    or another write won a race: then everything is read again). Publishing completes before
    the record is marked published (where the ledger marks), and both before the offset is
    committed.

    `decide_first` skips the read of the record before deciding, for handlers whose decision
    has no effect outside its recording transaction: a new message (the common case) costs one
    read less, a redelivered one a decision that its failed write throws away.
    """
    recorded = None if decide_first else await ledger.recorded(key)
    while True:
        if recorded is not None:
            if recorded.state == "published":
                return False
            outputs = recorded.outputs
            break
        decided = await decide_and_record()
        if decided is not None:
            outputs = decided
            break
        recorded = await ledger.recorded(key)
    await publish(outputs)
    await ledger.mark_published(key, outputs)
    return True
