"""Composition root of the intake service: builds settings, broker, store and handlers."""

from __future__ import annotations

from faststream import FastStream

from caf_runtime.broker import make_broker
from caf_runtime.clock import Clock, SystemClock
from caf_runtime.service import build_app
from services.intake.config import IntakeSettings
from services.intake.handlers import register
from services.intake.store import IntakeStore


def create_app(settings: IntakeSettings | None = None, clock: Clock | None = None) -> FastStream:
    settings = settings or IntakeSettings()
    broker = make_broker(settings, client_id="caf-intake")
    store = IntakeStore(settings)
    register(broker, settings, store, clock or SystemClock())
    return build_app(
        "intake", settings, broker, resources=[store.table], checks={"dynamodb": store.ping}
    )
