"""DynamoDB Local answers like DynamoDB where the stores depend on it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError

from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable
from caf_runtime.provision import ensure_tables
from caf_runtime.topology import TABLES

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

pytestmark = pytest.mark.integration


async def test_a_second_conditional_write_of_the_same_key_fails(
    settings: ServiceSettings, dynamodb: DynamoDBClient
) -> None:
    await ensure_tables(dynamodb, TABLES, prefix=settings.table_prefix)
    table = settings.table("intake")
    item = {"pk": {"S": "MSG#7b0c9a52"}, "sk": {"S": "DEDUP"}, "outcome": {"S": "accepted"}}

    await dynamodb.put_item(
        TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)"
    )
    with pytest.raises(ClientError) as refused:
        await dynamodb.put_item(
            TableName=table,
            Item={**item, "outcome": {"S": "something else"}},
            ConditionExpression="attribute_not_exists(pk)",
        )

    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    stored = await dynamodb.get_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
    assert stored["Item"]["outcome"] == {"S": "accepted"}


async def test_a_store_table_reports_ready_only_once_provisioned(
    settings: ServiceSettings, dynamodb: DynamoDBClient
) -> None:
    async with DynamoTable(settings, "caf") as table:
        with pytest.raises(ClientError):
            await table.ping()
        await ensure_tables(dynamodb, TABLES, prefix=settings.table_prefix)
        assert await table.ping()
