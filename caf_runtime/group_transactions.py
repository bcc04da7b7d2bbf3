"""Group commit of transactions: concurrent handlers share one TransactWriteItems call.

Every decision is written in one transaction (its state change with its recorded outputs). When
a service handles many messages at once (a poll's partitions and keys run concurrently), each
of those transactions written alone costs a request, and a DynamoDB transaction is the most
expensive request there is. Here the first transaction of an idle table goes out at once (no
added latency when the service is quiet) and those that arrive while it is in flight go
together in the next call, up to the 100 items a transaction takes, never two operations on one
item in the same call.

A merged transaction is stronger than its parts (all or nothing across them), so each caller's
atomicity holds. When it is cancelled, DynamoDB says per item why (`CancellationReasons`):
- a caller with an item whose condition failed gets its own items' codes, as if it had written
  alone (`transact` returns them);
- a caller with an item cancelled for a transient reason (a conflict with another writer,
  throttling) gets a `TransactionCanceledException` carrying its own items' reasons, which the
  guard retries;
- a caller whose items all passed goes again, with the next group.
Any other failure of a merged call (validation, size) sends each of its callers again alone, so
every caller gets the outcome of its own items; a connection error is every caller's.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import TransactWriteItemTypeDef

MAX_ITEMS = 100  # TransactWriteItems' limit
CANCELLED = "TransactionCanceledException"

ItemKey = tuple[str, str, str]  # table, pk, sk


@dataclass(eq=False)
class _Pending:
    """One caller's transaction, waiting for its outcome."""

    items: list[TransactWriteItemTypeDef]
    keys: frozenset[ItemKey]
    done: asyncio.Future[list[str] | None]
    alone: bool = False  # send it by itself (a merged call failed for a reason not per item)
    reasons: list[dict[str, Any]] = field(default_factory=list)


class GroupTransactions:
    """Transactions to DynamoDB, merged while a previous call is in flight."""

    def __init__(self, client: DynamoDBClient) -> None:
        self._client = client
        self._waiting: deque[_Pending] = deque()
        self._flusher: asyncio.Task[None] | None = None

    async def transact(self, items: list[TransactWriteItemTypeDef]) -> list[str] | None:
        """Write `items` atomically. None on success; on a failed condition, the cancellation
        code of each of the items (`ConditionalCheckFailed` or `None`). Other errors raise."""
        if len(items) > MAX_ITEMS or not items:
            return await self._alone(items)  # DynamoDB's own error, unmerged
        done: asyncio.Future[list[str] | None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieve)
        self._waiting.append(_Pending(items, frozenset(map(item_key, items)), done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await asyncio.shield(done)

    async def _alone(self, items: list[TransactWriteItemTypeDef]) -> list[str] | None:
        try:
            await self._client.transact_write_items(TransactItems=items)
        except ClientError as error:
            reasons = error.response.get("CancellationReasons", [])
            codes = [str(reason.get("Code", "None")) for reason in reasons]
            if "ConditionalCheckFailed" in codes:
                return codes
            raise
        return None

    async def _flush(self) -> None:
        while self._waiting:
            group = self._next_group()
            try:
                await self._write(group)
            except BaseException:  # cancelled (shutdown): no caller may wait forever
                for pending in [*group, *self._waiting]:
                    pending.done.cancel()
                self._waiting.clear()
                raise

    def _next_group(self) -> list[_Pending]:
        """The waiting transactions, oldest first, that fit one call: at most `MAX_ITEMS` items
        and no item twice. One that does not fit waits for the next call, in its place."""
        group: list[_Pending] = []
        taken: set[ItemKey] = set()
        count = 0
        kept: deque[_Pending] = deque()
        while self._waiting:
            pending = self._waiting.popleft()
            fits = count + len(pending.items) <= MAX_ITEMS and not (pending.keys & taken)
            if group and (pending.alone or group[0].alone or not fits):
                kept.append(pending)
                continue
            group.append(pending)
            taken |= pending.keys
            count += len(pending.items)
        self._waiting.extendleft(reversed(kept))
        return group

    async def _write(self, group: list[_Pending]) -> None:
        if len(group) == 1:
            pending = group[0]
            try:
                _settle(pending, await self._alone(pending.items))
            except Exception as error:  # noqa: BLE001 - the caller's own outcome
                _settle(pending, error)
            return
        try:
            await self._client.transact_write_items(
                TransactItems=[item for pending in group for item in pending.items]
            )
        except ClientError as error:
            self._cancelled(group, error)
        except Exception as error:  # noqa: BLE001 - unreachable DynamoDB: every caller's
            for pending in group:
                _settle(pending, error)
        else:
            for pending in group:
                _settle(pending, None)

    def _cancelled(self, group: list[_Pending], error: ClientError) -> None:
        reasons: list[Any] = list(error.response.get("CancellationReasons", []))
        code = error.response.get("Error", {}).get("Code", "")
        if code != CANCELLED or len(reasons) != sum(len(p.items) for p in group):
            for pending in reversed(group):  # not per item: each caller again, alone
                pending.alone = True
                self._waiting.appendleft(pending)
            return
        again: list[_Pending] = []
        settled = False
        start = 0
        for pending in group:
            own = reasons[start : start + len(pending.items)]
            start += len(pending.items)
            codes = [str(reason.get("Code", "None")) for reason in own]
            if "ConditionalCheckFailed" in codes:
                _settle(pending, codes)
            elif any(c != "None" for c in codes):
                _settle(pending, _own_cancellation(error, own))
            else:
                again.append(pending)  # cancelled only for another caller's item
                continue
            settled = True
        for pending in reversed(again):
            pending.alone = not settled  # no item said why: each caller again, alone
            self._waiting.appendleft(pending)


def item_key(item: TransactWriteItemTypeDef) -> ItemKey:
    """The table and key an operation of a transaction writes or checks."""
    for operation in ("Put", "Update", "Delete", "ConditionCheck"):
        if operation in item:
            spec: Any = item[operation]
            key = spec.get("Key") or spec["Item"]
            return (spec["TableName"], _text(key.get("pk")), _text(key.get("sk")))
    msg = f"not a transaction item: {sorted(item)}"
    raise ValueError(msg)


def _text(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    return str(value.get("S", value.get("N", "")))


def _own_cancellation(error: ClientError, reasons: list[dict[str, Any]]) -> ClientError:
    """The merged call's cancellation as this caller alone would have seen it."""
    response: Any = {
        "Error": dict(error.response.get("Error", {})),
        "CancellationReasons": reasons,
        "ResponseMetadata": error.response.get("ResponseMetadata", {}),
    }
    return ClientError(response, error.operation_name)


def _settle(pending: _Pending, outcome: list[str] | Exception | None) -> None:
    if pending.done.done():
        return
    if isinstance(outcome, Exception):
        pending.done.set_exception(outcome)
    else:
        pending.done.set_result(outcome)


def _retrieve(future: asyncio.Future[list[str] | None]) -> None:
    if not future.cancelled():
        future.exception()
