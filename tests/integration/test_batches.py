"""The guard taking a poll at a time (CAF_BATCH_MAX_RECORDS) on a real broker: each key in
order, the keys concurrently, a failing record with its own outcome, one commit a poll."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from caf_runtime.broker import client_options
from caf_runtime.config import ServiceSettings
from caf_runtime.guard import RetryPolicy
from tests.integration.conftest import guarded, with_guard_topics

pytestmark = pytest.mark.integration

SOURCE, RETRY, DLQ = "batch.source.v1", "batch.retry.v1", "batch.dlq.v1"
PARTITIONS = 4
FAST = RetryPolicy(attempts=1, base_delay_s=0.01, rounds_s=(0.2,), outage_poll_s=0.1)


@dataclass
class Recording:
    """Work that records what it handled and how many records were in flight at once."""

    poison: bytes = b""
    handled: list[ConsumerRecord[bytes, bytes]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0

    async def __call__(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if record.value == self.poison:
            raise KeyError("a bug")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.005)  # I/O: the other partitions run meanwhile
        finally:
            self.in_flight -= 1
        self.handled.append(record)


@dataclass
class Run:
    settings: ServiceSettings
    group: str
    work: Recording


@pytest.fixture
async def batched(settings: ServiceSettings) -> ServiceSettings:
    return await with_guard_topics(
        settings, SOURCE, RETRY, DLQ, prefix="batch-", partitions=PARTITIONS, batch_max_records=100
    )


async def _publish(settings: ServiceSettings, values: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    try:
        sends = [
            await producer.send(settings.topic(SOURCE), value, key=key) for key, value in values
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def _consume(settings: ServiceSettings, work: Recording, until_handled: int) -> Run:
    broker, _, group = guarded(
        settings, work, SOURCE, RETRY, DLQ, name="batch", dependencies=_answering, policy=FAST
    )
    await broker.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while len(work.handled) < until_handled:
            assert loop.time() < deadline, f"handled {len(work.handled)} of {until_handled}"
            await asyncio.sleep(0.05)
    finally:
        await broker.stop()  # drains: the last poll finishes and commits
    return Run(settings, group, work)


async def _answering() -> bool:
    return True


async def _committed(settings: ServiceSettings, group: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=group)
    await consumer.start()
    try:
        topic = settings.topic(SOURCE)
        return {
            p: await consumer.committed(TopicPartition(topic, p)) or 0 for p in range(PARTITIONS)
        }
    finally:
        await consumer.stop()


async def _dead_letters(settings: ServiceSettings) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        settings.topic(DLQ), **client_options(settings), auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=3000)
        return [r for batch in batches.values() for r in batch]
    finally:
        await consumer.stop()


async def test_a_poll_runs_each_key_in_order_and_the_keys_concurrently(
    batched: ServiceSettings,
) -> None:
    keys = [f"taxpayer-{n}".encode() for n in range(16)]
    values = [(keys[n % len(keys)], f"{n:04d}".encode()) for n in range(400)]
    await _publish(batched, values)
    run = await _consume(batched, Recording(), len(values))
    for key in keys:
        sent = [r.value for r in run.work.handled if r.key == key]
        assert sent == sorted(sent), f"{key!r} out of order"
        assert len(sent) == len(values) // len(keys), "every record once, none skipped"
    for partition in range(PARTITIONS):
        offsets = sorted(r.offset for r in run.work.handled if r.partition == partition)
        assert offsets == list(range(len(offsets))), "every offset handled once"
    assert run.work.most_in_flight > PARTITIONS, "keys of one partition run concurrently"
    committed = await _committed(batched, run.group)
    handled = {p: sum(r.partition == p for r in run.work.handled) for p in range(PARTITIONS)}
    assert committed == handled, "offsets committed once every record of the poll is done"


async def test_a_poison_record_in_a_poll_is_dead_lettered_and_its_partition_goes_on(
    batched: ServiceSettings,
) -> None:
    values = [(b"one-taxpayer", f"{n:03d}".encode()) for n in range(50)]
    await _publish(batched, values)
    run = await _consume(batched, Recording(poison=b"017"), len(values) - 1)
    assert [r.value for r in run.work.handled] == [v for _, v in values if v != b"017"]
    (letter,) = await _dead_letters(batched)
    assert letter.value == b"017"
    assert dict(letter.headers)["error-class"] == b"KeyError"
    committed = await _committed(batched, run.group)
    assert sum(committed.values()) == len(values), "the poison record's offset is committed too"
