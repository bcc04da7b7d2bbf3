"""Composition root of the notifier service: builds settings, broker and handlers (the notifier
keeps no state of its own, `services/notifier/handlers.py`)."""

from __future__ import annotations

from faststream import FastStream

from caf_runtime.broker import make_broker
from caf_runtime.clock import Clock, make_clock
from caf_runtime.service import build_app
from services.notifier.config import NotifierSettings
from services.notifier.handlers import register


def create_app(settings: NotifierSettings | None = None, clock: Clock | None = None) -> FastStream:
    settings = settings or NotifierSettings()
    broker = make_broker(settings, client_id="caf-notifier")
    clock = clock or make_clock(settings.clock_offset_file)
    register(broker, settings, clock)
    return build_app("notifier", settings, broker)
