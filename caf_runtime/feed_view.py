"""A compacted feed read whole into this process's memory (a GlobalKTable): every replica
reads every partition from the earliest offset, without a consumer group, and keeps reading.

It answers "has this view applied every feed record published before time T?" from its own
positions (`wait_until_applied`, the `FeedWait` of the handlers): a check reads the topic's end
offsets, and the view is caught up for every message published before the check began once its
positions reach them. So "a registry update takes effect for grants that arrive after it" holds
as with the consumer group's view in the table (`feed_barrier.py`), without a table read per
grant and without asking the broker for the group's offsets.

The first catch-up (a process that starts reads the whole topic) may take longer than a
grant's usual wait: until then a grant waits up to `restore_wait_s`, after it up to `wait_s`.
What a record means is the owner's business (`apply`): it verifies, decodes and keeps it or
skips it; a record it skips is dead-lettered by the consumer group that copies the feed to the
table, not here (every replica reads every record: a dead letter per replica would be one too
many).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from caf_runtime.feed_barrier import CatchUpWait
from caf_runtime.offsets import topic_partitions

log = logging.getLogger(__name__)

Apply = Callable[[ConsumerRecord[bytes, bytes]], Awaitable[None]]
_POLL_MS = 200  # how long a poll waits for records when the feed is quiet
_POLL_RECORDS = 2000


class FeedView(CatchUpWait):
    """Reads `topic` whole and keeps reading, handing each record to `apply` in offset order
    per partition; `async with` starts and stops it."""

    def __init__(
        self,
        client_options: dict[str, Any],
        topic: str,
        apply: Apply,
        *,
        wait_s: float,
        restore_wait_s: float,
    ) -> None:
        super().__init__(topic, wait_s)
        self._options = client_options
        self.topic = topic
        self._apply = apply
        self._restore_wait_s = restore_wait_s
        self._consumer: AIOKafkaConsumer | None = None
        # end offsets through a connection of their own: on the reader's, a ListOffsets answer
        # waits behind the long-poll fetch in flight (Kafka answers a connection in order)
        self._ends: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int] = {}
        self._advanced = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> FeedView:
        self._consumer = AIOKafkaConsumer(
            **self._options,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await self._consumer.start()
        self._ends = AIOKafkaConsumer(**self._options, group_id=None, enable_auto_commit=False)
        await self._ends.start()
        admin = AIOKafkaAdminClient(**self._options)
        await admin.start()
        try:
            self._partitions = await topic_partitions(admin, self.topic)
        finally:
            await admin.close()
        if self._partitions:
            self._consumer.assign(self._partitions)
            await self._consumer.seek_to_beginning(*self._partitions)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._consumer is not None:
            await self._consumer.stop()
        if self._ends is not None:
            await self._ends.stop()

    def _opened(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            msg = "the feed view is used before it was opened"
            raise RuntimeError(msg)
        return self._consumer

    async def _read(self) -> None:
        consumer = self._opened()
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=_POLL_MS, max_records=_POLL_RECORDS)
            except (KafkaError, OSError):
                log.warning("feed view: a poll failed; polling again", extra={"topic": self.topic})
                await asyncio.sleep(1)
                continue
            applied = [await self._apply_all(p, records) for p, records in batch.items()]
            if not all(applied):
                await asyncio.sleep(1)  # then read the failed record again
                continue
            for partition in self._partitions:
                # past transaction markers and compacted gaps: where the next fetch starts
                self._positions[partition] = max(
                    self._positions.get(partition, 0), await consumer.position(partition)
                )
            self._advanced.set()
            self._advanced = asyncio.Event()

    async def _apply_all(
        self, partition: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> bool:
        """Apply `records` in order; on a failure of the owner (not a record it skips: one it
        could not read, e.g. its keys unreachable), seek back to that record and say so: the
        view never moves past a record it has not applied."""
        for record in records:
            try:
                await self._apply(record)
            except Exception:
                log.exception(
                    "feed view: a record could not be applied; reading it again",
                    extra={
                        "topic": self.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                    },
                )
                self._opened().seek(partition, record.offset)
                return False
            self._positions[partition] = record.offset + 1
        return True

    def _current_wait_s(self) -> float:
        return self._wait_s if self.restored else self._restore_wait_s

    async def _caught_up(self) -> bool:
        """The view's positions reach the end offsets read now (within a few polls; else
        not yet, and the caller reads the ends again)."""
        if self._ends is None:
            msg = "the feed view is used before it was opened"
            raise RuntimeError(msg)
        ends = await self._ends.end_offsets(self._partitions) if self._partitions else {}
        waited = time.monotonic()
        while not all(self._positions.get(tp, 0) >= end for tp, end in ends.items()):
            advanced = self._advanced
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(advanced.wait(), timeout=_POLL_MS / 1000 * 2)
            if time.monotonic() - waited > (_POLL_MS / 1000) * 10:
                return False
        return True
