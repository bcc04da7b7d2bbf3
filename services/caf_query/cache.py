"""Taxpayers' views in memory for the check, invalidated by the outcome stream itself.

The check is the hot path; the table is the truth. `ViewCache` keeps, per taxpayer_ref, the views
last read from the table, for `KEPT_FOR` seconds at most, and `StreamReader` (every replica's own
reader of `caf.events.v1`, all partitions, no consumer group) drops a taxpayer's entry when an
event of their story passes. A read is kept only when it is known to hold every such event the
reader has seen:

- the reader starts where the projector's group has committed, so it sees every event the table
  may not hold yet; a read in flight when it (re)starts is answered but not kept;
- a read that an event of the same taxpayer overtook (seen while the read was in flight) is
  answered but not kept;
- a read is kept only if, for every grant with an event the reader saw and no kept read has shown
  applied, the view read holds that event (the projector may apply an event late, after a retry:
  until it does, every check reads the table);
- nothing is served from memory while the reader is more than `CURRENT_WITHIN` behind the log on
  any partition (or has had no answer from one for that long), or while it remembers more pending
  events than it can hold: the check then reads the table, as without the cache.

So an answer from memory reflects what the table held at most `KEPT_FOR` seconds ago and every
event of that taxpayer the reader has seen since, and the reader is at most about
`CURRENT_WITHIN` behind the log. The one bound that rests on time alone: an event the projector
has still not applied `HORIZON` seconds after the reader saw it is forgotten, and a read without
it may then be answered for `KEPT_FOR` seconds.
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
HORIZON = 300.0  # seconds an unconfirmed event's position is remembered
KEPT_FOR = 30.0  # seconds a view is answered from memory after it was read from the table
PARTITIONS_CHECKED_EVERY = 60.0  # seconds: a topic given more partitions restarts the reader


class PartitionsChangedError(RuntimeError):
    """The outcome stream's partition count changed: the reader starts again to read them all."""


@dataclass
class _Reading:
    """A table read in flight for one taxpayer."""

    overtaken: bool = False


@dataclass(frozen=True)
class _Pending:
    """Events of one taxpayer the reader saw and no kept read has shown applied yet: per
    grant, the newest position."""

    since: float
    grants: dict[str, Position]


class ViewCache:
    """Views by taxpayer_ref, each for `KEPT_FOR` at most, least recently used dropped first
    beyond `capacity`."""

    def __init__(
        self, capacity: int, remembered: int, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = capacity
        self._remembered = remembered
        self._monotonic = monotonic
        self._views: OrderedDict[str, tuple[float, tuple[GrantView, ...]]] = OrderedDict()
        self._seen: OrderedDict[str, _Pending] = OrderedDict()
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
        kept = self._views.get(ref) if self.serving else None
        if kept is None or kept[0] < self._monotonic() - KEPT_FOR:
            LOOKUPS.labels("table").inc()
            return None
        self._views.move_to_end(ref)
        LOOKUPS.labels("memory").inc()
        return list(kept[1])

    def seen(self, ref: str, grant_id: str, at: Position) -> None:
        """An event of `ref`'s story, about `grant_id`, passed at `at`."""
        self._views.pop(ref, None)
        for reading in self._reading.get(ref, ()):
            reading.overtaken = True
        now = self._monotonic()
        pending = self._seen.pop(ref, None)
        grants = dict(pending.grants) if pending else {}
        grants[grant_id] = at
        self._seen[ref] = _Pending(now, grants)
        while self._seen and next(iter(self._seen.values())).since < now - HORIZON:
            self._seen.popitem(last=False)

    def restarted(self) -> None:
        """The reader (re)started from the projector's committed offsets: a read in flight may
        predate events it will never see, so none of them is kept."""
        for readings in self._reading.values():
            for reading in readings:
                reading.overtaken = True

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
        pending = self._seen.get(ref)
        if pending is not None:
            applied = {view.grant_id: view.position for view in views}
            for grant_id, at in pending.grants.items():
                held = applied.get(grant_id)
                if held is None or held.partition != at.partition or held.offset < at.offset:
                    return  # the projector has not applied (yet, or after a retry) what passed
            del self._seen[ref]  # every event seen is in the table, which never goes back
        self._views[ref] = (self._monotonic(), tuple(views))
        self._views.move_to_end(ref)
        while len(self._views) > self.capacity:
            self._views.popitem(last=False)

    def stop(self) -> None:
        """The reader stopped: forget every view and answer nothing from memory until it is
        current again (what passes while it is down, it may never see)."""
        self._current_until = float("-inf")
        self._views.clear()
        self.restarted()


class StreamReader:
    """Reads every partition of `caf.events.v1`, from the projector's committed offsets on,
    telling `cache` what passes."""

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
                checked = time.monotonic()
                while True:
                    await self._poll(consumer, assigned)
                    if time.monotonic() - checked > PARTITIONS_CHECKED_EVERY:
                        checked = time.monotonic()
                        known = consumer.partitions_for_topic(assigned[0].topic) or set()
                        if len(known) != len(assigned):
                            msg = f"{len(assigned)} partitions read, {len(known)} now"
                            raise PartitionsChangedError(msg)
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
                    try:
                        await consumer.stop()
                    except Exception:  # noqa: BLE001 - a consumer that cannot close is dropped
                        log.warning("the outcome-stream reader's consumer did not close cleanly")

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
        if not assigned:
            msg = f"{topic} has no partitions (yet)"
            raise PartitionsChangedError(msg)
        self._cache.restarted()  # reads begun before these offsets were taken are not kept
        consumer = AIOKafkaConsumer(
            **client_options(self._settings),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="caf-query-cache",
        )
        await consumer.start()
        try:
            consumer.assign(assigned)
            for partition in assigned:
                meta = committed.get(partition)
                if meta is not None and meta.offset >= 0:
                    consumer.seek(partition, meta.offset)
                else:
                    await consumer.seek_to_beginning(partition)
        except BaseException:
            await consumer.stop()
            raise
        return consumer, assigned

    async def _poll(self, consumer: AIOKafkaConsumer, assigned: list[TopicPartition]) -> None:
        batches = await consumer.getmany(timeout_ms=200, max_records=2000)
        for records in batches.values():
            for record in records:
                self._read(record.partition, record.offset, record.value)
        now_ms = time.time() * 1000  # aiokafka stamps fetch responses with wall-clock time
        for partition in assigned:
            highwater = consumer.highwater(partition)  # None until a fetch of it answered
            answered = consumer.last_poll_timestamp(partition)
            if (
                highwater is None
                or answered is None
                or now_ms - answered > CURRENT_WITHIN * 1000  # a leader it cannot reach
                or await consumer.position(partition) < highwater
            ):
                return
        self._cache.current()

    def _read(self, partition: int, offset: int, value: bytes | None) -> None:
        try:
            event = json.loads(value or b"")
        except ValueError:
            return  # not an event: the projector dead-letters it
        if not isinstance(event, dict) or event.get("type") not in STORY:
            return
        ref, grant_id = event.get("taxpayer_ref"), event.get("grant_id")
        if isinstance(ref, str) and isinstance(grant_id, str):
            self._cache.seen(ref, grant_id, Position(partition, offset))
