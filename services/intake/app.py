"""Composition root of the intake service: builds settings, broker, store, handlers and the
timer loop that expires undecided Tax Pro Account requests (IN-23)."""

from __future__ import annotations

from faststream import FastStream

from caf_runtime.broker import make_broker
from caf_runtime.clock import Clock, make_clock
from caf_runtime.service import build_app
from caf_runtime.timers import TimerLoop
from services.intake.config import IntakeSettings
from services.intake.handlers import register
from services.intake.store import IntakeStore


def create_app(settings: IntakeSettings | None = None, clock: Clock | None = None) -> FastStream:
    settings = settings or IntakeSettings()
    clock = clock or make_clock(settings.clock_offset_file)
    broker = make_broker(settings, client_id="caf-intake")
    store = IntakeStore(settings, clock)
    handler = register(broker, settings, store, clock)
    timers = TimerLoop.publishing_to(broker, settings, store.timers, handler.fire, clock)
    return build_app(
        "intake", settings, broker, resources=[store.table, timers], checks={"dynamodb": store.ping}
    )
