"""The lag exporter against real Kafka and DynamoDB, as its own principal: it becomes ready after
its first refresh and serves the lag it read, refreshing through the clients it keeps open."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from caf_runtime.broker import client_options
from caf_runtime.config import ServiceSettings
from cafctl.lag_exporter import LagExporter, health_server
from schemas import topics
from tests.conftest import Infrastructure

pytestmark = pytest.mark.integration


def _samples(page: str, metric: str, group: str, topic: str) -> dict[str, float]:
    """A metric's value by partition, for one group and topic."""
    pattern = rf'^{metric}\{{group="{group}",partition="(\d+)",topic="{re.escape(topic)}"\}} (\S+)$'
    return {p: float(v) for p, v in re.findall(pattern, page, re.MULTILINE)}


def _refreshed_at(page: str) -> float:
    found = re.search(r"^caf_lag_exporter_last_refresh_timestamp_seconds (\S+)$", page, re.M)
    assert found, page
    return float(found.group(1))


async def test_the_exporter_serves_the_lag_it_refreshes_in_the_background(
    infra: Infrastructure, settings: ServiceSettings
) -> None:
    await infra.prepare(settings)
    producer = AIOKafkaProducer(**client_options(settings))
    await producer.start()
    try:
        for n in range(3):
            await producer.send_and_wait(
                settings.topic(topics.GRANTS_VALIDATED), b"{}", key=f"k{n}".encode()
            )
    finally:
        await producer.stop()
    own = infra.settings(
        "lag-exporter",
        CAF_TOPIC_PREFIX=settings.topic_prefix,
        CAF_TABLE_PREFIX=settings.table_prefix,
    )
    exporter = LagExporter(own, client_options(own))
    server = health_server(exporter, port=0)
    await server.start()
    base = f"http://127.0.0.1:{server.port}"
    running: asyncio.Task[None] | None = None
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 503, "not ready before a refresh"
            running = asyncio.create_task(exporter.run(every_s=0.5))
            for _ in range(120):
                async with http.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        assert await response.json() == {
                            "status": "ready",
                            "checks": {"refreshed": True},
                        }
                        break
                await asyncio.sleep(0.25)
            else:
                pytest.fail("the exporter never became ready")
            async with http.get(f"{base}/metrics") as response:
                first = await response.text()
            for _ in range(40):  # a later refresh, through the same clients
                await asyncio.sleep(0.25)
                async with http.get(f"{base}/metrics") as response:
                    later = await response.text()
                if _refreshed_at(later) > _refreshed_at(first):
                    break
            else:
                pytest.fail("no second refresh")
        lag = _samples(later, "caf_consumer_lag_messages", "caf-poster", topics.GRANTS_VALIDATED)
        assert len(lag) == 12
        assert sum(lag.values()) == 3
        ages = _samples(later, "caf_consumer_lag_seconds", "caf-poster", topics.GRANTS_VALIDATED)
        assert all(ages[p] > 0 for p, behind in lag.items() if behind)
        assert "caf_grant_waiting_oldest_seconds 0.0" in later
        # (on a broker just started, a first refresh may fail: its group coordinator is not
        # there yet; the next one succeeds)
    finally:
        if running is not None:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        await server.stop()
        await exporter.close()
