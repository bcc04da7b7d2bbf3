"""Concurrent handlers' transactions and reads share DynamoDB calls, each with its own outcome."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from prometheus_client import REGISTRY

from caf_runtime.config import ServiceSettings
from caf_runtime.dynamo import DynamoTable
from caf_runtime.provision import ensure_tables
from caf_runtime.topology import TABLES

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient
    from types_aiobotocore_dynamodb.type_defs import TransactWriteItemTypeDef

pytestmark = pytest.mark.integration


def _put(table: str, pk: str, sk: str = "MARK", *, new: bool = True) -> TransactWriteItemTypeDef:
    put: Any = {"TableName": table, "Item": {"pk": {"S": pk}, "sk": {"S": sk}, "n": {"N": "1"}}}
    if new:
        put["ConditionExpression"] = "attribute_not_exists(pk)"
    return {"Put": put}


def _counting(table: DynamoTable, operation: str) -> list[int]:
    """Patch the table's client so each call of `operation` records its size."""
    sizes: list[int] = []
    call = getattr(table.client, operation)

    async def counted(**kwargs: Any) -> Any:
        request = kwargs.get("TransactItems") or kwargs["RequestItems"][table.name]["Keys"]
        sizes.append(len(request))
        return await call(**kwargs)

    setattr(table.client, operation, counted)
    return sizes


async def test_concurrent_transactions_share_calls_and_every_one_is_written(
    settings: ServiceSettings, dynamodb: DynamoDBClient
) -> None:
    await ensure_tables(dynamodb, TABLES, prefix=settings.table_prefix)
    async with DynamoTable(settings, "intake") as table:
        calls = _counting(table, "transact_write_items")
        results = await asyncio.gather(
            *(
                table.transact([_put(table.name, f"T#{n}", sk) for sk in ("A", "B", "C")])
                for n in range(60)
            )
        )

        assert results == [None] * 60
        assert len(calls) <= 60 / 5  # 180 items in a handful of calls
        assert max(calls) <= 100  # never more than a transaction takes
        for n in range(60):
            for sk in ("A", "B", "C"):
                assert await table.get(f"T#{n}", sk) is not None


async def test_a_failed_condition_is_its_own_transactions_and_the_others_are_still_written(
    settings: ServiceSettings, dynamodb: DynamoDBClient
) -> None:
    await ensure_tables(dynamodb, TABLES, prefix=settings.table_prefix)
    async with DynamoTable(settings, "intake") as table:
        assert await table.transact([_put(table.name, "TAKEN")]) is None
        calls = _counting(table, "transact_write_items")

        results = await asyncio.gather(
            table.transact([_put(table.name, "FIRST")]),
            *(table.transact([_put(table.name, f"FREE#{n}")]) for n in range(5)),
            table.transact([_put(table.name, "FREE#X", "OTHER"), _put(table.name, "TAKEN")]),
            *(table.transact([_put(table.name, f"FREE#{n}", "LATE")]) for n in range(5)),
        )

        assert results[6] == ["None", "ConditionalCheckFailed"]  # as if written alone
        assert [r for n, r in enumerate(results) if n != 6] == [None] * 11
        assert await table.get("FREE#X", "OTHER") is None  # its own items: all or nothing
        for n in range(5):
            assert await table.get(f"FREE#{n}", "LATE") is not None
        assert calls == [13, 11]  # all together; then all but the one whose condition failed


async def test_two_transactions_on_one_item_go_in_separate_calls_in_the_order_they_came(
    settings: ServiceSettings, dynamodb: DynamoDBClient
) -> None:
    await ensure_tables(dynamodb, TABLES, prefix=settings.table_prefix)
    async with DynamoTable(settings, "intake") as table:
        calls = _counting(table, "transact_write_items")

        results = await asyncio.gather(
            table.transact([_put(table.name, "BUSY")]),
            table.transact([_put(table.name, "ONE")]),
            table.transact([_put(table.name, "ONE")]),  # the same item: never in one call
            table.transact([_put(table.name, "TWO")]),
        )

        assert list(results) == [None, None, ["ConditionalCheckFailed"], None]
        assert calls == [3, 1]  # BUSY, ONE and TWO; then the second ONE


async def test_concurrent_reads_share_batch_gets_and_each_caller_gets_its_own_item(
    settings: ServiceSettings, dynamodb: DynamoDBClient
) -> None:
    await ensure_tables(dynamodb, TABLES, prefix=settings.table_prefix)
    async with DynamoTable(settings, "intake") as table:
        await asyncio.gather(*(table.transact([_put(table.name, f"R#{n}")]) for n in range(150)))
        calls = _counting(table, "batch_get_item")
        before = _sample("caf_dynamodb_requests_total"), _sample("caf_dynamodb_items_total")

        found = await asyncio.gather(
            *(table.get(f"R#{n}", "MARK") for n in range(150)),
            table.get("R#7", "MARK"),
            table.get("R#absent", "MARK"),
        )

        assert [item["pk"]["S"] if item else None for item in found] == [
            *(f"R#{n}" for n in range(150)),
            "R#7",
            None,
        ]
        assert found[7] is not found[150]  # a copy each: one caller cannot change another's
        assert len(calls) <= 4
        assert max(calls) <= 100
        # counted for /metrics (and the benchmark's requests per grant)
        assert _sample("caf_dynamodb_requests_total") - before[0] == len(calls)
        assert _sample("caf_dynamodb_items_total") - before[1] == sum(calls)


def _sample(name: str) -> float:
    return REGISTRY.get_sample_value(name, {"operation": "BatchGetItem"}) or 0.0
