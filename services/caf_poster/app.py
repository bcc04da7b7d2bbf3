"""Composition root of the caf_poster service: builds settings, broker, the CAF store, handlers
and the timer loop that removes student grants on their purge day (PO-12)."""

from __future__ import annotations

from faststream import FastStream

from caf_runtime.broker import make_broker
from caf_runtime.clock import Clock, make_clock
from caf_runtime.evidence_bucket import EvidenceBucket
from caf_runtime.service import build_app
from caf_runtime.timers import TimerLoop
from services.caf_poster.config import CafPosterSettings
from services.caf_poster.handlers import register
from services.caf_poster.store import DynamoCafStore


def create_app(settings: CafPosterSettings | None = None, clock: Clock | None = None) -> FastStream:
    settings = settings or CafPosterSettings()
    clock = clock or make_clock(settings.clock_offset_file)
    broker = make_broker(settings, client_id="caf-poster")
    store = DynamoCafStore(settings)
    evidence = EvidenceBucket(settings)
    handler = register(broker, settings, store, clock, evidence)
    timers = TimerLoop.publishing_to(broker, settings, store.timers, handler.timer_kinds, clock)
    # the evidence bucket is not a readiness check: while it is down, e-signed grants wait
    # (ES-03) and everything else posts
    return build_app(
        "caf_poster",
        settings,
        broker,
        resources=[store.table, evidence, timers],
        checks={"dynamodb": store.ping},
    )
