"""The lag exporter refreshes in the background through clients it keeps open, and a scrape
shows the last values it read (here with fake Kafka and DynamoDB clients)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import aiohttp
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import generate_latest

from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable
from cafctl.lag_exporter import LagClients, LagExporter, health_server
from schemas import topics
from services.validator.store import PostingDeadline

pytestmark = pytest.mark.unit

POSTER_TOPIC = topics.GRANTS_VALIDATED
WRITTEN_AGO_S = 30.0


class _Kafka:
    """The grants topic with two partitions: 5 records in each, `caf-poster` has committed 2
    in partition 0 and all of partition 1. Every other topic does not exist."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0
        self.closed = 0

    def _call(self) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("broker unreachable")

    async def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        self._call()
        if names != [POSTER_TOPIC]:
            return [{"error_code": 3, "partitions": []}]
        return [{"error_code": 0, "partitions": [{"partition": 1}, {"partition": 0}]}]

    async def list_consumer_group_offsets(
        self, group: str, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        self._call()
        if group != "caf-poster":
            return {}
        return {
            TopicPartition(POSTER_TOPIC, 0): OffsetAndMetadata(2, ""),
            TopicPartition(POSTER_TOPIC, 1): OffsetAndMetadata(5, ""),
        }

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        self._call()
        return dict.fromkeys(partitions, 5)

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = partitions

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.position = (partition, offset)

    async def getmany(
        self, partition: TopicPartition, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[Any]]:
        self._call()
        written_ms = (time.time() - WRITTEN_AGO_S) * 1000
        return {partition: [SimpleNamespace(timestamp=written_ms)]}

    def unsubscribe(self) -> None:
        self.assigned = []

    async def close(self) -> None:
        self.closed += 1


class _Paginator:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    async def paginate(self, **query: Any) -> AsyncIterator[dict[str, Any]]:
        shard_zero = query["ExpressionAttributeValues"][":pk"]["S"] == "TIMER#0"
        yield {"Items": self.items if shard_zero else []}


class _Validator:
    """The validator's table, holding one posting deadline of a grant ready 2 hours ago."""

    name = "validator"

    def __init__(self) -> None:
        deadline = PostingDeadline(
            grant_id="m1:0",
            message_id="m1",
            taxpayer_ref="a" * 32,
            tin_last4="6789",
            form="2848",
            caf_number="030112345",
            ready_at=datetime.now(UTC) - timedelta(hours=2),
            hours=24,
        )
        timer = {"kind": deadline.kind, "payload": deadline.model_dump(mode="json")}
        self.client = SimpleNamespace(
            get_paginator=lambda _: _Paginator([{"timer": {"S": json.dumps(timer)}}]),
            batch_get_item=self._batch_get_item,
        )

    async def _batch_get_item(self, **_: Any) -> dict[str, Any]:
        return {"Responses": {self.name: []}}


class _Connections:
    """Counts the clients opened; every refresh reads the same fake broker."""

    def __init__(self) -> None:
        self.kafka = _Kafka()
        self.opened = 0

    async def __call__(self, stack: AsyncExitStack) -> LagClients:
        self.opened += 1
        stack.push_async_callback(self.kafka.close)
        validator = cast("DynamoTable", _Validator())
        return LagClients(self.kafka, self.kafka, validator)


def _value(page: str, metric: str, **labels: str) -> float | None:
    shown = ",".join(f'{name}="{value}"' for name, value in sorted(labels.items()))
    found = re.search(rf"^{metric}{{{re.escape(shown)}}} (\S+)$", page, re.MULTILINE)
    if found is None and not labels:
        found = re.search(rf"^{metric} (\S+)$", page, re.MULTILINE)
    return float(found.group(1)) if found else None


def _page(exporter: LagExporter) -> str:
    return generate_latest(exporter.registry).decode()


def _exporter() -> tuple[LagExporter, _Connections]:
    connections = _Connections()
    return LagExporter(ServiceSettings(), {}, connect=connections), connections


async def test_a_refresh_shows_each_partitions_lag_in_messages_and_seconds() -> None:
    exporter, _ = _exporter()
    before = time.time()
    await exporter.refresh()
    page = _page(exporter)
    lag = {"group": "caf-poster", "topic": POSTER_TOPIC}
    assert _value(page, "caf_consumer_lag_messages", **lag, partition="0") == 3
    assert _value(page, "caf_consumer_lag_messages", **lag, partition="1") == 0
    age = _value(page, "caf_consumer_lag_seconds", **lag, partition="0")
    assert age is not None
    assert WRITTEN_AGO_S - 5 < age < WRITTEN_AGO_S + 5
    assert _value(page, "caf_consumer_lag_seconds", **lag, partition="1") == 0
    assert _value(page, "caf_grants_waiting_to_post", age="1h_to_24h") == 1
    assert _value(page, "caf_grants_waiting_to_post", age="under_1h") == 0
    refreshed_at = _value(page, "caf_lag_exporter_last_refresh_timestamp_seconds")
    assert refreshed_at is not None
    assert refreshed_at >= before


async def test_refreshes_keep_their_clients_open_until_the_exporter_closes() -> None:
    exporter, connections = _exporter()
    await exporter.refresh()
    await exporter.refresh()
    assert (connections.opened, connections.kafka.closed) == (1, 0)
    await exporter.close()
    assert connections.kafka.closed == 1


async def test_a_failed_refresh_keeps_the_last_values_counts_and_opens_new_clients() -> None:
    exporter, connections = _exporter()
    await exporter.refresh()
    good = _page(exporter)
    connections.kafka.down = True
    running = asyncio.create_task(exporter.run(every_s=0.01))
    try:
        for _ in range(200):
            if (_value(_page(exporter), "caf_lag_exporter_refresh_failures_total") or 0) >= 2:
                break
            await asyncio.sleep(0.01)
        page = _page(exporter)
        assert (_value(page, "caf_lag_exporter_refresh_failures_total") or 0) >= 2
        refreshed_at = "caf_lag_exporter_last_refresh_timestamp_seconds"
        assert _value(page, refreshed_at) == _value(good, refreshed_at)
        lag = {"group": "caf-poster", "topic": POSTER_TOPIC, "partition": "0"}
        assert _value(page, "caf_consumer_lag_messages", **lag) == 3
        assert connections.opened >= 2, "the clients of a failed refresh are not used again"
        assert await exporter.ready(), "once ready, a failed refresh does not unready it"
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await exporter.close()


async def test_it_is_ready_after_its_first_refresh_and_a_scrape_asks_kafka_nothing() -> None:
    exporter, connections = _exporter()
    server = health_server(exporter, port=0)
    await server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 503
                assert await response.json() == {
                    "status": "not ready",
                    "checks": {"refreshed": False},
                }
            async with http.get(f"{base}/healthz") as response:
                assert (response.status, await response.json()) == (200, {"status": "alive"})
            await exporter.refresh()
            calls = connections.kafka.calls
            async with http.get(f"{base}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                page = await response.text()
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 200
        assert connections.kafka.calls == calls
        lag = {"group": "caf-poster", "topic": POSTER_TOPIC, "partition": "0"}
        assert _value(page, "caf_consumer_lag_messages", **lag) == 3
        assert "python_gc_objects_collected_total" not in page, "only the exporter's registry"
    finally:
        await server.stop()
        await exporter.close()


async def test_until_its_first_success_a_failed_refresh_is_tried_again_within_a_second() -> None:
    """A broker just started may not answer group look-ups yet: readiness does not wait for
    the next refresh, 15 seconds (here 60) later."""
    exporter, connections = _exporter()
    connections.kafka.down = True
    running = asyncio.create_task(exporter.run(every_s=60))
    try:
        await asyncio.sleep(0.1)
        assert _value(_page(exporter), "caf_lag_exporter_refresh_failures_total") == 1
        connections.kafka.down = False
        for _ in range(30):
            if await exporter.ready():
                break
            await asyncio.sleep(0.1)
        assert await exporter.ready()
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await exporter.close()
