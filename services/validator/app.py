"""Composition root of the validator service: builds settings, broker, store and handlers."""

from __future__ import annotations

from faststream import FastStream

from caf_runtime.broker import make_broker
from caf_runtime.service import build_app
from services.validator.config import ValidatorSettings
from services.validator.handlers import register
from services.validator.store import ValidatorStore


def create_app(settings: ValidatorSettings | None = None) -> FastStream:
    settings = settings or ValidatorSettings()
    broker = make_broker(settings, client_id="caf-validator")
    store = ValidatorStore(settings)
    register(broker, settings, store)
    return build_app(
        "validator", settings, broker, resources=[store.table], checks={"dynamodb": store.ping}
    )
