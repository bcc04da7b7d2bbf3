"""Composition root of the read side: the projector on `caf.events.v1` and the HTTP API
(uvicorn) in one process, both opened and closed with the service."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

import uvicorn
from fastapi import FastAPI
from faststream import FastStream

from caf_client.signing import Signer
from caf_runtime.broker import make_broker
from caf_runtime.clock import Clock, make_clock
from caf_runtime.dynamo import DynamoTable
from caf_runtime.evidence_bucket import EvidenceBucket
from caf_runtime.guard import Guard
from caf_runtime.outputs import publish_all
from caf_runtime.service import build_app
from caf_runtime.topology import REDELIVERY_SUFFIX
from schemas import topics
from services.caf_query.access import AccessTokens
from services.caf_query.api import create_api
from services.caf_query.audit import EmployeeReads
from services.caf_query.cache import StreamReader, ViewCache
from services.caf_query.config import QuerySettings
from services.caf_query.projector import Projector
from services.caf_query.store import DynamoQueryStore
from services.caf_query.withdrawals import Withdrawals

log = logging.getLogger(__name__)


class ApiServer:
    """The API served by uvicorn while the service runs."""

    def __init__(self, api: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(
            api, host=host, port=port, log_config=None, access_log=False, http="httptools"
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ApiServer:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # it could not start: say why
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def create_app(settings: QuerySettings | None = None, clock: Clock | None = None) -> FastStream:
    settings = settings or QuerySettings()
    clock = clock or make_clock(settings.clock_offset_file)
    broker = make_broker(settings, client_id="caf-query")
    store = DynamoQueryStore(settings)
    ops = DynamoTable(settings, "ops")
    publish = functools.partial(publish_all, broker, settings)
    guard = Guard(
        broker,
        settings,
        retry_topic=topics.QUERY_RETRY,
        dlq_topic=topics.QUERY_DLQ,
        dependencies=store.ping,
    )
    guard.subscribe(topics.EVENTS, settings.group_id, Projector(store).on_event)
    guard.subscribe_retries(settings.group_id + REDELIVERY_SUFFIX)
    refs = settings.ref_keys()
    cache = ViewCache(settings.cache_entries, settings.cache_remembered)
    evidence = EvidenceBucket(settings)
    withdrawals = None
    if settings.signing_key is not None and settings.signing_key.get_secret_value().strip():

        async def send(
            topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
        ) -> None:
            await broker.publish(
                value,
                topic=settings.topic(topic),
                key=key,
                headers={name: raw.decode() for name, raw in headers},
            )

        signer = Signer.from_jwk(settings.signing_key.get_secret_value())
        withdrawals = Withdrawals(signer, send, clock.now)
    api = create_api(
        store,
        AccessTokens.from_locations(settings.identity_providers),
        refs.refs,
        EmployeeReads(ops, publish),
        clock.now,
        cache=cache,
        secure_cookies=settings.secure_cookies,
        evidence=evidence,
        withdrawals=withdrawals,
    )
    server = ApiServer(api, settings.api_host, settings.api_port)
    return build_app(
        "caf_query",
        settings,
        broker,
        resources=[
            store.table,
            ops,
            evidence,
            StreamReader(settings, settings.group_id, cache),
            server,
        ],
        checks={"dynamodb": store.ping},
    )
