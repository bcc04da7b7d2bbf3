"""Least privilege on the real broker: the ACLs generated from `caf_runtime.topology.ROLES`
let each principal do what its role needs and nothing else (the broker refuses the rest)."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from caf_runtime.acls import all_acls, role_acls
from caf_runtime.broker import client_options
from caf_runtime.config import ServiceSettings
from caf_runtime.topology import ROLES
from devstack.access import PRINCIPALS
from schemas import topics
from tests.conftest import Infrastructure, unique
from tests.unit.builders import post_grant

pytestmark = pytest.mark.integration


@pytest.fixture
async def secured(infra: Infrastructure) -> ServiceSettings:
    if not infra.secured:
        pytest.skip("the broker of this session is not this project's (no SASL/ACLs)")
    settings = infra.settings()
    await infra.prepare(settings)
    return settings


def as_principal(
    infra: Infrastructure, settings: ServiceSettings, principal: str
) -> ServiceSettings:
    return infra.settings(
        principal,
        CAF_TOPIC_PREFIX=settings.topic_prefix,
        CAF_TABLE_PREFIX=settings.table_prefix,
    )


async def produce(settings: ServiceSettings, topic: str, value: bytes) -> str | None:
    """None when the broker took the record, else the error's class name."""
    producer = AIOKafkaProducer(**client_options(settings), acks="all", request_timeout_ms=8000)
    try:
        await producer.start()
        await producer.send_and_wait(settings.topic(topic), value, key=b"k")
    except KafkaError as error:
        return type(error).__name__
    finally:
        await producer.stop()
    return None


async def consume(settings: ServiceSettings, topic: str) -> str | None:
    """None when a consumer group of the principal may read `topic`, else the error's name."""
    consumer = AIOKafkaConsumer(
        settings.topic(topic),
        **client_options(settings),
        group_id=unique("downstream-test-"),
        auto_offset_reset="earliest",
    )
    try:
        await consumer.start()
        await consumer.getmany(timeout_ms=3000)
    except KafkaError as error:
        return type(error).__name__
    finally:
        await consumer.stop()
    return None


async def test_the_notifier_may_not_produce_validated_grants(
    infra: Infrastructure, secured: ServiceSettings
) -> None:
    notifier = as_principal(infra, secured, "notifier")
    refused = await produce(
        notifier, topics.GRANTS_VALIDATED, post_grant().model_dump_json().encode()
    )
    assert refused == "TopicAuthorizationFailedError"
    assert await produce(notifier, topics.NOTIFICATIONS, b"{}") is None


async def test_a_portal_may_publish_inbound_records_but_not_read_the_outcome_stream(
    infra: Infrastructure, secured: ServiceSettings
) -> None:
    portal = as_principal(infra, secured, "portal")
    assert await produce(portal, topics.INBOUND, b"{}") is None
    assert await consume(portal, topics.EVENTS) is not None
    downstream = as_principal(infra, secured, "downstream")
    assert await consume(downstream, topics.EVENTS) is None


@pytest.mark.parametrize("principal", [p for p in PRINCIPALS if p not in {"admin", "provisioner"}])
async def test_only_the_validator_may_publish_a_post_grant(
    infra: Infrastructure, secured: ServiceSettings, principal: str
) -> None:
    """A forged PostGrant on caf.grants.validated.v1 is refused by the broker for everyone but
    the validator."""
    forged = post_grant().model_dump_json().encode()
    refused = await produce(
        as_principal(infra, secured, principal), topics.GRANTS_VALIDATED, forged
    )
    if principal == "validator":
        assert refused is None
    else:
        assert "Authorization" in str(refused), refused


def test_the_acls_give_each_role_only_its_own_topics_and_groups() -> None:
    acls = all_acls("p.")
    writers = {
        a.principal
        for a in acls
        if a.operation == "WRITE" and a.name == "p.caf.grants.validated.v1"
    }
    assert writers == {"User:validator"}
    event_writers = {
        a.principal for a in acls if a.operation == "WRITE" and a.name == "p.caf.events.v1"
    }
    # the monitor's CafMisuseSuspected (MN-01 … MN-05)
    assert event_writers == {"User:intake", "User:validator", "User:poster", "User:monitor"}
    portal = next(role for role in ROLES if role.principal == "portal")
    assert {(a.name, a.operation) for a in role_acls(portal, "p.")} == {
        ("p.caf.inbound.v1", "WRITE"),
        ("p.caf.inbound.v1", "DESCRIBE"),
    }
