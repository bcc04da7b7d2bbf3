"""Group commit: a writer stopped mid-batch leaves no caller waiting (the batching itself is
tested against DynamoDB Local in tests/integration/test_dynamodb_store.py)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from caf_runtime.dynamo import DynamoTable
from caf_runtime.group_writer import MAX_BATCH, GroupWriter


class _StalledClient:
    def __init__(self) -> None:
        self.called = asyncio.Event()

    async def batch_write_item(self, **_: Any) -> dict[str, Any]:
        self.called.set()
        await asyncio.Event().wait()  # never answers
        return {}


class _Table:
    name = "marks"

    def __init__(self) -> None:
        self.client = _StalledClient()


async def test_a_writer_cancelled_mid_batch_cancels_that_batch_and_every_put_still_waiting() -> (
    None
):
    table = _Table()
    writer = GroupWriter(cast("DynamoTable", table))
    puts = [
        asyncio.create_task(writer.put({"pk": {"S": f"K{n}"}, "sk": {"S": "MARK"}}))
        for n in range(MAX_BATCH + 5)  # one batch in flight, five waiting for the next
    ]
    await table.client.called.wait()

    flusher = writer._flusher
    assert flusher is not None
    flusher.cancel()

    results = await asyncio.wait_for(asyncio.gather(*puts, return_exceptions=True), timeout=2)
    assert all(isinstance(result, asyncio.CancelledError) for result in results)
    with pytest.raises(asyncio.CancelledError):
        await flusher
