"""Feed catch-up: a message is judged only after a compacted feed's view holds every feed record
published before it (so "a registry update takes effect for grants that arrive after it"). The
validator waits on the practitioner registry, intake on the entity records (DO-01).

The view is caught up when the feed's consumer group's committed offsets reach the topic's end
offsets; its handler commits only after the record is stored, and the group may be spread over
several replicas, so the check reads the group's offsets rather than local state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from caf_runtime.offsets import topic_partitions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    """One reading of the feed group's offsets: caught up or not, begun when."""

    caught_up: bool
    began_ms: int


class FeedWait(Protocol):
    """What a handler needs of a feed's view: to wait until it applied the feed up to a time."""

    async def wait_until_applied(self, published_before_ms: int) -> bool: ...


class CatchUpWait:
    """The waiting half of a feed's view, shared by the table-backed barrier (below) and the
    in-memory view (`feed_view.py`): concurrent messages share one check at a time, a check
    that began before a message was published does not count for it, and the wait is bounded.
    A subclass says how to check (`_caught_up`)."""

    def __init__(self, topic: str, wait_s: float) -> None:
        self._topic = topic
        self._wait_s = wait_s
        self._caught_up_at_ms = 0
        self._check: asyncio.Task[Check] | None = None
        self.restored = False  # caught up with the feed at least once

    def _current_wait_s(self) -> float:
        return self._wait_s

    async def _caught_up(self) -> bool:
        raise NotImplementedError

    async def wait_until_applied(self, published_before_ms: int) -> bool:
        """True once the view holds every record published before the given time; False if it
        did not catch up within the configured wait (the message is then judged on the view as
        it is)."""
        if published_before_ms <= self._caught_up_at_ms:
            return True
        deadline = time.monotonic() + self._current_wait_s()
        while True:
            check = await self._shared_check()
            if check.caught_up and published_before_ms <= check.began_ms:
                return True
            if not check.caught_up and time.monotonic() > deadline:
                log.warning(
                    "feed view behind the feed; judging on the view as it is",
                    extra={"topic": self._topic},
                )
                return False
            if not check.caught_up:
                await asyncio.sleep(0.05)

    async def _shared_check(self) -> Check:
        if self._check is None or self._check.done():
            self._check = asyncio.create_task(self._timed_check())
        return await asyncio.shield(self._check)

    async def _timed_check(self) -> Check:
        began_ms = int(time.time() * 1000)
        caught_up = await self._caught_up()
        if caught_up:
            self._caught_up_at_ms = max(self._caught_up_at_ms, began_ms)
            self.restored = True
        return Check(caught_up, began_ms)


class FeedBarrier(CatchUpWait):
    """Waits (bounded) until a feed's view in the table has applied the feed up to now: the
    feed's consumer group's committed offsets reach the topic's end offsets."""

    def __init__(
        self, client_options: dict[str, Any], topic: str, group_id: str, wait_s: float
    ) -> None:
        super().__init__(topic, wait_s)
        self._options = client_options
        self._group_id = group_id
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []

    async def __aenter__(self) -> FeedBarrier:
        self._admin = AIOKafkaAdminClient(**self._options)
        self._consumer = AIOKafkaConsumer(**self._options)
        await self._admin.start()
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()

    async def _caught_up(self) -> bool:
        if self._admin is None or self._consumer is None:
            msg = "the feed barrier is used before it was opened"
            raise RuntimeError(msg)
        if not self._partitions:
            self._partitions = await topic_partitions(self._admin, self._topic)
        ends = await self._consumer.end_offsets(self._partitions)
        committed = await self._admin.list_consumer_group_offsets(
            self._group_id, partitions=self._partitions
        )
        return bool(self._partitions) and all(
            ends[tp] == 0 or (tp in committed and committed[tp].offset >= ends[tp])
            for tp in self._partitions
        )
