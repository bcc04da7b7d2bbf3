"""Composition root of the misuse monitor: settings, broker, store, handlers, the timer loop of
the yearly statement run (MN-07)."""

from __future__ import annotations

from faststream import FastStream

from caf_runtime.broker import make_broker
from caf_runtime.clock import Clock, make_clock
from caf_runtime.service import build_app
from caf_runtime.timers import TimerLoop
from services.monitor.config import MonitorSettings
from services.monitor.handlers import MonitorHandler, register
from services.monitor.store import DynamoMonitorStore


class FirstRun:
    """At start, once the table is open: the next yearly statement run is scheduled."""

    def __init__(self, handler: MonitorHandler) -> None:
        self._handler = handler

    async def __aenter__(self) -> FirstRun:
        await self._handler.schedule_first_run()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


def create_app(settings: MonitorSettings | None = None, clock: Clock | None = None) -> FastStream:
    settings = settings or MonitorSettings()
    broker = make_broker(settings, client_id="caf-monitor")
    clock = clock or make_clock(settings.clock_offset_file)
    store = DynamoMonitorStore(settings)
    handler = register(broker, settings, store, clock)
    timers = TimerLoop.publishing_to(broker, settings, store.timers, handler.timer_kinds, clock)
    return build_app(
        "monitor",
        settings,
        broker,
        resources=[store.table, FirstRun(handler), timers],
        checks={"dynamodb": store.ping},
    )
