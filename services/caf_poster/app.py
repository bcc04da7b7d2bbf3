"""Composition root of the caf_poster service: builds settings, broker, store and handlers."""

from __future__ import annotations

from faststream import FastStream

from caf_runtime.broker import make_broker
from caf_runtime.clock import Clock, make_clock
from caf_runtime.service import build_app
from services.caf_poster.config import CafPosterSettings
from services.caf_poster.handlers import register
from services.caf_poster.store import CafStore


def create_app(settings: CafPosterSettings | None = None, clock: Clock | None = None) -> FastStream:
    settings = settings or CafPosterSettings()
    broker = make_broker(settings, client_id="caf-poster")
    store = CafStore(settings)
    register(broker, settings, store, clock or make_clock(settings.clock_offset_file))
    return build_app(
        "caf_poster", settings, broker, resources=[store.table], checks={"dynamodb": store.ping}
    )
