"""Provisioning creates the declared topics and tables once; a second run changes nothing."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from botocore.exceptions import ClientError

from caf_runtime.broker import client_options
from caf_runtime.config import ServiceSettings
from caf_runtime.provision import ensure_tables, ensure_topics, topic_configs
from caf_runtime.topology import (
    DAY_MS,
    DEAD_LETTER_DAYS,
    INBOUND_DAYS,
    KEYED_PARTITIONS,
    TABLES,
    TOPICS,
)
from schemas import topics

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

pytestmark = pytest.mark.integration


async def test_topics_are_created_once_with_their_declared_shape(settings: ServiceSettings) -> None:
    servers, options = settings.kafka_bootstrap_servers, client_options(settings)
    first = await ensure_topics(
        servers, TOPICS, prefix=settings.topic_prefix, client_options=options
    )
    second = await ensure_topics(
        servers, TOPICS, prefix=settings.topic_prefix, client_options=options
    )

    assert sorted(first.created) == sorted(settings.topic(spec.name) for spec in TOPICS)
    assert second.created == ()
    assert sorted(second.existing) == sorted(first.created)
    assert second.mismatched == ()

    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        described = await admin.describe_topics([settings.topic(topics.EVENTS)])
        registry = settings.topic(topics.PRACTITIONERS)
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, registry, {"cleanup.policy": None})]
        )
    finally:
        await admin.close()
    assert len(described[0]["partitions"]) == KEYED_PARTITIONS
    entries = {entry[0]: entry[1] for entry in configs[0].resources[0][4]}
    assert entries["cleanup.policy"] == "compact"


async def test_tables_are_created_once_and_second_run_changes_nothing(
    settings: ServiceSettings, dynamodb: DynamoDBClient
) -> None:
    first = await ensure_tables(dynamodb, TABLES, prefix=settings.table_prefix)
    second = await ensure_tables(dynamodb, TABLES, prefix=settings.table_prefix)

    assert sorted(first.created) == sorted(settings.table(spec.name) for spec in TABLES)
    assert second.created == ()
    assert sorted(second.existing) == sorted(first.created)
    ttl = await dynamodb.describe_time_to_live(TableName=settings.table("intake"))
    assert ttl["TimeToLiveDescription"].get("AttributeName") == "expires_at"


async def config_of(admin: AIOKafkaAdminClient, topic: str, key: str, wanted: str) -> str:
    """The topic's `key` once the broker reports `wanted` (a change applies asynchronously
    through the metadata log), or what it reports after 15 s."""
    value = ""
    for _ in range(150):
        value = (await topic_configs(admin, [topic])).get(topic, {}).get(key, "")
        if value == wanted:
            break
        await asyncio.sleep(0.1)
    return value


async def test_each_topic_keeps_data_as_long_as_declared_and_drift_is_set_back(
    settings: ServiceSettings,
) -> None:
    """Inbound and dead letters short, the events (the audit trail) for ever; a retention
    changed by hand is set back to its declaration by the next provisioning run."""
    servers, options = settings.kafka_bootstrap_servers, client_options(settings)
    await ensure_topics(servers, TOPICS, prefix=settings.topic_prefix, client_options=options)
    inbound, events = settings.topic(topics.INBOUND), settings.topic(topics.EVENTS)
    dead_letters = settings.topic(topics.INBOUND_DLQ)
    week, fortnight = str(INBOUND_DAYS * DAY_MS), str(DEAD_LETTER_DAYS * DAY_MS)
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        assert await config_of(admin, inbound, "retention.ms", week) == week
        assert await config_of(admin, dead_letters, "retention.ms", fortnight) == fortnight
        assert await config_of(admin, events, "retention.ms", "-1") == "-1"
        changed = {"retention.ms": "999999999999"}
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, inbound, changed)])
        assert await config_of(admin, inbound, "retention.ms", "999999999999") == "999999999999"
        again = await ensure_topics(
            servers, TOPICS, prefix=settings.topic_prefix, client_options=options
        )
        assert again.reconfigured == (inbound,)
        assert await config_of(admin, inbound, "retention.ms", week) == week
    finally:
        await admin.close()


async def test_tables_refuse_deletion_and_say_where_point_in_time_recovery_is_missing(
    settings: ServiceSettings, dynamodb: DynamoDBClient
) -> None:
    report = await ensure_tables(dynamodb, TABLES, prefix=settings.table_prefix)
    for spec in TABLES:
        name = settings.table(spec.name)
        described = await dynamodb.describe_table(TableName=name)
        assert described["Table"].get("DeletionProtectionEnabled") is True
        try:
            backups = await dynamodb.describe_continuous_backups(TableName=name)
        except ClientError:
            assert any(entry.startswith(f"{name}: point-in-time") for entry in report.unsupported)
        else:
            recovery = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
            assert recovery["PointInTimeRecoveryStatus"] == "ENABLED"
    with pytest.raises(ClientError, match="deletion protection"):
        await dynamodb.delete_table(TableName=settings.table("caf"))
