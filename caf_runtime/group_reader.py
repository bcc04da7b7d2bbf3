"""Group reads: concurrent handlers' strongly consistent GetItems share one BatchGetItem call.

The first read of an idle table goes out at once; the reads that arrive while it is in flight
go together in the next call, up to the 100 keys BatchGetItem takes (a key asked twice is asked
once). Every read is strongly consistent, as the GetItem it replaces was. Each caller gets its
own item (or None) once it has been read; keys DynamoDB leaves unprocessed (throttling) are
asked again with backoff, and an error is handed to every caller of the call.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

from caf_runtime.group_writer import UNPROCESSED_ATTEMPTS, UnprocessedItemsError

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

MAX_KEYS = 100  # BatchGetItem's limit

Key = tuple[str, str]
Item = dict[str, Any]


class GroupReader:
    """Consistent reads of one table, batched while a previous batch is in flight."""

    def __init__(self, client: DynamoDBClient, table: str, *, backoff_s: float = 0.05) -> None:
        self._client = client
        self._table = table
        self._backoff_s = backoff_s
        self._waiting: dict[Key, list[asyncio.Future[Item | None]]] = {}
        self._flusher: asyncio.Task[None] | None = None

    async def get(self, pk: str, sk: str) -> Item | None:
        """The item at (`pk`, `sk`), read strongly consistent; None if there is none."""
        done: asyncio.Future[Item | None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieve)
        self._waiting.setdefault((pk, sk), []).append(done)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await asyncio.shield(done)

    async def _flush(self) -> None:
        while self._waiting:
            keys = list(self._waiting)[:MAX_KEYS]
            batch = {key: self._waiting.pop(key) for key in keys}
            try:
                found = await self._read(keys)
            except Exception as error:  # noqa: BLE001 - handed to every caller of the batch
                for futures in batch.values():
                    _settle(futures, error)
            except BaseException:  # cancelled (shutdown): no caller may wait forever
                for futures in [*batch.values(), *self._waiting.values()]:
                    for future in futures:
                        future.cancel()
                self._waiting.clear()
                raise
            else:
                for key, futures in batch.items():
                    _settle(futures, found.get(key))

    async def _read(self, keys: list[Key]) -> dict[Key, Item]:
        found: dict[Key, Item] = {}
        request: list[Any] = [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in keys]
        for attempt in range(UNPROCESSED_ATTEMPTS):
            response = await self._client.batch_get_item(
                RequestItems={self._table: {"Keys": request, "ConsistentRead": True}}
            )
            for item in response.get("Responses", {}).get(self._table, []):
                found[(str(item["pk"].get("S")), str(item["sk"].get("S")))] = dict(item)
            unprocessed = response.get("UnprocessedKeys", {}).get(self._table)
            request = list(unprocessed["Keys"]) if unprocessed else []
            if not request:
                return found
            await asyncio.sleep(self._backoff_s * 2**attempt * random.uniform(0.5, 1.0))  # noqa: S311
        msg = f"{len(request)} keys of a read of {self._table} left unprocessed"
        raise UnprocessedItemsError(msg)


def _settle(futures: list[asyncio.Future[Item | None]], outcome: Item | Exception | None) -> None:
    for future in futures:
        if future.done():
            continue
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(dict(outcome) if outcome is not None else None)  # one copy each


def _retrieve(future: asyncio.Future[Item | None]) -> None:
    if not future.cancelled():
        future.exception()
