"""A compacted feed read whole into memory (issue 16), on a real Kafka broker: every partition,
from the earliest offset, and "applied every record published before T" from its positions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord

from caf_runtime.broker import client_options
from caf_runtime.config import ServiceSettings
from caf_runtime.feed_view import FeedView

pytestmark = pytest.mark.integration

CreateTopic = Callable[..., Awaitable[str]]


def now_ms() -> int:
    return int(time.time() * 1000)


async def publish(settings: ServiceSettings, topic: str, records: list[tuple[str, str]]) -> None:
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value.encode(), key=key.encode())
    finally:
        await producer.stop()


async def test_a_view_holds_every_record_published_before_a_message_of_every_partition(
    settings: ServiceSettings, create_topic: CreateTopic
) -> None:
    topic = await create_topic(partitions=3)
    await publish(settings, topic, [(f"k{i}", f"v{i}") for i in range(30)])
    applied: dict[str, str] = {}

    async def apply(record: ConsumerRecord[bytes, bytes]) -> None:
        applied[(record.key or b"").decode()] = (record.value or b"").decode()

    async with FeedView(
        client_options(settings), topic, apply, wait_s=5, restore_wait_s=30
    ) as view:
        assert await view.wait_until_applied(now_ms())
        assert view.restored
        assert applied == {f"k{i}": f"v{i}" for i in range(30)}
        # a later record counts for a message published after it, on whichever partition
        await publish(settings, topic, [("k3", "changed"), ("k99", "new")])
        assert await view.wait_until_applied(now_ms())
        assert (applied["k3"], applied["k99"]) == ("changed", "new")


async def test_a_view_of_an_empty_feed_is_caught_up_at_once(
    settings: ServiceSettings, create_topic: CreateTopic
) -> None:
    topic = await create_topic(partitions=2)

    async def apply(record: ConsumerRecord[bytes, bytes]) -> None:
        raise AssertionError(record)

    async with FeedView(client_options(settings), topic, apply, wait_s=5, restore_wait_s=5) as view:
        started = time.monotonic()
        assert await view.wait_until_applied(now_ms())
        assert time.monotonic() - started < 3


async def test_a_view_that_cannot_catch_up_in_time_says_so_and_answers_later_ones(
    settings: ServiceSettings, create_topic: CreateTopic
) -> None:
    """A record whose handling is slow holds the view back: a message waits at most the
    configured time, then is judged on the view as it is (False)."""
    topic = await create_topic(partitions=1)
    await publish(settings, topic, [("slow", "1")])
    release = asyncio.Event()

    async def apply(record: ConsumerRecord[bytes, bytes]) -> None:
        await release.wait()

    async with FeedView(
        client_options(settings), topic, apply, wait_s=0.5, restore_wait_s=1
    ) as view:
        assert not await view.wait_until_applied(now_ms())
        assert not view.restored
        release.set()
        assert await view.wait_until_applied(now_ms())


async def test_a_quiet_caught_up_view_answers_a_new_message_without_waiting_for_a_poll(
    settings: ServiceSettings, create_topic: CreateTopic
) -> None:
    """The check's end offsets do not queue behind the reader's long-poll fetch (a lone grant
    waited up to half a second for it)."""
    topic = await create_topic(partitions=2)
    await publish(settings, topic, [("k", "v")])

    async def apply(record: ConsumerRecord[bytes, bytes]) -> None:
        return None

    async with FeedView(client_options(settings), topic, apply, wait_s=5, restore_wait_s=5) as view:
        assert await view.wait_until_applied(now_ms())
        slowest = 0.0
        for _ in range(5):
            await asyncio.sleep(0.3)  # the reader is in a fetch that waits for records
            started = time.monotonic()
            assert await view.wait_until_applied(now_ms())
            slowest = max(slowest, time.monotonic() - started)
        assert slowest < 0.15


async def test_a_record_its_owner_could_not_apply_is_read_again_not_skipped(
    settings: ServiceSettings, create_topic: CreateTopic
) -> None:
    """A failure of the owner (not a record it chose to skip) holds the view at that record and
    reads it again: the view never says it holds a record it has not applied."""
    topic = await create_topic(partitions=1)
    await publish(settings, topic, [("a", "1"), ("b", "2"), ("c", "3")])
    applied: list[str] = []
    failures = {"b": 2}

    async def apply(record: ConsumerRecord[bytes, bytes]) -> None:
        key = (record.key or b"").decode()
        if failures.get(key):
            failures[key] -= 1
            raise ConnectionError("the keys could not be fetched")
        applied.append(key)

    async with FeedView(
        client_options(settings), topic, apply, wait_s=10, restore_wait_s=10
    ) as view:
        assert await view.wait_until_applied(now_ms())
        assert applied == ["a", "b", "c"]
