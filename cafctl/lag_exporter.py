"""`python -m cafctl.lag_exporter`: consumer lag of the services' groups as Prometheus metrics.

Per group, topic and partition: `caf_consumer_lag_messages` (end offset minus committed offset)
and `caf_consumer_lag_seconds` (age of the oldest message not yet committed; 0 when caught up),
for every consumer group `caf_runtime.topology.CONSUMER_GROUPS` declares. Also the grants
waiting to post (PO-11), from the validator's posting deadlines:
`caf_grants_waiting_to_post{age}` (count per age band) and `caf_grant_waiting_oldest_seconds`.

The values are refreshed in the background, every `CAF_LAG_EXPORTER_REFRESH_S` seconds (15),
with the Kafka clients and the validator's table kept open between refreshes; a scrape is
answered from the last refresh and asks Kafka nothing. A refresh that fails is logged and
counted (`caf_lag_exporter_refresh_failures_total`), and the last good values stay:
`caf_lag_exporter_last_refresh_timestamp_seconds` says when they were read, so an alert can
tell stale values. The exporter is ready (`/readyz`) once one refresh has succeeded.

Served through `caf_runtime.health` on `CAF_LAG_EXPORTER_PORT` (8085): `/metrics`, `/healthz`
and `/readyz`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from caf_runtime.broker import client_options
from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable
from caf_runtime.health import HealthServer
from caf_runtime.logging import configure_logging
from caf_runtime.offsets import topic_partitions
from caf_runtime.topology import CONSUMER_GROUPS
from cafctl.operations import waiting_in

log = logging.getLogger(__name__)

DEFAULT_PORT = 8085
DEFAULT_REFRESH_S = 15.0
FIRST_RETRY_S = 1.0  # before the first successful refresh
AGE_BANDS = ((3600, "under_1h"), (86400, "1h_to_24h"), (144000, "24h_to_40h"))


class _LastRefresh(Collector):
    """The metric families of the last successful refresh, replaced all at once."""

    def __init__(self) -> None:
        self.families: list[Metric] = []

    def collect(self) -> Iterable[Metric]:
        return list(self.families)


@dataclass(frozen=True)
class LagClients:
    """What a refresh reads through, open between refreshes."""

    admin: AIOKafkaAdminClient
    consumer: AIOKafkaConsumer
    validator: DynamoTable  # the posting deadlines (PO-11)

    @classmethod
    async def open(
        cls, settings: ServiceSettings, options: dict[str, Any], stack: AsyncExitStack
    ) -> LagClients:
        """Started clients, each closed by `stack` (also those started before one failed)."""
        admin = AIOKafkaAdminClient(**options)
        stack.push_async_callback(admin.close)
        await admin.start()
        consumer = AIOKafkaConsumer(enable_auto_commit=False, **options)
        stack.push_async_callback(consumer.stop)
        await consumer.start()
        validator = await stack.enter_async_context(DynamoTable(settings, "validator"))
        return cls(admin, consumer, validator)


Connect = Callable[[AsyncExitStack], Awaitable[LagClients]]


class LagExporter:
    """The lag and waiting-grant gauges, refreshed by `refresh` (or every few seconds by
    `run`), in `registry`. Its clients (Kafka's admin and a consumer, the validator's table)
    are opened by the first refresh (`connect`, `LagClients.open` unless told another) and
    kept until `close`, or until a refresh fails (the next one opens new ones)."""

    def __init__(
        self, settings: ServiceSettings, options: dict[str, Any], *, connect: Connect | None = None
    ) -> None:
        self._settings = settings
        self._connect = connect or functools.partial(LagClients.open, settings, options)
        self._clients: LagClients | None = None
        self._stack = AsyncExitStack()
        self._refreshed = False
        self.registry = CollectorRegistry()
        self._last = _LastRefresh()
        self.registry.register(self._last)
        self._refreshed_at = Gauge(
            "caf_lag_exporter_last_refresh_timestamp_seconds",
            "When the lag values were last read successfully (Unix time; 0: never).",
            registry=self.registry,
        )
        self._failures = Counter(
            "caf_lag_exporter_refresh_failures_total",
            "Refreshes of the lag values that failed (the previous values stay).",
            registry=self.registry,
        )

    async def ready(self) -> bool:
        """True once one refresh has succeeded."""
        return self._refreshed

    async def refresh(self) -> None:
        """Read every group's lag and the grants waiting to post; on success, they replace
        the previous values. Raises what failed (the previous values stay)."""
        clients = await self._open()
        fresh = CollectorRegistry()
        await _lag(self._settings, clients, fresh)
        await _waiting(clients.validator, fresh)
        self._last.families = list(fresh.collect())
        self._refreshed_at.set_to_current_time()
        self._refreshed = True

    async def run(self, every_s: float) -> None:
        """Refresh now and then every `every_s` seconds, until cancelled; until one refresh has
        succeeded, every second at most (a broker just started may not answer group look-ups
        yet, and readiness waits for a success)."""
        while True:
            try:
                await self.refresh()
            except Exception as error:  # noqa: BLE001 - any failure: keep the last values, retry
                self._failures.inc()
                log.warning(
                    "lag refresh failed; the last values stay",
                    extra={"error": type(error).__name__, "detail": str(error)},
                )
                with contextlib.suppress(Exception):  # dropped either way; new ones next time
                    await self.close()
            await asyncio.sleep(every_s if self._refreshed else min(every_s, FIRST_RETRY_S))

    async def close(self) -> None:
        self._clients = None
        stack, self._stack = self._stack, AsyncExitStack()
        await stack.aclose()

    async def _open(self) -> LagClients:
        if self._clients is None:
            self._clients = await self._connect(self._stack)
        return self._clients


async def lag_page(settings: ServiceSettings, options: dict[str, Any]) -> bytes:
    """One refresh with clients of its own, as a metrics page (what a scrape would show)."""
    exporter = LagExporter(settings, options)
    try:
        await exporter.refresh()
    finally:
        await exporter.close()
    return generate_latest(exporter.registry)


async def _lag(settings: ServiceSettings, clients: LagClients, registry: CollectorRegistry) -> None:
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
    admin, consumer = clients.admin, clients.consumer
    now = time.time()
    for group in CONSUMER_GROUPS:
        for topic in group.topics:
            partitions = await topic_partitions(admin, settings.topic(topic))
            if not partitions:
                continue
            ends = await consumer.end_offsets(partitions)
            committed = await admin.list_consumer_group_offsets(group.name, partitions=partitions)
            for tp in partitions:
                done = committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0
                lag = max(ends[tp] - done, 0)
                age = await _age(consumer, tp, done, now) if lag else 0.0
                messages.labels(group.name, topic, str(tp.partition)).set(lag)
                seconds.labels(group.name, topic, str(tp.partition)).set(age)
    consumer.unsubscribe()  # no fetching in the background until the next refresh


async def _waiting(validator: DynamoTable, registry: CollectorRegistry) -> None:
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
    rows = await waiting_in(validator, datetime.now(UTC))
    bands = Tally(_band(int(row["age_s"])) for row in rows)
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


def health_server(exporter: LagExporter, port: int, host: str = "127.0.0.1") -> HealthServer:
    """`/metrics` shows the exporter's last refresh; `/readyz` waits for its first."""
    return HealthServer(
        {"refreshed": exporter.ready}, port=port, host=host, registry=exporter.registry
    )


async def serve(settings: ServiceSettings, port: int, every_s: float = DEFAULT_REFRESH_S) -> None:
    """Refresh every `every_s` seconds and serve the last values on `port`, until cancelled."""
    exporter = LagExporter(settings, client_options(settings))
    server = health_server(exporter, port, settings.health_host)
    await server.start()
    log.info("lag exporter started", extra={"health_port": server.port, "refresh_s": every_s})
    try:
        await exporter.run(every_s)
    finally:
        await server.stop()
        await exporter.close()


def main() -> None:
    settings = ServiceSettings()
    configure_logging("lag_exporter", settings.log_level)
    port = int(os.environ.get("CAF_LAG_EXPORTER_PORT", str(DEFAULT_PORT)))
    every_s = float(os.environ.get("CAF_LAG_EXPORTER_REFRESH_S", str(DEFAULT_REFRESH_S)))
    if every_s <= 0:
        raise SystemExit("CAF_LAG_EXPORTER_REFRESH_S must be a positive number of seconds")
    asyncio.run(serve(settings, port, every_s))


if __name__ == "__main__":
    main()
