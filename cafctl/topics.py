"""Topics, for operator tools. `read_topic`: every record from the start to the end offsets
as they were when the read began (records published meanwhile are left for the next run);
`follow`: every record as it arrives; `publish`: records of cafctl's own, each acknowledged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient

from caf_runtime.broker import producer_options
from caf_runtime.config import ServiceSettings
from caf_runtime.offsets import topic_partitions

CONTENT_TYPE = ("content-type", b"application/json")


@dataclass(frozen=True)
class Outgoing:
    """One record to publish: its key, its JSON value, and headers besides the content type
    (a signature's)."""

    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]] = ()


async def publish(
    settings: ServiceSettings,
    topic: str,
    records: Sequence[Outgoing],
    advance: Callable[[], None] | None = None,
) -> None:
    """Send `records` in order to the contract topic `topic` of the deployment `settings` names,
    each acknowledged before the next; `advance` is called once per record sent."""
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(
                settings.topic(topic),
                record.value,
                key=record.key,
                headers=[CONTENT_TYPE, *record.headers],
            )
            if advance is not None:
                advance()
    finally:
        await producer.stop()


async def read_topic(
    client_options: dict[str, Any], topic: str
) -> list[ConsumerRecord[bytes, bytes]]:
    admin = AIOKafkaAdminClient(**client_options)
    await admin.start()
    try:
        partitions = await topic_partitions(admin, topic)
    finally:
        await admin.close()
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **client_options)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, batch in batches.items():
                records.extend(r for r in batch if r.offset < ends[tp])
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return records
    finally:
        await consumer.stop()


async def follow(
    client_options: dict[str, Any],
    topic: str,
    handle: Callable[[ConsumerRecord[bytes, bytes]], None],
) -> None:
    """Hand every record of `topic`, from the beginning and then as it arrives, to `handle`,
    until cancelled (no consumer group: nothing is committed)."""
    consumer = AIOKafkaConsumer(
        topic,
        **client_options,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for batch in batches.values():
                for record in batch:
                    handle(record)
    finally:
        await consumer.stop()
