"""The guard on a real broker: in-place retries, the retry topic, the dead-letter topic, and
waiting out an outage instead of dead-lettering healthy traffic."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import KafkaTimeoutError

from caf_runtime.broker import client_options
from caf_runtime.config import ServiceSettings
from caf_runtime.envelope import KeyRing, Sealer
from caf_runtime.guard import RetryPolicy
from tests.integration.conftest import guarded, until, with_guard_topics

pytestmark = pytest.mark.integration

SOURCE, RETRY, DLQ = "guard.source.v1", "guard.retry.v1", "guard.dlq.v1"
FAST = RetryPolicy(attempts=2, base_delay_s=0.05, rounds_s=(0.5, 0.5), outage_poll_s=0.1)


@dataclass
class Scripted:
    """Work that fails with the next scripted error for each message, then succeeds."""

    failures: dict[bytes, list[Exception]]
    handled: list[ConsumerRecord[bytes, bytes]] = field(default_factory=list)
    calls: int = 0

    async def __call__(self, record: ConsumerRecord[bytes, bytes]) -> None:
        self.calls += 1
        script = self.failures.get(record.value or b"", [])
        if script:
            raise script.pop(0)
        self.handled.append(record)


@dataclass
class Rig:
    settings: ServiceSettings
    publish: Callable[[bytes], Awaitable[None]]
    read: Callable[[str, int], Awaitable[list[ConsumerRecord[bytes, bytes]]]]


@pytest.fixture
async def rig(settings: ServiceSettings) -> AsyncIterator[Callable[..., Awaitable[Rig]]]:
    settings = await with_guard_topics(settings, SOURCE, RETRY, DLQ, prefix="guard-")
    brokers = []

    async def start(
        work: Scripted, dependencies: Callable[[], Awaitable[bool]], sealer: Sealer | None = None
    ) -> Rig:
        broker, guard, group = guarded(
            settings,
            work,
            SOURCE,
            RETRY,
            DLQ,
            name="guard",
            dependencies=dependencies,
            policy=FAST,
            sealer=sealer,
        )
        guard.subscribe_retries(f"{group}-redelivery")
        await broker.start()
        brokers.append(broker)

        async def publish(value: bytes) -> None:
            await broker.publish(
                value, topic=settings.topic(SOURCE), key=b"k", headers={"caf-signature": "sig"}
            )

        return Rig(settings, publish, lambda topic, n: _read(settings, topic, n))

    yield start
    for broker in brokers:
        await broker.stop()


async def _read(
    settings: ServiceSettings, topic: str, count: int
) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        settings.topic(topic),
        **client_options(settings),
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (20 if count else 1.5)
        while (len(records) < count or not count) and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            records.extend(r for batch in batches.values() for r in batch)
    finally:
        await consumer.stop()
    return records


def headers(record: ConsumerRecord[bytes, bytes]) -> dict[str, str]:
    return {k: v.decode() for k, v in record.headers or ()}


async def answering() -> bool:
    return True


async def test_a_transient_failure_is_retried_in_place_and_handled(rig: Any) -> None:
    work = Scripted({b"m": [KafkaTimeoutError()]})
    r: Rig = await rig(work, answering)
    await r.publish(b"m")
    await until(lambda: work.handled)
    assert work.calls == 2
    assert await r.read(RETRY, 0) == []


async def test_a_message_still_failing_goes_through_the_retry_topic_and_then_succeeds(
    rig: Any,
) -> None:
    work = Scripted({b"m": [TimeoutError("slow"), TimeoutError("slow"), TimeoutError("slow")]})
    r: Rig = await rig(work, answering)
    await r.publish(b"m")
    await until(lambda: work.handled)
    (retried,) = await r.read(RETRY, 1)
    assert headers(retried)["retry-round"] == "1"
    assert headers(retried)["original-topic"] == r.settings.topic(SOURCE)
    (handled,) = work.handled
    assert handled.topic == r.settings.topic(SOURCE), "the work sees the original coordinates"
    assert handled.offset == 0
    assert await r.read(DLQ, 0) == []


async def test_a_message_failing_every_round_is_dead_lettered_with_the_error_headers(
    rig: Any,
) -> None:
    work = Scripted({b"m": [TimeoutError("slow")] * 10})
    r: Rig = await rig(work, answering)
    await r.publish(b"next")  # offset 0 is handled; the failing one is offset 1
    await r.publish(b"m")
    (letter,) = await r.read(DLQ, 1)
    found = headers(letter)
    assert letter.value == b"m"
    assert found["error-class"] == "TimeoutError"
    assert found["original-topic"] == r.settings.topic(SOURCE)
    assert found["original-partition"] == "0"
    assert found["original-offset"] == "1"
    assert found["attempt-count"] == "6", "2 in place per round, 3 rounds"
    assert found["first-failed-at"] <= found["failed-at"]
    assert [rec.value for rec in work.handled] == [b"next"]


async def test_a_permanent_error_skips_the_retries_and_does_not_block_the_partition(
    rig: Any,
) -> None:
    work = Scripted({b"poison": [KeyError("a bug")]})
    r: Rig = await rig(work, answering)
    await r.publish(b"poison")
    await r.publish(b"after")
    await until(lambda: work.handled)
    (letter,) = await r.read(DLQ, 1)
    assert headers(letter)["attempt-count"] == "1"
    assert headers(letter)["error-class"] == "KeyError"
    assert [rec.value for rec in work.handled] == [b"after"]
    assert await r.read(RETRY, 0) == []


async def test_during_an_outage_the_message_waits_instead_of_being_dead_lettered(
    rig: Any,
) -> None:
    outage = {"up": False}

    async def dependencies() -> bool:
        return outage["up"]

    work = Scripted({b"m": [ConnectionError("dynamodb down")] * 3})
    r: Rig = await rig(work, dependencies)
    await r.publish(b"m")
    await until(lambda: work.calls >= 2)
    await asyncio.sleep(0.5)
    assert work.calls == 2, "no attempt while the dependencies do not answer"
    assert not work.handled
    outage["up"] = True
    await until(lambda: work.handled)
    assert await r.read(RETRY, 0) == []
    assert await r.read(DLQ, 0) == []
    assert work.calls == 4, "a fresh set of attempts after the outage"


async def test_sealed_retry_copies_carry_no_plaintext_yet_the_work_sees_the_original(
    rig: Any,
) -> None:
    sealer = Sealer(KeyRing({"k1": secrets.token_bytes(32)}, "k1"))
    secret_payload = b'{"taxpayer": {"tin": "123-45-6789", "name": "Pat Q. Public"}}'
    work = Scripted({secret_payload: [TimeoutError("123-45-6789 was slow")] * 3})
    r: Rig = await rig(work, answering, sealer)
    await r.publish(secret_payload)
    await until(lambda: work.handled)
    (retried,) = await r.read(RETRY, 1)
    (handled,) = work.handled
    assert handled.value == secret_payload
    assert handled.key == b"k"
    assert headers(handled)["caf-signature"] == "sig", "the original headers come back"
    assert retried.key is None
    for text in (retried.value or b"", json.dumps(headers(retried)).encode()):
        assert b"6789" not in text
        assert b"Public" not in text
        assert b'sig"' not in text
    assert headers(retried)["error-message"] == "[number removed] was slow"
    assert sealer.open(retried.value or b"").value == secret_payload


async def test_with_a_sealer_a_dead_letter_opens_to_the_original_and_its_error_headers(
    rig: Any,
) -> None:
    sealer = Sealer(KeyRing({"k1": secrets.token_bytes(32)}, "k1"))
    work = Scripted({b"tin 123456789": [KeyError("123456789")]})
    r: Rig = await rig(work, answering, sealer)
    await r.publish(b"tin 123456789")
    (letter,) = await r.read(DLQ, 1)
    assert b"123456789" not in (letter.value or b"")
    assert "123456789" not in json.dumps(headers(letter))
    assert headers(letter)["encryption-kid"] == "k1"
    original = sealer.open(letter.value or b"")
    assert (original.key, original.value) == ("k", b"tin 123456789")
    assert original.headers["caf-signature"] == "sig"
    assert not {"error-class", "original-topic"} & set(original.headers), "errors stay outside"
