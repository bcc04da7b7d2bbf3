"""Composition root of the validator service: builds settings, broker, store, registry barrier,
handlers and the timer loop of the posting deadlines (PO-11)."""

from __future__ import annotations

from faststream import FastStream

from caf_runtime.authenticity import RecordVerifier
from caf_runtime.broker import client_options, make_broker
from caf_runtime.clock import Clock, make_clock
from caf_runtime.feed_barrier import FeedBarrier
from caf_runtime.feed_view import FeedView
from caf_runtime.service import build_app
from caf_runtime.timers import TimerLoop
from schemas import topics
from services.validator.config import ValidatorSettings
from services.validator.handlers import register
from services.validator.registry import RegistryView
from services.validator.store import DynamoValidatorStore


def create_app(settings: ValidatorSettings | None = None, clock: Clock | None = None) -> FastStream:
    settings = settings or ValidatorSettings()
    broker = make_broker(settings, client_id="caf-validator")
    registry = RegistryView(RecordVerifier.from_settings(settings))
    store = DynamoValidatorStore(settings, registry)
    barrier = FeedView(
        client_options(settings),
        settings.topic(topics.PRACTITIONERS),
        registry.apply,
        wait_s=settings.registry_wait_s,
        restore_wait_s=settings.registry_restore_wait_s,
    )
    protected = FeedBarrier(
        client_options(settings),
        settings.topic(topics.PROTECTED),
        settings.protected_group_id,
        settings.registry_wait_s,
    )
    clock = clock or make_clock(settings.clock_offset_file)
    handler = register(broker, settings, store, clock, barrier, protected)
    timers = TimerLoop.publishing_to(broker, settings, store.timers, handler.timer_kinds, clock)
    return build_app(
        "validator",
        settings,
        broker,
        resources=[store.table, barrier, protected, timers],
        checks={"dynamodb": store.ping},
    )
