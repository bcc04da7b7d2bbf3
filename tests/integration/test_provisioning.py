"""Provisioning creates the declared topics and tables once; a second run changes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from caf_runtime.broker import client_options
from caf_runtime.config import ServiceSettings
from caf_runtime.provision import ensure_tables, ensure_topics
from caf_runtime.topology import KEYED_PARTITIONS, TABLES, TOPICS
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
