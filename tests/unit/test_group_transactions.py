"""A merged transaction's cancellation is split per caller by its items' reasons."""

from __future__ import annotations

import asyncio
from typing import Any

from botocore.exceptions import ClientError

from caf_runtime.group_transactions import GroupTransactions, item_key
from caf_runtime.guard import is_transient


def _put(pk: str) -> Any:
    return {"Put": {"TableName": "t", "Item": {"pk": {"S": pk}, "sk": {"S": "MARK"}}}}


class _Cancelling:
    """A DynamoDB client whose merged transactions are cancelled with the given per-item
    codes, and whose transactions of one caller pass (unit-level: the split, not DynamoDB)."""

    def __init__(self, codes: list[str]) -> None:
        self.codes = codes
        self.calls: list[int] = []

    async def transact_write_items(self, **kwargs: Any) -> Any:
        items = kwargs["TransactItems"]
        self.calls.append(len(items))
        if len(items) == len(self.codes):
            response: Any = {
                "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                "CancellationReasons": [{"Code": code} for code in self.codes],
            }
            raise ClientError(response, "TransactWriteItems")
        return {}


async def test_a_conflict_on_one_callers_item_is_retried_by_that_caller_and_the_others_go_on() -> (
    None
):
    client = _Cancelling(["None", "TransactionConflict", "None"])
    group = GroupTransactions(client)  # type: ignore[arg-type]
    first = asyncio.ensure_future(group.transact([_put("FIRST")]))
    await asyncio.sleep(0)
    results = await asyncio.gather(
        group.transact([_put("A")]),
        group.transact([_put("B")]),
        group.transact([_put("C")]),
        return_exceptions=True,
    )

    assert await first is None
    assert results[0] is None
    assert results[2] is None
    conflict = results[1]
    assert isinstance(conflict, Exception)
    assert is_transient(conflict)  # the guard retries it
    assert client.calls == [1, 3, 2]  # the innocent two went again together


async def test_merged_calls_that_fail_for_no_item_send_each_caller_again_alone() -> None:
    client = _Cancelling(["None", "None", "None"])  # cancelled, yet no item says why
    group = GroupTransactions(client)  # type: ignore[arg-type]
    first = asyncio.ensure_future(group.transact([_put("FIRST")]))
    await asyncio.sleep(0)
    results = await asyncio.gather(*(group.transact([_put(pk)]) for pk in "ABC"))

    assert await first is None
    assert results == [None, None, None]
    assert client.calls == [1, 3, 1, 1, 1]


def test_an_items_key_is_its_table_and_primary_key_whatever_the_operation() -> None:
    key = {"pk": {"S": "TP#r"}, "sk": {"S": "VERSION"}}
    assert item_key({"Update": {"TableName": "caf", "Key": key}}) == ("caf", "TP#r", "VERSION")  # type: ignore[typeddict-item]
    assert item_key({"Put": {"TableName": "caf", "Item": key}}) == ("caf", "TP#r", "VERSION")
