"""`python -m cafctl.lag_exporter`: consumer lag of the services' groups as Prometheus metrics.

Per group, topic and partition: `caf_consumer_lag_messages` (end offset minus committed offset)
and `caf_consumer_lag_seconds` (age of the oldest message not yet committed; 0 when caught up).
Also the grants waiting to post (PO-11), from the validator's posting deadlines:
`caf_grants_waiting_to_post{age}` (count per age band) and `caf_grant_waiting_oldest_seconds`.
Served on `CAF_LAG_EXPORTER_PORT` (default 8085) at `/metrics`, refreshed on every scrape.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from caf_runtime.broker import client_options
from caf_runtime.config import ServiceSettings
from caf_runtime.logging import configure_logging
from caf_runtime.offsets import topic_partitions
from cafctl.operations import waiting_to_post
from cafctl.status import GROUPS


async def lag_page(settings: ServiceSettings, options: dict[str, Any]) -> bytes:
    """One scrape: every group's lag per partition, in messages and in seconds."""
    registry = CollectorRegistry()
    labels = ["group", "topic", "partition"]
    messages = Gauge(
        "caf_consumer_lag_messages", "Messages not yet committed.", labels, registry=registry
    )
    seconds = Gauge(
        "caf_consumer_lag_seconds",
        "Age of the oldest uncommitted message.",
        labels,
        registry=registry,
    )
    admin = AIOKafkaAdminClient(**options)
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **options)
    await admin.start()
    await consumer.start()
    try:
        now = time.time()
        for group, read in GROUPS.items():
            for topic in read:
                partitions = await topic_partitions(admin, settings.topic(topic))
                if not partitions:
                    continue
                ends = await consumer.end_offsets(partitions)
                committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
                for tp in partitions:
                    done = (
                        committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0
                    )
                    lag = max(ends[tp] - done, 0)
                    age = await _age(consumer, tp, done, now) if lag else 0.0
                    messages.labels(group, topic, str(tp.partition)).set(lag)
                    seconds.labels(group, topic, str(tp.partition)).set(age)
    finally:
        await consumer.stop()
        await admin.close()
    await _waiting(settings, registry)
    return generate_latest(registry)


AGE_BANDS = ((3600, "under_1h"), (86400, "1h_to_24h"), (144000, "24h_to_40h"))


async def _waiting(settings: ServiceSettings, registry: CollectorRegistry) -> None:
    waiting = Gauge(
        "caf_grants_waiting_to_post",
        "Grants passed to the poster without a terminal event yet, by age band.",
        ["age"],
        registry=registry,
    )
    oldest = Gauge(
        "caf_grant_waiting_oldest_seconds",
        "Age of the oldest grant waiting to post (0 when none waits).",
        registry=registry,
    )
    rows = await waiting_to_post(settings, datetime.now(UTC))
    bands = Counter(_band(int(row["age_s"])) for row in rows)
    for _, band in (*AGE_BANDS, (0, "over_40h")):
        waiting.labels(band).set(bands.get(band, 0))
    oldest.set(max((int(row["age_s"]) for row in rows), default=0))


def _band(age_s: int) -> str:
    return next((band for limit, band in AGE_BANDS if age_s < limit), "over_40h")


async def _age(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int, now: float) -> float:
    """Seconds since the first uncommitted message was written."""
    consumer.assign([tp])
    consumer.seek(tp, offset)
    batch = await consumer.getmany(tp, timeout_ms=1000, max_records=1)
    records = batch.get(tp, [])
    return max(now - records[0].timestamp / 1000, 0.0) if records else 0.0


async def serve(settings: ServiceSettings, port: int) -> None:
    options = client_options(settings)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=5.0)
            path = request.decode(errors="replace").split()[1:2]
            if path == ["/metrics"]:
                page, status = await lag_page(settings, options), "200 OK"
            elif path in (["/healthz"], ["/readyz"]):
                page, status = b'{"status": "alive"}', "200 OK"
            else:
                page, status = b"not found", "404 Not Found"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n"
                f"Content-Length: {len(page)}\r\nConnection: close\r\n\r\n".encode()
                + page
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, settings.health_host, port)
    async with server:
        await server.serve_forever()


def main() -> None:
    settings = ServiceSettings()
    configure_logging("lag_exporter", settings.log_level)
    asyncio.run(serve(settings, int(os.environ.get("CAF_LAG_EXPORTER_PORT", "8085"))))


if __name__ == "__main__":
    main()
