"""Taxpayers' views in memory for the check, invalidated by the outcome stream itself.

The check is the hot path; the table is the truth. `ViewCache` keeps, per taxpayer_ref, the views
last read from the table, and `StreamReader` (every replica's own reader of `caf.events.v1`, all
partitions, no consumer group) drops a taxpayer's entry when an event of their
story passes. An entry is kept only when it is known to reflect every such event the reader has
seen:

- a read that an event of the same taxpayer overtook (the event seen while the read was in
  flight) is answered but not kept;
- a read whose views do not yet hold the newest event the reader saw for that taxpayer (the
  projector has not applied it yet) is answered but not kept;
- the reader starts where the projector's group has committed, so it sees every event the
  table may not hold yet;
- nothing is served from memory while the reader is more than `CURRENT_WITHIN` behind the log
  (or has not polled for that long), or while it remembers more recent events than it can hold:
  the check then reads the table, as without the cache.

So an answer from memory is never older than one the table would have given when the reader was
last current, and at most about `CURRENT_WITHIN` behind the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import Counter

from caf_runtime.broker import client_options
from caf_runtime.config import ServiceSettings
from caf_runtime.offsets import topic_partitions
from schemas import topics
from services.caf_query.views import STORY, GrantView, Position

log = logging.getLogger(__name__)
LOOKUPS = Counter(
    "caf_query_taxpayer_lookups_total",
    "Taxpayer look-ups of the API, by where they were answered from (memory or table).",
    ["source"],
)

CURRENT_WITHIN = 1.0  # seconds: the reader's longest distance from the log for serving memory
HORIZON = 300.0  # seconds an event's position is remembered (longer than any sane projector lag)


@dataclass
class _Reading:
    """A table read in flight for one taxpayer."""

    overtaken: bool = False


class ViewCache:
    """Views by taxpayer_ref, least recently used dropped first beyond `capacity`."""

    def __init__(
        self, capacity: int, remembered: int, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = capacity
        self._remembered = remembered
        self._monotonic = monotonic
        self._views: OrderedDict[str, tuple[GrantView, ...]] = OrderedDict()
        self._seen: OrderedDict[str, tuple[float, Position]] = OrderedDict()
        self._reading: dict[str, list[_Reading]] = {}
        self._current_until = float("-inf")

    @property
    def serving(self) -> bool:
        return (
            self.capacity > 0
            and self._monotonic() < self._current_until
            and len(self._seen) <= self._remembered
        )

    def current(self) -> None:
        """The reader is within `CURRENT_WITHIN` of the log now."""
        self._current_until = self._monotonic() + CURRENT_WITHIN

    def get(self, ref: str) -> list[GrantView] | None:
        views = self._views.get(ref) if self.serving else None
        if views is None:
            LOOKUPS.labels("table").inc()
            return None
        self._views.move_to_end(ref)
        LOOKUPS.labels("memory").inc()
        return list(views)

    def seen(self, ref: str, at: Position) -> None:
        """An event of `ref`'s story passed at `at`."""
        self._views.pop(ref, None)
        for reading in self._reading.get(ref, ()):
            reading.overtaken = True
        now = self._monotonic()
        self._seen.pop(ref, None)
        self._seen[ref] = (now, at)
        while self._seen and next(iter(self._seen.values()))[0] < now - HORIZON:
            self._seen.popitem(last=False)

    @contextlib.contextmanager
    def reading(self, ref: str) -> Iterator[Callable[[list[GrantView]], None]]:
        """Around a table read of `ref`: call what it gives with the views read, to keep them
        if they may be kept."""
        reading = _Reading()
        self._reading.setdefault(ref, []).append(reading)
        try:
            yield functools.partial(self._keep, ref, reading)
        finally:
            readings = self._reading[ref]
            readings.remove(reading)
            if not readings:
                del self._reading[ref]

    def _keep(self, ref: str, reading: _Reading, views: list[GrantView]) -> None:
        if not self.serving or reading.overtaken:
            return
        newest = self._seen.get(ref)
        if newest is not None and not any(
            view.position.partition == newest[1].partition
            and view.position.offset >= newest[1].offset
            for view in views
        ):
            return  # the projector has not applied what the reader saw
        self._views[ref] = tuple(views)
        self._views.move_to_end(ref)
        while len(self._views) > self.capacity:
            self._views.popitem(last=False)

    def stop(self) -> None:
        """The reader stopped: forget every view and answer nothing from memory until it is
        current again (what passes while it is down, it may never see)."""
        self._current_until = float("-inf")
        self._views.clear()


class StreamReader:
    """Reads every partition of `caf.events.v1` from the end, telling `cache` what passes."""

    def __init__(self, settings: ServiceSettings, group_id: str, cache: ViewCache) -> None:
        self._settings = settings
        self._group_id = group_id  # the projector's
        self._cache = cache
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> StreamReader:
        if self._cache.capacity > 0:
            self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        """Read until cancelled; after any failure (the group coordinator of a new cluster not
        there yet, a broker gone), stop serving from memory and start again a second later."""
        while True:
            consumer: AIOKafkaConsumer | None = None
            try:
                consumer, assigned = await self._start()
                while True:
                    await self._poll(consumer, assigned)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - any failure: the table answers meanwhile
                log.warning(
                    "the outcome-stream reader stopped (%s); the check reads the table",
                    type(error).__name__,
                )
                self._cache.stop()
                await asyncio.sleep(1.0)
            finally:
                if consumer is not None:
                    await consumer.stop()

    async def _start(self) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
        """Every partition assigned, each from where the projector's group has committed (what
        it may not have applied yet is read again, so no entry can miss it)."""
        topic = self._settings.topic(topics.EVENTS)
        admin = AIOKafkaAdminClient(**client_options(self._settings))
        await admin.start()
        try:
            assigned = await topic_partitions(admin, topic)
            committed = await admin.list_consumer_group_offsets(self._group_id, partitions=assigned)
        finally:
            await admin.close()
        consumer = AIOKafkaConsumer(
            **client_options(self._settings),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="caf-query-cache",
        )
        await consumer.start()
        consumer.assign(assigned)
        for partition in assigned:
            meta = committed.get(partition)
            if meta is not None and meta.offset >= 0:
                consumer.seek(partition, meta.offset)
            else:
                await consumer.seek_to_beginning(partition)
        return consumer, assigned

    async def _poll(self, consumer: AIOKafkaConsumer, assigned: list[TopicPartition]) -> None:
        batches = await consumer.getmany(timeout_ms=200, max_records=2000)
        for records in batches.values():
            for record in records:
                self._read(record.partition, record.offset, record.value)
        for partition in assigned:
            highwater = consumer.highwater(partition)  # None until a fetch of it answered
            if highwater is None or await consumer.position(partition) < highwater:
                return
        self._cache.current()

    def _read(self, partition: int, offset: int, value: bytes | None) -> None:
        try:
            event = json.loads(value or b"")
        except ValueError:
            return  # not an event: the projector dead-letters it
        if not isinstance(event, dict) or event.get("type") not in STORY:
            return
        ref = event.get("taxpayer_ref")
        if isinstance(ref, str):
            self._cache.seen(ref, Position(partition, offset))
