"""Group commit of unconditional puts: concurrent handlers share one BatchWriteItem call.

Marks that need no condition (a ledger record turned `published`, a grant's `ENDED` flag) are
written by every handler at the end of its message. Written one by one they cost a request each;
here the first put of an idle writer goes out at once (no added latency when the service is
quiet) and the puts that arrive while it is in flight go together in the next call, up to the 25
items BatchWriteItem takes. Each caller returns only once its own item is stored, so the offset
is still committed after the mark, as before.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from caf_runtime.dynamo import DynamoTable

MAX_BATCH = 25  # BatchWriteItem's limit
UNPROCESSED_ATTEMPTS = 8


class UnprocessedItemsError(Exception):
    """DynamoDB kept refusing part of a batch (throttling): a transient failure."""


class GroupWriter:
    """Puts to one table, batched while a previous batch is in flight."""

    def __init__(self, table: DynamoTable, *, backoff_s: float = 0.05) -> None:
        self._table = table
        self._backoff_s = backoff_s
        self._waiting: dict[tuple[str, str], tuple[dict[str, Any], list[asyncio.Future[None]]]] = {}
        self._flusher: asyncio.Task[None] | None = None

    async def put(self, item: dict[str, Any]) -> None:
        """Store `item` (whole-item replace, no condition); returns once it is stored."""
        key = (item["pk"]["S"], item["sk"]["S"])
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieve)  # a caller cancelled meanwhile leaves no warning
        _, futures = self._waiting.get(key, (item, []))
        self._waiting[key] = (item, [*futures, done])  # the same key twice: the later item wins
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await asyncio.shield(done)

    async def _flush(self) -> None:
        while self._waiting:
            keys = list(self._waiting)[:MAX_BATCH]
            batch = [self._waiting.pop(key) for key in keys]
            futures = [future for _, waiting in batch for future in waiting]
            try:
                await self._write([item for item, _ in batch])
            except Exception as error:  # noqa: BLE001 - handed to every caller of the batch
                _settle(futures, error)
            except BaseException:  # cancelled (shutdown): no caller may wait forever
                waiting = [future for _, rest in self._waiting.values() for future in rest]
                self._waiting.clear()
                for future in [*futures, *waiting]:
                    future.cancel()
                raise
            else:
                _settle(futures, None)

    async def _write(self, items: list[dict[str, Any]]) -> None:
        requests: list[Any] = [{"PutRequest": {"Item": item}} for item in items]
        for attempt in range(UNPROCESSED_ATTEMPTS):
            response = await self._table.client.batch_write_item(
                RequestItems={self._table.name: requests}
            )
            requests = list(response.get("UnprocessedItems", {}).get(self._table.name, []))
            if not requests:
                return
            await asyncio.sleep(self._backoff_s * 2**attempt * random.uniform(0.5, 1.0))  # noqa: S311
        msg = f"{len(requests)} items of a batch to {self._table.name} left unprocessed"
        raise UnprocessedItemsError(msg)


def _settle(futures: list[asyncio.Future[None]], error: Exception | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
