"""Composition root of the intake service: builds settings, broker, store, the entity feed's
barrier (DO-01), handlers and the timer loop that expires undecided Tax Pro Account requests
(IN-23)."""

from __future__ import annotations

from faststream import FastStream

from caf_runtime.broker import client_options, make_broker
from caf_runtime.clock import Clock, make_clock
from caf_runtime.feed_barrier import FeedBarrier
from caf_runtime.service import build_app
from caf_runtime.timers import TimerLoop
from schemas import topics
from services.intake.config import IntakeSettings
from services.intake.handlers import register
from services.intake.store import DynamoIntakeStore


def create_app(settings: IntakeSettings | None = None, clock: Clock | None = None) -> FastStream:
    settings = settings or IntakeSettings()
    clock = clock or make_clock(settings.clock_offset_file)
    broker = make_broker(settings, client_id="caf-intake")
    store = DynamoIntakeStore(settings, clock)
    entities = FeedBarrier(
        client_options(settings),
        settings.topic(topics.ENTITIES),
        settings.entities_group_id,
        settings.entity_wait_s,
    )
    handler = register(broker, settings, store, clock, entities)
    timers = TimerLoop.publishing_to(broker, settings, store.timers, handler.timer_kinds, clock)
    return build_app(
        "intake",
        settings,
        broker,
        resources=[store.table, entities, timers],
        checks={"dynamodb": store.ping},
    )
