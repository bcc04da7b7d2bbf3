"""The read side's rig (issue 17): its table on DynamoDB Local with a known outcome stream
projected, and its API in process with the development identity provider's tokens."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest
from aiokafka import ConsumerRecord
from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from caf_runtime.broker import client_options, make_broker
from caf_runtime.config import EvidenceSettings, ServiceSettings
from caf_runtime.dynamo import DynamoTable
from caf_runtime.envelope import Sealer
from caf_runtime.evidence_bucket import EvidenceBucket
from caf_runtime.guard import Guard, Probe, RetryPolicy, Work
from caf_runtime.outputs import Output
from caf_runtime.provision import ensure_tables, ensure_topics
from caf_runtime.topology import TABLES, TopicSpec
from devstack.keys import ISSUER
from schemas.ids import RefKeys
from services.caf_query.access import AccessTokens
from services.caf_query.api import create_api
from services.caf_query.audit import EmployeeReads
from services.caf_query.projector import Projector
from services.caf_query.store import DynamoQueryStore
from tests.conftest import Infrastructure, unique
from tests.signing import keys

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

REFS = RefKeys((bytes(range(32)),))
TIN, OTHER_TIN = "123456789", "234567891"
REF, OTHER_REF = REFS.ref(TIN), REFS.ref(OTHER_TIN)
MINE, THEIRS = "781234567", "789999999"
NOW = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)


def _event(kind: str, ref: str, grant: str, caf: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "event_id": f"{kind}-{grant}",
        "occurred_at": "2026-12-01T14:05:12+00:00",
        "taxpayer_ref": ref,
        "tin_last4": (TIN if ref == REF else OTHER_TIN)[-4:],
        "form": "2848",
        "message_id": grant.split(":", maxsplit=1)[0],
        "grant_id": grant,
        "caf_number": caf,
        "stage": "caf_poster",
        "representative_name": "Avery Smith",
        **fields,
    }


def _income(*periods: str) -> list[dict[str, Any]]:
    return [{"tax_type": "Income", "form_number": "1040", "periods": list(periods)}]


STREAM = [
    _event(
        "AuthorizationPosted",
        REF,
        "m-1:0",
        MINE,
        authorization_id="m-1",
        tax_matters=_income("2023", "2024", "2025"),
        receive_notices=True,
    ),
    _event(
        "AuthorizationPendingApproval",
        REF,
        "tpa-1",
        MINE,
        request_id="tpa-1",
        expires_on="2026-12-20",
    ),
    _event(
        "AuthorizationRevoked",
        REF,
        "m-1:0",
        MINE,
        authorization_id="m-1",
        tax_matters=_income("2023"),
        remaining_matters=_income("2024", "2025"),
        revoked_by="REV-BY-TAXPAYER",
    ),
    _event(
        "AuthorizationPosted",
        OTHER_REF,
        "m-2:0",
        THEIRS,
        authorization_id="m-2",
        tax_matters=_income("2024"),
        receive_notices=False,
    ),
    _event("SlaAtRisk", REF, "m-9:0", MINE, ready_at="2026-11-30T10:00:00+00:00", age_hours=25),
]


def record_at(offset: int, event: dict[str, Any]) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="caf.events.v1",
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=event["taxpayer_ref"].encode(),
        value=json.dumps(event).encode(),
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
        headers=(),
    )


@dataclass
class ReadSide:
    settings: ServiceSettings
    store: DynamoQueryStore
    ops: DynamoTable
    client: httpx.AsyncClient
    audited: list[Output]
    projector: Projector
    api: FastAPI

    async def project(self, events: list[dict[str, Any]]) -> None:
        for offset, event in enumerate(events):
            await self.projector.on_event(record_at(offset, event))

    async def call(
        self, method: str, path: str, token: str | None, body: Any = None
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return await self.client.request(method, path, json=body, headers=headers)


@pytest.fixture
async def read_side(
    infra: Infrastructure, settings: ServiceSettings, dynamodb: DynamoDBClient
) -> AsyncIterator[ReadSide]:
    settings = settings.model_copy(update={"table_prefix": unique("query-")})
    await ensure_tables(dynamodb, TABLES, prefix=settings.table_prefix)
    store, ops = DynamoQueryStore(settings), DynamoTable(settings, "ops")
    audited: list[Output] = []

    async def publish(outputs: list[Output]) -> None:
        audited.extend(outputs)

    tokens = AccessTokens.from_locations({ISSUER: str(keys().identity_jwks)})
    evidence = EvidenceBucket(EvidenceSettings.model_validate(infra.s3_identity("query")))
    api = create_api(
        store, tokens, REFS.refs, EmployeeReads(ops, publish), lambda: NOW, evidence=evidence
    )
    transport = httpx.ASGITransport(app=api)
    async with (
        store.table,
        ops,
        evidence,
        httpx.AsyncClient(transport=transport, base_url="http://api") as client,
    ):
        side = ReadSide(settings, store, ops, client, audited, Projector(store), api)
        await side.project(STREAM)
        yield side


def token(role: str, **claims: Any) -> str:
    return keys().access_token(role=role, subject=f"{role}-1", issued_at=NOW, **claims)


def check_body(caf: str, period: str, **who: Any) -> dict[str, Any]:
    return {"caf_number": caf, "tax_type": "Income", "form_number": "1040", "period": period, **who}


async def until(condition: Callable[[], Any], limit_s: float = 20.0) -> None:
    """Poll until `condition()` is truthy; fail at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not condition():
        assert loop.time() < deadline, f"not reached within {limit_s}s"
        await asyncio.sleep(0.05)


StoreSettings = TypeVar("StoreSettings", bound=ServiceSettings)


def store_settings(kind: type[StoreSettings], settings: ServiceSettings) -> StoreSettings:
    """A service's settings (`kind`) that take from the session's `settings` only its DynamoDB
    endpoint and table prefix: what a store built from them needs."""
    return kind.model_validate(
        {
            "DYNAMODB_ENDPOINT": settings.dynamodb_endpoint,
            "CAF_TABLE_PREFIX": settings.table_prefix,
        }
    )


async def with_guard_topics(
    settings: ServiceSettings,
    source: str,
    retry: str,
    dlq: str,
    *,
    prefix: str,
    partitions: int = 1,
    **update: Any,
) -> ServiceSettings:
    """`settings` with a topic prefix of its own (`prefix`…) and `update`, under which the
    guard's topics are made: `source` with `partitions`, `retry` and `dlq` with one each."""
    settings = settings.model_copy(update={"topic_prefix": unique(prefix), **update})
    await ensure_topics(
        settings.kafka_bootstrap_servers,
        (TopicSpec(source, partitions), TopicSpec(retry, 1), TopicSpec(dlq, 1)),
        prefix=settings.topic_prefix,
        client_options=client_options(settings),
    )
    return settings


def guarded(
    settings: ServiceSettings,
    work: Work,
    source: str,
    retry: str,
    dlq: str,
    *,
    name: str,
    dependencies: Probe,
    policy: RetryPolicy,
    sealer: Sealer | None = None,
) -> tuple[KafkaBroker, Guard, str]:
    """A broker (client `name`-test, not started) whose guard has `work` consume `source` in a
    group of its own (`name`-…), retrying on `retry` and dead-lettering on `dlq` with `policy`
    while `dependencies` answer: (the broker, the guard, the group)."""
    broker = make_broker(settings, client_id=f"{name}-test")
    guard = Guard(
        broker,
        settings,
        retry_topic=retry,
        dlq_topic=dlq,
        dependencies=dependencies,
        policy=policy,
        sealer=sealer,
    )
    group = unique(f"{name}-")
    guard.subscribe(source, group, work)
    return broker, guard, group
