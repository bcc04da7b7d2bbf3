"""The broker factory's safe defaults, proven on a real Kafka broker."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from faststream.kafka import KafkaBroker, KafkaMessage

from caf_runtime.broker import AUTO_OFFSET_RESET, make_broker
from caf_runtime.config import ServiceSettings
from tests.conftest import unique
from tests.integration.conftest import until

pytestmark = pytest.mark.integration

CreateTopic = Callable[..., Awaitable[str]]


def consuming_broker(
    settings: ServiceSettings,
    topic: str,
    group_id: str,
    seen: list[str],
    fail_once: set[str] | None = None,
) -> KafkaBroker:
    broker = make_broker(settings, client_id=unique("test-"))
    failures = set(fail_once or ())

    @broker.subscriber(topic, group_id=group_id, auto_offset_reset=AUTO_OFFSET_RESET)
    async def on_message(message: KafkaMessage) -> None:
        body = message.body.decode()
        seen.append(body)
        if body in failures:
            failures.discard(body)
            raise RuntimeError("transient failure while handling")

    return broker


async def publish(settings: ServiceSettings, topic: str, bodies: list[str]) -> None:
    async with make_broker(settings, client_id=unique("producer-")) as producer:
        for body in bodies:
            await producer.publish(body.encode(), topic=topic, key=b"same-key")


async def test_a_restarted_consumer_resumes_after_its_last_commit(
    settings: ServiceSettings, create_topic: CreateTopic
) -> None:
    topic = await create_topic(partitions=1)
    group = unique("group-")
    first = [f"m{i}" for i in range(5)]
    await publish(settings, topic, first)

    seen: list[str] = []
    async with consuming_broker(settings, topic, group, seen) as broker:
        await broker.start()
        await until(lambda: len(seen) == len(first))

    second = [f"n{i}" for i in range(3)]
    await publish(settings, topic, second)
    resumed: list[str] = []
    async with consuming_broker(settings, topic, group, resumed) as broker:
        await broker.start()
        await until(lambda: len(resumed) == len(second))
        await asyncio.sleep(1.0)  # room for a wrongly redelivered message to show up

    assert seen == first
    assert resumed == second


async def test_a_new_consumer_group_starts_from_the_earliest_offset(
    settings: ServiceSettings, create_topic: CreateTopic
) -> None:
    topic = await create_topic(partitions=1)
    await publish(settings, topic, ["before-the-group-existed"])
    seen: list[str] = []
    async with consuming_broker(settings, topic, unique("group-"), seen) as broker:
        await broker.start()
        await until(lambda: len(seen) == 1)
    assert seen == ["before-the-group-existed"]


async def test_a_message_whose_handler_fails_is_redelivered_not_committed(
    settings: ServiceSettings, create_topic: CreateTopic
) -> None:
    topic = await create_topic(partitions=1)
    await publish(settings, topic, ["a", "b", "c"])
    seen: list[str] = []
    async with consuming_broker(settings, topic, unique("group-"), seen, {"b"}) as broker:
        await broker.start()
        await until(lambda: seen.count("c") == 1)
    assert seen == ["a", "b", "b", "c"]
