"""Process plumbing shared by the four services: the FastStream app with its health endpoint,
its owned resources opened at start-up and closed at shutdown, and the process entry point."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any, TypeVar

import uvloop
from aiokafka import codec
from faststream import FastStream
from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from caf_runtime.config import ServiceSettings
from caf_runtime.fetch_health import FetchMonitor
from caf_runtime.health import HealthServer, ReadinessCheck
from caf_runtime.logging import configure_logging
from caf_runtime.metrics import ASSIGNED_PARTITIONS

log = logging.getLogger(__name__)
S = TypeVar("S", bound=ServiceSettings)
EX_CONFIG = 78  # sysexits.h: configuration error


def build_app(
    name: str,
    settings: ServiceSettings,
    broker: KafkaBroker,
    *,
    resources: Sequence[AbstractAsyncContextManager[Any]] = (),
    checks: dict[str, ReadinessCheck] | None = None,
) -> FastStream:
    """A FastStream app that opens `resources` before the broker starts consuming, serves
    `/healthz` and `/readyz`, and closes everything after the broker has drained on shutdown.

    Readiness also needs every Kafka codec importable and no consumer failing to fetch for longer
    than `fetch_not_ready_after_s`; liveness, none failing for longer than
    `fetch_not_live_after_s` (see `caf_runtime.fetch_health`)."""
    exit_stack = AsyncExitStack()
    health = _health_server(broker, settings, checks or {})

    async def open_resources() -> None:
        for resource in resources:
            await exit_stack.enter_async_context(resource)

    async def start_health() -> None:
        await health.start()
        log.info("service started", extra={"service_name": name, "health_port": health.port})

    async def close_resources() -> None:
        await health.stop()
        await exit_stack.aclose()
        log.info("service stopped", extra={"service_name": name})

    async def drain() -> None:
        await drain_in_flight(broker, settings.graceful_timeout_s)

    return FastStream(
        broker,
        logger=logging.getLogger(f"caf.{name}"),
        on_startup=[open_resources],
        on_shutdown=[drain],
        after_startup=[start_health],
        after_shutdown=[close_resources],
    )


def _health_server(
    broker: KafkaBroker, settings: ServiceSettings, checks: dict[str, ReadinessCheck]
) -> HealthServer:
    """`/healthz`, `/readyz` and `/metrics`: the broker answers, every subscription has
    partitions, every codec imports, no consumer fails to fetch, and the service's `checks`."""

    async def partitions_assigned() -> bool:
        return all(
            count > 0 for count in assigned_partitions(broker, settings.topic_prefix).values()
        )

    fetches = FetchMonitor(
        not_ready_after_s=settings.fetch_not_ready_after_s,
        not_live_after_s=settings.fetch_not_live_after_s,
    )
    fetches.watch(broker, settings.topic_prefix)

    async def codecs_available() -> bool:
        codecs = (codec.has_gzip, codec.has_snappy, codec.has_lz4, codec.has_zstd)
        return all(available() for available in codecs)

    readiness: dict[str, ReadinessCheck] = {
        "kafka": lambda: broker.ping(timeout=2.0),
        "partitions": partitions_assigned,
        "codecs": codecs_available,
        "consumer_fetch": fetches.ready,
        **checks,
    }

    def on_scrape() -> None:
        assigned_partitions(broker, settings.topic_prefix)
        fetches.failing_for()

    return HealthServer(
        readiness,
        port=settings.health_port,
        host=settings.health_host,
        on_scrape=on_scrape,
        liveness={"consumer_fetch": fetches.live},
    )


async def drain_in_flight(broker: KafkaBroker, timeout_s: float) -> None:
    """Before the broker stops: no subscriber takes another record (its loop ends, its
    partitions are paused so a fetch in progress returns nothing) and the records in flight
    finish, within `timeout_s`. FastStream 0.7's partition-concurrent subscriber stops its
    consumers *before* waiting for its handlers, so a handler finishing during shutdown commits
    through a closed consumer, and aiokafka retries that commit for ever: the process never
    exits. Draining first leaves nothing to commit late."""
    waits: list[Awaitable[None]] = []
    for subscriber in broker.subscribers:
        subscriber.running = False
        for consumer in _consumers(subscriber):
            if consumer.assignment():
                consumer.pause(*consumer.assignment())
        # FastStream's MultiLock: held by each record in flight
        wait_release = getattr(getattr(subscriber, "lock", None), "wait_release", None)
        if wait_release is not None:
            waits.append(wait_release(timeout_s))
    await asyncio.gather(*waits)


def _consumers(subscriber: Any) -> list[Any]:
    """The aiokafka consumers of a FastStream subscriber that has started: one per worker of a
    partition-concurrent subscriber, else its one consumer."""
    subgroup: list[Any] = list(getattr(subscriber, "consumer_subgroup", None) or [])
    one = getattr(subscriber, "consumer", None)
    return subgroup or ([one] if one is not None else [])


def assigned_partitions(broker: KafkaBroker, prefix: str = "") -> dict[tuple[str, str], int]:
    """Partitions each subscription's consumers hold now, by (group, topic); also exported as
    `caf_consumer_assigned_partitions`. A subscription whose consumers have not joined their
    group yet (or lost their partitions in a rebalance) counts 0."""
    counts: dict[tuple[str, str], int] = {}
    for subscriber in broker.subscribers:
        group = str(getattr(subscriber, "group_id", "") or "")
        for consumer in _consumers(subscriber):
            for topic in consumer.subscription():
                counts.setdefault((group, topic.removeprefix(prefix)), 0)
            for partition in consumer.assignment():
                key = (group, partition.topic.removeprefix(prefix))
                counts[key] = counts.get(key, 0) + 1
    for (group, topic), count in counts.items():
        ASSIGNED_PARTITIONS.labels(group=group, topic=topic).set(count)
    return counts


def main(name: str, settings_type: Callable[[], S], create_app: Callable[[S], FastStream]) -> None:
    """A service's `__main__`: its settings, then `run`. Settings that fail validation (a
    missing or weak key among them) end the process with EX_CONFIG and one log line per
    problem, naming the setting but never its value; the service never reports ready."""
    try:
        settings = settings_type()
    except ValidationError as error:
        configure_logging(name, "INFO")
        for problem in error.errors(include_input=False, include_url=False):
            where = ".".join(str(part) for part in problem["loc"]) or "settings"
            log.critical("refusing to start: %s: %s", where, problem["msg"])
        raise SystemExit(EX_CONFIG) from None
    run(name, lambda: create_app(settings), settings)


def run(name: str, create_app: Callable[[], FastStream], settings: ServiceSettings) -> None:
    """Run a service until SIGTERM or SIGINT; in-flight messages finish within the graceful
    timeout and their offsets are committed before the process exits."""
    configure_logging(name, settings.log_level)
    with event_loop(settings) as runner:
        runner.run(create_app().run(log_level=logging.getLevelName(settings.log_level.upper())))


def event_loop(settings: ServiceSettings) -> asyncio.Runner:
    """A runner on the configured event loop (`CAF_EVENT_LOOP`)."""
    return asyncio.Runner(
        loop_factory=uvloop.new_event_loop if settings.event_loop == "uvloop" else None
    )
