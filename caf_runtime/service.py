"""Process plumbing shared by the four services: the FastStream app with its health endpoint,
its owned resources opened at start-up and closed at shutdown, and the process entry point."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any

from faststream import FastStream
from faststream.kafka import KafkaBroker

from caf_runtime.config import ServiceSettings
from caf_runtime.health import HealthServer, ReadinessCheck
from caf_runtime.logging import configure_logging

log = logging.getLogger(__name__)


def build_app(
    name: str,
    settings: ServiceSettings,
    broker: KafkaBroker,
    *,
    resources: Sequence[AbstractAsyncContextManager[Any]] = (),
    checks: dict[str, ReadinessCheck] | None = None,
) -> FastStream:
    """A FastStream app that opens `resources` before the broker starts consuming, serves
    `/healthz` and `/readyz`, and closes everything after the broker has drained on shutdown."""
    exit_stack = AsyncExitStack()
    readiness: dict[str, ReadinessCheck] = {"kafka": lambda: broker.ping(timeout=2.0)}
    readiness.update(checks or {})
    health = HealthServer(readiness, port=settings.health_port)

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

    return FastStream(
        broker,
        logger=logging.getLogger(f"caf.{name}"),
        on_startup=[open_resources],
        after_startup=[start_health],
        after_shutdown=[close_resources],
    )


def run(name: str, create_app: Callable[[], FastStream], settings: ServiceSettings) -> None:
    """Run a service until SIGTERM or SIGINT; in-flight messages finish within the graceful
    timeout and their offsets are committed before the process exits."""
    configure_logging(name, settings.log_level)
    asyncio.run(create_app().run(log_level=logging.getLevelName(settings.log_level.upper())))
