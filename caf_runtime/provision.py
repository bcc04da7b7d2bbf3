"""Idempotent creation of the topics and tables listed in `caf_runtime.topology`.

Running it twice changes nothing the second time. An existing topic with fewer partitions than
declared is reported, not altered: adding partitions re-maps keys, which an operator must decide.
An existing topic whose retention differs from its declaration is set to it (`reconfigured`): how
long data is kept is decided here, not by hand.

Tables get point-in-time recovery and deletion protection, and on AWS server-side encryption
under the customer-managed key `CAF_TABLE_KMS_KEY`. An endpoint that does not support one of
them (DynamoDB Local has no backups) is logged and reported in `unsupported`, never silently
skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError
from botocore.exceptions import ClientError

from caf_runtime.acls import all_acls, apply_acls, kafka_admin_config
from caf_runtime.broker import client_options
from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import dynamodb_client
from caf_runtime.topology import TABLES, TOPICS, TableSpec, TopicSpec

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProvisionReport:
    """What a provisioning run created, found in place, or found different from the declaration."""

    created: tuple[str, ...]
    existing: tuple[str, ...]
    mismatched: tuple[str, ...] = ()
    reconfigured: tuple[str, ...] = ()
    unsupported: tuple[str, ...] = ()


async def ensure_topics(
    bootstrap_servers: str,
    specs: Iterable[TopicSpec],
    *,
    prefix: str = "",
    replication_factor: int = 1,
    client_options: dict[str, Any] | None = None,
) -> ProvisionReport:
    """Create each declared topic that does not exist yet (`client_options`: SASL/TLS)."""
    wanted = {prefix + spec.name: spec for spec in specs}
    options = client_options or {"bootstrap_servers": bootstrap_servers}
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        present = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=name,
                num_partitions=spec.partitions,
                replication_factor=replication_factor,
                topic_configs=dict(spec.config),
            )
            for name, spec in wanted.items()
            if name not in present
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                log.info("a topic was created concurrently; keeping the existing one")
        mismatched = await _partition_mismatches(admin, wanted, present)
        reconfigured = await _reconfigure(admin, wanted, present)
    finally:
        await admin.close()
    return ProvisionReport(
        created=tuple(topic.name for topic in missing),
        existing=tuple(sorted(set(wanted) & present)),
        mismatched=mismatched,
        reconfigured=reconfigured,
    )


async def topic_configs(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    """The current configuration of each topic in `names`."""
    if not names:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    found: dict[str, dict[str, str]] = {}
    for response in await admin.describe_configs(resources):
        for _code, _message, _type, name, entries in response.resources:
            found[name] = {entry[0]: entry[1] for entry in entries}
    return found


async def _reconfigure(
    admin: AIOKafkaAdminClient, wanted: dict[str, TopicSpec], present: set[str]
) -> tuple[str, ...]:
    """Set every existing topic whose declared configuration differs to its declaration."""
    existing = sorted(name for name in set(wanted) & present if wanted[name].config)
    current = await topic_configs(admin, existing)
    drifted = [
        name
        for name in existing
        if any(current.get(name, {}).get(k) != v for k, v in wanted[name].config.items())
    ]
    if drifted:
        await admin.alter_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, name, dict(wanted[name].config))
                for name in drifted
            ]
        )
        log.info("topic configuration set to its declaration", extra={"topics": drifted})
    return tuple(drifted)


async def _partition_mismatches(
    admin: AIOKafkaAdminClient, wanted: dict[str, TopicSpec], present: set[str]
) -> tuple[str, ...]:
    existing = sorted(set(wanted) & present)
    if not existing:
        return ()
    described = await admin.describe_topics(existing)
    mismatched = []
    for topic in described:
        name = topic["topic"]
        if len(topic["partitions"]) != wanted[name].partitions:
            mismatched.append(
                f"{name}: {len(topic['partitions'])} partitions, declared {wanted[name].partitions}"
            )
    return tuple(mismatched)


async def ensure_tables(
    client: DynamoDBClient,
    specs: Iterable[TableSpec],
    *,
    prefix: str,
    kms_key: str | None = None,
) -> ProvisionReport:
    """Create each declared table that does not exist yet, and wait until all are active; then
    make sure each has point-in-time recovery and deletion protection as declared."""
    wanted = {prefix + spec.name: spec for spec in specs}
    present: set[str] = set()
    paginator = client.get_paginator("list_tables")
    async for page in paginator.paginate():
        present.update(page.get("TableNames", []))
    created = []
    for name, _spec in wanted.items():
        if name in present:
            continue
        try:
            await client.create_table(
                TableName=name,
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                BillingMode="PAY_PER_REQUEST",
                DeletionProtectionEnabled=_spec.deletion_protection,
                **_encryption(kms_key),
            )
        except client.exceptions.ResourceInUseException:
            continue
        created.append(name)
    for name in created:
        await _wait_active(client, name)
    unsupported: list[str] = []
    for name, spec in wanted.items():
        unsupported.extend(await _protect(client, name, spec))
    return ProvisionReport(
        created=tuple(created),
        existing=tuple(sorted(set(wanted) & present)),
        unsupported=tuple(unsupported),
    )


def _encryption(kms_key: str | None) -> dict[str, Any]:
    """Server-side encryption under a customer-managed key, when one is configured."""
    if not kms_key:
        return {}
    return {"SSESpecification": {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": kms_key}}


async def _protect(client: DynamoDBClient, name: str, spec: TableSpec) -> list[str]:
    """Deletion protection and point-in-time recovery on `name`, as declared; what the endpoint
    does not support is returned (and logged), not hidden."""
    unsupported = []
    if spec.ttl_attribute is not None:
        ttl = (await client.describe_time_to_live(TableName=name))["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            await client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
            )
    table = (await client.describe_table(TableName=name))["Table"]
    if spec.deletion_protection and not table.get("DeletionProtectionEnabled"):
        await client.update_table(TableName=name, DeletionProtectionEnabled=True)
    if spec.point_in_time_recovery:
        try:
            backups = await client.describe_continuous_backups(TableName=name)
            recovery = backups["ContinuousBackupsDescription"].get(
                "PointInTimeRecoveryDescription", {}
            )
            if recovery.get("PointInTimeRecoveryStatus") != "ENABLED":
                await client.update_continuous_backups(
                    TableName=name,
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
                )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            log.warning(
                "the endpoint does not support point-in-time recovery",
                extra={"table": name, "code": code},
            )
            unsupported.append(f"{name}: point-in-time recovery ({code})")
    return unsupported


async def _wait_active(client: DynamoDBClient, name: str, limit_s: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while loop.time() < deadline:
        table = await client.describe_table(TableName=name)
        if table["Table"].get("TableStatus") == "ACTIVE":
            return
        await asyncio.sleep(0.2)
    msg = f"table {name} not active after {limit_s:.0f}s"
    raise TimeoutError(msg)


async def provision_environment(settings: ServiceSettings, *, acls: bool) -> None:
    """Every declared topic and table of the prefixes of `settings`, and with `acls` every
    principal's ACLs for its topic prefix (the caller's principal must be a super user)."""
    await ensure_topics(
        settings.kafka_bootstrap_servers,
        TOPICS,
        prefix=settings.topic_prefix,
        client_options=client_options(settings),
    )
    async with dynamodb_client(settings) as client:
        await ensure_tables(
            client, TABLES, prefix=settings.table_prefix, kms_key=settings.table_kms_key
        )
    if acls:
        config = kafka_admin_config(settings)
        await asyncio.to_thread(apply_acls, config, all_acls(settings.topic_prefix))
