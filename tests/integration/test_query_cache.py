"""The check's memory on real Kafka (issue 17): the stream reader drops what an event changes, and
starts where the projector's group committed, so it cannot miss an event the table lacks."""

from __future__ import annotations

import json

import pytest
from aiokafka import AIOKafkaProducer

from caf_runtime.broker import client_options
from caf_runtime.config import ServiceSettings
from schemas import topics
from services.caf_query.cache import StreamReader, ViewCache
from tests.conftest import Infrastructure, unique
from tests.integration.conftest import until
from tests.unit.test_query_cache import view

pytestmark = pytest.mark.integration


async def publish(settings: ServiceSettings, ref: str) -> None:
    """A story event of `ref` on the outcome stream."""
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    try:
        value = {"type": "AuthorizationRevoked", "taxpayer_ref": ref, "grant_id": f"{ref}:0"}
        await producer.send_and_wait(
            settings.topic(topics.EVENTS), json.dumps(value).encode(), key=ref.encode()
        )
    finally:
        await producer.stop()


async def test_an_event_published_after_a_read_drops_it_from_memory(
    infra: Infrastructure, settings: ServiceSettings
) -> None:
    await infra.prepare(settings)
    cache = ViewCache(capacity=100, remembered=100)
    async with StreamReader(settings, unique("query-"), cache):
        await until(lambda: cache.serving, limit_s=15.0)
        with cache.reading("ref-a") as keep:
            keep([view("ref-a", 0)])
        assert cache.get("ref-a") is not None
        await publish(settings, "ref-a")
        await until(lambda: cache.get("ref-a") is None, limit_s=15.0)


async def test_an_event_from_before_the_reader_started_still_keeps_a_stale_read_out(
    infra: Infrastructure, settings: ServiceSettings
) -> None:
    """Published before the reader starts and not yet applied by the projector (its group has
    committed nothing): the reader reads it, so a table read without it is not kept."""
    await infra.prepare(settings)
    await publish(settings, "ref-b")
    cache = ViewCache(capacity=100, remembered=100)
    async with StreamReader(settings, unique("query-"), cache):
        await until(lambda: cache.serving, limit_s=15.0)
        with cache.reading("ref-b") as keep:
            keep([view("ref-b", -1)])  # what a table without the event would say
        assert cache.get("ref-b") is None
